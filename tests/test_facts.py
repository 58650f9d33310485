"""Invariants of the GPU instance and model shape catalogs (pure data, no AWS, no Pulumi)."""

from __future__ import annotations

import re
from collections import defaultdict

import botocore.session
import pytest

from components.facts import (
    FAMILIES,
    GPU_INSTANCES,
    GPU_MODELS,
    MODEL_SHAPES,
    PRICES_AS_OF,
    get_gpu_instance,
    get_model_shape,
    price_per_hour,
)

REQUIRED_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5en"}
#: Covered by the brief but deliberately absent from the catalog: no public EC2 on-demand price.
EXCLUDED_FAMILIES = {"p5e"}


def _sagemaker_enum() -> set[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return set(model.shape_for("ProductionVariantInstanceType").enum)


def test_every_required_family_is_present():
    assert REQUIRED_FAMILIES <= set(FAMILIES)
    assert not EXCLUDED_FAMILIES & set(FAMILIES)


def test_families_have_every_size_the_sagemaker_enum_knows():
    # The enum is the one machine-readable list of sizes we have offline; EC2 sizes SageMaker
    # does not sell (g4dn.metal) are checked in the refresh test against moto's data.
    enum = _sagemaker_enum()
    for family in FAMILIES:
        enum_sizes = {n.removeprefix("ml.") for n in enum if n.split(".")[1] == family}
        catalog_sizes = {n for n, i in GPU_INSTANCES.items() if i.family == family}
        assert enum_sizes <= catalog_sizes, family


def test_catalog_keys_names_and_families_agree():
    for name, instance in GPU_INSTANCES.items():
        assert instance.name == name
        assert name.split(".")[0] == instance.family
        assert re.fullmatch(r"[a-z0-9]+\.(\d*xlarge|metal)", name)


def test_gpu_memory_and_model_are_uniform_within_a_family():
    per_family = defaultdict(set)
    for instance in GPU_INSTANCES.values():
        per_family[instance.family].add((instance.gpu, instance.gpu_memory_mib))
    assert all(len(v) == 1 for v in per_family.values()), dict(per_family)


@pytest.mark.parametrize(
    ("family", "gpu", "mib"),
    [
        # DescribeInstanceTypes values, not marketing GB (A10G and L4 report 22888, not 24576).
        ("g4dn", "T4", 16384), ("g5", "A10G", 22888), ("g6", "L4", 22888),
        ("g6e", "L40S", 45776), ("p4d", "A100-40GB", 40960), ("p4de", "A100-80GB", 81920),
        ("p5", "H100", 81920), ("p5en", "H200", 144384),
    ],
)
def test_gpu_memory_matches_describe_instance_types(family, gpu, mib):
    instance = next(i for i in GPU_INSTANCES.values() if i.family == family)
    assert (instance.gpu.name, instance.gpu_memory_mib) == (gpu, mib)


def test_prices_and_sizes_are_positive_and_plausible():
    for instance in GPU_INSTANCES.values():
        assert instance.gpu_count in (1, 2, 4, 8)
        assert instance.vcpus > 0 and instance.memory_mib > 0
        assert 0.1 < instance.ec2_usd_per_hour < 200
        if instance.sagemaker_usd_per_hour is not None:
            # SageMaker hosting is never cheaper than the bare EC2 instance.
            assert instance.sagemaker_usd_per_hour >= instance.ec2_usd_per_hour


def test_p_family_prices_are_post_june_2025_cut():
    assert GPU_INSTANCES["p5.48xlarge"].ec2_usd_per_hour == pytest.approx(55.04)
    assert GPU_INSTANCES["p4d.24xlarge"].ec2_usd_per_hour == pytest.approx(21.957642)
    assert GPU_INSTANCES["p5.4xlarge"].ec2_usd_per_hour * 8 == pytest.approx(55.04)


def test_prices_as_of_is_an_iso_date():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES_AS_OF)


def test_gpu_models_have_bandwidth():
    assert {i.gpu for i in GPU_INSTANCES.values()} <= set(GPU_MODELS.values())
    assert all(g.memory_bandwidth_gbps > 0 for g in GPU_MODELS.values())
    assert GPU_MODELS["H200"].memory_bandwidth_gbps > GPU_MODELS["H100"].memory_bandwidth_gbps


def test_sagemaker_prices_match_the_botocore_enum_both_ways():
    enum = _sagemaker_enum()
    for instance in GPU_INSTANCES.values():
        assert (f"ml.{instance.name}" in enum) == instance.offered_on_sagemaker, instance.name
    covered = {n for n in enum if n.split(".")[1] in set(FAMILIES)}
    priced = {i.sagemaker_name for i in GPU_INSTANCES.values() if i.offered_on_sagemaker}
    assert covered == priced


