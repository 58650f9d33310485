"""Sizing model: hand-computed memory, fit, instance choice and roofline cases.

Every expected number is written out as arithmetic from config.json values and the catalog, so a
change to a formula or a fact makes a specific test fail.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from components.facts import GPU_INSTANCES, get_model_shape, price_per_hour
from components.sizing import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    LMI_VLLM_0_8_4,
    TGI,
    EngineSettings,
    SizingRequest,
    choose_instance,
    decode_tokens_per_second_upper_bound,
    default_batched_tokens,
    embedding_parameters,
    estimate_cost,
    estimate_memory,
    forward_activation_bytes,
    kv_bytes_per_token,
    kv_bytes_per_token_per_gpu,
    nearest_candidates,
    profile_memory,
    tensor_parallel_problem,
    weight_bytes,
)

GIB = 2**30
LLAMA3_8B = get_model_shape("meta-llama/Meta-Llama-3-8B-Instruct")
LLAMA3_70B = get_model_shape("meta-llama/Meta-Llama-3-70B-Instruct")
MIXTRAL = get_model_shape("mistralai/Mixtral-8x7B-Instruct-v0.1")
INT4 = 0.5 + 2.5 / 128  # 4-bit weight + (fp16 scale + 4-bit zero) per group of 128


def request(shape, quantization="none", tp=1, max_input=3072, max_total=4096, **kw):
    return SizingRequest(shape, quantization, tp, max_input, max_total, **kw)


# --- weights ----------------------------------------------------------------------------------


def test_llama3_8b_weights():
    assert weight_bytes(LLAMA3_8B, "none") == pytest.approx(8.03e9 * 2)
    embeddings = 128256 * 4096 * 2  # untied: input table + LM head
    assert weight_bytes(LLAMA3_8B, "awq") == pytest.approx(
        (8.03e9 - embeddings) * INT4 + embeddings * 2
    )
    assert weight_bytes(LLAMA3_8B, "fp8") == pytest.approx((8.03e9 - embeddings) + embeddings * 2)


def test_llama3_70b_weights_rule_of_thumb():
    fp16 = weight_bytes(LLAMA3_70B, "none")
    assert fp16 == pytest.approx(70.6e9 * 2)
    assert fp16 >= 140e9  # "70B in fp16 needs ~140 GB"
    embeddings = 128256 * 8192 * 2
    awq = weight_bytes(LLAMA3_70B, "awq")
    assert awq == pytest.approx((70.6e9 - embeddings) * INT4 + embeddings * 2)
    assert 3.3 <= fp16 / awq <= 4.2  # 4-bit cuts weights roughly fourfold
    assert weight_bytes(LLAMA3_70B, "gptq") == awq


def test_mixtral_weights_rule_of_thumb():
    fp16 = weight_bytes(MIXTRAL, "none")
    assert fp16 == pytest.approx(46.7e9 * 2)  # all experts are resident, not just active ones
    embeddings = 32000 * 4096 * 2
    awq = weight_bytes(MIXTRAL, "awq")
    assert awq == pytest.approx((46.7e9 - embeddings) * INT4 + embeddings * 2)
    assert 3.3 <= fp16 / awq <= 4.2


def test_small_model_4bit_ratio_is_limited_by_16bit_embeddings():
    # Llama-3-8B's 1.05 B embedding parameters stay 16-bit, so 4-bit only gives ~2.8x: the
    # published AWQ-INT4 checkpoints of 8B models are ~5.7 GB, not 4 GB.
    ratio = weight_bytes(LLAMA3_8B, "none") / weight_bytes(LLAMA3_8B, "awq")
    assert 2.6 < ratio < 3.0


def test_fp32_native_models_are_served_in_16_bit():
    gemma = get_model_shape("google/gemma-2-2b-it")
    assert gemma.dtype == "float32"
    assert weight_bytes(gemma, "none") == pytest.approx(2.61e9 * 2)


# --- KV cache -----------------------------------------------------------------------------------


def test_kv_bytes_per_token():
    assert kv_bytes_per_token(LLAMA3_8B) == 2 * 32 * 8 * 128 * 2 == 131072
    assert kv_bytes_per_token(LLAMA3_70B) == 2 * 80 * 8 * 128 * 2 == 327680
    assert kv_bytes_per_token(MIXTRAL) == 2 * 32 * 8 * 128 * 2


def test_kv_heads_split_then_replicate_under_tensor_parallelism():
    assert kv_bytes_per_token_per_gpu(LLAMA3_70B, 4) == 2 * 80 * 2 * 128 * 2  # 8 heads / 4
    assert kv_bytes_per_token_per_gpu(LLAMA3_70B, 8) == 2 * 80 * 1 * 128 * 2
    gemma = get_model_shape("google/gemma-2-2b-it")  # 4 KV heads
    # tp=8 > 4 KV heads: each GPU still holds one whole head (ceil(4/8) = 1), so the per-GPU
    # share is a quarter of the model's KV, not an eighth.
    assert kv_bytes_per_token_per_gpu(gemma, 8) == 2 * 26 * 1 * 256 * 2
    assert kv_bytes_per_token_per_gpu(gemma, 8) == kv_bytes_per_token(gemma) / 4


# --- memory estimate and fit --------------------------------------------------------------------


def test_llama3_8b_memory_on_g6e_xlarge_by_hand():
    # docs/sizing.md walks through these same numbers.
    est = estimate_memory(request(LLAMA3_8B), GPU_INSTANCES["g6e.xlarge"])
    # Outside the budget: graphs 0.45 + 0.0175 x 32 + context 0.51 + margin 0.5 = 2.02 GiB of
    # 44.39 visible leaves 0.95 possible; the 0.90 ceiling applies. L40S < 70 GiB: 2,048 tokens.
    assert est.engine == EngineSettings(0.90, 2048, 48, 4096)
    weights = 8.03e9 * 2 / GIB  # 14.957 GiB
    forward = 2048 * (4 * 4096 + 6 * 14336) / GIB  # 0.1953 GiB > sampler 48 x 128256 x 14.37 B
    activation = 0.13 + forward
    kv = 44.39 * 0.90 - weights - activation - 0.27  # 24.399 GiB
    kv_seq = 131072 * 4096 / GIB  # 0.5 GiB for one 4096-token sequence
    assert est.weights_gib_per_gpu == pytest.approx(weights)
    assert est.overhead_gib_per_gpu == pytest.approx(activation + 0.27)
    assert est.kv_cache_gib_per_gpu == pytest.approx(kv)
    assert est.kv_cache_gib_per_sequence_per_gpu == pytest.approx(kv_seq)
    assert est.required_gib_per_gpu == pytest.approx(weights + activation + 0.27 + 4 * kv_seq)
    assert est.available_gib_per_gpu == pytest.approx(44.39 * 0.90)
    assert est.kv_cache_tokens == math.floor(kv * GIB / (131072 * 16)) * 16
    assert est.max_concurrent_sequences == 48 == est.engine.max_num_seqs
    assert est.fits


def test_max_num_seqs_is_the_largest_count_whose_sampler_warm_up_still_fits():
    # Each extra sequence costs its full-vocabulary logits in the profile; the chosen count s
    # holds s full sequences, s + 1 would not (boundary on both sides).
    req, l40s = request(LLAMA3_8B), GPU_INSTANCES["g6e.xlarge"]
    seqs = estimate_memory(req, l40s).engine.max_num_seqs
    below = EngineSettings(0.90, 2048, seqs, 4096)
    above = EngineSettings(0.90, 2048, seqs + 1, 4096)
    assert estimate_memory(req, l40s, below).max_concurrent_sequences >= seqs
    assert estimate_memory(req, l40s, above).max_concurrent_sequences < seqs + 1


def test_llama3_8b_fp16_does_not_fit_on_a_t4_but_awq_does():
    t4 = GPU_INSTANCES["g4dn.xlarge"]  # 14.58 GiB visible x 0.86 = 12.5 GiB < 14.96 GiB weights
    assert not estimate_memory(request(LLAMA3_8B), t4).fits
    assert estimate_memory(request(LLAMA3_8B), t4).max_concurrent_sequences == 0
    assert estimate_memory(request(LLAMA3_8B, "awq"), t4).fits


def test_utilization_is_lowered_where_graphs_and_nccl_would_not_fit_outside_the_budget():
    # 70B over 4 A10Gs: graphs 0.45 + 0.0175 x 80 + context/NCCL 1.55 + margin 0.5 = 3.9 GiB
    # must stay free of 22.06 GiB: utilization floor(100 x (1 - 3.9 / 22.06)) / 100 = 0.82.
    est = estimate_memory(request(LLAMA3_70B, "awq", tp=4), GPU_INSTANCES["g5.12xlarge"])
    assert est.engine.gpu_memory_utilization == 0.82
    assert est.available_gib_per_gpu == pytest.approx(22.06 * 0.82)
    # The same settings at a higher utilization than the GPU leaves room for do not fit.
    forced = replace(est.engine, gpu_memory_utilization=0.83)
    assert not estimate_memory(request(LLAMA3_70B, "awq", tp=4), GPU_INSTANCES["g5.12xlarge"],
                               forced).fits


def test_llama3_70b_fp16_does_not_fit_on_4x_a10g():
    est = estimate_memory(request(LLAMA3_70B, tp=4), GPU_INSTANCES["g5.12xlarge"])
    assert est.weights_gib_per_gpu == pytest.approx(70.6e9 * 2 / 4 / GIB)  # 32.9 GiB per GPU
    assert not est.fits
    assert est.max_concurrent_sequences == 0


@pytest.mark.parametrize("instance", ["p4de.24xlarge", "p5.48xlarge", "p5en.48xlarge"])
@pytest.mark.parametrize("tp", [4, 8])
def test_llama3_70b_fp16_fits_on_80gb_class_gpus(instance, tp):
    assert estimate_memory(request(LLAMA3_70B, tp=tp), GPU_INSTANCES[instance]).fits


def test_llama3_70b_fp16_on_a100_40gb_needs_8_gpus_not_4():
    # At TP=4: 39.39 x 0.90 = 35.45 GiB budget - 32.88 weights - 2.21 NCCL/all-reduce - 0.27
    # activation leaves 0.08 GiB: no 4k sequence fits. The 2.2 GiB per GPU that tensor
    # parallelism costs is what the old model (no NCCL term) missed. TP=8 halves the weights.
    p4d = GPU_INSTANCES["p4d.24xlarge"]
    at4 = estimate_memory(request(LLAMA3_70B, tp=4), p4d)
    assert at4.profile.non_torch_gib == 2.21
    assert at4.kv_cache_gib_per_gpu < at4.kv_cache_gib_per_sequence_per_gpu
    assert not at4.fits
    assert estimate_memory(request(LLAMA3_70B, tp=8), p4d).fits


def test_activation_follows_batched_tokens_not_the_prompt_length():
    # Llama-3.1-8B at 131k context on one A100-40GB ran in vLLM (issue 12): chunked prefill
    # bounds the profile at 2,048 tokens, so a 127k prompt costs no more activation than a 3k
    # one; only the KV cache grows.
    llama31 = get_model_shape("meta-llama/Llama-3.1-8B-Instruct")
    p4d = GPU_INSTANCES["p4d.24xlarge"]
    short = estimate_memory(request(llama31, max_input=3072, max_total=4096,
                                    concurrency_target=1), p4d)
    long = estimate_memory(request(llama31, max_input=126976, max_total=131072,
                                   concurrency_target=1), p4d)
    assert long.profile.activation_gib == pytest.approx(short.profile.activation_gib, abs=0.01)
    assert long.fits and long.max_concurrent_sequences == 1


def test_mixtral_awq_fits_on_one_l40s_but_not_one_a10g():
    assert estimate_memory(request(MIXTRAL, "awq"), GPU_INSTANCES["g6e.xlarge"]).fits
    assert not estimate_memory(request(MIXTRAL, "awq"), GPU_INSTANCES["g5.xlarge"]).fits


def test_concurrency_target_decides_fit():
    # On an L4 (20.1 GiB usable) Llama-3-8B fp16 leaves room for a few 4k sequences only.
    g6 = GPU_INSTANCES["g6.xlarge"]
    room = estimate_memory(request(LLAMA3_8B), g6).max_concurrent_sequences
    assert room >= 1
    assert estimate_memory(request(LLAMA3_8B, concurrency_target=room), g6).fits
    assert not estimate_memory(request(LLAMA3_8B, concurrency_target=room + 1), g6).fits


def test_gpu_memory_utilization_is_applied():
    est = estimate_memory(request(LLAMA3_8B, gpu_memory_utilization=0.5),
                          GPU_INSTANCES["g6e.xlarge"])
    assert est.available_gib_per_gpu == pytest.approx(44.39 * 0.5)
    assert est.engine.gpu_memory_utilization == 0.5
    assert DEFAULT_GPU_MEMORY_UTILIZATION == 0.90


def test_placement_errors_are_explicit():
    with pytest.raises(ValueError, match=r"g5\.xlarge has 1 GPU\(s\); gpus_per_replica is 4"):
        estimate_memory(request(LLAMA3_70B, tp=4), GPU_INSTANCES["g5.xlarge"])
    falcon = get_model_shape("tiiuae/falcon-7b")  # 71 attention heads
    with pytest.raises(ValueError, match="2 does not divide the model's 71 attention heads"):
        estimate_memory(request(falcon, tp=2), GPU_INSTANCES["g5.12xlarge"])
    assert choose_instance(request(falcon, tp=2), "ec2") is None


@pytest.mark.parametrize(("kv_heads", "tp", "ok"), [
    (8, 4, True), (8, 8, True), (4, 8, True),  # divides, or replicates whole heads
    (8, 16, True), (6, 4, False), (2, 4, True), (3, 2, False),
])
def test_tensor_parallel_rules_follow_vllm_qkv_sharding(kv_heads, tp, ok):
    shape = replace(LLAMA3_8B, attention_heads=48, kv_heads=kv_heads, intermediate_size=96 * 128)
    assert (tensor_parallel_problem(shape, tp) is None) == ok


def test_request_validation_reports_every_error_at_once():
    with pytest.raises(ValueError) as err:
        SizingRequest(LLAMA3_8B, "int3", 0, 0, 0, concurrency_target=0,  # type: ignore[arg-type]
                      gpu_memory_utilization=1.5)
    message = str(err.value)
    for fragment in ("quantization must be one of", "gpus_per_replica must be >= 1",
                     "max_input_tokens must be >= 1", "max_total_tokens (0) must be greater",
                     "concurrency_target must be >= 1", "gpu_memory_utilization must be in"):
        assert fragment in message


# --- instance choice ----------------------------------------------------------------------------


def brute_force_cheapest(req, pricing):
    best = None
    for instance in GPU_INSTANCES.values():
        price = price_per_hour(instance, pricing)
        if price is None or instance.gpu_count < req.gpus_per_replica:
            continue
        if not estimate_memory(req, instance).fits:
            continue
        key = (price, instance.gpu_count, instance.name)
        if best is None or key < best[0]:
            best = (key, instance)
    return None if best is None else best[1]


CHOICE_CASES = [
    (LLAMA3_8B, "none", 1), (LLAMA3_8B, "awq", 1), (LLAMA3_70B, "none", 4),
    (LLAMA3_70B, "none", 8), (LLAMA3_70B, "awq", 4), (LLAMA3_70B, "awq", 8),
    (MIXTRAL, "none", 2), (MIXTRAL, "awq", 1), (MIXTRAL, "none", 4),
]


@pytest.mark.parametrize("pricing", ["ec2", "sagemaker"])
@pytest.mark.parametrize(("shape", "quantization", "tp"), CHOICE_CASES)
def test_choose_instance_is_the_brute_force_cheapest(shape, quantization, tp, pricing):
    req = request(shape, quantization, tp)
    chosen = choose_instance(req, pricing)
    assert chosen is brute_force_cheapest(req, pricing)
    assert chosen is not None
    assert estimate_memory(req, chosen).fits and chosen.gpu_count >= tp
    if pricing == "sagemaker":
        assert chosen.offered_on_sagemaker


def test_known_choices():
    assert choose_instance(request(LLAMA3_8B), "ec2").name == "g6.xlarge"  # $0.8048, L4 fits
    # 8x T4 (g4dn.metal) is the cheapest 8-GPU box on EC2, but SageMaker does not sell it.
    req = request(LLAMA3_70B, "awq", tp=8)
    assert choose_instance(req, "ec2").name == "g4dn.metal"
    sagemaker_choice = choose_instance(req, "sagemaker")
    assert sagemaker_choice.name != "g4dn.metal" and sagemaker_choice.offered_on_sagemaker


def test_405b_fp16_fits_only_on_8x_h200_and_nowhere_at_tp4():
    llama405 = get_model_shape("meta-llama/Llama-3.1-405B-Instruct")
    # 405.9e9 x 2 B = 812 GB: / 8 = 94.5 GiB per GPU, only H200 (141 GiB x 0.9) holds that.
    assert choose_instance(request(llama405, tp=8), "ec2").name == "p5en.48xlarge"
    assert choose_instance(request(llama405, tp=4), "ec2") is None


# --- cost and roofline --------------------------------------------------------------------------


def test_roofline_by_hand_llama3_8b_on_l40s():
    req = request(LLAMA3_8B)
    l40s = GPU_INSTANCES["g6e.xlarge"]
    # KV memory 24.399 GiB (see the memory test above); at the average context of
    # (3072 + 4096) / 2 = 3584 tokens x 131072 B a sequence needs 0.4375 GiB, so 55 would fit,
    # but the engine admits --max-num-seqs = 48 at once.
    kv_memory = estimate_memory(req, l40s).kv_cache_gib_per_gpu * GIB
    assert math.floor(kv_memory / (3584 * 131072)) == 55
    batch = 48
    weights_read = 8.03e9 * 2 - 128256 * 4096 * 2  # untied input table is gathered, not read
    kv_read = batch * 3584 * 131072  # each sequence at the average context
    expected = batch / ((weights_read + kv_read) / 864e9)
    assert decode_tokens_per_second_upper_bound(req, l40s) == pytest.approx(expected)
    cost = estimate_cost(req, l40s, "ec2", 1, 3)
    assert cost.tokens_per_second_upper_bound == pytest.approx(expected)
    assert cost.usd_per_1k_tokens_lower_bound == pytest.approx(1.861 / (expected * 3600) * 1000)


def test_roofline_reads_only_active_experts_for_moe():
    req = request(MIXTRAL, tp=2)
    p4de = GPU_INSTANCES["p4de.24xlarge"]
    mem = estimate_memory(req, p4de)
    kv_per_sequence = 3584 * (2 * 32 * 4 * 128 * 2)  # average context, 4 KV heads per GPU
    batch = min(math.floor(mem.kv_cache_gib_per_gpu * GIB / kv_per_sequence),
                mem.engine.max_num_seqs)
    weights_read = (12.9e9 * 2 - 32000 * 4096 * 2) / 2  # active params only, split over tp=2
    kv_read = batch * kv_per_sequence
    expected = batch / ((weights_read + kv_read) / 2039e9)
    assert decode_tokens_per_second_upper_bound(req, p4de) == pytest.approx(expected)


def test_cost_packs_replicas_onto_instances():
    req = request(LLAMA3_8B)
    cost = estimate_cost(req, GPU_INSTANCES["g5.12xlarge"], "ec2", min_replicas=1, max_replicas=6)
    assert cost.replicas_per_instance == 4
    assert cost.hourly_usd_min == pytest.approx(5.672)  # ceil(1 / 4) = 1 instance
    assert cost.hourly_usd_max == pytest.approx(2 * 5.672)  # ceil(6 / 4) = 2 instances
    assert cost.monthly_usd_min == pytest.approx(5.672 * 730)
    sm = estimate_cost(req, GPU_INSTANCES["g5.12xlarge"], "sagemaker", 0, 4)
    assert (sm.hourly_usd_min, sm.hourly_usd_max) == (0, pytest.approx(7.09))


def test_cost_when_it_does_not_fit_is_zero_throughput_infinite_price():
    cost = estimate_cost(request(LLAMA3_70B, tp=4), GPU_INSTANCES["g5.12xlarge"], "ec2", 1, 1)
    assert cost.tokens_per_second_upper_bound == 0.0
    assert cost.usd_per_1k_tokens_lower_bound == math.inf
    assert cost.hourly_usd_min == pytest.approx(5.672)  # the bill does not care


def test_cost_errors():
    with pytest.raises(ValueError, match=r"g4dn\.metal is not offered on SageMaker"):
        estimate_cost(request(LLAMA3_8B), GPU_INSTANCES["g4dn.metal"], "sagemaker", 1, 1)
    with pytest.raises(ValueError, match="min_replicas <= max_replicas"):
        estimate_cost(request(LLAMA3_8B), GPU_INSTANCES["g5.xlarge"], "ec2", 3, 2)


# --- edges the mutation run found untested (scripts/mutation.py) ------------------------------


@pytest.mark.parametrize(("heads", "kv_heads", "mlp", "tp", "message"), [
    (36, 4, 14336, 8, "8 does not divide the model's 36 attention heads"),
    (48, 3, 14336, 4, "4 is neither a divisor nor a multiple of the model's 3 KV heads"),
    (48, 6, 14336, 4, "4 is neither a divisor nor a multiple of the model's 6 KV heads"),
    (48, 4, 14336, 4, None), (48, 2, 14336, 4, None), (48, 8, 14336, 4, None),
    (48, 8, 14340, 8, "8 does not divide the model's intermediate size 14340"),
    (48, 8, 14336, 8, None),
])
def test_each_tensor_parallel_refusal_says_which_dimension(heads, kv_heads, mlp, tp, message):
    shape = replace(LLAMA3_8B, attention_heads=heads, kv_heads=kv_heads, intermediate_size=mlp)
    assert tensor_parallel_problem(shape, tp) == message


@pytest.mark.parametrize(("gpu", "visible", "tokens"), [
    ("H100", 69.99, 2048), ("H100", 70.0, 8192), ("H100", 70.01, 8192),
    ("A100-80GB", 79.15, 2048),  # vLLM's large-GPU defaults skip A100s whatever their memory
])
def test_batched_token_defaults_switch_at_70_gib_except_on_a100s(gpu, visible, tokens):
    """vLLM 0.12 `get_batch_defaults`: 8,192 tokens on >= 70 GiB GPUs that are not A100s."""
    instance = GPU_INSTANCES["p5.48xlarge" if gpu == "H100" else "p4de.24xlarge"]
    instance = replace(instance, gpu=replace(instance.gpu, visible_memory_gib=visible))
    assert default_batched_tokens(request(LLAMA3_8B), instance) == tokens


def test_max_num_seqs_stops_at_vllms_largest_default():
    """Thousands of 256-token sequences fit in an H100's cache; the flag stops at 1,024."""
    req = request(LLAMA3_8B, max_input=128, max_total=256)
    h100 = GPU_INSTANCES["p5.48xlarge"]
    assert estimate_memory(req, h100).engine.max_num_seqs == 1024


