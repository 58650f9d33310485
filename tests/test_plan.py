"""The offline `plan` command: runs for every example stack, JSON matches its documented keys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from components import plan
from components.offline import ROOT
from components.stackfile import stack_files

MODEL_KEYS = {
    "name", "modelId", "instanceType", "gpusPerReplica", "memoryRequiredGiB",
    "memoryAvailableGiB", "fits", "maxConcurrentSequences", "hourlyUsdMin", "hourlyUsdMax",
    "monthlyUsdMin", "usdPer1kTokensLowerBound", "gpusChosen", "engine",
}


@pytest.mark.parametrize("path", stack_files(ROOT), ids=lambda p: p.name)
def test_plan_json_for_every_example_stack(path, capsys):
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    code = plan.main(["--stack", stack, "--json"])
    doc = json.loads(capsys.readouterr().out)
    platform = yaml.safe_load(path.read_text())["config"]["llm-hosting:platform"]
    assert doc["stack"] == stack and doc["platform"] == platform
    assert doc["models"] and all(set(m) == MODEL_KEYS for m in doc["models"])
    assert all(m["fits"] for m in doc["models"])
    assert code == 0
    assert {"type": "llm-hosting:network:Network", "name": "network"} in doc["resources"]
    assert all(set(r) == {"type", "name"} for r in doc["resources"])


def test_plan_lists_resources_nested_under_their_component(capsys):
    assert plan.main(["--stack", "dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    network = lines.index("  llm-hosting:network:Network  network")
    vpc = next(i for i, line in enumerate(lines) if line.endswith("awsx:ec2:Vpc  network-vpc"))
    assert vpc > network and lines[vpc].startswith("    awsx:ec2:Vpc")
    header = next(i for i, line in enumerate(lines) if "pulumi up would create" in line)
    count = int(lines[header].split()[4])
    section = lines[header + 1:lines.index("", header)]
    assert len(section) == count  # every recorded resource is listed once


def test_plan_table_shows_sizing_and_cost(capsys):
    plan.main(["--stack", "prod"])
    out = capsys.readouterr().out
    assert "llama-70b" in out and "g6e.12xlarge" in out and "$/1k tok >=" in out
    row = next(line for line in out.splitlines() if line.startswith("llama-70b"))
    assert " 4 " in row and "yes" in row


def test_plan_reports_invalid_config_with_every_problem(tmp_path, capsys):
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["llm-hosting:platform"] = "gke"
    doc["config"]["llm-hosting:models"][0]["maxReplicas"] = 0
    (tmp_path / "Pulumi.bad.yaml").write_text(yaml.safe_dump(doc))
    assert plan.main(["--stack", "bad", "--dir", str(tmp_path)]) == plan.INVALID
    err = capsys.readouterr().err
    assert "2 problem(s) in Pulumi.bad.yaml:" in err
    assert "llm-hosting:platform: 'gke' is not accepted" in err
    assert "llm-hosting:models[0].maxReplicas: Input should be greater than or equal to 1" in err


def test_compare_prices_the_same_models_on_every_platform(capsys):
    assert plan.main(["--stack", "dev", "--compare", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["platforms"]) == {"sagemaker", "eks", "ecs"}
    sm = doc["platforms"]["sagemaker"]["models"][0]
    ec2 = doc["platforms"]["eks"]["models"][0]
    assert sm["instanceType"].startswith("ml.") and not ec2["instanceType"].startswith("ml.")
    # SageMaker hosting carries a premium over the same EC2 capacity.
    assert sm["hourlyUsdMin"] > ec2["hourlyUsdMin"]


def test_compare_shows_platform_specific_problems(tmp_path, capsys):
    doc = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    (tmp_path / "Pulumi.s.yaml").write_text(yaml.safe_dump(doc))
    plan.main(["--stack", "s", "--compare", "--json", "--dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)["platforms"]
    assert any("no Spot capacity" in p for p in out["sagemaker"]["problems"])
    assert "models" in out["ecs"]


def _many_models_stack(tmp_path: Path, n: int) -> str:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    base = doc["config"]["llm-hosting:models"][0]
    doc["config"]["llm-hosting:models"] = [dict(base, name=f"m{i}") for i in range(n)]
    (tmp_path / "Pulumi.many.yaml").write_text(yaml.safe_dump(doc))
    return "many"


def test_plan_for_fifty_models_is_fast(tmp_path, capsys):
    stack = _many_models_stack(tmp_path, 50)
    start = time.perf_counter()
    code = plan.main(["--stack", stack, "--json", "--dir", str(tmp_path)])
    elapsed = time.perf_counter() - start
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["models"]) == 50
    assert elapsed < 10, f"plan for 50 models took {elapsed:.1f}s"


def test_plan_reports_what_pulumi_up_would_refuse(tmp_path, capsys):
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["pulumi:disable-default-providers"] = ["*"]
    (tmp_path / "Pulumi.star.yaml").write_text(yaml.safe_dump(doc))
    assert plan.main(["--stack", "star", "--dir", str(tmp_path)]) == plan.INVALID
    assert capsys.readouterr().err.splitlines() == [
        "1 problem(s) in Pulumi.star.yaml:",
        "  - Default provider for 'awsx' disabled. 'awsx:ec2:Vpc' must use an explicit provider.",
    ]


def test_compare_table_puts_platforms_side_by_side(capsys):
    assert plan.main(["--stack", "prod", "--compare"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    assert header[0] == "model"
    assert [header[i - 1] for i, h in enumerate(header) if h == "instance"] == [
        "sagemaker", "eks", "ecs"]
    row = next(line for line in lines if line.startswith("llama-70b")).split()
    # sagemaker rejects the spot model of this stack, so it prices neither: one "-" per column
    assert row[1:5] == ["-", "-", "-", "-"] and row[5] == row[9] == "g6e.12xlarge"
    assert "sagemaker does not accept this config:" in lines
    assert any("no Spot capacity" in line for line in lines)


def test_compare_fails_when_the_stacks_own_platform_refuses_it(tmp_path, capsys):
    doc = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    (tmp_path / "Pulumi.s.yaml").write_text(yaml.safe_dump(doc))
    # spot is refused on sagemaker only: an ecs stack still compares cleanly...
    assert plan.main(["--stack", "s", "--compare", "--dir", str(tmp_path)]) == 0
    doc["config"]["llm-hosting:platform"] = "sagemaker"
    (tmp_path / "Pulumi.s.yaml").write_text(yaml.safe_dump(doc))
    # ...while the same models on a sagemaker stack are a config error for that stack.
    assert plan.main(["--stack", "s", "--compare", "--dir", str(tmp_path)]) == plan.INVALID
    capsys.readouterr()
