"""Every example stack evaluates offline under the engine's rules."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from components.offline import ROOT, RecordingMocks, run_program
from components.platforms import PLATFORMS
from components.stackfile import example_stack_files, read_stack_file

# The examples by name: stack files a user adds to the project are not these tests' business.
STACKS = example_stack_files(ROOT)


def test_the_three_example_stacks_exist():
    assert [p.name for p in STACKS if p.is_file()] == [
        "Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"]


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_example_stack_evaluates(path):
    stack = read_stack_file(path)
    platform = stack.config["llm-hosting:platform"]
    graph = run_program(stack.config, stack=stack.stack, secret_keys=stack.secret_keys)
    assert graph.of_type("llm-hosting:network:Network")
    assert graph.exports["platform"] == platform
    assert [m["name"] for m in graph.exports["models"]] == [
        m["name"] for m in json.loads(stack.config["llm-hosting:models"])
    ]


def test_gke_fails_with_one_message_naming_key_and_accepted_values():
    stack = read_stack_file(ROOT / "Pulumi.dev.yaml")
    config = dict(stack.config, **{"llm-hosting:platform": "gke"})
    with pytest.raises(ConfigError) as err:
        run_program(config, stack="dev")
    assert err.value.problems == (
        "llm-hosting:platform: 'gke' is not accepted; use one of 'sagemaker', 'eks' or 'ecs'",
    )


def test_config_error_stops_before_any_resource_registers(base_config):
    base_config["llm-hosting:platform"] = "gke"
    mocks = RecordingMocks()
    with pytest.raises(ConfigError):
        run_program(base_config, stack="dev", mocks=mocks)
    assert mocks.resources == [] and mocks.invokes == []


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_example_stacks_disable_the_default_providers_that_carry_settings(path):
    # run_program applies the engine's rule, so the evaluation test above fails if a resource
    # or invoke forgets its provider; "*" would also stop awsx/eks components (their own
    # providers have nothing to configure), see tests/test_offline.py.
    disabled = json.loads(read_stack_file(path).config["pulumi:disable-default-providers"])
    assert set(disabled) == {"aws", "aws-native", "kubernetes"}


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_each_platform_gets_only_the_interface_endpoints_it_uses(path):
    stack = read_stack_file(path)
    platform = stack.config["llm-hosting:platform"]
    graph = run_program(stack.config, stack=stack.stack, secret_keys=stack.secret_keys)
    names = {r.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1.")
             for r in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert names == {"s3", *PLATFORMS[platform].interface_endpoints}
    assert ("sagemaker.runtime" in names) is (platform == "sagemaker")
    assert ("ssm" in names) is (platform != "sagemaker")
