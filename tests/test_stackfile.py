"""The stack file is read as the Pulumi CLI reads it (gopkg.in/yaml.v3 + Pulumi's config object).

Each row of the table pins one rule of go-yaml/yaml v3.0.1 `resolve.go`/`decode.go` (the version
pulumi/pulumi's go.mod pins) or of pulumi/pulumi `sdk/go/common/resource/config/object.go`, where
PyYAML's YAML 1.1 resolver answers differently or where Go's number formats matter.
"""

from __future__ import annotations

import json

import pytest
import yaml

from components.offline import ROOT
from components.stackfile import (
    SECRET_PLACEHOLDER,
    StackFileError,
    go_json_float,
    read_stack_file,
    read_stack_text,
    resolve_plain,
)


def _value(scalar: str) -> object:
    """What the program receives for `scalar` inside a structured config value."""
    stack = read_stack_text(f"config:\n  llm-hosting:v:\n    x: {scalar}\n", "t")
    return json.loads(stack.config["llm-hosting:v"])["x"]


CLI_READS = [
    # booleans: only true/false in three spellings (resolve.go resolveMapList)
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("Yes", "Yes"),
    ("tRUE", "tRUE"),
    # nulls
    ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None), ("nULL", "nULL"),
    # integers: strconv.ParseInt(s, 0, 64) after dropping every "_"
    ("42", 42), ("+42", 42), ("-42", -42), ("1_000", 1000), ("1__0_", 10), ("0x1F", 31),
    ("0X1f", 31), ("0o17", 15), ("-0o17", -15), ("0b101", 5), ("-0b101", -5),
    ("010", 8),          # YAML 1.1 octal, kept by yaml.v3 for compatibility
    ("-010", -8),
    ("0", 0), ("00", 0),
    ("08", 8),           # not octal: ParseInt fails, the float regex takes it (8.0 -> "8")
    ("09.5", 9.5),
    ("9223372036854775807", 2**63 - 1), ("18446744073709551615", 2**64 - 1),  # int64, uint64
    # beyond uint64: a float64, in Go's shortest digits without an exponent
    ("18446744073709551616", 18446744073709552000),
    ("1" + "0" * 21, 1e21),             # Go's encoding/json switches to 1e+21 here
    ("1" * 310, "1" * 310),             # beyond float64: ParseFloat's range error keeps a string
    ("0x", "0x"), ("_1", "_1"), ("1_000_", 1000),
    # sexagesimals are YAML 1.1 only: strings here
    ("1:30", "1:30"), ("190:20:30", "190:20:30"),
    # floats (yamlStyleFloat) and Go's JSON float format
    ("4.0", 4), ("4.5", 4.5), ("1e3", 1000), ("1E3", 1000), ("1_0.5", 10.5), (".5", 0.5),
    ("+.5", 0.5), ("1.", 1), ("1.5e-7", 1.5e-7), ("1e-400", 0), ("-0.0", 0),
    (".5_0", ".5_0"), ("1e", "1e"), ("0x1p-2", "0x1p-2"), ("Infinity", "Infinity"),
    ("nan", "nan"), ("inf", "inf"),
    # timestamps: Pulumi turns time.Time into Go's Time.String()
    ("2024-06-01", "2024-06-01 00:00:00 +0000 UTC"),
    ("2024-6-1", "2024-06-01 00:00:00 +0000 UTC"),
    ("2024-06-01T10:20:30Z", "2024-06-01 10:20:30 +0000 UTC"),
    ("2024-06-01t10:20:30.500Z", "2024-06-01 10:20:30.5 +0000 UTC"),
    ("2024-06-01 10:20:30", "2024-06-01 10:20:30 +0000 UTC"),
    ("2024-06-01T10:20:30+02:00", "2024-06-01 10:20:30 +0200 +0200"),
    ("2024-02-30", "2024-02-30"),        # no such day: not a timestamp
    ("2023-02-29", "2023-02-29"), ("2024-02-29", "2024-02-29 00:00:00 +0000 UTC"),
    ("24-06-01", "24-06-01"),           # the year must have four digits
    ("'2024-06-01'", "2024-06-01"),     # quoted: a string
    # quoting and explicit tags
    ("'42'", "42"), ('"true"', "true"), ("!!str 42", "42"), ("!!int '42'", 42),
    ("!!float 1", 1), ("!!binary aGVsbG8=", "hello"), ("!custom 12", "12"), ("! 12", 12),
    ("!!set {a, b}", {"a": None, "b": None}), ("!!omap [{a: 1}]", [{"a": 1}]),
    ("|\n      text", "text\n"),
    # merges: explicit keys first, then earlier maps
    ("{<<: [{a: 1}, {a: 2, b: 2}], b: 3}", {"a": 1, "b": 3}),
    ("{'<<': 1}", {"<<": 1}),
]


