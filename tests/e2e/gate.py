"""When the real-cloud suite runs: LLM_HOSTING_E2E=1, AWS credentials, and the Pulumi CLI."""

from __future__ import annotations

import os
import shutil


def gate() -> str:
    """'' when the suite may run; otherwise the reason it is skipped."""
    if os.environ.get("LLM_HOSTING_E2E") != "1":
        return ("set LLM_HOSTING_E2E=1 to deploy real stacks (it costs money: see "
                "tests/e2e/test_real_cloud.py)")
    import boto3

    if boto3.session.Session().get_credentials() is None:
        return "LLM_HOSTING_E2E=1 but no AWS credentials were found (AWS_PROFILE, environment)"
    if shutil.which("pulumi") is None:
        return "LLM_HOSTING_E2E=1 but the Pulumi CLI is not on PATH"
    if not os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        return "LLM_HOSTING_E2E=1 but PULUMI_CONFIG_PASSPHRASE is not set (the stacks' secrets)"
    return ""