def test_moe_forward_peak_counts_each_routed_expert_copy():
    """Mixtral-8x7B (h 4,096, I 14,336, 2 experts a token) at TP=2: 4 h + 6 I k / tp + 4 h k
    bytes a token in the forward pass."""
    per_token = 4 * 4096 + 6 * 14336 * 2 / 2 + 4 * 4096 * 2
    assert forward_activation_bytes(MIXTRAL, 2, 8192) == 8192 * per_token


def test_tgi_keeps_95_percent_of_what_is_left_for_the_cache():
    settings = {"visible_gib": 44.39, "gpu_memory_utilization": 0.9,
                "max_num_batched_tokens": 4096, "max_num_seqs": 8}
    vllm_like = profile_memory(LLAMA3_8B, "none", 1, engine=LMI_VLLM_0_8_4, **settings)
    tgi = profile_memory(LLAMA3_8B, "none", 1, engine=TGI, **settings)
    assert tgi.kv_cache_gib == pytest.approx(0.95 * vllm_like.kv_cache_gib)


def test_tgi_needs_the_target_cache_divided_by_its_share():
    req = request(LLAMA3_8B, engine=TGI)
    est = estimate_memory(req, GPU_INSTANCES["g6e.xlarge"])
    target = req.concurrency_target * est.kv_cache_gib_per_sequence_per_gpu
    assert est.required_gib_per_gpu == pytest.approx(
        est.weights_gib_per_gpu + est.overhead_gib_per_gpu + target / 0.95)


