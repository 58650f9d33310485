"""GPU memory model, instance choice and cost for serving one model with vLLM-style engines.

Pure functions over the facts tables, no Pulumi and no AWS calls: the program uses them to pick
and justify an instance, the offline ``plan`` command prints them, and the policy pack uses
them to reject a configuration that cannot fit. Every number is an *estimate* with its formula
written next to it; the one performance figure (tokens/s) is a memory-bandwidth roofline and is
labelled an upper bound everywhere it surfaces. Nothing here invents a measured throughput.

Memory per GPU (GiB = 2^30 bytes) for a replica sharded over ``tp = gpus_per_replica`` GPUs:

* weights / tp, see :func:`weight_bytes`;
* KV cache: ``2 (K and V) x layers x ceil(kv_heads / tp) x head_dim x 2 bytes`` per token; vLLM
  replicates KV heads when ``tp > kv_heads``, hence the ceiling
  (https://docs.vllm.ai/en/latest/serving/distributed_serving.html);
* overhead: :data:`CUDA_RUNTIME_RESERVE_GIB` plus a peak-activation term, see
  :func:`overhead_bytes_per_gpu`;
* budget: GPU memory x ``gpu_memory_utilization`` (vLLM's knob: the fraction of *total* GPU
  memory the engine may use for weights, activations and KV cache, default 0.9 -
  https://docs.vllm.ai/en/latest/serving/engine_args.html).

Sliding-window layers (Mistral v0.1, Gemma 2) are sized as full attention: conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from components.facts.gpus import GPU_INSTANCES, GpuInstance, price_per_hour
from components.facts.models import ModelShape

Quantization = Literal["none", "awq", "gptq", "fp8"]
Pricing = Literal["ec2", "sagemaker"]

#: vLLM's default ``gpu_memory_utilization`` (EngineArgs), see module docstring.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90

GIB = 1024**3
HOURS_PER_MONTH = 730  # AWS pricing pages' convention for a month of on-demand hours.

#: Bytes per weight when served unquantized. fp32 checkpoints (Gemma 2 2b/9b) are served in
#: their 16-bit form like every other model (vLLM ``--dtype auto`` downcasts fp32 to 16-bit).
BYTES_16BIT = 2
#: KV cache dtype: 16-bit (vLLM ``kv_cache_dtype=auto`` follows the model's 16-bit dtype).
KV_BYTES_PER_ELEMENT = 2
#: 4-bit AWQ/GPTQ with group size 128: 0.5 B per weight, plus per group of 128 weights one
#: fp16 scale (2 B) and one packed 4-bit zero point (0.5 B). AutoAWQ/GPTQ ``q_group_size=128``
#: layout (https://github.com/casper-hansen/AutoAWQ, https://arxiv.org/abs/2210.17323).
INT4_GROUP_SIZE = 128
INT4_BYTES_PER_WEIGHT = 0.5 + (2 + 0.5) / INT4_GROUP_SIZE
#: fp8 (W8) weights: 1 B per weight; per-tensor/per-channel scales are negligible.
FP8_BYTES_PER_WEIGHT = 1.0

#: Memory outside PyTorch's allocator that vLLM profiles as "non-torch" memory and that is not
#: available to the KV cache: CUDA context, cuBLAS/cuDNN workspaces, NCCL buffers for tp > 1 and
#: the CUDA-graph pool. It varies by driver and model (typically 0.5-1.5 GiB); we take the top
#: of that range per GPU as an assumption, not a measurement.
#: https://docs.vllm.ai/en/latest/configuration/conserving_memory.html
CUDA_RUNTIME_RESERVE_GIB = 1.5
#: Peak activation bytes per token per hidden unit for one transformer layer in 16-bit:
#: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
#: (https://arxiv.org/abs/2205.05198), eq. 1: 34*s*b*h bytes per layer without the attention
#: score term (flash attention never materialises it). During inference only one layer's
#: activations are live, and training keeps more than inference needs, so this bounds the peak.
ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN = 34


@dataclass(frozen=True)
class SizingRequest:
    """What one model replica must hold: the shape, its serving precision and the traffic budget.

    ``concurrency_target`` is how many full-length (``max_total_tokens``) sequences the KV cache
    must be able to hold at once for the configuration to count as fitting.
    """

    shape: ModelShape
    quantization: Quantization
    gpus_per_replica: int
    max_input_tokens: int
    max_total_tokens: int
    concurrency_target: int = 4
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION

    def __post_init__(self) -> None:
        errors = []
        if self.quantization not in ("none", "awq", "gptq", "fp8"):
            errors.append(
                f"quantization must be one of none, awq, gptq, fp8, got {self.quantization!r}"
            )
        if self.gpus_per_replica < 1:
            errors.append(f"gpus_per_replica must be >= 1, got {self.gpus_per_replica}")
        if self.max_input_tokens < 1:
            errors.append(f"max_input_tokens must be >= 1, got {self.max_input_tokens}")
        if self.max_total_tokens <= self.max_input_tokens:
            errors.append(
                f"max_total_tokens ({self.max_total_tokens}) must be greater than "
                f"max_input_tokens ({self.max_input_tokens})"
            )
        if self.concurrency_target < 1:
            errors.append(f"concurrency_target must be >= 1, got {self.concurrency_target}")
        if not 0 < self.gpu_memory_utilization <= 1:
            errors.append(
                f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"
            )
        if errors:
            raise ValueError("; ".join(errors))


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU memory budget of one replica on one instance type, in GiB."""

    weights_gib_per_gpu: float
    kv_cache_gib_per_sequence_per_gpu: float
    overhead_gib_per_gpu: float
    required_gib_per_gpu: float
    available_gib_per_gpu: float
    max_concurrent_sequences: int
    fits: bool


