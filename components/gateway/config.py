"""The gateway's configuration, generated from the stack config (never hand-written YAML).

Pure functions, no Pulumi: `gateway_plan` turns a `StackConfig` into what every platform shares
(routes, fallback chains, retries, timeouts, the wait bound per model, the load balancer idle
timeout that bound needs); `litellm_config` renders LiteLLM's proxy config from the plan plus how
the platform reaches each model (`openai_backend`, `sagemaker_backend`; Bedrock targets are
built here). The hooks file (`hooks/llm_hosting_gateway.py`) reads its own section of the same
config, `llm_hosting_gateway`.

LiteLLM settings and why (litellm 1.108.7, `router.py`):
* `router_settings.num_retries: 0` and per-deployment `num_retries`: a model with fallbacks is
  not retried (its fallback is the retry, taken at once); a model without one is retried
  `RETRIES` times with LiteLLM's exponential backoff (0.5 s doubling, capped at 8 s) on 408,
  429, 5xx and timeouts.
* `disable_cooldowns: true`: LiteLLM's cooldown is a per-minute failure rate and never applies
  to a model group of one deployment (ours); the hooks' circuit breaker replaces it.
* `drop_params: true`: a fallback to another engine or to Bedrock must not fail on an OpenAI
  parameter that backend does not take.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.config import BEDROCK_PREFIX, MAX_WAKE_TIMEOUT_SECONDS, Model, StackConfig
from components.facts import bedrock
from components.startup import estimate_for_model

HOOKS_MODULE = "llm_hosting_gateway"
HOOKS_FILE = Path(__file__).with_name("hooks") / f"{HOOKS_MODULE}.py"
HOOKS_INSTANCE = f"{HOOKS_MODULE}.gateway_hooks"
CONFIG_FILE = "config.yaml"
SETTINGS_KEY = "llm_hosting_gateway"

PORT = 4000
"""LiteLLM's default proxy port (the image's `CMD ["--port", "4000"]`)."""
METRICS_PORT = 9464
"""The hooks' Prometheus endpoint (OpenTelemetry's Prometheus exporter default port)."""
HEALTH_PATH = "/health/liveliness"
"""Answers 200 once the proxy serves, without calling any model (`/health` calls every model).
https://docs.litellm.ai/docs/proxy/health"""
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"

RETRIES = 2
"""Retries of a model without fallbacks on 408/429/5xx/timeouts (LiteLLM's backoff)."""
MIN_DECODE_TOKENS_PER_SECOND = 10
"""Floor on one sequence's decode speed under load, as the platforms' latency budgets assume;
a non-streaming request may take its full output at this rate before it times out."""
REQUEST_TIMEOUT_FLOOR_SECONDS = 60
TIME_TO_FIRST_TOKEN_SECONDS = 120
"""`stream_timeout`: the longest silence on a stream (a long prompt's prefill on a busy replica)."""
BEDROCK_TIMEOUT_SECONDS = 600

PROBE_INTERVAL_SECONDS = 5
PROBE_TIMEOUT_SECONDS = 30
READY_TTL_SECONDS = 300
"""A model that scales to zero is confirmed with a one-token probe once it has been idle this
long: shorter than any platform's scale-in to zero (SageMaker and ECS scale in after 600 s,
KEDA after 1800 s), so a request never lands on a model that went to zero unnoticed."""
WAITING_WINDOW_SECONDS = 60
CLOUDWATCH_NAMESPACE = "LLMHosting/Gateway"
CLOUDWATCH_INTERVAL_SECONDS = 10

MIN_IDLE_TIMEOUT_SECONDS = 600
MAX_IDLE_TIMEOUT_SECONDS = 4000
"""ALB idle timeout range we use: at least the 600 s the stack's ALBs already use for long
non-streaming completions, at most the ALB maximum (4000 s)."""

# -- the wait bound --------------------------------------------------------------------------

CAPACITY_SECONDS: Mapping[str, int] = {"sagemaker": 300, "eks": 120, "ecs": 120}
"""The margin on top of the start-up model, which starts from a running instance: getting the
instance. SageMaker provisions an ml instance for a component at zero ("several minutes",
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html);
Karpenter launches a GPU node and it joins the cluster (about a minute, more for large GPU
types); ECS starts a stopped warm-pool instance and its agent registers (about a minute)."""


def startup_estimate_seconds(config: StackConfig, model: Model) -> int:
    """How long `model` takes from a fresh instance to answering on this platform: the project's
    start-up time model (components/startup.py, margin included)."""
    return estimate_for_model(model, config.platform).total_seconds


