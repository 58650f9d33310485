"""Container definitions for one model's task (pure; no Pulumi), in RegisterTaskDefinition's
camelCase shape so tests validate them against botocore's ECS model.

A task is up to three containers sharing the task's network namespace (awsvpc):
* `weights` (only with `weightsUri`): `aws s3 sync` of the staged prefix into a task volume, then
  exits; the engine starts only after it succeeded (`dependsOn: SUCCESS`).
* `engine`: vLLM or TGI with its GPUs (`resourceRequirements`), the shared-memory size
  tensor parallelism needs, a health check, and the HF token only as a Secrets Manager
  reference (`secrets`), never in `environment`.
* `metrics`: an ADOT collector that scrapes the engine's in-flight gauges and writes them to
  CloudWatch as EMF, for target tracking on concurrency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from components.config import Model
from components.ecs.iam import INFLIGHT_NAMESPACE
from components.ecs.placement import TaskShape, container_health_timing
from components.facts.images import ADOT_COLLECTOR_IMAGE, AWS_CLI_IMAGE, EngineImage
from components.sizing import DEFAULT_GPU_MEMORY_UTILIZATION

ENGINE = "engine"
WEIGHTS = "weights"
METRICS = "metrics"
MODELS_VOLUME = "models"
MODELS_PATH = "/models"
ENGINE_MAX_CONCURRENCY = 256
"""Engine admission cap (vLLM's default `max_num_seqs`); autoscaling keeps the *average* in-flight
count near `concurrencyTarget`, far below it."""

INFLIGHT_RUNNING = "llm_requests_running"
INFLIGHT_WAITING = "llm_requests_waiting"


@dataclass(frozen=True)
class TaskInputs:
    """Values known only at deploy time (log groups, secret ARN) plus the static plan."""

    model: Model
    image: EngineImage
    shape: TaskShape
    region: str
    service_name: str
    log_group: str
    metrics_log_group: str
    hf_token_secret_arn: str | None


def _logs(inputs: TaskInputs, prefix: str) -> dict[str, Any]:
    # non-blocking: a CloudWatch Logs hiccup must not stall the engine's stdout.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": inputs.log_group,
            "awslogs-region": inputs.region,
            "awslogs-stream-prefix": prefix,
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def engine_model_ref(model: Model) -> str:
    """The local path the init container syncs into, or the Hub id the engine downloads."""
    return f"{MODELS_PATH}/{model.name}" if model.spec.weights_uri else model.spec.model_id


def health_command(image: EngineImage) -> list[str]:
    # python3 ships in both engine images; curl is not guaranteed.
    url = f"http://127.0.0.1:{image.port}{image.health_path}"
    return ["CMD-SHELL", f"python3 -c \"import urllib.request; urllib.request.urlopen('{url}', "
                         "timeout=5)\" || exit 1"]


def collector_config(inputs: TaskInputs) -> dict[str, Any]:
    """ADOT: keep only the engine's running/waiting gauges, renamed engine-neutrally, labelled
    with the service name, exported as EMF with that single dimension."""
    image = inputs.image
    running, waiting = image.inflight_metrics
    relabel = [
        {"source_labels": ["__name__"], "regex": re.escape(running),
         "target_label": "__name__", "replacement": INFLIGHT_RUNNING, "action": "replace"},
        {"source_labels": ["__name__"], "regex": re.escape(waiting),
         "target_label": "__name__", "replacement": INFLIGHT_WAITING, "action": "replace"},
        {"source_labels": ["__name__"], "regex": f"{INFLIGHT_RUNNING}|{INFLIGHT_WAITING}",
         "action": "keep"},
    ]
    return {
        "receivers": {"prometheus": {"config": {"scrape_configs": [{
            "job_name": "engine",
            "scrape_interval": "15s",
            "metrics_path": image.metrics_path,
            "static_configs": [{
                "targets": [f"127.0.0.1:{image.metrics_port}"],
                "labels": {"ServiceName": inputs.service_name},
            }],
            "metric_relabel_configs": relabel,
        }]}}},
        "processors": {"batch": {"timeout": "30s"}},
        "exporters": {"awsemf": {
            "namespace": INFLIGHT_NAMESPACE,
            "log_group_name": inputs.metrics_log_group,
            "region": inputs.region,
            "dimension_rollup_option": "NoDimensionRollup",
            "metric_declarations": [{
                "dimensions": [["ServiceName"]],
                "metric_name_selectors": [INFLIGHT_RUNNING, INFLIGHT_WAITING],
            }],
        }},
        "service": {"pipelines": {"metrics": {
            "receivers": ["prometheus"], "processors": ["batch"], "exporters": ["awsemf"],
        }}},
    }


def container_definitions(inputs: TaskInputs) -> list[dict[str, Any]]:
    model, image, shape = inputs.model, inputs.image, inputs.shape
    spec = model.spec
    mount = [{"sourceVolume": MODELS_VOLUME, "containerPath": MODELS_PATH, "readOnly": False}]
    containers: list[dict[str, Any]] = []

    if spec.weights_uri is not None:
        containers.append({
            "name": WEIGHTS,
            "image": AWS_CLI_IMAGE,
            "essential": False,
            "command": ["s3", "sync", spec.weights_uri, f"{MODELS_PATH}/{model.name}",
                        "--no-progress", "--only-show-errors"],
            "environment": [{"name": "AWS_REGION", "value": inputs.region}],
            "memoryReservation": 512,
            "mountPoints": mount,
            "logConfiguration": _logs(inputs, WEIGHTS),
        })

    environment = [
        {"name": "HF_HOME", "value": f"{MODELS_PATH}/.cache/huggingface"},
        {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
    ]
    if spec.weights_uri is not None:
        environment.append({"name": "HF_HUB_OFFLINE", "value": "1"})  # never call the Hub
    engine: dict[str, Any] = {
        "name": ENGINE,
        "image": image.image,
        "essential": True,
        "entryPoint": list(image.entrypoint),
        "command": image.serve_args(
            model=engine_model_ref(model),
            served_model_name=spec.model_id,
            tensor_parallel=spec.gpus_per_replica,
            max_input_tokens=spec.max_input_tokens,
            max_total_tokens=spec.max_total_tokens,
            max_concurrency=ENGINE_MAX_CONCURRENCY,
            quantization=spec.quantization,
            gpu_memory_fraction=DEFAULT_GPU_MEMORY_UTILIZATION,
        ),
        "portMappings": [{"containerPort": image.port, "protocol": "tcp", "name": "http"}],
        "resourceRequirements": [{"type": "GPU", "value": str(spec.gpus_per_replica)}],
        "memoryReservation": shape.engine_memory_mib,
        "environment": environment,
        "linuxParameters": {
            "sharedMemorySize": shape.shared_memory_mib,
            "initProcessEnabled": True,
        },
        "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
        "healthCheck": {"command": health_command(image),
                        **container_health_timing(shape)},
        "stopTimeout": 120,
        "mountPoints": mount,
        "logConfiguration": _logs(inputs, ENGINE),
    }
    if spec.weights_uri is not None:
        engine["dependsOn"] = [{"containerName": WEIGHTS, "condition": "SUCCESS"}]
    elif inputs.hf_token_secret_arn is not None:
        engine["secrets"] = [{"name": "HF_TOKEN", "valueFrom": inputs.hf_token_secret_arn}]
    containers.append(engine)

    containers.append({
        "name": METRICS,
        "image": ADOT_COLLECTOR_IMAGE,
        "essential": False,
        "environment": [{"name": "AOT_CONFIG_CONTENT",
                         "value": json.dumps(collector_config(inputs))}],
        "memoryReservation": 256,
        "logConfiguration": _logs(inputs, METRICS),
    })
    return containers
