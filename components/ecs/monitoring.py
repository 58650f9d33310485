"""Alarms and a dashboard per model (the dashboard body is built by a pure function)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.ecs.containers import INFLIGHT_RUNNING, INFLIGHT_WAITING
from components.ecs.iam import GPU_METRICS_NAMESPACE, INFLIGHT_NAMESPACE
from components.gateway.monitoring import cloudwatch_widgets
from components.tags import Naming

P90_LATENCY_SECONDS = 30.0
"""ALB TargetResponseTime ends at the first response byte, so for streamed completions it is
close to time-to-first-token; 30 s at p90 means requests are queueing behind full batches."""

TARGET_5XX_PER_5_MIN = 10.0


@dataclass(frozen=True)
class DashboardRefs:
    region: str
    load_balancer: str  # ALB arn suffix (app/<name>/<id>)
    target_group: str  # target group arn suffix
    cluster: str
    service: str
    groups: list[str]  # Auto Scaling group names (on-demand first)
    warm_group: str | None
    model: str | None = None  # a shared task: the in-flight gauges also carry `Model`
    gateway: tuple[str, str] | None = None  # (stack, model): the gateway's row for this model


def dashboard_body(r: DashboardRefs) -> str:
    """Requests, latency, errors, GPU utilization, in-flight, and warm vs in-service instances."""
    lb = ["LoadBalancer", r.load_balancer, "TargetGroup", r.target_group]
    inflight = ["ServiceName", r.service, *(["Model", r.model] if r.model else [])]

    def widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
        return {"type": "metric", "width": 12, "height": 6, "properties": {
            "title": title, "region": r.region, "stat": stat, "period": 60, "view": "timeSeries",
            "metrics": metrics,
        }}

    instances: list[list[Any]] = [
        ["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", g]
        for g in r.groups
    ]
    if r.warm_group:
        instances.append(["AWS/AutoScaling", "WarmPoolWarmedCapacity", "AutoScalingGroupName",
                          r.warm_group])
    widgets = [
        widget("Requests", [["AWS/ApplicationELB", "RequestCount", *lb],
                            ["AWS/ApplicationELB", "RequestCountPerTarget", "TargetGroup",
                             r.target_group]]),
        widget("Time to first byte (s)", [
            ["AWS/ApplicationELB", "TargetResponseTime", *lb, {"stat": "p50"}],
            ["AWS/ApplicationELB", "TargetResponseTime", *lb, {"stat": "p90"}],
        ], stat="p90"),
        widget("Errors", [["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", *lb],
                          ["AWS/ApplicationELB", "UnHealthyHostCount", *lb, {"stat": "Maximum"}]]),
        widget("GPU utilization / memory (%, MiB)", [
            [GPU_METRICS_NAMESPACE, "nvidia_smi_utilization_gpu", "AutoScalingGroupName", g]
            for g in r.groups
        ] + [
            [GPU_METRICS_NAMESPACE, "nvidia_smi_memory_used", "AutoScalingGroupName", g,
             {"yAxis": "right"}] for g in r.groups
        ], stat="Average"),
        widget("In-flight requests per task", [
            [INFLIGHT_NAMESPACE, INFLIGHT_RUNNING, *inflight],
            [INFLIGHT_NAMESPACE, INFLIGHT_WAITING, *inflight],
        ], stat="Average"),
        widget("Instances: in service and warm", instances, stat="Maximum"),
        widget("Tasks", [["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", r.cluster,
                          "ServiceName", r.service],
                         ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", r.cluster,
                          "ServiceName", r.service]], stat="Average"),
    ]
    if r.gateway is not None:
        stack, model = r.gateway
        widgets += cloudwatch_widgets(region=r.region, stack=stack, models=[model])
    return json.dumps({"widgets": widgets})


@dataclass(frozen=True)
class MonitoringArgs:
    naming: Naming
    model: str
    region: str
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    group_names: list[pulumi.Input[str]]
    warm_group_name: pulumi.Input[str] | None
    shared: bool = False  # the model is one engine of a shared task (service, hosts shared)
    gateway_stack: str | None = None  # the gateway is on: add its row for this model


class ModelMonitoring(pulumi.ComponentResource):
    """Unhealthy targets, target 5XX and p90 latency alarms, and the model's dashboard."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:ecs:ModelMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, model = args.naming, args.model
        dims = {"LoadBalancer": args.load_balancer_arn_suffix,
                "TargetGroup": args.target_group_arn_suffix}
        common = dict(namespace="AWS/ApplicationELB", period=60, evaluation_periods=5,
                      dimensions=dims, tags=naming.tags(model=model), opts=child)
        aws.cloudwatch.MetricAlarm(
            f"{name}-unhealthy-targets",
            alarm_description=f"{model}: a target failed ALB health checks for 5 minutes",
            metric_name="UnHealthyHostCount", statistic="Maximum",
            comparison_operator="GreaterThanOrEqualToThreshold", threshold=1,
            datapoints_to_alarm=5, treat_missing_data="notBreaching", **common,
        )
        # One 5-minute sum, so a burst inside a single minute counts as much as a trickle.
        aws.cloudwatch.MetricAlarm(
            f"{name}-target-5xx",
            alarm_description=f"{model}: engines returned over {TARGET_5XX_PER_5_MIN:.0f} 5XX "
                              "in 5 minutes",
            metric_name="HTTPCode_Target_5XX_Count", statistic="Sum",
            comparison_operator="GreaterThanThreshold", threshold=TARGET_5XX_PER_5_MIN,
            treat_missing_data="notBreaching",
            **{**common, "period": 300, "evaluation_periods": 1},
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-p90-latency",
            alarm_description=f"{model}: p90 time to first byte above {P90_LATENCY_SECONDS:.0f} s",
            metric_name="TargetResponseTime", extended_statistic="p90",
            comparison_operator="GreaterThanThreshold", threshold=P90_LATENCY_SECONDS,
            datapoints_to_alarm=3, treat_missing_data="notBreaching", **common,
        )
        groups = pulumi.Output.all(*args.group_names)
        body = pulumi.Output.all(
            args.load_balancer_arn_suffix, args.target_group_arn_suffix, args.cluster_name,
            args.service_name, groups, args.warm_group_name,
        ).apply(lambda v: dashboard_body(DashboardRefs(
            region=args.region, load_balancer=v[0], target_group=v[1], cluster=v[2],
            service=v[3], groups=list(v[4]), warm_group=v[5],
            model=model if args.shared else None,
            gateway=(args.gateway_stack, model) if args.gateway_stack else None,
        )))
        aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=naming.physical("ecs", model, max_len=255),
            dashboard_body=body,
            opts=child,
        )
        self.register_outputs({})
