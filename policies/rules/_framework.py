"""The small framework every rule module uses: one pure check per type, one policy per rule.

A rule is a name, a one-sentence description, a JSON-schema for its config (with defaults), and a
mapping from resource type token to a pure check ``(Resource, config) -> messages`` (or, for a
stack rule, one check over every resource). Checks never see Pulumi: they take the properties
exactly as the engine hands them to the analyzer (camelCase, numbers as floats, some AWS booleans
as strings, secrets already unwrapped by the SDK) and return the violation messages, so unit
tests call them through the real `ResourceValidationPolicy` with plain dicts.

No exception escapes a policy. A policy pack gates every preview: an exception inside a policy
fails the preview for everyone, and a crafted tag value would then switch the gate off. So:

- properties reach a check wrapped in `Node`/`Seq` views that remember their path
  (`spec.template.spec.containers[0]`), and the accessors below (`get`, `items`, `number_at`,
  `boolean_at`, ...) raise `Malformed` when a value has the wrong shape (a string where an object
  belongs, `"inf"` where a count belongs). `Rule` turns `Malformed` into a violation naming the
  resource, the property path and the value;
- anything else a check raises becomes a violation too (`INTERNAL` in its message; the fuzz test
  in tests/policies asserts it never happens), except the SDK's own `UnknownValueError` (a value
  unknown during preview: the SDK reports "can't run policy during preview") and its
  not-applicable signal, which pass through untouched.

The engine fills policy config from each property's ``default`` (ReconcilePolicyPackConfig in
pulumi/sdk/go/common/resource/analyzer/config.go), but a check may also run without it (unit tests,
`pulumi preview` without `--policy-pack-config`), so `config_with_defaults` applies the same
defaults here: the schema is the one source of them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from pulumi_policy.proxy import UnknownValueError

from components.tags import SERVING_TAG_PREFIX

INTERNAL = "policy error"
"""Marker in the message of a violation made from an unexpected exception (a pack bug)."""


# ------------------------------------------------------------------------------------------
# property views that know where they are


class Malformed(Exception):  # a finding on the input, not an error of the pack
    """A property value a check cannot judge: reported as a violation, never raised further."""

    def __init__(self, where: str, value: Any, expected: str) -> None:
        super().__init__(f"{where or '(properties)'} is {preview(value)}, not {expected}")
        self.where, self.value, self.expected = where, value, expected


def preview(value: Any, limit: int = 80) -> str:
    """A short, printable form of a (possibly huge or nested) value for a message."""
    raw = _plain(value)
    try:
        text = json.dumps(raw, sort_keys=True, default=str, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(raw)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _plain(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return "..."
    if isinstance(value, Node):
        value = value.raw
    elif isinstance(value, Seq):
        value = value.raw
    if isinstance(value, Mapping):
        return {str(k): _plain(_peek(value, k), depth + 1) for k in list(value)[:20]}
    if is_list(value):
        return [_plain(_peek(value, i), depth + 1) for i in range(min(len(value), 20))]
    return value


def _peek(container: Any, key: Any) -> Any:
    """An element for a message only: an unknown value prints as `<unknown>`."""
    try:
        return container[key]
    except UnknownValueError:
        return "<unknown>"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class Node(Mapping[str, Any]):
    """A read-only view of an object property that knows its path from the resource root."""

    __slots__ = ("path", "raw")

    def __init__(self, raw: Mapping[str, Any], path: str = "") -> None:
        self.raw, self.path = raw, path

    def __getitem__(self, key: str) -> Any:
        return wrap(self.raw[key], _join(self.path, key))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.raw))

    def __len__(self) -> int:
        return len(self.raw)

    def __contains__(self, key: object) -> bool:
        # Mapping's default would read the value, which raises for an unknown one.
        return any(k == key for k in self.raw)

    def __repr__(self) -> str:
        return f"Node({self.path!r}, {preview(self)})"


class Seq(Sequence[Any]):
    """A read-only view of a list property that knows its path from the resource root."""

    __slots__ = ("path", "raw")

    def __init__(self, raw: Sequence[Any], path: str = "") -> None:
        self.raw, self.path = raw, path

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return wrap(self.raw[index], _join(self.path, index))

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return f"Seq({self.path!r}, {preview(self)})"


def wrap(value: Any, path: str) -> Any:
    if isinstance(value, (Node, Seq)):
        return value
    if isinstance(value, Mapping):
        return Node(value, path)
    if is_list(value):
        return Seq(value, path)
    return value


def path_of(value: Any, default: str = "") -> str:
    return value.path if isinstance(value, (Node, Seq)) else default


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """`value[path[0]][path[1]]...`, or `default` when a step is missing or null.

    A step into something of the wrong kind (a key into a string, an index into an object) is
    malformed input, not a missing value: it raises `Malformed` with the path walked so far.
    """
    where = path_of(value)
    for step in path:
        if value is None:
            return default
        if isinstance(step, int):
            if not is_list(value):
                raise Malformed(where, value, "a list")
            if step >= len(value):
                return default
            value = value[step]
        else:
            if not is_map(value):
                raise Malformed(where, value, "an object")
            if step not in value:
                return default
            value = value[step]
        where = path_of(value, _join(where, step))
    return default if value is None else value


def items(value: Any) -> list[Any]:
    """A list property as a Python list (absent -> []); anything but a list is malformed."""
    if value is None:
        return []
    if not is_list(value):
        raise Malformed(path_of(value), value, "a list")
    return list(value)


def items_at(value: Any, *path: str | int) -> list[Any]:
    """`items(get(value, *path))`, naming the full path when the value is not a list."""
    found = get(value, *path)
    if found is not None and not is_list(found):
        raise Malformed(_where(value, path, found), found, "a list")
    return items(found)


def map_at(value: Any, *path: str | int) -> Node:
    """The object at `path` (absent -> empty); anything but an object is malformed."""
    found = get(value, *path)
    if found is None:
        return Node({}, _where(value, path, found))
    if not is_map(found):
        raise Malformed(_where(value, path, found), found, "an object")
    return wrap(found, _where(value, path, found))


def _where(root: Any, path: Sequence[str | int], found: Any) -> str:
    if isinstance(found, (Node, Seq)):
        return found.path
    where = path_of(root)
    for step in path:
        where = _join(where, step)
    return where


def string_at(value: Any, *path: str | int) -> str | None:
    """A string property (absent -> None); numbers and booleans are not strings."""
    found = get(value, *path)
    if found is None or isinstance(found, str):
        return found
    raise Malformed(_where(value, path, found), found, "a string")


def as_bool(value: Any) -> bool | None:
    """AWS booleans arrive as bools or as the strings "true"/"false" (launch template EBS)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def boolean_at(value: Any, *path: str | int) -> bool | None:
    """A boolean property: true/false or "true"/"false" (absent -> None, anything else
    malformed: a missing flag and a `false` one are different answers)."""
    found = get(value, *path)
    if found is None:
        return None
    parsed = as_bool(found)
    if parsed is None:
        raise Malformed(_where(value, path, found), found, "true or false")
    return parsed


