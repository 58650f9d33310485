"""`python -m components.preflight` end to end, as a subprocess, against moto's server on
127.0.0.1 through AWS_ENDPOINT_URL (a botocore Stubber cannot reach another process).

The server is moto's own (`ThreadedMotoServer`, the app `moto_server` runs) on a free port.
moto ships Service Quotas values for `vpc` only, so the server answers GetServiceQuota for the
two EC2 quota codes this stack needs from a table (`preflight_world.moto_server`); every other
call is moto's implementation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.preflight_world import (
    ACCOUNT,
    QUOTA_NAMES,
    moto_server,
    seed_spot_role,
    seed_weights,
    write_stack,
)

ROOT = Path(__file__).resolve().parent.parent
EC2_QUOTAS = {"L-DB2E81BA": 20.0, "L-3819A6DF": 24.0}

STACK = {
    "aws:region": "us-east-1",
    "llm-hosting:environment": "staging",
    "llm-hosting:platform": "ecs",
    "llm-hosting:models": [{
        "name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
        "instanceType": "g6e.xlarge", "gpusPerReplica": 1,
        "maxInputTokens": 3072, "maxTotalTokens": 4096,
        "minReplicas": 2, "maxReplicas": 3, "capacity": "spot",
        "weightsUri": "s3://weights-staging/llama-8b/",
    }],
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server({("ec2", code): (QUOTA_NAMES[code], value)
                      for code, value in EC2_QUOTAS.items()}) as url:
        yield url


@pytest.fixture
def account(moto_url, monkeypatch, tmp_path) -> dict[str, str]:
    """A fresh moto account seeded over HTTP; the environment the subprocess runs with."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    seed_weights("weights-staging", "llama-8b", endpoint_url=moto_url)
    seed_spot_role(endpoint_url=moto_url)
    write_stack(tmp_path, "staging", STACK)
    return env


def preflight(env: dict[str, str], folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components.preflight", "--stack", "staging", "--dir",
         str(folder), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def squeeze(text: str) -> str:
    """Text without whitespace: a wrapped cell may split a long word where its column ends."""
    return "".join(text.split())


def table_rows(lines: list[str]) -> list[list[str]]:
    """The printed table back as cells: columns start where the header's titles start, and a
    line without a status continues the row above (wrapped cells)."""
    header = next(i for i, line in enumerate(lines) if line.startswith("check "))
    starts = [lines[header].index(title) for title in ("check", "status", "detail", "how to fix")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    rows: list[list[str]] = []
    for line in lines[header + 2:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in bounds]
        if cells[1]:  # the status is one word: only a row's first line has one
            rows.append(cells)
        else:
            rows[-1] = [" ".join(filter(None, (old, new))) for old, new in zip(rows[-1], cells,
                                                                               strict=True)]
    return rows


def test_a_ready_account_exits_0_with_every_row_passing(account, tmp_path):
    done = preflight(account, tmp_path, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["exitCode"] == 0
    assert [(c["check"], c["status"]) for c in report["checks"]] == [
        ("credentials", "pass"), ("region", "pass"), ("availability zones", "pass"),
        ("offering llama-8b (on-demand)", "pass"), ("offering llama-8b (spot)", "pass"),
        ("quota Running On-Demand G and VT instances (L-DB2E81BA)", "pass"),
        ("quota All G and VT Spot Instance Requests (L-3819A6DF)", "pass"),
        ("spot service-linked role", "pass"), ("weights llama-8b", "pass"),
    ]
    assert report["checks"][0]["detail"] == f"account {ACCOUNT} as arn:aws:sts::{ACCOUNT}:user/moto"


def test_a_missing_config_json_exits_1_and_the_table_says_why(account, moto_url, tmp_path):
    import boto3

    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url).delete_object(
        Bucket="weights-staging", Key="llama-8b/config.json")
    done = preflight(account, tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    rows = table_rows(lines)
    assert [squeeze(c) for c in rows[-1]] == [squeeze(c) for c in [
        "weights llama-8b", "FAIL",
        "s3://weights-staging/llama-8b/ has no config.json at the root (3 object(s) there)",
        "`aws s3 sync ./<model dir> s3://weights-staging/llama-8b/` with the Hub repository's "
        "files at the root (docs/deploy.md#stage-weights-in-s3-weightsuri)"]]
    assert [r[1] for r in rows[:-1]] == ["ok"] * 8
    assert lines[-1] == ("8 passed, 0 warning(s), 1 failed, 0 could not be checked: fix the "
                         "FAIL/ERROR rows before `pulumi up`")


def test_an_invalid_stack_exits_2_before_any_aws_call(tmp_path):
    bad = dict(STACK)
    bad["llm-hosting:platform"] = "lambda"
    write_stack(tmp_path, "staging", bad)
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    done = preflight(env, tmp_path)
    assert done.returncode == 2
    assert "llm-hosting:platform: 'lambda' is not accepted" in done.stderr
    assert done.stdout == ""
