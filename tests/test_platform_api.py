"""The platform contract: one switch names the platforms, nothing imports in a circle."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import get_args

import pytest

from components.config import ConfigError, Platform, parse_stack_config
from components.offline import ROOT
from components.platforms import CONFIG_CHECKS, PLATFORMS, parse_config

PLATFORM_PACKAGES = {f"components.{name}" for name in get_args(Platform)}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every `components.*` module a file imports, at any depth (function-level too: a lazy
    import is still an edge of the import graph). `from pkg import submodule` is an edge to the
    submodule; `from pkg import name` one to the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in (ROOT / "components").rglob("*.py")}
    return {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}


def test_components_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep):], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_config_names_no_platform_package_and_only_the_switch_names_them_all():
    graph = _graph()
    assert not {m for m in graph["components.config"]
                if any(m.startswith(p) for p in PLATFORM_PACKAGES)}
    naming_all = [name for name, deps in graph.items()
                  if all(any(d.startswith(p) for d in deps) for p in PLATFORM_PACKAGES)]
    assert naming_all == ["components.platforms"]


def test_every_platform_in_the_config_contract_is_registered():
    assert set(PLATFORMS) == set(get_args(Platform)) == set(CONFIG_CHECKS)


def test_a_platform_check_runs_only_through_its_registration(base_config):
    """`dataCapturePercent` without a URI is something only the sagemaker check knows."""
    base_config["llm-hosting:sagemaker"] = {"dataCapturePercent": 10}
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base_config.items()}
    parse_stack_config(raw, project="llm-hosting", stack="dev")  # no checks registered: passes
    with pytest.raises(ConfigError) as err:
        parse_config(raw, project="llm-hosting", stack="dev")
    assert err.value.problems == (
        "llm-hosting:sagemaker.dataCaptureS3Uri: required when dataCapturePercent is 10; set "
        "s3://<bucket>/<prefix>",
    )
