"""Pinned serving images: one place to bump an engine version, read by every platform.

Pins are exact tags (never `latest`), each with its source and the date it was checked, so a
rollout happens because someone changed this file, not because a registry moved a tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

# --- engine images for EKS and ECS (public registries) -------------------------------------
#
# Registry path: Docker Hub and GHCR are not behind the VPC's ECR interface endpoints, so these
# pulls leave through the NAT gateway (~10 GB for vLLM, once per instance: the ECS platform pulls
# them while an instance is prepared for its warm pool, see docs/ecs.md). To keep image pulls
# inside the VPC, mirror the tag into a private ECR repository and point the platform there.

EngineName = Literal["vllm", "tgi"]


@dataclass(frozen=True)
class EngineFlags:
    """The engine's CLI spelling of each serving setting (`None`: the engine has no such flag)."""

    model: str | None  # None: the model is the first positional argument (`vllm serve <model>`)
    served_model_name: str | None
    port: str
    tensor_parallel: str
    max_input_tokens: str | None
    max_total_tokens: str
    max_concurrency: str
    gpu_memory_fraction: str
    max_batched_tokens: str
    quantization: str


@dataclass(frozen=True)
class NonRootLayout:
    """How an image runs without root and with a read-only root filesystem: the UID/GID to run
    as, the HOME to give it, and every directory it writes (each must be a mounted volume).

    `cache_env` points every cache the engine or its libraries write at a directory under
    `home`, so one writable volume at `home` holds them all; `scratch` are the other writable
    paths (`/tmp`), mounted separately. The model cache (HF_HOME) and /dev/shm are sized per
    model by the platform, not here.
    """

    uid: int
    gid: int
    home: str
    cache_env: Mapping[str, str]
    scratch: tuple[str, ...]
    evidence: str

    def env(self) -> dict[str, str]:
        """HOME, USER and the cache variables, as the container's environment."""
        return {"HOME": self.home, **self.cache_env}


@dataclass(frozen=True)
class EngineImage:
    """One pinned serving image and how to run it.

    `serve_args` is the single place a model's spec becomes engine flags, so EKS and ECS start an
    engine identically. `inflight_metrics` are the Prometheus gauges that count requests being
    served plus queued (what autoscaling on concurrency reads); `metrics_port` serves them.
    """

    engine: EngineName
    repository: str
    tag: str
    entrypoint: tuple[str, ...]
    port: int
    health_path: str
    metrics_port: int
    metrics_path: str
    inflight_metrics: tuple[str, ...]
    flags: EngineFlags
    source: str
    checked: str
    non_root: NonRootLayout | None = None
    """None: the image is only known to run as root (kept as root, capabilities dropped)."""
    digest: str | None = None
    """`sha256:...` of the tag, when the image's owner publishes one we can cite; None keeps
    the tag (the Checkov allowlist in scripts/render_k8s.py says why)."""

    @property
    def image(self) -> str:
        """`repository:tag`, plus `@digest` when one is recorded (the digest then decides)."""
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref

    def serve_args(
        self,
        *,
        model: str,
        served_model_name: str,
        tensor_parallel: int,
        max_input_tokens: int,
        max_total_tokens: int,
        max_concurrency: int,
        quantization: str | None,
        gpu_memory_fraction: float,
        max_batched_tokens: int,
    ) -> list[str]:
        """Arguments after the entrypoint, from the settings sizing assumed
        (`components.sizing.EngineSettings`). `quantization` is passed only for on-the-fly
        quantization (dynamic FP8 of 16-bit weights); `None` leaves a pre-quantized checkpoint
        to the engine, which reads its `quantization_config` (an explicit `--quantization awq`
        would force vLLM off the faster awq_marlin kernels)."""
        f = self.flags
        args = [f.model, model] if f.model else [model]
        if f.served_model_name:
            args += [f.served_model_name, served_model_name]
        args += [
            f.port, str(self.port),
            f.tensor_parallel, str(tensor_parallel),
            f.max_total_tokens, str(max_total_tokens),
            f.max_concurrency, str(max_concurrency),
            f.gpu_memory_fraction, f"{gpu_memory_fraction:.2f}",
            f.max_batched_tokens, str(max_batched_tokens),
        ]
        if f.max_input_tokens:
            args += [f.max_input_tokens, str(max_input_tokens)]
        if quantization is not None:
            args += [f.quantization, quantization]
        return args