def test_nothing_fits_lists_the_three_nearest_placements():
    req = request(LLAMA3_70B, max_input=100_000, max_total=120_000, concurrency_target=64)
    nearest = nearest_candidates(req, "ec2")
    assert len(nearest) == 3
    assert not any(c.fits for c in nearest)
    # one line per GPU model and degree, closest first
    assert len({(c.instance.gpu.name, c.gpus_per_replica) for c in nearest}) == 3
    gaps = [c.required_gib - c.available_gib for c in nearest]
    assert gaps == sorted(gaps)


def test_replicas_per_instance_is_a_whole_count():
    cost = estimate_cost(request(LLAMA3_8B), GPU_INSTANCES["g6e.12xlarge"], "ec2", 1, 2)
    assert repr(cost.replicas_per_instance) == "4"
    # each replica carries a quarter of the instance price per thousand tokens
    price = GPU_INSTANCES["g6e.12xlarge"].ec2_usd_per_hour
    assert cost.usd_per_1k_tokens_lower_bound == pytest.approx(
        price / 4 / (cost.tokens_per_second_upper_bound * 3600) * 1000, rel=1e-12)


def test_tgi_counts_the_cuda_context_inside_its_budget_and_prefills_whole_prompts():
    settings = {"visible_gib": 44.39, "gpu_memory_utilization": 0.9,
                "max_num_batched_tokens": 4096, "max_num_seqs": 8}
    tgi = profile_memory(LLAMA3_8B, "none", 1, engine=TGI, **settings)
    assert tgi.baseline_in_budget
    assert tgi.kv_cache_gib == pytest.approx(0.95 * (
        tgi.budget_gib - tgi.weights_gib - tgi.activation_gib - tgi.non_torch_gib
        - tgi.baseline_gib))
    long_prompts = request(LLAMA3_8B, max_input=10_000, max_total=12_000, engine=TGI)
    assert default_batched_tokens(long_prompts, GPU_INSTANCES["g6e.xlarge"]) == 10_000
    vllm = request(LLAMA3_8B, max_input=10_000, max_total=12_000)
    assert default_batched_tokens(vllm, GPU_INSTANCES["g6e.xlarge"]) == 2048


