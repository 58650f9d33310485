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
from stacks import recorded, run_cached

from components.config import ConfigError
from components.offline import ROOT, SECRET_SIG, Graph, Recorded
from components.platforms import PLATFORMS
from components.stackfile import example_stack_files, read_stack_file
from components.tags import SERVING_TAG_PREFIX as P
from components.tags import SHAPE_TAG
from policies.rules import RULES
from policies.rules._framework import serving_tags, tags_of
from policies.rules.compute import MODEL_FITS_GPU_MEMORY
from policies.rules.secrets import WORKLOAD_TYPES
from policies.rules.tags import taggable_types

SIG = "4dabf18193072939515e22adb298388d"
# The examples by name: stack files a user adds to the project are not these tests' business.
STACKS = example_stack_files(ROOT)
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


def test_every_platform_has_an_example_stack():
    """The pack is proven on every platform only if each one has an example stack."""
    platforms = {read_stack_file(p).config["llm-hosting:platform"] for p in STACKS}
    assert platforms == set(PLATFORMS) == {"sagemaker", "ecs", "eks"}


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
    # The ten policies of issue 8, the fourteen of issue 13 and the four workload rules of
    # issue 17, each with a one-sentence description.
    assert sorted(p.name for p in info.policies) == sorted([
        "gpu-instance-allowlist", "model-fits-gpu-memory", "imdsv2-required",
        "no-plaintext-secrets", "encryption-at-rest", "private-by-default", "required-tags",
        "llm-startup-timeouts", "cost-ceiling", "warm-capacity-in-prod",
        "encryption-customer-managed-keys", "transit-listener-https", "transit-no-classic-elb",
        "compute-no-public-ip", "iam-policy-no-star-on-star", "iam-policy-no-notaction-allow",
        "iam-role-trust-scoped", "iam-role-trust-confused-deputy",
        "s3-bucket-public-access-block", "s3-bucket-no-public-acl", "s3-bucket-no-public-policy",
        "s3-bucket-encryption", "logs-retention-required",
        "workloads-no-privileged-containers", "workloads-non-root",
        "workloads-no-privilege-escalation", "workloads-serving-network-policy"])
    assert all(p.description.endswith(".") and p.description.count(". ") == 0
               for p in info.policies)
    stack_policies = [p.name for p in info.policies if p.policy_type == 2]
    assert stack_policies == ["transit-listener-https", "s3-bucket-encryption", "cost-ceiling",
                              "workloads-serving-network-policy"]
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
    message = ("Launch templates, instances and Karpenter EC2NodeClasses require IMDSv2 session "
               "tokens.\n"
               "metadataOptions.httpTokens is optional; set it to 'required' so instance "
               "credentials are only reachable with IMDSv2 session tokens")
    assert [(d.policy, d.level, d.message) for d in prod] == [
        ("imdsv2-required", "mandatory", message)]
    assert [(d.policy, d.level, d.message) for d in dev] == [
        ("imdsv2-required", "advisory", message)]


def test_secret_wrapped_values_are_judged_by_where_they_land(pack):
    container = {"name": "engine", "user": "10001",
                 "environment": [{"name": "HF_TOKEN", "value": "hf_x"}]}
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
              "model-fits-gpu-memory", "llm-startup-timeouts", "iam-policy-no-star-on-star",
              "iam-policy-no-notaction-allow", "iam-role-trust-scoped",
              "iam-role-trust-confused-deputy", "s3-bucket-public-access-block",
              "s3-bucket-no-public-acl", "s3-bucket-no-public-policy", "logs-retention-required",
              "compute-no-public-ip", "transit-no-classic-elb",
              "encryption-customer-managed-keys"}
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


TOKEN = "hf_" + "x" * 34


