"""The pack through the real analyzer protocol, over every example stack and mutated copies.

The pack runs as the CLI runs it (a subprocess serving gRPC, see policy_harness.py), started once
for the module. Each example stack whose platform is built is recorded once under the offline
mocks; its resources go through `Analyze` (inputs, secrets still wrapped) and the whole stack
through `AnalyzeStack` (outputs), with the stack's environment config reconciled and validated
the way the CLI does it. Mutations change one thing and must add exactly the expected
diagnostics, compared against the unmutated run of the same stack.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import empty_pb2
from policy_harness import Analyzer, Diagnostic

from components.config import ConfigError
from components.offline import ROOT, SECRET_SIG, Graph, Recorded, run_program
from components.platforms import PLATFORMS
from components.stackfile import read_stack_file, stack_files
from components.tags import SERVING_TAG_PREFIX as P
from policies.rules import RULES
from policies.rules._framework import serving_tags, tags_of
from policies.rules.compute import MODEL_FITS_GPU_MEMORY

SIG = "4dabf18193072939515e22adb298388d"
STACKS = stack_files(ROOT)
CONFIGS = {env: json.loads((ROOT / "policies" / f"config.{env}.json").read_text())
           for env in ("dev", "staging", "prod")}


def secret(value: Any) -> dict[str, Any]:
    """A value as the engine sends a Pulumi secret to an analyzer."""
    return {SIG: SECRET_SIG, "value": value}


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    yield analyzer
    analyzer.stop()
    assert not analyzer.engine.logs, "the pack logged errors through the engine"


_GRAPHS: dict[str, Graph] = {}


def recorded(path: Path) -> tuple[Graph, str]:
    """The stack's graph (recorded once per session) and its environment; skips unbuilt ones."""
    stack = read_stack_file(path)
    platform = stack.config["llm-hosting:platform"]
    if platform not in PLATFORMS:
        pytest.skip(f"{path.name}: platform '{platform}' is not built yet")
    if path.name not in _GRAPHS:
        _GRAPHS[path.name] = run_program(stack.config, stack=stack.stack,
                                         secret_keys=stack.secret_keys)
    return _GRAPHS[path.name], stack.config["llm-hosting:environment"]


def analyze_all(pack: Analyzer, resources: list[Recorded], env: str) -> list[Diagnostic]:
    pack.configure(CONFIGS[env])
    return pack.analyze(resources, resources) + pack.analyze_stack(resources)


def keyed(diagnostics: list[Diagnostic]) -> set[tuple[str, str, str, str]]:
    return {(d.policy, d.urn, d.level, d.detail) for d in diagnostics}


# --------------------------------------------------------------------------------------------
# handshake and configuration


def test_analyzer_info_lists_every_policy_and_its_config_schema(pack):
    info = pack.info
    assert info.name == "llm-hosting" and info.supportsConfig
    assert [p.name for p in info.policies] == [r.name for r in RULES]
    stack_policies = [p.name for p in info.policies if p.policy_type == 2]
    assert stack_policies == ["cost-ceiling"]
    schemas = pack.schemas()
    assert schemas["cost-ceiling"]["properties"]["maxHourlyUsd"]["default"] == 100
    assert schemas["gpu-instance-allowlist"]["properties"]["allowedFamilies"]["default"] == ["*"]
    assert pack.stub.GetPluginInfo(empty_pb2.Empty()).version


@pytest.mark.parametrize("env", sorted(CONFIGS))
def test_environment_config_files_validate_against_the_pack_schema(pack, env):
    reconciled = pack.reconcile(CONFIGS[env])
    levels = {level for level, _ in reconciled.values()}
    if env == "dev":
        assert levels == {"advisory"}
    if env == "prod":
        assert levels == {"mandatory"}
    if env == "staging":
        assert reconciled["warm-capacity-in-prod"][0] == "advisory"
        assert reconciled["no-plaintext-secrets"][0] == "mandatory"


def test_a_config_file_the_cli_would_reject_is_rejected(pack):
    bad = {"all": "mandatory", "cost-ceiling": {"maxHourlyUsd": "ten"},
           "gpu-instance-allowlist": {"allowedFamilies": ["G5!"]}}
    with pytest.raises(ValueError) as err:
        pack.reconcile(bad)
    assert str(err.value) == (
        "gpu-instance-allowlist: 'G5!' does not match '^(\\\\*|[a-z][a-z0-9-]*)$'; "
        "cost-ceiling: 'ten' is not of type 'number'"
    )


