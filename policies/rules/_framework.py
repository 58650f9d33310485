"""The small framework every rule module uses: one pure check per type, one policy per rule.

A rule is a name, a one-sentence description, a JSON-schema for its config (with defaults), and a
mapping from resource type token to a pure check ``(Resource, config) -> messages``. Checks never
see Pulumi: they take the properties exactly as the engine hands them to the analyzer (camelCase,
numbers as floats, some AWS booleans as strings, secrets already unwrapped by the SDK) and return
the violation messages, so unit tests call them through the real `ResourceValidationPolicy` with
plain dicts.

The engine fills policy config from each property's ``default`` (ReconcilePolicyPackConfig in
pulumi/sdk/go/common/resource/analyzer/config.go), but a check may also run without it (unit tests,
`pulumi preview` without `--policy-pack-config`), so `config_with_defaults` applies the same
defaults here: the schema is the one source of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.tags import SERVING_TAG_PREFIX


@dataclass(frozen=True)
class Resource:
    """What a check sees: the type token, the logical name and the (input) properties."""

    type: str
    name: str
    props: Mapping[str, Any]


Check = Callable[[Resource, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Mapping[str, Any]], Iterable[str]]


@dataclass(frozen=True)
class Rule:
    """One policy: `checks` maps resource type tokens to the pure check for that type."""

    name: str
    description: str
    checks: Mapping[str, Check] = field(default_factory=dict)
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stack_check: StackCheck | None = None
    #: Check for every type not in `checks` (rules that decide applicability themselves).
    fallback: Check | None = None

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}

    def config_with_defaults(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.defaults(), **dict(given or {})}

    def run(self, resource: Resource, config: Mapping[str, Any] | None = None) -> list[str]:
        """Messages for one resource (empty when compliant or when no check covers the type)."""
        check = self.checks.get(resource.type, self.fallback)
        if check is None:
            return []
        return list(check(resource, self.config_with_defaults(config)))

    def run_stack(
        self, resources: Sequence[Resource], config: Mapping[str, Any] | None = None
    ) -> list[str]:
        if self.stack_check is None:
            return []
        return list(self.stack_check(resources, self.config_with_defaults(config)))

    def policy(self) -> ResourceValidationPolicy | StackValidationPolicy:
        """The CrossGuard policy object; enforcement comes from the per-environment config."""
        schema = PolicyConfigSchema(properties={k: dict(v) for k, v in self.config.items()})
        if self.stack_check is not None:

            def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
                resources = [Resource(r.resource_type, r.name, r.props) for r in args.resources]
                for message in self.run_stack(resources, args.get_config()):
                    report(message, None)

            return StackValidationPolicy(
                name=self.name,
                description=self.description,
                validate=validate_stack,
                config_schema=schema,
            )

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            resource = Resource(args.resource_type, args.name, args.props)
            for message in self.run(resource, args.get_config()):
                report(message, None)

        return ResourceValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            config_schema=schema,
        )


# ------------------------------------------------------------------------------------------
# property helpers: the analyzer hands us Mapping/Sequence proxies, never dict/list


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """`value[path[0]][path[1]]...`, or `default` when any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or step >= len(value):
                return default
            value = value[step]
        else:
            if not is_map(value) or step not in value:
                return default
            value = value[step]
    return default if value is None else value


def items(value: Any) -> list[Any]:
    """A list property as a Python list (absent -> [])."""
    return list(value) if is_list(value) else []


def as_bool(value: Any) -> bool | None:
    """AWS booleans arrive as bools or as the strings "true"/"false" (launch template EBS)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def fmt_seconds(value: float) -> str:
    return f"{value:g} s"


def parse_json(value: Any) -> Any:
    """ECS `containerDefinitions` (and IAM documents) are JSON strings; None when not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


# ------------------------------------------------------------------------------------------
# tags: AWS maps, ASG / aws-native / CloudFormation lists, Kubernetes metadata, Karpenter spec.tags


def _tag_list(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in items(value):
        if not is_map(entry):
            continue
        key = entry.get("key", entry.get("Key"))
        val = entry.get("value", entry.get("Value"))
        if isinstance(key, str) and val is not None:
            out[key] = str(val)
    return out


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """The tags a resource's inputs set, whatever shape the resource type uses for them."""
    tags = get(props, "tags")
    if is_map(tags):
        return {str(k): str(v) for k, v in tags.items() if v is not None}
    return _tag_list(tags)


SERVING_KEYS = frozenset(
    f"{SERVING_TAG_PREFIX}{k}" for k in (
        "platform", "model-id", "instance-type", "quantization", "gpus-per-replica",
        "max-input-tokens", "max-total-tokens", "concurrency-target", "min-replicas",
        "max-replicas", "shape", "engine", "weights", "checkpoint",
    )
)
"""Keys `Naming.serving_tags` sets; other `llm-hosting/...` labels (node roles) are not them."""


def serving_tags(props: Mapping[str, Any]) -> dict[str, str]:
    """The `llm-hosting/*` serving tags (components/tags.py), plus the `model` tag next to them,
    wherever the resource carries them: AWS tags, Karpenter `spec.tags`, Kubernetes annotations
    or labels."""
    found: dict[str, str] = {}
    sources = [
        tags_of(props),
        tags_of(get(props, "spec", default={})),
        _plain_map(get(props, "metadata", "labels")),
        _plain_map(get(props, "metadata", "annotations")),
        _plain_map(get(props, "spec", "template", "metadata", "annotations")),
    ]
    for source in sources:
        if any(k in SERVING_KEYS for k in source):
            found.update({k: v for k, v in source.items() if k in SERVING_KEYS or k == "model"})
    return found


def _plain_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if is_map(value) else {}


# ------------------------------------------------------------------------------------------
# instance types


ENDPOINT_CONFIGS = ("aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                    "aws-native:sagemaker:EndpointConfig")
"""SageMaker endpoint configs in pulumi-aws and in aws-native (whose EndpointConfig also takes
an execution role and variants without a model, for inference components). Same property names
for variants; the KMS key is `kmsKeyArn` in one and `kmsKeyId` in the other."""


_GPU_FAMILY = re.compile(r"^(g|gr|p)\d[a-z0-9-]*$")


def strip_ml(instance_type: str) -> str:
    """SageMaker spells EC2 types with an `ml.` prefix."""
    return instance_type[3:] if instance_type.startswith("ml.") else instance_type


def family_of(instance_type: str) -> str:
    return strip_ml(instance_type).split(".", 1)[0]


def is_gpu_family(family: str) -> bool:
    """NVIDIA GPU families on EC2 (G and P, e.g. g5, g6e, p4de, p5en); CPU types are ignored."""
    return bool(_GPU_FAMILY.match(family))