def plaintext_token(resources: list[Recorded], env: str) -> tuple[list[Recorded], Expected] | str:
    """HF_TOKEN as a (secret-wrapped) plain environment value in every container environment of
    the stack: ECS task definitions, SageMaker models, inference components with their own
    container, Kubernetes workloads (each container)."""
    out = _copy(resources)
    expected: Expected = set()
    for r in out:
        if r.type == "aws:ecs/taskDefinition:TaskDefinition":
            containers = json.loads(r.inputs["containerDefinitions"])
            for c in containers:
                c.setdefault("environment", []).append({"name": "HF_TOKEN", "value": TOKEN})
                expected.add(("no-plaintext-secrets", r.urn,
                              f"container {c['name']}: environment variable HF_TOKEN is named "
                              "like a credential; DescribeTaskDefinition shows it in plain text: "
                              "pass it through the container's `secrets` (Secrets Manager "
                              "valueFrom)"))
            # The whole JSON document as a Pulumi secret, as a secret-bearing definition arrives.
            r.inputs["containerDefinitions"] = secret(json.dumps(containers))
        elif r.type == "aws:sagemaker/model:Model" and "primaryContainer" in r.inputs:
            env_map = r.inputs["primaryContainer"].setdefault("environment", {})
            env_map["HF_TOKEN"] = secret(TOKEN)
            expected.add(("no-plaintext-secrets", r.urn,
                          "primaryContainer: environment variable HF_TOKEN is named like a "
                          "credential; DescribeModel shows it in plain text to anyone allowed to "
                          "describe it: stage the weights in S3 (weightsUri) so no token is "
                          "needed"))
        elif r.type == "aws-native:sagemaker:InferenceComponent" and \
                "container" in r.inputs.get("specification", {}):
            env_map = r.inputs["specification"]["container"].setdefault("environment", {})
            env_map["HF_TOKEN"] = secret(TOKEN)
            expected.add(("no-plaintext-secrets", r.urn,
                          "specification.container: environment variable HF_TOKEN is named like "
                          "a credential; DescribeInferenceComponent shows it in plain text to "
                          "anyone allowed to describe it: stage the weights in S3 (weightsUri) "
                          "so no token is needed"))
        elif r.type in WORKLOAD_TYPES:
            spec = (r.inputs["spec"] if r.type.endswith(":Pod")
                    else r.inputs["spec"]["template"]["spec"])
            containers = spec.get("initContainers", []) + spec["containers"]
            for c in containers:
                c.setdefault("env", []).append({"name": "HF_TOKEN", "value": secret(TOKEN)})
            expected |= {("no-plaintext-secrets", r.urn,
                          f"container {c['name']}: env HF_TOKEN is named like a credential; its "
                          "value is readable by anyone who can read the pod spec: use "
                          "valueFrom.secretKeyRef") for c in containers}
    return (out, expected) if expected else "no container environment in this stack"


def imds_v1(resources: list[Recorded], env: str) -> tuple[list[Recorded], Expected] | str:
    """httpTokens optional on every launch template and every Karpenter EC2NodeClass."""
    out = _copy(resources)
    expected: Expected = set()
    for r in out:
        if r.type == "aws:ec2/launchTemplate:LaunchTemplate":
            r.inputs.setdefault("metadataOptions", {})["httpTokens"] = "optional"
            expected.add(("imdsv2-required", r.urn,
                          "metadataOptions.httpTokens is optional; set it to 'required' so "
                          "instance credentials are only reachable with IMDSv2 session tokens"))
        elif r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass":
            r.inputs["spec"].setdefault("metadataOptions", {})["httpTokens"] = "optional"
            expected.add(("imdsv2-required", r.urn,
                          "spec.metadataOptions.httpTokens is optional; set it to 'required' so "
                          "node credentials are only reachable with IMDSv2 session tokens"))
    if not expected:
        return "SageMaker manages its instances' metadata service: no launch template to mutate"
    return out, expected


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
                tags.pop(SHAPE_TAG, None)  # the tag would win over the retagged model id
            elif isinstance(tags, list) and any(str(t.get("key", "")).startswith(P)
                                                for t in tags):
                tags[:] = [t for t in tags if t.get("key") != SHAPE_TAG]
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


