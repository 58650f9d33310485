"""`llm-startup-timeouts`: no health check kills a container while it is still loading its model.

The failure mode: a health check tuned for web services (30 s start, 3 x 10 s probes) restarts a
vLLM container that is still reading 140 GB of weights, forever. Every place that can kill or
replace a starting serving container must allow what the program's own start-up model
(components/startup.py) estimates for that window - the same function the program sets its
timeouts from, so the gate and `pulumi up` cannot disagree:

* Kubernetes startup/liveness probes on GPU containers: the engine container's window;
* ECS service `healthCheckGracePeriodSeconds`: the task's window (a weights sync included);
* SageMaker inference components: `ContainerStartupHealthCheckTimeoutInSeconds` the container's
  window, `ModelDataDownloadTimeoutInSeconds` the model-data copy's, each capped at the API's
  3,600 s maximum (the most SageMaker allows).

The inputs come from the resource's serving tags (model, GPUs per replica, engine) and the
start-up tags `llm-hosting/weights` (`s3` or `hub`) and `llm-hosting/checkpoint` (the stored
weight format). When one is missing (a resource tagged by an older release) the engine, the
source or the format is the slowest the other tags allow: the catalog's format for a catalog id,
else the 16-bit checkpoint `quantization: fp8` may sit on. Never shorter than
`minStartupSeconds` (600 s, the figure AWS uses for LLM containers on SageMaker:
https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-hosting.html).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, get_args

from components.facts.images import EngineName
from components.facts.models import checkpoint_quantization
from components.sizing import Quantization
from components.startup import (
    MIN_STARTUP_SECONDS,
    Platform,
    StartupEstimate,
    WeightsSource,
    estimate_startup,
)
from components.tags import SERVING_TAG_PREFIX as P
from components.tags import SHAPE_TAG
from policies.rules import _catalog as catalog
from policies.rules._framework import (
    ENDPOINT_CONFIGS,
    Resource,
    Rule,
    as_number,
    fmt_seconds,
    get,
    items,
    map_at,
    serving_tags,
)
from policies.rules.secrets import WORKLOAD_TYPES, containers_of, pod_spec

SAGEMAKER_MAX_STARTUP_SECONDS = 3600
"""`ContainerStartupHealthCheckTimeoutInSeconds` / `ModelDataDownloadTimeoutInSeconds` maximum
(botocore's sagemaker model): a requirement above it could never be met."""


def _checkpoints(tags: Mapping[str, str], serving: catalog.Serving) -> tuple[Quantization, ...]:
    """The stored weight format: the tag, else the catalog's for its id, else what the serving
    quantization allows (fp8 runs on an fp8 or a 16-bit checkpoint)."""
    formats = get_args(Quantization)
    tagged = tags.get(f"{P}checkpoint")
    if tagged in formats:
        return (tagged,)  # type: ignore[return-value]
    known = checkpoint_quantization(serving.model_id)
    if known is not None and SHAPE_TAG not in tags:
        return (known,)
    if serving.quantization == "fp8":
        return ("fp8", "none")
    return (serving.quantization,) if serving.quantization in formats else ()  # type: ignore[return-value]


def estimates(props: Mapping[str, Any], platform: Platform) -> list[StartupEstimate]:
    """The start-up estimates the tags allow: one when they say where the weights come from, in
    which format, for which engine; every combination otherwise; [] without a known model."""
    tags = serving_tags(props)
    serving = catalog.serving_from_tags(tags)
    # (the tag ranges already refuse gpus-per-replica < 1: no Serving comes back then)
    if not isinstance(serving, catalog.Serving) or serving.shape is None:
        return []
    weights = tags.get(f"{P}weights")
    engine = tags.get(f"{P}engine")
    sources: tuple[WeightsSource, ...] = (
        (weights,) if weights in get_args(WeightsSource) else get_args(WeightsSource))
    engines: tuple[EngineName, ...] = (
        (engine,) if engine in get_args(EngineName) else get_args(EngineName))
    return [estimate_startup(shape=serving.shape, checkpoint=c,
                             gpus_per_replica=serving.gpus_per_replica, platform=platform,
                             weights=w, engine=e)
            for c in _checkpoints(tags, serving) for w in sources for e in engines]


def required_seconds(props: Mapping[str, Any], config: Mapping[str, Any], platform: Platform,
                     window: str, cap: float | None = None) -> float:
    """`minStartupSeconds`, or the start-up model's `window` (a `StartupEstimate` property) when
    the serving tags name the model; at most `cap` (an API maximum)."""
    floor = float(config["minStartupSeconds"])
    need = max([floor, *(float(getattr(e, window)) for e in estimates(props, platform))])
    return min(need, cap) if cap is not None else need


def _too_short(where: str, value: Any, need: float, what: str) -> Iterable[str]:
    seconds = as_number(value)
    if seconds is None:
        yield f"{where} is unset; set it to at least {fmt_seconds(need)} so {what}"
    elif seconds < need:
        yield f"{where} is {fmt_seconds(seconds)}; set it to at least {fmt_seconds(need)} so {what}"


_LOAD = "the model can load before the first health check counts"
_DOWNLOAD = "SageMaker can copy the model data to the instance"


def check_endpoint_config(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    need = required_seconds(resource.props, config, "sagemaker", "container_seconds",
                            SAGEMAKER_MAX_STARTUP_SECONDS)
    for i, v in enumerate(items(get(resource.props, "productionVariants"))):
        # Inference-component mode (no modelName): the timeouts live on each component, but a
        # value set here must not be shorter.
        ic_mode = not get(v, "modelName")
        for key in ("containerStartupHealthCheckTimeoutInSeconds",
                    "modelDataDownloadTimeoutInSeconds"):
            if ic_mode and get(v, key) is None:
                continue
            yield from _too_short(f"productionVariants[{i}].{key}", get(v, key), need, _LOAD)


def check_inference_component(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    params = get(resource.props, "specification", "startupParameters", default={})
    for key, window, what in (
            ("containerStartupHealthCheckTimeoutInSeconds", "container_seconds", _LOAD),
            ("modelDataDownloadTimeoutInSeconds", "model_download_seconds", _DOWNLOAD)):
        need = required_seconds(resource.props, config, "sagemaker", window,
                                SAGEMAKER_MAX_STARTUP_SECONDS)
        yield from _too_short(f"specification.startupParameters.{key}", get(params, key), need,
                              what)


def check_ecs_service(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # The grace period is the one ECS knob that covers both the load balancer's and the
    # container's own health checks: "the Amazon ECS service scheduler ignores unhealthy Elastic
    # Load Balancing, VPC Lattice, and container health checks after a task has first started"
    # (CreateService, healthCheckGracePeriodSeconds). A container healthCheck's startPeriod is
    # capped at 300 s, so the grace period is where a 10-minute model load is allowed for.
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
    if not items(get(resource.props, "loadBalancers")) and \
            not serving_tags(resource.props):
        return
    if get(resource.props, "launchType") == "FARGATE" and not serving_tags(resource.props):
        return  # Fargate has no GPUs: no model loads there (the stack's gateway runs there)
    need = required_seconds(resource.props, config, "ecs", "task_seconds")
    yield from _too_short("healthCheckGracePeriodSeconds",
                          get(resource.props, "healthCheckGracePeriodSeconds"), need,
                          "ECS does not replace tasks whose health checks fail while the model "
                          "loads")


def _requests_gpu(container: Any) -> bool:
    resources = map_at(container, "resources")
    return any("nvidia.com/gpu" in map_at(resources, k) for k in ("limits", "requests"))


def _probe_budget(probe: Any) -> float:
    # Kubernetes defaults: initialDelaySeconds 0, periodSeconds 10, failureThreshold 3.
    # https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/
    delay = as_number(get(probe, "initialDelaySeconds")) or 0.0
    period = as_number(get(probe, "periodSeconds")) or 10.0
    failures = as_number(get(probe, "failureThreshold")) or 3.0
    return delay + period * failures


def check_pod_probes(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    kind = resource.type.rsplit(":", 1)[-1]
    need = required_seconds(resource.props, config, "eks", "container_seconds")
    for _, c in containers_of(pod_spec(resource.props, kind)):
        if not _requests_gpu(c):
            continue
        name = get(c, "name", default="?")
        startup, liveness = get(c, "startupProbe"), get(c, "livenessProbe")
        probe, label = (startup, "startupProbe") if startup else (liveness, "livenessProbe")
        if not probe:
            continue  # readiness alone never restarts a container
        budget = _probe_budget(probe)
        if budget < need:
            yield (f"container {name}: {label} restarts it after {fmt_seconds(budget)} "
                   f"(initialDelaySeconds + periodSeconds x failureThreshold); the model needs "
                   f"{fmt_seconds(need)}: give it a startupProbe that covers the load")


LLM_STARTUP_TIMEOUTS = Rule(
    name="llm-startup-timeouts",
    description=(
        "SageMaker start-up timeouts, ECS health-check grace periods and Kubernetes startup "
        "probes cover the time a model takes to load."
    ),
    checks={
        **dict.fromkeys(ENDPOINT_CONFIGS, check_endpoint_config),
        "aws-native:sagemaker:InferenceComponent": check_inference_component,
        "aws:ecs/service:Service": check_ecs_service,
        "aws-native:ecs:Service": check_ecs_service,
        **dict.fromkeys(WORKLOAD_TYPES, check_pod_probes),
    },
    config={
        "minStartupSeconds": {
            "type": "number",
            "minimum": 0,
            "default": MIN_STARTUP_SECONDS,
            "description": "shortest start-up allowance for any serving container; longer "
                           "where the start-up model (components/startup.py) estimates more",
        },
    },
)

RULES = [LLM_STARTUP_TIMEOUTS]