@dataclass(frozen=True)
class CostEstimate:
    """Hourly/monthly spend for a replica range, plus a roofline ceiling on decode throughput.

    ``tokens_per_second_upper_bound`` is per replica and a memory-bandwidth roofline (peak HBM
    bandwidth, perfect overlap, no scheduling or kernel overhead): real engines reach a fraction
    of it. ``usd_per_1k_tokens_lower_bound`` follows from it, so it is a floor on cost. When the
    model does not fit, throughput is ``0.0`` and $/1k tokens is ``math.inf``.
    """

    replicas_per_instance: int
    hourly_usd_min: float
    hourly_usd_max: float
    monthly_usd_min: float
    tokens_per_second_upper_bound: float
    usd_per_1k_tokens_lower_bound: float


def embedding_parameters(shape: ModelShape) -> int:
    """Input embedding + LM head parameters: ``vocab x hidden``, twice when untied."""
    return shape.vocab_size * shape.hidden_size * (1 if shape.tied_embeddings else 2)


def _weight_bytes_for(parameters: float, shape: ModelShape, quantization: Quantization) -> float:
    if quantization == "none":
        return parameters * BYTES_16BIT
    # Quantized checkpoints (AWQ/GPTQ/fp8 in vLLM) keep embeddings and the LM head in 16-bit.
    embeddings = embedding_parameters(shape)
    per_weight = INT4_BYTES_PER_WEIGHT if quantization in ("awq", "gptq") else FP8_BYTES_PER_WEIGHT
    return (parameters - embeddings) * per_weight + embeddings * BYTES_16BIT


def weight_bytes(shape: ModelShape, quantization: Quantization) -> float:
    """Bytes of weights for the whole model at the serving precision.

    * ``none``: 2 B/parameter (bf16/fp16; fp32 checkpoints are served in 16-bit);
    * ``fp8``: 1 B/parameter;
    * ``awq``/``gptq``: :data:`INT4_BYTES_PER_WEIGHT` (~0.52 B) per parameter;

    and for the quantized modes the embeddings and LM head (:func:`embedding_parameters`) stay
    at 2 B/parameter. Norms and biases are counted with the quantized body; they are < 0.1%.
    """
    return _weight_bytes_for(shape.parameters_b * 1e9, shape, quantization)


def kv_bytes_per_token(shape: ModelShape) -> float:
    """KV-cache bytes per token for the whole model: ``2 x layers x kv_heads x head_dim x 2``."""
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * KV_BYTES_PER_ELEMENT