def as_number(value: Any) -> float | None:
    """A finite number from a number or a numeric string; None for anything else (`inf`,
    `nan`, booleans, objects)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float (a 400-digit count)
            return None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def number_at(value: Any, *path: str | int) -> float | None:
    """A finite number property (absent -> None); numeric strings count (ASG sizes arrive as
    strings from aws-native), anything else is malformed."""
    found = get(value, *path)
    if found is None:
        return None
    number = as_number(found)
    if number is None:
        raise Malformed(_where(value, path, found), found, "a finite number")
    return number


def count_at(value: Any, *path: str | int) -> int | None:
    """A non-negative whole number (instance counts, sizes, ports)."""
    number = number_at(value, *path)
    if number is None:
        return None
    if number < 0 or number != int(number):
        found = get(value, *path)
        raise Malformed(_where(value, path, found), found, "a whole number >= 0")
    return int(number)


def fmt_seconds(value: float) -> str:
    return f"{value:g} s"


def parse_json(value: Any) -> Any:
    """ECS `containerDefinitions` (and IAM documents) are JSON strings; None when not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return None


def json_at(value: Any, *path: str | int) -> Any:
    """A property that holds a JSON document either as a string (pulumi-aws `policy`,
    `containerDefinitions`) or already as an object (aws-native `policyDocument`). Absent -> None;
    a string that is not JSON is malformed."""
    found = get(value, *path)
    where = _where(value, path, found)
    if isinstance(found, str):
        parsed = parse_json(found)
        if parsed is None:
            raise Malformed(where, found, "a JSON document")
        return wrap(parsed, where)
    return wrap(found, where) if found is not None else None


# ------------------------------------------------------------------------------------------
# resources, findings, rules


