"""The one start-up time model (components/startup.py) and every timeout built from it.

Function level: for every catalog model on every platform, weights from S3 and from the Hub, at
the largest GPU count it fits, the timeouts the program's own builders produce (EKS startup
probe, ECS grace period and container health check, SageMaker start-up parameters) pass the
policy pack's `llm-startup-timeouts` checks, called directly on what the builders return. The
same stacks through the analyzer protocol are in tests/policies/test_startup_gate.py.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest

from components import startup
from components.config import Model, StackConfig
from components.ecs.placement import container_health_timing, health_check_grace_seconds, task_shape
from components.eks import serving
from components.facts import MODEL_SHAPES
from components.facts.images import IMAGE_UNPACKED_GB, SAGEMAKER_IMAGES, VLLM
from components.platforms import parse_config
from components.sagemaker.containers import MAX_STARTUP_SECONDS
from components.sagemaker.packing import plan_variants
from components.sizing import GIB
from components.tags import Naming, startup_descriptor
from policies.rules._framework import Resource
from policies.rules.startup import (
    LLM_STARTUP_TIMEOUTS,
    check_ecs_service,
    check_inference_component,
    check_pod_probes,
)

PACK = LLM_STARTUP_TIMEOUTS.config_with_defaults({})
LLAMA_70B = MODEL_SHAPES["meta-llama/Llama-3.3-70B-Instruct"]


# --- the model: parts, windows, sources ---------------------------------------------------------


def test_llama_70b_bf16_parts_follow_the_documented_throughputs():
    """141.2 GB of bf16 weights (70.6B parameters x 2 bytes)."""
    est = startup.estimate_startup(shape=LLAMA_70B, checkpoint="none", gpus_per_replica=4,
                                   platform="eks", weights="s3")
    assert est.checkpoint_gb == pytest.approx(141.2)
    # 28.6 GB vLLM image at 50 MB/s
    assert est.image_pull_seconds == pytest.approx(28.6e9 / 50e6)
    # four ranks x 8 streams x 85 MB/s, in distributed mode
    assert est.readers == 4 and est.download_seconds == 0
    assert est.load_seconds == pytest.approx(141.2e9 / (4 * 8 * 85e6))
    assert est.warmup_seconds == 180
    assert est.total_seconds == math.ceil((572 + 141.2e9 / 2.72e9 + 180) * 1.5)
    assert est.container_seconds == 600  # (52 + 180) x 1.5 = 348: the floor
    one_rank = startup.estimate_startup(shape=LLAMA_70B, checkpoint="none",
                                        gpus_per_replica=1, platform="eks", weights="s3")
    assert one_rank.load_seconds == pytest.approx(4 * est.load_seconds)
    # eight ranks would be 5.44 GB/s; capped at the streamer's best published 3.51 GiB/s
    eight = startup.estimate_startup(shape=LLAMA_70B, checkpoint="none", gpus_per_replica=8,
                                     platform="eks", weights="s3")
    assert eight.load_seconds == pytest.approx(141.2e9 / (3.51 * GIB))


@pytest.mark.parametrize(("platform", "weights", "container", "task", "download"), [
    ("eks", "hub", 1962, 1962, 600),
    ("ecs", "s3", 903, 1152, 600),
    ("ecs", "hub", 1962, 1962, 600),
    ("sagemaker", "s3", 903, 3395, 2492),
    ("sagemaker", "hub", 1962, 1962, 600),
])
def test_windows_follow_where_the_weights_are_fetched(platform, weights, container, task,
                                                      download):
    """Hub: the engine container downloads (200 MB/s) then loads from disk (335 MB/s). ECS S3:
    an init container syncs first (10 x 85 MB/s), outside the engine's window but inside the
    task's. SageMaker S3: SageMaker copies first (one 85 MB/s stream), its own timeout."""
    est = startup.estimate_startup(shape=LLAMA_70B, checkpoint="none", gpus_per_replica=4,
                                   platform=platform, weights=weights)
    assert (est.container_seconds, est.task_seconds, est.model_download_seconds) == (
        container, task, download)
    assert est.total_seconds > est.task_seconds >= est.container_seconds >= 600


