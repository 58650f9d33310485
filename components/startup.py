"""The one start-up time model: how long a replica takes from a fresh instance to serving.

Every timeout that can kill or replace a starting engine reads it - the EKS startup probe, the
ECS container health check and service grace period, SageMaker's download and container
start-up timeouts - and so does the policy pack's `llm-startup-timeouts` rule, so the program
and its gate can never disagree. Pure Python over the facts (no provider package): the pack, the
`plan` command and the gateway import it.

Entry point (stable; the gateway uses `.total_seconds` as its per-model wait bound)::

    estimate_startup(*, shape: ModelShape, checkpoint: "none" | "awq" | "gptq" | "fp8",
                     gpus_per_replica: int, platform: "eks" | "ecs" | "sagemaker",
                     weights: "s3" | "hub", engine: "vllm" | "tgi" = "vllm") -> StartupEstimate
    estimate_for_model(model: config.Model, platform) -> StartupEstimate   # the same, from config

`checkpoint` is the format the weights are stored in (`Model.checkpoint_quantization`), not the
serving quantization: `quantization: fp8` over a 16-bit checkpoint reads 16-bit bytes.

`StartupEstimate` holds the parts in seconds (image pull, weights download, load into GPU
memory, engine warm-up: CUDA/NCCL init, profiling, torch.compile, CUDA-graph capture) and the
windows each platform's timeouts must cover:

* `total_seconds`: pull + download + load + warm-up, x `MARGIN`. The whole cold start of a
  replica on an instance that has nothing cached; no floor (it is an estimate, not a timeout).
* `container_seconds`: what runs inside the engine container (a Hub download, the load, the
  warm-up), x `MARGIN`, at least `MIN_STARTUP_SECONDS`. EKS startup probe, ECS container health
  check, SageMaker `ContainerStartupHealthCheckTimeoutInSeconds`.
* `task_seconds`: everything after the task or pod started, including a weights copy that runs
  before the engine container (ECS's `aws s3 sync` init container), x `MARGIN`, at least
  `MIN_STARTUP_SECONDS`. ECS `healthCheckGracePeriodSeconds`.
* `model_download_seconds`: the copy SageMaker makes of S3 model data before the container
  starts, x `MARGIN`, at least `MIN_STARTUP_SECONDS`. SageMaker
  `ModelDataDownloadTimeoutInSeconds`.

How weights arrive, per platform and `weightsUri`:

| platform  | S3 (`weightsUri`)                                    | Hugging Face Hub            |
| --------- | ---------------------------------------------------- | --------------------------- |
| eks       | Run:ai streamer, S3 straight to GPU; with TP > 1 in  | engine downloads to disk,   |
|           | distributed mode, each rank reads 1/TP               | then loads from disk        |
| ecs       | `aws s3 sync` init container to disk, engine loads   | engine downloads, loads     |
| sagemaker | SageMaker copies the prefix to the instance, loads   | engine downloads, loads     |

Every throughput below is a published figure or a stated fraction of one; `MARGIN` covers what
they do not (a slow S3 prefix, a cold NAT, first-boot compilation without a cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from components.facts.images import (
    ENGINE_IMAGES,
    IMAGE_UNPACKED_GB,
    SAGEMAKER_IMAGES,
    EngineName,
)
from components.facts.models import ModelShape
from components.sizing import BYTES_16BIT, GIB, Quantization, weight_bytes

if TYPE_CHECKING:
    from components.config import Model

Platform = Literal["eks", "ecs", "sagemaker"]
WeightsSource = Literal["s3", "hub"]

# --- figures -------------------------------------------------------------------------------

MIN_STARTUP_SECONDS = 600
"""Shortest start-up allowance for any serving container: the figure AWS uses for LLM
containers on SageMaker, and the pack's default `minStartupSeconds`.
https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-hosting.html"""

MARGIN = 1.5
"""Every window is the estimate x 1.5: the throughputs below are typical, not worst case (S3
prefix warm-up, Hub CDN misses, a first boot compiling without vLLM's torch.compile cache)."""

IMAGE_PULL_BYTES_PER_SECOND = 50e6
"""Pull + unpack of the engine image, per GB of unpacked image: AWS measures "Standard Docker
image pulls of 15-20 GB" at "4-6 minutes per instance" (42-83 MB/s; AWS ML blog, "Reducing
container cold start times using SOCI index on DLAMI and DLC"); 50 MB/s sits near its slow end.
SOCI parallel pull (EKS default) and warm pools (ECS) are faster; this bounds a cold instance."""

S3_BYTES_PER_SECOND_PER_REQUEST = 85e6
"""One S3 GET stream: "make one concurrent request for each 85-90 MB/s of desired network
throughput" (Amazon S3 performance guidelines,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance-guidelines.html);
the low end."""

STREAMER_CONCURRENCY = 8
"""Run:ai streamer S3 clients per reading process: the streamer's default for object storage
(run-ai/runai-model-streamer docs/src/env-vars.md, RUNAI_STREAMER_CONCURRENCY), set explicitly
in vLLM's `--model-loader-extra-config` so the engine and this model agree."""

STREAMER_BYTES_PER_SECOND_CEILING = 3.51 * GIB
"""A replica never streams faster than the streamer's own best published S3 result: 3.51 GiB/s
(run-ai/runai-model-streamer docs/src/benchmarks.md, g5.12xlarge, Llama-3-8B from S3)."""

AWS_CLI_S3_CONCURRENCY = 10
"""`aws s3 sync` requests in flight: the AWS CLI's default `max_concurrent_requests`
(https://docs.aws.amazon.com/cli/latest/topic/s3-config.html). The ECS GPU volume is gp3 at
1,000 MiB/s, so the 850 MB/s of ten requests is not disk-bound."""

SAGEMAKER_S3_REQUESTS = 1
"""SageMaker does not publish how it copies S3 model data to the instance; we assume one
request's rate (85 MB/s), AWS's own guidance being to raise the download timeout past 40 GB
(https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-hosting.html)."""

HUB_BYTES_PER_SECOND = 200e6
"""Hugging Face Hub through NAT: `huggingface_hub` alone tops out "~500MB/s on very high
bandwidth network" (README of https://github.com/huggingface/hf_transfer); 40% of that, since
the Hub is reached over the internet and the engines' images do not all enable hf_transfer."""

DISK_LOAD_BYTES_PER_SECOND = 335e6
"""vLLM's default safetensors loader reading from gp3: Llama-3-8B (16.07 GB) in 47.99 s
(NVIDIA technical blog, "Reducing cold start latency for LLM inference with NVIDIA Run:ai
Model Streamer", g5.12xlarge). TGI and the SageMaker DLCs read safetensors the same way; local
NVMe (SageMaker) is faster, so this errs long."""

ENGINE_WARMUP_SECONDS = 180
"""CUDA/NCCL init, memory profiling, torch.compile and CUDA-graph capture, all before /health
answers (vLLM compiles before serving any request, docs/design/torch_compile.md). vLLM's own CI
logs "init engine (profile, create kv cache, warmup model) took 76.40 s (compilation: 9.18 s)"
for a 230B MoE (vllm-project/vllm PR #39240); 180 s allows 2.4x that, since our pods start with
an empty compile cache."""


# --- the estimate -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartupEstimate:
    """One replica's cold start in seconds, its parts, and the windows timeouts must cover."""

    platform: Platform
    weights: WeightsSource
    engine: EngineName
    checkpoint_gb: float
    readers: int
    """Processes reading the checkpoint from S3 in parallel (TP ranks in distributed mode)."""
    image_pull_seconds: float
    download_seconds: float
    """Weights onto the host's disk before the engine reads them (0 when streamed)."""
    download_in_container: bool
    """The engine container downloads (Hub) rather than a step before it (SageMaker's copy,
    ECS's init container)."""
    load_seconds: float
    """Weights into GPU memory: streamed from S3, or read from local disk."""
    warmup_seconds: float
    margin: float = MARGIN

    @property
    def expected_seconds(self) -> float:
        return (self.image_pull_seconds + self.download_seconds + self.load_seconds
                + self.warmup_seconds)

    @property
    def total_seconds(self) -> int:
        """Fresh instance to serving, with the margin: the bound a client may wait."""
        return math.ceil(self.expected_seconds * self.margin)

    def _window(self, seconds: float) -> int:
        return max(MIN_STARTUP_SECONDS, math.ceil(seconds * self.margin))

    @property
    def container_seconds(self) -> int:
        """Engine container start to /health: what a container health check must allow."""
        inside = self.download_seconds if self.download_in_container else 0.0
        return self._window(inside + self.load_seconds + self.warmup_seconds)

    @property
    def task_seconds(self) -> int:
        """Task (or pod) start to /health, a weights copy before the engine included."""
        return self._window(self.download_seconds + self.load_seconds + self.warmup_seconds)

    @property
    def model_download_seconds(self) -> int:
        """The copy made before the engine container starts (SageMaker model data)."""
        before = 0.0 if self.download_in_container else self.download_seconds
        return self._window(before)


def checkpoint_bytes(shape: ModelShape, checkpoint: Quantization) -> float:
    """Bytes of the checkpoint the engine reads, in the format it is stored in: a 16-bit one
    (`none`; also what `quantization: fp8` over 16-bit weights reads, vLLM quantizing at load)
    is 2 bytes a weight, or 4 for an fp32 checkpoint (Gemma 2 2b/9b ship `torch_dtype: float32`)
    whatever it is served in; AWQ/GPTQ/FP8 checkpoints are stored quantized."""
    if checkpoint != "none":
        return weight_bytes(shape, checkpoint)
    per_weight = 4 if shape.dtype == "float32" else BYTES_16BIT
    return shape.parameters_b * 1e9 * per_weight


def image_unpacked_gb(platform: Platform, engine: EngineName) -> float:
    """The serving image the platform pulls for `engine` (EKS always runs the vLLM image)."""
    if platform == "sagemaker":
        image = SAGEMAKER_IMAGES[engine]
        return IMAGE_UNPACKED_GB[f"{image.repository}:{image.tag}"]
    return IMAGE_UNPACKED_GB[ENGINE_IMAGES["vllm" if platform == "eks" else engine].image]


def s3_stream_readers(gpus_per_replica: int) -> int:
    """Processes streaming one replica's checkpoint from S3 on EKS: every tensor-parallel rank
    in the Run:ai streamer's distributed mode (each reads 1/TP and broadcasts it to the others
    over NCCL), one process otherwise."""
    return max(1, gpus_per_replica)


def estimate_startup(
    *,
    shape: ModelShape,
    checkpoint: Quantization,
    gpus_per_replica: int,
    platform: Platform,
    weights: WeightsSource,
    engine: EngineName = "vllm",
) -> StartupEstimate:
    """One replica's start-up on `platform`, weights from S3 (`weightsUri`) or the Hub, the
    checkpoint stored as `checkpoint`."""
    size = checkpoint_bytes(shape, checkpoint)
    pull = image_unpacked_gb(platform, engine) * 1e9 / IMAGE_PULL_BYTES_PER_SECOND
    readers = 1
    download = 0.0
    in_container = weights == "hub"
    if weights == "hub":
        download = size / HUB_BYTES_PER_SECOND
        load = size / DISK_LOAD_BYTES_PER_SECOND
    elif platform == "eks":
        readers = s3_stream_readers(gpus_per_replica)
        rate = min(readers * STREAMER_CONCURRENCY * S3_BYTES_PER_SECOND_PER_REQUEST,
                   STREAMER_BYTES_PER_SECOND_CEILING)
        load = size / rate
    else:
        requests = AWS_CLI_S3_CONCURRENCY if platform == "ecs" else SAGEMAKER_S3_REQUESTS
        download = size / (requests * S3_BYTES_PER_SECOND_PER_REQUEST)
        load = size / DISK_LOAD_BYTES_PER_SECOND
    return StartupEstimate(
        platform=platform, weights=weights, engine=engine, checkpoint_gb=size / 1e9,
        readers=readers, image_pull_seconds=pull, download_seconds=download,
        download_in_container=in_container, load_seconds=load,
        warmup_seconds=ENGINE_WARMUP_SECONDS,
    )


def estimate_for_model(model: Model, platform: Platform) -> StartupEstimate:
    """`estimate_startup` for a configured, sized model (its resolved GPU count)."""
    spec = model.spec
    return estimate_startup(
        shape=model.shape, checkpoint=model.checkpoint_quantization,
        gpus_per_replica=model.gpus_per_replica, platform=platform,
        weights="s3" if spec.weights_uri else "hub", engine=spec.engine,
    )
