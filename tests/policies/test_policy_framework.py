"""The framework every rule stands on (policies/rules/_framework.py): property views that know
their path, accessors that refuse a wrong shape, and the guarantee that nothing a check raises
reaches the SDK except its own "unknown during preview" signal."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.rules._framework import (
    INTERNAL,
    Finding,
    Malformed,
    Node,
    Resource,
    Rule,
    as_bool,
    as_number,
    boolean_at,
    count_at,
    each_resource,
    get,
    items,
    items_at,
    json_at,
    map_at,
    number_at,
    parse_json,
    path_of,
    preview,
    serving_tags,
    string_at,
    tags_of,
    wrap,
)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def node(value: dict[str, Any]) -> Node:
    return Node(unknown_checking_proxy(value))


def malformed(call: Any) -> str:
    with pytest.raises(Malformed) as err:
        call()
    return str(err.value)


def test_views_know_their_path_at_every_depth():
    props = node({"spec": {"containers": [{"name": "a"}, {"env": [{"value": 1}]}]}})
    env = get(props, "spec", "containers", 1, "env", 0)
    assert path_of(env) == "spec.containers[1].env[0]"
    assert path_of(items_at(props, "spec", "containers")[0]) == "spec.containers[0]"
    assert path_of("scalar", "fallback") == "fallback"
    seq = get(props, "spec", "containers")
    assert [path_of(c) for c in seq[0:2]] == ["spec.containers[0]", "spec.containers[1]"]
    assert "spec" in props and "nope" not in props and len(props) == 1
    assert list(props) == ["spec"]
    assert repr(map_at(props, "spec")).startswith("Node('spec', ")
    assert repr(seq).startswith("Seq('spec.containers', ")
    assert wrap(seq, "elsewhere") is seq


def test_get_steps_and_defaults():
    props = node({"a": {"b": [10, None]}, "n": None})
    assert get(props, "a", "b", 0) == 10
    assert get(props, "a", "b", 1, default="d") == "d"   # null is absent
    assert get(props, "a", "b", 2, default="d") == "d"   # past the end
    assert get(props, "missing", "x", default=0) == 0
    assert get(props, "n", "x") is None
    assert malformed(lambda: get(props, "a", "b", "c")) == \
        'a.b is [10, null], not an object'
    assert malformed(lambda: get(props, "a", 0)) == 'a is {"b": [10, null]}, not a list'


def test_typed_accessors_refuse_wrong_shapes_with_the_path():
    props = node({"s": "x", "n": "12", "f": 1.5, "b": "TRUE", "l": [1], "m": {"k": 1},
                  "bad": True, "big": 10**400, "neg": -1, "frac": 2.5})
    assert string_at(props, "s") == "x" and string_at(props, "none") is None
    assert malformed(lambda: string_at(props, "f")) == "f is 1.5, not a string"
    assert number_at(props, "n") == 12.0 and number_at(props, "f") == 1.5
    assert malformed(lambda: number_at(props, "bad")) == "bad is true, not a finite number"
    assert malformed(lambda: number_at(props, "big")).endswith("not a finite number")
    assert count_at(props, "n") == 12 and count_at(props, "none") is None
    assert malformed(lambda: count_at(props, "neg")) == "neg is -1, not a whole number >= 0"
    assert malformed(lambda: count_at(props, "frac")) == "frac is 2.5, not a whole number >= 0"
    assert boolean_at(props, "b") is True and boolean_at(props, "none") is None
    assert malformed(lambda: boolean_at(props, "s")) == 'b is "TRUE", not true or false' \
        .replace("b is \"TRUE\"", "s is \"x\"")
    assert items_at(props, "l") == [1] and items_at(props, "none") == []
    assert malformed(lambda: items_at(props, "m")) == 'm is {"k": 1}, not a list'
    assert malformed(lambda: items(get(props, "s"))) == '(properties) is "x", not a list'
    assert dict(map_at(props, "m")) == {"k": 1} and dict(map_at(props, "none")) == {}
    assert path_of(map_at(props, "none")) == "none"
    assert malformed(lambda: map_at(props, "l")) == "l is [1], not an object"


@pytest.mark.parametrize(("value", "expected"), [
    (1, 1.0), (" 2.5 ", 2.5), ("1e3", 1000.0), (True, None), ("inf", None), ("-Infinity", None),
    ("nan", None), (math.inf, None), (10**400, None), (1e308, 1e308), ("x", None), (None, None),
    ([1], None),
])
def test_as_number(value, expected):
    assert as_number(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("true", True), ("False", False), ("yes", None), (1, None),
])
def test_as_bool(value, expected):
    assert as_bool(value) is expected


def test_json_documents_as_strings_or_objects():
    props = node({"doc": '{"a": [1]}', "obj": {"a": 2}, "bad": "{", "deep": "[" * 100000})
    assert path_of(get(json_at(props, "doc"), "a")) == "doc.a"
    assert get(json_at(props, "obj"), "a") == 2 and json_at(props, "none") is None
    assert malformed(lambda: json_at(props, "bad")) == 'bad is "{", not a JSON document'
    assert parse_json("[" * 100000) is None and parse_json({"a": 1}) == {"a": 1}


def test_preview_is_short_and_never_raises():
    assert preview("x" * 200) == '"' + "x" * 76 + "..."
    assert preview({"k": list(range(100))}).endswith(", 18, 19]}")  # 20 elements at most
    nested: Any = []
    for _ in range(30):
        nested = [nested]
    assert preview(nested, limit=1000).count("[") == 21
    assert preview({"u": UNKNOWN}) == f'{{"u": "{UNKNOWN}"}}'
    assert preview(unknown_checking_proxy({"u": UNKNOWN})) == '{"u": "<unknown>"}'
    assert preview(object()).startswith("\"<object object")


def test_tags_in_every_shape_and_malformed_ones():
    assert tags_of(node({"tags": {"a": "1", "b": None, "n": 2}})) == {"a": "1", "n": "2"}
    assert tags_of(node({"tags": [{"key": "a", "value": "1"}, {"Key": "b", "Value": 2}]})) == \
        {"a": "1", "b": "2"}
    assert tags_of(node({})) == {}
    assert malformed(lambda: tags_of(node({"tags": ["x"]}))) == \
        'tags[0] is "x", not a {key, value} tag'
    assert malformed(lambda: tags_of(node({"tags": [{"key": 1, "value": "v"}]}))).endswith(
        "not a {key, value} tag with string values")
    assert malformed(lambda: tags_of(node({"tags": {"a": ["x"]}}))) == \
        'tags.a is ["x"], not a string'
    annotated = node({"metadata": {"annotations": {"llm-hosting/platform": "eks",
                                                   "other": "x"}, "labels": {"model": "m"}}})
    assert serving_tags(annotated) == {"llm-hosting/platform": "eks"}


# --------------------------------------------------------------------------------------------
# rules


def _check(resource: Resource, config: dict[str, Any]) -> Any:
    value = get(resource.props, "mode")
    if value == "raise":
        raise RuntimeError("boom")
    if value == "zero":
        return [str(1 / 0)]
    yield f"{config['limit']} {string_at(resource.props, 'mode')}"


RULE = Rule(name="t", description="A test rule.", checks={"t:a:A": _check},
            config={"limit": {"type": "integer", "default": 3}})


def test_rule_runs_the_check_of_its_type_with_defaults_and_config():
    assert RULE.run(Resource("t:a:A", "r", {"mode": "m"})) == ["3 m"]
    assert RULE.run(Resource("t:a:A", "r", {"mode": "m"}), {"limit": 5}) == ["5 m"]
    assert RULE.run(Resource("t:b:B", "r", {"mode": "m"})) == []
    assert RULE.defaults() == {"limit": 3} and RULE.types == frozenset({"t:a:A"})


def test_malformed_input_and_errors_become_messages():
    assert RULE.run(Resource("t:a:A", "r", {"mode": 7})) == [
        "malformed input on r (t:a:A): mode is 7, not a string; the policy cannot judge it, "
        "fix the value"]
    (raised,) = RULE.run(Resource("t:a:A", "r", {"mode": "raise"}))
    assert raised == (f"{INTERNAL} on r (t:a:A): RuntimeError: boom; report it with the "
                      "resource's inputs")
    (zero,) = RULE.run(Resource("t:a:A", "r", {"mode": "zero"}))
    assert zero.startswith(f"{INTERNAL} on r (t:a:A): ZeroDivisionError")


def test_unknown_values_reach_the_sdk_untouched():
    props = unknown_checking_proxy({"mode": UNKNOWN})
    with pytest.raises(UnknownValueError):
        RULE.run(Resource("t:a:A", "r", props))


def _stack(resources: Any, config: dict[str, Any]) -> Any:
    def judge(r: Resource) -> Any:
        yield f"{r.name}: {string_at(r.props, 'mode')}"

    yield from each_resource(resources, judge)
    yield "stack-level"


STACK = Rule(name="s", description="A stack rule.", stack_check=_stack,
             stack_types=frozenset({"t:a:A"}))


def test_stack_findings_per_resource_malformed_ones_do_not_hide_the_others():
    found = STACK.run_stack([Resource("t:a:A", "a", {"mode": "x"}, "urn:a"),
                             Resource("t:a:A", "b", {"mode": 1}, "urn:b"),
                             Resource("t:a:A", "c", {"mode": "y"}, "urn:c")])
    assert found == [
        Finding("a: x", "urn:a"),
        Finding("malformed input on b (t:a:A): mode is 1, not a string; the policy cannot "
                "judge it, fix the value", "urn:b"),
        Finding("c: y", "urn:c"),
        Finding("stack-level", ""),
    ]
    assert STACK.types == frozenset({"t:a:A"}) and RULE.run_stack([]) == []


def test_unknowns_in_a_stack_rule_keep_what_was_found():
    unknown = Resource("t:a:A", "u", unknown_checking_proxy({"mode": UNKNOWN}), "urn:u")
    known = Resource("t:a:A", "k", {"mode": "x"}, "urn:k")
    found, error = STACK.stack_findings([known, unknown])
    assert found == [Finding("k: x", "urn:k")] and isinstance(error, UnknownValueError)
    assert STACK.run_stack([known, unknown]) == [Finding("k: x", "urn:k")]
    with pytest.raises(UnknownValueError):
        STACK.run_stack([unknown])


def _broken(resources: Any, config: dict[str, Any]) -> Any:
    yield "first"
    raise KeyError("k")


def test_a_stack_rule_that_raises_reports_what_it_found_and_the_error():
    rule = Rule(name="b", description="Broken.", stack_check=_broken)
    assert rule.run_stack([]) == [Finding("first"), Finding(
        f"{INTERNAL}: KeyError: 'k'; report it with the resource's inputs")]

    def bad_shape(resources: Any, config: dict[str, Any]) -> Any:
        raise Malformed("x.y", [1], "an object")
        yield  # pragma: no cover

    assert Rule(name="m", description="M.", stack_check=bad_shape).run_stack([]) == [
        Finding("malformed input: x.y is [1], not an object; the policy cannot judge it, fix "
                "the value")]


def test_a_preview_keeps_twenty_keys_and_twenty_levels():
    """A malformed value is shown bounded: a huge map or a deep nest cannot blow up a message."""
    wide = {f"k{i:02}": i for i in range(25)}
    shown = json.loads(preview(wide, limit=10_000))
    assert sorted(shown) == [f"k{i:02}" for i in range(20)]
    deep: Any = 0
    for _ in range(30):
        deep = {"a": deep}
    text = preview(deep, limit=10_000)
    assert text == '{"a": ' * 21 + '"..."' + "}" * 21
