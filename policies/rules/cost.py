"""`cost-ceiling` (stack) and `warm-capacity-in-prod`.

Cost is priced from what each resource itself allows, not from what it says it will use:

- an Auto Scaling group: `maxSize` x the priciest type it can launch (its overrides, else its
  launch template's or launch configuration's type, linked through the engine's property
  dependencies); an ECS capacity provider only points at the group and is not counted again;
- an EKS node group: `scalingConfig.maxSize` x its priciest instance type;
- a Karpenter NodePool: its `spec.limits` (GPUs, vCPUs or memory, the tightest) x the priciest
  price per unit among the catalog types its requirements admit. A pool that can launch GPUs
  without limits, or that admits GPU types the facts catalog cannot price, is a violation;
- a SageMaker production variant: its largest instance count (initial, managed instance
  scaling's maximum, an Application Auto Scaling target's maximum) x its SageMaker price;
- instances, spot requests and fleets: one instance, or their target capacity.

Serving tags (`llm-hosting/*`, components/tags.py) can only raise that figure: the stack's total
is the larger of the summed bounds and the summed per-model worst case the tags describe
(components/sizing.py estimate_cost at max replicas, one figure per model however many resources
carry its tags). Tags describe a whole model, which several capacity resources may serve (a
managed node group and a NodePool, an endpoint config shared by inference components), so they
are compared with the stack's sum, never added to one resource. GPU capacity without serving
tags (or the multi-model `llm-hosting/models` tag) is a violation: its fit and start-up cannot be
checked. It is an
on-demand list-price upper bound for GPU capacity only: Spot discounts, the EKS control plane,
NAT and load balancers are not in it.

Warm capacity: a prod scale-out must not start from nothing. ECS on-demand GPU groups keep a
warm pool (AWS rejects warm pools on mixed-instances/Spot groups, so those are exempt), and
SageMaker inference components, EKS Deployments and their autoscalers keep at least one replica.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.facts import GpuInstance, price_per_hour
from policies.rules import _capacity as cap
from policies.rules import _catalog as catalog
from policies.rules._framework import (
    ENDPOINT_CONFIGS,
    MODELS_TAG,
    Finding,
    Malformed,
    Resource,
    Rule,
    as_number,
    each_resource,
    family_of,
    get,
    is_gpu_family,
    is_map,
    items_at,
    map_at,
    number_at,
    serving_tags,
    string_at,
    strip_ml,
    tags_of,
)
from policies.rules.secrets import containers_of, pod_spec
from policies.rules.startup import _requests_gpu

# ------------------------------------------------------------------------------------------
# the capacity's own bound


@dataclass
class Priced:
    """One capacity resource's bound, or why it cannot be bounded."""

    hourly: float = 0.0
    gpu: bool = False
    problems: tuple[str, ...] = ()


def _price(instance_type: str, pricing: str) -> float | None:
    gpu = catalog.instance(instance_type)
    if gpu is None:
        return None
    return price_per_hour(gpu, pricing)  # type: ignore[arg-type]


def _linked_templates(resource: Resource, by_urn: Mapping[str, Resource]) -> list[Resource]:
    """Launch templates/configurations the resource's inputs were computed from."""
    found = []
    for urns in resource.deps.values():
        for urn in urns:
            r = by_urn.get(urn)
            if r is not None and r.type in cap.TEMPLATES and r not in found:
                found.append(r)
    return found


def _type_prices(types: Sequence[str], pricing: str) -> tuple[list[tuple[str, float]],
                                                             list[str]]:
    priced, unknown = [], []
    for t in types:
        price = _price(strip_ml(t), pricing)
        if price is None:
            if is_gpu_family(family_of(t)):
                unknown.append(t)
        else:
            priced.append((t, price))
    return priced, unknown


