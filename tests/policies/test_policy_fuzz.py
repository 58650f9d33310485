"""No exception escapes a policy: fuzzed inputs through the analyzer protocol give diagnostics.

A pack gates every preview; a policy that raises fails the preview for everyone (and a crafted
value could switch the gate off). So every resource type any rule judges, and the whole stack,
is sent to the pack as the engine sends it (policies/client.py) with inputs that are wrong in
every way an engine can carry: wrong types, numbers as strings, `"inf"`/`"nan"`/`"1e999"`
(protobuf cannot carry a float infinity, so they travel as strings), huge numbers, empty and
huge strings, missing keys, junk nested anywhere. The gRPC call must answer, every diagnostic
must be a message, and none may be the framework's last-resort `policy error` (an exception a
check did not turn into a malformed-value violation itself).

Three generators:
- a deterministic sweep over every resource of the example stacks, each property replaced by
  each kind of junk in turn;
- hypothesis over every judged type with objects built from the property names the rules read
  (collected from the rules' source), so deep paths get junk too;
- stacks of fuzzed resources with property dependencies for the stack policies.
In-process, the same checks also get real float infinities and NaN.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_harness import Analyzer, Diagnostic
from stacks import EXAMPLES, recorded

from components.offline import ROOT, Recorded
from policies.rules import RULES
from policies.rules._framework import INTERNAL, Resource

CONFIG = json.loads((ROOT / "policies" / "config.prod.json").read_text())
JUDGED = sorted(set().union(*(r.types for r in RULES)))
"""Every type a rule checks (required-tags judges every taggable type through its fallback)."""

_IDENTIFIER = re.compile(r'"([a-zA-Z][a-zA-Z0-9]*(?:[./-][a-zA-Z0-9]+)*)"')


def _vocabulary() -> list[str]:
    words: set[str] = set()
    for path in (ROOT / "policies" / "rules").glob("*.py"):
        words.update(_IDENTIFIER.findall(path.read_text()))
    return sorted(w for w in words if len(w) < 60)


VOCAB = _vocabulary()

JUNK: list[Any] = [
    None, True, False, 0, -1, 1, 1.5, 1e308, -1e308, 10**30, "", "inf", "-inf", "nan", "NaN",
    "Infinity", "1e999", "-0", "true", "false", "x" * 300, "*", "0.0.0.0/0", "::/0",
    "not a cidr/99", "arn:aws:iam::123456789012:root", "hf_" + "x" * 34, "{", "[]", "{}",
    [], {}, [None], ["x", 1, None], {"k": None}, {"": ""}, [[["deep"]]], {"a": {"b": {"c": []}}},
]


# The SDK's marshalled secret envelope: replacing a key inside it makes the value unreadable to
# the SDK itself (before any policy runs), so the sweep replaces the secret whole, never a part.
_SIG = "4dabf18193072939515e22adb298388d"


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict) and _SIG in value:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaf_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _leaf_paths(v, (*prefix, i))


def _replace(value: Any, path: tuple[Any, ...], junk: Any) -> Any:
    if not path:
        return junk
    out = copy.deepcopy(value)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = copy.deepcopy(junk)
    return out


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    analyzer.configure(CONFIG)
    yield analyzer
    analyzer.stop()


def _recorded(type_: str, props: dict[str, Any], i: int = 0,
              deps: dict[str, list[str]] | None = None) -> Recorded:
    urn = f"urn:pulumi:prod::llm-hosting::{type_}::r{i}"
    return Recorded(type=type_, name=f"r{i}", inputs=props, urn=urn, outputs=props,
                    property_dependencies=deps or {})


def assert_judged(found: list[Diagnostic]) -> None:
    for d in found:
        assert isinstance(d.message, str) and d.message
        assert INTERNAL not in d.message, d.message


def example_resources() -> list[Recorded]:
    seen: dict[str, Recorded] = {}
    for path in EXAMPLES:
        for r in recorded(path)[0].resources:
            if r.custom and not r.type.startswith("pulumi:"):
                # The richest example of each type: most property paths to fuzz.
                if len(json.dumps(r.inputs)) > len(json.dumps(seen[r.type].inputs)
                                                   if r.type in seen else ""):
                    seen[r.type] = r
    return list(seen.values())


_KNOWN = set()


def _read_by_rules(path: tuple[Any, ...]) -> bool:
    return bool(path) and isinstance(path[-1], (str, int)) and (
        isinstance(path[-1], int) or path[-1] in _KNOWN)


def _paths(value: Any, limit: int) -> list[tuple[Any, ...]]:
    """Property paths, those the rules read first, at most `limit`."""
    _KNOWN.update(VOCAB)
    paths = list(_leaf_paths(value))[1:]
    return (sorted(paths, key=lambda p: (not _read_by_rules(p), len(p))))[:limit]


def test_every_property_of_every_example_resource_replaced_by_junk(pack):
    """Property paths of every resource type the examples register (those the rules read
    first, every depth) each get the next kind of junk; JSON-string properties (IAM documents,
    container definitions) are also fuzzed inside."""
    sent = 0
    k = 0
    for r in example_resources():
        inputs = json.loads(json.dumps(r.inputs))
        variants = []
        for path in _paths(inputs, 10):
            variants.append(_replace(inputs, path, JUNK[k % len(JUNK)]))
            k += 1
        for key, value in inputs.items():
            if isinstance(value, str) and value[:1] in "[{":
                parsed = json.loads(value)
                for path in _paths(parsed, 6):
                    variants.append({**inputs, key: json.dumps(
                        _replace(parsed, path, JUNK[k % len(JUNK)]))})
                    k += 1
        for variant in variants:
            found = pack.analyze([_recorded(r.type, variant)])
            assert_judged(found)
            sent += 1
    assert sent > 450


_leaf = st.one_of(st.sampled_from(JUNK[:-8]), st.integers(), st.floats(allow_nan=False,
                                                                       allow_infinity=False),
                  st.text(max_size=20), st.sampled_from(VOCAB))
_value = st.recursive(
    _leaf,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(VOCAB), children, max_size=5)),
    max_leaves=25,
)
_props = st.dictionaries(st.sampled_from(VOCAB), _value, max_size=8)

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(type_=st.sampled_from(JUDGED), props=_props)
def test_every_judged_type_with_generated_junk(pack, type_, props):
    assert_judged(pack.analyze([_recorded(type_, props)]))


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stack=st.lists(st.tuples(st.sampled_from(JUDGED), _props), min_size=1, max_size=8),
       links=st.lists(st.tuples(st.integers(0, 7), st.sampled_from(VOCAB), st.integers(0, 7)),
                      max_size=6))
def test_stack_policies_with_generated_junk_and_dependencies(pack, stack, links):
    deps: dict[int, dict[str, list[str]]] = {}
    for src, prop, dst in links:
        if src < len(stack) and dst < len(stack):
            deps.setdefault(src, {}).setdefault(prop, []).append(
                f"urn:pulumi:prod::llm-hosting::{stack[dst][0]}::r{dst}")
    resources = [_recorded(t, p, i, deps.get(i)) for i, (t, p) in enumerate(stack)]
    assert_judged(pack.analyze_stack(resources))


_floats = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0])


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(type_=st.sampled_from(JUDGED),
       props=st.dictionaries(st.sampled_from(VOCAB), st.recursive(
           st.one_of(_floats, _leaf), lambda c: st.one_of(
               st.lists(c, max_size=3), st.dictionaries(st.sampled_from(VOCAB), c, max_size=3)),
           max_leaves=12), max_size=6))
def test_real_float_infinities_in_process(type_, props):
    """Infinities cannot cross the protocol as numbers; a check called in-process (unit tests,
    future SDKs) must still turn them into violations."""
    resource = Resource(type_, "r", props, "urn:r")
    for rule in RULES:
        for message in rule.run(resource, CONFIG.get(rule.name) if isinstance(
                CONFIG.get(rule.name), dict) else None):
            assert INTERNAL not in message, message
        for finding in rule.run_stack([resource], None):
            assert INTERNAL not in finding.message, finding.message


def test_a_malformed_value_names_resource_property_and_value(pack):
    """The issue's case: `max-replicas: "inf"` on a launch template. Before, a policy raised
    and broke every preview."""
    from components.tags import SERVING_TAG_PREFIX as P

    tags = {"project": "p", "stack": "s", "environment": "prod", "managed-by": "pulumi",
            "model": "m", f"{P}platform": "ecs", f"{P}model-id": "Qwen/Qwen2.5-7B-Instruct",
            f"{P}instance-type": "g6e.xlarge", f"{P}quantization": "none",
            f"{P}gpus-per-replica": "1", f"{P}max-input-tokens": "1024",
            f"{P}max-total-tokens": "2048", f"{P}concurrency-target": "1",
            f"{P}min-replicas": "1", f"{P}max-replicas": "inf"}
    lt = _recorded("aws:ec2/launchTemplate:LaunchTemplate",
                   {"instanceType": "g6e.xlarge", "tags": tags,
                    "metadataOptions": {"httpTokens": "required",
                                        "httpPutResponseHopLimit": "two"}})
    found = {(d.policy, d.detail) for d in pack.analyze([lt])}
    assert ("model-fits-gpu-memory",
            "serving tag llm-hosting/max-replicas is not an integer: 'inf'") in found
    assert ("imdsv2-required",
            "malformed input on r0 (aws:ec2/launchTemplate:LaunchTemplate): "
            "metadataOptions.httpPutResponseHopLimit is \"two\", not a finite number; the "
            "policy cannot judge it, fix the value") in found
    assert_judged(pack.analyze_stack([lt]))


def test_vocabulary_covers_the_properties_the_rules_read():
    assert {"metadataOptions", "httpTokens", "maxSize", "productionVariants", "ingress",
            "assumeRolePolicy", "policyDocument", "retentionInDays"} <= set(VOCAB)
    assert len(JUDGED) > 130
    assert Path(__file__).name.startswith("test_")