def wait_bound_seconds(config: StackConfig, model: Model) -> int:
    """How long a request for `model` is held while it wakes: `gateway.wakeTimeoutSeconds`, or
    the start-up estimate plus the time to get an instance, never past what the load balancer
    allows."""
    if config.gateway.wake_timeout_seconds is not None:
        return config.gateway.wake_timeout_seconds
    return min(MAX_WAKE_TIMEOUT_SECONDS,
               startup_estimate_seconds(config, model) + CAPACITY_SECONDS[config.platform])


def request_timeout_seconds(model: Model) -> int:
    """A non-streaming request may take its whole output at the decode floor."""
    new_tokens = model.spec.max_total_tokens - model.spec.max_input_tokens
    return max(REQUEST_TIMEOUT_FLOOR_SECONDS,
               30 + math.ceil(new_tokens / MIN_DECODE_TOKENS_PER_SECOND))


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One model as the gateway serves it."""

    name: str
    served_model_name: str
    fallbacks: tuple[str, ...]
    wait_bound_seconds: int
    retry_after_seconds: int
    timeout_seconds: int
    scales_to_zero: bool

    @property
    def num_retries(self) -> int:
        return 0 if self.fallbacks else RETRIES


@dataclass(frozen=True)
class GatewayPlan:
    routes: tuple[Route, ...]
    bedrock_targets: tuple[str, ...]
    """`bedrock:<id or ARN>` targets named by any model's fallbacks, in first-use order."""
    aliases: Mapping[str, str]
    """Hugging Face id -> model name, for ids only one model serves (clients may send either)."""
    region: str
    replicas: int
    failures: int
    cooldown_seconds: int
    idle_timeout_seconds: int
    """The load balancer idle timeout: a held non-streaming request sends no byte for its wait
    bound plus its generation, so the timeout covers the longest such pair (within ALB limits)."""

    @property
    def max_wait_bound_seconds(self) -> int:
        return max(r.wait_bound_seconds for r in self.routes)

    def route(self, name: str) -> Route:
        return next(r for r in self.routes if r.name == name)