@dataclass(frozen=True)
class Resource:
    """What a check sees: the type token, the logical name and the (input) properties.

    Stack checks also see the URN and the property dependencies (which resources an input was
    computed from): the one link between resources that is known during a preview, before any
    id or ARN exists (AnalyzeStack's `propertyDependencies`)."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    deps: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A stack rule's violation, on one resource (`urn`) or on the stack (`urn` empty)."""

    message: str
    urn: str = ""


Check = Callable[[Resource, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Mapping[str, Any]], Iterable["Finding | str"]]


def malformed_message(resource: Resource, problem: Malformed) -> str:
    return (f"malformed input on {resource.name} ({resource.type}): {problem}; the policy "
            "cannot judge it, fix the value")


def internal_message(resource: Resource | None, error: BaseException) -> str:
    where = f" on {resource.name} ({resource.type})" if resource else ""
    return (f"{INTERNAL}{where}: {type(error).__name__}: {error}; report it with the resource's "
            "inputs")


def guarded(resource: Resource, messages: Callable[[], Iterable[str]]) -> list[str]:
    """Every message a check yields; malformed input and errors become messages too."""
    out: list[str] = []
    try:
        for message in messages():
            out.append(message)
    except UnknownValueError:
        raise
    except Malformed as problem:
        out.append(malformed_message(resource, problem))
    except Exception as error:  # the gate must never crash (module docstring)
        if _is_not_applicable(error):
            raise
        out.append(internal_message(resource, error))
    return out


def _is_not_applicable(error: BaseException) -> bool:
    return type(error).__name__ == "_NotApplicableError"


def each_resource(resources: Iterable[Resource],
                  check: Callable[[Resource], Iterable[str]]) -> Iterator[Finding]:
    """Run a per-resource part of a stack check: findings on that resource's URN, malformed
    input or errors on one resource never hide the others. A value unknown during preview is
    re-raised after every other resource was judged (the SDK then reports that the policy could
    not run fully; the violations found are still reported)."""
    unknown: UnknownValueError | None = None
    for resource in resources:
        try:
            for message in guarded(resource, lambda r=resource: check(r)):
                yield Finding(message, resource.urn)
        except UnknownValueError as error:
            unknown = unknown or error
    if unknown is not None:
        raise unknown


@dataclass(frozen=True)
class Rule:
    """One policy: `checks` maps resource type tokens to the pure check for that type."""

    name: str
    description: str
    checks: Mapping[str, Check] = field(default_factory=dict)
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stack_check: StackCheck | None = None
    #: Types a stack check reads (for the coverage tables; the check itself gets every resource).
    stack_types: frozenset[str] = frozenset()
    #: Check for every type not in `checks` (rules that decide applicability themselves).
    fallback: Check | None = None

    @property
    def types(self) -> frozenset[str]:
        """Every type token this rule judges."""
        return frozenset(self.checks) | self.stack_types

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}

    def config_with_defaults(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.defaults(), **dict(given or {})}

    def run(self, resource: Resource, config: Mapping[str, Any] | None = None) -> list[str]:
        """Messages for one resource (empty when compliant or when no check covers the type)."""
        check = self.checks.get(resource.type, self.fallback)
        if check is None:
            return []
        tracked = Resource(resource.type, resource.name, Node(resource.props), resource.urn,
                           resource.deps)
        settings = self.config_with_defaults(config)
        return guarded(tracked, lambda: check(tracked, settings))

    def run_stack(
        self, resources: Sequence[Resource], config: Mapping[str, Any] | None = None
    ) -> list[Finding]:
        """Findings over the whole stack; a value unknown during preview re-raises only when
        nothing else was found (`stack_findings` keeps both)."""
        found, unknown = self.stack_findings(resources, config)
        if unknown is not None and not found:
            raise unknown
        return found

    def stack_findings(
        self, resources: Sequence[Resource], config: Mapping[str, Any] | None = None
    ) -> tuple[list[Finding], UnknownValueError | None]:
        if self.stack_check is None:
            return [], None
        tracked = [Resource(r.type, r.name, Node(r.props), r.urn, r.deps) for r in resources]
        found: list[Finding] = []
        unknown: UnknownValueError | None = None
        try:
            for item in self.stack_check(tracked, self.config_with_defaults(config)):
                found.append(item if isinstance(item, Finding) else Finding(item))
        except UnknownValueError as error:
            unknown = error
        except Malformed as problem:
            found.append(Finding(f"malformed input: {problem}; the policy cannot judge it, "
                                 "fix the value"))
        except Exception as error:  # see the module docstring
            if _is_not_applicable(error):
                raise
            found.append(Finding(internal_message(None, error)))
        return found, unknown

    def policy(self) -> ResourceValidationPolicy | StackValidationPolicy:
        """The CrossGuard policy object; enforcement comes from the per-environment config."""
        schema = PolicyConfigSchema(properties={k: dict(v) for k, v in self.config.items()})
        if self.stack_check is not None:

            def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
                resources = [Resource(r.resource_type, r.name, r.props, r.urn,
                                      {k: [d.urn for d in v]
                                       for k, v in (r.property_dependencies or {}).items()})
                             for r in args.resources]
                found, unknown = self.stack_findings(resources, args.get_config())
                for finding in found:
                    report(finding.message, finding.urn or None)
                if unknown is not None:
                    raise unknown  # the SDK reports the policy could not run fully in preview

            return StackValidationPolicy(
                name=self.name,
                description=self.description,
                validate=validate_stack,
                config_schema=schema,
            )

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            resource = Resource(args.resource_type, args.name, args.props, args.urn)
            for message in self.run(resource, args.get_config()):
                report(message, None)

        return ResourceValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            config_schema=schema,
        )


