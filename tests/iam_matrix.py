"""The stacks the IAM checker runs over: the three examples plus variants turning on every
option each platform has (monitoring modes, internal ALB, Spot, shared ECS instances, data
capture, SSE-KMS weights, Hub token vs S3 weights, scale to zero, both cold-start modes)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

from components.offline import ROOT, Graph, run_program
from components.stackfile import read_stack_file, stack_files

TOKEN = "hf_iamMatrixTokenNeverPrinted0123456789"
WEIGHTS_KEY = "arn:aws:kms:{region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _kms(region: str) -> str:
    return WEIGHTS_KEY.format(region=region)


VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # Three models on one endpoint (two instance types): S3 weights with SSE-KMS, a Hub model
    # with a token (TGI), a model that scales to zero; data capture, alarms to SNS, blue/green.
    "sagemaker-every-option": ("staging", {
        "aws:region": "us-west-2",
        "llm-hosting:environment": "staging",
        "llm-hosting:platform": "sagemaker",
        "llm-hosting:hfToken": TOKEN,
        "llm-hosting:models": [
            {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
             "instanceType": "g5.12xlarge", "minReplicas": 1, "maxReplicas": 3,
             "weightsUri": "s3://weights-bucket/llama-3.1-8b/",
             "weightsKmsKeyArn": _kms("us-west-2")},
            {"name": "mistral-7b", "modelId": "mistralai/Mistral-7B-Instruct-v0.3",
             "engine": "tgi", "instanceType": "g5.12xlarge", "gpusPerReplica": 2,
             "minReplicas": 1, "maxReplicas": 1},
            {"name": "qwen-14b", "modelId": "Qwen/Qwen2.5-14B-Instruct", "quantization": "fp8",
             "instanceType": "g6e.xlarge", "minReplicas": 0, "maxReplicas": 2,
             "weightsUri": "s3://other-bucket/qwen/14b/"},
        ],
        "llm-hosting:sagemaker": {
            "endpointDeployment": "blueGreen", "dataCapturePercent": 20,
            "dataCaptureS3Uri": "s3://capture-bucket/llm/",
            "alarmTopicArn": "arn:aws:sns:us-west-2:123456789012:oncall",
        },
    }),
    # In-cluster monitoring, the internal ALB, Bottlerocket snapshot cold start, a public API
    # allow-list, an admin; an SSE-KMS Spot model and a Hub model that scales to zero.
    "eks-in-cluster-alb-bottlerocket": ("staging", {
        "aws:region": "us-east-1",
        "llm-hosting:environment": "staging",
        "llm-hosting:platform": "eks",
        "llm-hosting:hfToken": TOKEN,
        "llm-hosting:models": [
            {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
             "capacity": "spot", "minReplicas": 1, "maxReplicas": 3,
             "weightsUri": "s3://weights-bucket/llama-3.1-8b/",
             "weightsKmsKeyArn": _kms("us-east-1")},
            {"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct",
             "minReplicas": 0, "maxReplicas": 2},
        ],
        "llm-hosting:eks": {
            "monitoring": "kube-prometheus-stack", "ingress": "internal-alb",
            "coldStart": "bottlerocket-snapshot", "imageSnapshotId": "snap-0123456789abcdef0",
            "publicAccessCidrs": ["203.0.113.0/24"],
            "clusterAdminArns": ["arn:aws:iam::123456789012:role/platform-admins"],
        },
    }),
    # Managed Prometheus with the internal ALB and SOCI, in prod.
    "eks-amp-alb": ("prod", {
        "aws:region": "eu-west-1",
        "llm-hosting:environment": "prod",
        "llm-hosting:platform": "eks",
        "llm-hosting:models": [
            {"name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct",
             "quantization": "fp8", "maxInputTokens": 7168, "maxTotalTokens": 8192,
             "gpusPerReplica": 4, "minReplicas": 2, "maxReplicas": 3,
             "weightsUri": "s3://weights-bucket/llama-3.3-70b/",
             "weightsKmsKeyArn": _kms("eu-west-1")},
        ],
        "llm-hosting:eks": {"monitoring": "amp", "ingress": "internal-alb",
                            "coldStart": "soci-parallel-pull"},
    }),
    # A shared instance (S3 vLLM + Hub TGI), a model alone with SSE-KMS weights on Spot that
    # scales to zero, an internet-facing HTTPS load balancer.
    "ecs-every-option": ("staging", {
        "aws:region": "us-east-1",
        "llm-hosting:environment": "staging",
        "llm-hosting:platform": "ecs",
        "llm-hosting:hfToken": TOKEN,
        "llm-hosting:models": [
            {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
             "capacity": "spot", "minReplicas": 0, "maxReplicas": 2,
             "weightsUri": "s3://weights-bucket/llama-8b/",
             "weightsKmsKeyArn": _kms("us-east-1")},
            {"name": "llama-1b", "modelId": "meta-llama/Llama-3.2-1B-Instruct",
             "weightsUri": "s3://weights-bucket/llama-1b/", "minReplicas": 1,
             "maxReplicas": 3},
            {"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct", "engine": "tgi",
             "gpusPerReplica": 2, "minReplicas": 1, "maxReplicas": 3},
        ],
        "llm-hosting:ecs": {
            "sharedInstances": [{"name": "small", "models": ["llama-1b", "qwen-7b"]}],
            "loadBalancerScheme": "internet-facing", "allowedCidrs": ["203.0.113.0/24"],
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "warmPoolSize": 2,
        },
    }),
}
"""name -> (stack, config): every option of every platform is on in at least one variant."""


def matrix() -> Iterator[tuple[str, str, dict[str, Any], tuple[str, ...]]]:
    """(name, stack, config, secret keys) for each example stack and each variant."""
    for path in stack_files(ROOT):
        stack = read_stack_file(path)
        yield path.name, stack.stack, stack.config, tuple(stack.secret_keys)
    for name, (stack, config) in VARIANTS.items():
        secrets = ("llm-hosting:hfToken",) if "llm-hosting:hfToken" in config else ()
        yield name, stack, copy.deepcopy(config), secrets


@functools.cache
def graph(name: str) -> Graph:
    """The recorded graph of one matrix entry, built once per test session."""
    for entry, stack, config, secrets in matrix():
        if entry == name:
            return run_program(config, stack=stack, secret_keys=secrets)
    raise KeyError(name)


NAMES: tuple[str, ...] = tuple(name for name, *_ in matrix())
