"""Karpenter objects: valid against the real CRDs, sized so a pool only launches GPUs that fit."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from pydantic.alias_generators import to_camel

from components.config import ConfigError, EksConfig
from components.eks import nodepool
from components.eks.labels import GPU_TAINT_KEY, MODEL_LABEL, NODE_ROLE_LABEL
from components.facts import GPU_INSTANCES, GpuInstance
from components.platforms import parse_config
from components.sizing import estimate_memory
from tests.conftest import crd_schema

SNAPSHOT = "snap-0123456789abcdef0"


def eks(**options: Any) -> EksConfig:
    """`llm-hosting:eks` as the user writes it (camelCase keys)."""
    return EksConfig.model_validate({to_camel(k): v for k, v in options.items()})


def stack(*models: dict[str, Any], environment: str = "prod"):
    raw = {
        "aws:region": "us-east-1",
        "llm-hosting:environment": environment,
        "llm-hosting:platform": "eks",
        "llm-hosting:models": list(models),
    }
    return parse_config(
        {k: v if isinstance(v, str) else __import__("json").dumps(v) for k, v in raw.items()},
        project="llm-hosting", stack=environment,
    )


LLAMA_70B_FP16 = {"name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct",
                  "gpusPerReplica": 8, "maxInputTokens": 3072, "maxTotalTokens": 4096,
                  "minReplicas": 1, "maxReplicas": 2,
                  "weightsUri": "s3://weights/llama-3.3-70b/"}
LLAMA_8B_SPOT = {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
                 "minReplicas": 2, "maxReplicas": 6, "capacity": "spot",
                 "weightsUri": "s3://weights/llama-3.1-8b/"}


@pytest.fixture(scope="module")
def models():
    cfg = stack(LLAMA_70B_FP16, LLAMA_8B_SPOT)
    return {m.name: m for m in cfg.models}


@pytest.fixture(scope="module")
def nodepool_schema(request):
    return crd_schema("karpenter.sh_nodepools.yaml")


@pytest.fixture(scope="module")
def nodeclass_schema():
    return crd_schema("karpenter.k8s.aws_ec2nodeclasses.yaml")


def validate(obj: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(schema).validate(obj)


# --- Karpenter label semantics, evaluated on the NodePool dict itself --------------------------

def instance_labels(i: GpuInstance) -> dict[str, str]:
    """The well-known labels Karpenter puts on an instance type
    (https://karpenter.sh/docs/reference/instance-types/)."""
    return {
        "karpenter.k8s.aws/instance-family": i.family,
        "karpenter.k8s.aws/instance-category": i.family[0],
        "karpenter.k8s.aws/instance-gpu-count": str(i.gpu_count),
        "karpenter.k8s.aws/instance-gpu-memory": str(i.gpu_memory_mib),
        "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
        "node.kubernetes.io/instance-type": i.name,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
    }


def satisfies(labels: dict[str, str], requirements: list[dict[str, Any]]) -> bool:
    for r in requirements:
        if r["key"] not in labels:
            continue  # capacity type and zone are per offering, not per instance type
        value = labels[r["key"]]
        match r["operator"]:
            case "In":
                ok = value in r["values"]
            case "NotIn":
                ok = value not in r["values"]
            case "Gt":
                ok = int(value) > int(r["values"][0])
            case "Lt":
                ok = int(value) < int(r["values"][0])
            case op:
                raise AssertionError(f"unexpected operator {op}")
        if not ok:
            return False
    return True


def launchable(pool: dict[str, Any]) -> list[GpuInstance]:
    reqs = pool["spec"]["template"]["spec"]["requirements"]
    return [i for i in GPU_INSTANCES.values() if satisfies(instance_labels(i), reqs)]


# --- schema validity ----------------------------------------------------------------------------

@pytest.mark.parametrize("cold_start", ["soci-parallel-pull", "bottlerocket-snapshot"])
def test_objects_validate_against_the_karpenter_crds(models, nodepool_schema, nodeclass_schema,
                                                    cold_start):
    cfg = eks(cold_start=cold_start,
                    image_snapshot_id=SNAPSHOT if cold_start != "soci-parallel-pull" else None)
    for model in models.values():
        validate(nodepool.node_pool(model, cfg), nodepool_schema)
        validate(nodepool.ec2_node_class(
            model, cfg, cluster_name="llm-hosting-prod", instance_profile="profile",
            tags={"model": model.name, "llm-hosting/model-id": model.spec.model_id},
        ), nodeclass_schema)


def test_schema_validation_rejects_what_the_api_server_would(models, nodepool_schema,
                                                             nodeclass_schema):
    pool = nodepool.node_pool(models["llama-8b"], eks())
    pool["spec"]["disruption"]["budgets"] = [{"nodes": "ten percent"}]
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        validate(pool, nodepool_schema)
    node_class = nodepool.ec2_node_class(models["llama-8b"], eks(), cluster_name="c",
                                         instance_profile="p", tags={})
    node_class["spec"]["metadataOptions"]["httpTokens"] = "sometimes"
    with pytest.raises(jsonschema.ValidationError, match="is not one of"):
        validate(node_class, nodeclass_schema)


def test_node_class_tags_avoid_keys_the_crd_reserves(models, nodeclass_schema):
    """The CRD's CEL rules (not checked by jsonschema) reserve some tag keys; read them from it."""
    rules = [v["rule"] for v in nodeclass_schema["properties"]["spec"]["properties"]["tags"]
             ["x-kubernetes-validations"]]
    exact = {m for r in rules for m in re.findall(r"k\s*!=\s*'([^']+)'", r) if m}
    prefixes = {m for r in rules for m in re.findall(r"startsWith\('([^']+)'\)", r)}
    assert "karpenter.sh/nodepool" in exact and "kubernetes.io/cluster" in prefixes
    from components.tags import Naming
    naming = Naming("llm-hosting", "prod", "prod", {"team": "ml"})
    for model in models.values():
        tags = nodepool.ec2_node_class(model, eks(), cluster_name="c",
                                       instance_profile="p",
                                       tags=naming.serving_tags(model, "eks"))["spec"]["tags"]
        assert tags["model"] == model.name
        assert not exact & set(tags)
        assert not [k for k in tags for p in prefixes if k.startswith(p)]


@pytest.mark.parametrize("cold_start", ["soci-parallel-pull", "bottlerocket-snapshot"])
def test_ami_alias_passes_the_crds_cel_rules(models, nodeclass_schema, cold_start):
    """The alias rules are CEL (`x-kubernetes-validations`), which jsonschema skips: evaluate
    the format regex, the family list and the amiFamily/alias agreement read from the CRD."""
    spec_schema = nodeclass_schema["properties"]["spec"]
    alias_rules = [v["rule"] for v in spec_schema["properties"]["amiSelectorTerms"]["items"]
                   ["properties"]["alias"]["x-kubernetes-validations"]]
    (fmt,) = [m for r in alias_rules for m in re.findall(r"self\.matches\('([^']+)'\)", r)]
    (families,) = [re.findall(r"'([a-z0-9]+)'", r.split(" in ", 1)[1]) for r in alias_rules
                   if r.startswith("self.split('@')[0] in [") and "?" not in r]
    cfg = eks(cold_start=cold_start,
              image_snapshot_id=SNAPSHOT if cold_start == "bottlerocket-snapshot" else None)
    spec = nodepool.ec2_node_class(models["llama-8b"], cfg, cluster_name="c",
                                   instance_profile="p", tags={})["spec"]
    (term,) = spec["amiSelectorTerms"]
    family, version = term["alias"].split("@")
    assert re.fullmatch(fmt, term["alias"]) and family in families and version != "latest"
    # "if set, amiFamily must be '<Family>' or 'Custom' when using a <family> alias"
    assert spec["amiFamily"].lower() == family


# --- sizing drives what a pool may launch -------------------------------------------------------

def test_70b_fp16_pool_only_launches_instances_whose_gpus_hold_it(models):
    model = models["llama-70b"]
    pool = nodepool.node_pool(model, eks())
    allowed = launchable(pool)
    assert allowed, "the pool must admit at least the sized instance"
    assert model.instance in allowed
    request = model.request
    for inst in allowed:
        assert inst.gpu_count >= 8
        assert estimate_memory(request, inst).fits, f"{inst.name} admitted but too small"
    # and the requirement itself encodes the sizing: no GPU below what one shard needs
    (mem,) = [r for r in pool["spec"]["template"]["spec"]["requirements"]
              if r["key"] == "karpenter.k8s.aws/instance-gpu-memory"]
    needed = model.memory.required_gib_per_gpu * 1024 / request.gpu_memory_utilization
    assert int(mem["values"][0]) + 1 >= needed


def test_8b_pool_never_asks_for_p5_and_keeps_one_replica_per_node(models):
    model = models["llama-8b"]
    pool = nodepool.node_pool(model, eks())
    reqs = {r["key"]: r for r in pool["spec"]["template"]["spec"]["requirements"]
            if r["operator"] == "In"}
    assert not {"p5", "p5en"} & set(reqs["karpenter.k8s.aws/instance-family"]["values"])
    allowed = launchable(pool)
    assert allowed and all(not i.family.startswith("p5") for i in allowed)
    assert {i.gpu_count for i in allowed} == {1}
    request = model.request
    assert all(estimate_memory(request, i).fits for i in allowed)


def test_price_ratio_widens_the_choice_without_admitting_non_fitting_gpus(models):
    model = models["llama-8b"]
    narrow = {i.name for i in launchable(nodepool.node_pool(model, eks(
        instance_price_ratio=1.0)))}
    wide = {i.name for i in launchable(nodepool.node_pool(model, eks(
        instance_price_ratio=5.0)))}
    assert narrow < wide
    request = model.request
    assert all(estimate_memory(request, GPU_INSTANCES[n]).fits for n in wide)


def test_pinned_instance_type_is_honoured_exactly():
    cfg = stack({**LLAMA_8B_SPOT, "instanceType": "g6e.2xlarge"})
    pool = nodepool.node_pool(cfg.models[0], eks())
    assert {i.name for i in launchable(pool)} <= {f"g6e.{s}" for s in
                                                   ("xlarge", "2xlarge", "4xlarge", "8xlarge",
                                                    "16xlarge")}
    assert GPU_INSTANCES["g6e.2xlarge"] in launchable(pool)


def test_capacity_spot_pool_falls_back_to_on_demand_in_the_same_pool(models):
    def capacity(model):
        reqs = nodepool.node_pool(model, eks())["spec"]["template"]["spec"]["requirements"]
        (ct,) = [r for r in reqs if r["key"] == "karpenter.sh/capacity-type"]
        return ct["values"]

    assert capacity(models["llama-8b"]) == ["spot", "on-demand"]
    assert capacity(models["llama-70b"]) == ["on-demand"]


def test_limits_are_a_cost_ceiling_from_max_replicas(models):
    model = models["llama-8b"]  # maxReplicas 6, 1 GPU each
    limits = nodepool.node_pool(model, eks())["spec"]["limits"]
    assert limits["nvidia.com/gpu"] == "7"
    assert int(limits["cpu"]) >= 7 * 4  # the smallest admitted instance's vCPUs per GPU
    capped = nodepool.node_pool(model, eks(max_gpus_per_model=2))["spec"]["limits"]
    assert capped["nvidia.com/gpu"] == "2"
    assert int(capped["cpu"]) < int(limits["cpu"])


def _minutes(duration: str) -> float:
    units = {"s": 1 / 60, "m": 1, "h": 60}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def test_disruption_does_not_churn_model_loads_or_take_many_nodes(models):
    pool = nodepool.node_pool(models["llama-70b"], eks())
    disruption = pool["spec"]["disruption"]
    assert disruption["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert _minutes(disruption["consolidateAfter"]) >= 3 * 10  # 3x a 10-minute model load
    for budget in disruption["budgets"]:
        assert budget["nodes"].endswith("%") and int(budget["nodes"][:-1]) <= 10
    template = pool["spec"]["template"]["spec"]
    assert _minutes(template["expireAfter"]) <= 30 * 24 * 60
    assert _minutes(template["terminationGracePeriod"]) >= 10


def test_pool_taints_gpu_nodes_and_labels_them_with_stable_names(models):
    pool = nodepool.node_pool(models["llama-70b"], eks())
    template = pool["spec"]["template"]
    assert template["metadata"]["labels"] == {MODEL_LABEL: "llama-70b", NODE_ROLE_LABEL: "gpu"}
    assert template["spec"]["taints"] == [
        {"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    assert pool["metadata"]["name"] == template["spec"]["nodeClassRef"]["name"] == "llm-llama-70b"


def test_al2023_node_class_pulls_fast_from_an_encrypted_provisioned_volume(models):
    spec = nodepool.ec2_node_class(models["llama-70b"], eks(), cluster_name="c",
                                   instance_profile="p", tags={})["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20261112"}]
    assert "FastImagePull: true" in spec["userData"]
    (root,) = spec["blockDeviceMappings"]
    ebs = root["ebs"]
    assert root["rootVolume"] and ebs["encrypted"] and ebs["volumeType"] == "gp3"
    assert int(ebs["volumeSize"].removesuffix("Gi")) >= 100
    assert ebs["throughput"] == 1000 and ebs["iops"] >= 4 * ebs["throughput"] / 1
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "c"}}]
    assert spec["securityGroupSelectorTerms"] == spec["subnetSelectorTerms"]