def test_checkpoint_bytes_are_what_is_on_disk():
    shapes = MODEL_SHAPES
    assert startup.checkpoint_bytes(LLAMA_70B, "none") == 70.6e9 * 2
    # Gemma 2 9B ships float32: 4 bytes a weight on disk
    assert startup.checkpoint_bytes(shapes["google/gemma-2-9b-it"], "none") == 9.24e9 * 4
    # AWQ and FP8 checkpoints are stored quantized
    assert startup.checkpoint_bytes(LLAMA_70B, "awq") < 0.3 * 70.6e9 * 2
    assert startup.checkpoint_bytes(LLAMA_70B, "fp8") < 0.55 * 70.6e9 * 2
    # `quantization: fp8` over the 16-bit repository reads the 16-bit checkpoint (vLLM quantizes
    # at load): the estimate follows the stored format, not the serving one
    config = _config("eks", "meta-llama/Llama-3.3-70B-Instruct", "s3", quantization="fp8")
    assert config is not None
    (model,) = config.models
    assert model.checkpoint_quantization == "none"
    assert startup.estimate_for_model(model, "eks").checkpoint_gb == pytest.approx(141.2)


def test_images_the_model_pulls_are_the_pinned_ones():
    assert startup.image_unpacked_gb("eks", "tgi") == IMAGE_UNPACKED_GB[VLLM.image] == 28.6
    lmi = SAGEMAKER_IMAGES["vllm"]
    assert startup.image_unpacked_gb("sagemaker", "vllm") == IMAGE_UNPACKED_GB[
        f"{lmi.repository}:{lmi.tag}"] == 20.0


def test_every_figure_has_its_source_in_the_module():
    """'every figure sourced': each throughput/size constant's docstring names where it is
    from (a URL or a named document)."""
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(startup))
    docs: dict[str, str] = {}
    body = tree.body
    for node, nxt in itertools.pairwise(body):
        if isinstance(node, ast.Assign) and isinstance(nxt, ast.Expr) and isinstance(
                nxt.value, ast.Constant):
            docs[node.targets[0].id] = nxt.value.value  # type: ignore[attr-defined]
    figures = [n for n in docs if n.isupper()]
    assert len(figures) >= 10
    for name in figures:
        assert "https://" in docs[name] or "docs/" in docs[name] or "blog" in docs[name] or \
            name in ("MARGIN",), name


# --- the program's timeouts meet the pack's requirement, every catalog model ------------------


def _largest_fit(model_id: str, platform: str) -> tuple[str, int] | None:
    """(quantization, GPUs per replica): 16-bit if it fits somewhere, else fp8; the largest
    tensor-parallel degree for which sizing finds an instance."""
    from components.config import PLATFORM_PRICING
    from components.sizing import SizingRequest, choose_instance
    shape = MODEL_SHAPES[model_id]
    for quant in ("none", "fp8"):
        for gpus in (8, 4, 2, 1):
            if shape.attention_heads % gpus:
                continue
            request = SizingRequest(shape=shape, quantization=quant, gpus_per_replica=gpus,
                                    max_input_tokens=1024, max_total_tokens=2048,
                                    concurrency_target=1)
            if choose_instance(request, PLATFORM_PRICING[platform]) is not None:
                return quant, gpus
    return None


def _one_id_per_shape() -> list[str]:
    seen: dict[int, str] = {}
    for model_id, shape in MODEL_SHAPES.items():
        seen.setdefault(id(shape), model_id)
    return list(seen.values())


def _config(platform: str, model_id: str, weights: str,
            quantization: str | None = None) -> StackConfig | None:
    fit = _largest_fit(model_id, platform)
    if fit is None:
        return None
    quant, gpus = fit
    quant = quantization or quant
    spec: dict[str, Any] = {"name": "m", "modelId": model_id, "quantization": quant,
                            "gpusPerReplica": gpus, "maxInputTokens": 1024,
                            "maxTotalTokens": 2048, "concurrencyTarget": 1}
    if weights == "s3":
        spec["weightsUri"] = "s3://weights-bucket/m/"
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": "prod",
           "llm-hosting:platform": platform, "llm-hosting:models": json.dumps([spec])}
    if weights == "hub":
        raw["llm-hosting:hfToken"] = "hf_x"
    return parse_config(raw, project="p", stack="prod", secret_keys=["llm-hosting:hfToken"])