def price_capacity(resource: Resource, by_urn: Mapping[str, Resource],
                   targets: Mapping[str, float]) -> Priced:
    own, by_attributes = cap.instance_types(resource)
    counts = cap.max_count(resource)
    if not counts:
        return Priced()
    pricing = "sagemaker" if resource.type in ENDPOINT_CONFIGS else "ec2"
    if by_attributes:
        return Priced(gpu=True, problems=(
            f"{by_attributes[0]} selects instance types by attributes: neither the types nor "
            "their price can be bounded; name the instance types (or cap acceleratorCount.max "
            "at 0)",))
    if resource.type in ENDPOINT_CONFIGS:
        return _price_variants(resource, counts, targets)
    types = [c.instance_type for c in own]
    if resource.type in cap.UNPRICED:
        gpu_types = [t for t in types if is_gpu_family(family_of(t))]
        if gpu_types:
            return Priced(gpu=True, problems=(
                f"{', '.join(gpu_types)} on a {resource.type.rsplit(':', 1)[-1]} is billed at a "
                "rate the facts catalog does not hold",))
        return Priced()
    if not types:
        templates = _linked_templates(resource, by_urn)
        for template in templates:
            template_types, template_attributes = cap.instance_types(template)
            if template_attributes:
                return Priced(gpu=True, problems=(
                    f"its launch template {template.name} selects instance types by "
                    "attributes: neither the types nor their price can be bounded; name the "
                    "instance types",))
            types += [c.instance_type for c in template_types]
        if not templates and resource.type in (cap.ASG, cap.NATIVE_ASG):
            return Priced(problems=(
                "its instance type comes from a launch template outside this stack: the pack "
                "cannot price it; declare the template in the stack or name the instance types "
                "as mixed-instances overrides",))
    priced, unknown = _type_prices(types, pricing)
    gpu = any(is_gpu_family(family_of(t)) for t in types)
    if unknown:
        return Priced(gpu=True, problems=(
            f"it can launch {', '.join(unknown)}, which the facts catalog cannot price "
            "(components/facts/gpus.py)",))
    if not gpu:
        return Priced()
    count = counts[0]
    worst = max(p for _, p in priced) if priced else 0.0
    if count.unit == "vcpu" or count.unit == "memory-mib":
        per_unit = max(p / _units(catalog.instance(t), count.unit) for t, p in priced)
        return Priced(count.instances * per_unit, True)
    return Priced(count.instances * worst, True)


def _units(gpu: GpuInstance | None, unit: str) -> float:
    assert gpu is not None  # priced types are catalog types
    return float(gpu.vcpus if unit == "vcpu" else gpu.memory_mib)


def _price_variants(resource: Resource, counts: Sequence[cap.Count],
                    targets: Mapping[str, float]) -> Priced:
    total, gpu, problems = 0.0, False, []
    for count in counts:
        instance_type = string_at(resource.props, *_variant_path(count.where), "instanceType")
        if instance_type is None or not is_gpu_family(family_of(instance_type)):
            continue  # (counts exist only for variants with an instance type)
        name = cap.variant_name(resource.props, count.where)
        instances = max(count.instances, targets.get(name or "", 0.0))
        gpu = True
        price = _price(strip_ml(instance_type), "sagemaker")
        if price is None:
            problems.append(f"{count.where} runs {instance_type}, which the facts catalog cannot "
                            "price for SageMaker (components/facts/gpus.py)")
            continue
        total += instances * price
    return Priced(total, gpu, tuple(problems))


def _variant_path(where: str) -> tuple[str, int]:
    key, _, index = where.partition("[")
    return key, int(index.rstrip("]"))


_VARIANT_TARGET = re.compile(r"^endpoint/[^/]+/variant/([^/]+)$")


def variant_targets(resources: Sequence[Resource]) -> dict[str, float]:
    """Largest Application Auto Scaling maximum per SageMaker variant name (every endpoint:
    the target names the endpoint, whose name may be unknown during preview, so a variant of
    that name anywhere takes the largest, an upper bound)."""
    out: dict[str, float] = {}
    for r in resources:
        if r.type not in cap.SCALABLE_TARGETS:
            continue
        if string_at(r.props, "scalableDimension") != "sagemaker:variant:DesiredInstanceCount":
            continue
        match = _VARIANT_TARGET.match(string_at(r.props, "resourceId") or "")
        top = number_at(r.props, "maxCapacity")
        if match and top is not None:
            out[match.group(1)] = max(out.get(match.group(1), 0.0), top)
    return out


