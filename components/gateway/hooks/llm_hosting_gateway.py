"""llm-hosting's hooks for the LiteLLM proxy: circuit breaker, holding while a model wakes,
fallback bookkeeping and the metrics that wake models from zero.

Shipped unchanged next to the proxy's `config.yaml` (a ConfigMap on EKS, SSM parameters written
by the start command on Fargate) and loaded by `litellm_settings.callbacks:
llm_hosting_gateway.gateway_hooks`; its settings are the config's `llm_hosting_gateway` section.
Imports only the standard library, PyYAML, litellm and fastapi (the proxy's own), and boto3 for
CloudWatch: everything is in the pinned image, so no image is built.

What LiteLLM 1.108.7 does itself, and why this module exists (read in its source):
* Cooldown (`router_utils/cooldown_handlers.py`) is a failure *rate* per minute, and a model
  group with a single deployment is never cooled down (`_should_cooldown_deployment`'s base
  case); ours has one deployment per model, so the config turns it off (`disable_cooldowns`) and
  `Breaker` below counts consecutive failures per backend instead.
* Retries (`Router.async_function_with_retries`) are count-based with a backoff capped at
  `MAX_RETRY_DELAY` (8 s, `calculate_retry_after`): nothing waits for a deadline. Held requests
  wait here, in `async_filter_deployments`, which the router awaits before every pick.
* Fallbacks (`router_settings.fallbacks`) are LiteLLM's: returning no deployment from the filter
  makes the router fail over at once, without calling a backend known to be down or asleep.
* No metric says how many requests wait for a model; `Metrics` serves it (Prometheus text on its
  own port, and CloudWatch when configured), so autoscalers can wake a model from zero.

State lives in this process: every gateway replica keeps its own circuits, holds and counts.

No `from __future__ import annotations`: the proxy executes this file without registering it in
`sys.modules`, where `dataclasses` looks up string annotations.
"""

import asyncio
import collections
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("llm_hosting_gateway")

SETTINGS_KEY = "llm_hosting_gateway"
CONFIG_ENV = "LLM_HOSTING_GATEWAY_CONFIG"
PROBE_TAG = "llm_hosting_probe"
UNAVAILABLE_TAG = "llm_hosting_unavailable"
ARRIVAL_TAG = "llm_hosting_arrival"

WAKING, FAILURE, NEUTRAL = "waking", "failure", "neutral"
# SageMaker answers 400 "Inference Component has no capacity to process this request" while an
# inference component has no copy; Bedrock custom models raise ModelNotReadyException while
# they load. Both mean "asleep", not "broken".
_WAKING_TEXT = re.compile(r"no capacity|ModelNotReady|model is not ready", re.IGNORECASE)
HOLD_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600)


