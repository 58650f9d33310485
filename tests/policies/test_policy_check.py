"""`python -m policies.check`: the offline gate over whole stacks.

The examples pass under their own environment's config; a stack file that breaks a mandatory
rule exits 1 with the violation in the table; an invalid one exits 2 with its problems. One run
goes through the command line exactly as CI runs it (a subprocess from the repository root);
the others call `check` with one shared pack process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from policy_harness import Analyzer

from components.offline import ROOT
from policies import check as gate


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    yield analyzer
    analyzer.stop()


def test_the_command_passes_the_dev_example_from_the_repository_root():
    done = subprocess.run([sys.executable, "-m", "policies.check", "--stack", "dev", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert (result["stack"], result["environment"], result["code"]) == ("dev", "dev", 0)
    assert result["violations"] == []


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_the_other_examples_give_no_mandatory_violation(pack, name):
    result, _ = gate.check(ROOT / f"Pulumi.{name}.yaml", pack)
    assert (result.code, result.environment) == (gate.OK, name)
    assert [d for d in result.diagnostics if d.level == "mandatory"] == []


def _stack(tmp_path: Path, name: str, change: dict) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    doc["config"].update(change)
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_mandatory_violation_exits_1_and_is_in_the_table(pack, tmp_path):
    # staging's ECS stack promoted to prod as is: its internal ALB serves plain HTTP, which
    # prod's config refuses (it needs ecs.certificateArn).
    path = _stack(tmp_path, "promoted", {"llm-hosting:environment": "prod"})
    result, _ = gate.check(path, pack)
    assert result.code == gate.VIOLATION
    rows = gate.table(result).splitlines()
    assert rows[0].split() == ["policy", "level", "resource", "message"]
    (row,) = [r for r in rows if r.startswith("transit-listener-https")]
    assert row.split()[1:4] == ["mandatory", "ecs-lb-http", "(aws:lb/listener:Listener)"]
    assert row.endswith("HTTP listener on port 80 of the internal load balancer ecs-lb-alb "
                        "serves plain text (forwarded by rules ecs-llama-8b-route); this "
                        "environment requires HTTPS on every listener: listen on HTTPS with an "
                        "ACM certificate (or redirect to it)")
    assert [r.split()[0] for r in rows[1:]].count("transit-listener-https") == 1
    assert gate.summary(result).startswith("promoted (prod): ")
    assert " mandatory" in gate.summary(result)


def test_an_invalid_stack_exits_2_with_its_problems(pack, tmp_path):
    path = _stack(tmp_path, "broken", {"llm-hosting:platform": "lambda"})
    result, _ = gate.check(path, pack)
    assert result.code == gate.INVALID
    assert any("platform" in p for p in result.problems)
    path.write_text("config: [unclosed\n")
    result, _ = gate.check(path, pack)
    assert result.code == gate.INVALID and result.problems[0].startswith("Pulumi.broken.yaml:")


def test_all_checks_every_stack_file_with_the_worst_exit_code(tmp_path, capsys):
    for name in ("dev", "staging"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text((ROOT / f"Pulumi.{name}.yaml").read_text())
    _stack(tmp_path, "promoted", {"llm-hosting:environment": "prod"})
    assert gate.main(["--all", "--dir", str(tmp_path)]) == gate.VIOLATION
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if "violation(s)" in line] == [
        "dev (dev)", "promoted (prod)", "staging (staging)"]
