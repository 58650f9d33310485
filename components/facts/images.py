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
    quantization: str


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

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.tag}"

    def serve_args(
        self,
        *,
        model: str,
        served_model_name: str,
        tensor_parallel: int,
        max_input_tokens: int,
        max_total_tokens: int,
        max_concurrency: int,
        quantization: str,
        gpu_memory_fraction: float,
    ) -> list[str]:
        """Arguments after the entrypoint; `quantization` is the config value (`none`, ...)."""
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
        ]
        if f.max_input_tokens:
            args += [f.max_input_tokens, str(max_input_tokens)]
        if quantization != "none":
            args += [f.quantization, quantization]
        return args


# vLLM: `vllm serve` OpenAI-compatible server; /health answers 200 only once the model is
# loaded; Prometheus gauges on the API port. https://docs.vllm.ai/en/latest/serving/
# openai_compatible_server.html, https://docs.vllm.ai/en/latest/usage/metrics.html
# Tag v0.12.0 checked 2026-11-25 against images built `FROM vllm/vllm-openai:v0.12.0` in public
# repositories; the entrypoint is set explicitly, so images whose ENTRYPOINT differs still work.
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
        quantization="--quantization",
    ),
    source="https://hub.docker.com/r/vllm/vllm-openai/tags",
    checked="2026-11-25",
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


# --- SageMaker deep learning containers (per-region ECR accounts) ---------------------------