# vLLM: `vllm serve` OpenAI-compatible server; /health answers 200 only once the model is
# loaded; Prometheus gauges on the API port. https://docs.vllm.ai/en/latest/serving/
# openai_compatible_server.html, https://docs.vllm.ai/en/latest/usage/metrics.html
# Tag v0.12.0 checked 2026-11-25 against images built `FROM vllm/vllm-openai:v0.12.0` in public
# repositories; the entrypoint is set explicitly, so images whose ENTRYPOINT differs still work.
#
# Running it as non-root with a read-only root filesystem (docs/hardening.md has the evidence).
# The v0.12.0 tree itself is larger than the reference tooling here could fetch, so the layout is
# taken from the upstream docker/Dockerfile on both sides of it:
# * vllm-project/vllm docker/Dockerfile as stored at commit 0000977e (v0.8 era): no USER
#   instruction in any stage, so the `vllm-openai` target runs as root (HOME=/root); every
#   package goes in with `uv pip install --system` into the deadsnakes python3.12's system
#   site-packages, /usr/local/lib/python3.12/dist-packages (the test stage copies into that very
#   path), as root with the default umask: world-readable and -executable.
# * The later upstream docker/Dockerfile that added a `vllm` user (UID 2000, GID 0; #31959)
#   says the default `vllm-openai` image "keeps USER root" and creates the user only for an
#   opt-in `vllm-openai-nonroot` target: v0.12.0 (before #31959) has no user to switch to, and
#   needs none: a numeric UID without a passwd entry runs it.
# * v0.12.0's ENTRYPOINT is `["vllm", "serve"]` (repeated by images built FROM it, e.g.
#   kldzj/vllm-transformers5's Dockerfile); we set the command explicitly anyway.
# * What it writes, and where (redirected below, under HOME on an emptyDir):
#   vLLM: VLLM_CACHE_ROOT (default $XDG_CACHE_HOME/vllm: torch.compile cache, Run:ai streamer's
#   config/tokenizer copies) and VLLM_CONFIG_ROOT ($XDG_CONFIG_HOME/vllm, usage stats), both
#   from vllm/envs.py `get_default_cache_root`/`get_default_config_root`; its ZMQ IPC sockets go
#   to tempfile.gettempdir() (/tmp); Triton's kernel cache (TRITON_CACHE_DIR, default
#   ~/.triton/cache); torch inductor (TORCHINDUCTOR_CACHE_DIR, default
#   /tmp/torchinductor_<getpass.getuser()>: getuser() reads USER first and raises for a UID
#   without a passwd entry, hence USER); FlashInfer's JIT (~/.cache/flashinfer); outlines
#   (OUTLINES_CACHE_DIR) and numba (NUMBA_CACHE_DIR) for guided decoding; the CUDA JIT cache
#   (~/.nv); Hugging Face (HF_HOME, set per platform to the model cache).
# * 10001:10001: a UID above every host range (Checkov CKV_K8S_40 asks for >= 10000) and a
#   group of its own (not root's group 0, which owns files in the image).
_VLLM_HOME = "/home/vllm"
VLLM_NON_ROOT = NonRootLayout(
    uid=10001,
    gid=10001,
    home=_VLLM_HOME,
    cache_env=MappingProxyType({
        "USER": "vllm",
        "XDG_CACHE_HOME": f"{_VLLM_HOME}/.cache",
        "XDG_CONFIG_HOME": f"{_VLLM_HOME}/.config",
        "VLLM_CACHE_ROOT": f"{_VLLM_HOME}/.cache/vllm",
        "VLLM_CONFIG_ROOT": f"{_VLLM_HOME}/.config/vllm",
        "TRITON_CACHE_DIR": f"{_VLLM_HOME}/.cache/triton",
        "TORCHINDUCTOR_CACHE_DIR": f"{_VLLM_HOME}/.cache/torchinductor",
        "OUTLINES_CACHE_DIR": f"{_VLLM_HOME}/.cache/outlines",
        "NUMBA_CACHE_DIR": f"{_VLLM_HOME}/.cache/numba",
        "TMPDIR": "/tmp",
    }),
    scratch=("/tmp",),
    evidence="vllm-project/vllm docker/Dockerfile: no USER before #31959, which keeps the "
             "default image root; uv pip install --system; vllm/envs.py cache roots",
)

