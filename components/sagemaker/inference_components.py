"""One model on the endpoint: a SageMaker Model, its alarms, its inference component, scaling.

* `aws.sagemaker.Model`: the DLC image of the stack's region, the engine environment. With
  `weightsUri` the weights come from S3 as uncompressed model data (no token); without it the
  container downloads from the Hub and, for gated models, gets `HF_TOKEN` as a Pulumi secret.
  VPC placement and network isolation take effect on the endpoint config in inference-component
  mode (see `endpoint`); the model repeats the same values, as AWS's SDK does, so the model
  stands on its own and reads the same in the console.
  The model is immutable; Pulumi auto-names it so a change creates the new model first and the
  inference component then rolls onto it.
* `aws-native:sagemaker:InferenceComponent`: names its production variant, reserves GPUs, host
  memory and CPU per copy (see `packing`), starts `minReplicas` copies, and updates by rolling
  one copy at a time (new copy up before an old one goes), rolled back by this component's
  alarms. https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateInferenceComponent.html
* The copy count belongs to autoscaling after creation: `runtimeConfig` is ignored on update, so
  `pulumi up` never scales a busy model back in to `minReplicas`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.sagemaker.alarms import ComponentAlarmsArgs, InferenceComponentAlarms
from components.sagemaker.autoscaling import InferenceComponentScaling, ScalingArgs
from components.sagemaker.containers import (
    HF_TOKEN_ENV,
    engine_environment,
    image_uri,
    model_data_source,
    uses_hub,
)
from components.sagemaker.packing import Placement
from components.tags import Naming, startup_descriptor

ROLLING_WAIT_SECONDS = 120
MAX_EXECUTION_SECONDS = 28800


def compute_requirements(placement: Placement) -> dict[str, Any]:
    """`ComputeResourceRequirements` of one copy (Pulumi args, snake_case)."""
    return {
        "number_of_accelerator_devices_required": float(placement.gpus),
        "number_of_cpu_cores_required": placement.cpu_cores,
        "min_memory_required_in_mb": placement.min_memory_mib,
    }


def rolling_update(placement: Placement) -> dict[str, Any]:
    """One copy at a time, each given time to load and to be watched by the alarms."""
    per_copy = placement.startup_timeout_seconds + ROLLING_WAIT_SECONDS
    timeout = min(MAX_EXECUTION_SECONDS, max(600, per_copy * max(1, placement.max_copies)))
    return {
        "maximum_batch_size": {"type": "COPY_COUNT", "value": 1},
        "wait_interval_in_seconds": ROLLING_WAIT_SECONDS,
        "rollback_maximum_batch_size": {"type": "CAPACITY_PERCENT", "value": 100},
        "maximum_execution_timeout_in_seconds": timeout,
    }


def model_container(placement: Placement, region: str,
                    hf_token: Any = None) -> aws.sagemaker.ModelPrimaryContainerArgs:
    """`primary_container` of the SageMaker Model. Typed args, not dicts: a misspelt nested key
    in a dict is passed through untranslated and only AWS would reject it."""
    model = placement.model
    environment: dict[str, Any] = engine_environment(model)
    if uses_hub(model) and hf_token is not None:
        # The whole environment becomes a secret in state and in the engine's inputs.
        environment[HF_TOKEN_ENV] = hf_token
    source = model_data_source(model)
    data_source = None
    if source is not None:
        s3 = source["S3DataSource"]
        assert isinstance(s3, dict)
        data_source = aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(
            s3_data_sources=[
                aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                    s3_uri=s3["S3Uri"],
                    s3_data_type=s3["S3DataType"],
                    compression_type=s3["CompressionType"],
                )
            ]
        )
    return aws.sagemaker.ModelPrimaryContainerArgs(
        image=image_uri(model, region),
        environment=environment,
        model_data_source=data_source,
    )


@dataclass(frozen=True)
class ModelDeploymentArgs:
    naming: Naming
    region: str
    placement: Placement
    inference_component_name: str
    endpoint_name: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    network_isolation: bool
    """Endpoint-wide in inference-component mode: true only when no model needs the Hub."""
    hf_token: Any  # secret Output or None
    topic_arn: str | None
    log_group: pulumi.Resource | None = None
    """`/aws/sagemaker/InferenceComponents/<name>`: created first (see `logs`)."""
    gateway_stack: str | None = None
    """Set when the stack's gateway runs: its `RequestsWaiting` for this model also wakes it."""


class ModelDeployment(pulumi.ComponentResource):
    """Model + alarms + inference component + copy autoscaling for one configured model."""

    inference_component_name: pulumi.Output[str]

    def __init__(self, name: str, args: ModelDeploymentArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:ModelDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        placement, naming = args.placement, args.naming
        model = placement.model
        tags = naming.serving_tags(model, "sagemaker")
        ic_tags = {**tags, **startup_descriptor(model)}  # what the pack's start-up rule reads

        sm_model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=args.execution_role_arn,
            primary_container=model_container(placement, args.region, args.hf_token),
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(
                subnets=args.subnet_ids,
                security_group_ids=[args.security_group_id],
            ),
            enable_network_isolation=args.network_isolation,
            tags=tags,
            opts=child,
        )
        alarms = InferenceComponentAlarms(
            f"{name}-alarms",
            ComponentAlarmsArgs(naming, args.inference_component_name, placement,
                                args.topic_arn),
            child,
        )
        component = aws_native.sagemaker.InferenceComponent(
            f"{name}-ic",
            inference_component_name=args.inference_component_name,
            endpoint_name=args.endpoint_name,
            variant_name=placement.variant_name,
            specification={
                "model_name": sm_model.name,
                "compute_resource_requirements": compute_requirements(placement),
                # The start-up model's windows (components/startup.py), the pack's too.
                "startup_parameters": {
                    "container_startup_health_check_timeout_in_seconds":
                        placement.startup.container_startup_seconds,
                    "model_data_download_timeout_in_seconds":
                        placement.startup.model_download_seconds,
                },
            },
            runtime_config={"copy_count": placement.min_copies},
            deployment_config={
                "rolling_update_policy": rolling_update(placement),
                "auto_rollback_configuration": {
                    "alarms": alarms.rollback_alarm_names.apply(
                        lambda names: [{"alarm_name": n} for n in names]
                    ),
                },
            },
            tags=[{"key": k, "value": v} for k, v in sorted(ic_tags.items())],
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["runtimeConfig"],
                depends_on=[args.log_group] if args.log_group is not None else []),
        )
        self.inference_component_name = component.inference_component_name.apply(
            lambda n: n or args.inference_component_name
        )
        InferenceComponentScaling(
            f"{name}-scaling",
            ScalingArgs(naming, self.inference_component_name, placement, args.topic_arn,
                        args.gateway_stack),
            child,
        )
        self.register_outputs({"inferenceComponentName": self.inference_component_name})
