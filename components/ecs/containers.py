"""Container definitions for one model's task, or a shared task of several models (pure; no
Pulumi), in RegisterTaskDefinition's camelCase shape so tests validate them against botocore.

A task is up to three containers sharing the task's network namespace (awsvpc):
* `weights` (only with `weightsUri`): `aws s3 sync` of the staged prefix into a task volume, then
  exits; the engine starts only after it succeeded (`dependsOn: SUCCESS`).
* `engine`: vLLM or TGI with its GPUs (`resourceRequirements`), the shared-memory size
  tensor parallelism needs, a health check, and the HF token only as a Secrets Manager
  reference (`secrets`), never in `environment`.
* `metrics`: an ADOT collector that scrapes the engine's in-flight gauges and writes them to
  CloudWatch as EMF, for target tracking on concurrency.
* `volumes` (first, always): opens the task's scratch volumes to the non-root containers, then
  exits; every other container waits for it (`dependsOn: SUCCESS`).

Least privilege (docs/hardening.md): every container has a read-only root filesystem, is not
privileged and drops every Linux capability; the writable paths are task volumes. vLLM, the
weights sync and the collector run as UID 10001 (each image allows it: components/facts/images.py
for vLLM; the AWS CLI and ADOT images only read their own files). Docker creates a task's
volumes root-owned 0755, so `volumes` (root, no capabilities: an owner may chmod its own
directory) sets them 1777, as /tmp is. TGI stays root (its image's non-root layout is not
verified here) with capabilities dropped and a writable root filesystem.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from components.config import Model
from components.ecs.iam import INFLIGHT_NAMESPACE
from components.ecs.placement import TaskShape, container_health_timing
from components.ecs.sharing import SharedHost
from components.facts.images import (
    ADOT_COLLECTOR_IMAGE,
    AWS_CLI_IMAGE,
    ENGINE_IMAGES,
    EngineImage,
)
from components.sizing import EngineSettings, estimate_memory

ENGINE = "engine"
WEIGHTS = "weights"
METRICS = "metrics"
VOLUMES_INIT = "volumes"
MODELS_VOLUME = "models"
MODELS_PATH = "/models"
HOME_VOLUME = "home"
TMP_VOLUME = "tmp"
TASK_VOLUMES = (MODELS_VOLUME, HOME_VOLUME, TMP_VOLUME)
"""Docker volumes of every task (task scope, local driver): the model cache, the engine's HOME
with its compile caches, and /tmp."""
VOLUMES_INIT_MEMORY_MIB = 32
HELPER_USER = "10001:10001"
"""The weights sync and the collector: not root (their images need no write outside volumes)."""

TGI_PROMETHEUS_PORT_FLAG = "--prometheus-port"
TGI_MASTER_PORT_FLAG = "--master-port"
"""TGI launcher flags (defaults 9000 and 29500) that a second TGI engine in the same network
namespace must move. https://huggingface.co/docs/text-generation-inference/reference/launcher"""

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


def _logs(log_group: str, region: str, prefix: str) -> dict[str, Any]:
    # non-blocking: a CloudWatch Logs hiccup must not stall the engine's stdout.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": log_group,
            "awslogs-region": region,
            "awslogs-stream-prefix": prefix,
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def engine_model_ref(model: Model) -> str:
    """The local path the init container syncs into, or the Hub id the engine downloads."""
    return f"{MODELS_PATH}/{model.name}" if model.spec.weights_uri else model.spec.model_id


def health_command(image: EngineImage, port: int | None = None) -> list[str]:
    # python3 ships in both engine images; curl is not guaranteed.
    url = f"http://127.0.0.1:{port or image.port}{image.health_path}"
    return ["CMD-SHELL", f"python3 -c \"import urllib.request; urllib.request.urlopen('{url}', "
                         "timeout=5)\" || exit 1"]


@dataclass(frozen=True)
class ScrapeTarget:
    """One engine the collector scrapes, and the labels (= EMF dimensions) its gauges get."""

    image: EngineImage
    metrics_port: int
    labels: dict[str, str]
    job: str = "engine"