def _generous_startup(props: dict[str, Any]) -> None:
    """A 70B checkpoint takes longer to start than the model it replaces; the mutation is about
    GPU fit, so the start-up timeouts it might trip are opened up (to what the APIs allow)."""
    params = (props.get("specification") or {}).get("startupParameters")
    if isinstance(params, dict):
        params.update(containerStartupHealthCheckTimeoutInSeconds=3600,
                      modelDataDownloadTimeoutInSeconds=3600)
    if "healthCheckGracePeriodSeconds" in props:
        props["healthCheckGracePeriodSeconds"] = 7200


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
        _both(r, _generous_startup)
    checked = MODEL_FITS_GPU_MEMORY.checks
    return out, {("model-fits-gpu-memory", r.urn, "*") for r in touched if r.type in checked}


def public_endpoint(resources: list[Recorded], env: str) -> tuple[list[Recorded], Expected] | str:
    """The EKS API open to the internet, every load balancer internet-facing, every Kubernetes
    Service a public load balancer."""
    out = _copy(resources)
    expected: Expected = set()
    for r in out:
        if r.type == "eks:index:Cluster":
            r.inputs.update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])
            if env == "dev":
                return "dev allows a public EKS API endpoint (policy config)"
            expected.add(("private-by-default", r.urn,
                          "endpointPublicAccess is true and publicAccessCidrs allows the whole "
                          "internet; turn the public endpoint off or restrict it to your CIDRs"))
        elif r.type == "aws:lb/loadBalancer:LoadBalancer":
            r.inputs["internal"] = False
            expected.add(("private-by-default", r.urn,
                          "internal is not true: this environment allows only internal load "
                          "balancers; set internal=true (or allowPublicLoadBalancers in the "
                          "policy config)"))
        elif r.type == "kubernetes:core/v1:Service":
            r.inputs["spec"]["type"] = "LoadBalancer"
            expected.add(("private-by-default", r.urn,
                          "Service of type LoadBalancer is internet-facing; annotate "
                          "service.beta.kubernetes.io/aws-load-balancer-scheme: internal"))
            # Without a load balancer class the in-tree cloud provider makes a Classic LB.
            expected.add(("transit-no-classic-elb", r.urn,
                          "Service of type LoadBalancer without spec.loadBalancerClass or the "
                          "service.beta.kubernetes.io/aws-load-balancer-type annotation: the "
                          "in-tree cloud provider creates a Classic Load Balancer; set "
                          "loadBalancerClass: service.k8s.aws/nlb"))
    if not expected:
        return ("a SageMaker endpoint has no listener of its own: it is reached through the "
                "IAM-authenticated InvokeEndpoint API")
    return out, expected


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
    for policy, urn in {(p, u) for p, u, _ in expected}:
        got = sorted(d for p, u, _, d in found if (p, u) == (policy, urn))
        want = sorted(d for p, u, d in expected if (p, u) == (policy, urn))
        if want == ["*"]:  # sizing numbers differ per stack; the instance and model do not
            assert got and all(SEVENTY_B in g and "g5.xlarge offers 1" in g
                                 and "GiB usable per GPU"
                               in g for g in got), got
        else:
            assert got == want


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
        mutated = run_cached(config, stack=stack.stack, secret_keys=stack.secret_keys)
    except ConfigError as err:
        pytest.fail(f"config with maxReplicas 400 rejected: {err}")
    baseline = keyed(analyze_all(pack, graph.resources, env))
    found = keyed(analyze_all(pack, mutated.resources, env)) - baseline
    budget = CONFIGS[env]["cost-ceiling"]["maxHourlyUsd"]
    assert [(p, u) for p, u, _, _ in found] == [("cost-ceiling", "")]
    detail = next(iter(found))[3]
    assert detail.startswith("worst case is $")
    assert f"over this environment's budget of ${budget:.2f}/hour: capacity the resources " \
           "allow $" in detail
    assert detail.endswith("; lower maxSize, NodePool limits or maxReplicas, or raise the "
                           "budget in the policy config")
    assert f"{models[0]['name']} $" in detail


