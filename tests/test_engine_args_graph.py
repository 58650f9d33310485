"""The engine arguments in the built resources are the settings the memory model sized.

Each example stack is run offline; the serving engine's memory arguments are read back from the
registered resources (the EKS Deployment's container args, the ECS task definition's command,
the SageMaker model's environment) and fed to the same profile the plan used: the KV cache they
give must still hold the concurrency target, and every argument must be the sized one - so the
plan and what vLLM measures at start-up cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.offline import ROOT, run_program
from components.plan import _parse
from components.sizing import GIB, profile_memory
from components.stackfile import read_stack_file


def _stack(name: str):
    stack = read_stack_file(ROOT / f"Pulumi.{name}.yaml")
    graph = run_program(stack.config, stack=stack.stack, secret_keys=stack.secret_keys)
    return _parse(stack), graph


def _flags(args: list[str]) -> dict[str, str]:
    return {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}


def _recompute(model: Any, utilization: float, batched: int, seqs: int, max_len: int) -> None:
    sized = model.memory.engine
    assert (utilization, batched, seqs, max_len) == (
        sized.gpu_memory_utilization, sized.max_num_batched_tokens, sized.max_num_seqs,
        sized.max_model_len)
    profile = profile_memory(
        model.shape, model.spec.quantization, model.gpus_per_replica,
        visible_gib=model.instance.visible_memory_gib, gpu_memory_utilization=utilization,
        max_num_batched_tokens=batched, max_num_seqs=seqs, engine=model.request.engine)
    per_sequence = profile.kv_bytes_per_token * max_len / GIB
    assert profile.kv_cache_tokens // max_len >= model.spec.concurrency_target
    assert profile.kv_cache_gib >= model.spec.concurrency_target * per_sequence


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_vllm_arguments_in_the_graph_are_the_sized_ones(stack):
    config, graph = _stack(stack)
    seen = set()
    for model in config.models:
        for resource in graph.resources:
            text = json.dumps(resource.inputs)
            if "--max-num-batched-tokens" not in text or model.spec.model_id not in text:
                continue
            for args in _find_args(resource.inputs):
                if "--served-model-name" in args and model.spec.model_id in args:
                    f = _flags(args)
                    _recompute(model, float(f["--gpu-memory-utilization"]),
                               int(f["--max-num-batched-tokens"]), int(f["--max-num-seqs"]),
                               int(f["--max-model-len"]))
                    assert int(f["--tensor-parallel-size"]) == model.gpus_per_replica
                    seen.add(model.name)
    assert seen == {m.name for m in config.models}


def test_lmi_environment_in_the_graph_is_the_sized_one():
    config, graph = _stack("dev")
    (model,) = config.models
    envs = [e for r in graph.resources for e in _find_env(r.inputs)
            if e.get("OPTION_ROLLING_BATCH") == "vllm"]
    assert envs
    for env in envs:
        _recompute(model, float(env["OPTION_GPU_MEMORY_UTILIZATION"]),
                   int(env["OPTION_MAX_ROLLING_BATCH_PREFILL_TOKENS"]),
                   int(env["OPTION_MAX_ROLLING_BATCH_SIZE"]), int(env["OPTION_MAX_MODEL_LEN"]))


def _find_args(value: Any) -> list[list[str]]:
    """Every list of strings under ``args``/``command`` (JSON strings are decoded)."""
    found: list[list[str]] = []
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _find_args(json.loads(value))
        except json.JSONDecodeError:
            return []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("args", "command") and isinstance(item, list) and all(
                    isinstance(x, str) for x in item):
                found.append(item)
            else:
                found += _find_args(item)
    elif isinstance(value, list):
        for item in value:
            found += _find_args(item)
    return found


def _find_env(value: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(value, dict):
        if isinstance(value.get("environment"), dict):
            found.append(value["environment"])
        for item in value.values():
            found += _find_env(item)
    elif isinstance(value, list):
        for item in value:
            found += _find_env(item)
    return found
