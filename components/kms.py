"""Key policies shared by the platforms' customer-managed KMS keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
