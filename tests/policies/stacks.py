"""The example stacks recorded once per test session, shared by the policy test modules (each
recording runs the whole program under the offline mocks)."""

from __future__ import annotations

from pathlib import Path

from components.offline import ROOT, Graph, run_program
from components.stackfile import read_stack_file

EXAMPLES = tuple(ROOT / f"Pulumi.{name}.yaml" for name in ("dev", "staging", "prod"))
"""The three example stacks, by name (users' own stack files do not change the tests)."""

_GRAPHS: dict[str, Graph] = {}


def recorded(path: Path) -> tuple[Graph, str]:
    """The stack's graph (recorded once per session) and its environment."""
    stack = read_stack_file(path)
    if path.name not in _GRAPHS:
        _GRAPHS[path.name] = run_program(stack.config, stack=stack.stack,
                                         secret_keys=stack.secret_keys)
    return _GRAPHS[path.name], stack.config["llm-hosting:environment"]