VLLM = EngineImage(
    engine="vllm",
    repository="vllm/vllm-openai",
    tag="v0.12.0",
    entrypoint=("vllm", "serve"),
    port=8000,
    health_path="/health",
    metrics_port=8000,
    metrics_path="/metrics",
    inflight_metrics=("vllm:num_requests_running", "vllm:num_requests_waiting"),
    flags=EngineFlags(
        model=None,
        served_model_name="--served-model-name",
        port="--port",
        tensor_parallel="--tensor-parallel-size",
        max_input_tokens=None,  # vLLM bounds prompt + output with --max-model-len only
        max_total_tokens="--max-model-len",
        max_concurrency="--max-num-seqs",
        gpu_memory_fraction="--gpu-memory-utilization",
        max_batched_tokens="--max-num-batched-tokens",
        quantization="--quantization",
    ),
    source="https://hub.docker.com/r/vllm/vllm-openai/tags",
    checked="2026-11-25",
    non_root=VLLM_NON_ROOT,
    # No digest: Docker Hub's tag page is the only owner-published source and is not citable
    # as a stable document; pin by digest in your own ECR mirror (docs/hardening.md).
    digest=None,
)

# TGI: `text-generation-launcher`; /health is 200 once the shards are ready; the router serves
# Prometheus metrics on --prometheus-port (default 9000). OpenAI Messages API at
# /v1/chat/completions. https://huggingface.co/docs/text-generation-inference/reference/launcher
# Tag 3.3.5 is the one TGI's own README runs (checked 2026-11-25).
TGI = EngineImage(
    engine="tgi",
    repository="ghcr.io/huggingface/text-generation-inference",
    tag="3.3.5",
    entrypoint=("text-generation-launcher",),
    port=8080,
    health_path="/health",
    metrics_port=9000,
    metrics_path="/metrics",
    inflight_metrics=("tgi_batch_current_size", "tgi_queue_size"),
    flags=EngineFlags(
        model="--model-id",
        served_model_name=None,  # TGI serves one model and accepts any `model` in requests
        port="--port",
        tensor_parallel="--num-shard",
        max_input_tokens="--max-input-tokens",
        max_total_tokens="--max-total-tokens",
        max_concurrency="--max-concurrent-requests",
        gpu_memory_fraction="--cuda-memory-fraction",
        max_batched_tokens="--max-batch-prefill-tokens",
        quantization="--quantize",
    ),
    source="https://github.com/huggingface/text-generation-inference/pkgs/container/"
    "text-generation-inference",
    checked="2026-11-25",
)

ENGINE_IMAGES: Mapping[EngineName, EngineImage] = MappingProxyType({"vllm": VLLM, "tgi": TGI})
"""The serving image per `models[].engine`."""