@pytest.mark.parametrize(("max_input", "error"), [
    (0, "max_input_tokens must be >= 1, got 0"), (1, None), (2, None)])
def test_one_input_token_is_the_smallest_prompt(max_input, error):
    if error is None:
        request(LLAMA3_8B, max_input=max_input, max_total=4096)
    else:
        with pytest.raises(ValueError, match=error):
            request(LLAMA3_8B, max_input=max_input, max_total=4096)


@pytest.mark.parametrize(("kv_gib", "tokens"), [(-1.0, 0), (0.0, 0), (1.0, 8192)])
def test_a_cache_at_or_below_zero_holds_no_tokens(kv_gib, tokens):
    profile = profile_memory(LLAMA3_8B, "none", 1, visible_gib=44.39, gpu_memory_utilization=0.9,
                             max_num_batched_tokens=2048, max_num_seqs=4)
    assert replace(profile, kv_cache_gib=kv_gib).kv_cache_tokens == tokens


@pytest.mark.parametrize(("utilization", "fits"), [(0.49, False), (0.50, True), (0.51, True)])
def test_half_the_gpu_is_the_least_utilization_a_placement_may_use(utilization, fits):
    req = request(LLAMA3_8B)
    h100 = GPU_INSTANCES["p5.48xlarge"]
    settings = EngineSettings(gpu_memory_utilization=utilization, max_num_batched_tokens=8192,
                              max_num_seqs=4, max_model_len=4096)
    assert estimate_memory(req, h100, settings).fits is fits


