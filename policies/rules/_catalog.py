"""Facts-backed helpers shared by the compute and cost rules: the serving request a resource's tags
describe, and which catalog instances a Karpenter NodePool can launch.

Everything here reads `components/facts` and `components/sizing.py`, the same code the program
sizes with, so the pack and `pulumi up` can never disagree about GPU memory or prices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from components.config import PLATFORM_PRICING, engine_profile
from components.facts import GPU_INSTANCES, Dtype, GpuInstance, ModelShape, get_model_shape
from components.sizing import SizingRequest, estimate_cost, estimate_memory
from components.tags import SERVING_TAG_PREFIX, SHAPE_TAG, SHAPE_TAG_FIELDS
from policies.rules._framework import Malformed, as_number, get, is_map, items, path_of

P = SERVING_TAG_PREFIX


@dataclass(frozen=True)
class Serving:
    """The sizing request one serving resource's tags describe."""

    model: str
    model_id: str
    platform: str
    instance_type: str
    quantization: str
    #: `llm-hosting/engine` (`vllm` when absent): picks the engine's memory accounting.
    engine: str
    gpus_per_replica: int
    max_input_tokens: int
    max_total_tokens: int
    concurrency_target: int
    min_replicas: int
    max_replicas: int
    #: From `llm-hosting/shape` when the program sized a custom shape, else the catalog's;
    #: None when neither knows the model.
    shape: ModelShape | None

    @property
    def pricing(self) -> str:
        return PLATFORM_PRICING.get(self.platform, "ec2")

    def request(self, shape: ModelShape) -> SizingRequest:
        return SizingRequest(
            shape=shape,
            quantization=self.quantization,  # type: ignore[arg-type]
            gpus_per_replica=self.gpus_per_replica,
            max_input_tokens=self.max_input_tokens,
            max_total_tokens=self.max_total_tokens,
            concurrency_target=self.concurrency_target,
            engine=engine_profile(self.platform, "tgi" if self.engine == "tgi" else "vllm"),
        )


_REQUIRED = ("model-id", "instance-type", "quantization", "gpus-per-replica", "max-input-tokens",
             "max-total-tokens", "concurrency-target", "min-replicas", "max-replicas")

#: Ranges a real deployment can have; a value outside is a violation naming the tag, never a
#: number handed to the sizing model (a 300-digit replica count, `inf`).
_RANGES: Mapping[str, tuple[int, int]] = {
    "gpus-per-replica": (1, 64),
    "max-input-tokens": (1, 10_000_000),
    "max-total-tokens": (1, 10_000_000),
    "concurrency-target": (1, 100_000),
    "min-replicas": (0, 100_000),
    "max-replicas": (0, 100_000),
}


def serving_from_tags(tags: Mapping[str, str]) -> Serving | str | None:
    """The serving request, None when the resource carries no serving tags, or a message naming
    the missing/invalid tags (a half-tagged serving resource must not pass silently)."""
    if not tags:
        return None
    missing = [f"{P}{k}" for k in _REQUIRED if f"{P}{k}" not in tags]
    if missing:
        return f"serving tags incomplete: missing {', '.join(missing)}"
    numbers: dict[str, int] = {}
    for key, (low, high) in _RANGES.items():
        value = as_number(tags[f"{P}{key}"])
        if value is None or value != int(value):
            return f"serving tag {P}{key} is not an integer: {tags[f'{P}{key}']!r}"
        if not low <= value <= high:
            return (f"serving tag {P}{key} is {tags[f'{P}{key}']!r}, outside {low}..{high}")
        numbers[key] = int(value)
    shape = get_model_shape(tags[f"{P}model-id"])
    if SHAPE_TAG in tags:
        parsed = shape_from_tag(tags[SHAPE_TAG])
        if isinstance(parsed, str):
            return f"serving tag {SHAPE_TAG} is malformed ({parsed}): {tags[SHAPE_TAG]!r}"
        shape = parsed
    return Serving(
        model=tags.get("model", tags[f"{P}model-id"]),
        model_id=tags[f"{P}model-id"],
        platform=tags.get(f"{P}platform", "ec2"),
        instance_type=tags[f"{P}instance-type"],
        quantization=tags[f"{P}quantization"],
        engine=tags.get(f"{P}engine", "vllm"),
        gpus_per_replica=numbers["gpus-per-replica"],
        max_input_tokens=numbers["max-input-tokens"],
        max_total_tokens=numbers["max-total-tokens"],
        concurrency_target=numbers["concurrency-target"],
        min_replicas=numbers["min-replicas"],
        max_replicas=numbers["max-replicas"],
        shape=shape,
    )