def _has_key(value: Any, key: str) -> bool:
    """`key` anywhere in `value`, outside tag maps (whose keys are user data: `environment`)."""
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for k, v in value.items()
                                   if k not in ("tags", "labels", "annotations"))
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


#: (property anywhere in a resource's inputs, the rule that must check that resource's type;
#: `a|b`: either rule). SNS topics, secrets and AMP workspaces are always encrypted, so their
#: `kmsKeyId` is judged by the customer-managed-key rule alone.
COVERAGE = [
    ("instanceType", "gpu-instance-allowlist"), ("instanceTypes", "gpu-instance-allowlist"),
    ("productionVariants", "llm-startup-timeouts"), ("productionVariants", "encryption-at-rest"),
    ("metadataOptions", "imdsv2-required"), ("containerDefinitions", "no-plaintext-secrets"),
    ("environment", "no-plaintext-secrets"), ("env", "no-plaintext-secrets"),
    ("startupProbe", "llm-startup-timeouts"), ("healthCheckGracePeriodSeconds",
                                               "llm-startup-timeouts"),
    ("blockDeviceMappings", "encryption-at-rest"),
    ("kmsKeyId", "encryption-at-rest|encryption-customer-managed-keys"),
]


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_every_resource_type_the_program_registers_is_covered(path):
    """When a platform moves a resource to another type (pulumi-aws -> aws-native, a new
    workload kind), the rules must follow: a property a rule judges, found on a type no check
    of that rule covers, means the rule silently stopped applying."""
    graph, _ = recorded(path)
    by_name = {r.name: r for r in RULES}
    uncovered = set()
    for r in graph.resources:
        if r.type.startswith(("pulumi:", "llm-hosting:", "kubernetes:helm.sh/")):
            continue
        for prop, rule in COVERAGE:
            if _has_key(r.inputs, prop) and all(r.type not in by_name[name].checks
                                                for name in rule.split("|")):
                uncovered.add((rule, r.type, prop))
        if isinstance(r.inputs.get("tags"), (dict, list)) and \
                r.type not in taggable_types():
            uncovered.add(("required-tags", r.type, "tags"))
    assert sorted(uncovered) == []


def test_every_serving_resource_carries_the_project_tags(pack):
    """The tags the cost and fit policies read sit next to the project's tag set."""
    for path in STACKS:
        graph, _ = recorded(path)
        tagged = [r for r in graph.resources if serving_tags(r.inputs)]
        assert tagged, f"{path.name}: no resource carries llm-hosting/* serving tags"
        for r in tagged:
            if r.type.startswith("aws"):
                assert tags_of(r.inputs).get("project") == "llm-hosting", r.name


def _unwrapped(value: Any, needle: str) -> bool:
    """Whether `needle` occurs in `value` outside every secret-wrapped subtree."""
    if isinstance(value, dict):
        return value.get(SIG) != SECRET_SIG and any(_unwrapped(v, needle)
                                                    for v in value.values())
    if isinstance(value, list):
        return any(_unwrapped(v, needle) for v in value)
    return isinstance(value, str) and needle in value


