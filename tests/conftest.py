"""Shared fixtures: a valid base config and the offline program runner (components/offline.py)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.offline import Graph, run_program  # noqa: E402

SHARED = ROOT.parent / "shared"

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


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/ (reference schemas) is not present in this checkout")
    return SHARED