def test_the_utilization_flag_has_two_decimals():
    req = request(LLAMA3_8B, gpu_memory_utilization=0.8234)
    assert estimate_memory(req, GPU_INSTANCES["p5.48xlarge"]).engine.gpu_memory_utilization == 0.82


def test_nearest_candidates_skip_other_sizes_of_a_listed_gpu_and_degree():
    """70B bf16 on one GPU fits nowhere; p5.4xlarge repeats p5.48xlarge's H100 at one GPU."""
    req = request(LLAMA3_70B)
    nearest = nearest_candidates(req, "ec2", (1,), limit=4)
    assert [c.instance.name for c in nearest] == [
        "p5en.48xlarge", "p4de.24xlarge", "p5.48xlarge", "g6e.12xlarge"]


def test_16_bit_weights_are_two_bytes_a_parameter_exactly():
    assert weight_bytes(LLAMA3_8B, "none") == LLAMA3_8B.parameters_b * 1e9 * 2


def test_a_tied_table_counts_once_an_untied_one_twice():
    tied = get_model_shape("meta-llama/Llama-3.2-1B")
    assert tied.tied_embeddings
    assert embedding_parameters(tied) == tied.vocab_size * tied.hidden_size
    assert embedding_parameters(LLAMA3_8B) == 2 * 128256 * 4096


