"""The example stacks recorded once per test session, shared by the policy test modules (each
recording runs the whole program under the offline mocks)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.offline import ROOT, Graph, run_program
from components.stackfile import read_stack_file

EXAMPLES = tuple(ROOT / f"Pulumi.{name}.yaml" for name in ("dev", "staging", "prod"))
"""The three example stacks, by name (users' own stack files do not change the tests)."""

_GRAPHS: dict[str, Graph] = {}


def recorded(path: Path) -> tuple[Graph, str]:
    """The stack's graph (recorded once per session) and its environment.

    `LLM_HOSTING_GRAPH_CACHE` (a folder; set by scripts/mutation.py, whose mutants of the
    policy pack leave the program unchanged) keeps the recordings across test sessions."""
    stack = read_stack_file(path)
    if path.name not in _GRAPHS:
        cache = os.environ.get("LLM_HOSTING_GRAPH_CACHE")
        pickled = Path(cache) / f"{path.name}.pickle" if cache else None
        if pickled is not None and pickled.is_file():
            _GRAPHS[path.name] = pickle.loads(pickled.read_bytes())
        else:
            _GRAPHS[path.name] = run_program(stack.config, stack=stack.stack,
                                             secret_keys=stack.secret_keys)
            if pickled is not None:
                pickled.parent.mkdir(parents=True, exist_ok=True)
                pickled.write_bytes(pickle.dumps(_GRAPHS[path.name]))
    return _GRAPHS[path.name], stack.config["llm-hosting:environment"]


def run_cached(config: Mapping[str, Any], *, stack: str, secret_keys: tuple[str, ...] = ()
               ) -> Graph:
    """`run_program`, kept in `LLM_HOSTING_GRAPH_CACHE` when that is set (the mutation run's
    pack mutants leave the program unchanged, and re-running it is most of a test's time)."""
    cache = os.environ.get("LLM_HOSTING_GRAPH_CACHE")
    if not cache:
        return run_program(config, stack=stack, secret_keys=secret_keys)
    key = hashlib.sha256(json.dumps([dict(config), stack, list(secret_keys)], sort_keys=True,
                                    default=str).encode()).hexdigest()[:32]
    pickled = Path(cache) / f"run-{key}.pickle"
    if pickled.is_file():
        return pickle.loads(pickled.read_bytes())
    graph = run_program(config, stack=stack, secret_keys=secret_keys)
    pickled.parent.mkdir(parents=True, exist_ok=True)
    pickled.write_bytes(pickle.dumps(graph))
    return graph
