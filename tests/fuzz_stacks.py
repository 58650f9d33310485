"""Hypothesis strategies for stack files "around the examples": the three example stacks with
values swapped for the inputs issue 14 found troublesome, keys dropped, duplicated or invented,
YAML the CLI reads differently from a YAML 1.1 reader, and text-level damage (tabs, cut quotes).

Documents are emitted by a small block-style writer of our own, so the text can hold what a YAML
library would quote or refuse to write: plain `yes` and `1:30`, `.inf`, 310-digit numbers,
duplicate keys, tags (`!!binary`, `!!set`), anchors and aliases.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

from components.facts import GPU_INSTANCES, MODEL_SHAPES
from components.offline import ROOT

EXAMPLES = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Raw:
    """A scalar written verbatim (plain, tagged, flow): what YAML libraries would quote."""

    text: str


@dataclass
class Pairs:
    """A mapping as written: keys in order, duplicates allowed."""

    items: list[tuple[Any, Any]]


RAW_TOKENS = [
    "yes", "no", "on", "off", "y", "Y", "True", "FALSE", "~", "null", "", "1:30", "190:20:30",
    "010", "08", "0x1F", "0o17", "0b101", "1_000", "1e3", "4.0", ".5", "-0", "+12",
    ".inf", "-.inf", ".nan", ".NaN", "1" * 310, "9" * 25, "-" + "9" * 40, "1e400",
    "2024-06-01", "2024-06-01T10:00:00Z", "2024-02-30", "!!binary aGVsbG8=", "!!binary ***",
    "!!set {a, b}", "!!str 12", "!!int 12", "!!int x", "!!float 1", "!!bool yes", "!custom 3",
    "!!omap [{a: 1}]", "[]", "{}", "[aws]", "aws", '"*"', "[1, 2]", "{a: 1, a: 2}", "{1: x}",
    "&anchor [1, 2]", "'unterminated", "\"\"", "{secure: v1:abc}", "|\n  block", ">-\n  folded",
]
"""Plain scalars and flow text that exercise yaml.v3's resolver and Pulumi's config object."""

KEYS = [
    "name", "modelId", "engine", "quantization", "maxInputTokens", "maxTotalTokens",
    "gpusPerReplica", "instanceType", "minReplicas", "maxReplicas", "capacity", "weightsUri",
    "weightsKmsKeyArn", "concurrencyTarget", "shape", "parameters", "activeParameters", "layers",
    "hiddenSize", "attentionHeads", "kvHeads", "headDim", "vocabSize", "maxPositionEmbeddings",
    "tiedEmbeddings", "dtype", "intermediateSize", "expertsPerToken", "listenerPriorities",
    "cidrBlock", "availabilityZones", "natGateways",
    "endpointDeployment", "maxInstanceCount", "dataCapturePercent", "dataCaptureS3Uri",
    "sharedInstances", "models", "warmPoolSize", "allowedCidrs", "clusterAdminArns",
    "publicAccessCidrs", "systemNodeCount", "maxGpusPerModel", "ingress", "monitoring",
    "llm-hosting:environment", "llm-hosting:platform", "llm-hosting:models",
    "llm-hosting:network", "llm-hosting:sagemaker", "llm-hosting:eks", "llm-hosting:ecs",
    "llm-hosting:tags", "llm-hosting:hfToken", "llm-hosting:protection", "aws:region",
    "pulumi:disable-default-providers", "environment", "platform", "unknownKey", "a:b:c",
    "1", "true", "<<",
]

GOOD = [
    "sagemaker", "eks", "ecs", "dev", "staging", "prod", "vllm", "tgi", "none", "awq", "gptq",
    "fp8", "spot", "on-demand", "rolling", "blueGreen", "single", "onePerAz", "off", "auto",
    "10.0.0.0/16", "0.0.0.0/0", "s3://my-bucket/prefix/", "s3://example-weights/x/",
    "arn:aws:iam::111122223333:role/admin", "amp", "internal-alb",
    *sorted(MODEL_SHAPES)[:12], *sorted(GPU_INSTANCES)[::4], *(f"ml.{n}" for n in
                                                             sorted(GPU_INSTANCES)[:3]),
]


def example_doc(name: str) -> Any:
    """An example stack as `Pairs`/lists/scalars (parsed with PyYAML; the examples use nothing
    where its YAML 1.1 reading differs)."""
    return _to_pairs(yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text()))


def _to_pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs([(k, _to_pairs(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [_to_pairs(v) for v in value]
    return value


# ---------------------------------------------------------------------------------- writing

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_./:-]+$")


def _scalar(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {float("inf"): ".inf", float("-inf"): "-.inf"}.get(value, repr(value)) \
            if value == value else ".nan"
    return json.dumps(value)  # a double-quoted YAML string


def _key(key: Any) -> str:
    """Keys plain where YAML allows, so `1`, `true` and `<<` keep their YAML meaning."""
    if not isinstance(key, str):
        return _scalar(key)
    return key if _PLAIN_KEY.match(key) or key == "<<" else json.dumps(key)


def emit(value: Any, indent: int = 0) -> list[str]:
    """Block-style lines for a Pairs/list/scalar tree (scalars go on their parent's line)."""
    pad = " " * indent
    if isinstance(value, Pairs):
        if not value.items:
            return [f"{pad}{{}}"]
        lines = []
        for key, item in value.items:
            if isinstance(item, (Pairs, list)) and _has_items(item):
                lines.append(f"{pad}{_key(key)}:")
                lines += emit(item, indent + 2)
            else:
                lines.append(f"{pad}{_key(key)}: {_inline(item)}")
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{pad}[]"]
        lines = []
        for item in value:
            if isinstance(item, (Pairs, list)) and _has_items(item):
                inner = emit(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {_inline(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _has_items(value: Any) -> bool:
    return bool(value.items if isinstance(value, Pairs) else value)


def _inline(value: Any) -> str:
    if isinstance(value, Pairs):
        return "{}"
    if isinstance(value, list):
        return "[]"
    text = _scalar(value)
    return text.replace("\n", "\n    ") if isinstance(value, Raw) else text


def to_text(doc: Any) -> str:
    return "\n".join(emit(doc)) + "\n"


# -------------------------------------------------------------------------------- mutations

leaf_values = st.one_of(
    st.sampled_from(RAW_TOKENS).map(Raw),
    st.sampled_from(GOOD),
    st.integers(min_value=-3, max_value=10),
    st.sampled_from([0, 1, 2, 8, 999, 1000, 1001, 4096, 2**24, 2**24 + 1, 10**6, 10**12,
                     2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
values = st.recursive(
    leaf_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=3).map(Pairs),
    ),
    max_leaves=6,
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, Pairs):
        for i, (_, v) in enumerate(node.items):
            out += _paths(v, (*path, i))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for i in path:
        node = node.items[i][1] if isinstance(node, Pairs) else node[i]
    return node


def _set(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = _get(node, path[:-1])
    i = path[-1]
    if isinstance(parent, Pairs):
        parent.items[i] = (parent.items[i][0], value)
    else:
        parent[i] = value
    return node


@st.composite
def mutated_docs(draw: st.DrawFn) -> Any:
    """An example stack with 1-4 structural mutations."""
    doc = example_doc(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        # Inside `config:` (Hypothesis would favour the first path, `config` itself, which
        # "config-root" replaces on its own now and then).
        paths = [p for p in _paths(doc) if len(p) > 1] or [()]
        path = draw(st.randoms(use_true_random=False)).choice(paths)
        target = _get(doc, path)
        action = draw(st.sampled_from(["replace", "replace", "replace", "replace", "delete",
                                       "add", "duplicate", "copy-model", "replace", "delete",
                                       "config-root"]))
        if action == "config-root":
            doc = Pairs([("config", draw(values))]) if draw(st.booleans()) else draw(values)
        elif action == "replace":
            doc = _set(doc, path, draw(values))
        elif action == "delete" and path:
            parent = _get(doc, path[:-1])
            (parent.items if isinstance(parent, Pairs) else parent).pop(path[-1])
        elif action == "add" and isinstance(target, Pairs):
            target.items.insert(draw(st.integers(0, len(target.items))),
                                (draw(st.sampled_from(KEYS)), draw(values)))
        elif action == "duplicate" and isinstance(target, Pairs) and target.items:
            key, _ = target.items[draw(st.integers(0, len(target.items) - 1))]
            target.items.append((key, draw(values)))
        elif action == "copy-model" and isinstance(target, list) and target:
            item = target[draw(st.integers(0, len(target) - 1))]
            target.append(_to_pairs(_plain(item)))
    return doc


def _plain(node: Any) -> Any:
    """A deep copy as plain dicts/lists (Pairs with duplicates keep the last)."""
    if isinstance(node, Pairs):
        return {k: _plain(v) for k, v in node.items if isinstance(k, str)}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


@st.composite
def damaged_text(draw: st.DrawFn, text: str) -> str:
    """Text-level damage: a tab, a cut quote, a dropped or doubled line, a shifted indent."""
    lines = text.splitlines()
    if not lines:
        return text
    i = draw(st.randoms(use_true_random=False)).randrange(len(lines))
    kind = draw(st.sampled_from(["tab", "quote", "drop", "double", "indent", "cut"]))
    line = lines[i]
    if kind == "tab":
        lines[i] = "\t" + line.lstrip(" ")
    elif kind == "quote":
        lines[i] = line + ' "'
    elif kind == "drop":
        del lines[i]
    elif kind == "double":
        lines.insert(i, line)
    elif kind == "indent":
        lines[i] = " " + line
    else:
        lines[i] = line[: draw(st.integers(0, len(line)))]
    return "\n".join(lines) + "\n"


@st.composite
def stack_texts(draw: st.DrawFn) -> str:
    text = to_text(draw(mutated_docs()))
    if draw(st.integers(0, 4)) == 0:
        text = draw(damaged_text(text))
    return text
