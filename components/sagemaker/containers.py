"""The serving container of each model: which DLC image, which environment, where weights live.

Pure functions (no Pulumi). The two engines map onto the two SageMaker DLCs pinned in
`components.facts.images`: `tgi` -> Hugging Face LLM DLC, `vllm` -> LMI DLC with its vLLM backend.

Environment variables, per container's own documentation:

* TGI DLC: `HF_MODEL_ID`, `SM_NUM_GPUS` (shards), `MAX_INPUT_TOKENS`, `MAX_TOTAL_TOKENS`,
  `MAX_BATCH_PREFILL_TOKENS`, `MAX_CONCURRENT_REQUESTS`, `CUDA_MEMORY_FRACTION`,
  `HF_MODEL_QUANTIZE`, `MESSAGES_API_ENABLED` (OpenAI-style `messages` bodies on /invocations);
  every launcher flag reads the environment variable of the same name
  https://huggingface.co/docs/text-generation-inference/reference/launcher and
  https://huggingface.co/blog/sagemaker-huggingface-llm
* LMI DLC: `HF_MODEL_ID`, `OPTION_ROLLING_BATCH=vllm`, `TENSOR_PARALLEL_DEGREE`,
  `OPTION_MAX_MODEL_LEN`, `OPTION_MAX_ROLLING_BATCH_SIZE` (vLLM's `max_num_seqs`),
  `OPTION_MAX_ROLLING_BATCH_PREFILL_TOKENS` (vLLM's `max_num_batched_tokens`),
  `OPTION_ENABLE_CHUNKED_PREFILL`, `OPTION_GPU_MEMORY_UTILIZATION`, `OPTION_QUANTIZE`,
  `SERVING_FAIL_FAST`
  https://docs.djl.ai/master/docs/serving/serving/docs/lmi/deployment_guide/configurations.html

The memory options are the engine settings the sizing profiled for this model on this instance
(`model.memory.engine`, components/sizing.py: vLLM 0.8.4's accounting for LMI, TGI's own
approximated for TGI), so the container starts with what the plan promised.

The Hugging Face token never appears here: the component adds `HF_TOKEN` as a Pulumi secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config import Model
from components.facts.images import SAGEMAKER_IMAGES, SageMakerImage
from components.startup import estimate_for_model

MODEL_DIR = "/opt/ml/model"
"""Where SageMaker places uncompressed S3 model data inside the container."""

HF_TOKEN_ENV = "HF_TOKEN"
"""Read by huggingface_hub (TGI and LMI) for gated repositories."""

#: The API's range for both start-up timeouts (ProductionVariant and
#: InferenceComponentStartupParameters: `ContainerStartupHealthCheckTimeoutInSeconds` and
#: `ModelDataDownloadTimeoutInSeconds`, min 60 / max 3,600 in botocore's sagemaker model).
MAX_STARTUP_SECONDS = 3600

_S3 = re.compile(r"^s3://([^/]+)/?(.*?)/?$")


def image_for(model: Model) -> SageMakerImage:
    return SAGEMAKER_IMAGES[model.spec.engine]


def image_uri(model: Model, region: str) -> str:
    """The DLC URI in the stack's region (its own ECR account), never us-east-1's."""
    return image_for(model).uri(region)


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, prefix without trailing slash) of an s3:// URI."""
    match = _S3.match(uri)
    if match is None:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return match.group(1), match.group(2)


def weights_location(model: Model) -> tuple[str, str] | None:
    """(bucket, prefix) of pre-staged weights, or None (Hub download)."""
    return None if model.spec.weights_uri is None else s3_location(model.spec.weights_uri)


def model_data_source(model: Model) -> dict[str, object] | None:
    """CreateModel `ModelDataSource` for uncompressed S3 weights (API shape), or None.

    Uncompressed (`CompressionType: None`, `S3Prefix`) skips the tar.gz step entirely:
    SageMaker copies the prefix to /opt/ml/model.
    https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-uncompressed.html
    """
    location = weights_location(model)
    if location is None:
        return None
    bucket, prefix = location
    return {
        "S3DataSource": {
            "S3Uri": f"s3://{bucket}/{prefix}/",
            "S3DataType": "S3Prefix",
            "CompressionType": "None",
        }
    }