# ------------------------------------------------------------------------------------------
# Karpenter NodePools

_SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
           "Ei": 2.0**60}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|"
                       r"P|E)?$")


def quantity(value: Any, where: str) -> float:
    """A Kubernetes resource quantity (`20`, `480`, `1500m`, `288Gi`) as a number.
    https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/"""
    text = value if isinstance(value, str) else (
        repr(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None)
    match = _QUANTITY.match(text.strip()) if text is not None else None
    number = as_number(match.group(1)) if match else None
    if match is None or number is None or number < 0:
        raise Malformed(where, value, "a Kubernetes quantity such as 20, 480 or 288Gi")
    return number * _SUFFIX[match.group(2) or ""]


_GPU_CATEGORIES = ("g", "gr", "p")


def may_launch_unknown_gpus(requirements: Sequence[Any]) -> list[str]:
    """GPU families/types the requirements admit that the catalog cannot price; ['*'] when the
    requirements do not pin families or types at all and do not exclude GPUs."""
    known = {g.family for g in catalog.GPU_INSTANCES.values()}
    pinned: list[str] | None = None
    for r in requirements:
        key, op, values = catalog.requirement(r)
        if op == "In" and key == "karpenter.k8s.aws/instance-family":
            pinned = [v for v in values if is_gpu_family(v) and v not in known]
        elif op == "In" and key == "node.kubernetes.io/instance-type":
            pinned = [v for v in values if is_gpu_family(family_of(v))
                      and catalog.instance(v) is None]
        elif key == "karpenter.k8s.aws/instance-category" and op == "In" and \
                not set(values) & set(_GPU_CATEGORIES):
            return []
        elif key == "karpenter.k8s.aws/instance-gpu-count" and (
                op == "DoesNotExist" or (op == "Lt" and values and
                                         (as_number(values[0]) or 0) <= 1) or
                (op == "In" and values == ["0"])):
            return []
    return ["*"] if pinned is None else pinned


def price_nodepool(resource: Resource) -> Priced:
    requirements = catalog.nodepool_requirements(resource.props)
    admitted = [g for g in catalog.launchable(requirements) if g.gpu_count > 0]
    unknown = may_launch_unknown_gpus(requirements)
    limits = map_at(resource.props, "spec", "limits")
    if unknown:
        what = ("any GPU type" if unknown == ["*"] else ", ".join(unknown))
        return Priced(gpu=True, problems=(
            f"spec.template.spec.requirements let Karpenter launch {what}, beyond what the "
            "facts catalog can price; pin karpenter.k8s.aws/instance-family (or "
            "node.kubernetes.io/instance-type) to catalog GPU types",))
    if not admitted:
        return Priced()
    bounds = []
    for key, units in (("nvidia.com/gpu", lambda g: g.gpu_count),
                       ("cpu", lambda g: g.vcpus),
                       ("memory", lambda g: g.memory_mib * 2.0**20)):
        if get(limits, key) is None:
            continue
        limit = quantity(get(limits, key), f"spec.limits.{key}")
        bounds.append(limit * max(g.ec2_usd_per_hour / units(g) for g in admitted))
    if not bounds:
        return Priced(gpu=True, problems=(
            "spec.limits sets no nvidia.com/gpu, cpu or memory limit: Karpenter may launch GPU "
            "nodes without end; set spec.limits (e.g. nvidia.com/gpu)",))
    return Priced(min(bounds), True)


# ------------------------------------------------------------------------------------------
# serving tags: they can raise a figure, never lower it


def tag_cost(resource: Resource) -> tuple[catalog.Serving | None, float | None]:
    """(the serving request, its worst-case $/hour) from the resource's serving tags, if any."""
    serving = catalog.serving_from_tags(serving_tags(resource.props))
    if not isinstance(serving, catalog.Serving):
        return None, None
    return serving, catalog.hourly_usd_max(serving)


def model_identity(serving: catalog.Serving) -> tuple[Any, ...]:
    """One model of the stack, whichever resource describes it: the sizing request's fields
    (a Kubernetes annotation has no `model` name, an AWS tag does)."""
    return (serving.platform, serving.model_id, serving.instance_type, serving.quantization,
            serving.gpus_per_replica, serving.max_total_tokens, serving.concurrency_target,
            serving.max_replicas)


def _has_descriptor(resource: Resource) -> bool:
    if serving_tags(resource.props):
        return True
    return any(MODELS_TAG in source for source in (
        tags_of(resource.props), tags_of(map_at(resource.props, "spec")),
        map_at(resource.props, "metadata", "annotations")))


def check_cost(resources: Sequence[Resource], config: Mapping[str, Any]) -> Iterable[Finding]:
    budget = float(config["maxHourlyUsd"])
    by_urn = {r.urn: r for r in resources if r.urn}
    targets = variant_targets(resources)
    capacity: dict[str, float] = {}
    models: dict[tuple[Any, ...], tuple[str, float]] = {}
    uncosted: dict[tuple[Any, ...], str] = {}

    def judge(resource: Resource) -> Iterable[str]:
        serving, tagged = tag_cost(resource)
        if serving is not None:
            key = model_identity(serving)
            if tagged is None:
                uncosted.setdefault(key, f"{serving.model} ({serving.model_id} on "
                                         f"{serving.instance_type}) is not in the facts catalog")
            else:
                # AWS tags carry the model's name, Kubernetes annotations only its id.
                name = serving.model if serving.model != serving.model_id else \
                    models.get(key, (serving.model, 0.0))[0]
                models[key] = (name, max(models.get(key, ("", 0.0))[1], tagged))
        if resource.type in cap.CAPACITY:
            priced = price_capacity(resource, by_urn, targets)
        elif resource.type == cap.NODE_POOL:
            priced = price_nodepool(resource)
        else:
            return
        for problem in priced.problems:
            yield f"cannot bound the cost of {resource.name}: {problem}"
        if priced.gpu and not _has_descriptor(resource):
            yield ("GPU capacity without serving tags (llm-hosting/*, or llm-hosting/models for "
                   "shared capacity): the pack cannot check what it serves; tag it with "
                   "components.tags.Naming.serving_tags")
        if priced.gpu:
            capacity[resource.name] = priced.hourly

    yield from each_resource(resources, judge)
    for key in sorted(uncosted, key=str):
        yield Finding(f"cannot cost {uncosted[key]}; add it to components/facts")
    from_capacity = sum(capacity.values())
    from_tags = sum(hourly for _, hourly in models.values())
    total = max(from_capacity, from_tags)
    if total > budget:
        parts = ", ".join(f"{name} ${hourly:.2f}" for name, hourly in sorted(capacity.items()))
        tagged = ", ".join(f"{name} ${hourly:.2f}" for name, hourly in
                           sorted(models.values()))
        yield Finding(
            f"worst case is ${total:.2f}/hour, over this environment's budget of ${budget:.2f}/"
            f"hour: capacity the resources allow ${from_capacity:.2f} ({parts or 'none'}), "
            f"serving tags at max replicas ${from_tags:.2f} ({tagged or 'none'}); lower "
            "maxSize, NodePool limits or maxReplicas, or raise the budget in the policy config")


COST_CEILING = Rule(
    name="cost-ceiling",
    description=(
        "Worst-case GPU spend, from what each resource allows (max sizes, NodePool limits, "
        "variant counts) and its serving tags, stays under the environment's hourly budget."
    ),
    stack_check=check_cost,
    stack_types=frozenset((*cap.CAPACITY, *cap.TEMPLATES, cap.NODE_POOL, *cap.SCALABLE_TARGETS)),
    config={
        "maxHourlyUsd": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 100,
            "description": "budget in on-demand USD per hour for all GPU capacity",
        },
    },
)