def test_instance_properties():
    g5 = GPU_INSTANCES["g5.12xlarge"]
    assert g5.total_gpu_memory_mib == 4 * 22888
    assert g5.gpu_memory_gib == pytest.approx(22888 / 1024)
    assert g5.sagemaker_name == "ml.g5.12xlarge"
    metal = GPU_INSTANCES["g4dn.metal"]
    assert metal.sagemaker_name is None and not metal.offered_on_sagemaker


def test_get_gpu_instance_accepts_both_spellings():
    assert get_gpu_instance("g5.2xlarge") is GPU_INSTANCES["g5.2xlarge"]
    assert get_gpu_instance("ml.g5.2xlarge") is GPU_INSTANCES["g5.2xlarge"]
    assert get_gpu_instance("g4dn.metal") is GPU_INSTANCES["g4dn.metal"]
    assert get_gpu_instance("ml.g4dn.metal") is None
    assert get_gpu_instance("m5.large") is None


def test_price_per_hour():
    g5 = GPU_INSTANCES["g5.xlarge"]
    assert price_per_hour(g5, "ec2") == 1.006
    assert price_per_hour(g5, "sagemaker") == 1.408
    assert price_per_hour(GPU_INSTANCES["g4dn.metal"], "sagemaker") is None
    with pytest.raises(ValueError, match="pricing must be 'ec2' or 'sagemaker'"):
        price_per_hour(g5, "spot")  # type: ignore[arg-type]


# --- model shapes -----------------------------------------------------------------------------

REQUIRED_MODEL_IDS = [
    "meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct",
    "meta-llama/Meta-Llama-3-70B", "meta-llama/Meta-Llama-3-70B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Meta-Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "mistralai/Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-14B-Instruct", "Qwen/Qwen2.5-32B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "tiiuae/falcon-7b", "tiiuae/falcon-40b",
    "google/gemma-2-2b-it", "google/gemma-2-9b-it", "google/gemma-2-27b-it",
]


@pytest.mark.parametrize("model_id", REQUIRED_MODEL_IDS)
def test_required_models_are_present(model_id):
    assert model_id in MODEL_SHAPES


@pytest.mark.parametrize("model_id", sorted(MODEL_SHAPES))
def test_model_shapes_are_internally_consistent(model_id):
    shape = MODEL_SHAPES[model_id]
    assert shape.attention_heads % shape.kv_heads == 0
    assert 0 < shape.active_parameters_b <= shape.parameters_b
    assert shape.dtype in ("bfloat16", "float16", "float32")
    assert shape.max_position_embeddings >= 2048
    # Gemma 2 declares an explicit head_dim that is not hidden / heads; all others match.
    if not model_id.startswith("google/gemma-2-"):
        assert shape.hidden_size == shape.attention_heads * shape.head_dim
    # Embeddings + LM head alone must be a fraction of the total parameter count.
    embeddings = shape.vocab_size * shape.hidden_size * (1 if shape.tied_embeddings else 2)
    assert embeddings < shape.parameters_b * 1e9 * 0.5


def test_base_and_instruct_share_one_shape_object():
    assert (MODEL_SHAPES["meta-llama/Meta-Llama-3-8B"]
            is MODEL_SHAPES["meta-llama/Meta-Llama-3-8B-Instruct"])
    assert (MODEL_SHAPES["meta-llama/Llama-3.1-70B-Instruct"]
            is MODEL_SHAPES["meta-llama/Llama-3.3-70B-Instruct"])


def test_mixture_of_experts_active_parameters():
    mixtral = MODEL_SHAPES["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert (mixtral.parameters_b, mixtral.active_parameters_b) == (46.7, 12.9)
    dense = MODEL_SHAPES["meta-llama/Meta-Llama-3-70B"]
    assert dense.active_parameters_b == dense.parameters_b


def test_llama31_extends_context_of_llama3():
    assert MODEL_SHAPES["meta-llama/Meta-Llama-3-8B"].max_position_embeddings == 8192
    assert MODEL_SHAPES["meta-llama/Llama-3.1-8B-Instruct"].max_position_embeddings == 131072


def test_get_model_shape_is_case_insensitive():
    shape = MODEL_SHAPES["meta-llama/Meta-Llama-3-8B-Instruct"]
    assert get_model_shape("META-LLAMA/meta-llama-3-8b-instruct") is shape
    assert get_model_shape("meta-llama/Meta-Llama-3-8B-Instruct") is shape
    assert get_model_shape("someone/unknown-model") is None
