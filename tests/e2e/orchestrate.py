"""preflight -> up -> smoke -> destroy for one ephemeral stack, with a wall-clock cap.

The steps talk to Pulumi through a small `Automation` interface: `PulumiAutomation` wraps the
Pulumi Automation API (`pulumi.automation`, a local workspace on this project), and the offline
test replaces it with a fake that records calls, to prove the contract that matters most for
money: whatever fails (preflight, up, smoke, the cap), `destroy` runs, then the stack is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

Reach = Callable[[Mapping[str, Any]], AbstractContextManager[dict[str, str]]]
"""From the stack's outputs to `--url` overrides (a tunnel while the context is open)."""


class DeployedStack(Protocol):
    def up(self) -> Mapping[str, Any]: ...
    def interrupt(self) -> None: ...
    def destroy(self) -> None: ...


class Automation(Protocol):
    def stack(self, name: str) -> DeployedStack: ...


@dataclass(frozen=True)
class Case:
    """One platform's ephemeral stack: its config (as it goes into Pulumi.<stack>.yaml), how
    the smoke test reaches it, and the wall-clock cap for the whole run."""

    platform: str
    config: Mapping[str, Any]
    reach: Reach = lambda outputs: contextlib.nullcontext({})
    cap_seconds: float = 3600.0


@dataclass
class Outcome:
    stack: str
    steps: list[str] = field(default_factory=list)
    failure: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)


class E2EFailure(Exception):
    pass


Preflight = Callable[[str, Path], int]
Smoke = Callable[[str, Path, Path, Mapping[str, str]], int]


def write_stack_file(root: Path, stack: str, config: Mapping[str, Any]) -> Path:
    """Pulumi.<stack>.yaml as a user writes it; the CLI adds its encryption salt on creation,
    and preflight and smoke read the same file."""
    path = root / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": dict(config)}, sort_keys=False))
    return path


def run_case(case: Case, stack_name: str, root: Path, automation: Automation,
             preflight: Preflight, smoke: Smoke, log: Callable[[str], None] = print,
             clock: Callable[[], float] = time.monotonic,
             timer: Callable[[float, Callable[[], None]], Any] | None = None) -> Outcome:
    """Run the four steps; destroy in `finally` whatever happened. `timer(seconds, fn)` arms
    the wall-clock cap (default: a daemon `threading.Timer` that interrupts `up`)."""
    outcome = Outcome(stack_name)
    deadline = clock() + case.cap_seconds
    write_stack_file(root, stack_name, case.config)
    stack = automation.stack(stack_name)
    outcome.steps.append("create")
    cap = (timer or _daemon_timer)(case.cap_seconds, stack.interrupt)
    try:
        outcome.steps.append("preflight")
        if (code := preflight(stack_name, root)) != 0:
            raise E2EFailure(f"preflight exited {code}: fix the account before spending money")
        outcome.steps.append("up")
        outcome.outputs = dict(stack.up())
        if clock() > deadline:
            raise E2EFailure(f"`pulumi up` ran past the {case.cap_seconds:.0f} s cap")
        outcome.steps.append("smoke")
        with tempfile.TemporaryDirectory() as tmp:
            outputs_file = Path(tmp) / "outputs.json"
            outputs_file.write_text(json.dumps(outcome.outputs))
            with case.reach(outcome.outputs) as overrides:
                if (code := smoke(stack_name, root, outputs_file, overrides)) != 0:
                    raise E2EFailure(f"smoke exited {code}")
    except Exception as exc:  # recorded, then re-raised after the teardown below
        outcome.failure = f"{type(exc).__name__}: {exc}"
        log(f"e2e {stack_name}: {outcome.failure}")
        raise
    finally:
        _cancel(cap)
        outcome.steps.append("destroy")
        log(f"e2e {stack_name}: destroying (this removes every resource the run created)")
        stack.destroy()
        (root / f"Pulumi.{stack_name}.yaml").unlink(missing_ok=True)
        outcome.steps.append("removed")
    return outcome


def _daemon_timer(seconds: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, fn)
    timer.daemon = True
    timer.start()
    return timer


def _cancel(timer: Any) -> None:
    if hasattr(timer, "cancel"):
        timer.cancel()


# ------------------------------------------------------------------ the Pulumi Automation API


class PulumiStack:
    """One stack of a local workspace on this project (the program is `__main__.py`)."""

    def __init__(self, stack: Any, log: Callable[[str], None]) -> None:
        self._stack = stack
        self._log = log

    def up(self) -> Mapping[str, Any]:
        result = self._stack.up(on_output=self._log, color="never")
        return {key: output.value for key, output in result.outputs.items()}

    def interrupt(self) -> None:
        """The cap: SIGINT to the running `pulumi` processes we started, which makes the engine
        stop scheduling and finish in-flight operations (a second SIGINT would abandon them).
        `Stack.cancel` is not used: the self-managed backends have no cancel."""
        self._log("e2e: wall-clock cap reached, interrupting `pulumi up`")
        for pid in _child_pids("pulumi"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)

    def destroy(self) -> None:
        # An interrupted `up` can leave pending creates that block `destroy`.
        self._stack.refresh(clear_pending_creates=True, on_output=self._log, color="never")
        self._stack.destroy(on_output=self._log, color="never", remove=True)


class PulumiAutomation:
    def __init__(self, root: Path, env: Mapping[str, str],
                 log: Callable[[str], None] = print) -> None:
        self.root, self.env, self.log = root, dict(env), log

    def stack(self, name: str) -> DeployedStack:
        from pulumi import automation as auto

        opts = auto.LocalWorkspaceOptions(work_dir=str(self.root), env_vars=self.env,
                                          secrets_provider="passphrase")
        return PulumiStack(auto.create_or_select_stack(stack_name=name, work_dir=str(self.root),
                                                       opts=opts), self.log)


def _child_pids(command: str) -> Iterator[int]:
    """Our child processes named `command` (Linux /proc; the CI runners are Linux)."""
    me = os.getpid()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == me and name == command:
                yield int(entry.name)
