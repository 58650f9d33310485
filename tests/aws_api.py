"""Check request dicts against the AWS API models that botocore ships (no AWS call).

`botocore.validate.ParamValidator` checks required members, types and minimums; AWS services
also reject values above a maximum, outside an enum or not matching a pattern, which
ParamValidator leaves to the service. `request_problems` adds those three checks, so a field
the API would reject fails offline with the member path. Used by the platforms' validation and
by the tests that map recorded resource inputs to API requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator


@cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def request_problems(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Every problem botocore's model finds in `params` for `operation`; [] when valid."""
    shape = service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = [line for line in report.generate_report().splitlines() if line.strip()]
    if problems and problems[0].startswith("Parameter validation failed"):
        problems = problems[1:]
    _strict(shape, params, operation, problems)
    return problems


@cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """The member's pattern, or None when it uses Java-only syntax (`\\p{...}` classes)
    that Python's `re` cannot compile; those members are left to ParamValidator."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _strict(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for key, member in shape.members.items():
            if key in value:
                _strict(member, value[key], f"{path}.{key}", problems)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, at most {meta['max']} allowed")
        for i, item in enumerate(value):
            _strict(shape.member, item, f"{path}[{i}]", problems)
    elif shape.type_name == "map" and isinstance(value, Mapping):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} entries, at most {meta['max']} allowed")
        for k, v in value.items():
            _strict(shape.value, v, f"{path}.{k}", problems)
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s values")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} chars, at most {meta['max']} allowed")
        pattern = _compiled(meta.get("pattern"))
        if pattern is not None and pattern.fullmatch(value) is None:
            problems.append(f"{path}: {value!r} does not match {pattern.pattern}")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(
        value, int | float
    ) and "max" in meta and value > meta["max"]:
        problems.append(f"{path}: {value} is above the maximum {meta['max']}")
