"""Why the real-cloud suite did not run, printed at the end of any pytest session that collected
it (a skip reason alone shows only with `-rs`)."""

from __future__ import annotations

from typing import Any

from tests.e2e.gate import gate


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = gate()
    if reason:
        terminalreporter.write_line(f"e2e (real AWS) suite skipped: {reason}")