def uses_hub(model: Model) -> bool:
    """True when the container downloads weights from the Hugging Face Hub at start."""
    return model.spec.weights_uri is None


@dataclass(frozen=True)
class StartupTimeouts:
    """The two SageMaker start-up timeouts of one model, from the start-up model
    (components/startup.py), each within the API's maximum."""

    container_startup_seconds: int
    """`ContainerStartupHealthCheckTimeoutInSeconds`: container start to a healthy /ping."""
    model_download_seconds: int
    """`ModelDataDownloadTimeoutInSeconds`: SageMaker's copy of S3 model data."""

    @property
    def total_seconds(self) -> int:
        """Both windows back to back: how long one copy may take to come up."""
        return self.container_startup_seconds + self.model_download_seconds


def startup_timeouts(model: Model) -> StartupTimeouts:
    """From the start-up model; where it exceeds 3,600 s (a several-hundred-GB checkpoint at the
    assumed copy rate) the API's maximum is the most SageMaker allows (docs/sagemaker.md)."""
    estimate = estimate_for_model(model, "sagemaker")
    return StartupTimeouts(
        container_startup_seconds=min(MAX_STARTUP_SECONDS, estimate.container_seconds),
        model_download_seconds=min(MAX_STARTUP_SECONDS, estimate.model_download_seconds),
    )


def engine_environment(model: Model) -> dict[str, str]:
    """Container environment for one model, without any secret."""
    spec, settings = model.spec, model.memory.engine
    model_id = MODEL_DIR if spec.weights_uri else spec.model_id
    # Pre-quantized checkpoints are detected from their config.json by both engines; only
    # on-the-fly FP8 of 16-bit weights is asked for explicitly.
    quantize = model.engine_quantization
    if spec.engine == "tgi":
        env = {
            "HF_MODEL_ID": model_id,
            "SM_NUM_GPUS": str(model.gpus_per_replica),
            "MAX_INPUT_TOKENS": str(spec.max_input_tokens),
            "MAX_TOTAL_TOKENS": str(settings.max_model_len),
            "MAX_BATCH_PREFILL_TOKENS": str(settings.max_num_batched_tokens),
            "MAX_CONCURRENT_REQUESTS": str(settings.max_num_seqs),
            "CUDA_MEMORY_FRACTION": f"{settings.gpu_memory_utilization:.2f}",
            "MESSAGES_API_ENABLED": "true",
        }
        if quantize is not None:
            env["HF_MODEL_QUANTIZE"] = quantize
        return env
    env = {
        "HF_MODEL_ID": model_id,
        "OPTION_ROLLING_BATCH": "vllm",
        "TENSOR_PARALLEL_DEGREE": str(model.gpus_per_replica),
        "OPTION_MAX_MODEL_LEN": str(settings.max_model_len),
        # The KV cache holds this many full-length sequences (sizing); admitting more only
        # preempts and recomputes.
        "OPTION_MAX_ROLLING_BATCH_SIZE": str(settings.max_num_seqs),
        # Prefill is chunked to this many tokens, so the activation peak vLLM profiles is this,
        # never the prompt length (vLLM 0.8.4 V0 would otherwise size it to max_model_len).
        "OPTION_MAX_ROLLING_BATCH_PREFILL_TOKENS": str(settings.max_num_batched_tokens),
        "OPTION_ENABLE_CHUNKED_PREFILL": "true",
        "OPTION_GPU_MEMORY_UTILIZATION": f"{settings.gpu_memory_utilization:.2f}",
        # Exit on an engine failure so SageMaker replaces the copy instead of serving errors.
        "SERVING_FAIL_FAST": "true",
    }
    if quantize is not None:
        env["OPTION_QUANTIZE"] = quantize
    return env