_FLOAT_FIELDS = frozenset({"parameters_b", "active_parameters_b"})
_OPTIONAL_SHAPE_KEYS = frozenset({"i", "k"})
_SHAPE_MAX = 10_000_000
"""Largest shape field accepted (billions of parameters, layers, widths, vocabulary, context):
far above any published model, far below what would overflow the memory model's floats."""


def shape_from_tag(value: str) -> ModelShape | str:
    """The `ModelShape` that `components.tags.shape_tag_value` wrote, or what is wrong with it."""
    raw: dict[str, str] = {}
    for part in value.split():
        key, sep, text = part.partition("=")
        if not sep or key not in SHAPE_TAG_FIELDS or key in raw or "=" in text:
            return f"unexpected {part!r}"
        raw[key] = text
    # `i` (intermediate size) and `k` (experts per token) came later: a tag written before them
    # sizes with the ModelShape defaults (4 x hidden, dense), as the program did then.
    missing = [k for k in SHAPE_TAG_FIELDS if k not in raw and k not in _OPTIONAL_SHAPE_KEYS]
    if missing:
        return f"missing {', '.join(missing)}"
    fields: dict[str, Any] = {}
    for key, name in SHAPE_TAG_FIELDS.items():
        if key not in raw:
            continue
        text = raw[key]
        if name == "dtype":
            if text not in get_args(Dtype):
                return f"dtype {text!r} is not one of {', '.join(get_args(Dtype))}"
            fields[name] = text
        elif name == "tied_embeddings":
            if text not in ("0", "1"):
                return f"tied must be 0 or 1, not {text!r}"
            fields[name] = text == "1"
        else:
            number = as_number(text)
            if number is None or number <= 0 or (name not in _FLOAT_FIELDS
                                                  and number != int(number)):
                kind = "a positive number" if name in _FLOAT_FIELDS else "a positive integer"
                return f"{key} must be {kind}, not {text!r}"
            if number > _SHAPE_MAX:
                return f"{key} must be at most {_SHAPE_MAX}, not {text!r}"
            fields[name] = number if name in _FLOAT_FIELDS else int(number)
    try:
        return ModelShape(**fields)
    except (ValueError, TypeError) as exc:  # the catalog's own consistency checks
        return str(exc)


def instance(name: str) -> GpuInstance | None:
    """Catalog lookup that accepts SageMaker's `ml.` spelling of every catalog type."""
    return GPU_INSTANCES.get(name[3:] if name.startswith("ml.") else name)


def fit_problem(serving: Serving, instance_type: str) -> str | None:
    """Why one replica of `serving` does not fit `instance_type`, or None when it fits."""
    shape = serving.shape
    if shape is None:
        return (f"model {serving.model_id} is not in the facts catalog "
                f"(components/facts/models.py) and carries no {SHAPE_TAG} tag; its GPU memory "
                "cannot be verified")
    gpu = instance(instance_type)
    if gpu is None:
        return (f"instance type {instance_type} is not in the GPU facts catalog "
                "(components/facts/gpus.py); GPU memory cannot be verified")
    try:
        memory = estimate_memory(serving.request(shape), gpu)
    except (ValueError, ArithmeticError) as exc:
        return f"{serving.model} cannot be placed on {instance_type}: {exc}"
    if memory.fits:
        return None
    return (f"{serving.model} ({serving.model_id}, quantization {serving.quantization}, "
            f"{serving.gpus_per_replica} GPU(s) per replica, {serving.concurrency_target} x "
            f"{serving.max_total_tokens} tokens) needs {memory.required_gib_per_gpu:.1f} GiB per "
            f"GPU but {instance_type} offers {memory.available_gib_per_gpu:.1f} GiB usable per GPU")


def hourly_usd_max(serving: Serving) -> float | None:
    """Worst-case $/hour at max replicas from the shared cost model; None when not computable."""
    shape = serving.shape
    gpu = instance(serving.instance_type)
    if shape is None or gpu is None:
        return None
    try:
        cost = estimate_cost(serving.request(shape), gpu, serving.pricing,  # type: ignore[arg-type]
                             min(serving.min_replicas, serving.max_replicas),
                             max(serving.max_replicas, 1))
    except (ValueError, ArithmeticError):
        return None
    return cost.hourly_usd_max


