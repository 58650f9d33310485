"""CloudWatch alarms that roll a bad update back and tell an operator the endpoint is unwell.

Metric names and dimensions are SageMaker's
(https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html):

* `AWS/SageMaker` invocation metrics per variant (`EndpointName`, `VariantName`) and per
  inference component (`InferenceComponentName`): `Invocation5XXErrors`, `ModelLatency` (µs);
* `/aws/sagemaker/InferenceComponents` utilization per component: `GPUMemoryUtilizationNormalized`,
  `CPUUtilizationNormalized`. Every running copy publishes a utilization datapoint per period,
  so `SampleCount` of it is the number of copies reporting; no datapoint at all means no healthy
  copy, which is what the zero-copies alarm watches (missing data counts as breaching).

The 5XX, latency and zero-copies alarms are rollback alarms: the endpoint's and each inference
component's deployment config name them, so an update that trips one is rolled back. The GPU
memory alarm only notifies (engines pre-allocate ~90% of GPU memory for the KV cache, so high
readings are normal; above 97% for 10 minutes means something else shares the GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.sagemaker.packing import Placement, VariantPlan
from components.tags import Naming

SAGEMAKER_NS = "AWS/SageMaker"
IC_NS = "/aws/sagemaker/InferenceComponents"
#: Fewest output tokens per second per sequence we still call healthy: a p90 ModelLatency above
#: the time to write a full-length answer at this rate means the model is badly degraded.
MIN_HEALTHY_TOKENS_PER_SECOND = 10
MIN_LATENCY_BUDGET_SECONDS = 30
GPU_MEMORY_ALARM_PERCENT = 97
FIVE_XX_PER_MINUTE = 5


def latency_budget_seconds(placement: Placement) -> int:
    spec = placement.model.spec
    output_tokens = spec.max_total_tokens - spec.max_input_tokens
    return max(MIN_LATENCY_BUDGET_SECONDS, -(-output_tokens // MIN_HEALTHY_TOKENS_PER_SECOND))


def _five_xx(name: str, dimensions: dict[str, str], what: str) -> dict[str, Any]:
    return {
        "name": name,
        "alarm_description": f"{what}: 5XX responses ({FIVE_XX_PER_MINUTE}+/min in 2 of 3 "
        "minutes); rolls back a deployment",
        "namespace": SAGEMAKER_NS,
        "metric_name": "Invocation5XXErrors",
        "dimensions": dimensions,
        "statistic": "Sum",
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "threshold": FIVE_XX_PER_MINUTE,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "treat_missing_data": "notBreaching",
    }


def _latency(name: str, dimensions: dict[str, str], budget_s: int, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "alarm_description": f"{what}: p90 model latency above {budget_s} s (a full-length "
        f"answer at {MIN_HEALTHY_TOKENS_PER_SECOND} tokens/s) in 3 of 5 minutes; rolls back",
        "namespace": SAGEMAKER_NS,
        "metric_name": "ModelLatency",
        "dimensions": dimensions,
        "extended_statistic": "p90",
        "period": 60,
        "evaluation_periods": 5,
        "datapoints_to_alarm": 3,
        "threshold": budget_s * 1_000_000,  # ModelLatency is in microseconds
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
    }


def variant_alarm_specs(naming: Naming, endpoint_name: str, plan: VariantPlan) -> list[dict]:
    dims = {"EndpointName": endpoint_name, "VariantName": plan.name}
    budget = max(latency_budget_seconds(p) for p in plan.placements)
    what = f"{endpoint_name}/{plan.name}"
    return [
        _five_xx(naming.physical(plan.name, "5xx", max_len=255), dims, what),
        _latency(naming.physical(plan.name, "latency-p90", max_len=255), dims, budget, what),
    ]


def component_alarm_specs(naming: Naming, ic_name: str, placement: Placement) -> dict[str, dict]:
    """Per inference component: role -> alarm spec (roles: 5xx, latency, zero-copies, gpu-mem)."""
    dims = {"InferenceComponentName": ic_name}
    model = placement.model.name
    specs = {
        "5xx": _five_xx(naming.physical(model, "5xx", max_len=255), dims, ic_name),
        "latency": _latency(naming.physical(model, "latency-p90", max_len=255), dims,
                            latency_budget_seconds(placement), ic_name),
        "gpu-memory": {
            "name": naming.physical(model, "gpu-memory", max_len=255),
            "alarm_description": f"{ic_name}: GPU memory above {GPU_MEMORY_ALARM_PERCENT}% for "
            "10 minutes (engines pre-allocate ~90%); notification only",
            "namespace": IC_NS,
            "metric_name": "GPUMemoryUtilizationNormalized",
            "dimensions": dims,
            "statistic": "Average",
            "period": 60,
            "evaluation_periods": 10,
            "datapoints_to_alarm": 10,
            "threshold": GPU_MEMORY_ALARM_PERCENT,
            "comparison_operator": "GreaterThanThreshold",
            "treat_missing_data": "notBreaching",
        },
    }
    if not placement.scales_to_zero:
        specs["zero-copies"] = {
            "name": naming.physical(model, "zero-copies", max_len=255),
            "alarm_description": f"{ic_name}: no copy has reported for 5 minutes (minReplicas "
            f"is {placement.min_copies}); rolls back a deployment",
            "namespace": IC_NS,
            "metric_name": "CPUUtilizationNormalized",
            "dimensions": dims,
            "statistic": "SampleCount",
            "period": 60,
            "evaluation_periods": 5,
            "datapoints_to_alarm": 5,
            "threshold": 1,
            "comparison_operator": "LessThanThreshold",
            "treat_missing_data": "breaching",
        }
    return specs


ROLLBACK_ROLES = ("5xx", "latency", "zero-copies")


def _register(name: str, spec: dict[str, Any], naming: Naming, topic: str | None,
              model: str | None, opts: pulumi.ResourceOptions) -> aws.cloudwatch.MetricAlarm:
    actions = [topic] if topic else []
    return aws.cloudwatch.MetricAlarm(
        name,
        **spec,
        alarm_actions=actions,
        ok_actions=actions,
        tags=naming.tags(model=model),
        opts=opts,
    )


@dataclass(frozen=True)
class EndpointAlarmsArgs:
    naming: Naming
    endpoint_name: str
    plans: Sequence[VariantPlan]
    topic_arn: str | None


class EndpointAlarms(pulumi.ComponentResource):
    """Per production variant: 5XX and p90 latency, both named by the endpoint's rollback."""

    rollback_alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: EndpointAlarmsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:EndpointAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        alarms = []
        for plan in args.plans:
            for spec, role in zip(
                variant_alarm_specs(args.naming, args.endpoint_name, plan),
                ("5xx", "latency"),
                strict=True,
            ):
                alarms.append(_register(f"{name}-{plan.name}-{role}", spec, args.naming,
                                        args.topic_arn, None, child))
        self.rollback_alarm_names = pulumi.Output.all(*[a.name for a in alarms])
        self.register_outputs({"rollbackAlarmNames": self.rollback_alarm_names})


@dataclass(frozen=True)
class ComponentAlarmsArgs:
    naming: Naming
    inference_component_name: str
    placement: Placement
    topic_arn: str | None


class InferenceComponentAlarms(pulumi.ComponentResource):
    """Per inference component: 5XX, p90 latency, zero healthy copies, GPU memory."""

    rollback_alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ComponentAlarmsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:InferenceComponentAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        specs = component_alarm_specs(args.naming, args.inference_component_name, args.placement)
        model = args.placement.model.name
        alarms = {role: _register(f"{name}-{role}", spec, args.naming, args.topic_arn, model,
                                  child)
                  for role, spec in specs.items()}
        self.rollback_alarm_names = pulumi.Output.all(
            *[alarms[r].name for r in ROLLBACK_ROLES if r in alarms]
        )
        self.register_outputs({"rollbackAlarmNames": self.rollback_alarm_names})
