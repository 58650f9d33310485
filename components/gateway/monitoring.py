"""What the gateway's metrics drive (pure; no Pulumi): alarms, dashboard widgets, alert rules.

Metric names are the hooks' (`hooks/llm_hosting_gateway.py`): in CloudWatch namespace
`LLMHosting/Gateway` with dimensions `Stack`, `Model` (Fargate gateways publish them), and as
Prometheus series `llm_gateway_*{model=...}` (EKS gateways are scraped). Per replica: CloudWatch
sums counters over replicas for one set of dimensions; PromQL sums by model.

* Waking: `RequestsWaiting >= 1` (held now, or diverted to a fallback in the last minute) wakes
  a model at zero: the SageMaker inference component's and the ECS service's step-scaling
  policies, and a KEDA trigger on EKS.
* Fallback rate: `Fallbacks / Requests` above `FALLBACK_RATE_THRESHOLD` for 10 minutes means a
  model is not serving its own traffic: an alarm (CloudWatch) or alert (Prometheus).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.gateway.config import CLOUDWATCH_NAMESPACE

FALLBACK_RATE_THRESHOLD = 0.1
FALLBACK_RATE_MINUTES = 10
WAKE_PERIOD_SECONDS = 10
"""High-resolution alarm period: the gateway publishes `RequestsWaiting` every 10 s at 1 s
storage resolution, so a model at zero starts waking within ~10-20 s of the first held request.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#high-resolution-alarms"""

PROM_WAITING = "llm_gateway_requests_waiting"


def dimensions(stack: str, model: str) -> dict[str, str]:
    return {"Stack": stack, "Model": model}


def wake_alarm_spec(*, name: str, stack: str, model: str) -> dict[str, Any]:
    """Arguments for `aws.cloudwatch.MetricAlarm` (add `alarm_actions`: the wake policy)."""
    return {
        "name": name,
        "alarm_description": f"{model}: requests wait at the gateway for a model with no "
        "capacity; adds capacity (wake from zero)",
        "namespace": CLOUDWATCH_NAMESPACE,
        "metric_name": "RequestsWaiting",
        "dimensions": dimensions(stack, model),
        "statistic": "Maximum",
        "period": WAKE_PERIOD_SECONDS,
        "evaluation_periods": 1,
        "datapoints_to_alarm": 1,
        "threshold": 1,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "treat_missing_data": "notBreaching",
    }


def fallback_rate_alarm_spec(*, name: str, stack: str, model: str) -> dict[str, Any]:
    """`Fallbacks / Requests > 10%` in every minute of 10 (metric math; minutes without
    requests are missing, not breaching)."""
    dims = dimensions(stack, model)

    def stat(metric_id: str, metric: str) -> dict[str, Any]:
        return {"id": metric_id, "return_data": False, "metric": {
            "namespace": CLOUDWATCH_NAMESPACE, "metric_name": metric, "dimensions": dims,
            "period": 60, "stat": "Sum"}}

    return {
        "name": name,
        "alarm_description": f"{model}: more than {FALLBACK_RATE_THRESHOLD:.0%} of its requests "
        f"answered by a fallback for {FALLBACK_RATE_MINUTES} minutes",
        "metric_queries": [
            stat("fallbacks", "Fallbacks"),
            stat("requests", "Requests"),
            {"id": "rate", "return_data": True, "label": "fallback rate",
             "expression": "fallbacks / requests"},
        ],
        "evaluation_periods": FALLBACK_RATE_MINUTES,
        "datapoints_to_alarm": FALLBACK_RATE_MINUTES,
        "threshold": FALLBACK_RATE_THRESHOLD,
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
    }