def classify(exc: BaseException) -> str:
    """What a backend's failure says about it: `waking` (not serving yet: at zero, starting),
    `failure` (counts toward opening its circuit), or `neutral` (the backend answered; the
    request itself was wrong)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"Timeout", "APITimeoutError"}:
        return FAILURE
    if "APIConnectionError" in names:  # refused or reset: nothing listens (no pod, no task)
        return WAKING
    status = getattr(exc, "status_code", None)
    if status == 503 or _WAKING_TEXT.search(str(exc)):
        return WAKING
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return NEUTRAL
    return FAILURE


# --------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ModelPolicy:
    wait_bound_seconds: float
    retry_after_seconds: int
    fallbacks: tuple[str, ...] = ()
    scales_to_zero: bool = False


@dataclass(frozen=True)
class Settings:
    failures: int = 3
    cooldown_seconds: float = 10.0
    probe_interval_seconds: float = 5.0
    probe_timeout_seconds: float = 30.0
    ready_ttl_seconds: float = 300.0
    waiting_window_seconds: float = 60.0
    metrics_port: int | None = None
    cloudwatch: Mapping[str, Any] | None = None
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def from_mapping(raw: Mapping[str, Any]) -> "Settings":
        circuit, probe = raw.get("circuit", {}), raw.get("probe", {})
        return Settings(
            failures=int(circuit.get("failures", 3)),
            cooldown_seconds=float(circuit.get("cooldown_seconds", 10)),
            probe_interval_seconds=float(probe.get("interval_seconds", 5)),
            probe_timeout_seconds=float(probe.get("timeout_seconds", 30)),
            ready_ttl_seconds=float(raw.get("ready_ttl_seconds", 300)),
            waiting_window_seconds=float(raw.get("waiting_window_seconds", 60)),
            metrics_port=raw.get("metrics", {}).get("port"),
            cloudwatch=raw.get("cloudwatch"),
            models={name: ModelPolicy(
                wait_bound_seconds=float(m["wait_bound_seconds"]),
                retry_after_seconds=int(m.get("retry_after_seconds", 30)),
                fallbacks=tuple(m.get("fallbacks", ())),
                scales_to_zero=bool(m.get("scales_to_zero", False)),
            ) for name, m in raw.get("models", {}).items()},
            aliases=dict(raw.get("aliases", {})),
        )

    @staticmethod
    def load(path: str | os.PathLike[str] | None = None) -> "Settings":
        """The `llm_hosting_gateway` section of the proxy config next to this file."""
        where = Path(path or os.environ.get(CONFIG_ENV) or Path(__file__).with_name("config.yaml"))
        return Settings.from_mapping(yaml.safe_load(where.read_text()).get(SETTINGS_KEY, {}))


# ---------------------------------------------------------------------------------- breaker


@dataclass
class Backend:
    failures: int = 0
    open_until: float = 0.0
    trial: bool = False
    waking: bool = False
    ready_at: float = 0.0
    last_demand: float = 0.0
    opens: int = 0


class Breaker:
    """Per-backend circuit: closed -> (N consecutive failures) open for the cooldown -> one trial
    (half-open) -> closed on success, open again on failure. A backend that says it is asleep
    (`waking`) is not opened: it is usable again as soon as a probe gets an answer."""

    def __init__(self, failures: int, cooldown: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.cooldown, self.clock = failures, cooldown, clock
        self.backends: dict[str, Backend] = collections.defaultdict(Backend)
        self._events: dict[str, asyncio.Event] = {}

    def state(self, name: str) -> str:
        b = self.backends[name]
        if b.waking:
            return "waking"
        if not b.open_until:
            return "closed"
        return "open" if self.clock() < b.open_until else "half-open"

    def acquire(self, name: str) -> bool:
        """May a request use the backend now? Claims the single half-open trial."""
        b = self.backends[name]
        if b.waking:
            return False
        if not b.open_until:
            return True
        if self.clock() < b.open_until or b.trial:
            return False
        b.trial = True
        return True

    def on_success(self, name: str) -> None:
        b = self.backends[name]
        b.failures, b.open_until, b.trial, b.waking = 0, 0.0, False, False
        b.ready_at = self.clock()
        self._notify(name)

    def on_failure(self, name: str, kind: str) -> None:
        if kind == NEUTRAL:  # it answered: alive, whatever the request's own problem was
            self.on_success(name)
            return
        b = self.backends[name]
        was_trial, b.trial = b.trial, False
        if kind == WAKING:
            b.waking = True
            return
        b.failures += 1
        if was_trial or b.failures >= self.failures:
            b.opens += 0 if b.open_until and was_trial else 1
            b.open_until = self.clock() + self.cooldown

    def retry_after(self, name: str) -> int:
        return max(1, math.ceil(self.backends[name].open_until - self.clock()))

    def event(self, name: str) -> asyncio.Event:
        if name not in self._events:
            self._events[name] = asyncio.Event()
        return self._events[name]

    def _notify(self, name: str) -> None:
        event = self._events.pop(name, None)
        if event is not None:
            event.set()


# ---------------------------------------------------------------------------------- metrics


class Metrics:
    """Counters and gauges per model; read by the Prometheus endpoint and the CloudWatch
    publisher threads, written by the proxy's event loop (hence the lock)."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.clock = window, clock
        self.lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.fallbacks: collections.Counter[str] = collections.Counter()
        self.held_total: collections.Counter[str] = collections.Counter()
        self.hold_timeouts: collections.Counter[str] = collections.Counter()
        self.held: collections.Counter[str] = collections.Counter()
        self.diverted: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        self.hold_sum: collections.Counter[str] = collections.Counter()
        self.hold_buckets: dict[str, list[int]] = collections.defaultdict(
            lambda: [0] * len(HOLD_BUCKETS))
        self.hold_samples: dict[str, list[float]] = collections.defaultdict(list)
        self.circuit: dict[str, str] = {}

    def count(self, counter: collections.Counter[str], model: str, n: int = 1) -> None:
        with self.lock:
            counter[model] += n

    def divert(self, model: str) -> None:
        with self.lock:
            self.diverted[model].append(self.clock())

    def hold_started(self, model: str) -> None:
        with self.lock:
            self.held[model] += 1
            self.held_total[model] += 1

    def hold_ended(self, model: str, seconds: float, timed_out: bool) -> None:
        with self.lock:
            self.held[model] -= 1
            self.hold_sum[model] += seconds
            self.hold_samples[model].append(seconds)
            for i, le in enumerate(HOLD_BUCKETS):
                if seconds <= le:
                    self.hold_buckets[model][i] += 1
            if timed_out:
                self.hold_timeouts[model] += 1

    def waiting(self, model: str) -> int:
        """Requests held now, plus those that found the model unavailable and went to a fallback
        within the window: the demand a model at zero has, which wakes it."""
        with self.lock:
            recent = self.diverted.get(model)
            cutoff = self.clock() - self.window
            while recent and recent[0] < cutoff:
                recent.popleft()
            return self.held[model] + (len(recent) if recent else 0)

    def models(self) -> set[str]:
        with self.lock:
            return {*self.requests, *self.held_total, *self.diverted, *self.fallbacks}

    def prometheus(self) -> str:
        names = sorted(self.models())
        waiting = {m: self.waiting(m) for m in names}
        out: list[str] = []

        def family(name: str, kind: str, help_: str,
                   values: Iterable[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{{{labels}}} {value:g}" for labels, value in values)

        with self.lock:
            family("llm_gateway_requests_total", "counter", "requests per requested model",
                   ((f'model="{m}"', self.requests[m]) for m in names))
            family("llm_gateway_fallbacks_total", "counter",
                   "requests answered by a fallback target instead of their model",
                   ((f'model="{m}"', self.fallbacks[m]) for m in names))
            family("llm_gateway_requests_held", "gauge", "requests held now for their model",
                   ((f'model="{m}"', self.held[m]) for m in names))
            family("llm_gateway_hold_timeouts_total", "counter",
                   "held requests answered 503 at the wait bound",
                   ((f'model="{m}"', self.hold_timeouts[m]) for m in names))
            buckets = []
            for m in names:
                cumulative = self.hold_buckets[m] if m in self.hold_buckets else [0] * len(
                    HOLD_BUCKETS)
                buckets += [(f'model="{m}",le="{le}"', cumulative[i])
                            for i, le in enumerate(HOLD_BUCKETS)]
                buckets.append((f'model="{m}",le="+Inf"', self.held_total[m] - self.held[m]))
            out.append("# HELP llm_gateway_hold_seconds time requests were held")
            out.append("# TYPE llm_gateway_hold_seconds histogram")
            out.extend(f"llm_gateway_hold_seconds_bucket{{{lab}}} {v:g}" for lab, v in buckets)
            out.extend(f'llm_gateway_hold_seconds_sum{{model="{m}"}} {self.hold_sum[m]:g}'
                       for m in names)
            out.extend(f'llm_gateway_hold_seconds_count{{model="{m}"}} '
                       f"{self.held_total[m] - self.held[m]:g}" for m in names)
            circuit = dict(self.circuit)
        family("llm_gateway_requests_waiting", "gauge",
               "requests held now plus those diverted to a fallback in the last window",
               ((f'model="{m}"', waiting[m]) for m in names))
        codes = {"closed": 0, "open": 1, "half-open": 2, "waking": 3}
        family("llm_gateway_circuit_state", "gauge",
               "per backend: 0 closed, 1 open, 2 half-open, 3 waking",
               ((f'backend="{b}"', codes[s]) for b, s in sorted(circuit.items())))
        return "\n".join(out) + "\n"


def serve_prometheus(metrics: Metrics, port: int) -> ThreadingHTTPServer | None:
    """`GET /metrics` on its own port, in a daemon thread: no route on the proxy's API port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server calls do_GET
            body = metrics.prometheus().encode()
            self.send_response(200 if self.path.startswith("/metrics") else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    try:
        server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # scraped over the pod network
    except OSError:  # a second import in the same process: the first server already serves
        log.warning("llm-hosting gateway: metrics port %s in use; not serving it twice", port)
        return None
    threading.Thread(target=server.serve_forever, name="llm-gateway-metrics",
                     daemon=True).start()
    return server


class CloudWatchPublisher:
    """PutMetricData every `interval_seconds` (high-resolution `RequestsWaiting`, so a 10 s
    alarm can wake a model), from a daemon thread; failures are logged, never raised."""

    def __init__(self, metrics: Metrics, settings: Mapping[str, Any],
                 circuit: Callable[[], Mapping[str, str]], client: Any = None,
                 start: bool = True) -> None:
        self.metrics, self.settings, self.circuit = metrics, settings, circuit
        self.sent: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)
        if client is None:
            import boto3  # in the image; imported here so a gateway without CloudWatch skips it

            client = boto3.client("cloudwatch", region_name=settings["region"])
        self.client = client
        if start:
            threading.Thread(target=self._run, name="llm-gateway-cloudwatch",
                             daemon=True).start()

    def _delta(self, name: str, counter: collections.Counter[str], model: str) -> float:
        value = counter[model] - self.sent[name][model]
        self.sent[name][model] = counter[model]
        return float(value)

    def datums(self) -> list[dict[str, Any]]:
        dims = [{"Name": k, "Value": v} for k, v in self.settings.get("dimensions", {}).items()]
        m = self.metrics
        out: list[dict[str, Any]] = []
        for model in sorted(m.models() | set(self.settings.get("models", ()))):
            d = [*dims, {"Name": "Model", "Value": model}]
            out.append({"MetricName": "RequestsWaiting", "Dimensions": d,
                        "Value": float(m.waiting(model)), "Unit": "Count",
                        "StorageResolution": 1})
            with m.lock:
                for name, counter in (("Requests", m.requests), ("Fallbacks", m.fallbacks),
                                      ("HeldRequests", m.held_total),
                                      ("HoldTimeouts", m.hold_timeouts)):
                    out.append({"MetricName": name, "Dimensions": d, "Unit": "Count",
                                "Value": self._delta(name, counter, model)})
                samples, m.hold_samples[model] = m.hold_samples.get(model, []), []
            if samples:
                out.append({"MetricName": "HoldSeconds", "Dimensions": d, "Unit": "Seconds",
                            "StatisticValues": {"SampleCount": float(len(samples)),
                                                "Sum": sum(samples), "Minimum": min(samples),
                                                "Maximum": max(samples)}})
        for backend, state in self.circuit().items():
            out.append({"MetricName": "CircuitOpen", "Unit": "Count",
                        "Dimensions": [*dims, {"Name": "Model", "Value": backend}],
                        "Value": 1.0 if state == "open" else 0.0})
        return out

    def publish(self) -> None:
        data = self.datums()
        for i in range(0, len(data), 1000):  # PutMetricData takes 1000 datums a call
            self.client.put_metric_data(Namespace=self.settings["namespace"],
                                        MetricData=data[i:i + 1000])

    def _run(self) -> None:
        interval = float(self.settings.get("interval_seconds", 10))
        while True:
            time.sleep(interval)
            try:
                self.publish()
            except Exception:  # metrics must never take the gateway down
                log.exception("llm-hosting gateway: CloudWatch publish failed")


# ------------------------------------------------------------------------------------ hooks

try:  # the proxy's base class; absent only where this module is unit-tested without litellm
    from litellm.integrations.custom_logger import CustomLogger as _Base
except ImportError:  # pragma: no cover
    _Base = object  # type: ignore[assignment,misc]


def _metadata(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The request's metadata dict (the router shares it by reference across attempts and
    fallback hops, so what the filter writes the proxy's failure hook reads)."""
    kwargs = kwargs or {}
    params = kwargs.get("litellm_params")
    for where in (kwargs, params if isinstance(params, Mapping) else {}):
        for key in ("metadata", "litellm_metadata"):
            value = where.get(key)
            if isinstance(value, dict):
                return value
    return {}


def _backend_of(kwargs: Mapping[str, Any]) -> str | None:
    info = kwargs.get("model_info") or (kwargs.get("litellm_params") or {}).get("model_info")
    return info.get("id") if isinstance(info, Mapping) else None


class Unavailable(Exception):
    """The model cannot be served before its bound: the client gets 503 with Retry-After.
    `num_retries = 0` keeps the router from retrying what the hold already waited for."""

    def __init__(self, model: str, retry_after: int, why: str) -> None:
        super().__init__(f"{model} is unavailable ({why}); retry after {retry_after} s")
        self.model, self.retry_after, self.status_code, self.num_retries = (
            model, retry_after, 503, 0)


class GatewayHooks(_Base):  # type: ignore[misc,valid-type]
    """The callbacks LiteLLM's proxy calls; see the module docstring for which and why."""

    def __init__(self, settings: Settings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if _Base is not object:
            super().__init__()
        self.settings = settings or Settings.load()
        self.clock = clock
        self.breaker = Breaker(self.settings.failures, self.settings.cooldown_seconds, clock)
        self.metrics = Metrics(self.settings.waiting_window_seconds, clock)
        self.deployments: dict[str, Mapping[str, Any]] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        if self.settings.metrics_port:
            serve_prometheus(self.metrics, int(self.settings.metrics_port))
        if self.settings.cloudwatch:
            CloudWatchPublisher(self.metrics, {**self.settings.cloudwatch,
                                               "models": list(self.settings.models)},
                                self.circuit_states)

    def circuit_states(self) -> dict[str, str]:
        return {name: self.breaker.state(name) for name in list(self.breaker.backends)}

    def _publish_state(self, backend: str) -> None:
        with self.metrics.lock:
            self.metrics.circuit[backend] = self.breaker.state(backend)

    def _model(self, name: str) -> str:
        return self.settings.aliases.get(name, name)

    def _policy(self, model: str) -> ModelPolicy:
        return self.settings.models.get(model) or ModelPolicy(
            wait_bound_seconds=0, retry_after_seconds=30)

    # -- proxy: every request ------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict:
        model = data.get("model")
        if isinstance(model, str):
            self.metrics.count(self.metrics.requests, self._model(model))
        meta = data.get("metadata")
        if isinstance(meta, dict):
            meta.setdefault(ARRIVAL_TAG, self.clock())
        return data

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any,
                                           traceback_str: str | None = None) -> Any:
        """A request the hold gave up on (or no target could take) leaves as 503 + Retry-After,
        even when the router re-raises an earlier target's error after a failed fallback."""
        given_up = _metadata(request_data).get(UNAVAILABLE_TAG) or {}
        retry_after = min(given_up.values()) if given_up else None
        if retry_after is None and isinstance(original_exception, Unavailable):
            retry_after = original_exception.retry_after
        if retry_after is None:
            return None
        from fastapi import HTTPException

        return HTTPException(status_code=503, headers={"Retry-After": str(retry_after)},
                             detail=f"{original_exception}")

    # -- router: every pick ---------------------------------------------------------------------

    async def async_filter_deployments(self, model: str, healthy_deployments: list,
                                       messages: Any, request_kwargs: dict | None = None,
                                       parent_otel_span: Any = None) -> list[dict]:
        policy = self._policy(model)
        names = []
        for d in healthy_deployments:
            name = (d.get("model_info") or {}).get("id") or model
            self.deployments[name] = d
            names.append(name)
        usable = [d for d, n in zip(healthy_deployments, names, strict=True)
                  if self._usable(n, policy)]
        if usable or not healthy_deployments:
            return usable
        now = self.clock()
        for n in names:
            self.breaker.backends[n].last_demand = now
            self._ensure_probe(n)
        if policy.fallbacks:
            self.metrics.divert(model)  # served elsewhere now; counts as demand for the model
            return []  # the router fails over to the fallback list at once
        meta = _metadata(request_kwargs)
        given_up = meta.setdefault(UNAVAILABLE_TAG, {})  # model -> Retry-After, this request
        if model in given_up:  # a retry after this request's hold on the model gave up
            raise Unavailable(model, int(given_up[model]), "already held to its bound")
        if not any(self.breaker.backends[n].waking for n in names):
            retry = min(self.breaker.retry_after(n) for n in names)
            given_up[model] = retry
            raise Unavailable(model, retry, "circuit open")
        deadline = float(meta.setdefault(ARRIVAL_TAG, now)) + policy.wait_bound_seconds
        return await self._hold(model, healthy_deployments, names, deadline, policy, meta)

    def _usable(self, name: str, policy: ModelPolicy) -> bool:
        b = self.breaker.backends[name]
        if (policy.scales_to_zero and not b.waking
                and self.clock() - b.ready_at > self.settings.ready_ttl_seconds):
            b.waking = True  # not seen answering lately: it may be at zero, confirm first
        usable = self.breaker.acquire(name)
        self._publish_state(name)
        return usable

    async def _hold(self, model: str, deployments: list, names: list[str], deadline: float,
                    policy: ModelPolicy, meta: dict[str, Any]) -> list[dict]:
        start = self.clock()
        self.metrics.hold_started(model)
        timed_out = False
        try:
            while True:
                for d, n in zip(deployments, names, strict=True):
                    if self._usable(n, policy):
                        return [d]
                remaining = deadline - self.clock()
                if remaining <= 0:
                    timed_out = True
                    meta.setdefault(UNAVAILABLE_TAG, {})[model] = policy.retry_after_seconds
                    raise Unavailable(model, policy.retry_after_seconds,
                                      f"held {policy.wait_bound_seconds:g} s while it wakes")
                for n in names:
                    self.breaker.backends[n].last_demand = self.clock()
                    self._ensure_probe(n)
                waits = [asyncio.ensure_future(self.breaker.event(n).wait()) for n in names]
                step = min(remaining, self.settings.probe_interval_seconds)
                _, pending = await asyncio.wait(waits, timeout=step,
                                                return_when=asyncio.FIRST_COMPLETED)
                for w in pending:
                    w.cancel()
        finally:
            self.metrics.hold_ended(model, self.clock() - start, timed_out)

    # -- probing a backend that is asleep ------------------------------------------------------

    def _ensure_probe(self, name: str) -> None:
        task = self._probes.get(name)
        if (task is None or task.done()) and self.breaker.backends[name].waking:
            self._probes[name] = asyncio.ensure_future(self._probe(name))

    async def _probe(self, name: str) -> None:
        """One-token completions until the backend answers, while anyone still wants it; a
        SageMaker component at zero also counts these in NoCapacityInvocationFailures."""
        import litellm

        linger = self.settings.waiting_window_seconds
        while self.breaker.backends[name].waking:
            if self.clock() - self.breaker.backends[name].last_demand > linger:
                return  # nobody waits: do not keep an idle model awake
            params = {k: v for k, v in self.deployments[name]["litellm_params"].items()
                      if k not in ("num_retries", "timeout", "stream_timeout")}
            try:
                await litellm.acompletion(
                    **params, messages=[{"role": "user", "content": "ping"}], max_tokens=1,
                    num_retries=0, timeout=self.settings.probe_timeout_seconds,
                    metadata={PROBE_TAG: True})
                kind = None
            except Exception as exc:  # any answer is information
                kind = classify(exc)
            if kind in (None, NEUTRAL):
                self.breaker.on_success(name)
                self._publish_state(name)
                return
            await asyncio.sleep(self.settings.probe_interval_seconds)

    # -- outcomes of each attempt --------------------------------------------------------------

    async def async_post_call_failure_deployment_hook(self, request_data: Mapping[str, Any],
                                                      exception: Exception, call_type: Any,
                                                      fallback_depth: int | None = None) -> None:
        name = _backend_of(request_data)
        if name is None or _metadata(request_data).get(PROBE_TAG):
            return
        self.breaker.on_failure(name, classify(exception))
        self._publish_state(name)

    async def async_post_call_success_deployment_hook(self, request_data: dict, response: Any,
                                                      call_type: Any) -> Any:
        self._succeeded(request_data)
        return None

    async def async_post_call_streaming_deployment_hook(self, request_data: dict,
                                                        response_chunk: Any,
                                                        call_type: Any) -> Any:
        """A stream's chunks are its success (the deployment success hook sees no stream).
        Not `async_log_success_event`: implementing it makes LiteLLM build its logging payload
        for every request, which measured as most of our added latency
        (scripts/bench_gateway.py)."""
        self._succeeded(request_data)
        return None

    def _succeeded(self, kwargs: Mapping[str, Any]) -> None:
        name = _backend_of(kwargs)
        if name is None or _metadata(kwargs).get(PROBE_TAG):
            return
        b = self.breaker.backends[name]
        if not (b.failures or b.open_until or b.trial or b.waking):
            b.ready_at = self.clock()  # already healthy: the per-chunk fast path
            return
        self.breaker.on_success(name)
        self._publish_state(name)

    async def log_success_fallback_event(self, original_model_group: str, kwargs: dict,
                                         original_exception: Exception) -> None:
        self.metrics.count(self.metrics.fallbacks, self._model(original_model_group))


gateway_hooks = GatewayHooks() if os.environ.get(CONFIG_ENV) or Path(
    __file__).with_name("config.yaml").exists() else None
"""The instance `litellm_settings.callbacks` names (built when a config sits next to this file
or `LLM_HOSTING_GATEWAY_CONFIG` names one; importing the module elsewhere builds nothing)."""