@pytest.mark.parametrize(("utilization", "error"), [
    (0.0, "gpu_memory_utilization must be in (0, 1], got 0.0"), (0.01, None), (1.0, None),
    (1.01, "gpu_memory_utilization must be in (0, 1], got 1.01")])
def test_utilization_bounds(utilization, error):
    if error is None:
        request(LLAMA3_8B, gpu_memory_utilization=utilization)
    else:
        with pytest.raises(ValueError, match=re.escape(error)):
            request(LLAMA3_8B, gpu_memory_utilization=utilization)


def test_a_placement_that_does_not_fit_has_no_price_per_token():
    req = request(LLAMA3_70B, tp=1)
    cost = estimate_cost(req, GPU_INSTANCES["g6e.xlarge"], "ec2", 1, 1)
    assert cost.tokens_per_second_upper_bound == 0.0
    assert cost.usd_per_1k_tokens_lower_bound == math.inf


def test_a_cache_that_holds_one_sequence_decodes_a_batch_of_one():
    """Llama-3-8B at 100k context on one L40S: the cache holds one sequence, so each decode step
    reads the weights (less the untied input table) and one sequence's KV."""
    req = request(LLAMA3_8B, max_input=100_352 - 64, max_total=100_352, concurrency_target=1)
    l40s = GPU_INSTANCES["g6e.xlarge"]
    assert estimate_memory(req, l40s).max_concurrent_sequences == 1
    read = (weight_bytes(LLAMA3_8B, "none") - 128256 * 4096 * 2
            + (100_352 - 32) * kv_bytes_per_token(LLAMA3_8B))
    assert decode_tokens_per_second_upper_bound(req, l40s) == pytest.approx(
        l40s.gpu.memory_bandwidth_gbps * 1e9 / read, rel=1e-12)  # GB/s and B/param exactly


