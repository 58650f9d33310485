"""Shared fixtures: a valid base config and the offline program runner (components/offline.py)."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# Importing litellm (the gateway tests do) otherwise fetches its model price map from GitHub,
# retrying for ~10 s; the tests run offline, and so does the gateway (components/gateway/).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.offline import Graph, run_program  # noqa: E402

REFERENCE = ROOT / "tests" / "reference"
"""Upstream data the tests hold the program to, copied unchanged (see its README)."""

BASE_CONFIG: dict[str, Any] = {
    "aws:region": "us-east-1",
    "llm-hosting:environment": "dev",
    "llm-hosting:platform": "sagemaker",
    "llm-hosting:models": [
        {
            "name": "llama-8b",
            "modelId": "meta-llama/Meta-Llama-3-8B-Instruct",
            "engine": "vllm",
            "maxInputTokens": 3072,
            "maxTotalTokens": 4096,
            "minReplicas": 1,
            "maxReplicas": 2,
            "weightsUri": "s3://weights-bucket/llama-3-8b/",
        }
    ],
}


@pytest.fixture
def base_config() -> dict[str, Any]:
    """A valid config as the engine passes it; tests mutate their own deep copy."""
    return copy.deepcopy(BASE_CONFIG)


@pytest.fixture
def program():
    """Run `__main__.py` offline: `program(config, stack=..., secret_keys=...) -> Graph`."""

    def run(config: dict[str, Any], **kwargs: Any) -> Graph:
        return run_program(config, **kwargs)

    return run


def crd_schema(filename: str, version: str = "v1") -> dict[str, Any]:
    """The OpenAPI v3 schema of one version of a reference CRD (tests/reference/crds/)."""
    crd = yaml.safe_load((REFERENCE / "crds" / filename).read_text())
    (found,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return found["schema"]["openAPIV3Schema"]
