"""Prove a change against a real AWS account: per platform, an ephemeral stack from a small
config (tests/e2e/cases.py), then preflight -> `pulumi up` -> smoke -> `pulumi destroy`, the
destroy in a `finally`, under a wall-clock cap (60 min SageMaker/ECS, 75 min EKS).

Skipped unless LLM_HOSTING_E2E=1, AWS credentials, the Pulumi CLI and PULUMI_CONFIG_PASSPHRASE
are present (the reason is printed at the end of the run). Run one platform with
`LLM_HOSTING_E2E=1 pytest tests/e2e -k sagemaker`; docs/deploy.md, "Prove a change against a
real account", has the rest.

Expected cost per run, us-east-1 list prices (GPU-hours plus what runs beside them; most of it
is NAT data processing, $0.045/GB, for the ~10 GB vLLM/LMI image and ~15 GB of Qwen2.5-7B
weights pulled from the Hub):
* sagemaker: ~35 min, ml.g6.xlarge $1.13/h -> ~$0.70, NAT + 6 interface endpoints x 2 AZs
  ~$0.10, ~15 GB through NAT ~$0.70: about $1.50.
* ecs: ~35 min, g6.xlarge $0.80/h -> ~$0.50, ALB/NAT/7 endpoints ~$0.12, ~25 GB through NAT
  ~$1.15: about $1.80.
* eks: ~60 min, control plane $0.10/h, 2 x m7i.xlarge ~$0.40/h, g6.xlarge ~$0.50 for its
  share, NAT/endpoints ~$0.20, ~25 GB through NAT ~$1.15: about $2.50.
All three: about $6. A run that fails still destroys; one killed hard (SIGKILL, lost runner)
does not: `pulumi stack ls` then `pulumi destroy --stack e2e-...` cleans up.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from components.preflight.runner import main as preflight_main
from components.smoke.runner import main as smoke_main
from tests.e2e.cases import cases
from tests.e2e.gate import gate
from tests.e2e.orchestrate import PulumiAutomation, run_case

ROOT = Path(__file__).resolve().parents[2]
REASON = gate()
CASES = cases() if not REASON else {}


def preflight(stack: str, root: Path) -> int:
    return preflight_main(["--stack", stack, "--dir", str(root)])


def smoke(stack: str, root: Path, outputs: Path, overrides: dict[str, str]) -> int:
    urls = [arg for name, url in overrides.items() for arg in ("--url", f"{name}={url}")]
    return smoke_main(["--stack", stack, "--dir", str(root), "--outputs", str(outputs),
                       "--requests", "8", "--concurrency", "4", "--max-tokens", "128", *urls])


@pytest.mark.skipif(bool(REASON), reason=REASON or "runs")
@pytest.mark.parametrize("platform", ["sagemaker", "ecs", "eks"])
def test_deploy_serve_destroy(platform):
    case, why = CASES[platform]
    if case is None:
        pytest.skip(why)
    stack = f"e2e-{platform}-{secrets.token_hex(3)}"
    automation = PulumiAutomation(ROOT, {"PULUMI_CONFIG_PASSPHRASE":
                                         os.environ["PULUMI_CONFIG_PASSPHRASE"]})
    outcome = run_case(case, stack, ROOT, automation, preflight, smoke)
    assert outcome.steps == ["create", "preflight", "up", "smoke", "destroy", "removed"]
