"""Model shape catalog: the handful of ``config.json`` numbers that decide GPU memory and decode
speed, for the models this project is tested with.

Why not download ``config.json`` at deploy time: the program, the offline ``plan`` command and
the policy pack must size a model without network access or a Hugging Face token (Llama and
Gemma repos are gated). A model missing here is not an error for the program; sizing simply has
no shape to work with and config validation says so.

Every value is copied from the model's ``config.json`` on the Hugging Face Hub
(``https://huggingface.co/<id>/blob/main/config.json``): ``num_hidden_layers``,
``hidden_size``, ``num_attention_heads``, ``num_key_value_heads`` (Falcon: ``num_kv_heads`` /
``multi_query``), ``head_dim`` (``hidden_size / num_attention_heads`` when absent),
``vocab_size``, ``torch_dtype``, ``max_position_embeddings``, ``tie_word_embeddings``,
``intermediate_size`` (the MLP width; Mixtral: per expert, with ``num_experts_per_tok``).
Parameter counts are the safetensors totals shown on each model page. Base and instruct
checkpoints of one release share the architecture, so they share one shape object below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Dtype = Literal["bfloat16", "float16", "float32"]


@dataclass(frozen=True)
class ModelShape:
    """Architecture numbers of one checkpoint, as far as serving memory and speed care.

    ``active_parameters_b`` equals ``parameters_b`` for dense models; for mixture-of-experts
    models it is the parameters one token actually touches (shared layers + top-k experts),
    which is what a decode step reads from memory.
    """

    parameters_b: float
    active_parameters_b: float
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    dtype: Dtype
    max_position_embeddings: int
    tied_embeddings: bool
    #: MLP width (``intermediate_size``); sizes the prefill activation peak. A custom shape
    #: that omits it gets ``4 x hidden_size`` (see components/config.py).
    intermediate_size: int = 0
    #: MoE: experts each token is routed to (``num_experts_per_tok``); 1 for dense models.
    experts_per_token: int = 1

    @property
    def mlp_width(self) -> int:
        """``intermediate_size``, or ``4 x hidden_size`` when the shape does not give it."""
        return self.intermediate_size or 4 * self.hidden_size


def _dense(params_b: float, **shape: int | str | bool) -> ModelShape:
    """A dense model: every parameter is active for every token."""
    return ModelShape(parameters_b=params_b, active_parameters_b=params_b, **shape)  # type: ignore[arg-type]


# --- Llama 3 / 3.1 / 3.2 / 3.3 (meta-llama/*). vocab 128256, bf16, GQA with 8 KV heads. -------
# 3 and 3.1 share the architecture; 3.1 raised max_position_embeddings 8192 -> 131072 (RoPE
# scaling). 3.3-70B is 3.1-70B's architecture.
_LLAMA3_8B = dict(layers=32, hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128,
                  vocab_size=128256, dtype="bfloat16", tied_embeddings=False,
                  intermediate_size=14336)
_LLAMA3_70B = dict(layers=80, hidden_size=8192, attention_heads=64, kv_heads=8, head_dim=128,
                   vocab_size=128256, dtype="bfloat16", tied_embeddings=False,
                   intermediate_size=28672)
LLAMA3_8B = _dense(8.03, max_position_embeddings=8192, **_LLAMA3_8B)
LLAMA3_70B = _dense(70.6, max_position_embeddings=8192, **_LLAMA3_70B)
LLAMA31_8B = _dense(8.03, max_position_embeddings=131072, **_LLAMA3_8B)
LLAMA31_70B = _dense(70.6, max_position_embeddings=131072, **_LLAMA3_70B)
LLAMA31_405B = _dense(405.9, layers=126, hidden_size=16384, attention_heads=128, kv_heads=8,
                      head_dim=128, vocab_size=128256, dtype="bfloat16",
                      max_position_embeddings=131072, tied_embeddings=False,
                      intermediate_size=53248)
# 3.2 small models tie the LM head to the input embeddings; 1B uses head_dim 64.
LLAMA32_1B = _dense(1.24, layers=16, hidden_size=2048, attention_heads=32, kv_heads=8,
                    head_dim=64, vocab_size=128256, dtype="bfloat16",
                    max_position_embeddings=131072, tied_embeddings=True, intermediate_size=8192)
LLAMA32_3B = _dense(3.21, layers=28, hidden_size=3072, attention_heads=24, kv_heads=8,
                    head_dim=128, vocab_size=128256, dtype="bfloat16",
                    max_position_embeddings=131072, tied_embeddings=True, intermediate_size=8192)

# --- Mistral 7B (mistralai/*). v0.3 extended the vocabulary 32000 -> 32768. ------------------
# v0.1 also declares sliding_window 4096; sizing ignores it (a full-length KV cache is the
# conservative assumption and what vLLM allocates for this model).
_MISTRAL_7B = dict(layers=32, hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128,
                   dtype="bfloat16", max_position_embeddings=32768, tied_embeddings=False,
                   intermediate_size=14336)
MISTRAL_7B_V01 = _dense(7.24, vocab_size=32000, **_MISTRAL_7B)
MISTRAL_7B_V03 = _dense(7.25, vocab_size=32768, **_MISTRAL_7B)

# --- Mixtral (mistralai/*). 8 experts, top-2 routing. ------------------------------------------
# Active parameters from Mistral's announcements: 8x7B "12.9B active of 46.7B"
# (https://mistral.ai/news/mixtral-of-experts), 8x22B "39B active of 141B"
# (https://mistral.ai/news/mixtral-8x22b).
MIXTRAL_8X7B = ModelShape(parameters_b=46.7, active_parameters_b=12.9, layers=32,
                          hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128,
                          vocab_size=32000, dtype="bfloat16", max_position_embeddings=32768,
                          tied_embeddings=False, intermediate_size=14336,
                          experts_per_token=2)
# Instruct-v0.1 only: its vocab is 32768 while the base 8x22B-v0.1 checkpoint has 32000.
MIXTRAL_8X22B_INSTRUCT = ModelShape(parameters_b=140.6, active_parameters_b=39.1, layers=56,
                                    hidden_size=6144, attention_heads=48, kv_heads=8,
                                    head_dim=128, vocab_size=32768, dtype="bfloat16",
                                    max_position_embeddings=65536, tied_embeddings=False,
                                    intermediate_size=16384, experts_per_token=2)

# --- Qwen2.5 Instruct (Qwen/*). vocab 152064, bf16, untied from 7B up. ------------------------
# Instruct ids only: the base checkpoints declare max_position_embeddings 131072, the
# Instruct ones 32768 (YaRN is opt-in).
_QWEN25 = dict(head_dim=128, vocab_size=152064, dtype="bfloat16",
               max_position_embeddings=32768, tied_embeddings=False)
QWEN25_7B = _dense(7.62, layers=28, hidden_size=3584, attention_heads=28, kv_heads=4,
                   intermediate_size=18944, **_QWEN25)
QWEN25_14B = _dense(14.7, layers=48, hidden_size=5120, attention_heads=40, kv_heads=8,
                    intermediate_size=13824, **_QWEN25)
QWEN25_32B = _dense(32.8, layers=64, hidden_size=5120, attention_heads=40, kv_heads=8,
                    intermediate_size=27648, **_QWEN25)
QWEN25_72B = _dense(72.7, layers=80, hidden_size=8192, attention_heads=64, kv_heads=8,
                    intermediate_size=29568, **_QWEN25)

# --- Falcon (tiiuae/*). vocab 65024, bf16, LM head tied to the embeddings. ---------------------
# falcon-7b is multi-query (one KV head) with 71 query heads of 64; its config.json has no
# max_position_embeddings, FalconConfig's default (2048) is the trained context.
# falcon-40b uses the "new decoder architecture" with 8 KV heads (num_kv_heads).
FALCON_7B = _dense(6.92, layers=32, hidden_size=4544, attention_heads=71, kv_heads=1,
                   head_dim=64, vocab_size=65024, dtype="bfloat16",
                   max_position_embeddings=2048, tied_embeddings=True, intermediate_size=18176)
FALCON_40B = _dense(41.8, layers=60, hidden_size=8192, attention_heads=128, kv_heads=8,
                    head_dim=64, vocab_size=65024, dtype="bfloat16",
                    max_position_embeddings=2048, tied_embeddings=True, intermediate_size=32768)

# --- Gemma 2 instruction-tuned (google/*-it). vocab 256000, tied, 8192 context. ----------------
# head_dim is explicit and != hidden / heads for all three sizes. Every other layer uses a
# 4096-token sliding window; sizing ignores it (conservative, full-length KV per layer). 2b-it
# and 9b-it ship torch_dtype float32; they are served in 16-bit like everything else.
_GEMMA2 = dict(vocab_size=256000, max_position_embeddings=8192, tied_embeddings=True)
GEMMA2_2B_IT = _dense(2.61, layers=26, hidden_size=2304, attention_heads=8, kv_heads=4,
                      head_dim=256, dtype="float32", intermediate_size=9216, **_GEMMA2)
GEMMA2_9B_IT = _dense(9.24, layers=42, hidden_size=3584, attention_heads=16, kv_heads=8,
                      head_dim=256, dtype="float32", intermediate_size=14336, **_GEMMA2)
GEMMA2_27B_IT = _dense(27.2, layers=46, hidden_size=4608, attention_heads=32, kv_heads=16,
                       head_dim=128, dtype="bfloat16", intermediate_size=36864, **_GEMMA2)


def _ids(shape: ModelShape, *model_ids: str) -> dict[str, ModelShape]:
    return dict.fromkeys(model_ids, shape)


MODEL_SHAPES: Mapping[str, ModelShape] = MappingProxyType({
    **_ids(LLAMA3_8B, "meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct"),
    **_ids(LLAMA3_70B, "meta-llama/Meta-Llama-3-70B", "meta-llama/Meta-Llama-3-70B-Instruct"),
    # Meta renamed the 3.1 repos (Meta-Llama-3.1-* -> Llama-3.1-*); both ids resolve on the Hub.
    **_ids(LLAMA31_8B, "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct",
           "meta-llama/Meta-Llama-3.1-8B", "meta-llama/Meta-Llama-3.1-8B-Instruct"),
    **_ids(LLAMA31_70B, "meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct",
           "meta-llama/Meta-Llama-3.1-70B", "meta-llama/Meta-Llama-3.1-70B-Instruct",
           "meta-llama/Llama-3.3-70B-Instruct"),
    **_ids(LLAMA31_405B, "meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-405B-Instruct",
           "meta-llama/Meta-Llama-3.1-405B", "meta-llama/Meta-Llama-3.1-405B-Instruct"),
    **_ids(LLAMA32_1B, "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B-Instruct"),
    **_ids(LLAMA32_3B, "meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.2-3B-Instruct"),
    **_ids(MISTRAL_7B_V01, "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.1",
           "mistralai/Mistral-7B-Instruct-v0.2"),
    **_ids(MISTRAL_7B_V03, "mistralai/Mistral-7B-v0.3", "mistralai/Mistral-7B-Instruct-v0.3"),
    **_ids(MIXTRAL_8X7B, "mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    **_ids(MIXTRAL_8X22B_INSTRUCT, "mistralai/Mixtral-8x22B-Instruct-v0.1"),
    **_ids(QWEN25_7B, "Qwen/Qwen2.5-7B-Instruct"),
    **_ids(QWEN25_14B, "Qwen/Qwen2.5-14B-Instruct"),
    **_ids(QWEN25_32B, "Qwen/Qwen2.5-32B-Instruct"),
    **_ids(QWEN25_72B, "Qwen/Qwen2.5-72B-Instruct"),
    **_ids(FALCON_7B, "tiiuae/falcon-7b", "tiiuae/falcon-7b-instruct"),
    **_ids(FALCON_40B, "tiiuae/falcon-40b", "tiiuae/falcon-40b-instruct"),
    **_ids(GEMMA2_2B_IT, "google/gemma-2-2b-it"),
    **_ids(GEMMA2_9B_IT, "google/gemma-2-9b-it"),
    **_ids(GEMMA2_27B_IT, "google/gemma-2-27b-it"),
})

CheckpointQuantization = Literal["none", "awq", "gptq", "fp8"]


@dataclass(frozen=True)
class QuantizedCheckpoint:
    """A pre-quantized repository: the base model it was made from and its weight format.

    The architecture is the base model's (quantization changes the bytes per weight, not the
    layers or heads), so sizing uses the base shape with the checkpoint's format. ``method``
    is what the repository's ``config.json`` ``quantization_config`` declares, as vLLM reads
    it (``compressed-tensors`` W4A16 checkpoints count as ``gptq``: the same 4-bit group-128
    layout runs on the same Marlin kernels).
    """

    base_id: str
    method: CheckpointQuantization


# Pre-quantized repositories whose model pages state the base model and the method (checked on
# each Hub page's config.json `quantization_config`, 2026-11). AWQ/GPTQ are 4-bit, group size
# 128; the FP8 ones are W8 with per-channel or per-tensor scales.
_QUANTIZED: dict[str, QuantizedCheckpoint] = {
    **{rid: QuantizedCheckpoint(base, "awq") for rid, base in (
        ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
         "meta-llama/Llama-3.1-70B-Instruct"),
        ("hugging-quants/Meta-Llama-3.1-405B-Instruct-AWQ-INT4",
         "meta-llama/Llama-3.1-405B-Instruct"),
        ("casperhansen/llama-3-8b-instruct-awq", "meta-llama/Meta-Llama-3-8B-Instruct"),
        ("casperhansen/llama-3-70b-instruct-awq", "meta-llama/Meta-Llama-3-70B-Instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen/Qwen2.5-14B-Instruct-AWQ", "Qwen/Qwen2.5-14B-Instruct"),
        ("Qwen/Qwen2.5-32B-Instruct-AWQ", "Qwen/Qwen2.5-32B-Instruct"),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", "Qwen/Qwen2.5-72B-Instruct"),
        ("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", "mistralai/Mistral-7B-Instruct-v0.2"),
        ("TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    )},
    **{rid: QuantizedCheckpoint(base, "gptq") for rid, base in (
        ("hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4",
         "meta-llama/Llama-3.1-8B-Instruct"),
        ("hugging-quants/Meta-Llama-3.1-70B-Instruct-GPTQ-INT4",
         "meta-llama/Llama-3.1-70B-Instruct"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16",
         "meta-llama/Llama-3.1-8B-Instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen/Qwen2.5-14B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-14B-Instruct"),
        ("Qwen/Qwen2.5-32B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-32B-Instruct"),
        ("Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-72B-Instruct"),
        ("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", "mistralai/Mistral-7B-Instruct-v0.2"),
        ("TheBloke/Mixtral-8x7B-Instruct-v0.1-GPTQ", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    )},
    **{rid: QuantizedCheckpoint(base, "fp8") for rid, base in (
        ("neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8", "meta-llama/Llama-3.1-8B-Instruct"),
        ("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8", "meta-llama/Llama-3.1-70B-Instruct"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8", "meta-llama/Llama-3.1-8B-Instruct"),
        ("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "meta-llama/Llama-3.3-70B-Instruct"),
        ("RedHatAI/Qwen2.5-7B-Instruct-FP8-dynamic", "Qwen/Qwen2.5-7B-Instruct"),
        ("meta-llama/Llama-3.1-405B-Instruct-FP8", "meta-llama/Llama-3.1-405B-Instruct"),
    )},
}
QUANTIZED_CHECKPOINTS: Mapping[str, QuantizedCheckpoint] = MappingProxyType(_QUANTIZED)

_BY_LOWER_ID: Mapping[str, ModelShape] = MappingProxyType({
    **{model_id.lower(): shape for model_id, shape in MODEL_SHAPES.items()},
    **{rid.lower(): MODEL_SHAPES[q.base_id] for rid, q in _QUANTIZED.items()},
})
_QUANTIZED_BY_LOWER_ID: Mapping[str, QuantizedCheckpoint] = MappingProxyType(
    {rid.lower(): q for rid, q in _QUANTIZED.items()}
)


def get_model_shape(model_id: str) -> ModelShape | None:
    """Shape for a Hugging Face id, matched case-insensitively (the Hub treats ids that way).

    A catalog pre-quantized repository resolves to its base model's architecture.
    """
    return _BY_LOWER_ID.get(model_id.strip().lower())


def checkpoint_quantization(model_id: str) -> CheckpointQuantization | None:
    """The weight format a catalog repository holds: ``none`` for the 16-bit base models, the
    method for the pre-quantized ones, ``None`` for an id the catalog does not know."""
    key = model_id.strip().lower()
    if key in _QUANTIZED_BY_LOWER_ID:
        return _QUANTIZED_BY_LOWER_ID[key].method
    return "none" if key in _BY_LOWER_ID else None


def quantized_variants(model_id: str, method: CheckpointQuantization) -> list[str]:
    """Catalog repositories holding ``model_id`` (a base id) pre-quantized with ``method``."""
    base = model_id.strip().lower()
    return sorted(rid for rid, q in _QUANTIZED.items()
                  if q.base_id.lower() == base and q.method == method)


# Vision-language models: vLLM profiles the vision encoder with a maximum-size image batch on
# every tensor-parallel rank (the encoder is not split; gpu_model_runner.profile_run at v0.12.0
# runs `embed_multimodal` before the text dummy run), which took 15.73 GiB of activations for
# InternVL3-78B on L40S (tests/reference/vllm_memory_logs.csv row V1). This project sizes text
# towers only, so these are refused with a message rather than under-sized. Matched on the
# repository name: the families below name their multimodal checkpoints this way.
_VISION_NAME = re.compile(
    r"(^|[-_/.])(vl|vlm|vision|llava|pixtral|internvl[\d._]*|idefics\d*|paligemma|minicpm-v|molmo|"
    r"qwen2-audio|kimi-vl)([-_/.]|$)|^google/gemma-3-(4b|12b|27b)|^mistralai/mistral-small-3\.1",
    re.IGNORECASE,
)


def is_vision_language(model_id: str) -> bool:
    """Whether the id names a vision-language (multimodal) checkpoint; see ``_VISION_NAME``."""
    return bool(_VISION_NAME.search(model_id.strip()))


# Organisations whose catalog models are gated on the Hugging Face Hub (the model page asks the
# user to accept a licence before files can be downloaded, so an anonymous pull gets 401/403):
# meta-llama (Llama 3.x community licence), google (Gemma terms of use), mistralai (contact
# sharing on Mistral-7B v0.3 / Mixtral repos since 2024). Qwen2.5 (Apache-2.0) and Falcon are
# open. Checked on each model's Hub page; https://huggingface.co/docs/hub/models-gated
GATED_ORGS = frozenset({"meta-llama", "google", "mistralai"})


def is_gated(model_id: str) -> bool:
    """Whether pulling this catalog model from the Hub needs an access token."""
    return model_id.split("/", 1)[0].lower() in GATED_ORGS and get_model_shape(model_id) is not None
