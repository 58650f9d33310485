"""The prod gate over the analyzer protocol, for the largest catalog model on every platform.

Llama 3.1 405B (fp8 over 8 GPUs, weights from S3) is the model whose start-up the program's
timeouts must cover most; each platform's prod stack with it runs offline and goes through the
pack exactly as the CLI drives it (tests/policies/policy_harness.py). The start-up timeouts the
program set from components/startup.py must draw no mandatory `llm-startup-timeouts` violation,
and nothing else may either.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from policy_harness import Analyzer

from components.facts import MODEL_SHAPES
from components.offline import ROOT, Recorded, run_program
from components.startup import StartupEstimate, estimate_startup

PROD = json.loads((ROOT / "policies" / "config.prod.json").read_text())
LARGEST = "meta-llama/Llama-3.1-405B-Instruct"


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
"""Prod's policy config wants HTTPS on the ECS load balancer and on the SageMaker gateway's ALB
even inside the VPC."""


def prod_stack(platform: str) -> dict[str, Any]:
    return {
        "aws:region": "us-east-1",
        "llm-hosting:environment": "prod",
        "llm-hosting:platform": platform,
        **({"llm-hosting:ecs": {"certificateArn": CERTIFICATE}} if platform == "ecs" else {}),
        **({"llm-hosting:gateway": {"certificateArn": CERTIFICATE}}
           if platform == "sagemaker" else {}),
        "llm-hosting:models": [{
            "name": "llama-405b", "modelId": LARGEST, "quantization": "fp8",
            "gpusPerReplica": 8, "minReplicas": 1, "maxReplicas": 1,
            "weightsUri": "s3://example-llm-weights-prod/meta-llama/Llama-3.1-405B-Instruct/",
        }],
    }


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    analyzer.configure(PROD)
    yield analyzer
    analyzer.stop()


def test_the_largest_catalog_model_is_the_one_under_test():
    largest = max(MODEL_SHAPES.values(), key=lambda s: s.parameters_b)
    assert MODEL_SHAPES[LARGEST] is largest


@pytest.mark.parametrize("platform", ["eks", "ecs", "sagemaker"])
def test_prod_stack_with_the_largest_model_draws_no_mandatory_violation(pack, platform):
    graph = run_program(prod_stack(platform), stack="prod")
    found = pack.analyze(graph.resources, graph.resources) + pack.analyze_stack(graph.resources)
    assert [f"{d.policy} {d.urn}: {d.detail}" for d in found if d.level == "mandatory"] == []
    # ... and the rule judged this model: one period/second short of its window is mandatory
    estimate = estimate_startup(shape=MODEL_SHAPES[LARGEST], checkpoint="none",
                                gpus_per_replica=8, platform=platform, weights="s3")
    short = _one_short(graph.resources, platform, estimate)
    (violation,) = [d for d in pack.analyze([short]) if d.policy == "llm-startup-timeouts"]
    assert violation.level == "mandatory"


def _one_short(resources: list[Recorded], platform: str, estimate: StartupEstimate) -> Recorded:
    """The resource holding the model's start-up timeout, set just below what it needs."""
    if platform == "eks":
        (r,) = [r for r in resources if r.type == "kubernetes:apps/v1:Deployment"
                and r.name.endswith("llama-405b-deployment")]
        inputs = copy.deepcopy(r.inputs)
        probe = inputs["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
        probe["failureThreshold"] = estimate.container_seconds // probe["periodSeconds"] - 1
    elif platform == "ecs":
        (r,) = [r for r in resources if r.type == "aws:ecs/service:Service"
                and r.name.endswith("llama-405b-service")]  # not the gateway's
        inputs = copy.deepcopy(r.inputs)
        inputs["healthCheckGracePeriodSeconds"] = estimate.task_seconds - 1
    else:
        (r,) = [r for r in resources if r.type == "aws-native:sagemaker:InferenceComponent"]
        inputs = copy.deepcopy(r.inputs)
        params = inputs["specification"]["startupParameters"]
        # past the API maximum the requirement is the maximum
        params["modelDataDownloadTimeoutInSeconds"] = min(
            3600, estimate.model_download_seconds) - 1
    return replace(r, inputs=inputs)