# Helper images the ECS platform runs next to the engine (public ECR: pulled through NAT).
# AWS CLI v2 (weights `s3 sync` init container): https://gallery.ecr.aws/aws-cli/aws-cli
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.26"
# ADOT collector (scrapes the engine's in-flight gauges into CloudWatch via EMF):
# https://gallery.ecr.aws/aws-observability/aws-otel-collector
ADOT_COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1"


@dataclass(frozen=True)
class GatewayImage:
    """The upstream LiteLLM proxy image the gateway runs unchanged (our hooks are mounted or
    written next to its config at start, never built in)."""

    repository: str
    tag: str
    package_version: str
    """The `litellm` PyPI version inside; requirements-dev.txt pins the same for the tests."""
    entrypoint: tuple[str, ...]
    workdir: str
    uid: int
    """The image's own non-root user (`USER nobody`): run as it, never as root."""
    gid: int
    source: str
    checked: str

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.tag}"


# LiteLLM 1.108.7 (LTS line), the `litellm-non_root` build of the release: image tags are the
# release version with a `v` (`v1.108.7`), signed with cosign, published beside `litellm` for
# every release. docker/Dockerfile.non_root: Wolfi base, `USER nobody` (UID/GID 65534 in Wolfi's
# /etc/passwd), HOME and WORKDIR /app (owned by nobody), ENTRYPOINT
# `/app/docker/prod_entrypoint.sh` (runs `litellm "$@"`), CMD `--port 4000`; python3 and the
# package (boto3, PyYAML included) system-wide. Run on x86_64: the release notes and package
# page list arm64 for the main `litellm` image; for this build we have not seen it stated.
# https://newreleases.io/project/github/BerriAI/litellm/release/v1.108.7,
# https://github.com/BerriAI/litellm/blob/v1.108.7/docker/Dockerfile.non_root
LITELLM = GatewayImage(
    repository="ghcr.io/berriai/litellm-non_root",
    tag="v1.108.7",
    package_version="1.108.7",
    entrypoint=("/app/docker/prod_entrypoint.sh",),
    workdir="/app",
    uid=65534,
    gid=65534,
    source="https://newreleases.io/project/github/BerriAI/litellm/release/v1.108.7",
    checked="2026-11-30",
)


# --- SageMaker deep learning containers (per-region ECR accounts) ---------------------------
#
# SageMaker pulls these itself (not through the VPC), from the DLC account of the endpoint's own
# region: an image URI is always built for the stack's region, never copied from us-east-1.
#
# Registry accounts per region: the `registries` maps of sagemaker-python-sdk's
# src/sagemaker/image_uri_config/huggingface-llm.json (TGI) and djl-lmi.json (LMI), the tables
# `sagemaker.image_uris.retrieve()` reads, cross-checked against the region table of AWS's
# "Available Deep Learning Containers Images" list
# (https://github.com/aws/deep-learning-containers/blob/master/available_images.md). Checked
# 2026-11-25. ISO partitions are left out (different DNS suffix, not a target of this project).