def _full_at(req: SizingRequest, gpu, settings: EngineSettings, seqs: int) -> int:
    """Full-length sequences the cache holds when vLLM is started with `seqs` sequences."""
    fixed = EngineSettings(settings.gpu_memory_utilization,
                           max(settings.max_num_batched_tokens, seqs), seqs, req.max_total_tokens)
    return estimate_memory(req, gpu, fixed).max_concurrent_sequences


@pytest.mark.parametrize("instance", ["g6e.xlarge", "g6.xlarge", "p5.48xlarge"])
def test_the_sequence_search_lands_on_the_boundary_for_every_context(instance):
    """choose_max_num_seqs is a binary search: for each context length the count it returns
    fits and one more does not (or it sits at the target floor or the 1,024 cap)."""
    gpu = GPU_INSTANCES[instance]
    for total in [*range(256, 4_097, 128), *range(4_608, 16_385, 1_024)]:
        req = request(LLAMA3_8B, max_input=total - 128, max_total=total, concurrency_target=1)
        settings = estimate_memory(req, gpu).engine
        seqs = settings.max_num_seqs
        if seqs > 1:
            assert _full_at(req, gpu, settings, seqs) >= seqs, total
        if seqs < 1024:
            assert _full_at(req, gpu, settings, seqs + 1) < seqs + 1, total
