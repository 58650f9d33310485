"""GPU memory model, placement choice and cost for serving one model, reproducing vLLM's own
start-up profiling at the pinned versions.

Pure functions over the facts tables, no Pulumi and no AWS calls: the program uses them to pick
and justify an instance and a tensor-parallel degree, the offline ``plan`` command prints them,
the engine arguments are generated from them (so the engine runs with exactly what was sized),
and the policy pack recomputes them. docs/sizing.md walks through one example by hand and
reports the calibration against published vLLM start-up logs
(tests/reference/vllm_memory_logs.csv, checked by tests/test_sizing_calibration.py).

How vLLM 0.12.0 (the EKS/ECS image, components/facts/images.py) sizes its KV cache, per GPU
(vllm/v1/worker/gpu_worker.py at v0.12.0):

1. ``init_device`` takes a memory snapshot *after* the CUDA context and the NCCL communicators
   exist and sets ``requested_memory = total_memory x gpu_memory_utilization``; ``total_memory``
   is what the driver exposes (:attr:`GpuModel.visible_memory_gib`), not the marketing figure.
2. ``determine_available_memory`` runs ``profile_run`` inside ``memory_profiling`` and returns
   ``requested_memory - (weights + torch peak increase + non-torch increase)``
   (vllm/utils/mem_utils.py ``memory_profiling``). ``profile_run`` is one dummy forward pass of
   ``max_num_batched_tokens`` tokens followed by one sampler pass over ``min(max_num_seqs,
   max_num_batched_tokens)`` sequences of full-vocabulary logits (gpu_model_runner.py
   ``profile_run`` / ``_dummy_sampler_run``).
3. ``compile_or_warm_up_model`` captures CUDA graphs *after* the KV cache is allocated, and
   ``memory_profiling`` does not count them: graphs, the CUDA context and NCCL's set-up live
   outside the utilization budget and must fit in ``total x (1 - utilization)``. vLLM 0.21
   moved graphs inside the budget; the pinned 0.12.0 has them outside.

So per GPU, with ``tp`` the tensor-parallel degree (terms in GiB, each constant below cites
where it comes from):

    budget   = visible x utilization
    kv       = budget - weights/tp - activation - non_torch [- baseline, LMI's vLLM 0.8.4]
    outside  = baseline + cuda_graphs   must fit in visible x (1 - utilization)

and vLLM refuses to start when ``kv`` holds less than one ``max_model_len`` sequence. The
engine settings the model assumed (``--gpu-memory-utilization``, ``--max-num-batched-tokens``,
``--max-num-seqs``, ``--max-model-len``) are part of the estimate (:class:`EngineSettings`) and
the platforms pass exactly those.

TGI (SageMaker ``engine: tgi``) keeps its own accounting (it measures free memory after a warm-up
prefill of ``MAX_BATCH_PREFILL_TOKENS`` and keeps 5% "wiggle room"); the same weights and KV
terms approximate it and its own options are set from the same settings, see docs/sizing.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Literal

from components.facts.gpus import GPU_INSTANCES, GpuInstance, price_per_hour
from components.facts.models import ModelShape

Quantization = Literal["none", "awq", "gptq", "fp8"]
Pricing = Literal["ec2", "sagemaker"]

#: The utilization ceiling: vLLM's default ``gpu_memory_utilization`` (EngineArgs/CacheConfig,
#: https://docs.vllm.ai/en/v0.12.0/configuration/engine_args.html). The model lowers it where
#: the memory outside the budget (CUDA context, NCCL, CUDA graphs) would not fit the rest.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90
#: Below this the replica is refused rather than run with a starved budget.
MIN_GPU_MEMORY_UTILIZATION = 0.50

GIB = 1024**3
HOURS_PER_MONTH = 730  # AWS pricing pages' convention for a month of on-demand hours.

#: Bytes per weight when served unquantized. fp32 checkpoints (Gemma 2 2b/9b) are served in
#: their 16-bit form like every other model (vLLM ``--dtype auto`` downcasts fp32 to 16-bit).
BYTES_16BIT = 2
#: KV cache dtype: 16-bit (vLLM ``kv_cache_dtype=auto`` follows the model's 16-bit dtype).
KV_BYTES_PER_ELEMENT = 2
#: vLLM allocates the KV cache in blocks of 16 tokens (CacheConfig.block_size default on CUDA).
KV_BLOCK_TOKENS = 16
#: 4-bit AWQ/GPTQ with group size 128: 0.5 B per weight, plus per group of 128 weights one
#: fp16 scale (2 B) and one packed 4-bit zero point (0.5 B). AutoAWQ/GPTQ ``q_group_size=128``
#: layout (https://github.com/casper-hansen/AutoAWQ, https://arxiv.org/abs/2210.17323).
#: Checked: RedHatAI Llama-3.1-8B w4a16 loads 5.38 GiB in vLLM 0.19 (this formula: 5.33).
INT4_GROUP_SIZE = 128
INT4_BYTES_PER_WEIGHT = 0.5 + (2 + 0.5) / INT4_GROUP_SIZE
#: fp8 (W8) weights: 1 B per weight; per-tensor/per-channel scales are negligible. Checked:
#: Llama-3.3-70B FP8-dynamic loads 33.88 GiB per GPU at TP=2 in vLLM 0.19 (this formula: 33.86).
FP8_BYTES_PER_WEIGHT = 1.0

# --- profiled terms (inside the utilization budget) ------------------------------------------
#
# Measured on vLLM 0.19.0 (llm-d-incubation/llm-d-planner accuracy/results/v0.19.0/logs: DEBUG
# lines "Actual usage is W GiB for weight, A GiB for peak activation, N GiB for non-torch memory,
# and G GiB for CUDAGraph memory", H100, max_num_batched_tokens 8192, max_num_seqs 1024) and
# carried over to 0.12.0 because the code paths that produce them are the same at both tags:
# memory_profiling / determine_available_memory (snapshot after NCCL init, requested memory =
# total x utilization), profile_run (one dummy forward of max_num_batched_tokens, then
# _dummy_sampler_run) and TopKTopPSampler.forward_native (FlashInfer sampling is opt-in at both,
# so the dummy top-k/top-p pass sorts the full vocabulary).

#: Torch peak increase present whatever the shapes (attention metadata and workspace buffers):
#: the intercept of the fit below, 0.13 GiB.
ACTIVATION_BASE_GIB = 0.13
#: Sampler warm-up bytes per logit (one sequence x one vocabulary entry): 16-bit logits from the
#: LM head, their fp32 copy, and the int64 indices + fp32 values of the top-k/top-p sort.
#: Fitted on the sampler-dominated runs (1,024 sequences): Llama-3.1-8B 1.89 GiB (vocab
#: 128,256) and Gemma-2 3.62-3.66 GiB (vocab 256,000) give 14.37 B/logit; the same constant
#: then predicts Qwen2.5-7B 2.22 (logged 2.21) and phi-4 1.51 (logged 1.52). This is the term
#: that makes a 256k-vocabulary model cost ~1.7 GiB more than Llama at 1,024 sequences.
SAMPLER_BYTES_PER_LOGIT = 14.37
#: vLLM 0.12 runs CUDA graph warm-ups up to 512 tokens and the profile forward at
#: ``max_num_batched_tokens``; per token the live set at the MLP is the residual and the hidden
#: state (2 x hidden x 2 B) plus gate/up (2 x intermediate / tp x 2 B) and the activation output
#: (intermediate / tp x 2 B): ``4 h + 6 I / tp`` bytes. Checked on the forward-dominated runs:
#: CodeLlama-7b 0.76 GiB (logged 0.77), granite-3.1-8b 0.84 (0.85), and against vLLM's
#: "peak_torch_memory" on an RTX 3090 at 20k/29k batched tokens (vLLM issue #10517: 2.07/2.99
#: GiB logged, 2.04/2.89 predicted) - the reason the activation follows
#: ``max_num_batched_tokens`` and not the prompt length.
FORWARD_RESIDUAL_BYTES_PER_HIDDEN = 4
FORWARD_MLP_BYTES_PER_INTERMEDIATE = 6
#: Mixture-of-experts (fused_moe): per routed expert the token also carries its gated input and
#: output copies (4 x hidden bytes); Mixtral-8x7B TP=2 logs 1.21 GiB (predicted 1.17).
MOE_BYTES_PER_HIDDEN_PER_EXPERT = 4
#: Non-torch memory that grows during the profile run (cuBLAS workspaces; with TP >= 2 NCCL's
#: lazily allocated channel buffers, the custom all-reduce IPC buffers and torch symmetric
#: memory - VLLM_ALLREDUCE_USE_SYMM_MEM defaults to on at 0.12.0 and 0.19.0). Logged
#: 0.24-0.27 GiB at TP=1 and 2.06-2.21 GiB at TP=2..4 on H100; the top of each range is used.
NON_TORCH_GIB_TP1 = 0.27
NON_TORCH_GIB_TP_MULTI = 2.21

# --- outside the budget -------------------------------------------------------------------------

#: Memory in use before vLLM's snapshot: the CUDA context (0.51 GiB at TP=1 in every llm-d log),
#: and with TP >= 2 the NCCL communicators too (1.53-1.55 GiB, same logs; ~2.0 with NVLS on MoE
#: runs). vLLM 0.12 leaves it outside the budget; vLLM 0.8.4 (inside SageMaker's LMI 15) measured
#: free memory before it and so counts it inside (vllm/v1/worker/gpu_worker.py at v0.8.4:
#: ``non_torch_allocations`` is total used minus torch allocated after the profile run).
BASELINE_GIB_TP1 = 0.51
BASELINE_GIB_TP_MULTI = 1.55
#: CUDA graph pool, captured after the KV cache (outside the budget at 0.12.0). Upper envelope
#: of the llm-d logs ("took N GiB"): 0.64-0.96 GiB for 28-32 layer models, 1.09-1.23 for 42-46
#: layers, 1.54-1.85 for 80 layers: ``0.45 + 0.0175 x layers``.
CUDA_GRAPH_BASE_GIB = 0.45
CUDA_GRAPH_GIB_PER_LAYER = 0.0175
#: Left free beyond graphs + baseline: vLLM itself suggests a 150 MiB redundancy buffer
#: (gpu_worker.compile_or_warm_up_model) and allocator fragmentation takes more; 0.5 GiB.
OUTSIDE_MARGIN_GIB = 0.5

# --- engine settings -------------------------------------------------------------------------

#: vLLM 0.12 defaults for the OpenAI server (engine/arg_utils.py
#: ``get_batch_defaults``): 8,192 batched tokens / 1,024 sequences on GPUs with >= 70 GiB that
#: are not A100s, 2,048 / 256 elsewhere. The model passes them explicitly (chunked prefill is on
#: by default in V1), so prefill activations are bounded by these, never by the prompt length.
LARGE_GPU_GIB = 70
MAX_NUM_BATCHED_TOKENS_LARGE = 8192
MAX_NUM_BATCHED_TOKENS_SMALL = 2048
#: Ceiling on ``--max-num-seqs`` (vLLM's own largest default).
MAX_NUM_SEQS_CAP = 1024
#: TGI keeps this share of the free memory it measures after warm-up (TGI_WIGGLE_ROOM, 0.95 in
#: text-generation-inference server/text_generation_server/models/globals.py).
TGI_WIGGLE_ROOM = 0.95

TP_DEGREES = (1, 2, 4, 8)


@dataclass(frozen=True)
class EngineProfile:
    """How one pinned engine accounts GPU memory; see the module docstring.

    ``baseline_in_budget``: the CUDA context and NCCL set-up count against the utilization
    budget (vLLM <= 0.9, TGI) rather than sitting outside it (vLLM 0.12).
    ``kv_share``: share of the computed KV room the engine actually allocates (TGI's wiggle room).
    ``prefill_covers_prompt``: the engine cannot chunk a prompt (TGI checks
    ``max_batch_prefill_tokens >= max_input_tokens``), so the batched-token budget is at least
    the longest prompt.
    """

    name: str
    baseline_in_budget: bool
    kv_share: float = 1.0
    prefill_covers_prompt: bool = False


VLLM_0_12 = EngineProfile("vLLM 0.12.0", baseline_in_budget=False)
LMI_VLLM_0_8_4 = EngineProfile("vLLM 0.8.4 (SageMaker LMI 15)", baseline_in_budget=True)
TGI = EngineProfile("TGI 3 (approximated)", baseline_in_budget=True, kv_share=TGI_WIGGLE_ROOM,
                    prefill_covers_prompt=True)


@dataclass(frozen=True)
class SizingRequest:
    """What one model replica must hold: the shape, its serving precision and the traffic budget.

    ``concurrency_target`` is how many full-length (``max_total_tokens``) sequences the KV cache
    must be able to hold at once for the configuration to count as fitting.
    ``gpu_memory_utilization`` is the ceiling; the estimate may choose less (see
    :func:`choose_utilization`).
    """

    shape: ModelShape
    quantization: Quantization
    gpus_per_replica: int
    max_input_tokens: int
    max_total_tokens: int
    concurrency_target: int = 4
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    engine: EngineProfile = field(default=VLLM_0_12)

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

    def with_tp(self, tp: int) -> SizingRequest:
        return replace(self, gpus_per_replica=tp)


@dataclass(frozen=True)
class EngineSettings:
    """The engine arguments the estimate assumed; the platforms pass exactly these."""

    gpu_memory_utilization: float
    max_num_batched_tokens: int
    max_num_seqs: int
    max_model_len: int


@dataclass(frozen=True)
class ProfiledMemory:
    """vLLM's profile of one GPU for one set of engine settings, in GiB."""

    visible_gib: float
    budget_gib: float
    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    baseline_gib: float
    baseline_in_budget: bool
    cuda_graph_gib: float
    kv_cache_gib: float
    kv_bytes_per_token: float

    @property
    def kv_cache_tokens(self) -> int:
        """Tokens the KV cache holds, whole 16-token blocks (what vLLM logs as the cache size)."""
        blocks = math.floor(self.kv_cache_gib * GIB / (self.kv_bytes_per_token * KV_BLOCK_TOKENS))
        return max(0, blocks) * KV_BLOCK_TOKENS  # a negative cache holds nothing


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU memory budget of one replica on one instance type, in GiB.

    ``required_gib_per_gpu`` is the budget the concurrency target needs (weights + activation +
    non-torch [+ baseline] + target x one full-length sequence) and ``available_gib_per_gpu``
    the budget vLLM is given (visible x utilization); ``fits`` also needs the memory outside the
    budget to fit and the utilization to stay above :data:`MIN_GPU_MEMORY_UTILIZATION`.
    """

    weights_gib_per_gpu: float
    kv_cache_gib_per_sequence_per_gpu: float
    overhead_gib_per_gpu: float
    required_gib_per_gpu: float
    available_gib_per_gpu: float
    max_concurrent_sequences: int
    fits: bool
    engine: EngineSettings
    profile: ProfiledMemory

    @property
    def kv_cache_gib_per_gpu(self) -> float:
        return self.profile.kv_cache_gib

    @property
    def kv_cache_tokens(self) -> int:
        return self.profile.kv_cache_tokens


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


# --- weights and KV -------------------------------------------------------------------------


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
    Tensor parallelism splits all of it, the vocabulary-parallel embedding and LM head included.
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


def tensor_parallel_problem(shape: ModelShape, tp: int) -> str | None:
    """Why vLLM cannot shard ``shape`` over ``tp`` GPUs, or None.

    vLLM's QKVParallelLinear divides the attention heads by ``tp`` and either divides the KV
    heads by it or replicates them (``tp % kv_heads == 0``); the MLP's column-parallel layer
    divides ``intermediate_size`` (vllm/model_executor/layers/linear.py, ``divide`` asserts
    divisibility). The vocabulary is padded to a multiple of 64 x tp, so it never blocks.
    """
    if shape.attention_heads % tp:
        return f"{tp} does not divide the model's {shape.attention_heads} attention heads"
    if shape.kv_heads % tp and tp % shape.kv_heads:
        return (f"{tp} is neither a divisor nor a multiple of the model's {shape.kv_heads} KV "
                "heads")
    if shape.mlp_width % tp:
        return f"{tp} does not divide the model's intermediate size {shape.mlp_width}"
    return None


# --- the profile ---------------------------------------------------------------------------------


def forward_activation_bytes(shape: ModelShape, tp: int, tokens: int) -> float:
    """Peak torch bytes of the dummy forward pass of ``tokens`` tokens (see the constants)."""
    h, inter, k = shape.hidden_size, shape.mlp_width, shape.experts_per_token
    per_token = (FORWARD_RESIDUAL_BYTES_PER_HIDDEN * h
                 + FORWARD_MLP_BYTES_PER_INTERMEDIATE * inter * k / tp)
    if k > 1:
        per_token += MOE_BYTES_PER_HIDDEN_PER_EXPERT * h * k
    return tokens * per_token


def sampler_activation_bytes(shape: ModelShape, sequences: int) -> float:
    """Peak bytes of the sampler warm-up: full-vocabulary logits on every rank (not split)."""
    return sequences * shape.vocab_size * SAMPLER_BYTES_PER_LOGIT


def activation_gib(shape: ModelShape, tp: int, max_num_batched_tokens: int,
                   max_num_seqs: int) -> float:
    """vLLM's "peak activation": the larger of the dummy forward and the sampler warm-up."""
    sequences = min(max_num_seqs, max_num_batched_tokens)
    peak = max(forward_activation_bytes(shape, tp, max_num_batched_tokens),
               sampler_activation_bytes(shape, sequences))
    return ACTIVATION_BASE_GIB + peak / GIB


def non_torch_gib(tp: int) -> float:
    return NON_TORCH_GIB_TP1 if tp == 1 else NON_TORCH_GIB_TP_MULTI


def baseline_gib(tp: int) -> float:
    return BASELINE_GIB_TP1 if tp == 1 else BASELINE_GIB_TP_MULTI


def cuda_graph_gib(shape: ModelShape) -> float:
    return CUDA_GRAPH_BASE_GIB + CUDA_GRAPH_GIB_PER_LAYER * shape.layers


def profile_memory(
    shape: ModelShape,
    quantization: Quantization,
    tp: int,
    *,
    visible_gib: float,
    gpu_memory_utilization: float,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    engine: EngineProfile = VLLM_0_12,
) -> ProfiledMemory:
    """What vLLM's profile run reports on one GPU for these engine settings (module docstring).

    This is the function the calibration test holds against published start-up logs.
    """
    budget = visible_gib * gpu_memory_utilization
    weights = weight_bytes(shape, quantization) / tp / GIB
    activation = activation_gib(shape, tp, max_num_batched_tokens, max_num_seqs)
    non_torch = non_torch_gib(tp)
    baseline = baseline_gib(tp)
    kv = budget - weights - activation - non_torch
    if engine.baseline_in_budget:
        kv -= baseline
    kv *= engine.kv_share  # (a negative cache only shrinks in magnitude: still refused)
    return ProfiledMemory(
        visible_gib=visible_gib,
        budget_gib=budget,
        weights_gib=weights,
        activation_gib=activation,
        non_torch_gib=non_torch,
        baseline_gib=baseline,
        baseline_in_budget=engine.baseline_in_budget,
        cuda_graph_gib=cuda_graph_gib(shape),
        kv_cache_gib=kv,
        kv_bytes_per_token=kv_bytes_per_token_per_gpu(shape, tp),
    )


# --- engine settings -------------------------------------------------------------------------


def choose_utilization(request: SizingRequest, instance: GpuInstance) -> float:
    """``--gpu-memory-utilization``: the ceiling, lowered (in steps of 0.01) until the memory
    outside the budget - CUDA graphs, and at vLLM 0.12 the context and NCCL - plus
    :data:`OUTSIDE_MARGIN_GIB` fits in what the budget leaves."""
    visible = instance.visible_memory_gib
    tp = request.gpus_per_replica
    outside = cuda_graph_gib(request.shape) + OUTSIDE_MARGIN_GIB
    if not request.engine.baseline_in_budget:
        outside += baseline_gib(tp)
    room = math.floor((1 - outside / visible) * 100) / 100
    return round(min(request.gpu_memory_utilization, room), 2)


def default_batched_tokens(request: SizingRequest, instance: GpuInstance) -> int:
    """vLLM 0.12's default ``max_num_batched_tokens`` for this GPU (see the constants); for TGI
    at least the longest prompt."""
    gpu = instance.gpu
    large = gpu.visible_memory_gib >= LARGE_GPU_GIB and not gpu.name.startswith("A100")
    tokens = MAX_NUM_BATCHED_TOKENS_LARGE if large else MAX_NUM_BATCHED_TOKENS_SMALL
    if request.engine.prefill_covers_prompt:
        tokens = max(tokens, request.max_input_tokens)
    return tokens


def _profile(request: SizingRequest, instance: GpuInstance, utilization: float,
             batched: int, seqs: int) -> ProfiledMemory:
    return profile_memory(
        request.shape, request.quantization, request.gpus_per_replica,
        visible_gib=instance.visible_memory_gib, gpu_memory_utilization=utilization,
        max_num_batched_tokens=max(batched, seqs), max_num_seqs=seqs, engine=request.engine,
    )


def _full_sequences(profile: ProfiledMemory, request: SizingRequest) -> int:
    return max(0, profile.kv_cache_tokens // request.max_total_tokens)


def choose_max_num_seqs(request: SizingRequest, instance: GpuInstance, utilization: float,
                        batched: int) -> int:
    """``--max-num-seqs``: as many full-length sequences as the KV cache holds once the sampler
    warm-up for that many sequences is paid for, never below the target (capped at 1,024).

    More sequences than fit at full length would only be preempted and recomputed; the sampler
    term grows with the count, so the largest consistent count is searched for.
    """
    target = request.concurrency_target
    low = target
    high = max(target, min(MAX_NUM_SEQS_CAP, _full_sequences(
        _profile(request, instance, utilization, batched, target), request)))
    while low < high:  # largest s with s <= full_sequences(s): full_sequences decreases in s
        mid = (low + high + 1) // 2
        if _full_sequences(_profile(request, instance, utilization, batched, mid), request) >= mid:
            low = mid
        else:
            high = mid - 1
    return low


@functools.lru_cache(maxsize=16384)
def estimate_memory(request: SizingRequest, instance: GpuInstance,
                    settings: EngineSettings | None = None) -> MemoryEstimate:
    """Per-GPU memory of one replica on ``instance``, the engine settings it assumed, and whether
    ``concurrency_target`` full-length sequences fit.

    ``settings`` (default: chosen for this instance) evaluates fixed engine arguments instead:
    what a replica started with another instance's arguments would get (Karpenter and Spot
    groups may launch any admitted type; the arguments are fixed in the pod or task). The
    utilization must then still leave room for the memory outside the budget.

    Raises ``ValueError`` when the replica cannot be placed at all (fewer GPUs than
    ``gpus_per_replica``, or a tensor-parallel degree vLLM cannot shard the model over).
    Pure and called for every candidate by config, the platforms and the pack: memoized.
    """
    _check_placement(request, instance)
    room = choose_utilization(request, instance)
    if settings is None:
        utilization = room
        batched = default_batched_tokens(request, instance)
        seqs = choose_max_num_seqs(request, instance, utilization, batched)
        batched = max(batched, seqs)  # vLLM: max_num_batched_tokens >= max_num_seqs
    else:
        utilization = settings.gpu_memory_utilization
        batched, seqs = settings.max_num_batched_tokens, settings.max_num_seqs
    profile = _profile(request, instance, utilization, batched, seqs)
    kv_sequence = profile.kv_bytes_per_token * request.max_total_tokens / GIB
    overhead = profile.activation_gib + profile.non_torch_gib
    if profile.baseline_in_budget:
        overhead += profile.baseline_gib
    # TGI keeps only `kv_share` of what is left for its cache: the target needs that much more.
    target_kv = request.concurrency_target * kv_sequence / request.engine.kv_share
    required = profile.weights_gib + overhead + target_kv
    sequences = _full_sequences(profile, request)
    fits = (MIN_GPU_MEMORY_UTILIZATION <= utilization <= room
            and sequences >= request.concurrency_target)
    return MemoryEstimate(
        weights_gib_per_gpu=profile.weights_gib,
        kv_cache_gib_per_sequence_per_gpu=kv_sequence,
        overhead_gib_per_gpu=overhead,
        required_gib_per_gpu=required,
        available_gib_per_gpu=profile.budget_gib,
        max_concurrent_sequences=sequences,
        fits=fits,
        engine=EngineSettings(
            gpu_memory_utilization=utilization,
            max_num_batched_tokens=batched,
            max_num_seqs=seqs,
            max_model_len=request.max_total_tokens,
        ),
        profile=profile,
    )


def _check_placement(request: SizingRequest, instance: GpuInstance) -> None:
    tp = request.gpus_per_replica
    if instance.gpu_count < tp:
        raise ValueError(
            f"{instance.name} has {instance.gpu_count} GPU(s); gpus_per_replica is {tp}"
        )
    problem = tensor_parallel_problem(request.shape, tp)
    if problem:
        raise ValueError(f"gpus_per_replica ({problem})")


# --- placement ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """One replica's instance type and tensor-parallel degree."""

    instance: GpuInstance
    gpus_per_replica: int


@dataclass(frozen=True)
class Candidate:
    """One placement that was tried, for the "nothing fits" message."""

    instance: GpuInstance
    gpus_per_replica: int
    required_gib: float
    available_gib: float
    fits: bool


def _candidates(request: SizingRequest, pricing: Pricing,
                degrees: tuple[int, ...]) -> list[tuple[float, Candidate]]:
    found = []
    for tp in [d for d in degrees if tensor_parallel_problem(request.shape, d) is None]:
        req = request.with_tp(tp)
        for instance in GPU_INSTANCES.values():
            price = price_per_hour(instance, pricing)
            if price is None or instance.gpu_count < tp:
                continue
            memory = estimate_memory(req, instance)
            found.append((price, Candidate(instance, tp, memory.required_gib_per_gpu,
                                           memory.available_gib_per_gpu, memory.fits)))
    return found


def choose_placement(request: SizingRequest, pricing: Pricing,
                     degrees: tuple[int, ...] | None = None) -> Placement | None:
    """Cheapest catalog instance (for ``pricing``) over every tensor-parallel degree in
    ``degrees`` (default: all vLLM can shard the model over) on which one replica fits; ties go
    to fewer GPUs per replica, then fewer GPUs per instance, then the name. ``None`` if nothing
    fits."""
    options = [(price, c.gpus_per_replica, c.instance.gpu_count, c.instance.name, c)
               for price, c in _candidates(request, pricing, degrees or TP_DEGREES) if c.fits]
    if not options:
        return None
    best = min(options)[4]
    return Placement(best.instance, best.gpus_per_replica)


def choose_instance(request: SizingRequest, pricing: Pricing) -> GpuInstance | None:
    """Cheapest catalog instance for the request's own ``gpus_per_replica``, else ``None``."""
    placement = choose_placement(request, pricing, (request.gpus_per_replica,))
    return placement.instance if placement else None


def nearest_candidates(request: SizingRequest, pricing: Pricing,
                       degrees: tuple[int, ...] | None = None, limit: int = 3) -> list[Candidate]:
    """The placements closest to fitting (smallest shortfall per GPU), cheapest first on ties:
    what a "nothing fits" message lists."""
    tried = [c for _, c in _candidates(request, pricing, degrees or TP_DEGREES)]
    tried.sort(key=lambda c: (c.required_gib - c.available_gib, c.instance.name))
    seen: set[tuple[str, int]] = set()
    nearest = []
    for c in tried:
        key = (c.instance.gpu.name, c.gpus_per_replica)
        if key in seen:
            continue  # one line per GPU model and degree: the sizes only differ in price
        seen.add(key)
        nearest.append(c)
        if len(nearest) == limit:
            break
    return nearest


def describe_nothing_fits(request: SizingRequest, pricing: Pricing,
                          degrees: tuple[int, ...] | None = None) -> str:
    """The nearest candidates with GiB needed vs offered, and the GPU count that would fit."""
    parts = [f"{c.instance.name} at {c.gpus_per_replica} GPU(s) needs {c.required_gib:.1f} GiB "
             f"per GPU, offers {c.available_gib:.1f}"
             for c in nearest_candidates(request, pricing, degrees)]
    text = "nearest: " + "; ".join(parts) if parts else "no catalog instance can host it"
    if degrees is not None:
        wider = choose_placement(request, pricing)
        if wider is not None:
            text += (f"; it fits with gpusPerReplica {wider.gpus_per_replica} on "
                     f"{wider.instance.name}")
    return text


# --- throughput and cost ---------------------------------------------------------------------


def decode_tokens_per_second_upper_bound(request: SizingRequest, instance: GpuInstance) -> float:
    """Memory-bandwidth roofline for decode, per replica; ``0.0`` when the model does not fit.

    Each decode step every GPU streams its share of the *active* weights (MoE: active
    parameters only; the input-embedding gather is not a full read, so an untied input
    table is left out) plus the KV cache of the whole batch from memory. Sequences decode
    from ``max_input_tokens`` to ``max_total_tokens``, so on average they hold
    ``context = (max_input_tokens + max_total_tokens) / 2`` tokens; a paged KV cache (vLLM's
    PagedAttention) holds as many of them as fit in the KV memory, ``batch =
    floor(kv_memory / (context x kv_bytes_per_token_per_gpu))`` (at least 1), capped by the
    ``--max-num-seqs`` the engine runs with:

        step_seconds = (active_weights / tp + batch x context x kv) / (bandwidth_GBps x 1e9)
        tokens/s     = batch / step_seconds

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
    kv_memory = memory.kv_cache_gib_per_gpu * GIB
    batch = max(1, min(math.floor(kv_memory / kv_per_sequence), memory.engine.max_num_seqs))
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
    usd_per_1k = ((price / per_instance) / (tokens_per_second * 3600) * 1000
                  if tokens_per_second else math.inf)  # 0.0: the model does not fit
    return CostEstimate(
        replicas_per_instance=per_instance,
        hourly_usd_min=hourly_min,
        hourly_usd_max=hourly_max,
        monthly_usd_min=hourly_min * HOURS_PER_MONTH,
        tokens_per_second_upper_bound=tokens_per_second,
        usd_per_1k_tokens_lower_bound=usd_per_1k,
    )