def _collector(
    targets: list[ScrapeTarget], *, metrics_log_group: str, region: str
) -> dict[str, Any]:
    """ADOT: keep only each engine's running/waiting gauges, renamed engine-neutrally, labelled,
    exported as EMF with exactly those labels as dimensions."""
    jobs = []
    for t in targets:
        running, waiting = t.image.inflight_metrics
        relabel = [
            {"source_labels": ["__name__"], "regex": re.escape(running),
             "target_label": "__name__", "replacement": INFLIGHT_RUNNING, "action": "replace"},
            {"source_labels": ["__name__"], "regex": re.escape(waiting),
             "target_label": "__name__", "replacement": INFLIGHT_WAITING, "action": "replace"},
            {"source_labels": ["__name__"], "regex": f"{INFLIGHT_RUNNING}|{INFLIGHT_WAITING}",
             "action": "keep"},
        ]
        jobs.append({
            "job_name": t.job,
            "scrape_interval": "15s",
            "metrics_path": t.image.metrics_path,
            "static_configs": [{
                "targets": [f"127.0.0.1:{t.metrics_port}"],
                "labels": dict(t.labels),
            }],
            "metric_relabel_configs": relabel,
        })
    dimensions = sorted({tuple(t.labels) for t in targets})
    return {
        "receivers": {"prometheus": {"config": {"scrape_configs": jobs}}},
        "processors": {"batch": {"timeout": "30s"}},
        "exporters": {"awsemf": {
            "namespace": INFLIGHT_NAMESPACE,
            "log_group_name": metrics_log_group,
            "region": region,
            "dimension_rollup_option": "NoDimensionRollup",
            "metric_declarations": [{
                "dimensions": [list(d) for d in dimensions],
                "metric_name_selectors": [INFLIGHT_RUNNING, INFLIGHT_WAITING],
            }],
        }},
        "service": {"pipelines": {"metrics": {
            "receivers": ["prometheus"], "processors": ["batch"], "exporters": ["awsemf"],
        }}},
    }


def collector_config(inputs: TaskInputs) -> dict[str, Any]:
    """One engine, dimension `ServiceName`."""
    image = inputs.image
    return _collector(
        [ScrapeTarget(image, image.metrics_port, {"ServiceName": inputs.service_name})],
        metrics_log_group=inputs.metrics_log_group, region=inputs.region)


def locked_down(user: str | None, *, read_only: bool = True,
                init: bool | None = None) -> dict[str, Any]:
    """The least-privilege fields of a container definition: `user` (None: the image's, root),
    not privileged, every capability dropped, read-only root filesystem unless `read_only` is
    False; `init` keeps the engine's init process (reaps vLLM's worker processes)."""
    linux: dict[str, Any] = {"capabilities": {"drop": ["ALL"]}}
    if init is not None:
        linux["initProcessEnabled"] = init
    fields: dict[str, Any] = {"privileged": False, "readonlyRootFilesystem": read_only,
                              "linuxParameters": linux}
    if user is not None:
        fields["user"] = user
    return fields


def _scratch(volume: str, path: str) -> dict[str, Any]:
    return {"sourceVolume": volume, "containerPath": path, "readOnly": False}


def volumes_container(log_group: str, region: str) -> dict[str, Any]:
    """Root, no capabilities: chmod 1777 the task volumes (Docker makes them root 0755)."""
    paths = [f"/volumes/{v}" for v in TASK_VOLUMES]
    return {
        "name": VOLUMES_INIT,
        "image": AWS_CLI_IMAGE,  # amazonlinux:2 userland: /bin/sh and chmod (aws/aws-cli
        "essential": False,      # docker/Dockerfile), already pulled for the weights sync
        "entryPoint": ["/bin/sh", "-c"],
        "command": [f"chmod 1777 {' '.join(paths)}"],
        "memoryReservation": VOLUMES_INIT_MEMORY_MIB,
        "mountPoints": [_scratch(v, p) for v, p in zip(TASK_VOLUMES, paths, strict=True)],
        "logConfiguration": _logs(log_group, region, VOLUMES_INIT),
        **locked_down("0"),
    }


