"""`cost-ceiling` (stack) and `warm-capacity-in-prod`.

Cost: every serving resource carries the sizing request in its `llm-hosting/*` tags; the stack
policy groups them by (platform, model), recomputes each model's worst case at max replicas with
`components.sizing.estimate_cost` (the same prices `plan` prints), and compares the sum with the
environment's `maxHourlyUsd`. It is an on-demand list-price upper bound for GPU capacity only:
Spot discounts, the EKS control plane, NAT and load balancers are not in it.

Warm capacity: a prod scale-out must not start from nothing. ECS on-demand GPU groups keep a
warm pool (AWS rejects warm pools on mixed-instances/Spot groups, so those are exempt), and
SageMaker inference components, EKS Deployments and their autoscalers keep at least one replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policies.rules import _catalog as catalog
from policies.rules._framework import (
    ENDPOINT_CONFIGS,
    Resource,
    Rule,
    as_number,
    get,
    is_map,
    items,
    serving_tags,
)
from policies.rules.secrets import containers_of, pod_spec
from policies.rules.startup import _requests_gpu


def model_costs(resources: Sequence[Resource]) -> tuple[dict[tuple[str, str], float],
                                                         dict[tuple[str, str], str]]:
    """Worst-case $/hour per (platform, model), and the models that could not be costed."""
    costs: dict[tuple[str, str], float] = {}
    problems: dict[tuple[str, str], str] = {}
    for r in resources:
        serving = catalog.serving_from_tags(serving_tags(r.props))
        if not isinstance(serving, catalog.Serving):
            continue
        key = (serving.platform, serving.model)
        hourly = catalog.hourly_usd_max(serving)
        if hourly is None:
            problems.setdefault(key, f"{serving.model} ({serving.model_id} on "
                                     f"{serving.instance_type}) is not in the facts catalog")
        else:
            # Several resources describe one model; the costliest description wins.
            costs[key] = max(costs.get(key, 0.0), hourly)
    return costs, problems


def check_cost(resources: Sequence[Resource], config: Mapping[str, Any]) -> Iterable[str]:
    budget = float(config["maxHourlyUsd"])
    costs, problems = model_costs(resources)
    for key in sorted(problems):
        yield f"cannot cost {problems[key]}; add it to components/facts"
    total = sum(costs.values())
    if total > budget:
        parts = ", ".join(f"{model} ${hourly:.2f}" for (_, model), hourly in sorted(costs.items()))
        yield (f"worst case at max replicas is ${total:.2f}/hour ({parts}), over this "
               f"environment's budget of ${budget:.2f}/hour; lower maxReplicas or raise the "
               "budget in the policy config")


COST_CEILING = Rule(
    name="cost-ceiling",
    description=(
        "Worst-case GPU spend at max replicas (components/sizing.py prices) stays under the "
        "environment's hourly budget."
    ),
    stack_check=check_cost,
    config={
        "maxHourlyUsd": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 100,
            "description": "budget in on-demand USD per hour for all serving capacity",
        },
    },
)


# ------------------------------------------------------------------------------------------
# warm-capacity-in-prod


def _at_least_one(where: str, value: Any, default: float, what: str) -> Iterable[str]:
    number = as_number(value)
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
    if not is_map(get(resource.props, "warmPool")):
        yield ("on-demand GPU group has no warmPool; a scale-out would pay instance boot and "
               "image pull again (add a Stopped warm pool)")


def check_inference_component(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _at_least_one("runtimeConfig.copyCount",
                             get(resource.props, "runtimeConfig", "copyCount"), 1.0, _COLD)


def check_endpoint_config(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for i, v in enumerate(items(get(resource.props, "productionVariants"))):
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
    kind = resource.type.rsplit(":", 1)[-1]
    if any(_requests_gpu(c) for _, c in containers_of(pod_spec(resource.props, kind))):
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
        "aws:autoscaling/group:Group": check_asg_warm_pool,
        "aws-native:sagemaker:InferenceComponent": check_inference_component,
        **dict.fromkeys(ENDPOINT_CONFIGS, check_endpoint_config),
        "aws:appautoscaling/target:Target": check_scalable_target,
        "kubernetes:apps/v1:Deployment": check_gpu_workload,
        "kubernetes:apps/v1:StatefulSet": check_gpu_workload,
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": check_hpa,
        "kubernetes:keda.sh/v1alpha1:ScaledObject": check_scaled_object,
    },
)

RULES = [COST_CEILING, WARM_CAPACITY_IN_PROD]
