"""The cost ceiling's capacity model, one kind of capacity at a time (policies/rules/_capacity.py,
policies/rules/cost.py), with figures recomputed from the facts catalog.

Each case runs the real `cost-ceiling` stack policy with a budget no stack meets, so the
violation's breakdown (`capacity the resources allow $X (name $Y, ...)`) says what each resource
was priced at; problems (unbounded capacity, untagged GPU capacity) are compared exactly.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import P, run_stack

from components.facts import GPU_INSTANCES
from policies.rules._catalog import launchable
from policies.rules.cost import quantity, variant_targets

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
MODELS = {"llm-hosting/models": "m"}
UNTAGGED = ("GPU capacity without serving tags (llm-hosting/*, or llm-hosting/models for shared "
            "capacity): the pack cannot check what it serves; tag it with "
            "components.tags.Naming.serving_tags")


def ec2(name: str) -> float:
    return GPU_INSTANCES[name].ec2_usd_per_hour


def sagemaker(name: str) -> float:
    price = GPU_INSTANCES[name].sagemaker_usd_per_hour
    assert price is not None
    return price


def priced(resources: list[tuple[str, dict[str, Any]]],
           deps: dict[int, dict[str, list[int]]] | None = None
           ) -> tuple[dict[str, float], list[str]]:
    """({resource name: $/hour}, the other messages) under a budget nothing meets (capacity that
    cannot be bounded adds nothing to the figure: its own violation says why)."""
    found = run_stack("cost-ceiling", resources, {"maxHourlyUsd": 1e-9}, deps=deps)
    breakdown: dict[str, float] = {}
    others = []
    for message in found:
        match = re.search(r"capacity the resources allow \$[\d.]+ \((.*?)\), serving tags",
                          message)
        if match is None:
            others.append(message)
        elif match.group(1) != "none":
            for part in match.group(1).split(", "):
                name, _, price = part.rpartition(" $")
                breakdown[name] = float(price)
    return breakdown, others


def tagged(props: dict[str, Any], list_tags: bool = False) -> dict[str, Any]:
    if list_tags:
        return {**props, "tags": [{"key": k, "value": v} for k, v in MODELS.items()]}
    return {**props, "tags": dict(MODELS)}


# --------------------------------------------------------------------------------------------
# Auto Scaling groups and their launch templates


def test_group_prices_its_priciest_override_times_max_size():
    asg = tagged({"maxSize": 3, "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "g6e.xlarge"}, {"instanceType": "g6e.4xlarge"}]}}}, list_tags=True)
    assert priced([(ASG, asg)]) == ({"r0": round(3 * ec2("g6e.4xlarge"), 2)}, [])


def test_group_without_overrides_prices_its_linked_template_or_configuration():
    template = (LT, {"instanceType": "g5.2xlarge"})
    config = ("aws:ec2/launchConfiguration:LaunchConfiguration", {"instanceType": "g5.4xlarge"})
    asg = (ASG, tagged({"maxSize": 2}, list_tags=True))
    assert priced([template, asg], {1: {"launchTemplate": [0]}}) == (
        {"r1": round(2 * ec2("g5.2xlarge"), 2)}, [])
    assert priced([config, asg], {1: {"launchConfiguration": [0]}}) == (
        {"r1": round(2 * ec2("g5.4xlarge"), 2)}, [])
    # A dependency on something that is not a template (the VPC) prices nothing.
    assert priced([("awsx:ec2:Vpc", {}), asg], {1: {"vpcZoneIdentifiers": [0]}}) == ({}, [
        "cannot bound the cost of r1: its instance type comes from a launch template outside "
        "this stack: the pack cannot price it; declare the template in the stack or name the "
        "instance types as mixed-instances overrides"])


def test_native_group_size_arrives_as_a_string():
    asg = tagged({"maxSize": "4", "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "g6.xlarge"}]}}}, list_tags=True)
    assert priced([("aws-native:autoscaling:AutoScalingGroup", asg)]) == (
        {"r0": round(4 * ec2("g6.xlarge"), 2)}, [])


def test_cpu_capacity_is_not_gpu_spend_and_needs_no_serving_tags():
    asg = {"maxSize": 50, "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "m7i.xlarge"}]}}}
    assert priced([(ASG, asg)]) == ({}, [])


def test_attribute_selection_cannot_be_bounded_on_the_group_or_its_template():
    asg = tagged({"maxSize": 2, "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceRequirements": {"vcpuCount": {"min": 4}}}]}}}, list_tags=True)
    assert priced([(ASG, asg)]) == ({}, [
        "cannot bound the cost of r0: mixedInstancesPolicy.launchTemplate.overrides[0]"
        ".instanceRequirements selects instance types by attributes: neither the types nor "
        "their price can be bounded; name the instance types (or cap acceleratorCount.max at "
        "0)"])
    template = (LT, {"instanceRequirements": {"acceleratorCount": {"max": 1}}})
    plain = (ASG, tagged({"maxSize": 2}, list_tags=True))
    assert priced([template, plain], {1: {"launchTemplate": [0]}}) == ({}, [
        "cannot bound the cost of r1: its launch template r0 selects instance types by "
        "attributes: neither the types nor their price can be bounded; name the instance "
        "types"])


def test_unknown_gpu_types_cannot_be_priced():
    asg = tagged({"maxSize": 1, "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "p3.2xlarge"}, {"instanceType": "m5.large"}]}}}, list_tags=True)
    assert priced([(ASG, asg)]) == ({}, [
        "cannot bound the cost of r0: it can launch p3.2xlarge, which the facts catalog cannot "
        "price (components/facts/gpus.py)"])


def test_untagged_gpu_group():
    asg = {"maxSize": 1, "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "g5.xlarge"}]}}}
    assert priced([(ASG, asg)]) == ({"r0": round(ec2("g5.xlarge"), 2)}, [UNTAGGED])


# --------------------------------------------------------------------------------------------
# node groups, instances, reservations, fleets


@pytest.mark.parametrize(("type_", "props", "count"), [
    ("aws:eks/nodeGroup:NodeGroup", {"instanceTypes": ["g6e.xlarge", "g6e.2xlarge"],
                                     "scalingConfig": {"maxSize": 3}}, 3),
    ("aws:eks/nodeGroup:NodeGroup", {"instanceTypes": ["g6e.2xlarge"]}, 1),
    ("aws-native:eks:Nodegroup", {"instanceTypes": ["g6e.2xlarge"],
                                  "scalingConfig": {"maxSize": 5}}, 5),
    ("eks:index:ManagedNodeGroup", {"instanceTypes": ["g6e.2xlarge"],
                                    "scalingConfig": {"maxSize": 2}}, 2),
    ("eks:index:NodeGroupV2", {"instanceType": "g6e.2xlarge"}, 2),
    ("eks:index:NodeGroup", {"instanceType": "g6e.2xlarge", "maxSize": 7}, 7),
    ("eks:index:Cluster", {"instanceType": "g6e.2xlarge"}, 2),
    ("eks:index:Cluster", {"instanceType": "g6e.2xlarge", "skipDefaultNodeGroup": True}, 0),
    ("aws:ec2/instance:Instance", {"instanceType": "g6e.2xlarge"}, 1),
    ("aws-native:ec2:Instance", {"instanceType": "g6e.2xlarge"}, 1),
    ("aws:ec2/spotInstanceRequest:SpotInstanceRequest", {"instanceType": "g6e.2xlarge"}, 1),
    ("aws:ec2/capacityReservation:CapacityReservation",
     {"instanceType": "g6e.2xlarge", "instanceCount": 6}, 6),
    ("aws-native:ec2:CapacityReservation", {"instanceType": "g6e.2xlarge",
                                            "instanceCount": 2}, 2),
])
def test_capacity_counts(type_, props, count):
    found, others = priced([(type_, tagged(props))])
    assert others == []
    expected = {"r0": round(count * ec2("g6e.2xlarge"), 2)} if count else {}
    assert found == expected


@pytest.mark.parametrize(("type_", "props", "what"), [
    ("aws:ec2/capacityBlockReservation:CapacityBlockReservation",
     {"instanceType": "p5.48xlarge", "instanceCount": 1}, "p5.48xlarge on a "
     "CapacityBlockReservation"),
    ("aws:ec2/dedicatedHost:DedicatedHost", {"instanceFamily": "g6e"}, "g6e.* on a "
     "DedicatedHost"),
    ("aws-native:ec2:Host", {"instanceType": "p4d.24xlarge"}, "p4d.24xlarge on a Host"),
])
def test_capacity_the_catalog_cannot_price(type_, props, what):
    assert priced([(type_, tagged(props))]) == ({}, [
        f"cannot bound the cost of r0: {what} is billed at a rate the facts catalog does not "
        "hold"])


def test_cpu_hosts_and_blocks_are_no_gpu_spend():
    assert priced([("aws:ec2/dedicatedHost:DedicatedHost", {"instanceType": "m7i.large"})]) \
        == ({}, [])


def _overrides(*types: str, weight: float | None = None) -> list[dict[str, Any]]:
    return [{"instanceType": t, **({"weightedCapacity": weight} if weight else {})}
            for t in types]


@pytest.mark.parametrize(("weight", "unit", "expected"), [
    (None, None, 4 * ec2("g6e.4xlarge")),
    (2.0, None, 4 * ec2("g6e.4xlarge")),      # each instance counts 2 units: at most 4 anyway
    (0.5, None, 8 * ec2("g6e.4xlarge")),      # each instance counts half a unit: 8 of them
    (None, "vcpu", 4 * max(ec2(t) / GPU_INSTANCES[t].vcpus for t in ("g6e.xlarge",
                                                                     "g6e.4xlarge"))),
    (None, "memory-mib", 4 * max(ec2(t) / GPU_INSTANCES[t].memory_mib
                                 for t in ("g6e.xlarge", "g6e.4xlarge"))),
])
def test_fleets_by_target_capacity_and_weights(weight, unit, expected):
    spec = {"totalTargetCapacity": 4, **({"targetCapacityUnitType": unit} if unit else {})}
    fleet = tagged({"targetCapacitySpecification": spec, "launchTemplateConfigs": [
        {"overrides": _overrides("g6e.xlarge", "g6e.4xlarge", weight=weight)}]})
    for type_ in ("aws:ec2/fleet:Fleet", "aws-native:ec2:Ec2Fleet"):
        found, others = priced([(type_, fleet)])
        assert (found, others) == ({"r0": round(expected, 2)}, [])


def test_spot_fleets():
    data = {"targetCapacity": 3, "launchSpecifications": [
        {"instanceType": "g5.xlarge", "weightedCapacity": 0.25}]}
    assert priced([("aws:ec2/spotFleetRequest:SpotFleetRequest", tagged(data))]) == (
        {"r0": round(12 * ec2("g5.xlarge"), 2)}, [])
    native = tagged({"spotFleetRequestConfigData": {"targetCapacity": 2, "launchTemplateConfigs": [
        {"overrides": _overrides("g5.2xlarge")}]}}, list_tags=True)
    assert priced([("aws-native:ec2:SpotFleet", native)]) == (
        {"r0": round(2 * ec2("g5.2xlarge"), 2)}, [])


# --------------------------------------------------------------------------------------------
# SageMaker variants


def _variant(name: str = "v", instance: str = "ml.g6e.xlarge", **extra: Any) -> dict[str, Any]:
    return {"variantName": name, "instanceType": instance, **extra}


@pytest.mark.parametrize(("variant", "count"), [
    (_variant(initialInstanceCount=2), 2),
    (_variant(initialInstanceCount=2, managedInstanceScaling={
        "status": "DISABLED", "maxInstanceCount": 5}), 2),
    (_variant(initialInstanceCount=2, managedInstanceScaling={
        "status": "ENABLED", "maxInstanceCount": 5}), 5),
    (_variant(managedInstanceScaling={"maxInstanceCount": 4}), 4),
    (_variant(), 1),
])
def test_variant_counts(variant, count):
    config = tagged({"productionVariants": [variant]}, list_tags=True)
    assert priced([("aws-native:sagemaker:EndpointConfig", config)]) == (
        {"r0": round(count * sagemaker("g6e.xlarge"), 2)}, [])


def test_variants_shadow_serverless_and_scaling_targets():
    config = tagged({"productionVariants": [
        _variant("a", initialInstanceCount=1),
        {"variantName": "serverless", "serverlessConfig": {"maxConcurrency": 5}},
    ], "shadowProductionVariants": [_variant("b", "ml.g5.xlarge", initialInstanceCount=2)]})
    ec = ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", config)
    assert priced([ec]) == ({"r0": round(sagemaker("g6e.xlarge") + 2 * sagemaker("g5.xlarge"),
                                         2)}, [])
    target = {"resourceId": "endpoint/ep/variant/a", "maxCapacity": 6,
              "scalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    other = {**target, "scalableDimension": "sagemaker:inference-component:DesiredCopyCount"}
    for type_ in ("aws:appautoscaling/target:Target",
                  "aws-native:applicationautoscaling:ScalableTarget"):
        assert priced([ec, (type_, target)]) == (
            {"r0": round(6 * sagemaker("g6e.xlarge") + 2 * sagemaker("g5.xlarge"), 2)}, [])
        assert priced([ec, (type_, other)])[0] == priced([ec])[0]


def test_variant_type_sagemaker_does_not_sell():
    unsold = next(g.name for g in GPU_INSTANCES.values() if g.sagemaker_usd_per_hour is None)
    config = tagged({"productionVariants": [_variant(instance=f"ml.{unsold}")]})
    assert priced([("aws:sagemaker/endpointConfiguration:EndpointConfiguration", config)]) == (
        {}, [f"cannot bound the cost of r0: productionVariants[0] runs ml.{unsold}, "
                      "which the facts catalog cannot price for SageMaker "
                      "(components/facts/gpus.py)"])


# --------------------------------------------------------------------------------------------
# NodePools


def _pool(limits: dict[str, Any] | None, *requirements: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"requirements": list(requirements)}}}
    if limits is not None:
        spec["limits"] = limits
    return {"metadata": {"annotations": dict(MODELS)}, "spec": spec}


ONE_GPU_G6E = ({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6e"]},
               {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt",
                "values": ["2"]})
ADMITTED = [g for g in GPU_INSTANCES.values() if g.family == "g6e" and g.gpu_count == 1]


@pytest.mark.parametrize(("limits", "expected"), [
    ({"nvidia.com/gpu": "3"}, 3 * max(g.ec2_usd_per_hour for g in ADMITTED)),
    ({"cpu": "64"}, 64 * max(g.ec2_usd_per_hour / g.vcpus for g in ADMITTED)),
    ({"cpu": "64000m"}, 64 * max(g.ec2_usd_per_hour / g.vcpus for g in ADMITTED)),
    ({"memory": "512Gi"}, 512 * 1024 * max(g.ec2_usd_per_hour / g.memory_mib for g in ADMITTED)),
    ({"nvidia.com/gpu": 3, "cpu": "8"},
     min(3 * max(g.ec2_usd_per_hour for g in ADMITTED),
         8 * max(g.ec2_usd_per_hour / g.vcpus for g in ADMITTED))),
])
def test_pool_limits_times_the_priciest_admitted_price_per_unit(limits, expected):
    found, others = priced([("kubernetes:karpenter.sh/v1:NodePool",
                             _pool(limits, *ONE_GPU_G6E))])
    assert (found, others) == ({"r0": round(expected, 2)}, [])


@pytest.mark.parametrize("requirement", [
    {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["m", "c"]},
    {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"},
    {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt", "values": ["1"]},
    {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "In", "values": ["0"]},
])
def test_cpu_pools_need_no_limits(requirement):
    assert priced([("kubernetes:karpenter.sh/v1:NodePool", _pool(None, requirement))]) == ({}, [])


def test_pools_that_admit_gpus_the_catalog_cannot_price():
    pinned = {"key": "node.kubernetes.io/instance-type", "operator": "In",
              "values": ["p3.2xlarge", "g6e.xlarge"]}
    assert priced([("kubernetes:karpenter.sh/v1:NodePool",
                    _pool({"nvidia.com/gpu": "1"}, pinned))]) == ({}, [
        "cannot bound the cost of r0: spec.template.spec.requirements let Karpenter launch "
        "p3.2xlarge, beyond what the facts catalog can price; pin "
        "karpenter.k8s.aws/instance-family (or node.kubernetes.io/instance-type) to catalog GPU "
        "types"])


@pytest.mark.parametrize("value", ["-1", "ten", "1e999", True, "5Xi"])
def test_malformed_pool_limits(value):
    found = run_stack("cost-ceiling", [("kubernetes:karpenter.sh/v1:NodePool",
                                        _pool({"cpu": value}, *ONE_GPU_G6E))],
                      {"maxHourlyUsd": 1e9})
    assert len(found) == 1 and found[0].startswith(
        "malformed input on r0 (kubernetes:karpenter.sh/v1:NodePool): spec.limits.cpu is ")
    assert found[0].endswith("not a Kubernetes quantity such as 20, 480 or 288Gi; the policy "
                             "cannot judge it, fix the value")


# --------------------------------------------------------------------------------------------
# serving tags: one figure per model


def test_a_model_described_by_annotations_and_tags_counts_once_under_its_name():
    common = {f"{P}platform": "eks", f"{P}model-id": "meta-llama/Llama-3.1-8B-Instruct",
              f"{P}instance-type": "g6e.xlarge", f"{P}quantization": "none",
              f"{P}gpus-per-replica": "1", f"{P}max-input-tokens": "6144",
              f"{P}max-total-tokens": "8192", f"{P}concurrency-target": "4",
              f"{P}min-replicas": "1", f"{P}max-replicas": "2"}
    deployment = ("kubernetes:apps/v1:Deployment", {"metadata": {"annotations": common}})
    template = (LT, {"tags": {**common, "model": "llama-8b"}})
    found = run_stack("cost-ceiling", [deployment, template], {"maxHourlyUsd": 1e-9})
    assert len(found) == 1
    assert f"serving tags at max replicas ${2 * ec2('g6e.xlarge'):.2f} (llama-8b $" in found[0]


# --------------------------------------------------------------------------------------------
# edges


def test_fleets_without_a_target_capacity_launch_nothing():
    fleet = tagged({"launchTemplateConfigs": [{"overrides": _overrides("g6e.xlarge")}]})
    assert priced([("aws:ec2/fleet:Fleet", fleet)]) == ({}, [])
    spot = tagged({"launchSpecifications": [{"instanceType": "g5.xlarge"}]})
    assert priced([("aws:ec2/spotFleetRequest:SpotFleetRequest", spot)]) == ({}, [])


def test_a_zero_weight_is_ignored_not_divided_by():
    spot = tagged({"targetCapacity": 2, "launchSpecifications": [
        {"instanceType": "g5.xlarge", "weightedCapacity": 0},
        {"instanceType": "g5.xlarge", "weightedCapacity": 0.5}]})
    assert priced([("aws:ec2/spotFleetRequest:SpotFleetRequest", spot)]) == (
        {"r0": round(4 * ec2("g5.xlarge"), 2)}, [])


def test_a_serverless_variant_before_an_instance_variant():
    config = tagged({"productionVariants": [
        {"variantName": "serverless", "serverlessConfig": {"maxConcurrency": 5}},
        _variant("a", initialInstanceCount=3)]}, list_tags=True)
    assert priced([("aws-native:sagemaker:EndpointConfig", config)]) == (
        {"r0": round(3 * sagemaker("g6e.xlarge"), 2)}, [])


@pytest.mark.parametrize(("value", "shown"), [("", '""'), (5, "5"), (["g5.xlarge"],
                                                                     '["g5.xlarge"]')])
def test_an_instance_type_that_is_no_name(value, shown):
    assert priced([("aws:ec2/instance:Instance", tagged({"instanceType": value}))]) == ({}, [
        f"malformed input on r0 (aws:ec2/instance:Instance): instanceType is {shown}, not an "
        "instance type name; the policy cannot judge it, fix the value"])


@pytest.mark.parametrize(("text", "value"), [
    ("2", 2.0), ("1500m", 1.5), ("2k", 2e3), ("3M", 3e6), ("1G", 1e9), ("1T", 1e12),
    ("1P", 1e15), ("1E", 1e18), ("1Ki", 1024.0), ("1Mi", 2.0**20), ("288Gi", 288 * 2.0**30),
    ("1Ti", 2.0**40), ("1Pi", 2.0**50), ("1Ei", 2.0**60), ("1e3", 1000.0), (".5", 0.5)])
def test_kubernetes_quantity_suffixes(text, value):
    """Every suffix of the Kubernetes quantity grammar, decimal and binary."""
    assert quantity(text, "limits.cpu") == value


def test_variant_targets_read_past_other_scalable_targets():
    targets = [
        SimpleNamespace(type="aws:appautoscaling/target:Target", props={
            "scalableDimension": "ecs:service:DesiredCount", "maxCapacity": 9}),
        SimpleNamespace(type="aws:appautoscaling/target:Target", props={
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "resourceId": "endpoint/e/variant/v", "maxCapacity": 4}),
        SimpleNamespace(type="aws:s3/bucket:Bucket", props={}),
        SimpleNamespace(type="aws:appautoscaling/target:Target", props={
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "resourceId": "endpoint/f/variant/v", "maxCapacity": 6}),
    ]
    assert variant_targets(targets) == {"v": 6.0}  # type: ignore[arg-type]


GPU_COUNT = "karpenter.k8s.aws/instance-gpu-count"
ALL_COUNTS = sorted({g.gpu_count for g in GPU_INSTANCES.values()})


@pytest.mark.parametrize(("operator", "values", "admits"), [
    ("Gt", ["4"], lambda n: n > 4), ("Gte", ["4"], lambda n: n >= 4),
    ("Lt", ["4"], lambda n: n < 4), ("Lte", ["4"], lambda n: n <= 4),
    ("Gt", ["four"], lambda n: False), ("Lte", [], lambda n: False),
    ("Exists", [], lambda n: True), ("DoesNotExist", [], lambda n: False),
])
def test_karpenter_requirement_operators_on_instance_labels(operator, values, admits):
    found = launchable([{"key": GPU_COUNT, "operator": operator, "values": values}])
    assert sorted({g.gpu_count for g in found}) == [n for n in ALL_COUNTS if admits(n)]


def test_requirements_on_other_labels_admit_every_instance():
    """Capacity type, zone and pool labels do not pick instance types."""
    found = launchable([{"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": ["spot"]}])
    assert len(found) == len(GPU_INSTANCES)
    assert [g.ec2_usd_per_hour for g in found] == sorted(g.ec2_usd_per_hour for g in found)


@pytest.mark.parametrize(("size", "expected"), [(None, {}), (0, {}), (1, {"r0": 1})])
def test_a_group_without_a_max_size_launches_nothing(size, expected):
    props: dict[str, Any] = {"mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "g6e.xlarge"}]}}}
    if size is not None:
        props["maxSize"] = size
    found = priced([(ASG, tagged(props, list_tags=True))])
    assert found == ({k: round(v * ec2("g6e.xlarge"), 2) for k, v in expected.items()}, [])


@pytest.mark.parametrize(("variant", "count"), [
    (_variant(initialInstanceCount=0), 1), (_variant(initialInstanceCount=1), 1),
    (_variant(managedInstanceScaling={"maxInstanceCount": 0}), 1)])
def test_a_variant_runs_at_least_one_instance(variant, count):
    config = tagged({"productionVariants": [variant]}, list_tags=True)
    assert priced([("aws-native:sagemaker:EndpointConfig", config)]) == (
        {"r0": round(count * sagemaker("g6e.xlarge"), 2)}, [])


def test_every_variant_is_read_past_cpu_and_unpriceable_ones():
    config = tagged({"productionVariants": [
        _variant("cpu", "ml.m5.xlarge", initialInstanceCount=3),
        _variant("old", "ml.p3.2xlarge", initialInstanceCount=1),
        _variant("gpu", initialInstanceCount=2)]}, list_tags=True)
    assert priced([("aws-native:sagemaker:EndpointConfig", config)]) == (
        {"r0": round(2 * sagemaker("g6e.xlarge"), 2)},
        ["cannot bound the cost of r0: productionVariants[1] runs ml.p3.2xlarge, which the facts "
         "catalog cannot price for SageMaker (components/facts/gpus.py)"])
