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
from policy_harness import Analyzer, Diagnostic

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
                        "serves plain text (forwarded by rules ecs-llama-8b-route, "
                        "ecs-gateway-route); this "
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
    (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    _stack(tmp_path, "promoted", {"llm-hosting:environment": "prod"})
    assert gate.main(["--all", "--dir", str(tmp_path)]) == gate.VIOLATION
    out = capsys.readouterr().out
    # two stacks: each gets its summary line, worst exit code wins
    assert [line.split(":")[0] for line in out.splitlines() if "violation(s)" in line] == [
        "dev (dev)", "promoted (prod)"]


def test_one_stack_prints_its_table_then_its_summary(tmp_path, capsys):
    (tmp_path / "Pulumi.staging.yaml").write_text((ROOT / "Pulumi.staging.yaml").read_text())
    assert gate.main(["--stack", "staging", "--dir", str(tmp_path)]) == gate.OK
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("staging (staging): 0 mandatory, ")
    assert last.endswith(" s)")


def _diag(policy: str, level: str, urn: str, detail: str) -> Diagnostic:
    return Diagnostic(policy, level, f"Description.\n{detail}", urn)


def test_the_table_lists_mandatory_rows_first_then_by_policy_and_resource():
    result = gate.Result("s", "prod", gate.VIOLATION, diagnostics=[
        _diag("b-policy", "advisory", "urn:2", "second"),
        _diag("z-policy", "mandatory", "urn:1", "first"),
        _diag("a-policy", "advisory", "", "stack-wide"),
        _diag("a-policy", "advisory", "urn:1", "third"),
    ], names={"urn:1": "one (t:a:A)", "urn:2": "two (t:b:B)"})
    rows = gate.table(result).splitlines()
    assert rows == [
        "policy    level      resource     message",
        "z-policy  mandatory  one (t:a:A)  first",
        "a-policy  advisory   (stack)      stack-wide",
        "a-policy  advisory   one (t:a:A)  third",
        "b-policy  advisory   two (t:b:B)  second",
    ]
    assert gate.table(gate.Result("s")) == ""
    assert gate.summary(result) == ("s (prod): 1 mandatory, 3 advisory violation(s) (0.0 s)")
    invalid = gate.Result("s", code=gate.INVALID, problems=["a", "b"], seconds=1.25)
    assert gate.summary(invalid) == "s: invalid, 2 problem(s) (1.2 s)"


def test_json_output_and_a_policy_config_override(tmp_path, capsys):
    (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    strict = json.loads((ROOT / "policies" / "config.dev.json").read_text())
    strict["all"] = "mandatory"
    strict["cost-ceiling"] = {"maxHourlyUsd": 1}
    config = tmp_path / "strict.json"
    config.write_text(json.dumps(strict))
    code = gate.main(["--stack", "dev", "--dir", str(tmp_path), "--json",
                      "--policy-config", str(config)])
    (result,) = json.loads(capsys.readouterr().out)
    assert code == gate.VIOLATION == result["code"]
    assert (result["stack"], result["environment"], result["problems"]) == ("dev", "dev", [])
    (violation,) = result["violations"]
    assert (violation["policy"], violation["level"], violation["resource"]) == (
        "cost-ceiling", "mandatory", "(stack)")
    assert violation["message"].startswith("worst case is $2.25/hour, over this environment's "
                                           "budget of $1.00/hour")
    # the run's own duration, in seconds to two places
    assert 0 < result["seconds"] < 600
    assert result["seconds"] == round(result["seconds"], 2)


def test_a_missing_stack_file_or_policy_config_is_an_error(tmp_path, capsys, pack):
    with pytest.raises(SystemExit) as exit_:
        gate.main(["--stack", "nope", "--dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "no Pulumi.nope.yaml in" in capsys.readouterr().err
    (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    result, _ = gate.check(tmp_path / "Pulumi.dev.yaml", pack, tmp_path / "missing.json")
    assert result.code == gate.INVALID
    assert result.problems[0].startswith(f"policy config {tmp_path / 'missing.json'}: ")


def test_one_invalid_stack_is_summarised_once_on_stderr(tmp_path, capsys):
    _stack(tmp_path, "broken", {"llm-hosting:platform": "lambda"})
    assert gate.main(["--stack", "broken", "--dir", str(tmp_path)]) == gate.INVALID
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line for line in captured.err.splitlines() if line.startswith("broken")] == [
        line for line in captured.err.splitlines() if line.startswith("broken: invalid, ")]
    assert len([line for line in captured.err.splitlines() if line.startswith("broken")]) == 1
