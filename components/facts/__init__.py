"""Facts with sources and dates (GPU instances, prices, model shapes), importable without Pulumi.

The program, the offline ``plan`` command and the policy pack all read these, so there is one
truth for GPU memory and prices; ``scripts/refresh_facts.py`` diffs them against the live APIs.
"""

from components.facts.gpus import (
    FAMILIES,
    GPU_INSTANCES,
    GPU_MODELS,
    PRICES_AS_OF,
    GpuInstance,
    GpuModel,
    get_gpu_instance,
    price_per_hour,
)
from components.facts.models import (
    GATED_ORGS,
    MODEL_SHAPES,
    QUANTIZED_CHECKPOINTS,
    CheckpointQuantization,
    Dtype,
    ModelShape,
    QuantizedCheckpoint,
    checkpoint_quantization,
    get_model_shape,
    is_gated,
    is_vision_language,
    quantized_variants,
)

__all__ = [
    "FAMILIES",
    "GATED_ORGS",
    "GPU_INSTANCES",
    "GPU_MODELS",
    "MODEL_SHAPES",
    "PRICES_AS_OF",
    "QUANTIZED_CHECKPOINTS",
    "CheckpointQuantization",
    "Dtype",
    "GpuInstance",
    "GpuModel",
    "ModelShape",
    "QuantizedCheckpoint",
    "checkpoint_quantization",
    "get_gpu_instance",
    "get_model_shape",
    "is_gated",
    "is_vision_language",
    "price_per_hour",
    "quantized_variants",
]
