"""docs/policies.md lists every policy with what it checks and where, from the pack itself."""

from __future__ import annotations

import subprocess
import sys

from components.offline import ROOT
from policies.reference import policy_reference_markdown
from policies.rules import RULES


def test_the_policy_table_in_the_docs_is_current():
    done = subprocess.run([sys.executable, "scripts/policy_reference.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_policy_has_a_row_with_its_types_and_levels():
    table = policy_reference_markdown().splitlines()[2:]
    assert [row.split("`")[1] for row in table] == [r.name for r in RULES]
    for rule, row in zip(RULES, table, strict=True):
        assert rule.description in row
        assert row.count(" / ") >= 2  # dev / staging / prod levels
        for token in rule.types:
            assert f"`{token.partition(':')[2]}`" in row or f"`{token}`" in row


def test_the_workflow_runs_the_offline_gate_before_the_preview():
    steps = (ROOT / ".github" / "workflows" / "preview.yml").read_text().split("\n      - ")
    runs = [i for i, step in enumerate(steps) if "python -m policies.check --stack" in step]
    previews = [i for i, step in enumerate(steps) if "pulumi preview --diff" in step]
    assert len(runs) == len(previews) == 1 and runs[0] < previews[0]
