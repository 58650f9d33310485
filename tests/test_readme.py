"""The README's promises: its config table matches the model, its commands match CI."""

from __future__ import annotations

import re

from components.config import config_reference_markdown
from components.offline import ROOT
from scripts.config_reference import readme_table

README = (ROOT / "README.md").read_text()


def test_config_reference_table_matches_the_config_model():
    assert readme_table(README) == config_reference_markdown(), (
        "README config table is stale: run `venv/bin/python scripts/config_reference.py`"
    )


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text()
    for part in test_cmd.split(" && "):
        if "pip install" in part:
            assert "-r requirements-dev.txt" in part and "-r requirements-dev.txt" in ci
        else:
            assert part in ci, f"CI does not run `{part}` from the README"


def test_readme_deploy_command_uses_local_backend_and_pulumi_up():
    deploy = next(b for b in re.findall(r"```bash\n(.*?)\n```", README, re.S) if "pulumi up" in b)
    assert "pulumi login --local" in deploy and deploy.rstrip().endswith("pulumi up")
