"""Customer-managed KMS keys the platforms share the shape of: the key policy, and the key."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
               "kms:DescribeKey", "kms:CreateGrant")


def via_service_key_policy(*, account: str, partition: str, via_service: str,
                           actions: Sequence[str] = USE_ACTIONS) -> dict[str, Any]:
    """A key the account administers (delegating to IAM) that every principal of the account
    may use, but only through one AWS service in one region (`kms:ViaService`, e.g.
    `secretsmanager.us-east-1.amazonaws.com`): the pattern of AWS-managed service keys, so the
    service's callers need no KMS permission of their own and nothing else can use the key.
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
    """
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministration", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "UseThroughServiceOnly", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": list(actions), "Resource": "*",
         "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                        "kms:ViaService": via_service}}},
    ]}


def service_only_key(name: str, *, description: str, service: str, region: pulumi.Input[str],
                     tags: Mapping[str, str], opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """A rotated key with `via_service_key_policy` for `<service>.<region>.amazonaws.com`: what
    a secret or a workspace is encrypted with when its readers go through the service only."""
    invoke = pulumi.InvokeOutputOptions(parent=opts.parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    partition = aws.get_partition_output(opts=invoke).partition
    policy = pulumi.Output.all(account, partition, region).apply(
        lambda apr: json.dumps(via_service_key_policy(
            account=apr[0], partition=apr[1], via_service=f"{service}.{apr[2]}.amazonaws.com")))
    return aws.kms.Key(name, description=description, enable_key_rotation=True,
                       deletion_window_in_days=30, policy=policy, tags=dict(tags), opts=opts)