def _program_with(path: Path, change: Callable[[dict[str, Any]], None],
                  secrets: dict[str, str] | None = None) -> Graph:
    """The example stack through the program with its first model changed by `change`."""
    stack = read_stack_file(path)
    models = json.loads(stack.config["llm-hosting:models"])
    change(models[0])
    config = {**stack.config, "llm-hosting:models": json.dumps(models), **(secrets or {})}
    return run_cached(config, stack=stack.stack,
                       secret_keys=(*stack.secret_keys, *(secrets or {})))


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_hub_token_from_the_program_reaches_no_container_environment_but_sagemakers(pack, path):
    """The program's own secret handling, sent wrapped as the engine sends it: ECS resolves the
    token from Secrets Manager and Kubernetes from a Secret (no diagnostic); SageMaker can only
    put it in the model environment, which the pack reports (the documented trade-off)."""
    graph, env = recorded(path)

    def from_hub(model: dict[str, Any]) -> None:
        model.pop("weightsUri", None)

    mutated = _program_with(path, from_hub, {"llm-hosting:hfToken": TOKEN})
    consumers = [r for r in mutated.resources if "HF_TOKEN" in json.dumps(r.inputs) and r.type in
                 ("aws:ecs/taskDefinition:TaskDefinition", "aws:sagemaker/model:Model",
                  *WORKLOAD_TYPES)]
    assert consumers, "no serving container reads HF_TOKEN: the program ignored the token"
    leaks = [r.name for r in mutated.resources if _unwrapped(r.inputs, TOKEN)]
    assert leaks == [], "the token appears outside a secret-wrapped value"
    found = keyed(analyze_all(pack, mutated.resources, env)) - \
        keyed(analyze_all(pack, graph.resources, env))
    if read_stack_file(path).config["llm-hosting:platform"] != "sagemaker":
        assert found == set()
        return
    (model,) = [r for r in mutated.resources if r.type == "aws:sagemaker/model:Model"]
    assert {(p, u, d) for p, u, _, d in found} == {(
        "no-plaintext-secrets", model.urn,
        "primaryContainer: environment variable HF_TOKEN is named like a credential; "
        "DescribeModel shows it in plain text to anyone allowed to describe it: stage the "
        "weights in S3 (weightsUri) so no token is needed")}


CUSTOM_SHAPE = {"parameters": 7.2, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32,
                "kvHeads": 8, "headDim": 128, "vocabSize": 32000, "maxPositionEmbeddings": 32768}


def _strip_shape_tag(resources: list[Recorded]) -> list[Recorded]:
    out = _copy(resources)
    for r in out:
        for props in (r.inputs, r.outputs or {}):
            for holder in (props, props.get("spec") or {}):
                tags = holder.get("tags")
                if isinstance(tags, dict):
                    tags.pop(SHAPE_TAG, None)
                elif isinstance(tags, list):
                    tags[:] = [t for t in tags if t.get("key") != SHAPE_TAG]
            # Kubernetes objects carry the descriptor as annotations.
            annotations = (props.get("metadata") or {}).get("annotations")
            if isinstance(annotations, dict):
                annotations.pop(SHAPE_TAG, None)
    return out


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_custom_shape_model_is_sized_from_its_shape_tag_in_prod(pack, path):
    """A model configured with `shape:` (not in the facts catalog) passes prod's mandatory
    rules because every serving resource carries `llm-hosting/shape`; without the tag the pack
    could not size it and would fail the preview."""

    def custom(model: dict[str, Any]) -> None:
        model.update(modelId="acme/custom-7b", shape=CUSTOM_SHAPE)

    graph = _program_with(path, custom)
    serving = [r for r in graph.resources
               if serving_tags(r.inputs).get(f"{P}model-id") == "acme/custom-7b"]
    assert serving and all(SHAPE_TAG in serving_tags(r.inputs) for r in serving)
    found = analyze_all(pack, graph.resources, "prod")
    sized = {"model-fits-gpu-memory", "cost-ceiling", "llm-startup-timeouts"}
    assert [f"{d.policy} {d.urn}: {d.detail}" for d in found if d.policy in sized] == []

    untagged = analyze_all(pack, _strip_shape_tag(graph.resources), "prod")
    fits = {d.urn for d in untagged if d.policy == "model-fits-gpu-memory"}
    assert fits == {r.urn for r in serving if r.type in MODEL_FITS_GPU_MEMORY.checks}
    assert all("model acme/custom-7b is not in the facts catalog" in d.detail for d in untagged
               if d.policy == "model-fits-gpu-memory")
    assert any(d.policy == "cost-ceiling" and "cannot cost" in d.detail for d in untagged)