NAMING = Naming("p", "prod", "prod")


def _tags(model: Model, platform: str) -> dict[str, str]:
    return {**NAMING.serving_tags(model, platform), **startup_descriptor(model)}


def _eks(model: Model) -> list[str]:
    dep = serving.deployment(model, region="us-east-1", node_selector={},
                             with_hf_token=model.spec.weights_uri is None)
    return list(check_pod_probes(Resource("kubernetes:apps/v1:Deployment", "d", dep), PACK))


def _ecs(model: Model) -> list[str]:
    shape = task_shape(model)
    timing = container_health_timing(shape)
    # ECS HealthCheck limits (botocore ecs model): startPeriod <= 300, interval 5-300, retries
    # 1-10, timeout 2-60; the container check covers its window as far as they allow.
    assert timing["startPeriod"] <= 300 and 5 <= timing["interval"] <= 300
    assert 1 <= timing["retries"] <= 10 and 2 <= timing["timeout"] <= 60
    covered = timing["startPeriod"] + timing["interval"] * timing["retries"]
    assert covered >= min(shape.container_startup_seconds, 300 + 300 * 10)
    props = {"healthCheckGracePeriodSeconds": health_check_grace_seconds(shape),
             "loadBalancers": [{"containerName": "engine", "containerPort": 8000}],
             "tags": _tags(model, "ecs")}
    return list(check_ecs_service(Resource("aws:ecs/service:Service", "s", props), PACK))


def _sagemaker(config: StackConfig) -> list[str]:
    (plan,) = plan_variants(config)
    (placement,) = plan.placements
    params = {"containerStartupHealthCheckTimeoutInSeconds":
              placement.startup.container_startup_seconds,
              "modelDataDownloadTimeoutInSeconds": placement.startup.model_download_seconds}
    assert max(params.values()) <= MAX_STARTUP_SECONDS
    assert plan.container_startup_seconds == params[
        "containerStartupHealthCheckTimeoutInSeconds"]
    props = {"specification": {"startupParameters": params},
             "tags": [{"key": k, "value": v}
                      for k, v in _tags(placement.model, "sagemaker").items()]}
    return list(check_inference_component(
        Resource("aws-native:sagemaker:InferenceComponent", "ic", props), PACK))


@pytest.mark.parametrize("platform", ["eks", "ecs", "sagemaker"])
def test_every_catalog_model_starts_within_what_the_pack_requires(platform):
    checked = []
    for model_id in _one_id_per_shape():
        for weights in ("s3", "hub"):
            config = _config(platform, model_id, weights)
            if config is None:
                continue  # fits no instance of this platform at any GPU count
            (model,) = config.models
            found = (_eks(model) if platform == "eks" else _ecs(model) if platform == "ecs"
                     else _sagemaker(config))
            assert found == [], (model_id, weights, found)
            checked.append((model_id, weights, model.gpus_per_replica))
    assert len(checked) >= 30
    # the largest model is in (fp8 on 8 GPUs)
    assert ("meta-llama/Llama-3.1-405B", "s3", 8) in checked


def test_eks_probe_for_llama_70b_bf16_from_the_hub_is_the_pack_requirement():
    """The defect: the probe was fixed at 600 s while the pack asked 789 s for this model. Now
    both are the start-up model's engine-container window."""
    config = _config("eks", "meta-llama/Llama-3.3-70B-Instruct", "hub")
    assert config is not None
    (model,) = config.models
    assert model.spec.quantization == "none"
    dep = serving.deployment(model, region="us-east-1", node_selector={}, with_hf_token=True)
    probe = dep["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    need = startup.estimate_for_model(model, "eks").container_seconds
    assert need == 1962
    assert probe["periodSeconds"] * probe["failureThreshold"] == 1970 >= need
    assert dep["spec"]["progressDeadlineSeconds"] == startup.estimate_for_model(
        model, "eks").total_seconds > 2400
    # one period less and the pack would refuse it
    short = json.loads(json.dumps(dep))
    short["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["failureThreshold"] = 196
    (message,) = check_pod_probes(Resource("kubernetes:apps/v1:Deployment", "d", short), PACK)
    assert "restarts it after 1960 s" in message and "needs 1962 s" in message
