"""IAM documents for the ECS platform (pure; no Pulumi), one role per trust boundary.

* instance role: the ECS agent and SSM on the host, plus completing this group's warm-pool
  lifecycle hook and publishing GPU metrics. It never reads model weights or secrets.
* execution role: ECS pulls images, writes the task's log group, reads the HF token secret.
* task role: what the containers call: read the model's weights prefix (and decrypt with its
  SSE-KMS key through S3 only, `components.weights_kms`), write EMF metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from components.weights_kms import weights_decrypt_statements

ECS_INSTANCE_MANAGED_POLICIES = (
    # Register with the cluster, poll for tasks, pull from ECR, report state.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/instance_IAM_role.html
    "service-role/AmazonEC2ContainerServiceforEC2Role",
    # Session Manager shell instead of SSH; no inbound port on GPU hosts.
    "AmazonSSMManagedInstanceCore",
)

GPU_METRICS_NAMESPACE = "CWAgent"
INFLIGHT_NAMESPACE = "LLMHosting/ECS"

_S3 = re.compile(r"^s3://([^/]+)/(.+?)/?$")


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str, account: str, partition: str = "aws") -> str:
    """Trust `service`, for callers in this account only (confused-deputy guard where the
    service sets aws:SourceAccount; EC2 does not, so it trusts the bare principal)."""
    stmt: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if service != "ec2.amazonaws.com":
        stmt["Condition"] = {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:*:{account}:*"},
        }
    return _doc(stmt)


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3.match(uri)
    if not match:
        raise ValueError(f"not an s3://bucket/prefix URI: {uri!r}")
    return match.group(1), match.group(2)


def task_role_policy(
    *, weights_uri: str | None, metrics_log_group_arn: str, partition: str = "aws",
    weights_kms_key_arn: str | None = None, region: str = "",
) -> str:
    """Read exactly the weights prefix (list + get; decrypt with `weights_kms_key_arn` via S3 in
    `region` when the bucket uses SSE-KMS) and write the EMF metrics log group: the shared
    task's policy with one member."""
    weights = [weights_uri] if weights_uri is not None else []
    keys = {weights_uri: weights_kms_key_arn} if weights_uri and weights_kms_key_arn else {}
    return shared_task_role_policy(
        weights_uris=weights, metrics_log_group_arn=metrics_log_group_arn, partition=partition,
        weights_kms_keys=keys, region=region)


def shared_task_role_policy(
    *, weights_uris: list[str], metrics_log_group_arn: str, partition: str = "aws",
    weights_kms_keys: Mapping[str, str] | None = None, region: str = "",
) -> str:
    """A shared task's role: every member's weights prefix (one list statement per bucket, so a
    prefix never widens to another bucket), decrypt with each SSE-KMS key (`weights_kms_keys`:
    weights URI -> key ARN) via S3 in `region`, and the EMF log group. The task is the IAM
    boundary: models that share a task share this role (docs/ecs.md)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EmfMetrics",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [metrics_log_group_arn, f"{metrics_log_group_arn}:*"],
        }
    ]
    by_bucket: dict[str, list[str]] = {}
    for uri in weights_uris:
        bucket, prefix = split_s3_uri(uri)
        by_bucket.setdefault(bucket, []).append(prefix)
    for n, (bucket, prefixes) in enumerate(sorted(by_bucket.items())):
        statements.append({
            "Sid": f"ListWeightsPrefix{n}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:{partition}:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": [
                x for prefix in prefixes for x in (prefix, f"{prefix}/*")]}},
        })
    if by_bucket:
        statements.append({
            "Sid": "ReadWeights",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"arn:{partition}:s3:::{b}/{prefix}/*"
                         for b, prefixes in sorted(by_bucket.items()) for prefix in prefixes],
        })
    statements += weights_decrypt_statements(
        [(key, *split_s3_uri(uri)) for uri, key in sorted((weights_kms_keys or {}).items())
         if uri in weights_uris],
        region=region, partition=partition)
    return _doc(*statements)


def execution_role_policy(*, log_group_arn: str, secret_arns: list[str]) -> str:
    """Write the task's own log group; read only the secrets its containers reference.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html
    Both log actions authorize on a log *stream* (`<group>:log-stream:<stream>`), which only
    the `<group>:*` form names; the bare group ARN would grant nothing."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TaskLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group_arn}:*"],
        }
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "ContainerSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arns,
            }
        )
    return _doc(*statements)


def instance_role_policy(*, asg_arns: list[str]) -> str:
    """Complete this group's warm-pool lifecycle hook; publish GPU metrics to CWAgent only
    (PutMetricData has no resource ARN, so the namespace condition is the scope)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "GpuMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": GPU_METRICS_NAMESPACE}},
        }
    ]
    if asg_arns:
        statements.append(
            {
                "Sid": "WarmPoolLifecycleHook",
                "Effect": "Allow",
                "Action": "autoscaling:CompleteLifecycleAction",
                "Resource": asg_arns,
            }
        )
    return _doc(*statements)


def asg_arn(*, region: str, account: str, name: str, partition: str = "aws") -> str:
    """An Auto Scaling group's ARN pattern by name (its UUID is unknown before creation)."""
    return (f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:"
            f"autoScalingGroupName/{name}")