@pytest.mark.parametrize(("scalar", "expected"), CLI_READS, ids=[r[0] for r in CLI_READS])
def test_values_read_as_the_cli_reads_them(scalar, expected):
    got = _value(scalar)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("scalar", "error"), [
    (".inf", "not a finite number"), ("-.Inf", "not a finite number"),
    (".nan", "not a finite number"), ("!!float .NaN", "not a finite number"),
    ("!!int 1.5", "cannot decode !!float `1.5` as a !!int"),
    ("!!bool yes", "cannot decode !!str `yes` as a !!bool"),
    ("!!binary not*base64", "invalid base64"),
    ("{a: 1, a: 2}", "mapping key 'a' already defined at line 3"),
    ("{a: 1, 'a': 2}", "already defined"),
    ("{1: x}", "key '1' is not a string (YAML reads it as !!int)"),
    ("{true: x}", "key 'true' is not a string"),
    ("{2024-01-01: x}", "is not a string (YAML reads it as !!timestamp)"),
    ("{<<: 1}", "map merge requires a map"),
])
def test_values_the_cli_refuses_are_errors_at_their_key_path(scalar, error):
    with pytest.raises(StackFileError) as err:
        _value(scalar)
    (problem,) = err.value.problems
    assert problem.startswith("Pulumi.t.yaml:3:") and "llm-hosting:v" in problem
    assert error in problem


def test_pyyaml_would_read_the_issues_examples_differently():
    # The reason this reader exists: YAML 1.1 (PyYAML's default resolver) disagrees.
    assert yaml.safe_load("x: yes")["x"] is True and _value("yes") == "yes"
    assert yaml.safe_load("x: 1:30")["x"] == 90 and _value("1:30") == "1:30"
    assert yaml.safe_load("{a: 1, a: 2}") == {"a": 2}


def test_top_level_scalars_reach_the_program_as_the_engine_passes_them():
    stack = read_stack_text(
        "config:\n  aws:region: us-east-1\n  llm-hosting:a: 4.0\n  llm-hosting:b: yes\n"
        "  llm-hosting:c: true\n  llm-hosting:d: 2024-06-01\n  llm-hosting:e:\n"
        "  bare: 1\n  aws:config:profile: p\n", "t")
    assert stack.config == {
        "aws:region": "us-east-1", "llm-hosting:a": "4", "llm-hosting:b": "yes",
        "llm-hosting:c": "true", "llm-hosting:d": "2024-06-01 00:00:00 +0000 UTC",
        "llm-hosting:e": "", "llm-hosting:bare": "1", "aws:profile": "p",
    }
    assert stack.warnings == ('Pulumi.t.yaml: llm-hosting:e: no value; Pulumi passes an empty '
                              'string (set it to "" to say so, or remove the key)',)


def test_objects_are_json_with_sorted_keys_and_secrets_kept_out():
    stack = read_stack_text(
        "config:\n  llm-hosting:hfToken:\n    secure: v1:abc\n"
        "  llm-hosting:tags: {b: '1', a: x}\n  llm-hosting:n:\n    deep: {secure: v1:def}\n", "t")
    assert stack.config["llm-hosting:hfToken"] == SECRET_PLACEHOLDER
    assert stack.config["llm-hosting:tags"] == '{"a":"x","b":"1"}'
    assert json.loads(stack.config["llm-hosting:n"]) == {"deep": SECRET_PLACEHOLDER}
    assert stack.secret_keys == ("llm-hosting:hfToken", "llm-hosting:n")


@pytest.mark.parametrize(("text", "expected"), [
    ("config:\n  aws:region: us-east-1\n\tllm-hosting:x: 1\n",
     "Pulumi.t.yaml:3:1: found character '\\t' that cannot start any token"),
    ("config:\n  aws:region: us-east-1\n   llm-hosting:x: 1\n",
     "Pulumi.t.yaml:3:17: mapping values are not allowed here"),
    ("config:\n  aws:region: 'us-east-1\n", "Pulumi.t.yaml:3:1: found unexpected end of stream"),
    ("config:\n  a: \x01\n", "Pulumi.t.yaml:2:6: character U+0001 is not allowed in YAML"),
])
def test_syntax_errors_name_file_line_column_and_show_the_line(text, expected):
    with pytest.raises(StackFileError) as err:
        read_stack_text(text, "t")
    (problem,) = err.value.problems
    assert problem.startswith(expected)
    first, shown, caret = problem.split("\n")
    line, column = (int(x) for x in first.split(":")[1:3])
    source = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
    assert shown.strip("\ufffd→ ") == source.strip("\x01\t ")
    assert caret == "    " + " " * (column - 1) + "^"


