"""Read a `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program.

The offline `plan` command and the tests use this to run a stack's real config without the CLI,
so it must agree with the CLI on every value: a file `plan` accepts must mean the same thing to
`pulumi up`. The CLI decodes stack files with Go's `gopkg.in/yaml.v3` (pulumi/pulumi
`sdk/go/common/encoding/marshal.go`, `workspace/loaders.go:LoadProjectStackBytes`), not with a
YAML 1.1 reader such as PyYAML's default one, and the two disagree on plain scalars. Here PyYAML
only parses (syntax, positions); every scalar is then resolved with yaml.v3's rules
(go-yaml/yaml v3.0.1 `resolve.go:resolve`, `decode.go:scalar`):

* booleans are only `true`/`True`/`TRUE` and `false`/...; `yes`, `on`, `y` stay strings;
* nulls are `~`, `null`/`Null`/`NULL` and the empty scalar;
* integers follow Go's `strconv.ParseInt(s, 0, 64)` after dropping every `_`: `0x1F`, `0o17`,
  `0b101` and the YAML 1.1 octal `010` (= 8); `08` is not octal and becomes the float 8;
* `1:30` (a YAML 1.1 sexagesimal) is a string; `.inf`/`.nan` are floats; a number too large
  for a float64 (a 310-digit integer) is a string;
* a plain `2024-06-01` (also with a time) is a timestamp, which Pulumi's config object turns
  into Go's `time.Time.String()`, `2024-06-01 00:00:00 +0000 UTC` (`config/object.go`);
* `!!binary` is base64-decoded to text; `!!set` and other tags on collections are ignored
  (a set is a map of nulls); an unknown tag on a scalar leaves it a string;
* a key defined twice in one mapping is an error, as are non-string keys (`1: x`,
  `workspace/project.go:SimplifyMarshalledValue`) and infinities/NaN anywhere (Go's
  `encoding/json` cannot encode them, so the CLI fails to load the file).

Config then reaches the program as the engine passes it: scalars as strings (numbers and
booleans in their JSON text), structured values as JSON with sorted keys and floats in Go's
format (`4.0` arrives as `4`), keys without a namespace in the project's (`llm-hosting`), and
`secure:` values only as "this key is a secret": their ciphertext cannot be read without the
stack's secrets provider, and nothing offline needs the token itself.

Every problem is reported at once, each as `Pulumi.<stack>.yaml:LINE:COL: what`, followed by the
offending line for syntax errors; a file the CLI would refuse raises `StackFileError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from components.config import NAMESPACE, ConfigError

SECRET_PLACEHOLDER = "[secret]"

STACK_FILE_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment")
"""Top-level keys of a stack file (pulumi/pulumi `workspace/project.go:ProjectStack`)."""

MAX_DEPTH = 64
"""Nesting deeper than this is refused: no stack config nests beyond a handful of levels, and
the limit keeps every read linear and free of recursion errors."""


class StackFileError(ConfigError):
    """The stack file is not one the Pulumi CLI would load; every problem is listed."""


@dataclass(frozen=True)
class StackFile:
    stack: str
    config: dict[str, str]
    secret_keys: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    """What the CLI accepts but probably is a mistake (a key with no value, an ignored key)."""
    text: str = field(default="", repr=False)
    """The file as read, for checks on its comments (`# REPLACE` markers)."""


# ------------------------------------------------------------------------------ yaml.v3 rules

_IMPLICIT = "!llm-hosting/implicit"
"""Tag our loader gives every node that has no explicit tag: resolution is ours, not PyYAML's."""

