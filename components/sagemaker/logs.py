"""The endpoint's and each inference component's CloudWatch log groups, created before SageMaker
writes to them: KMS-encrypted, with this stack's retention, protected in prod.

SageMaker writes an endpoint's logs to `/aws/sagemaker/Endpoints/<endpoint-name>` (streams
`<variant>/<instance-id>`, https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html)
and an inference component's container logs to `/aws/sagemaker/InferenceComponents/<ic-name>`
(the group SageMaker's own samples and CloudWatch Logs Insights queries read). It creates a
missing group itself (the execution role holds `logs:CreateLogGroup` for exactly these names),
and a group SageMaker creates is unencrypted and never expires. So the program creates them, and
the endpoint and every inference component depend on theirs: SageMaker then finds the group and
only adds streams.

The key is this endpoint's alone: CloudWatch Logs may use it only for these log groups
(`kms:EncryptionContext:aws:logs:arn`, the condition AWS documents for a log-group key), so a
grant on it never reaches another group of the account.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.network import FLOW_LOG_RETENTION_DAYS as LOG_RETENTION_DAYS
from components.tags import Naming

ENDPOINT_LOG_PREFIX = "/aws/sagemaker/Endpoints"
COMPONENT_LOG_PREFIX = "/aws/sagemaker/InferenceComponents"


def endpoint_log_group_name(endpoint_name: str) -> str:
    return f"{ENDPOINT_LOG_PREFIX}/{endpoint_name}"


def component_log_group_name(inference_component_name: str) -> str:
    return f"{COMPONENT_LOG_PREFIX}/{inference_component_name}"


def log_group_arn(*, partition: str, region: str, account: str, name: str) -> str:
    """The ARN CloudWatch Logs puts in the encryption context (no trailing `:*`)."""
    return f"arn:{partition}:logs:{region}:{account}:log-group:{name}"


def log_key_policy(*, account: str, partition: str, region: str,
                   log_groups: list[str]) -> dict[str, Any]:
    """The account administers the key (and delegates to IAM); CloudWatch Logs in this region
    may use it for `log_groups` (names) only."""
    arns = [log_group_arn(partition=partition, region=region, account=account, name=n)
            for n in log_groups]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsForTheseGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                # AWS's example also lists kms:Describe*, but no Describe action carries the
                # encryption-context key, so the condition could never allow it (as in the
                # network module's logs key; tests/iam_reference.py reports it).
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*",
                           "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": arns}},
            },
        ],
    }


@dataclass(frozen=True)
class EndpointLogsArgs:
    naming: Naming
    region: str
    endpoint_name: str
    inference_component_names: Mapping[str, str]
    """Model name -> inference component name."""


class EndpointLogs(pulumi.ComponentResource):
    """The key and the log groups (type `llm-hosting:sagemaker:EndpointLogs`)."""

    endpoint_log_group: aws.cloudwatch.LogGroup
    component_log_groups: dict[str, aws.cloudwatch.LogGroup]
    """Model name -> its inference component's log group."""

    def __init__(self, name: str, args: EndpointLogsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:EndpointLogs", name, None, opts)
        naming = args.naming
        kept = pulumi.ResourceOptions(parent=self, protect=naming.protect)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        groups = [endpoint_log_group_name(args.endpoint_name)] + [
            component_log_group_name(ic) for ic in args.inference_component_names.values()]
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{naming.prefix}: SageMaker endpoint and inference component logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(account, partition).apply(
                lambda ap: json.dumps(log_key_policy(account=ap[0], partition=ap[1],
                                                     region=args.region, log_groups=groups))),
            tags=naming.tags(),
            opts=kept,
        )

        def group(resource_name: str, log_group: str, tags: dict[str, str]
                  ) -> aws.cloudwatch.LogGroup:
            return aws.cloudwatch.LogGroup(
                resource_name, name=log_group,
                retention_in_days=LOG_RETENTION_DAYS[naming.environment],
                kms_key_id=key.arn, tags=tags, opts=kept)

        self.endpoint_log_group = group(f"{name}-endpoint", groups[0], naming.tags())
        self.component_log_groups = {
            model: group(f"{name}-{model}", component_log_group_name(ic),
                         naming.tags(model=model))
            for model, ic in args.inference_component_names.items()
        }
        self.register_outputs({"endpointLogGroup": self.endpoint_log_group.name})