def _launch_template(tokens: str) -> Recorded:
    return Recorded(type="aws:ec2/launchTemplate:LaunchTemplate", name="lt",
                    urn="urn:pulumi:prod::llm-hosting::aws:ec2/launchTemplate:LaunchTemplate::lt",
                    inputs={"instanceType": "g6e.xlarge",
                            "metadataOptions": {"httpTokens": tokens},
                            "tags": {"project": "p", "stack": "s", "environment": "prod",
                                     "managed-by": "pulumi"}})


def test_enforcement_comes_from_the_environment_config(pack):
    lt = _launch_template("optional")
    pack.configure(CONFIGS["prod"])
    prod = pack.analyze([lt])
    pack.configure(CONFIGS["dev"])
    dev = pack.analyze([lt])
    message = ("Launch templates and Karpenter EC2NodeClasses require IMDSv2 session tokens.\n"
               "metadataOptions.httpTokens is optional; set it to 'required' so instance "
               "credentials are only reachable with IMDSv2 session tokens")
    assert [(d.policy, d.level, d.message) for d in prod] == [
        ("imdsv2-required", "mandatory", message)]
    assert [(d.policy, d.level, d.message) for d in dev] == [
        ("imdsv2-required", "advisory", message)]


def test_secret_wrapped_values_are_judged_by_where_they_land(pack):
    container = {"name": "engine", "environment": [{"name": "HF_TOKEN", "value": "hf_x"}]}
    task = Recorded(type="aws:ecs/taskDefinition:TaskDefinition", name="td",
                    urn="urn:pulumi:prod::llm-hosting::aws:ecs/taskDefinition:TaskDefinition::td",
                    inputs={"containerDefinitions": secret(json.dumps([container])),
                            "tags": {"project": "p", "stack": "s", "environment": "prod",
                                     "managed-by": "pulumi"}})
    pack.configure(CONFIGS["prod"])
    assert [(d.policy, d.detail) for d in pack.analyze([task])] == [
        ("no-plaintext-secrets",
         "container engine: environment variable HF_TOKEN is named like a credential; "
         "DescribeTaskDefinition shows it in plain text: pass it through the container's "
         "`secrets` (Secrets Manager valueFrom)")]


def test_unknown_values_during_preview_are_reported_not_guessed(pack):
    lt = _launch_template("04da6b54-80e4-46f7-96ec-b56ff0331ba9")
    pack.configure(CONFIGS["prod"])
    found = pack.analyze([lt])
    assert [(d.policy, d.level) for d in found] == [("imdsv2-required", "advisory")]
    assert found[0].message.startswith(
        "can't run policy 'imdsv2-required' from policy pack 'llm-hosting@v0.0.1' during preview")


# --------------------------------------------------------------------------------------------
# example stacks


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_example_stack_gives_no_mandatory_violation(pack, path):
    graph, env = recorded(path)
    found = analyze_all(pack, graph.resources, env)
    mandatory = [f"{d.policy} {d.urn}: {d.detail}" for d in found if d.level == "mandatory"]
    assert mandatory == []
    # Under its environment's config every resource was analyzed by a configured pack.
    assert set(pack.configured) == {r.name for r in RULES}


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_example_stack_passes_the_prod_rules_that_do_not_depend_on_environment(pack, path):
    """Dev and staging run advisory or relaxed; the security rules still hold for them."""
    graph, _ = recorded(path)
    found = analyze_all(pack, graph.resources, "prod")
    strict = {"imdsv2-required", "no-plaintext-secrets", "encryption-at-rest", "required-tags",
              "model-fits-gpu-memory", "llm-startup-timeouts"}
    assert [f"{d.policy} {d.urn}: {d.detail}" for d in found if d.policy in strict] == []


# --------------------------------------------------------------------------------------------
# mutations: each adds exactly the expected diagnostics

Expected = set[tuple[str, str, str]]  # (policy, urn, detail)
Mutation = Callable[[list[Recorded], str], tuple[list[Recorded], Expected] | str]


def _copy(resources: list[Recorded]) -> list[Recorded]:
    return [replace(r, inputs=copy.deepcopy(r.inputs), outputs=copy.deepcopy(r.outputs))
            for r in resources]