# ------------------------------------------------------------------------------------------
# tags: AWS maps, ASG / aws-native / CloudFormation lists, Kubernetes metadata, Karpenter spec.tags


def _tag_list(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, entry in enumerate(items(value)):
        if not is_map(entry):
            raise Malformed(_join(path_of(value), i), entry, "a {key, value} tag")
        key = entry.get("key", entry.get("Key"))
        val = entry.get("value", entry.get("Value"))
        if not isinstance(key, str) or not isinstance(val, (str, int, float)) \
                or isinstance(val, bool):
            raise Malformed(path_of(entry), entry, "a {key, value} tag with string values")
        out[key] = str(val)
    return out


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """The tags a resource's inputs set, whatever shape the resource type uses for them."""
    tags = get(props, "tags")
    if tags is None:
        return {}
    if is_map(tags):
        return _plain_map(tags)
    return _tag_list(tags)


SERVING_KEYS = frozenset(
    f"{SERVING_TAG_PREFIX}{k}" for k in (
        "platform", "model-id", "instance-type", "quantization", "gpus-per-replica",
        "max-input-tokens", "max-total-tokens", "concurrency-target", "min-replicas",
        "max-replicas", "shape", "engine", "weights", "checkpoint",
    )
)
"""Keys `Naming.serving_tags` sets; other `llm-hosting/...` labels (node roles) are not them."""

MODELS_TAG = f"{SERVING_TAG_PREFIX}models"
"""Tag on capacity that serves several models (ECS shared instances, a SageMaker endpoint
config's variants): the model names, space-separated (components/ecs/shared_service.py)."""


def serving_tags(props: Mapping[str, Any]) -> dict[str, str]:
    """The `llm-hosting/*` serving tags (components/tags.py), plus the `model` tag next to them,
    wherever the resource carries them: AWS tags, Karpenter `spec.tags`, Kubernetes annotations
    or labels."""
    found: dict[str, str] = {}
    sources = [
        tags_of(props),
        tags_of(map_at(props, "spec")),
        _plain_map(get(props, "metadata", "labels")),
        _plain_map(get(props, "metadata", "annotations")),
        _plain_map(get(props, "spec", "template", "metadata", "annotations")),
    ]
    for source in sources:
        if any(k in SERVING_KEYS for k in source):
            found.update({k: v for k, v in source.items() if k in SERVING_KEYS or k == "model"})
    return found


def _plain_map(value: Any) -> dict[str, str]:
    """A string map (tags, labels, annotations); absent -> {}, other shapes are malformed."""
    if value is None:
        return {}
    if not is_map(value):
        raise Malformed(path_of(value), value, "a map of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise Malformed(_join(path_of(value), str(k)), v, "a string")
        out[str(k)] = str(v)
    return out


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
    return strip_ml(instance_type).partition(".")[0]


def is_gpu_family(family: str) -> bool:
    """NVIDIA GPU families on EC2 (G and P, e.g. g5, g6e, p4de, p5en); CPU types are ignored."""
    return bool(_GPU_FAMILY.match(family))