def test_bottlerocket_node_class_restores_the_image_snapshot_on_the_data_volume(models):
    cfg = eks(cold_start="bottlerocket-snapshot", image_snapshot_id=SNAPSHOT)
    spec = nodepool.ec2_node_class(models["llama-8b"], cfg, cluster_name="c",
                                   instance_profile="p", tags={})["spec"]
    assert spec["amiFamily"] == "Bottlerocket"
    assert spec["amiSelectorTerms"][0]["alias"].startswith("bottlerocket@v")
    assert "userData" not in spec
    os_volume, data = spec["blockDeviceMappings"]
    assert os_volume["ebs"]["encrypted"] is True
    assert data["deviceName"] == "/dev/xvdb" and data["ebs"]["snapshotID"] == SNAPSHOT
    assert "encrypted" not in data["ebs"]  # EC2 rejects it next to a snapshot
    assert data["ebs"]["volumeInitializationRate"] == 300


def test_eks_config_problems_name_key_and_fix():
    from components.config import _eks_problems
    assert _eks_problems(eks(), "prod") == []
    problems = _eks_problems(eks(
        cold_start="bottlerocket-snapshot", public_access_cidrs=["0.0.0.0/0", "10.0.0.1/8"],
        cluster_admin_arns=["arn:aws:iam::123456789012:role/admins", "admins"],
    ), "prod")
    assert [p.split(":", 2)[1].split(" ")[0] for p in problems] == [
        "eks.publicAccessCidrs[0]", "eks.publicAccessCidrs[1]", "eks.clusterAdminArns[1]",
        "eks.imageSnapshotId"]
    assert _eks_problems(eks(public_access_cidrs=["0.0.0.0/0"]), "dev") == []


def test_unsupported_kubernetes_version_is_rejected_with_accepted_values():
    from components.facts.charts import EKS_ADDON_VERSIONS
    with pytest.raises(ConfigError) as err:
        parse_config({
            "aws:region": "us-east-1", "llm-hosting:environment": "dev",
            "llm-hosting:platform": "eks", "llm-hosting:eks": '{"kubernetesVersion": "1.29"}',
            "llm-hosting:models": __import__("json").dumps([LLAMA_8B_SPOT]),
        }, project="p", stack="dev")
    assert err.value.problems == (
        "llm-hosting:eks.kubernetesVersion: '1.29' is not accepted; use one of '1.35'",)
    # every accepted minor has add-on pins, and every pinned minor is accepted
    from typing import get_args
    accepted = get_args(EksConfig.model_fields["kubernetes_version"].annotation)
    assert set(accepted) == set(EKS_ADDON_VERSIONS)