_AFTER_VOLUMES = {"containerName": VOLUMES_INIT, "condition": "SUCCESS"}


def _metrics_container(config: dict[str, Any], log_group: str, region: str) -> dict[str, Any]:
    # ADOT is one static binary in a scratch image (aws-otel-collector cmd/awscollector/
    # Dockerfile): it reads its config from the environment and writes nothing.
    return {
        "name": METRICS,
        "image": ADOT_COLLECTOR_IMAGE,
        "essential": False,
        "environment": [{"name": "AOT_CONFIG_CONTENT", "value": json.dumps(config)}],
        # The collector's 256 MiB of SIDECAR_MEMORY_MIB, less what the volumes step reserves
        # (a soft reservation; it exits before the collector's scrapes begin).
        "memoryReservation": 256 - VOLUMES_INIT_MEMORY_MIB,
        "logConfiguration": _logs(log_group, region, METRICS),
        "dependsOn": [dict(_AFTER_VOLUMES)],
        **locked_down(HELPER_USER),
    }


@dataclass(frozen=True)
class EngineSpec:
    """How one engine container of a task is named, where it listens and logs."""

    model: Model
    image: EngineImage
    shape: TaskShape
    engine_name: str = ENGINE
    weights_name: str = WEIGHTS
    log_prefix_engine: str = ENGINE
    log_prefix_weights: str = WEIGHTS
    port: int | None = None  # None: the image's default port
    extra_args: tuple[str, ...] = ()
    #: Engine settings the memory model profiled for the host type; None: the model's own.
    settings: EngineSettings | None = None