def kv_heads_per_gpu(shape: ModelShape, tensor_parallel: int) -> int:
    """KV heads each GPU stores; vLLM replicates KV heads when ``tp > kv_heads``."""
    return math.ceil(shape.kv_heads / tensor_parallel)


def kv_bytes_per_token_per_gpu(shape: ModelShape, tensor_parallel: int) -> float:
    """Per-GPU share of :func:`kv_bytes_per_token` under tensor parallelism."""
    heads = kv_heads_per_gpu(shape, tensor_parallel)
    return 2 * shape.layers * heads * shape.head_dim * KV_BYTES_PER_ELEMENT


def overhead_bytes_per_gpu(request: SizingRequest) -> float:
    """CUDA runtime reserve plus peak activations of one prefill of ``max_input_tokens``.

    ``CUDA_RUNTIME_RESERVE_GIB + 34 x max_input_tokens x hidden_size / tp`` bytes (see the
    constants for sources). Activations are split across the tensor-parallel GPUs.
    """
    activations = (
        ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN * request.max_input_tokens * request.shape.hidden_size
    ) / request.gpus_per_replica
    return CUDA_RUNTIME_RESERVE_GIB * GIB + activations


def _check_placement(request: SizingRequest, instance: GpuInstance) -> None:
    tp = request.gpus_per_replica
    if instance.gpu_count < tp:
        raise ValueError(
            f"{instance.name} has {instance.gpu_count} GPU(s); gpus_per_replica is {tp}"
        )
    if request.shape.attention_heads % tp:
        # vLLM: "Total number of attention heads must be divisible by tensor parallel size".
        raise ValueError(
            f"gpus_per_replica ({tp}) must divide the model's "
            f"{request.shape.attention_heads} attention heads"
        )


def estimate_memory(request: SizingRequest, instance: GpuInstance) -> MemoryEstimate:
    """Per-GPU memory of one replica on ``instance`` and whether ``concurrency_target`` fits.

    Raises ``ValueError`` when the replica cannot be placed at all (fewer GPUs than
    ``gpus_per_replica``, or a tensor-parallel size that does not divide the attention heads).
    """
    _check_placement(request, instance)
    tp = request.gpus_per_replica
    weights = weight_bytes(request.shape, request.quantization) / tp / GIB
    kv_sequence = (
        kv_bytes_per_token_per_gpu(request.shape, tp) * request.max_total_tokens / GIB
    )
    overhead = overhead_bytes_per_gpu(request) / GIB
    required = weights + overhead + request.concurrency_target * kv_sequence
    available = instance.gpu_memory_gib * request.gpu_memory_utilization
    headroom = available - weights - overhead
    max_sequences = max(0, math.floor(headroom / kv_sequence))
    return MemoryEstimate(
        weights_gib_per_gpu=weights,
        kv_cache_gib_per_sequence_per_gpu=kv_sequence,
        overhead_gib_per_gpu=overhead,
        required_gib_per_gpu=required,
        available_gib_per_gpu=available,
        max_concurrent_sequences=max_sequences,
        fits=required <= available,
    )


def choose_instance(request: SizingRequest, pricing: Pricing) -> GpuInstance | None:
    """Cheapest catalog instance (for ``pricing``) on which one replica fits, else ``None``.

    Candidates need ``gpu_count >= gpus_per_replica`` and, for ``"sagemaker"``, a SageMaker
    price. Ties on price go to fewer GPUs, then to the instance name, so the choice is stable.
    """
    if request.shape.attention_heads % request.gpus_per_replica:
        return None
    candidates: list[tuple[float, int, str, GpuInstance]] = []
    for instance in GPU_INSTANCES.values():
        price = price_per_hour(instance, pricing)
        if price is None or instance.gpu_count < request.gpus_per_replica:
            continue
        if estimate_memory(request, instance).fits:
            candidates.append((price, instance.gpu_count, instance.name, instance))
    return min(candidates)[3] if candidates else None


