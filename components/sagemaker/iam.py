"""Execution roles: what SageMaker may do on the endpoint's and each model's behalf, no more.

Pure policy builders (tested as plain dicts) and the `ExecutionRole` component that registers
them. One role per identity SageMaker acts as:

* the **endpoint config's** role (`CreateEndpointConfig.ExecutionRoleArn`, required for an
  endpoint that hosts inference components): instances, the endpoint's VPC placement, data
  capture;
* one role per **model** (`CreateModel.ExecutionRoleArn`): AWS documents it as "the IAM role
  that SageMaker can assume to access model artifacts and docker image for deployment on ML
  compute instances" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html#sagemaker-CreateModel-request-ExecutionRoleArn);
  an inference component deploys a Model (`InferenceComponentSpecification.ModelName`), so its
  weights are read with its model's role, which reads only that model's `weightsUri` prefix.

Grants, per https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html:

* ECR pull of exactly the DLC repositories the role's models run (`ecr:GetAuthorizationToken`
  has no resource-level permissions, so it alone takes `*`);
* S3 read of a model's `weightsUri` prefix only (`s3:ListBucket` limited by `s3:prefix`), and
  `kms:Decrypt` on its `weightsKmsKeyArn` through S3 only (`components.weights_kms`): model
  roles only;
* CloudWatch Logs for the endpoint's and the role's inference components' log groups only;
* `cloudwatch:PutMetricData` limited to SageMaker's namespaces (the action has no resources);
* the ENI actions SageMaker needs to place containers in the VPC, split by resource type as the
  Service Authorization Reference lists them for `ec2:CreateNetworkInterface`: the new
  `network-interface` carries no `ec2:Vpc` (only `aws:RequestTag/${TagKey}`, `aws:TagKeys`,
  `ec2:NetworkInterfaceID`), so it is granted without the VPC condition, while the `subnet` and
  `security-group` it is created in carry `ec2:Vpc` and are limited to this VPC
  (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html);
  the Describe* calls have no resource-level permissions.
  https://docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html
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
    """A role's inline policy; `weights` is (bucket, prefix) of the weights it reads (a model
    role's own `weightsUri`; none for the endpoint role), `weights_keys` (key ARN, bucket,
    prefix) where that bucket uses SSE-KMS, `data_capture` the (bucket, prefix) captured
    requests are written to, when capture is on (the endpoint role).
    Data capture writes as this role (and encrypts with the endpoint key, whose key policy
    grants the role): https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html
    """
    logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker"
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    vpc_arn = f"{ec2}:vpc/{vpc_id}"
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
            # The interface being created has no VPC yet to test (see the module docstring).
            "Sid": "CreateEnis",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": f"{ec2}:network-interface/*",
        },
        {
            "Sid": "CreateEnisInThisVpc",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [f"{ec2}:subnet/*", f"{ec2}:security-group/*"],
            "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}},
        },
        {
            "Sid": "ManageEnisInThisVpc",
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                       "ec2:DeleteNetworkInterfacePermission"],
            "Resource": f"{ec2}:network-interface/*",
            "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}},
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
    description: str = "SageMaker endpoint execution role"
    """Whose role this is (the endpoint's, or one model's)."""
    tags: dict[str, str] | None = None
    """Tags of the role; default the stack's tag set."""


class ExecutionRole(pulumi.ComponentResource):
    """IAM role SageMaker assumes for the endpoint or for one model: pull its images, read its
    weights (a model's role only), write logs and metrics, place ENIs in the VPC."""

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
            description=f"{args.naming.prefix}: {args.description}",
            assume_role_policy=pulumi.Output.all(account, partition).apply(
                lambda ap: json.dumps(
                    assume_role_policy(account=ap[0], partition=ap[1], region=args.region)
                )
            ),
            max_session_duration=3600,
            tags=args.tags if args.tags is not None else args.naming.tags(),
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