def cloudwatch_widgets(*, region: str, stack: str, models: Sequence[str], x: int = 0,
                       y: int = 0) -> list[dict[str, Any]]:
    """Dashboard row: fallbacks vs requests, waiting/held, hold time, circuit open."""

    def widget(title: str, metrics: list[list[Any]], stat: str, col: int,
               row: int) -> dict[str, Any]:
        return {"type": "metric", "x": col, "y": row, "width": 12, "height": 6,
                "properties": {"title": title, "region": region, "view": "timeSeries",
                               "stacked": False, "period": 60, "stat": stat,
                               "metrics": metrics}}

    def series(metric: str, label: str, **extra: Any) -> list[list[Any]]:
        return [[CLOUDWATCH_NAMESPACE, metric, "Stack", stack, "Model", m,
                 {"label": f"{m} {label}", **extra}] for m in models]

    return [
        widget("Gateway: requests and fallbacks per model",
               series("Requests", "requests") + series("Fallbacks", "fallbacks"),
               "Sum", x, y),
        widget("Gateway: requests waiting (held + diverted) and held",
               series("RequestsWaiting", "waiting") + series("HeldRequests", "held",
                                                            stat="Sum"),
               "Maximum", x + 12, y),
        # Hold times arrive as statistic sets (no percentiles): average and maximum.
        widget("Gateway: hold time (s) and holds past the bound",
               series("HoldSeconds", "hold avg", stat="Average")
               + series("HoldSeconds", "hold max", stat="Maximum")
               + series("HoldTimeouts", "timed out", stat="Sum"),
               "Average", x, y + 6),
        widget("Gateway: circuit open (1) per backend", series("CircuitOpen", "open"),
               "Maximum", x + 12, y + 6),
    ]


# -- Prometheus (EKS) ------------------------------------------------------------------------


def waiting_query(model: str) -> str:
    """PromQL KEDA reads to wake an EKS model: requests waiting at every gateway replica."""
    return f'sum({PROM_WAITING}{{model="{model}"}})'


def alert_rules() -> list[dict[str, Any]]:
    rate = ("sum by (model) (rate(llm_gateway_fallbacks_total[5m])) / "
            "sum by (model) (rate(llm_gateway_requests_total[5m]))")
    return [
        {
            "alert": "GatewayFallbackRateHigh",
            "expr": f"{rate} > {FALLBACK_RATE_THRESHOLD}",
            "for": f"{FALLBACK_RATE_MINUTES}m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model }}: over 10% of requests answered by a fallback",
                "description": "The model is not serving its own traffic (down, asleep or its "
                "circuit open); the gateway keeps clients answered through its fallbacks.",
            },
        },
        {
            "alert": "GatewayHoldTimeouts",
            "expr": "sum by (model) (increase(llm_gateway_hold_timeouts_total[10m])) > 0",
            "for": "0m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model }}: held requests answered 503 at the wait bound",
                "description": "The model did not wake within its wait bound: check its "
                "scale-from-zero (KEDA trigger, GPU capacity, image pull, model load).",
            },
        },
    ]


def grafana_targets() -> list[tuple[str, Sequence[tuple[str, str]]]]:
    """(panel title, [(PromQL, legend)]) for the EKS Grafana dashboard."""
    return [
        ("Gateway: fallbacks / requests per model", [
            ("sum by (model) (rate(llm_gateway_fallbacks_total[5m]))", "fallbacks {{model}}"),
            ("sum by (model) (rate(llm_gateway_requests_total[5m]))", "requests {{model}}"),
        ]),
        ("Gateway: requests waiting and held", [
            (f"sum by (model) ({PROM_WAITING})", "waiting {{model}}"),
            ("sum by (model) (llm_gateway_requests_held)", "held {{model}}"),
        ]),
        ("Gateway: hold time p90 (s)", [
            ("histogram_quantile(0.9, sum by (model, le) "
             "(rate(llm_gateway_hold_seconds_bucket[10m])))", "p90 {{model}}"),
        ]),
        ("Gateway: circuit state (0 closed, 1 open, 2 half-open, 3 waking)", [
            ("max by (backend) (llm_gateway_circuit_state)", "{{backend}}"),
        ]),
    ]
