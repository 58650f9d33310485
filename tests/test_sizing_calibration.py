"""Calibration: the memory model against published vLLM start-up logs.

tests/reference/vllm_memory_logs.csv holds what vLLM itself reported (visible memory, weights,
KV cache GiB and tokens, whether it started) with the engine settings it ran with; each row
keeps its source. The model (components.sizing.profile_memory, the vLLM 0.12.0 accounting the
EKS/ECS image uses) is fed the same settings and must:

* predict the KV cache within +-10% of vLLM's or +-0.5 GiB, whichever is larger - in either
  direction, so never above vLLM's by more than that (rows with ``check == kv``);
* refuse every configuration vLLM refused and admit every one it ran (rows with an outcome).

docs/sizing.md reports the median and worst ratio this test computes.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from components.facts import ModelShape, get_model_shape, is_vision_language
from components.sizing import VLLM_0_12, profile_memory

TABLE = Path(__file__).parent / "reference" / "vllm_memory_logs.csv"
ROWS = list(csv.DictReader(TABLE.open(encoding="utf-8")))

# Models the logs ran that the facts catalog does not carry, from their config.json on the Hub.
EXTRA_SHAPES: dict[str, ModelShape] = {
    # https://huggingface.co/Qwen/Qwen2.5-Math-1.5B/blob/main/config.json
    "Qwen/Qwen2.5-Math-1.5B": ModelShape(
        parameters_b=1.54, active_parameters_b=1.54, layers=28, hidden_size=1536,
        attention_heads=12, kv_heads=2, head_dim=128, vocab_size=151936, dtype="bfloat16",
        max_position_embeddings=4096, tied_embeddings=True, intermediate_size=8960),
    # https://huggingface.co/Qwen/Qwen3-32B/blob/main/config.json
    "Qwen/Qwen3-32B": ModelShape(
        parameters_b=32.8, active_parameters_b=32.8, layers=64, hidden_size=5120,
        attention_heads=64, kv_heads=8, head_dim=128, vocab_size=151936, dtype="bfloat16",
        max_position_embeddings=40960, tied_embeddings=False, intermediate_size=25600),
}

KV_ROWS = [r for r in ROWS if r["check"] == "kv"]
OUTCOME_ROWS = [r for r in ROWS if r["check"] in ("kv", "outcome")]


def _shape(row: dict[str, str]) -> ModelShape:
    shape = get_model_shape(row["model"]) or EXTRA_SHAPES.get(row["model"])
    assert shape is not None, f"{row['id']}: no shape for {row['model']}"
    return shape


def predict(row: dict[str, str]):
    return profile_memory(
        _shape(row), row["quantization"], int(row["tensor_parallel"]),  # type: ignore[arg-type]
        visible_gib=float(row["torch_visible_gib"]),
        gpu_memory_utilization=float(row["gpu_memory_utilization"]),
        max_num_batched_tokens=int(row["max_num_batched_tokens"]),
        max_num_seqs=int(row["max_num_seqs"]),
        engine=VLLM_0_12,
    )


def tolerance_gib(vllm_kv: float) -> float:
    return max(0.10 * vllm_kv, 0.5)


@pytest.mark.parametrize("row", KV_ROWS, ids=[r["id"] for r in KV_ROWS])
def test_predicted_kv_cache_is_within_tolerance_of_vllms(row):
    vllm_kv = float(row["kv_cache_gib"])
    predicted = predict(row).kv_cache_gib
    assert abs(predicted - vllm_kv) <= tolerance_gib(vllm_kv), (
        f"{row['id']} {row['model']}: predicted {predicted:.2f} GiB, vLLM {vllm_kv:.2f} GiB")


@pytest.mark.parametrize("row", OUTCOME_ROWS, ids=[r["id"] for r in OUTCOME_ROWS])
def test_every_refusal_is_refused_and_every_run_admitted(row):
    # vLLM refuses to start when one max_model_len sequence does not fit the KV cache.
    admitted = predict(row).kv_cache_tokens >= int(row["max_model_len"])
    assert admitted == (row["outcome"] == "ran"), row["id"]


def test_the_table_covers_text_models_on_three_gpu_memory_sizes():
    assert len(KV_ROWS) >= 15
    assert not any(is_vision_language(r["model"]) for r in KV_ROWS)
    sizes = {round(float(r["torch_visible_gib"]) / 24) for r in KV_ROWS}  # 24, 48, 80 GB -> 1, 2, 3
    assert sizes >= {1, 2, 3}
    assert {r["outcome"] for r in OUTCOME_ROWS} == {"ran", "refused"}


def test_vision_rows_are_what_the_config_refuses():
    vision = [r for r in ROWS if r["check"] == "vision"]
    assert vision and all(is_vision_language(r["model"].split(" ")[0]) for r in vision)


def test_calibration_summary_matches_the_docs():
    """The figures docs/sizing.md quotes (median and worst predicted/vLLM ratio)."""
    ratios = [predict(r).kv_cache_gib / float(r["kv_cache_gib"]) for r in KV_ROWS]
    median, worst = statistics.median(ratios), max(ratios, key=lambda x: abs(x - 1))
    docs = (Path(__file__).parent.parent / "docs" / "sizing.md").read_text(encoding="utf-8")
    assert f"median ratio {median:.3f}" in docs
    assert f"worst ratio {worst:.3f}" in docs