# ------------------------------------------------------------------------------------------
# warm-capacity-in-prod


def _at_least_one(where: str, value: Any, default: float, what: str) -> Iterable[str]:
    number = as_number(value)
    if value is not None and number is None:
        raise Malformed(where, value, "a finite number")
    number = default if number is None else number
    if number < 1:
        yield f"{where} is {number:g}; keep at least 1 so {what}"


_COLD = "the first request after idle does not wait for a GPU and a model load"


def check_asg_warm_pool(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    serving = catalog.serving_from_tags(serving_tags(resource.props))
    if serving is None:
        return  # not GPU serving capacity
    if is_map(get(resource.props, "mixedInstancesPolicy")):
        return  # AWS rejects warm pools on groups with a mixed instances policy (Spot)
    if resource.type == cap.NATIVE_ASG:
        return  # aws-native declares the warm pool as its own resource (autoscaling:WarmPool)
    if not is_map(get(resource.props, "warmPool")):
        yield ("on-demand GPU group has no warmPool; a scale-out would pay instance boot and "
               "image pull again (add a Stopped warm pool)")


def check_inference_component(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _at_least_one("runtimeConfig.copyCount",
                             get(resource.props, "runtimeConfig", "copyCount"), 1.0, _COLD)


def check_endpoint_config(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for i, v in enumerate(items_at(resource.props, "productionVariants")):
        scaling = get(v, "managedInstanceScaling")
        if is_map(scaling) and get(scaling, "status") == "ENABLED":
            yield from _at_least_one(f"productionVariants[{i}].managedInstanceScaling."
                                     "minInstanceCount", get(scaling, "minInstanceCount"), 0.0,
                                     _COLD)


def check_scalable_target(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    namespace = get(resource.props, "serviceNamespace")
    if namespace not in ("sagemaker", "ecs"):
        return
    yield from _at_least_one("minCapacity", get(resource.props, "minCapacity"), 0.0, _COLD)


def check_gpu_workload(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # Deployments and StatefulSets (the types this check is registered for) keep their pod
    # spec under spec.template.spec.
    if any(_requests_gpu(c) for _, c in containers_of(pod_spec(resource.props, "Deployment"))):
        yield from _at_least_one("spec.replicas", get(resource.props, "spec", "replicas"), 1.0,
                                 _COLD)


def check_hpa(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _at_least_one("spec.minReplicas", get(resource.props, "spec", "minReplicas"),
                             1.0, _COLD)


def check_scaled_object(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # KEDA defaults minReplicaCount to 0: https://keda.sh/docs/latest/reference/scaledobject-spec/
    yield from _at_least_one("spec.minReplicaCount",
                             get(resource.props, "spec", "minReplicaCount"), 0.0, _COLD)


WARM_CAPACITY_IN_PROD = Rule(
    name="warm-capacity-in-prod",
    description=(
        "Prod on-demand ECS GPU groups keep a warm pool and prod SageMaker/EKS serving keeps at "
        "least one replica."
    ),
    checks={
        cap.ASG: check_asg_warm_pool,
        cap.NATIVE_ASG: check_asg_warm_pool,
        "aws-native:sagemaker:InferenceComponent": check_inference_component,
        **dict.fromkeys(ENDPOINT_CONFIGS, check_endpoint_config),
        **dict.fromkeys(cap.SCALABLE_TARGETS, check_scalable_target),
        "kubernetes:apps/v1:Deployment": check_gpu_workload,
        "kubernetes:apps/v1:StatefulSet": check_gpu_workload,
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": check_hpa,
        "kubernetes:keda.sh/v1alpha1:ScaledObject": check_scaled_object,
    },
)

RULES = [COST_CEILING, WARM_CAPACITY_IN_PROD]
