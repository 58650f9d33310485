"""One CloudWatch dashboard per endpoint: what an operator looks at first.

Rows: traffic and errors per model; model latency p50/p90/p99 per model; GPU and GPU-memory
utilization per model; concurrent requests per copy against the autoscaling target; copies
reporting per model against instances reporting per variant (SampleCount of the per-copy and
per-instance utilization metrics: one datapoint per copy/instance per minute).

Time to first byte: SageMaker publishes no TTFB metric for streaming invocations that we could
verify, and neither DLC pushes one to CloudWatch, so the dashboard has no TTFB widget; see
docs/sagemaker.md for how to add one from the engines' Prometheus metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.gateway.monitoring import cloudwatch_widgets
from components.sagemaker.alarms import IC_NS, SAGEMAKER_NS
from components.sagemaker.packing import VariantPlan
from components.tags import Naming

WIDTH, HEIGHT = 12, 6


def _widget(title: str, metrics: list[list[Any]], region: str, *, stat: str = "Sum",
            x: int, y: int, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title, "region": region, "view": "timeSeries", "stacked": False,
        "period": 60, "stat": stat, "metrics": metrics,
    }
    if annotations:
        properties["annotations"] = {"horizontal": annotations}
    return {"type": "metric", "x": x, "y": y, "width": WIDTH, "height": HEIGHT,
            "properties": properties}


def dashboard_body(region: str, endpoint_name: str, plans: Sequence[VariantPlan],
                   components: Mapping[str, str], gateway_stack: str | None = None
                   ) -> dict[str, Any]:
    """The dashboard JSON; `components` maps model name -> inference component name. With the
    gateway on (`gateway_stack`), a row of its per-model metrics follows."""
    ic = list(components.items())
    invocations = []
    for model, name in ic:
        invocations += [
            [SAGEMAKER_NS, "Invocations", "InferenceComponentName", name, {"label": model}],
            [SAGEMAKER_NS, "Invocation5XXErrors", "InferenceComponentName", name,
             {"label": f"{model} 5XX"}],
            [SAGEMAKER_NS, "Invocation4XXErrors", "InferenceComponentName", name,
             {"label": f"{model} 4XX"}],
        ]
    latency = [
        [SAGEMAKER_NS, "ModelLatency", "InferenceComponentName", name,
         {"stat": p, "label": f"{model} {p} (µs)"}]
        for model, name in ic for p in ("p50", "p90", "p99")
    ]
    gpu = []
    for model, name in ic:
        gpu += [
            [IC_NS, "GPUUtilizationNormalized", "InferenceComponentName", name,
             {"label": f"{model} GPU %"}],
            [IC_NS, "GPUMemoryUtilizationNormalized", "InferenceComponentName", name,
             {"label": f"{model} GPU memory %"}],
        ]
    concurrency = [
        [SAGEMAKER_NS, "ConcurrentRequestsPerCopy", "InferenceComponentName", name,
         {"label": model}]
        for model, name in ic
    ]
    copies = [
        [IC_NS, "CPUUtilizationNormalized", "InferenceComponentName", name,
         {"stat": "SampleCount", "label": f"{model} copies"}]
        for model, name in ic
    ] + [
        ["/aws/sagemaker/Endpoints", "CPUUtilization", "EndpointName", endpoint_name,
         "VariantName", plan.name, {"stat": "SampleCount", "label": f"{plan.name} instances"}]
        for plan in plans
    ]
    targets = [
        {"label": f"{p.model.name} target", "value": p.model.spec.concurrency_target}
        for plan in plans for p in plan.placements
    ]
    return {
        "widgets": [
            _widget("Invocations and errors", invocations, region, x=0, y=0),
            _widget("Model latency p50 / p90 / p99", latency, region, stat="p90", x=12, y=0),
            _widget("GPU and GPU memory utilization", gpu, region, stat="Average", x=0, y=6),
            _widget("Concurrent requests per copy (autoscaling metric)", concurrency, region,
                    stat="Average", x=12, y=6, annotations=targets),
            _widget("Copies vs instances (reporting)", copies, region, stat="SampleCount",
                    x=0, y=12),
            *(cloudwatch_widgets(region=region, stack=gateway_stack, models=list(components),
                                 y=18) if gateway_stack else []),
        ]
    }


@dataclass(frozen=True)
class DashboardArgs:
    naming: Naming
    region: str
    endpoint_name: pulumi.Input[str]
    plans: Sequence[VariantPlan]
    components: Mapping[str, pulumi.Input[str]]
    gateway_stack: str | None = None


class EndpointDashboard(pulumi.ComponentResource):
    def __init__(self, name: str, args: DashboardArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:EndpointDashboard", name, None, opts)
        models = list(args.components)
        body = pulumi.Output.all(args.endpoint_name, *args.components.values()).apply(
            lambda v: json.dumps(
                dashboard_body(args.region, v[0], args.plans,
                               dict(zip(models, v[1:], strict=True)), args.gateway_stack)
            )
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.naming.physical("sagemaker", max_len=255),
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboardName": self.dashboard_name})