def decode_tokens_per_second_upper_bound(request: SizingRequest, instance: GpuInstance) -> float:
    """Memory-bandwidth roofline for decode, per replica; ``0.0`` when the model does not fit.

    Each decode step every GPU streams its share of the *active* weights (MoE: active
    parameters only; the input-embedding gather is not a full read, so an untied input
    table is left out) plus the KV cache of the whole batch from memory. Sequences decode
    from ``max_input_tokens`` to ``max_total_tokens``, so on average they hold
    ``context = (max_input_tokens + max_total_tokens) / 2`` tokens; a paged KV cache (vLLM's
    PagedAttention) holds as many of them as fit in the KV memory, ``batch =
    floor(kv_memory / (context x kv_bytes_per_token_per_gpu))`` (at least 1) - more than the
    ``max_concurrent_sequences`` of full length, so the bound is not understated:

        step_seconds = (active_weights / tp + batch x context x kv) / (bandwidth_GBps x 1e9)
        tokens/s     = batch / step_seconds

    tokens/s grows with the batch, so the largest batch memory admits gives the ceiling;
    engine caps (vLLM's ``max_num_seqs``) only lower it.

    This is the Roofline model (Williams et al., https://doi.org/10.1145/1498765.1498785)
    applied as in "LLM Inference Unveiled" (https://arxiv.org/abs/2402.16363): decode is
    memory-bound, so peak bandwidth caps it. It is an upper bound, not an expected value.
    """
    memory = estimate_memory(request, instance)
    if not memory.fits:
        return 0.0
    shape, tp = request.shape, request.gpus_per_replica
    active = _weight_bytes_for(shape.active_parameters_b * 1e9, shape, request.quantization)
    if not shape.tied_embeddings:
        active -= shape.vocab_size * shape.hidden_size * BYTES_16BIT
    average_context = (request.max_input_tokens + request.max_total_tokens) / 2
    kv_per_sequence = average_context * kv_bytes_per_token_per_gpu(shape, tp)
    kv_memory = (
        memory.available_gib_per_gpu - memory.weights_gib_per_gpu - memory.overhead_gib_per_gpu
    ) * GIB
    batch = max(1, math.floor(kv_memory / kv_per_sequence))
    kv_read = batch * kv_per_sequence
    bytes_per_step = active / tp + kv_read
    step_seconds = bytes_per_step / (instance.gpu.memory_bandwidth_gbps * 1e9)
    return batch / step_seconds


def estimate_cost(
    request: SizingRequest,
    instance: GpuInstance,
    pricing: Pricing,
    min_replicas: int,
    max_replicas: int,
) -> CostEstimate:
    """Spend for ``min_replicas``..``max_replicas`` replicas packed onto ``instance``.

    ``instances = ceil(replicas / replicas_per_instance)``; hourly = instances x price;
    monthly = hourly x 730. ``usd_per_1k_tokens_lower_bound`` = (price / replicas_per_instance)
    / (tokens/s upper bound x 3600) x 1000, i.e. the replica's share of the instance price per
    thousand output tokens at the roofline; ``math.inf`` when nothing fits.
    """
    price = price_per_hour(instance, pricing)
    if price is None:
        raise ValueError(f"{instance.name} is not offered on SageMaker")
    if min_replicas < 0 or max_replicas < max(1, min_replicas):
        raise ValueError(
            f"need 0 <= min_replicas <= max_replicas and max_replicas >= 1, "
            f"got {min_replicas}..{max_replicas}"
        )
    _check_placement(request, instance)
    per_instance = instance.gpu_count // request.gpus_per_replica
    hourly_min = math.ceil(min_replicas / per_instance) * price
    hourly_max = math.ceil(max_replicas / per_instance) * price
    tokens_per_second = decode_tokens_per_second_upper_bound(request, instance)
    if tokens_per_second > 0:
        usd_per_1k = (price / per_instance) / (tokens_per_second * 3600) * 1000
    else:
        usd_per_1k = math.inf
    return CostEstimate(
        replicas_per_instance=per_instance,
        hourly_usd_min=hourly_min,
        hourly_usd_max=hourly_max,
        monthly_usd_min=hourly_min * HOURS_PER_MONTH,
        tokens_per_second_upper_bound=tokens_per_second,
        usd_per_1k_tokens_lower_bound=usd_per_1k,
    )
