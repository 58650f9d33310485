"""Nothing lost in prod: every KMS key and log group the program creates is protected, on every
platform, and `llm-hosting:protection: off` (the documented teardown switch) lifts it."""

from __future__ import annotations

import json

import pytest

from components.offline import ROOT, Graph, run_program
from components.stackfile import read_stack_file

KEEP_TYPES = {
    "aws:kms/key:Key", "aws:cloudwatch/logGroup:LogGroup",
    "aws-native:kms:Key", "aws-native:logs:LogGroup",
}


def _prod(platform: str, **extra: object) -> dict[str, str]:
    """The example stack of `platform`, switched to prod and to its fullest set of stores."""
    example = {"sagemaker": "dev", "ecs": "staging", "eks": "prod"}[platform]
    config = dict(read_stack_file(ROOT / f"Pulumi.{example}.yaml").config)
    config["llm-hosting:environment"] = "prod"
    if platform == "sagemaker":  # data capture brings the endpoint's KMS key
        config["llm-hosting:sagemaker"] = json.dumps({
            "endpointDeployment": "blueGreen", "dataCapturePercent": 10,
            "dataCaptureS3Uri": "s3://capture-bucket/llm"})
    if platform == "ecs":  # a shared instance brings its own task log groups
        models = json.loads(config["llm-hosting:models"])
        small = {"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct", "minReplicas": 1,
                 "maxReplicas": 3, "capacity": "spot"}
        models += [small, {**small, "name": "qwen-7b-b"}]
        config["llm-hosting:models"] = json.dumps(models)
        config["llm-hosting:ecs"] = json.dumps({"sharedInstances": [
            {"name": "small", "models": ["qwen-7b", "qwen-7b-b"]}]})
    config.update({k: str(v) for k, v in extra.items()})
    return config


def _graph(platform: str, **extra: object) -> Graph:
    return run_program(_prod(platform, **extra), stack="prod")


@pytest.fixture(scope="module", params=["sagemaker", "ecs", "eks"])
def prod_graph(request) -> tuple[str, Graph]:
    return request.param, _graph(request.param)


def test_every_key_and_log_group_is_protected_in_prod(prod_graph):
    platform, graph = prod_graph
    kept = [r for r in graph.resources if r.type in KEEP_TYPES]
    assert kept, f"{platform}: the graph has no KMS key or log group to check"
    unprotected = [f"{r.type} {r.name}" for r in kept if not r.protect]
    assert unprotected == [], f"{platform}: not protected in prod: {unprotected}"


def test_the_checked_stores_include_the_ones_that_were_missed(prod_graph):
    # The alerts key (EKS, AMP) and the ECS serving log groups were unprotected before.
    platform, graph = prod_graph
    names = {r.name for r in graph.resources if r.type in KEEP_TYPES}
    expected = {"sagemaker": {"sagemaker-endpoint-key"},
                "ecs": {"ecs-llama-8b-logs", "ecs-llama-8b-metrics-logs"},
                "eks": {"eks-observability-alerts-key"}}[platform]
    assert expected <= names


@pytest.mark.parametrize("platform", ["sagemaker", "ecs", "eks"])
def test_protection_off_lifts_every_protection_for_a_teardown(platform):
    graph = _graph(platform, **{"llm-hosting:protection": "off"})
    assert [r.name for r in graph.resources if r.protect] == []
    # ...including the AWS-side deletion protection that `pulumi destroy` cannot lift itself.
    for r in graph.of_type("aws:lb/loadBalancer:LoadBalancer"):
        assert r.inputs.get("enableDeletionProtection") is False
    for r in graph.of_type("aws:eks/cluster:Cluster") + graph.of_type("eks:index:Cluster"):
        assert r.inputs.get("deletionProtection") in (None, False)


def test_protection_on_keeps_aws_side_deletion_protection_in_prod():
    ecs, eks = _graph("ecs"), _graph("eks")
    assert ecs.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    assert eks.one("eks:index:Cluster").inputs["deletionProtection"] is True


def test_protection_is_refused_when_misspelled(base_config):
    from components.config import ConfigError
    from components.platforms import parse_config

    base_config["llm-hosting:protection"] = "false"
    with pytest.raises(ConfigError) as err:
        parse_config(base_config, project="p", stack="s")
    assert err.value.problems == (
        "llm-hosting:protection: 'false' is not accepted; use one of 'auto' or 'off'",)
