"""Claims the docs make that the code can check: each fails when the two drift apart."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from components.config import config_reference
from components.offline import ROOT
from components.platforms import PLATFORMS
from scripts import config_reference as script

README = (ROOT / "README.md").read_text()
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
POLICIES = (ROOT / "docs" / "policies.md").read_text()
WORKFLOW = (ROOT / ".github" / "workflows" / "preview.yml").read_text()


def test_deploy_md_counts_the_interface_endpoints_each_platform_builds():
    match = re.search(r"`sagemaker`: (\d+), `eks`/`ecs`: (\d+)", DEPLOY)
    assert match, "docs/deploy.md no longer states the endpoint counts per platform"
    sagemaker, ec2 = (int(g) for g in match.groups())
    assert sagemaker == len(PLATFORMS["sagemaker"].interface_endpoints)
    assert ec2 == len(PLATFORMS["eks"].interface_endpoints) == len(
        PLATFORMS["ecs"].interface_endpoints)


def _ci_section(text: str) -> str:
    start = text.index("## In CI")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_policies_md_describes_the_workflows_login_and_secrets():
    code = "\n".join(line for line in WORKFLOW.splitlines()
                     if not line.lstrip().startswith("#"))
    section = _ci_section(POLICIES)
    for name in set(re.findall(r"\bPULUMI_[A-Z_]+\b", section)):
        assert name in code, f"docs/policies.md names {name}, which the workflow does not use"
    assert 'pulumi login "${{ vars.PULUMI_BACKEND_URL }}"' in code
    assert "PULUMI_BACKEND_URL" in section and "PULUMI_CONFIG_PASSPHRASE" in section


def test_head_dim_is_optional_in_the_config_table_and_in_validation():
    row = next(r for r in config_reference() if r[0].endswith("shape.headDim"))
    assert row[2] == "-" and "derived" in row[3]


def test_plan_exit_codes_in_readme_match_the_command():
    from components import plan

    exits = re.search(r"Exit codes: (.*?)\n\n", README[README.index("## See the plan first"):],
                      re.S)
    assert exits is not None
    codes = {int(c) for c in re.findall(r"(?<![\w.$])(\d);? ", exits.group(1))}
    assert codes == {0, plan.INVALID}


def test_readme_and_deploy_md_describe_plan_all_and_the_warnings():
    for text in (README, DEPLOY):
        assert "components.plan --all" in text
        assert "warning" in text and "# REPLACE" in text and "111122223333" in text


def test_deploy_md_teardown_switch_is_a_config_key():
    keys = {row[0] for row in config_reference()}
    assert "llm-hosting:protection" in keys
    assert "pulumi config set llm-hosting:protection off" in DEPLOY


def test_config_reference_help_explains_itself_and_changes_nothing(tmp_path):
    before = (ROOT / "README.md").read_bytes()
    out = subprocess.run([sys.executable, "scripts/config_reference.py", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "--check" in out and "README.md" in out
    assert (ROOT / "README.md").read_bytes() == before


def test_config_reference_check_exits_1_on_drift(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README.replace("| `llm-hosting:environment` |", "| `llm-hosting:env` |"))
    assert script.main(["--check", "--readme", str(readme)]) == 1
    assert "stale" in capsys.readouterr().out
    assert script.main(["--readme", str(readme)]) == 0  # rewrite...
    assert script.main(["--check", "--readme", str(readme)]) == 0  # ...and it is current
    assert readme.read_text() == README


def test_readme_cost_figures_match_what_plan_prints():
    from components import plan

    match = re.search(r"dev stack is about \$([\d,]+)/month of GPU at `minReplicas` and \$([\d,]+) "
                      r"with.*?prod about \$([\d,]+) of GPU and \$([\d,]+) in all", README, re.S)
    assert match, "README's cost sentence changed shape"
    dev_gpu, dev_all, prod_gpu, prod_all = (int(g.replace(",", "")) for g in match.groups())
    for name, gpu, total in (("dev", dev_gpu, dev_all), ("prod", prod_gpu, prod_all)):
        totals = plan.build_plan(name).doc["totals"]
        assert gpu == pytest.approx(totals["gpuHourlyUsdMin"] * 730, rel=0.05), name
        assert total == pytest.approx(totals["monthlyUsdMin"], rel=0.05), name


def test_ci_runs_exactly_the_readmes_test_command():
    """A new user's set-up (README) and CI (.ci/run) must not drift: CI builds the same venv
    from the same requirements file and runs the same pytest line, nothing weaker."""
    block = README.split("Run the tests", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    setup, install, tests = [part.strip() for part in block.strip().split("&&")]
    assert (setup, install) == ("python3 -m venv venv",
                                "venv/bin/pip install -r requirements-dev.txt")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci
    assert any(line.startswith("venv/bin/pip install") and line.endswith(
        "-r requirements-dev.txt") for line in ci)
    assert tests in ci  # the whole line, options included