@pytest.mark.parametrize(("text", "expected"), [
    ("config:\n  - a\n", "config: must be a mapping of `<namespace>:<key>: value` entries, not a "
     "list"),
    ("config: hello\n", "config: must be a mapping"),
    ("- config\n", "the stack file must be a mapping with a `config:` key, not a list"),
    ("config:\n  a:b:c: 1\n", "'a:b:c' is not a configuration key"),
    ("config:\n  models: 1\n  llm-hosting:models: 2\n", "are the same key llm-hosting:models"),
    ("config:\n  a: &a [*a]\n", "an alias refers to the value that contains it"),
    ("config:\n  a: " + "[" * 70 + "]" * 70 + "\n", "nested more than 64 levels deep"),
    ("secretsprovider: [x]\n", "secretsprovider: must be a string"),
])
def test_files_the_cli_refuses_are_clear_errors(text, expected):
    with pytest.raises(StackFileError) as err:
        read_stack_text(text, "t")
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_billion_laughs_is_refused_like_yaml_v3_does_not_expanded():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    with pytest.raises(StackFileError, match="excessive aliasing"):
        read_stack_text("\n".join(levels) + "\n", "t")


def test_an_empty_file_and_ignored_keys_are_read_as_the_cli_does():
    assert read_stack_text("", "t").config == {}
    assert read_stack_text("# only a comment\n", "t").config == {}
    stack = read_stack_text("confg:\n  aws:region: x\n---\nnot: read\n", "t")
    assert stack.config == {}
    assert stack.warnings == ("Pulumi.t.yaml: top-level key 'confg' is ignored by Pulumi (a stack "
                              "file has secretsprovider, encryptedkey, encryptionsalt, config, "
                              "environment); did you mean `config`?",)


def test_a_byte_order_mark_is_skipped_and_non_utf8_is_an_error():
    assert read_stack_text("\ufeffconfig:\n  a: b\n", "t").config == {"llm-hosting:a": "b"}
    with pytest.raises(StackFileError, match=r"Pulumi.t.yaml:2: not UTF-8"):
        read_stack_text(b"config:\n  a: \xff\n", "t")


@pytest.mark.parametrize(("number", "go"), [
    (4.0, "4"), (0.5, "0.5"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
    (1.5e-7, "1.5e-7"), (1e-6, "0.000001"), (-2.5e300, "-2.5e+300"), (1e-10, "1e-10"),
    (123456789.125, "123456789.125"),
])
def test_floats_are_printed_as_gos_encoding_json_prints_them(number, go):
    assert go_json_float(number) == go


def test_resolve_plain_keeps_explicit_tag_rules():
    assert resolve_plain("12", "!!float") == ("!!float", 12.0)
    assert resolve_plain("12", "!unknown") == ("!unknown", "12")


def test_the_example_stacks_read_the_same_as_a_yaml_1_1_reader_would():
    # The examples use nothing the two readers disagree on; this guards edits to them.
    for name in ("dev", "staging", "prod"):
        path = ROOT / f"Pulumi.{name}.yaml"
        ours = read_stack_file(path).config
        theirs = yaml.safe_load(path.read_text())["config"]
        for key, value in theirs.items():
            expected = json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(
                value, (dict, list)) else str(value)
            assert ours[key] == expected, key


@pytest.mark.parametrize(("value", "disabled", "problems"), [
    ('["aws", " kubernetes "]', {"aws", "kubernetes"}, []),  # the engine trims each name
    ("", set(), []),             # an empty list is written as ""
    ("null", set(), []),
    (["aws"], {"aws"}, []),      # tests may pass Python objects
    ("aws", set(), ["pulumi:disable-default-providers: 'aws' is not a list of package names; "
                    "write it as a YAML list, e.g. [aws, aws-native, kubernetes]"]),
    ('{"aws": true}', set(), ["pulumi:disable-default-providers: '{\"aws\": true}' is not a list "
                              "of package names; write it as a YAML list, e.g. [aws, aws-native, "
                              "kubernetes]"]),
    ('["aws", 1]', {"aws"}, ["pulumi:disable-default-providers[1]: 1 must be a string (a package "
                             "name)"]),
])
def test_disable_default_providers_is_read_as_the_engine_reads_it(value, disabled, problems):
    from components.offline import read_disabled_default_providers

    got = read_disabled_default_providers({"pulumi:disable-default-providers": value})
    assert got == (frozenset(disabled), problems)


def test_a_scalar_disable_default_providers_stops_the_offline_run_with_the_problem():
    from components.offline import EngineCheckError, run_program

    config = dict(read_stack_file(ROOT / "Pulumi.dev.yaml").config)
    config["pulumi:disable-default-providers"] = "aws"
    with pytest.raises(EngineCheckError) as err:
        run_program(config, stack="dev")
    assert err.value.problems[0].startswith("pulumi:disable-default-providers: 'aws' is not")