# ------------------------------------------------------------------------------------------
# Karpenter requirements over the catalog
#
# Well-known labels Karpenter's AWS provider sets on every instance type it can launch:
# https://karpenter.sh/docs/concepts/scheduling/#well-known-labels. GPU memory is per GPU in
# MiB, as DescribeInstanceTypes reports it (GpuInfo.Gpus[].MemoryInfo.SizeInMiB); the catalog
# keeps that same number.

_GPU_NAMES = {"A100-40GB": "a100", "A100-80GB": "a100"}


def karpenter_labels(gpu: GpuInstance) -> dict[str, str]:
    category = re.match(r"[a-z]+", gpu.family)
    generation = re.match(r"[a-z]+(\d+)", gpu.family)
    return {
        "node.kubernetes.io/instance-type": gpu.name,
        "karpenter.k8s.aws/instance-family": gpu.family,
        "karpenter.k8s.aws/instance-category": category.group(0) if category else "",
        "karpenter.k8s.aws/instance-generation": generation.group(1) if generation else "",
        "karpenter.k8s.aws/instance-size": gpu.name.partition(".")[2],
        "karpenter.k8s.aws/instance-gpu-count": str(gpu.gpu_count),
        "karpenter.k8s.aws/instance-gpu-memory": str(gpu.gpu_memory_mib),
        "karpenter.k8s.aws/instance-gpu-name": _GPU_NAMES.get(gpu.gpu.name, gpu.gpu.name.lower()),
        "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
        "karpenter.k8s.aws/instance-cpu": str(gpu.vcpus),
        "karpenter.k8s.aws/instance-memory": str(gpu.memory_mib),
        "kubernetes.io/arch": "amd64",
    }


_INSTANCE_KEYS = frozenset(karpenter_labels(next(iter(GPU_INSTANCES.values()))))


_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte"})
"""NodeSelectorRequirement operators Karpenter accepts (the CRD's enum, Gte/Lte since v1.x)."""


def requirement(r: Any) -> tuple[str, str, list[str]]:
    """(key, operator, values) of one requirement; anything else is malformed."""
    where = path_of(r, "spec.template.spec.requirements[]")
    key, op = get(r, "key"), get(r, "operator")
    if not isinstance(key, str):
        raise Malformed(f"{where}.key", key, "a label key")
    if not isinstance(op, str) or op not in _OPERATORS:
        raise Malformed(f"{where}.operator", op, "In, NotIn, Exists, DoesNotExist, Gt or Lt")
    values = []
    for v in items(get(r, "values")):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise Malformed(f"{where}.values", v, "a string value")
        values.append(str(v))
    return key, str(op), values


def _matches(labels: Mapping[str, str], parsed: tuple[str, str, list[str]]) -> bool:
    key, op, values = parsed
    if key not in _INSTANCE_KEYS:
        return True  # capacity type, zone, pool labels: they do not pick instance types
    have = labels.get(str(key))
    match op:
        case "In":
            return have in values
        case "NotIn":
            return have not in values
        case "Exists":
            return True  # every catalog instance carries every instance label
        case "DoesNotExist":
            return False
        case _:  # Gt, Lt, Gte, Lte: requirement() admits only _OPERATORS
            a, b = as_number(have), as_number(values[0] if values else None)
            if a is None or b is None:
                return False
            return {"Gt": a > b, "Lt": a < b, "Gte": a >= b, "Lte": a <= b}[op]


def nodepool_requirements(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = items(get(props, "spec", "template", "spec", "requirements"))
    for r in found:
        if not is_map(r):
            raise Malformed(path_of(r, "spec.template.spec.requirements[]"), r,
                            "a {key, operator, values} requirement")
    return found


_LABELS = {g.name: karpenter_labels(g) for g in GPU_INSTANCES.values()}


def launchable(requirements: Sequence[Mapping[str, Any]]) -> list[GpuInstance]:
    """Catalog GPU instances a NodePool with these requirements may launch, cheapest first."""
    parsed = [requirement(r) for r in requirements]
    found = [g for g in GPU_INSTANCES.values()
             if all(_matches(_LABELS[g.name], r) for r in parsed)]
    return sorted(found, key=lambda g: (g.ec2_usd_per_hour, g.name))