_DLC_ACCOUNTS_COMMON: dict[str, str] = {
    "af-south-1": "626614931356",
    "il-central-1": "780543022126",
    "ap-east-1": "871362719292",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-north-1": "763104351884",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}
# huggingface-llm.json lists four regions djl-lmi.json does not.
_DLC_ACCOUNTS_TGI: dict[str, str] = {
    **_DLC_ACCOUNTS_COMMON,
    "ap-south-2": "772153158452",
    "ap-southeast-4": "457447274322",
    "eu-central-2": "380420809688",
    "eu-south-2": "503227376785",
}


@dataclass(frozen=True)
class SageMakerImage:
    """One pinned SageMaker DLC: repository + immutable tag, and the regions that host it."""

    engine: EngineName
    repository: str
    tag: str
    accounts: Mapping[str, str]
    engine_version: str
    source: str
    checked: str

    def uri(self, region: str) -> str:
        """`<account>.dkr.ecr.<region>.<suffix>/<repository>:<tag>` for `region`.

        Raises `KeyError` for a region without this DLC; config validation reports that first.
        """
        account = self.accounts[region]
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"{account}.dkr.ecr.{region}.{suffix}/{self.repository}:{self.tag}"

    def repository_arn(self, region: str) -> str:
        """The ECR repository ARN the execution role may pull from (least privilege)."""
        partition = (
            "aws-cn" if region.startswith("cn-")
            else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        )
        return f"arn:{partition}:ecr:{region}:{self.accounts[region]}:repository/{self.repository}"


# Hugging Face LLM DLC (TGI 3.2.3 on PyTorch 2.6). The `-v2.0` suffix is the DLC release's
# immutable tag (release v2.0-hf-tgi-3.2.3-pt-2.6.0-inf-gpu-py311, listed in
# aws/deep-learning-containers issue #4711); the suffix-less tag moves with patch releases.
SAGEMAKER_TGI = SageMakerImage(
    engine="tgi",
    repository="huggingface-pytorch-tgi-inference",
    tag="2.6.0-tgi3.2.3-gpu-py311-cu124-ubuntu22.04-v2.0",
    accounts=MappingProxyType(_DLC_ACCOUNTS_TGI),
    engine_version="TGI 3.2.3",
    source="https://github.com/aws/deep-learning-containers/issues/4711",
    checked="2026-11-25",
)

# Large Model Inference (LMI) DLC v15: DJLServing 0.33.0 with vLLM 0.8.4 (available_images.md,
# "Large Model Inference Containers"). `OPTION_ROLLING_BATCH=vllm` selects the vLLM backend.
SAGEMAKER_LMI = SageMakerImage(
    engine="vllm",
    repository="djl-inference",
    tag="0.33.0-lmi15.0.0-cu128",
    accounts=MappingProxyType(dict(_DLC_ACCOUNTS_COMMON)),
    engine_version="vLLM 0.8.4 (LMI 15.0.0)",
    source="https://github.com/aws/deep-learning-containers/blob/master/available_images.md",
    checked="2026-11-25",
)

SAGEMAKER_IMAGES: Mapping[EngineName, SageMakerImage] = MappingProxyType(
    {"tgi": SAGEMAKER_TGI, "vllm": SAGEMAKER_LMI}
)
"""The SageMaker DLC per `models[].engine`: TGI -> Hugging Face LLM DLC, vLLM -> LMI DLC."""


# --- image sizes, for the start-up model (components/startup.py) ----------------------------
#
# Bytes an instance pulls and unpacks before the container starts, in GB (10^9 bytes) of
# unpacked image, the size `docker images` reports. Only `total_seconds` of the start-up model
# (the wait bound, not a kill timeout) reads them.
#
# * vllm/vllm-openai:v0.12.0: 28.6 GB, measured on `vllm-openai:latest` the week v0.12.0 was
#   latest (vllm-project/vllm PR #22377, update of 2025-12-10: "Size of official out-of-the-box
#   vllm-openai:latest docker image: 28.6 GB").
# * TGI 3.3.5: no published size found; taken as the vLLM figure (the same CUDA + PyTorch
#   stack), so the wait bound errs long rather than short.
# * SageMaker DLCs (LMI, HF TGI): 20 GB, the top of AWS's "Standard Docker image pulls of
#   15-20 GB" for its Deep Learning Containers (AWS ML blog, "Reducing container cold start times
#   using SOCI index on DLAMI and DLC").
IMAGE_UNPACKED_GB: Mapping[str, float] = MappingProxyType({
    VLLM.image: 28.6,
    TGI.image: 28.6,
    f"{SAGEMAKER_LMI.repository}:{SAGEMAKER_LMI.tag}": 20.0,
    f"{SAGEMAKER_TGI.repository}:{SAGEMAKER_TGI.tag}": 20.0,
})
"""Unpacked size (GB) per pinned serving image (`repository:tag`; SageMaker's without the
per-region registry)."""
