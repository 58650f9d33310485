"""`SageMakerPlatform`: every configured model on one real-time endpoint, as inference components.

Composition, in dependency order: execution role -> endpoint alarms -> endpoint (security group,
endpoint config, endpoint) -> per model: SageMaker model, component alarms, inference component,
copy autoscaling -> dashboard. Packing (which variant, how many copies per instance) is decided
by `packing.plan_variants` before anything registers.

The `aws` and `aws-native` providers come from `__main__` through the parent chain.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from components.config import Model
from components.platform_api import PlatformArgs
from components.sagemaker.alarms import EndpointAlarms, EndpointAlarmsArgs
from components.sagemaker.containers import image_for, s3_location, uses_hub, weights_location
from components.sagemaker.dashboard import DashboardArgs, EndpointDashboard
from components.sagemaker.endpoint import ServingEndpoint, ServingEndpointArgs
from components.sagemaker.gateway import sagemaker_gateway
from components.sagemaker.iam import ExecutionRole, ExecutionRoleArgs
from components.sagemaker.inference_components import ModelDeployment, ModelDeploymentArgs
from components.sagemaker.logs import EndpointLogs, EndpointLogsArgs
from components.sagemaker.packing import plan_variants
from components.tags import Naming

SAMPLE_MESSAGES = [{"role": "user", "content": "Write a haiku about GPUs."}]
"""OpenAI-style chat body: TGI takes it with `MESSAGES_API_ENABLED`, LMI's vLLM backend natively."""


def _body(stream: bool) -> str:
    return json.dumps({"messages": SAMPLE_MESSAGES, "max_tokens": 256, "stream": stream})


def invoke_command(region: str, endpoint_name: str, component_name: str) -> str:
    """A ready-to-paste AWS CLI v2 request for one inference component (whole answer at once).

    The AWS CLI has no streaming command: it deletes `sagemaker-runtime
    invoke-endpoint-with-response-stream` from its command table, as it does every event-stream
    operation (awscli/customizations/removals.py, "not yet fully supported"). So the CLI command
    asks for the whole answer; `stream_command` streams through boto3.
    """
    return " ".join([
        "aws sagemaker-runtime invoke-endpoint",
        f"--region {region}",
        f"--endpoint-name {endpoint_name}",
        f"--inference-component-name {component_name}",
        "--content-type application/json",
        "--cli-binary-format raw-in-base64-out",
        f"--body {shlex.quote(_body(stream=False))}",
        "/dev/stdout",
    ])


#: Values arrive as arguments, so the program has no quotes of its own to escape.
STREAM_PROGRAM = "; ".join([
    "import boto3, sys",
    'r = boto3.client("sagemaker-runtime", region_name=sys.argv[1])'
    ".invoke_endpoint_with_response_stream(EndpointName=sys.argv[2], "
    'InferenceComponentName=sys.argv[3], ContentType="application/json", Body=sys.argv[4])',
    '[print(e["PayloadPart"]["Bytes"].decode(), end="", flush=True) '
    'for e in r["Body"] if "PayloadPart" in e]',
])


def stream_command(region: str, endpoint_name: str, component_name: str) -> str:
    """A ready-to-paste streaming request (InvokeEndpointWithResponseStream through boto3):
    prints tokens as the engine writes them, which is what a chat client sees."""
    return " ".join(shlex.quote(a) for a in (
        "python3", "-c", STREAM_PROGRAM, region, endpoint_name, component_name,
        _body(stream=True)))


def model_role_args(model: Model, naming: Naming, region: str, vpc_id: pulumi.Input[str],
                    endpoint_name: str, component_name: str) -> ExecutionRoleArgs:
    """One model's execution role: its image, its own `weightsUri` prefix (and key) only, its
    inference component's logs. Changing it replaces the Model (immutable), and the inference
    component rolls onto the new one copy by copy."""
    location = weights_location(model)
    key = model.spec.weights_kms_key_arn
    return ExecutionRoleArgs(
        naming=naming,
        region=region,
        vpc_id=vpc_id,
        repository_arns=[image_for(model).repository_arn(region)],
        weights=[location] if location else [],
        weights_keys=[(key, *location)] if key and location else [],
        endpoint_name=endpoint_name,
        inference_component_names=[component_name],
        description=f"SageMaker model {model.name} (reads only its own weights)",
        tags=naming.tags(model=model.name),
    )