_LONG_TAG_PREFIX = "tag:yaml.org,2002:"
_RESOLVABLE = frozenset({"", "!!str", "!!bool", "!!int", "!!float", "!!null", "!!timestamp"})
# resolve.go: resolveMap, the only spellings looked up by value.
_BY_VALUE: dict[str, tuple[str, Any]] = {
    **{s: ("!!bool", True) for s in ("true", "True", "TRUE")},
    **{s: ("!!bool", False) for s in ("false", "False", "FALSE")},
    **{s: ("!!null", None) for s in ("", "~", "null", "Null", "NULL")},
    **{s: ("!!float", math.nan) for s in (".nan", ".NaN", ".NAN")},
    **{s: ("!!float", math.inf) for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: ("!!float", -math.inf) for s in ("-.inf", "-.Inf", "-.INF")},
    "<<": ("!!merge", "<<"),
}
# resolve.go: resolveTable, the first characters that make a scalar worth resolving.
_HINTS = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"),
          **dict.fromkeys("yYnNtTfFoO~", "M"), ".": "."}
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")  # what Go's ParseFloat takes after '.'
_DIGITS = {2: re.compile(r"^[01]+$"), 8: re.compile(r"^[0-7]+$"), 10: re.compile(r"^[0-9]+$"),
           16: re.compile(r"^[0-9a-fA-F]+$")}
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
# resolve.go: allowedTimestampFormats, as Go's time.Parse reads them (1-2 digit fields).
_DATE = r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
_CLOCK = r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,]([0-9]+))?"
_TIMESTAMPS = (
    re.compile(rf"^{_DATE}[Tt]{_CLOCK}(Z|[+-][0-9]{{2}}:[0-9]{{2}})$"),
    re.compile(rf"^{_DATE} {_CLOCK}$"),
    re.compile(rf"^{_DATE}$"),
)


class _Refused(Exception):
    """A value the CLI refuses; the message says why."""


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_LONG_TAG_PREFIX):] if tag.startswith(_LONG_TAG_PREFIX) else tag