def gateway_plan(config: StackConfig) -> GatewayPlan:
    routes = []
    for model in config.models:
        bound = wait_bound_seconds(config, model)
        routes.append(Route(
            name=model.name,
            served_model_name=model.spec.model_id,
            fallbacks=tuple(model.spec.fallbacks),
            wait_bound_seconds=bound,
            retry_after_seconds=max(5, min(60, bound // 10)),
            timeout_seconds=request_timeout_seconds(model),
            scales_to_zero=model.spec.min_replicas == 0,
        ))
    targets = tuple(dict.fromkeys(t for r in routes for t in r.fallbacks
                                  if t.startswith(BEDROCK_PREFIX)))
    ids = [m.spec.model_id for m in config.models]
    aliases = {m.spec.model_id: m.name for m in config.models
               if ids.count(m.spec.model_id) == 1 and m.spec.model_id != m.name}
    longest = max(r.wait_bound_seconds + r.timeout_seconds for r in routes)
    return GatewayPlan(
        routes=tuple(routes),
        bedrock_targets=targets,
        aliases=aliases,
        region=config.region,
        replicas=config.gateway.replicas,
        failures=config.gateway.circuit_breaker.failures,
        cooldown_seconds=config.gateway.circuit_breaker.cooldown_seconds,
        idle_timeout_seconds=min(MAX_IDLE_TIMEOUT_SECONDS,
                                 max(MIN_IDLE_TIMEOUT_SECONDS, longest)),
    )


# -- backends -----------------------------------------------------------------------------------


def openai_backend(route: Route, api_base: str) -> dict[str, Any]:
    """An OpenAI-compatible engine (vLLM, TGI) at `api_base` (ending in `/v1`), which serves the
    model under its Hugging Face id; the engines have no auth, so the key is a placeholder."""
    return {"model": f"openai/{route.served_model_name}", "api_base": api_base,
            "api_key": "unused"}


def sagemaker_backend(endpoint_name: str, inference_component_name: str,
                      region: str) -> dict[str, Any]:
    """An inference component through SageMaker Runtime's InvokeEndpoint (SigV4, the component in
    the `X-Amzn-SageMaker-Inference-Component` header), with the chat (Messages API) body both
    DLCs accept. https://docs.litellm.ai/docs/providers/aws_sagemaker"""
    return {"model": f"sagemaker_chat/{endpoint_name}", "model_id": inference_component_name,
            "aws_region_name": region}


def bedrock_backend(target: str, region: str) -> dict[str, Any]:
    """`bedrock:<id or ARN>` through Bedrock's Converse API in the stack's region."""
    return {"model": f"bedrock/converse/{target[len(BEDROCK_PREFIX):]}", "aws_region_name": region}


def bedrock_resource_arns(target: str, region: str, partition: str, account: str) -> list[str]:
    """What IAM must allow to invoke a Bedrock target: the model or profile itself, and for a
    cross-Region inference profile also the foundation model it routes to, in any Region the
    profile may pick (Bedrock authorizes both).
    https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html"""
    ref = target[len(BEDROCK_PREFIX):]
    if bedrock.MODEL_ARN.match(ref):
        return [ref]
    match = bedrock.MODEL_ID.match(ref)
    if match is None:
        raise ValueError(f"not a Bedrock model id or ARN: {ref!r}")
    base = match.group("base")
    if match.group("geo") is None:
        return [f"arn:{partition}:bedrock:{region}::foundation-model/{base}"]
    return [f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{ref}",
            f"arn:{partition}:bedrock:*::foundation-model/{base}"]


# -- the LiteLLM config -----------------------------------------------------------------------


def hooks_settings(plan: GatewayPlan, *, cloudwatch: Mapping[str, Any] | None = None,
                   metrics_port: int | None = METRICS_PORT) -> dict[str, Any]:
    """The `llm_hosting_gateway` section the hooks read (`Settings.from_mapping`)."""
    models: dict[str, Any] = {r.name: {
        "wait_bound_seconds": r.wait_bound_seconds,
        "retry_after_seconds": r.retry_after_seconds,
        "fallbacks": list(r.fallbacks),
        "scales_to_zero": r.scales_to_zero,
    } for r in plan.routes}
    for target in plan.bedrock_targets:
        models[target] = {"wait_bound_seconds": 0, "retry_after_seconds": 30, "fallbacks": []}
    settings: dict[str, Any] = {
        "circuit": {"failures": plan.failures, "cooldown_seconds": plan.cooldown_seconds},
        "probe": {"interval_seconds": PROBE_INTERVAL_SECONDS,
                  "timeout_seconds": PROBE_TIMEOUT_SECONDS},
        "ready_ttl_seconds": READY_TTL_SECONDS,
        "waiting_window_seconds": WAITING_WINDOW_SECONDS,
        "models": models,
        "aliases": dict(plan.aliases),
    }
    if metrics_port is not None:
        settings["metrics"] = {"port": metrics_port}
    if cloudwatch is not None:
        settings["cloudwatch"] = dict(cloudwatch)
    return settings


def cloudwatch_settings(plan: GatewayPlan, stack_prefix: str) -> dict[str, Any]:
    """Where Fargate gateways publish their metrics (alarms and dashboards read the same)."""
    return {"namespace": CLOUDWATCH_NAMESPACE, "region": plan.region,
            "interval_seconds": CLOUDWATCH_INTERVAL_SECONDS,
            "dimensions": {"Stack": stack_prefix}}


def litellm_config(plan: GatewayPlan, backends: Mapping[str, Mapping[str, Any]], *,
                   cloudwatch: Mapping[str, Any] | None = None,
                   metrics_port: int | None = METRICS_PORT) -> dict[str, Any]:
    """LiteLLM's proxy config: one model group per model (named as in the stack) plus one per
    Bedrock target, fallbacks per model, and our hooks' settings.

    `backends` maps each model name to how the platform reaches it (`openai_backend`,
    `sagemaker_backend`).
    """
    missing = sorted({r.name for r in plan.routes} - set(backends))
    if missing:
        raise ValueError(f"no backend for model(s) {', '.join(missing)}")
    model_list = [{
        "model_name": r.name,
        "litellm_params": {**backends[r.name], "timeout": r.timeout_seconds,
                           "stream_timeout": TIME_TO_FIRST_TOKEN_SECONDS,
                           "num_retries": r.num_retries},
        "model_info": {"id": r.name},
    } for r in plan.routes]
    model_list += [{
        "model_name": t,
        "litellm_params": {**bedrock_backend(t, plan.region), "timeout": BEDROCK_TIMEOUT_SECONDS,
                           "stream_timeout": TIME_TO_FIRST_TOKEN_SECONDS,
                           "num_retries": RETRIES},
        "model_info": {"id": t},
    } for t in plan.bedrock_targets]
    router: dict[str, Any] = {"num_retries": 0, "disable_cooldowns": True}
    fallbacks = [{r.name: list(r.fallbacks)} for r in plan.routes if r.fallbacks]
    if fallbacks:
        router["fallbacks"] = fallbacks
    if plan.aliases:
        router["model_group_alias"] = dict(plan.aliases)
    return {
        "model_list": model_list,
        "router_settings": router,
        # Prompts and completions never reach a log or callback payload (our hooks need only
        # the model and the outcome); there is no database, so no spend rows are built either.
        "litellm_settings": {"callbacks": HOOKS_INSTANCE, "drop_params": True,
                             "turn_off_message_logging": True},
        "general_settings": {"master_key": f"os.environ/{MASTER_KEY_ENV}",
                             "disable_spend_logs": True},
        SETTINGS_KEY: hooks_settings(plan, cloudwatch=cloudwatch, metrics_port=metrics_port),
    }


def render(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False, width=100)


def hooks_source() -> str:
    """The hooks file, shipped byte for byte next to the config."""
    return HOOKS_FILE.read_text()


def bundle(config_yaml: str) -> dict[str, str]:
    """The files the gateway container needs in its config directory."""
    return {CONFIG_FILE: config_yaml, f"{HOOKS_MODULE}.py": hooks_source()}


def proxy_args(config_dir: str) -> list[str]:
    """Arguments after the image's entrypoint (`docker/prod_entrypoint.sh`, which runs
    `litellm "$@"`)."""
    return ["--config", f"{config_dir}/{CONFIG_FILE}", "--host", "0.0.0.0", "--port", str(PORT)]


def route_names(plan: GatewayPlan) -> Sequence[str]:
    return [r.name for r in plan.routes]


# -- sizing and cost ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSize:
    """One gateway replica. The proxy holds a few hundred MiB of Python and LiteLLM's model map
    plus one small buffer per in-flight request: 1 vCPU / 2 GiB serves hundreds of concurrent
    LLM requests (each mostly waits on its backend); scale-out on CPU adds replicas."""

    cpu_units: int
    memory_mib: int
    architecture: str

    @property
    def vcpu(self) -> float:
        return self.cpu_units / 1024


FARGATE_TASK = TaskSize(cpu_units=1024, memory_mib=2048, architecture="X86_64")
"""A valid Fargate size (1 vCPU: 2-8 GiB). x86_64, the architecture the pinned non-root image is
known to be built for (components/facts/images.py); ARM64 Fargate would cost ~20% less once
that build is confirmed multi-arch.
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html"""
POD_CPU_REQUEST = "500m"
POD_CPU_LIMIT = "1"
"""A cap on the system nodes' shared CPUs: the HPA adds replicas at 60% of the request, long
before a replica reaches it."""
POD_MEMORY = "1Gi"
POD_MEMORY_LIMIT = "2Gi"
MAX_REPLICAS_FACTOR = 3
MAX_REPLICAS_CEILING = 20


def max_replicas(replicas: int) -> int:
    """CPU autoscaling ceiling: three times the floor, at most 20."""
    return min(MAX_REPLICAS_CEILING, max(replicas, replicas * MAX_REPLICAS_FACTOR))


def gateway_cost(config: StackConfig) -> dict[str, Any] | None:
    """The gateway's size and what its replica floor adds to the bill (None when it is off).
    `plan`'s fixed costs count the same tasks (and any load balancer) from the graph."""
    from components.facts import fixed_costs

    if not config.gateway_enabled:
        return None
    replicas = config.gateway.replicas
    if config.platform == "eks":
        return {"runsOn": "eks system nodes", "replicas": replicas,
                "podRequests": {"cpu": POD_CPU_REQUEST, "memory": POD_MEMORY},
                "hourlyUsd": 0.0, "monthlyUsd": 0.0,
                "pricesAsOf": fixed_costs.FIXED_PRICES_AS_OF,
                "note": "pods share the system node group, which is billed already"}
    task = FARGATE_TASK
    hourly = replicas * fixed_costs.fargate_task_usd_per_hour(
        task.vcpu, task.memory_mib / 1024, task.architecture)
    return {"runsOn": f"fargate ({task.architecture})", "replicas": replicas,
            "task": {"vcpu": task.vcpu, "memoryMiB": task.memory_mib},
            "hourlyUsd": round(hourly, 4),
            "monthlyUsd": round(hourly * fixed_costs.HOURS_PER_MONTH, 2),
            "pricesAsOf": fixed_costs.FIXED_PRICES_AS_OF,
            "note": ("its own internal ALB is in the fixed costs" if config.platform == "sagemaker"
                     else "behind the stack's ALB")}