def _both(r: Recorded, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply one change to inputs and outputs (Analyze reads inputs, AnalyzeStack outputs)."""
    change(r.inputs)
    if r.outputs:
        change(r.outputs)


def plaintext_token(resources: list[Recorded], env: str) -> tuple[list[Recorded], Expected] | str:
    out = _copy(resources)
    for r in out:
        if r.type == "aws:ecs/taskDefinition:TaskDefinition":
            containers = json.loads(r.inputs["containerDefinitions"])
            containers[0].setdefault("environment", []).append(
                {"name": "HF_TOKEN", "value": "hf_" + "x" * 34})
            r.inputs["containerDefinitions"] = secret(json.dumps(containers))
            return out, {("no-plaintext-secrets", r.urn,
                          f"container {containers[0]['name']}: environment variable HF_TOKEN is "
                          "named like a credential; DescribeTaskDefinition shows it in plain "
                          "text: pass it through the container's `secrets` (Secrets Manager "
                          "valueFrom)")}
        if r.type == "aws:sagemaker/model:Model" and "primaryContainer" in r.inputs:
            env_map = r.inputs["primaryContainer"].setdefault("environment", {})
            env_map["HF_TOKEN"] = secret("hf_" + "x" * 34)
            return out, {("no-plaintext-secrets", r.urn,
                          "primaryContainer: environment variable HF_TOKEN is named like a "
                          "credential; DescribeModel shows it in plain text to anyone allowed to "
                          "describe it: stage the weights in S3 (weightsUri) so no token is "
                          "needed")}
        if r.type == "aws-native:sagemaker:InferenceComponent" and \
                "container" in r.inputs.get("specification", {}):
            env_map = r.inputs["specification"]["container"].setdefault("environment", {})
            env_map["HF_TOKEN"] = secret("hf_" + "x" * 34)
            return out, {("no-plaintext-secrets", r.urn,
                          "specification.container: environment variable HF_TOKEN is named like "
                          "a credential; DescribeInferenceComponent shows it in plain text to "
                          "anyone allowed to describe it: stage the weights in S3 (weightsUri) "
                          "so no token is needed")}
        if r.type == "kubernetes:apps/v1:Deployment":
            containers = r.inputs["spec"]["template"]["spec"]["containers"]
            containers[0].setdefault("env", []).append(
                {"name": "HF_TOKEN", "value": secret("hf_" + "x" * 34)})
            return out, {("no-plaintext-secrets", r.urn,
                          f"container {containers[0]['name']}: env HF_TOKEN is named like a "
                          "credential; its value is readable by anyone who can read the pod "
                          "spec: use valueFrom.secretKeyRef")}
    return "no serving container definition in this stack"


def imds_v1(resources: list[Recorded], env: str) -> tuple[list[Recorded], Expected] | str:
    out = _copy(resources)
    for r in out:
        if r.type == "aws:ec2/launchTemplate:LaunchTemplate":
            r.inputs.setdefault("metadataOptions", {})["httpTokens"] = "optional"
            return out, {("imdsv2-required", r.urn,
                          "metadataOptions.httpTokens is optional; set it to 'required' so "
                          "instance credentials are only reachable with IMDSv2 session tokens")}
        if r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass":
            r.inputs["spec"].setdefault("metadataOptions", {})["httpTokens"] = "optional"
            return out, {("imdsv2-required", r.urn,
                          "spec.metadataOptions.httpTokens is optional; set it to 'required' so "
                          "node credentials are only reachable with IMDSv2 session tokens")}
    return "SageMaker manages its instances' metadata service: no launch template to mutate"


SEVENTY_B = "meta-llama/Llama-3.1-70B-Instruct"


def _retag(props: dict[str, Any]) -> None:
    """70B in 4-bit AWQ (~37 GiB of weights) on one 24 GB A10G: it cannot fit."""
    change = {f"{P}model-id": SEVENTY_B, f"{P}quantization": "awq",
              f"{P}gpus-per-replica": "1", f"{P}instance-type": "g5.xlarge"}
    for holder in (props, props.get("spec") or {}, (props.get("metadata") or {})):
        for key in ("tags", "annotations"):
            tags = holder.get(key)
            if isinstance(tags, dict) and any(k.startswith(P) for k in tags):
                tags.update(change)
            elif isinstance(tags, list) and any(str(t.get("key", "")).startswith(P)
                                                for t in tags):
                for t in tags:
                    if t.get("key") in change:
                        t["value"] = change[t["key"]]
    if "instanceType" in props:
        props["instanceType"] = "g5.xlarge"
    for v in props.get("productionVariants") or []:
        v["instanceType"] = "ml.g5.xlarge"
    if "instanceTypes" in props:
        props["instanceTypes"] = ["g5.xlarge"]
    overrides = (((props.get("mixedInstancesPolicy") or {}).get("launchTemplate") or {})
                 .get("overrides") or [])
    for o in overrides:
        o["instanceType"] = "g5.xlarge"
    requirements = (((props.get("spec") or {}).get("template") or {}).get("spec") or {}) \
        .get("requirements")
    if isinstance(requirements, list):
        requirements[:] = [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                            "values": ["g5.xlarge"]}]


def seventy_b_on_24gb(resources: list[Recorded], env: str
                      ) -> tuple[list[Recorded], Expected] | str:
    out = _copy(resources)
    first_model = next((serving_tags(r.inputs).get("model") for r in out
                        if serving_tags(r.inputs)), None)
    if first_model is None:
        return "no resource carries serving tags"
    touched = [r for r in out if serving_tags(r.inputs).get("model") == first_model]
    for r in touched:
        _both(r, _retag)
    checked = MODEL_FITS_GPU_MEMORY.checks
    return out, {("model-fits-gpu-memory", r.urn, "*") for r in touched if r.type in checked}


def public_endpoint(resources: list[Recorded], env: str) -> tuple[list[Recorded], Expected] | str:
    out = _copy(resources)
    for r in out:
        if r.type == "eks:index:Cluster":
            r.inputs.update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])
            if env == "dev":
                return "dev allows a public EKS API endpoint (policy config)"
            return out, {("private-by-default", r.urn,
                          "endpointPublicAccess is true and publicAccessCidrs allows the whole "
                          "internet; turn the public endpoint off or restrict it to your CIDRs")}
        if r.type == "aws:lb/loadBalancer:LoadBalancer":
            r.inputs["internal"] = False
            return out, {("private-by-default", r.urn,
                          "internal is not true: this environment allows only internal load "
                          "balancers; set internal=true (or allowPublicLoadBalancers in the "
                          "policy config)")}
    return ("a SageMaker endpoint has no listener of its own: it is reached through the "
            "IAM-authenticated InvokeEndpoint API")


MUTATIONS: dict[str, Mutation] = {
    "plaintext-token": plaintext_token,
    "imdsv1": imds_v1,
    "70b-on-24gb-gpu": seventy_b_on_24gb,
    "public-endpoint": public_endpoint,
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_mutation_adds_exactly_the_expected_violations(pack, path, mutation):
    graph, env = recorded(path)
    result = MUTATIONS[mutation](graph.resources, env)
    if isinstance(result, str):
        pytest.skip(f"{path.name}: {result}")
    mutated, expected = result
    baseline = keyed(analyze_all(pack, graph.resources, env))
    found = keyed(analyze_all(pack, mutated, env)) - baseline
    level = "advisory" if env == "dev" else "mandatory"
    assert {(p, u) for p, u, lvl, _ in found} == {(p, u) for p, u, _ in expected}
    assert {lvl for _, _, lvl, _ in found} == {level}
    for policy, urn, detail in expected:
        got = [d for p, u, _, d in found if (p, u) == (policy, urn)]
        if detail == "*":  # sizing numbers differ per stack; the instance and model do not
            assert all(SEVENTY_B in g and "g5.xlarge offers 20.1 GiB usable per GPU" in g
                       for g in got), got
        else:
            assert got == [detail]


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_over_budget_max_replicas_gives_one_cost_violation(pack, path):
    """Through the program: raising maxReplicas in the stack config must reach the serving tags
    the cost policy reads, and the stack policy must then exceed the environment's budget."""
    graph, env = recorded(path)
    stack = read_stack_file(path)
    models = json.loads(stack.config["llm-hosting:models"])
    models[0]["maxReplicas"] = 400
    config = {**stack.config, "llm-hosting:models": json.dumps(models)}
    try:
        mutated = run_program(config, stack=stack.stack, secret_keys=stack.secret_keys)
    except ConfigError as err:
        pytest.fail(f"config with maxReplicas 400 rejected: {err}")
    baseline = keyed(analyze_all(pack, graph.resources, env))
    found = keyed(analyze_all(pack, mutated.resources, env)) - baseline
    budget = CONFIGS[env]["cost-ceiling"]["maxHourlyUsd"]
    assert [(p, u) for p, u, _, _ in found] == [("cost-ceiling", "")]
    detail = next(iter(found))[3]
    assert detail.startswith("worst case at max replicas is $")
    assert detail.endswith(f"over this environment's budget of ${budget:.2f}/hour; lower "
                           "maxReplicas or raise the budget in the policy config")
    assert f"{models[0]['name']} $" in detail


def test_every_serving_resource_carries_the_project_tags(pack):
    """The tags the cost and fit policies read sit next to the project's tag set."""
    for path in STACKS:
        stack = read_stack_file(path)
        if stack.config["llm-hosting:platform"] not in PLATFORMS:
            continue
        graph, _ = recorded(path)
        tagged = [r for r in graph.resources if serving_tags(r.inputs)]
        assert tagged, f"{path.name}: no resource carries llm-hosting/* serving tags"
        for r in tagged:
            if r.type.startswith("aws"):
                assert tags_of(r.inputs).get("project") == "llm-hosting", r.name
