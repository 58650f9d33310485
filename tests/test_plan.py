"""The offline `plan` command: the example stacks by name, its JSON, costs, warnings, `--all`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from components import plan
from components.costs import fixed_costs
from components.facts.fixed_costs import (
    EKS_CLUSTER,
    FIXED_PRICES_AS_OF,
    GENERAL_PURPOSE_USD_PER_HOUR,
    INTERFACE_ENDPOINT,
    NAT_GATEWAY,
)
from components.offline import ROOT
from components.platforms import PLATFORMS, parse_config
from components.stackfile import read_stack_file

MODEL_KEYS = {
    "name", "modelId", "instanceType", "platformInstanceType", "gpusPerReplica", "gpusChosen",
    "memoryRequiredGiB", "memoryAvailableGiB", "fits", "maxConcurrentSequences", "hourlyUsdMin",
    "hourlyUsdMax", "monthlyUsdMin", "usdPer1kTokensLowerBound", "engine",
}
EXAMPLES = ["dev", "staging", "prod"]


def _write(tmp_path: Path, name: str, doc: dict) -> str:
    (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))
    return name


def _example(name: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())


@pytest.fixture(scope="module")
def plans() -> dict[str, plan.Plan]:
    """Each example's plan, built once for the module."""
    return {name: plan.build_plan(name) for name in EXAMPLES}


