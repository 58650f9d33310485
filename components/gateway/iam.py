"""IAM documents of the gateway (pure; no Pulumi): what its identity may call, nothing more.

* invoke: this stack's SageMaker endpoint and inference components (InvokeEndpoint requires the
  endpoint, and takes the inference component as an optional second resource), and the Bedrock
  models and profiles named in `fallbacks` (InvokeModel also authorizes Converse, and
  InvokeModelWithResponseStream ConverseStream). Models on EKS and ECS are called over HTTP
  inside the VPC and need no IAM.
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html,
  https://docs.aws.amazon.com/bedrock/latest/userguide/security-iam-awsmanpol.html
* metrics: PutMetricData only into the gateway's namespace (`cloudwatch:namespace`).
* the master key: GetSecretValue on its one secret (EKS reads it at start; on Fargate the task
  execution role reads it and the key reaches the container as an environment variable).
* the config bundle (Fargate): the execution role reads exactly its SSM parameters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

SAGEMAKER_INVOKE = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")
BEDROCK_INVOKE = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")


def _doc(statements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def sagemaker_arns(*, partition: str, region: str, account: str, endpoint_name: str,
                   inference_component_names: Sequence[str]) -> list[str]:
    """SageMaker writes resource names into ARNs in lower case."""
    base = f"arn:{partition}:sagemaker:{region}:{account}"
    return [f"{base}:endpoint/{endpoint_name.lower()}",
            *(f"{base}:inference-component/{ic.lower()}" for ic in inference_component_names)]


def gateway_policy(*, sagemaker_resources: Sequence[str] = (),
                   bedrock_resources: Sequence[str] = (), metrics_namespace: str | None = None,
                   master_key_secret_arn: str | None = None) -> dict[str, Any]:
    """The gateway's own identity (Fargate task role, EKS Pod Identity role)."""
    statements: list[dict[str, Any]] = []
    if sagemaker_resources:
        statements.append({"Sid": "InvokeThisStacksModels", "Effect": "Allow",
                           "Action": list(SAGEMAKER_INVOKE),
                           "Resource": sorted(set(sagemaker_resources))})
    if bedrock_resources:
        statements.append({"Sid": "InvokeFallbackBedrockModels", "Effect": "Allow",
                           "Action": list(BEDROCK_INVOKE),
                           "Resource": sorted(set(bedrock_resources))})
    if metrics_namespace is not None:
        statements.append({"Sid": "PublishGatewayMetrics", "Effect": "Allow",
                           "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
                           "Condition": {"StringEquals": {
                               "cloudwatch:namespace": metrics_namespace}}})
    if master_key_secret_arn is not None:
        statements.append({"Sid": "ReadMasterKey", "Effect": "Allow",
                           "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [master_key_secret_arn]})
    if not statements:  # IAM rejects an empty policy; a gateway with nothing to call
        statements.append({"Sid": "Nothing", "Effect": "Deny", "Action": "*", "Resource": "*"})
    return _doc(statements)


def execution_policy(*, log_group_arn: str, master_key_secret_arn: str,
                     parameter_arns: Sequence[str]) -> dict[str, Any]:
    """What ECS itself does for a gateway task: write its log group, hand it the master key
    and the config bundle (the image comes from a public registry: no ECR grant).
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-ssm-paramstore.html"""
    return _doc([
        {"Sid": "WriteLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [f"{log_group_arn}:*"]},
        {"Sid": "ReadMasterKey", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
         "Resource": [master_key_secret_arn]},
        {"Sid": "ReadConfigBundle", "Effect": "Allow", "Action": ["ssm:GetParameters"],
         "Resource": list(parameter_arns)},
    ])


def ecs_tasks_trust(account: str, partition: str) -> dict[str, Any]:
    """ECS tasks of this account only (confused-deputy guard on aws:SourceAccount/SourceArn).
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html"""
    return _doc([{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:*:{account}:*"}},
    }])


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc)