class SageMakerPlatform(pulumi.ComponentResource):
    """One endpoint, one inference component per model, packed per instance type."""

    exports: Mapping[str, Any]

    def __init__(self, name: str, args: PlatformArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config, naming, network = args.config, args.naming, args.network
        super().__init__("llm-hosting:sagemaker:SageMakerPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plans = plan_variants(config)
        placements = [p for plan in plans for p in plan.placements]
        endpoint_name = naming.physical("endpoint")
        ic_names = {p.model.name: naming.physical(p.model.name) for p in placements}
        topic = config.sagemaker.alarm_topic_arn
        hub_egress = any(uses_hub(m) for m in config.models)
        gateway_stack = naming.prefix if config.gateway_enabled else None

        # The endpoint config's role reads no weights: each model's own role does (iam.py).
        role = ExecutionRole(
            f"{name}-role",
            ExecutionRoleArgs(
                naming=naming,
                region=config.region,
                vpc_id=network.vpc_id,
                repository_arns=sorted({image_for(m).repository_arn(config.region)
                                        for m in config.models}),
                weights=[],
                endpoint_name=endpoint_name,
                inference_component_names=list(ic_names.values()),
                data_capture=(s3_location(config.sagemaker.data_capture_s3_uri)
                              if config.sagemaker.data_capture_percent > 0
                              and config.sagemaker.data_capture_s3_uri else None),
                description="SageMaker endpoint execution role (instances, VPC, data capture)",
            ),
            child,
        )
        # Before the endpoint and the components: SageMaker would create them unencrypted.
        logs = EndpointLogs(
            f"{name}-logs",
            EndpointLogsArgs(naming=naming, region=config.region, endpoint_name=endpoint_name,
                             inference_component_names=ic_names),
            child,
        )
        alarms = EndpointAlarms(
            f"{name}-alarms", EndpointAlarmsArgs(naming, endpoint_name, plans, topic), child
        )
        endpoint = ServingEndpoint(
            f"{name}-endpoint",
            ServingEndpointArgs(
                naming=naming,
                region=config.region,
                endpoint_name=endpoint_name,
                plans=plans,
                options=config.sagemaker,
                execution_role_arn=role.arn,
                rollback_alarm_names=alarms.rollback_alarm_names,
                vpc_id=network.vpc_id,
                vpc_cidr=network.vpc_cidr,
                subnet_ids=network.private_subnet_ids,
                hub_egress=hub_egress,
                log_group=logs.endpoint_log_group,
            ),
            child,
        )
        components: dict[str, pulumi.Output[str]] = {}
        for placement in placements:
            model = placement.model.name
            model_role = ExecutionRole(
                f"{name}-{model}",
                model_role_args(placement.model, naming, config.region, network.vpc_id,
                                endpoint_name, ic_names[model]),
                child,
            )
            deployment = ModelDeployment(
                f"{name}-{model}",
                ModelDeploymentArgs(
                    naming=naming,
                    region=config.region,
                    placement=placement,
                    inference_component_name=ic_names[model],
                    endpoint_name=endpoint.endpoint_name,
                    execution_role_arn=model_role.arn,
                    subnet_ids=network.private_subnet_ids,
                    security_group_id=endpoint.security_group_id,
                    network_isolation=not hub_egress,
                    hf_token=config.hf_token,
                    topic_arn=topic,
                    log_group=logs.component_log_groups[model],
                    gateway_stack=gateway_stack,
                ),
                child,
            )
            components[model] = deployment.inference_component_name
        dashboard = EndpointDashboard(
            f"{name}-dashboard",
            DashboardArgs(naming, config.region, endpoint.endpoint_name, plans, components,
                          gateway_stack),
            child,
        )

        self.endpoint_name = endpoint.endpoint_name
        self.inference_component_names = pulumi.Output.all(**components)
        names = pulumi.Output.all(endpoint.endpoint_name, *components.values())

        def per_model(command: Callable[[str, str, str], str]) -> pulumi.Output[dict[str, str]]:
            return names.apply(lambda v: {m: command(config.region, v[0], ic)
                                          for m, ic in zip(components, v[1:], strict=True)})

        self.exports = {
            "endpointName": self.endpoint_name,
            "inferenceComponentNames": self.inference_component_names,
            "invokeCommands": per_model(invoke_command),
            "streamCommands": per_model(stream_command),
            "dashboardName": dashboard.dashboard_name,
        }
        if config.gateway_enabled:
            gateway = sagemaker_gateway(
                f"{name}-gateway", config, naming, network, endpoint_name=endpoint_name,
                inference_components=ic_names, opts=child)
            self.exports = {**self.exports, "gatewayUrl": gateway.url,
                            "gatewayKeySecretArn": gateway.master_key_secret_arn}
        self.register_outputs(dict(self.exports))