def test_the_pack_needs_only_its_own_requirements():
    """policies/venv holds pulumi-policy, pulumi and pydantic (policies/requirements.txt), not
    the program's provider SDKs: importing the rules must not reach for them."""
    import subprocess
    import sys

    blocked = ("pulumi_aws", "pulumi_aws_native", "pulumi_awsx", "pulumi_eks",
               "pulumi_kubernetes", "boto3", "botocore")
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("not in policies/requirements.txt: " + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(ROOT)!r})
from policies.rules import RULES
print(len([rule.policy() for rule in RULES]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT / "policies", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(RULES))
    requirements = (ROOT / "policies" / "requirements.txt").read_text()
    assert all(name in requirements for name in ("pulumi-policy", "pulumi>=", "pydantic"))


@pytest.mark.parametrize("certificate", [None, "arn:aws:acm:us-east-1:123456789012:"
                                               "certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"])
def test_sagemaker_stack_with_the_gateway_on_passes_the_prod_rules(pack, certificate):
    """The example stacks cover the gateway on ECS (staging) and EKS (prod); dev has it off, so
    run dev with it on (Fargate, its own ALB, SSM bundle, master key) under prod enforcement:
    its internal ALB passes once `gateway.certificateArn` makes it HTTPS-only."""
    stack = read_stack_file(ROOT / "Pulumi.dev.yaml")
    gateway_config = {"enabled": True, **({"certificateArn": certificate} if certificate else {})}
    config = {**stack.config, "llm-hosting:gateway": json.dumps(gateway_config)}
    graph = run_cached(config, stack="dev", secret_keys=stack.secret_keys)
    assert graph.of_type("llm-hosting:gateway:FargateGateway")
    found = analyze_all(pack, graph.resources, "prod")
    gateway = [f"{d.policy} {d.urn.rsplit('::', 1)[1]}: {d.detail}" for d in found
               if d.level == "mandatory" and "gateway" in d.urn]
    if certificate:
        assert gateway == []
        listener, = graph.of_type("aws:lb/listener:Listener")
        assert (listener.inputs["port"], listener.inputs["protocol"],
                listener.inputs["certificateArn"]) == (443, "HTTPS", certificate)
    else:
        assert gateway == ["transit-listener-https sagemaker-gateway-http: HTTP listener on "
                           "port 80 of the internal load balancer sagemaker-gateway-alb serves "
                           "plain text; this environment requires HTTPS on every listener: "
                           "listen on HTTPS with an ACM certificate (or redirect to it)"]


PROD = ROOT / "Pulumi.prod.yaml"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"


@pytest.mark.parametrize("certificate", [None, CERT])
def test_prod_internal_albs_need_the_eks_certificate(pack, certificate):
    """Prod's config refuses plain HTTP even on internal load balancers: `eks.certificateArn`
    makes every model's Ingress, and the gateway's, listen on HTTPS 443 only."""
    stack = read_stack_file(PROD)
    eks = {**json.loads(stack.config["llm-hosting:eks"]), "ingress": "internal-alb",
           **({"certificateArn": certificate} if certificate else {})}
    graph = run_cached({**stack.config, "llm-hosting:eks": json.dumps(eks)},
                        stack=stack.stack, secret_keys=stack.secret_keys)
    ingresses = graph.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert len(ingresses) == 3  # the two models' and the gateway's
    found = analyze_all(pack, graph.resources, "prod")
    mandatory = {(d.policy, d.urn) for d in found if d.level == "mandatory"}
    if certificate:
        assert mandatory == set()
        for ingress in ingresses:
            ann = ingress.inputs["metadata"]["annotations"]
            assert ann["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
            assert ann["alb.ingress.kubernetes.io/certificate-arn"] == CERT
    else:
        assert mandatory == {("transit-listener-https", i.urn) for i in ingresses}