@pytest.mark.parametrize("stack", EXAMPLES)
def test_plan_json_for_every_example_stack(stack, capsys):
    code = plan.main(["--stack", stack, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    platform = _example(stack)["config"]["llm-hosting:platform"]
    assert doc["stack"] == stack and doc["platform"] == platform
    assert doc["models"] and all(set(m) == MODEL_KEYS for m in doc["models"])
    assert all(m["fits"] for m in doc["models"])
    assert {"type", "name", "urn", "parent", "recorded"} == set(doc["resources"][0])
    network = next(r for r in doc["resources"] if r["type"] == "llm-hosting:network:Network")
    # parent links: every parent is the stack or a resource listed in the same document
    urns = {r["urn"] for r in doc["resources"]}
    stack_urn = f"urn:pulumi:{stack}::llm-hosting::pulumi:pulumi:Stack::llm-hosting-{stack}"
    assert network["parent"] == stack_urn
    assert all(r["parent"] in urns | {stack_urn} for r in doc["resources"])
    assert doc["pricesAsOf"]["fixed"] == FIXED_PRICES_AS_OF
    totals = doc["totals"]
    assert totals["hourlyUsdMin"] == pytest.approx(
        sum(m["hourlyUsdMin"] for m in doc["models"]) + totals["fixedHourlyUsd"], abs=1e-3)
    assert totals["fixedHourlyUsd"] == pytest.approx(
        sum(c["usdPerHour"] for c in doc["fixedCosts"]), abs=1e-3)


def test_plan_lists_resources_nested_under_their_component(capsys):
    assert plan.main(["--stack", "dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    network = lines.index("  llm-hosting:network:Network  network")
    vpc = next(i for i, line in enumerate(lines) if line.endswith("awsx:ec2:Vpc  network-vpc"))
    assert vpc > network and lines[vpc].startswith("    awsx:ec2:Vpc")
    header = next(i for i, line in enumerate(lines) if "pulumi up would create" in line)
    count = int(lines[header].split()[4])
    section = lines[header + 1:lines.index("", header)]
    assert len(section) == count  # every resource is listed once


@pytest.mark.parametrize(("stack", "nats", "azs"), [("dev", 1, 2), ("prod", 3, 3)])
def test_the_vpcs_subnets_and_nat_gateways_are_in_the_tree(plans, stack, nats, azs):
    resources = plan.plan_resources(plans[stack].graph)
    vpc = next(r for r in resources if r.type == "awsx:ec2:Vpc")
    tree = plan.resource_tree(resources)
    inside = [r for depth, r in tree if not r.recorded]
    subnets = [r for r in inside if r.type == "aws:ec2/subnet:Subnet"]
    # Every subnet spec the program asks awsx for (EKS adds isolated load-balancer subnets).
    kinds = {spec["name"] for spec in vpc.inputs["subnetSpecs"]}
    assert {"private", "public"} <= kinds
    assert sorted(r.name for r in subnets) == sorted(
        f"network-vpc-{kind}-{az}" for kind in kinds for az in range(1, azs + 1))
    gateways = [r for r in inside if r.type == "aws:ec2/natGateway:NatGateway"]
    assert len(gateways) == nats
    public = {r.urn for r in subnets if "-public-" in r.name}
    assert all(g.parent in public for g in gateways)  # awsx puts each under its public subnet
    inner = next(r for r in inside if r.type == "aws:ec2/vpc:Vpc")
    assert inner.parent == vpc.urn and all(s.parent == inner.urn for s in subnets)


def test_plan_table_shows_sizing_cost_and_a_total_row(plans):
    out = plan.render(plans["prod"])
    assert "llama-70b" in out and "g6e.12xlarge" in out and "$/1k tok >=" in out
    lines = out.splitlines()
    row = next(line for line in lines if line.startswith("llama-70b"))
    assert " 4 " in row and "yes" in row
    total = next(line for line in lines if line.startswith("total "))
    models = plans["prod"].doc["models"]
    expected = sum(m["hourlyUsdMin"] for m in models)
    assert f"${expected:,.2f}" in total.split()


def test_fixed_costs_follow_the_graph_with_dated_sourced_prices(plans):
    prod = {c.item: c for c in fixed_costs(plans["prod"].graph)}
    assert prod["NAT gateways (OnePerAz, 3 AZs)"].count == 3
    assert prod["NAT gateways (OnePerAz, 3 AZs)"].usd_per_unit_hour == NAT_GATEWAY.usd_per_hour
    endpoints = len(PLATFORMS["eks"].interface_endpoints)
    line = prod[f"interface VPC endpoints ({endpoints} x 3 AZs)"]
    assert line.count == endpoints * 3 and line.usd_per_unit_hour == INTERFACE_ENDPOINT.usd_per_hour
    assert prod["EKS control plane"].usd_per_hour == EKS_CLUSTER.usd_per_hour
    nodes = prod["EKS system nodes (m7i.xlarge)"]
    assert nodes.count == 3 and nodes.usd_per_unit_hour == GENERAL_PURPOSE_USD_PER_HOUR[
        "m7i.xlarge"]
    assert all(c.source.startswith("https://aws.amazon.com/") for c in prod.values())
    staging = {c.item: c for c in fixed_costs(plans["staging"].graph)}
    assert staging["application load balancers"].count == 1
    assert staging["NAT gateways (Single, 3 AZs)"].count == 1
    dev = {c.item for c in fixed_costs(plans["dev"].graph)}
    assert not any("EKS" in item or "load balancer" in item for item in dev)
    text = plan.render(plans["prod"])
    assert f"as of {FIXED_PRICES_AS_OF}" in text and "Total at minReplicas: $" in text


def test_instance_types_are_printed_in_the_form_the_config_accepts(plans):
    """What `plan` prints under `instance` goes back into `instanceType` unchanged."""
    for name, built in plans.items():
        stack = read_stack_file(ROOT / f"Pulumi.{name}.yaml")
        models = json.loads(stack.config["llm-hosting:models"])
        for model, summary in zip(models, built.doc["models"], strict=True):
            model["instanceType"] = summary["instanceType"]
        config = dict(stack.config, **{"llm-hosting:models": json.dumps(models)})
        parsed = parse_config(config, project="p", stack=name, secret_keys=stack.secret_keys)
        assert [m.instance.name for m in parsed.models] == [
            m["instanceType"] for m in built.doc["models"]]
    dev = plans["dev"].doc["models"][0]
    assert dev["platformInstanceType"] == f"ml.{dev['instanceType']}"


def test_placeholders_still_in_a_stack_file_are_warnings(plans, tmp_path, capsys):
    assert plans["dev"].warnings == []
    assert [w.split(": placeholder: ")[1].split(":")[0] for w in plans["prod"].warnings] == [
        "llm-hosting", "llm-hosting", "llm-hosting"]
    prod = "\n".join(plans["prod"].warnings)
    assert "Pulumi.prod.yaml:23: placeholder: llm-hosting:models[0].weightsUri" in prod
    assert "llm-hosting:eks.clusterAdminArns[0]: arn:aws:iam::111122223333" in prod
    assert len(plans["staging"].warnings) == 1
    # a `# REPLACE` marker on a value the checks do not know is still listed
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace(
        "cost-center: ml-platform-dev", "cost-center: ml-platform-dev  # REPLACE: your team")
    (tmp_path / "Pulumi.marked.yaml").write_text(text)
    assert plan.main(["--stack", "marked", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 warning(s): fix before `pulumi up`:" in out
    assert re.search(r"Pulumi\.marked\.yaml:\d+: placeholder: marked `# REPLACE`: "
                     r"cost-center: ml-platform-dev", out)


def test_plan_reports_invalid_config_with_every_problem(tmp_path, capsys):
    doc = _example("dev")
    doc["config"]["llm-hosting:platform"] = "gke"
    doc["config"]["llm-hosting:models"][0]["maxReplicas"] = 0
    doc["config"]["pulumi:disable-default-providers"] = "aws"
    _write(tmp_path, "bad", doc)
    assert plan.main(["--stack", "bad", "--dir", str(tmp_path)]) == plan.INVALID
    err = capsys.readouterr().err
    assert "3 problem(s) in Pulumi.bad.yaml:" in err
    assert "llm-hosting:platform: 'gke' is not accepted" in err
    assert "llm-hosting:models[0].maxReplicas: Input should be greater than or equal to 1" in err
    assert "pulumi:disable-default-providers: 'aws' is not a list of package names" in err


def test_json_never_has_a_null_platform(tmp_path, capsys):
    doc = _example("dev")
    doc["config"]["llm-hosting:platform"] = "gke"
    _write(tmp_path, "gke", doc)
    del doc["config"]["llm-hosting:platform"]
    _write(tmp_path, "none", doc)
    assert plan.main(["--stack", "gke", "--dir", str(tmp_path), "--json"]) == plan.INVALID
    assert json.loads(capsys.readouterr().out)["platform"] == "gke"
    assert plan.main(["--stack", "none", "--dir", str(tmp_path), "--json"]) == plan.INVALID
    out = json.loads(capsys.readouterr().out)
    assert out["platform"] == "" and out["problems"]


def test_a_yaml_syntax_error_is_one_line_and_column_not_a_traceback(tmp_path, capsys):
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("  llm-hosting:platform: sagemaker",
                                                          "\tllm-hosting:platform: sagemaker")
    (tmp_path / "Pulumi.tab.yaml").write_text(text)
    assert plan.main(["--stack", "tab", "--dir", str(tmp_path)]) == plan.INVALID
    err = capsys.readouterr().err.splitlines()
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if t.startswith("\t"))
    assert err[0] == "1 problem(s) in Pulumi.tab.yaml:"
    assert err[1].startswith(f"  - Pulumi.tab.yaml:{line}:1: found character '\\t'")
    assert err[2].strip() == "→llm-hosting:platform: sagemaker"
    assert "Traceback" not in "\n".join(err)


def test_compare_prices_the_same_models_on_every_platform(capsys):
    assert plan.main(["--stack", "dev", "--compare", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["platforms"]) == {"sagemaker", "eks", "ecs"}
    sm = doc["platforms"]["sagemaker"]["models"][0]
    ec2 = doc["platforms"]["eks"]["models"][0]
    assert sm["platformInstanceType"].startswith("ml.")
    assert not ec2["platformInstanceType"].startswith("ml.")
    # SageMaker hosting carries a premium over the same EC2 capacity.
    assert sm["hourlyUsdMin"] > ec2["hourlyUsdMin"]


def test_compare_shows_platform_specific_problems(tmp_path, capsys):
    _write(tmp_path, "s", _example("staging"))
    plan.main(["--stack", "s", "--compare", "--json", "--dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)["platforms"]
    assert any("no Spot capacity" in p for p in out["sagemaker"]["problems"])
    assert "models" in out["ecs"]


def test_compare_fits_100_columns_and_lists_each_problem_once(tmp_path, capsys):
    doc = _example("prod")
    doc["config"]["llm-hosting:models"][1]["maxInputTokens"] = 9000  # > maxTotalTokens: all
    _write(tmp_path, "p", doc)
    assert plan.main(["--stack", "p", "--compare", "--dir", str(tmp_path)]) == plan.INVALID
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    shared = [line for line in lines if "models[1].maxTotalTokens: 8192 must be greater" in line]
    assert len(shared) == 1 and shared[0].startswith("  - [every platform] ")
    spot = [line for line in lines if "no Spot capacity" in line]
    assert len(spot) == 1 and spot[0].startswith("  - [sagemaker] ")


def test_compare_rows_list_each_model_on_each_platform(capsys):
    assert plan.main(["--stack", "prod", "--compare"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    rows = [line.split() for line in lines[start + 2:start + 8]]
    assert [r[0] for r in rows[:3]] == ["llama-70b", "eks", "ecs"]
    assert rows[0][1:] == ["sagemaker", "-", "-", "-", "-"]  # the spot model stops sagemaker
    assert rows[1][1] == rows[2][1] == "g6e.12xlarge"


def test_compare_fails_when_the_stacks_own_platform_refuses_it(tmp_path, capsys):
    doc = _example("staging")
    _write(tmp_path, "s", doc)
    # spot is refused on sagemaker only: an ecs stack still compares cleanly...
    assert plan.main(["--stack", "s", "--compare", "--dir", str(tmp_path)]) == 0
    doc["config"]["llm-hosting:platform"] = "sagemaker"
    _write(tmp_path, "s", doc)
    # ...while the same models on a sagemaker stack are a config error for that stack.
    assert plan.main(["--stack", "s", "--compare", "--dir", str(tmp_path)]) == plan.INVALID
    capsys.readouterr()


def test_plan_reports_what_pulumi_up_would_refuse(tmp_path, capsys):
    doc = _example("dev")
    doc["config"]["pulumi:disable-default-providers"] = ["*"]
    _write(tmp_path, "star", doc)
    assert plan.main(["--stack", "star", "--dir", str(tmp_path)]) == plan.INVALID
    assert capsys.readouterr().err.splitlines() == [
        "1 problem(s) in Pulumi.star.yaml:",
        "  - Default provider for 'awsx' disabled. 'awsx:ec2:Vpc' must use an explicit provider.",
    ]


def test_all_prints_one_line_per_stack_and_fails_on_any_invalid(tmp_path, capsys):
    _write(tmp_path, "dev", _example("dev"))
    bad = _example("dev")
    bad["config"]["llm-hosting:environment"] = "qa"
    _write(tmp_path, "qa", bad)
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  a: 'unterminated\n")
    assert plan.main(["--all", "--dir", str(tmp_path)]) == plan.INVALID
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [
        ["Pulumi.broken.yaml", "INVALID"], ["Pulumi.dev.yaml", "ok"], ["Pulumi.qa.yaml", "INVALID"]]
    assert "Pulumi.broken.yaml:3:1: found unexpected end of stream" in lines[0]
    assert "llm-hosting:environment: 'qa' is not accepted" in lines[2]
    assert all(len(line) <= 100 for line in lines)


def test_all_passes_for_the_examples(capsys):
    assert plan.main(["--all", "--json"]) == 0
    stacks = json.loads(capsys.readouterr().out)["stacks"]
    assert {s["stack"] for s in stacks} >= set(EXAMPLES)
    prod = next(s for s in stacks if s["stack"] == "prod")
    assert len(prod["warnings"]) == 3 and "problems" not in prod


def test_readme_lists_the_json_keys():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("`--json` keys:"):]
    section = section[:section.index("\n\n")]
    for key in [*MODEL_KEYS, "resources", "fixedCosts", "totals", "pricesAsOf", "warnings",
                "problems", "parent", "recorded"]:
        assert f"`{key}`" in section, key
