"""The real-cloud suite's orchestration with the Automation API replaced by a recording fake:
`destroy` runs after every kind of failure, and only after the tunnel is closed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.orchestrate import Case, E2EFailure, run_case

OUTPUTS = {"platform": "ecs", "endpoints": {"qwen-7b": "http://internal-alb/qwen-7b/v1"}}


class FakeStack:
    def __init__(self, calls: list[str], up_error: Exception | None = None,
                 on_up: Any = None) -> None:
        self.calls, self.up_error, self.on_up = calls, up_error, on_up

    def up(self) -> Mapping[str, Any]:
        self.calls.append("up")
        if self.on_up is not None:
            self.on_up()
        if self.up_error is not None:
            raise self.up_error
        return OUTPUTS

    def interrupt(self) -> None:
        self.calls.append("interrupt")

    def destroy(self) -> None:
        self.calls.append("destroy")


class FakeAutomation:
    def __init__(self, **stack: Any) -> None:
        self.calls: list[str] = []
        self.stack_args = stack

    def stack(self, name: str) -> FakeStack:
        self.calls.append(f"stack {name}")
        return FakeStack(self.calls, **self.stack_args)


class ArmedTimers:
    """Records the cap instead of starting a thread; `fire()` is the deadline passing."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, Any]] = []
        self.cancelled = 0

    def __call__(self, seconds: float, fn: Any) -> ArmedTimers:
        self.armed.append((seconds, fn))
        return self

    def cancel(self) -> None:
        self.cancelled += 1

    def fire(self) -> None:
        self.armed[-1][1]()


def case(calls: list[str], cap: float = 60.0) -> Case:
    @contextlib.contextmanager
    def tunnel(outputs: Mapping[str, Any]) -> Iterator[dict[str, str]]:
        calls.append("tunnel open")
        try:
            yield {"qwen-7b": "http://127.0.0.1:9999/qwen-7b/v1"}
        finally:
            calls.append("tunnel closed")

    return Case("ecs", {"aws:region": "us-east-1", "llm-hosting:platform": "ecs"},
                reach=tunnel, cap_seconds=cap)


def steps(calls: list[str], preflight_code: int = 0, smoke_code: int = 0) -> tuple[Any, Any]:
    seen: dict[str, Any] = {}

    def preflight(stack: str, root: Path) -> int:
        calls.append("preflight")
        seen["stack_file"] = (root / f"Pulumi.{stack}.yaml").read_text()
        return preflight_code

    def smoke(stack: str, root: Path, outputs: Path, overrides: Mapping[str, str]) -> int:
        calls.append("smoke")
        seen["outputs"] = json.loads(outputs.read_text())
        seen["overrides"] = dict(overrides)
        return smoke_code

    return (preflight, smoke), seen


def run(tmp_path: Path, automation: FakeAutomation, preflight_code: int = 0,
        smoke_code: int = 0, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    (preflight, smoke), seen = steps(automation.calls, preflight_code, smoke_code)
    outcome = run_case(case(automation.calls, **kwargs.pop("case", {})), "e2e-ecs-abc123",
                       tmp_path, automation, preflight, smoke, log=lambda _: None, **kwargs)
    return outcome, seen


def test_a_green_run_deploys_serves_through_the_tunnel_and_destroys(tmp_path):
    automation = FakeAutomation()
    outcome, seen = run(tmp_path, automation)
    assert automation.calls == ["stack e2e-ecs-abc123", "preflight", "up", "tunnel open",
                                "smoke", "tunnel closed", "destroy"]
    assert outcome.steps == ["create", "preflight", "up", "smoke", "destroy", "removed"]
    assert seen["outputs"] == OUTPUTS
    assert seen["overrides"] == {"qwen-7b": "http://127.0.0.1:9999/qwen-7b/v1"}
    assert "llm-hosting:platform: ecs" in seen["stack_file"]
    assert not (tmp_path / "Pulumi.e2e-ecs-abc123.yaml").exists()


def test_destroy_runs_after_a_failing_smoke(tmp_path):
    automation = FakeAutomation()
    with pytest.raises(E2EFailure, match="smoke exited 1"):
        run(tmp_path, automation, smoke_code=1)
    assert automation.calls[-4:] == ["tunnel open", "smoke", "tunnel closed", "destroy"]
    assert not (tmp_path / "Pulumi.e2e-ecs-abc123.yaml").exists()


def test_a_blocking_preflight_spends_nothing_and_still_cleans_up(tmp_path):
    automation = FakeAutomation()
    with pytest.raises(E2EFailure, match="preflight exited 1"):
        run(tmp_path, automation, preflight_code=1)
    assert automation.calls == ["stack e2e-ecs-abc123", "preflight", "destroy"]


def test_a_failed_up_is_destroyed(tmp_path):
    automation = FakeAutomation(up_error=RuntimeError("CREATE_FAILED: ResourceLimitExceeded"))
    with pytest.raises(RuntimeError, match="ResourceLimitExceeded"):
        run(tmp_path, automation)
    assert automation.calls == ["stack e2e-ecs-abc123", "preflight", "up", "destroy"]


def test_the_cap_interrupts_up_and_destroy_follows(tmp_path):
    timers = ArmedTimers()
    automation = FakeAutomation(on_up=timers.fire,
                                up_error=RuntimeError("update canceled (SIGINT)"))
    with pytest.raises(RuntimeError, match="canceled"):
        run(tmp_path, automation, case={"cap": 1800.0}, timer=timers)
    assert timers.armed[0][0] == 1800.0
    assert automation.calls == ["stack e2e-ecs-abc123", "preflight", "up", "interrupt",
                                "destroy"]
    assert timers.cancelled == 1


def test_an_up_that_finishes_past_the_cap_fails_before_smoke(tmp_path):
    automation = FakeAutomation()
    ticks = iter([0.0, 2000.0])
    with pytest.raises(E2EFailure, match="past the 1800 s cap"):
        run(tmp_path, automation, case={"cap": 1800.0}, clock=lambda: next(ticks),
            timer=ArmedTimers())
    assert automation.calls == ["stack e2e-ecs-abc123", "preflight", "up", "destroy"]


def test_the_suite_says_why_it_is_skipped(monkeypatch, tmp_path):
    from tests.e2e.gate import gate

    monkeypatch.delenv("LLM_HOSTING_E2E", raising=False)
    assert gate().startswith("set LLM_HOSTING_E2E=1 to deploy real stacks")
    monkeypatch.setenv("LLM_HOSTING_E2E", "1")
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert gate() == ("LLM_HOSTING_E2E=1 but no AWS credentials were found (AWS_PROFILE, "
                      "environment)")