def _go_parse_uint(s: str, signed: bool) -> int | None:
    """Go's `strconv.ParseInt(s, 0, 64)` (signed) or `ParseUint(s, 0, 64)`; None on error."""
    sign = 1
    if signed and s[:1] in ("+", "-"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if not s:
        return None
    base = 10
    if s[0] == "0":
        prefix = s[1:2].lower()
        if len(s) >= 3 and prefix in ("b", "o", "x"):
            base, s = {"b": 2, "o": 8, "x": 16}[prefix], s[2:]
        else:
            base, s = 8, s[1:]
    if s and not _DIGITS[base].match(s):
        return None
    value = sign * int(s, base) if s else 0
    low, high = _INT64 if signed else (0, _UINT64_MAX)
    return value if low <= value <= high else None


def _date_fields_valid(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12:
        return False
    days = [31, 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28, 31, 30,
            31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return 1 <= day <= days


def _timestamp(value: str) -> str | None:
    """yaml.v3's `parseTimestamp`, answered as Pulumi stores it: Go's `time.Time.String()`.

    A zone offset prints as `+0200 +0200` (Go's name for a zone it fabricates); the CLI names
    the zone instead when the offset is its machine's local one, which offline cannot know.
    """
    for pattern in _TIMESTAMPS:
        match = pattern.match(value)
        if match is None:
            continue
        groups = match.groups()
        year, month, day = (int(g) for g in groups[:3])
        if not _date_fields_valid(year, month, day):
            return None
        hour = minute = second = 0
        fraction, zone = "", "+0000 UTC"
        if len(groups) > 3:
            hour, minute, second = (int(g) for g in groups[3:6])
            if hour > 23 or minute > 59 or second > 59:
                return None
            digits = (groups[6] or "")[:9].ljust(9, "0").rstrip("0")
            fraction = f".{digits}" if digits else ""
            offset = groups[7] if len(groups) > 7 else "Z"
            if offset not in (None, "Z", "+00:00", "-00:00"):
                hours, minutes = int(offset[1:3]), int(offset[4:6])
                if hours > 24 or minutes > 60:
                    return None
                text = f"{offset[0]}{hours:02d}{minutes:02d}"
                zone = f"{text} {text}"
        return (f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
                f"{fraction} {zone}")
    return None


def resolve_plain(value: str, tag: str = "") -> tuple[str, Any]:
    """(tag, value) of a scalar as yaml.v3 resolves it: go-yaml/yaml v3.0.1 `resolve.go`.

    `tag` is the scalar's explicit short tag (`!!int`), or "" for a plain, untagged scalar.
    Raises `_Refused` where yaml.v3 fails (an explicit tag the text does not match).
    """
    if tag not in _RESOLVABLE:
        if tag == "!!binary":
            try:  # Go's base64.StdEncoding skips only \r and \n.
                data = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
            except (binascii.Error, ValueError):
                raise _Refused("!!binary value contains invalid base64 data") from None
            return "!!binary", data.decode("utf-8", errors="replace")
        return tag, value  # an unknown tag: the text, as a string
    rtag, out = _resolve(value, tag)
    if tag in ("", rtag, "!!str"):
        return rtag, out
    if tag == "!!float" and rtag == "!!int":
        return "!!float", float(out)
    raise _Refused(f"cannot decode {rtag} `{value}` as a {tag}")


def _resolve(value: str, tag: str) -> tuple[str, Any]:
    hint = _HINTS.get(value[:1], "N" if value == "" else None)
    if hint is None or tag == "!!str":
        return "!!str", value
    if value in _BY_VALUE:
        return _BY_VALUE[value]
    if hint == ".":
        if _DOT_FLOAT.match(value) and math.isfinite(number := float(value)):
            return "!!float", number
    elif hint in ("D", "S"):
        if tag in ("", "!!timestamp") and (stamp := _timestamp(value)) is not None:
            return "!!timestamp", stamp
        plain = value.replace("_", "")
        for signed in (True, False):
            if (integer := _go_parse_uint(plain, signed)) is not None:
                return "!!int", integer
        # Go's ParseFloat fails (range error) beyond float64, and the text stays a string.
        if _YAML_STYLE_FLOAT.match(plain) and math.isfinite(number := float(plain)):
            return "!!float", number
    return "!!str", value


# ------------------------------------------------------------------------ how Pulumi passes it


def go_json_float(number: float) -> str:
    """A float64 as Go's `encoding/json` writes it: `4`, `0.5`, `1e+21`, `1e-7`.

    Shortest round-trip digits (Python's `repr` and Go's `strconv` agree on them), in plain
    notation unless |x| < 1e-6 or >= 1e21 (`encode.go:floatEncoder`).
    """
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    exact = Decimal(repr(number)).normalize()
    if 1e-6 <= abs(number) < 1e21:
        return format(exact, "f")
    sign, digits, exponent = exact.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = exponent + len(digits) - 1
    mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
    # Go prints at least two exponent digits and the encoder drops the 0 of e-07.
    exp = f"e{'-' if power < 0 else '+'}{abs(power):02d}"
    if power < 0 and abs(power) < 10:
        exp = f"e-{abs(power)}"
    return f"{'-' if sign else ''}{mantissa}{exp}"


def _json(value: Any) -> str:
    """Go `json.Marshal` of the decoded value: sorted keys, Go's float format."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, float):
        return go_json_float(value)
    return json.dumps(value)


def _text(value: Any) -> str:
    """A top-level scalar as the engine passes it (`config/object.go:MarshalString`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _json(value)


# ---------------------------------------------------------------------------------- the reader


class _Loader(yaml.SafeLoader):
    """PyYAML for syntax only: every untagged node gets `_IMPLICIT`, resolved later by us."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return _IMPLICIT


@dataclass
class _Reader:
    """Turns one composed document into Python values with yaml.v3's and Pulumi's rules."""

    filename: str
    project: str = NAMESPACE
    problems: list[str] = field(default_factory=list)
    decodes: int = 0
    aliased: int = 0
    _active: set[int] = field(default_factory=set)
    _seen: set[int] = field(default_factory=set)
    _alias_depth: int = 0

    def config_key(self, name: str) -> str:
        """The key path of a `config:` entry as problems name it (bare keys namespaced)."""
        return _config_key(name, self.project)[0] or name

    def where(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.filename}:{mark.line + 1}:{mark.column + 1}"

    def refuse(self, node: yaml.Node, path: str, what: str) -> None:
        self.problems.append(f"{self.where(node)}: {path}: {what}" if path else
                             f"{self.where(node)}: {what}")

    def value(self, node: yaml.Node, path: str, depth: int = 0) -> Any:
        """The node's value; problems are recorded (with `path`) and the value is None."""
        if depth > MAX_DEPTH:
            self.refuse(node, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        key = id(node)
        if key in self._active:
            self.refuse(node, path, "an alias refers to the value that contains it")
            return None
        self.decodes += 1
        # A node met a second time is an alias expansion (PyYAML hands aliases back as the
        # anchored node). yaml.v3 refuses a document that is mostly alias expansions
        # (decode.go:allowedAliasRatio): the billion-laughs guard.
        alias = key in self._seen
        self._seen.add(key)
        self._alias_depth += alias
        if self._alias_depth:
            self.aliased += 1
        try:
            if self.aliased > 100 and self.decodes > 1000 and (
                    self.aliased / self.decodes > _allowed_alias_ratio(self.decodes)):
                raise _Refused("document contains excessive aliasing")
            self._active.add(key)
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path, depth)
            if isinstance(node, yaml.SequenceNode):
                return [self.value(item, f"{path}[{i}]", depth + 1)
                        for i, item in enumerate(node.value)]
            return self.scalar(node, path)
        finally:
            self._active.discard(key)
            self._alias_depth -= alias

    def scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        tag = "" if node.tag == _IMPLICIT else _short_tag(node.tag)
        if not tag and node.style:  # quoted or block scalars are strings
            return node.value
        try:
            rtag, out = resolve_plain(node.value, tag)
        except _Refused as exc:
            self.refuse(node, path, str(exc))
            return None
        if rtag == "!!float" and not math.isfinite(out):
            self.refuse(node, path, f"{node.value} is not a finite number; Pulumi passes config "
                        "to the program as JSON, which has no infinity or NaN")
            return None
        return out

    def scalar_key(self, node: yaml.Node) -> tuple[str, Any]:
        if not isinstance(node, yaml.ScalarNode):
            return "", None
        tag = "" if node.tag == _IMPLICIT else _short_tag(node.tag)
        if not tag and node.style:
            return "!!str", node.value
        try:
            return resolve_plain(node.value, tag)
        except _Refused:
            return "", None

    def mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[str, Any]:
        first: dict[tuple[str, str], yaml.Node] = {}
        for key_node, _ in node.value:
            ident = (type(key_node).__name__, getattr(key_node, "value", ""))
            if not isinstance(key_node.value, str):
                continue
            if ident in first:
                line = first[ident].start_mark.line + 1
                self.refuse(key_node, path, f"mapping key {key_node.value!r} already defined at "
                            f"line {line}; the Pulumi CLI refuses duplicate keys")
            else:
                first[ident] = key_node
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                merges.append(value_node)
                continue
            rtag, key = self.scalar_key(key_node)
            if not isinstance(key, str) or rtag in ("!!timestamp", "!!null"):
                shown = getattr(key_node, "value", "")
                self.refuse(key_node, path, f"key {shown!r} is not a string (YAML reads it as "
                            f"{rtag or 'a collection'}); the Pulumi CLI requires string keys: "
                            "quote it")
                continue
            child = self.config_key(key) if path == "config" else _join(path, key)
            out[key] = self.value(value_node, child, depth + 1)
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.refuse(merge, path, "map merge requires a map or a sequence of maps "
                                "as the value")
                    break
                merged = self.value(source, path, depth + 1)
                for key, value in (merged or {}).items():
                    out.setdefault(key, value)  # explicit keys, then earlier merges, win
        return out


def _is_merge(node: yaml.Node) -> bool:
    """yaml.v3 `isMerge`: a plain, untagged `<<` (its parser tags it !!merge), or `!!merge <<`."""
    if not isinstance(node, yaml.ScalarNode) or node.value != "<<":
        return False
    return (node.tag == _IMPLICIT and not node.style) or _short_tag(node.tag) == "!!merge"


def _allowed_alias_ratio(decodes: int) -> float:
    """go-yaml/yaml v3.0.1 decode.go:allowedAliasRatio."""
    low, high = 400_000, 4_000_000
    if decodes <= low:
        return 0.99
    if decodes >= high:
        return 0.10
    return 0.99 - 0.89 * ((decodes - low) / (high - low))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _syntax_problem(filename: str, text: str, exc: yaml.YAMLError) -> str:
    """`Pulumi.x.yaml:LINE:COL: what`, then the offending line and a caret under the column."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        before = text[:exc.position]
        line, column = before.count("\n"), exc.position - (before.rfind("\n") + 1)
        what = f"character U+{exc.character:04X} is not allowed in YAML ({exc.reason})"
    else:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        context = getattr(exc, "context", None)
        if context:
            context_mark = getattr(exc, "context_mark", None)
            at = f" at line {context_mark.line + 1}" if context_mark is not None else ""
            what = f"{what} ({context}{at})"
        if mark is None:
            return f"{filename}: {what}"
        line, column = mark.line, mark.column
    lines = text.splitlines()
    shown = "".join(c if c.isprintable() else "→" if c == "\t" else "\ufffd"  # made visible
                    for c in (lines[line] if line < len(lines) else ""))
    return f"{filename}:{line + 1}:{column + 1}: {what}\n    {shown}\n    {' ' * column}^"


def _first_document(text: str, filename: str) -> yaml.Node | None:
    """The first document's node tree: yaml.v3's Unmarshal reads only the first document."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        return _compose_first(loader)
    except yaml.YAMLError as exc:
        raise StackFileError([_syntax_problem(filename, text, exc)]) from None
    except RecursionError:
        raise StackFileError([f"{filename}: nested more than {MAX_DEPTH} levels deep"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _compose_first(loader: _Loader) -> yaml.Node | None:
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        return None
    return loader.compose_document()


def read_stack_text(text: str | bytes, stack: str, project: str = NAMESPACE) -> StackFile:
    """A stack file's config as the CLI passes it to the program; `StackFileError` if the CLI
    would refuse the file."""
    filename = f"Pulumi.{stack}.yaml"
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text[:exc.start].count(b"\n") + 1
            raise StackFileError([f"{filename}:{line}: not UTF-8 text ({exc.reason} at byte "
                                  f"{exc.start})"]) from None
    text = text.removeprefix("\ufeff")  # the CLI strips a UTF-8 byte-order mark
    root = _first_document(text, filename)
    reader = _Reader(filename, project)
    if root is None:
        return StackFile(stack=stack, config={}, secret_keys=(), text=text)
    try:
        doc = reader.value(root, "")
    except _Refused as exc:
        raise StackFileError([f"{filename}: {exc}"]) from None
    if reader.problems:
        raise StackFileError(reader.problems)
    if doc is None:
        return StackFile(stack=stack, config={}, secret_keys=(), text=text)
    if not isinstance(doc, dict):
        raise StackFileError([f"{reader.where(root)}: the stack file must be a mapping with a "
                              f"`config:` key, not {_kind(doc)}"])
    return _stack_file(doc, root, stack, project, reader, text)


def _stack_file(doc: dict[str, Any], root: yaml.MappingNode, stack: str, project: str,
                reader: _Reader, text: str) -> StackFile:
    filename = reader.filename
    nodes = {getattr(k, "value", None): v for k, v in root.value}
    warnings: list[str] = []
    problems: list[str] = []
    for key in doc:
        if key not in STACK_FILE_KEYS:
            warnings.append(f"{filename}: top-level key {key!r} is ignored by Pulumi (a stack "
                            f"file has {', '.join(STACK_FILE_KEYS)}); did you mean `config`?")
    for key in ("secretsprovider", "encryptedkey", "encryptionsalt"):
        if isinstance(doc.get(key), (dict, list)):
            problems.append(f"{reader.where(nodes[key])}: {key}: must be a string, not "
                            f"{_kind(doc[key])}")
    if doc.get("environment") is not None:
        warnings.append(f"{filename}: `environment:` imports Pulumi ESC environments, which "
                        "offline runs cannot read; their config values are missing here")
    raw = doc.get("config")
    if raw is not None and not isinstance(raw, dict):
        problems.append(f"{reader.where(nodes['config'])}: config: must be a mapping of "
                        f"`<namespace>:<key>: value` entries, not {_kind(raw)}")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    sources: dict[str, str] = {}
    for name, value in (raw if isinstance(raw, dict) else {}).items():
        key, problem = _config_key(name, project)
        if problem:
            problems.append(f"{filename}: config: {problem}")
            continue
        if key in sources:
            problems.append(f"{filename}: config: {sources[key]!r} and {name!r} are the same key "
                            f"{key}; the CLI would keep either one: remove one")
            continue
        sources[key] = name
        if value is None:
            warnings.append(f"{filename}: {key}: no value; Pulumi passes an empty string (set it "
                            "to \"\" to say so, or remove the key)")
        secret, plain = _unsecure(value)
        if secret:
            secret_keys.append(key)
        config[key] = _json(plain) if isinstance(plain, (dict, list)) else _text(plain)
    if problems:
        raise StackFileError(problems)
    return StackFile(stack=stack, config=config, secret_keys=tuple(secret_keys),
                     warnings=tuple(warnings), text=text)


def _unsecure(value: Any) -> tuple[bool, Any]:
    """(is secret, value with every `{secure: ciphertext}` replaced by a placeholder)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("secure"), str):
            return True, SECRET_PLACEHOLDER
        pairs = {k: _unsecure(v) for k, v in value.items()}
        return any(s for s, _ in pairs.values()), {k: v for k, (_, v) in pairs.items()}
    if isinstance(value, list):
        items = [_unsecure(v) for v in value]
        return any(s for s, _ in items), [v for _, v in items]
    return False, value


def _config_key(name: str, project: str) -> tuple[str, str]:
    """pulumi/pulumi `config/key.go:ParseKey`, after `loaders.go` namespaced bare keys."""
    if ":" not in name:
        return f"{project}:{name}", ""
    parts = name.split(":")
    if len(parts) == 2:
        return name, ""
    if len(parts) == 3 and parts[1] == "config":
        return f"{parts[0]}:{parts[2]}", ""
    return "", (f"{name!r} is not a configuration key; keys are `<namespace>:<name>` "
                f"(e.g. {project}:models)")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the scalar {value!r}"


def read_stack_file(path: Path) -> StackFile:
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return read_stack_text(path.read_bytes(), stack, _project_name(path.parent))


def _project_name(folder: Path) -> str:
    """The `name:` of the project file beside the stack file (it namespaces bare keys)."""
    project = folder / "Pulumi.yaml"
    try:
        doc = yaml.safe_load(project.read_text()) if project.is_file() else None
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        doc = None
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else NAMESPACE


def stack_files(root: Path) -> list[Path]:
    """Every `Pulumi.<stack>.yaml` in a project folder (for `plan --all`)."""
    return sorted(p for p in root.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")


EXAMPLE_STACKS = ("dev", "staging", "prod")
"""The example stacks this repository ships; tests use these by name, never `stack_files`."""


def example_stack_files(root: Path) -> list[Path]:
    return [root / f"Pulumi.{name}.yaml" for name in EXAMPLE_STACKS]


# ------------------------------------------------------------------------------ placeholders

EXAMPLE_ACCOUNT_IDS = ("111122223333", "123456789012", "444455556666", "777788889999")
"""Account ids AWS's documentation uses in examples; no real account has them."""
_EXAMPLE_ACCOUNT = re.compile(rf"(?<![0-9])({'|'.join(EXAMPLE_ACCOUNT_IDS)})(?![0-9])")
_EXAMPLE_BUCKET = re.compile(r"^s3://(example[a-z0-9.-]*|amzn-s3-demo[a-z0-9.-]*|"
                             r"doc-example[a-z0-9.-]*)(/|$)", re.I)
_REPLACE_MARKER = re.compile(r"#.*\bREPLACE\b")


def placeholder_warnings(stack: StackFile) -> list[str]:
    """Placeholders still in a stack file, each with its key path and line: example buckets,
    AWS's example account ids, and lines marked `# REPLACE` (the examples mark theirs so)."""
    filename = f"Pulumi.{stack.stack}.yaml"
    lines = stack.text.splitlines()
    found: list[tuple[str, str, str]] = []  # (key path, value, why)
    for key, raw in stack.config.items():
        try:
            value = json.loads(raw) if raw[:1] in ("{", "[") else raw
        except ValueError:
            value = raw
        for path, text in _strings(key, value):
            if _EXAMPLE_BUCKET.match(text):
                found.append((path, text, "is the example's placeholder bucket; stage your "
                              "weights in your own bucket (docs/deploy.md#stage-weights-in-s3-"
                              "weightsuri)"))
            elif match := _EXAMPLE_ACCOUNT.search(text):
                found.append((path, text, f"uses {match.group(1)}, an example account id from "
                              "AWS's documentation; use your own"))
    warnings: list[str] = []
    covered: set[int] = set()
    for path, text, why in found:
        line = next((i for i, t in enumerate(lines) if text in t and i not in covered), None)
        if line is not None:
            covered.add(line)
        at = f"{filename}:{line + 1}" if line is not None else filename
        warnings.append(f"{at}: placeholder: {path}: {text} {why}")
    for i, text in enumerate(lines):
        if i not in covered and _REPLACE_MARKER.search(text):
            warnings.append(f"{filename}:{i + 1}: placeholder: marked `# REPLACE`: "
                            f"{text.strip()}")
    return warnings


def _strings(path: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(f"{path}.{k}", v)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(f"{path}[{i}]", v)]
    return []
