"""Per-model sizing and cost figures in one shape, shared by stack outputs and `plan --json`."""

from __future__ import annotations

import math
from typing import Any

from components.config import Model, StackConfig


def instance_name(model: Model, platform: str) -> str:
    """The name the platform's API uses: SageMaker wants the `ml.` form."""
    return f"ml.{model.instance.name}" if platform == "sagemaker" else model.instance.name


def model_summary(model: Model, platform: str) -> dict[str, Any]:
    """`instanceType` in the form `models[].instanceType` accepts (the EC2 name on every
    platform), `platformInstanceType` as the platform's API and bill name it (`ml.` on
    SageMaker)."""
    memory, cost = model.memory, model.cost
    per_1k = cost.usd_per_1k_tokens_lower_bound
    return {
        "name": model.name,
        "modelId": model.spec.model_id,
        "instanceType": model.instance.name,
        "platformInstanceType": instance_name(model, platform),
        "gpusPerReplica": model.gpus_per_replica,
        "gpusChosen": model.gpus_chosen,
        "memoryRequiredGiB": round(memory.required_gib_per_gpu, 2),
        "memoryAvailableGiB": round(memory.available_gib_per_gpu, 2),
        "fits": memory.fits,
        "maxConcurrentSequences": memory.max_concurrent_sequences,
        "hourlyUsdMin": round(cost.hourly_usd_min, 4),
        "hourlyUsdMax": round(cost.hourly_usd_max, 4),
        "monthlyUsdMin": round(cost.monthly_usd_min, 2),
        "usdPer1kTokensLowerBound": round(per_1k, 6) if math.isfinite(per_1k) else None,
        # The engine settings the fit assumed; the platforms pass exactly these.
        "engine": {
            "gpuMemoryUtilization": memory.engine.gpu_memory_utilization,
            "maxNumBatchedTokens": memory.engine.max_num_batched_tokens,
            "maxNumSeqs": memory.engine.max_num_seqs,
            "maxModelLen": memory.engine.max_model_len,
        },
    }


def model_summaries(config: StackConfig) -> list[dict[str, Any]]:
    return [model_summary(m, config.platform) for m in config.models]