def _engine_containers(
    e: EngineSpec, *, region: str, log_group: str, hf_token_secret_arn: str | None
) -> list[dict[str, Any]]:
    """[weights init container (with weightsUri)], engine."""
    model, image, shape = e.model, e.image, e.shape
    spec = model.spec
    port = e.port or image.port
    mount = [_scratch(MODELS_VOLUME, MODELS_PATH)]
    containers: list[dict[str, Any]] = []

    if spec.weights_uri is not None:
        containers.append({
            "name": e.weights_name,
            "image": AWS_CLI_IMAGE,
            "essential": False,
            "command": ["s3", "sync", spec.weights_uri, f"{MODELS_PATH}/{model.name}",
                        "--no-progress", "--only-show-errors"],
            # Not root: HOME (where the CLI would keep its config) is the task's /tmp.
            "environment": [{"name": "AWS_REGION", "value": region},
                            {"name": "HOME", "value": "/tmp"}],
            "memoryReservation": 512,
            "mountPoints": [*mount, _scratch(TMP_VOLUME, "/tmp")],
            "logConfiguration": _logs(log_group, region, e.log_prefix_weights),
            "dependsOn": [dict(_AFTER_VOLUMES)],
            **locked_down(HELPER_USER),
        })

    layout = image.non_root
    environment = [
        {"name": "HF_HOME", "value": f"{MODELS_PATH}/.cache/huggingface"},
        {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
        *({"name": k, "value": v} for k, v in (layout.env() if layout else {}).items()),
    ]
    if layout is not None:
        mount += [_scratch(HOME_VOLUME, layout.home),
                  *(_scratch(TMP_VOLUME, path) for path in layout.scratch)]
    if spec.weights_uri is not None:
        environment.append({"name": "HF_HUB_OFFLINE", "value": "1"})  # never call the Hub
    # Exactly the settings the memory model profiled (components/sizing.py), so what the
    # engine measures at start-up is what the plan promised; autoscaling keeps the *average*
    # in-flight count near `concurrencyTarget`, below `--max-num-seqs`.
    settings = e.settings or model.memory.engine
    command = image.serve_args(
        model=engine_model_ref(model),
        served_model_name=spec.model_id,
        tensor_parallel=model.gpus_per_replica,
        max_input_tokens=spec.max_input_tokens,
        max_total_tokens=settings.max_model_len,
        max_concurrency=settings.max_num_seqs,
        quantization=model.engine_quantization,
        gpu_memory_fraction=settings.gpu_memory_utilization,
        max_batched_tokens=settings.max_num_batched_tokens,
    )
    if port != image.port:  # serve_args writes the image's default port after its flag
        at = command.index(image.flags.port)
        command[at + 1] = str(port)
    engine: dict[str, Any] = {
        "name": e.engine_name,
        "image": image.image,
        "essential": True,
        "entryPoint": list(image.entrypoint),
        "command": command + list(e.extra_args),
        "portMappings": [{"containerPort": port, "protocol": "tcp", "name": e.engine_name
                          if e.engine_name != ENGINE else "http"}],
        "resourceRequirements": [{"type": "GPU", "value": str(model.gpus_per_replica)}],
        "memoryReservation": shape.engine_memory_mib,
        "environment": environment,
        **locked_down(f"{layout.uid}:{layout.gid}" if layout else None,
                      read_only=layout is not None, init=True),
        "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
        "healthCheck": {"command": health_command(image, port),
                        **container_health_timing(shape)},
        "stopTimeout": 120,
        "mountPoints": mount,
        "logConfiguration": _logs(log_group, region, e.log_prefix_engine),
    }
    engine["linuxParameters"]["sharedMemorySize"] = shape.shared_memory_mib
    engine["dependsOn"] = [dict(_AFTER_VOLUMES)]
    if spec.weights_uri is not None:
        engine["dependsOn"].append({"containerName": e.weights_name, "condition": "SUCCESS"})
    if spec.weights_uri is None and hf_token_secret_arn is not None:
        engine["secrets"] = [{"name": "HF_TOKEN", "valueFrom": hf_token_secret_arn}]
    containers.append(engine)
    return containers


def container_definitions(inputs: TaskInputs) -> list[dict[str, Any]]:
    containers = [volumes_container(inputs.log_group, inputs.region)]
    containers += _engine_containers(
        EngineSpec(model=inputs.model, image=inputs.image, shape=inputs.shape),
        region=inputs.region, log_group=inputs.log_group,
        hf_token_secret_arn=inputs.hf_token_secret_arn)
    containers.append(_metrics_container(collector_config(inputs), inputs.log_group,
                                         inputs.region))
    return containers


def shared_container_definitions(
    host: SharedHost,
    *,
    region: str,
    service_name: str,
    log_group: str,
    metrics_log_group: str,
    hf_token_secret_arn: str | None,
) -> list[dict[str, Any]]:
    """A shared task: per model `weights-<model>` (with weightsUri) and `engine-<model>` on its
    own port and GPUs, logging to streams prefixed `<model>/`; one collector for all engines,
    whose gauges carry the dimensions `ServiceName` and `Model`."""
    containers: list[dict[str, Any]] = [volumes_container(log_group, region)]
    targets: list[ScrapeTarget] = []
    for member in host.members:
        model = member.model
        image = ENGINE_IMAGES[model.spec.engine]
        extra: tuple[str, ...] = ()
        if member.master_port is not None:  # TGI: metrics and shard rendezvous ports too
            extra = (TGI_PROMETHEUS_PORT_FLAG, str(member.metrics_port),
                     TGI_MASTER_PORT_FLAG, str(member.master_port))
        containers += _engine_containers(
            EngineSpec(
                model=model, image=image, shape=member.shape,
                engine_name=engine_container_name(model.name),
                weights_name=f"{WEIGHTS}-{model.name}",
                log_prefix_engine=model.name, log_prefix_weights=model.name,
                port=member.port, extra_args=extra,
                settings=estimate_memory(model.request, host.instance).engine,
            ),
            region=region, log_group=log_group,
            hf_token_secret_arn=hf_token_secret_arn if model.spec.weights_uri is None else None,
        )
        targets.append(ScrapeTarget(image, member.metrics_port,
                                    {"ServiceName": service_name, "Model": model.name},
                                    job=model.name))
    containers.append(_metrics_container(
        _collector(targets, metrics_log_group=metrics_log_group, region=region),
        log_group, region))
    return containers


def engine_container_name(model_name: str) -> str:
    return f"{ENGINE}-{model_name}"
