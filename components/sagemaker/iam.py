"""The endpoint's execution role: what SageMaker may do on the endpoint's behalf, and no more.

Pure policy builders (tested as plain dicts) and the `ExecutionRole` component that registers
them. Grants, per https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html:

* ECR pull of exactly the DLC repositories this stack runs (`ecr:GetAuthorizationToken` has no
  resource-level permissions, so it alone takes `*`);
* S3 read of each model's `weightsUri` prefix only (`s3:ListBucket` limited by `s3:prefix`),
  and `kms:Decrypt` on a model's `weightsKmsKeyArn` through S3 only (`components.weights_kms`);
* CloudWatch Logs for this endpoint's and its inference components' log groups only;
* `cloudwatch:PutMetricData` limited to SageMaker's namespaces (the action has no resources);
* the ENI actions SageMaker needs to place containers in the VPC, limited to this VPC where the
  API allows it (the Describe* calls have no resource-level permissions).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.tags import Naming
from components.weights_kms import weights_decrypt_statements

METRIC_NAMESPACES = ("/aws/sagemaker/Endpoints", "/aws/sagemaker/InferenceComponents",
                     "AWS/SageMaker")


def assume_role_policy(*, account: str, partition: str, region: str) -> dict[str, Any]:
    """Only SageMaker, acting for this account in this region, may assume the role
    (confused-deputy protection: https://docs.aws.amazon.com/sagemaker/latest/dg/security-iam-service-with-iam.html)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:sagemaker:{region}:{account}:*"},
                },
            }
        ],
    }


def execution_policy(
    *,
    partition: str,
    region: str,
    account: str,
    vpc_id: str,
    repository_arns: Sequence[str],
    weights: Iterable[tuple[str, str]],
    endpoint_name: str,
    inference_component_names: Sequence[str],
    data_capture: tuple[str, str] | None = None,
    weights_keys: Iterable[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """The role's inline policy; `weights` is (bucket, prefix) per model with `weightsUri`,
    `weights_keys` (key ARN, bucket, prefix) per model whose weights bucket uses SSE-KMS,
    `data_capture` the (bucket, prefix) captured requests are written to, when capture is on.
    Data capture writes as this role (and encrypts with the endpoint key, whose key policy
    grants the role): https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html
    """
    logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker"
    log_groups = [f"{logs}/Endpoints/{endpoint_name}"] + [
        f"{logs}/InferenceComponents/{ic}" for ic in inference_component_names
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EcrAuth",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "PullServingImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                       "ecr:BatchCheckLayerAvailability"],
            "Resource": sorted(set(repository_arns)),
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                       "logs:DescribeLogStreams"],
            "Resource": [arn for group in log_groups for arn in (group, f"{group}:*")],
        },
        {
            "Sid": "PutMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": list(METRIC_NAMESPACES)}},
        },
        {
            "Sid": "DescribeVpc",
            "Effect": "Allow",
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
                       "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
                       "ec2:DescribeSecurityGroups"],
            "Resource": "*",
        },
        {
            "Sid": "ManageEnisInThisVpc",
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                       "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
            "Resource": "*",
            "Condition": {
                "ArnEquals": {"ec2:Vpc": f"arn:{partition}:ec2:{region}:{account}:vpc/{vpc_id}"}
            },
        },
    ]
    by_bucket: dict[str, list[str]] = {}
    for bucket, prefix in weights:
        by_bucket.setdefault(bucket, []).append(prefix)
    for i, (bucket, prefixes) in enumerate(sorted(by_bucket.items())):
        prefixes = sorted(set(prefixes))
        statements += [
            {
                "Sid": f"ReadWeights{i}",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"arn:{partition}:s3:::{bucket}/{p}/*" for p in prefixes],
            },
            {
                "Sid": f"ListWeights{i}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:{partition}:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{p}/*" for p in prefixes]}},
            },
        ]
    statements += weights_decrypt_statements(weights_keys, region=region, partition=partition)
    if data_capture is not None:
        bucket, prefix = data_capture
        statements.append({
            "Sid": "WriteDataCapture",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}/*" if prefix
            else f"arn:{partition}:s3:::{bucket}/*",
        })
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class ExecutionRoleArgs:
    naming: Naming
    region: str
    vpc_id: pulumi.Input[str]
    repository_arns: Sequence[str]
    weights: Sequence[tuple[str, str]]
    endpoint_name: str
    inference_component_names: Sequence[str]
    data_capture: tuple[str, str] | None = None
    weights_keys: Sequence[tuple[str, str, str]] = ()


class ExecutionRole(pulumi.ComponentResource):
    """IAM role SageMaker assumes to pull images, read weights and write logs and metrics."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: ExecutionRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:ExecutionRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        role = aws.iam.Role(
            f"{name}-role",
            description=f"{args.naming.prefix}: SageMaker endpoint execution role",
            assume_role_policy=pulumi.Output.all(account, partition).apply(
                lambda ap: json.dumps(
                    assume_role_policy(account=ap[0], partition=ap[1], region=args.region)
                )
            ),
            max_session_duration=3600,
            tags=args.naming.tags(),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(account, partition, args.vpc_id).apply(
                lambda apv: json.dumps(
                    execution_policy(
                        partition=apv[1],
                        region=args.region,
                        account=apv[0],
                        vpc_id=apv[2],
                        repository_arns=args.repository_arns,
                        weights=args.weights,
                        endpoint_name=args.endpoint_name,
                        inference_component_names=args.inference_component_names,
                        data_capture=args.data_capture,
                        weights_keys=args.weights_keys,
                    )
                )
            ),
            opts=child,
        )
        # Consumers wait for the policy too: SageMaker validates the role's permissions when
        # the endpoint config and models are created.
        self.arn = pulumi.Output.all(role.arn, policy.id).apply(lambda ap: ap[0])
        self.register_outputs({"arn": self.arn})
