"""Copy-count autoscaling for one inference component (Application Auto Scaling).

* Scalable target `inference-component/<name>` on `sagemaker:inference-component:DesiredCopyCount`
  between `minReplicas` and `maxReplicas`.
* Target tracking on `SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution`, with
  the model's `concurrencyTarget` as target: the number of full-length sequences sizing made the
  KV cache hold, so a copy is scaled out before requests queue behind a full cache.
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html
* Instances follow copies through the variant's managed instance scaling (endpoint config).
* `minReplicas: 0` (dev): the target may reach 0 copies, and a step-scaling policy driven by an
  alarm on `NoCapacityInvocationFailures` adds a copy when a request finds none, as AWS
  documents: https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html
  With the gateway on, a second alarm on its `RequestsWaiting` for the model (requests it holds
  or diverts to a fallback) drives the same policy, so a model whose requests all go to a
  fallback, and never reach SageMaker, still wakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.gateway.monitoring import wake_alarm_spec
from components.sagemaker.packing import Placement
from components.tags import Naming

SCALABLE_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
PREDEFINED_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
#: Scale out fast (a new copy takes minutes to load), scale in slowly (avoid flapping while a
#: burst drains).
SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 600


def resource_id(inference_component_name: str) -> str:
    return f"inference-component/{inference_component_name}"


@dataclass(frozen=True)
class ScalingArgs:
    naming: Naming
    inference_component_name: pulumi.Input[str]
    placement: Placement
    topic_arn: str | None
    gateway_stack: str | None = None


class InferenceComponentScaling(pulumi.ComponentResource):
    """Scalable target + target tracking (+ wake-from-zero step policy and alarm)."""

    def __init__(self, name: str, args: ScalingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:InferenceComponentScaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        placement, model = args.placement, args.placement.model
        rid = pulumi.Output.from_input(args.inference_component_name).apply(resource_id)
        target = aws.appautoscaling.Target(
            f"{name}-target",
            service_namespace="sagemaker",
            resource_id=rid,
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=placement.min_copies,
            max_capacity=placement.max_copies,
            tags=args.naming.tags(model=model.name),
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-concurrency",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration={
                "predefined_metric_specification": {
                    "predefined_metric_type": PREDEFINED_METRIC,
                },
                "target_value": float(model.spec.concurrency_target),
                "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
                "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
            },
            opts=child,
        )
        if placement.scales_to_zero:
            wake = aws.appautoscaling.Policy(
                f"{name}-wake-from-zero",
                policy_type="StepScaling",
                service_namespace=target.service_namespace,
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                step_scaling_policy_configuration={
                    "adjustment_type": "ChangeInCapacity",
                    "metric_aggregation_type": "Maximum",
                    "cooldown": 60,
                    "step_adjustments": [
                        {"metric_interval_lower_bound": "0", "scaling_adjustment": 1}
                    ],
                },
                opts=child,
            )
            aws.cloudwatch.MetricAlarm(
                f"{name}-no-capacity",
                name=args.naming.physical(model.name, "no-capacity", max_len=255),
                alarm_description=f"{model.name}: a request found no copy; adds one copy",
                namespace="AWS/SageMaker",
                metric_name="NoCapacityInvocationFailures",
                dimensions={"InferenceComponentName": args.inference_component_name},
                statistic="Maximum",
                period=30,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="missing",
                alarm_actions=[wake.arn],
                tags=args.naming.tags(model=model.name),
                opts=child,
            )
            if args.gateway_stack is not None:
                aws.cloudwatch.MetricAlarm(
                    f"{name}-gateway-waiting",
                    **wake_alarm_spec(
                        name=args.naming.physical(model.name, "gateway-waiting", max_len=255),
                        stack=args.gateway_stack, model=model.name),
                    alarm_actions=[wake.arn],
                    tags=args.naming.tags(model=model.name),
                    opts=child,
                )
        self.register_outputs({})
