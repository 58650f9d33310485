"""What EC2 capacity a resource can launch: its instance types and its maximum instance count,
read from the resource itself, in pulumi-aws and aws-native alike.

The allowlist asks "which types" (`instance_types`); the cost ceiling asks "how many of which,
at most" (`max_count` plus the types, the launch template's when the resource names none of its
own). Serving tags are deliberately not consulted here: they describe intent and can only add to
what the resource itself allows (policies/rules/cost.py).

Attribute-based instance type selection (`instanceRequirements`) lets EC2 pick any type that
matches vCPU/memory/accelerator ranges, so neither question has an answer unless the
requirements exclude accelerators (`acceleratorCount.max == 0`); such places are reported as
`attribute_based` and the rules refuse them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from policies.rules._framework import (
    ENDPOINT_CONFIGS,
    Malformed,
    Resource,
    count_at,
    get,
    items_at,
    map_at,
    number_at,
    string_at,
)

# pulumi-aws
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
INSTANCE = "aws:ec2/instance:Instance"
SPOT_INSTANCE_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
SPOT_FLEET_REQUEST = "aws:ec2/spotFleetRequest:SpotFleetRequest"
FLEET = "aws:ec2/fleet:Fleet"
ASG = "aws:autoscaling/group:Group"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ENDPOINT_CONFIG, NATIVE_ENDPOINT_CONFIG = ENDPOINT_CONFIGS  # one table: _framework
CAPACITY_RESERVATION = "aws:ec2/capacityReservation:CapacityReservation"
CAPACITY_BLOCK = "aws:ec2/capacityBlockReservation:CapacityBlockReservation"
DEDICATED_HOST = "aws:ec2/dedicatedHost:DedicatedHost"
NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"
# aws-native
NATIVE_LAUNCH_TEMPLATE = "aws-native:ec2:LaunchTemplate"
NATIVE_LAUNCH_CONFIGURATION = "aws-native:autoscaling:LaunchConfiguration"
NATIVE_INSTANCE = "aws-native:ec2:Instance"
NATIVE_SPOT_FLEET = "aws-native:ec2:SpotFleet"
NATIVE_FLEET = "aws-native:ec2:Ec2Fleet"
NATIVE_ASG = "aws-native:autoscaling:AutoScalingGroup"
NATIVE_NODE_GROUP = "aws-native:eks:Nodegroup"
NATIVE_CAPACITY_RESERVATION = "aws-native:ec2:CapacityReservation"
NATIVE_HOST = "aws-native:ec2:Host"
NATIVE_NOTEBOOK = "aws-native:sagemaker:NotebookInstance"
# pulumi_eks components (their children are opaque offline; their own inputs are not)
EKS_CLUSTER = "eks:index:Cluster"
EKS_MANAGED_NODE_GROUP = "eks:index:ManagedNodeGroup"
EKS_NODE_GROUP = "eks:index:NodeGroup"
EKS_NODE_GROUP_V2 = "eks:index:NodeGroupV2"
# Karpenter
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"

TEMPLATES = (LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION, NATIVE_LAUNCH_TEMPLATE,
             NATIVE_LAUNCH_CONFIGURATION)
"""Resources that describe instances but launch none themselves."""

RESERVATIONS = (CAPACITY_RESERVATION, NATIVE_CAPACITY_RESERVATION, CAPACITY_BLOCK,
                DEDICATED_HOST, NATIVE_HOST)
"""Capacity billed whether or not an instance runs on it."""

CAPACITY = (INSTANCE, SPOT_INSTANCE_REQUEST, SPOT_FLEET_REQUEST, FLEET, ASG, NODE_GROUP,
            ENDPOINT_CONFIG, NATIVE_INSTANCE, NATIVE_SPOT_FLEET, NATIVE_FLEET, NATIVE_ASG,
            NATIVE_NODE_GROUP, NATIVE_ENDPOINT_CONFIG, EKS_CLUSTER, EKS_MANAGED_NODE_GROUP,
            EKS_NODE_GROUP, EKS_NODE_GROUP_V2, *RESERVATIONS)
"""Resources that launch (and bill) instances; Karpenter NodePools are priced separately."""

NOTEBOOKS = (NOTEBOOK, NATIVE_NOTEBOOK)

NAMES_INSTANCE_TYPES = (*TEMPLATES, *CAPACITY, *NOTEBOOKS)
"""Every AWS/pulumi_eks type whose inputs name EC2 instance types."""

UNPRICED = (CAPACITY_BLOCK, DEDICATED_HOST, NATIVE_HOST)
"""Capacity whose price the facts catalog does not hold (Capacity Blocks for ML are sold at
their own upfront rate, Dedicated Hosts at a per-host rate): GPU ones cannot be bounded."""

SCALABLE_TARGETS = ("aws:appautoscaling/target:Target",
                    "aws-native:applicationautoscaling:ScalableTarget")


@dataclass(frozen=True)
class Choice:
    """One instance type a resource names, and where."""

    where: str
    instance_type: str


def _add(out: list[Choice], where: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise Malformed(where, value, "an instance type name")
    out.append(Choice(where, value))


def _overrides(props: Any, base: str) -> Iterator[tuple[str, Any]]:
    for i, o in enumerate(items_at(props, *base.split("."))):
        yield f"{base}[{i}]", o


def instance_types(resource: Resource) -> tuple[list[Choice], list[str]]:
    """(instance types the resource names, places that select types by attributes and may
    admit GPUs)."""
    p, t = resource.props, resource.type
    found: list[Choice] = []
    by_attributes: list[str] = []

    def requirement(where: str, holder: Any) -> None:
        req = get(holder, "instanceRequirements")
        if req is not None and _may_have_accelerators(map_at(holder, "instanceRequirements")):
            by_attributes.append(f"{where}.instanceRequirements" if where else
                                 "instanceRequirements")

    if t in (LAUNCH_TEMPLATE, INSTANCE, SPOT_INSTANCE_REQUEST, LAUNCH_CONFIGURATION,
             NATIVE_INSTANCE, NATIVE_LAUNCH_CONFIGURATION):
        _add(found, "instanceType", get(p, "instanceType"))
        requirement("", p)
    elif t in (*RESERVATIONS, *NOTEBOOKS):
        _add(found, "instanceType", get(p, "instanceType"))
        family = get(p, "instanceFamily")  # Dedicated Hosts may name a family for mixed sizes
        if family is not None:
            _add(found, "instanceFamily", f"{family}.*" if isinstance(family, str) else family)
    elif t == NATIVE_LAUNCH_TEMPLATE:
        _add(found, "launchTemplateData.instanceType", get(p, "launchTemplateData",
                                                           "instanceType"))
        requirement("launchTemplateData", map_at(p, "launchTemplateData"))
    elif t in (ASG, NATIVE_ASG):
        for where, o in _overrides(p, "mixedInstancesPolicy.launchTemplate.overrides"):
            _add(found, f"{where}.instanceType", get(o, "instanceType"))
            requirement(where, o)
    elif t in (NODE_GROUP, NATIVE_NODE_GROUP, EKS_MANAGED_NODE_GROUP):
        for i, v in enumerate(items_at(p, "instanceTypes")):
            _add(found, f"instanceTypes[{i}]", v)
    elif t in (EKS_CLUSTER, EKS_NODE_GROUP, EKS_NODE_GROUP_V2):
        _add(found, "instanceType", get(p, "instanceType"))
        _add(found, "nodeGroupOptions.instanceType", get(p, "nodeGroupOptions", "instanceType"))
    elif t in ENDPOINT_CONFIGS:
        for key in ("productionVariants", "shadowProductionVariants"):
            for i, v in enumerate(items_at(p, key)):
                _add(found, f"{key}[{i}].instanceType", get(v, "instanceType"))
    elif t in (FLEET, NATIVE_FLEET):
        for i, conf in enumerate(items_at(p, "launchTemplateConfigs")):
            for where, o in _overrides(conf, "overrides"):
                where = f"launchTemplateConfigs[{i}].{where}"
                _add(found, f"{where}.instanceType", get(o, "instanceType"))
                requirement(where, o)
    elif t in (SPOT_FLEET_REQUEST, NATIVE_SPOT_FLEET):
        base = "spotFleetRequestConfigData." if t == NATIVE_SPOT_FLEET else ""
        data = map_at(p, "spotFleetRequestConfigData") if base else p
        for i, spec in enumerate(items_at(data, "launchSpecifications")):
            where = f"{base}launchSpecifications[{i}]"
            _add(found, f"{where}.instanceType", get(spec, "instanceType"))
            requirement(where, spec)
        for i, conf in enumerate(items_at(data, "launchTemplateConfigs")):
            for where, o in _overrides(conf, "overrides"):
                where = f"{base}launchTemplateConfigs[{i}].{where}"
                _add(found, f"{where}.instanceType", get(o, "instanceType"))
                requirement(where, o)
    return found, by_attributes


def _may_have_accelerators(requirements: Any) -> bool:
    """False only when the requirements cap accelerators at zero."""
    return number_at(requirements, "acceleratorCount", "max") != 0


# ------------------------------------------------------------------------------------------
# counts


@dataclass(frozen=True)
class Count:
    """At most `instances` instances (or, for fleets sized in vCPUs/MiB, `units` of them)."""

    where: str
    instances: float
    unit: str = "instance"  # "instance", "vcpu" or "memory-mib"


def max_count(resource: Resource) -> list[Count]:
    """How many instances the resource may run at most, per place that sets it.

    An endpoint config returns one count per variant (`where` names the variant); everything
    else returns one count. Launch templates return none (they launch nothing themselves).
    """
    p, t = resource.props, resource.type
    if t in (ASG, NATIVE_ASG):
        size = count_at(p, "maxSize")
        return [Count("maxSize", float(size or 0))]
    if t in (NODE_GROUP, NATIVE_NODE_GROUP, EKS_MANAGED_NODE_GROUP):
        size = count_at(p, "scalingConfig", "maxSize")
        return [Count("scalingConfig.maxSize", float(size if size is not None else 1))]
    if t in (EKS_NODE_GROUP, EKS_NODE_GROUP_V2):
        size = count_at(p, "maxSize")
        return [Count("maxSize", float(size if size is not None else 2))]
    if t == EKS_CLUSTER:
        if get(p, "skipDefaultNodeGroup") is True:
            return []
        size = count_at(p, "maxSize")  # pulumi_eks default node group: maxSize defaults to 2
        return [Count("maxSize", float(size if size is not None else 2))]
    if t in (INSTANCE, NATIVE_INSTANCE, SPOT_INSTANCE_REQUEST, DEDICATED_HOST, NATIVE_HOST):
        return [Count("(one)", 1.0)]
    if t in (CAPACITY_RESERVATION, NATIVE_CAPACITY_RESERVATION, CAPACITY_BLOCK):
        return [Count("instanceCount", float(count_at(p, "instanceCount") or 0))]
    if t in ENDPOINT_CONFIGS:
        return _variant_counts(p)
    if t in (FLEET, NATIVE_FLEET):
        spec = map_at(p, "targetCapacitySpecification")
        total = count_at(spec, "totalTargetCapacity") or 0
        unit = string_at(spec, "targetCapacityUnitType") or "units"
        return [_weighted("targetCapacitySpecification.totalTargetCapacity", total, unit,
                          _fleet_weights(resource))]
    if t in (SPOT_FLEET_REQUEST, NATIVE_SPOT_FLEET):
        native = t == NATIVE_SPOT_FLEET
        data = map_at(p, "spotFleetRequestConfigData") if native else p
        total = count_at(data, "targetCapacity") or 0
        unit = string_at(data, "targetCapacityUnitType") or "units"
        where = ("spotFleetRequestConfigData." if native else "") + "targetCapacity"
        return [_weighted(where, total, unit, _fleet_weights(resource))]
    return []


def _weighted(where: str, total: int, unit: str, weights: Sequence[float]) -> Count:
    unit = unit.lower()
    if unit in ("vcpu", "memory-mib"):
        return Count(where, float(total), unit)
    # Capacity in units: each instance counts its weight (>= 0.001); a weight below 1 means
    # more instances than units.
    smallest = min([1.0, *weights])
    return Count(where, total / smallest)


def _fleet_weights(resource: Resource) -> list[float]:
    p = resource.props
    data = map_at(p, "spotFleetRequestConfigData") if resource.type == NATIVE_SPOT_FLEET else p
    weights: list[float] = []
    for spec in items_at(data, "launchSpecifications"):
        w = number_at(spec, "weightedCapacity")
        if w is not None:
            weights.append(w)
    for conf in items_at(data, "launchTemplateConfigs"):
        for o in items_at(conf, "overrides"):
            w = number_at(o, "weightedCapacity")
            if w is not None:
                weights.append(w)
    return [w for w in weights if w > 0]


def _variant_counts(p: Any) -> list[Count]:
    out = []
    for key in ("productionVariants", "shadowProductionVariants"):
        for i, v in enumerate(items_at(p, key)):
            if get(v, "instanceType") is None:
                continue  # serverless variants bill per request, not per instance
            initial = count_at(v, "initialInstanceCount")
            scaling = map_at(v, "managedInstanceScaling")
            upper = count_at(scaling, "maxInstanceCount") if \
                string_at(scaling, "status") != "DISABLED" else None
            # a variant runs at least one instance whatever it says
            out.append(Count(f"{key}[{i}]", float(max(initial or 1, upper or 1))))
    return out


def variant_name(p: Any, where: str) -> str | None:
    key, _, index = where.partition("[")
    return string_at(p, key, int(index.rstrip("]")), "variantName")
