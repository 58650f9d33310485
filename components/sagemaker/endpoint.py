"""The real-time endpoint in inference-component mode: security group, endpoint config, endpoint.

* The endpoint config is `aws-native:sagemaker:EndpointConfig`, not pulumi-aws's
  `EndpointConfiguration`: in inference-component mode the instances' VPC placement and network
  isolation are endpoint-level (`VpcConfig`, `EnableNetworkIsolation` on CreateEndpointConfig,
  which SageMaker accepts only for endpoints without a model in the variant), and pulumi-aws 7.x
  has neither argument. AWS's own SDK sets them there for inference-component endpoints
  (sagemaker-python-sdk `ModelBuilder._deploy_core_endpoint` ->
  `endpoint_from_production_variants(vpc_config=..., enable_network_isolation=..., role=...)`).

* One production variant per instance type (see `packing`), no model in the variant (models
  arrive as inference components), managed instance scaling between the instance counts the
  copies need, least-outstanding-requests routing (LLM requests vary by 100x in duration, so
  random routing piles long generations onto one copy), and start-up/download timeouts sized to
  the largest model on the variant.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html
* Volume encryption: every GPU family in the catalog has local NVMe instance storage, which the
  instance encrypts in hardware, and CreateEndpointConfig rejects `KmsKeyId` for such instance
  types ("If any of the models ... use nitro-based instances with local storage, do not specify a
  value for the KmsKeyId parameter",
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html). So a
  customer-managed key is set only for instance types without local storage; data capture, when
  on, is always encrypted with this stack's key.
* Updates: blue/green with a 10% canary (default) or rolling in 25% batches, both rolling back
  automatically when an alarm fires, so a bad config never removes serving capacity first.
  https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails.html. Rolling is not
  available for multi-variant endpoints (deployment-guardrails-exclusions.html), so validation
  refuses `rolling` when the models need more than one instance type.
* The endpoint config is immutable: a change creates a new one (Pulumi auto-names it, so the
  replacement is created before the old is deleted) and the endpoint switches to it under the
  deployment config above. The endpoint keeps its physical name, which the inference components
  and the invoke command use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.config import SageMakerConfig
from components.sagemaker.packing import VariantPlan
from components.tags import SERVING_TAG_PREFIX, Naming

#: Instance families with local NVMe instance storage (EC2 instance type pages, "Instance
#: Storage"): https://aws.amazon.com/ec2/instance-types/g5/ (and g4, g6, g6e, p4, p5).
LOCAL_NVME_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en"})

ROUTING_STRATEGY = "LEAST_OUTSTANDING_REQUESTS"
BLUE_GREEN_CANARY_PERCENT = 10
BLUE_GREEN_WAIT_SECONDS = 600
ROLLING_BATCH_PERCENT = 25
ROLLING_WAIT_SECONDS = 300
MAX_EXECUTION_SECONDS = 28800  # API maximum for MaximumExecutionTimeoutInSeconds


def volume_kms_allowed(plans: Sequence[VariantPlan]) -> bool:
    return not any(plan.instance.family in LOCAL_NVME_FAMILIES for plan in plans)


def production_variant(
    plan: VariantPlan,
) -> aws_native.sagemaker.EndpointConfigProductionVariantArgs:
    """One production variant; no `model_name` (inference-component mode). Typed args: a
    misspelt nested key in a dict would pass through untranslated and only AWS would reject it."""
    return aws_native.sagemaker.EndpointConfigProductionVariantArgs(
        variant_name=plan.name,
        instance_type=plan.instance_type,
        initial_instance_count=plan.initial_instances,
        container_startup_health_check_timeout_in_seconds=plan.container_startup_seconds,
        model_data_download_timeout_in_seconds=plan.model_download_seconds,
        managed_instance_scaling=aws_native.sagemaker.EndpointConfigManagedInstanceScalingArgs(
            status="ENABLED",
            min_instance_count=plan.min_instances,
            max_instance_count=plan.max_instances,
        ),
        routing_config=aws_native.sagemaker.EndpointConfigRoutingConfigArgs(
            routing_strategy=ROUTING_STRATEGY),
    )


def _execution_timeout(plans: Sequence[VariantPlan], wait: int) -> int:
    startup = max(plan.startup_timeout_seconds for plan in plans)
    return min(MAX_EXECUTION_SECONDS, max(600, 2 * startup + 2 * wait))


def deployment_policy(strategy: str, plans: Sequence[VariantPlan]) -> dict[str, Any]:
    """The update policy half of the endpoint's `deployment_config` (Pulumi args)."""
    if strategy == "rolling":
        return {
            "rolling_update_policy": {
                "maximum_batch_size": {"type": "CAPACITY_PERCENT",
                                       "value": ROLLING_BATCH_PERCENT},
                "wait_interval_in_seconds": ROLLING_WAIT_SECONDS,
                "rollback_maximum_batch_size": {"type": "CAPACITY_PERCENT", "value": 100},
                "maximum_execution_timeout_in_seconds": _execution_timeout(
                    plans, ROLLING_WAIT_SECONDS),
            }
        }
    return {
        "blue_green_update_policy": {
            "traffic_routing_configuration": {
                "type": "CANARY",
                "canary_size": {"type": "CAPACITY_PERCENT", "value": BLUE_GREEN_CANARY_PERCENT},
                "wait_interval_in_seconds": BLUE_GREEN_WAIT_SECONDS,
            },
            "termination_wait_in_seconds": BLUE_GREEN_WAIT_SECONDS,
            "maximum_execution_timeout_in_seconds": _execution_timeout(
                plans, BLUE_GREEN_WAIT_SECONDS),
        }
    }


def config_tags(naming: Naming, plans: Sequence[VariantPlan]) -> dict[str, str]:
    """The project's tags plus what the GPU capacity serves: the variants host several models'
    inference components, so it carries the model names (`llm-hosting/models`, space-separated:
    SageMaker tag values allow no comma), not one model's serving descriptor. The policy pack
    refuses GPU capacity that says nothing about what it serves."""
    names = sorted({p.model.name for plan in plans for p in plan.placements})
    return naming.tags(**{f"{SERVING_TAG_PREFIX}models": " ".join(names)})


@dataclass(frozen=True)
class ServingEndpointArgs:
    naming: Naming
    region: str
    endpoint_name: str
    plans: Sequence[VariantPlan]
    options: SageMakerConfig
    execution_role_arn: pulumi.Input[str]
    rollback_alarm_names: pulumi.Input[list[str]]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: pulumi.Input[Sequence[str]]
    hub_egress: bool
    """Some model downloads from the Hub: HTTPS to the internet, and no network isolation
    (isolation is endpoint-wide in inference-component mode)."""
    log_group: pulumi.Resource | None = None
    """`/aws/sagemaker/Endpoints/<name>`: created first, or SageMaker creates it unencrypted."""


class ServingEndpoint(pulumi.ComponentResource):
    """Security group for the model containers, the endpoint config and the endpoint."""

    endpoint_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ServingEndpointArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:sagemaker:ServingEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming = args.naming
        self.security_group_id = self._security_group(name, args, child)

        key: aws.kms.Key | None = None
        capture = args.options.data_capture_percent > 0
        kms_on_volume = volume_kms_allowed(args.plans)
        if capture or kms_on_volume:
            invoke = pulumi.InvokeOutputOptions(parent=self)
            account = aws.get_caller_identity_output(opts=invoke).account_id
            partition = aws.get_partition_output(opts=invoke).partition
            key = aws.kms.Key(
                f"{name}-key",
                description=f"{naming.prefix}: SageMaker endpoint storage and data capture",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=pulumi.Output.all(account, partition, args.execution_role_arn).apply(
                    lambda apr: json.dumps(endpoint_key_policy(*apr))
                ),
                tags=naming.tags(),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(protect=naming.protect)),
            )
        config = aws_native.sagemaker.EndpointConfig(
            f"{name}-config",
            execution_role_arn=args.execution_role_arn,
            production_variants=[production_variant(plan) for plan in args.plans],
            vpc_config=aws_native.sagemaker.EndpointConfigVpcConfigArgs(
                subnets=args.subnet_ids,
                security_group_ids=[self.security_group_id],
            ),
            enable_network_isolation=not args.hub_egress,
            kms_key_id=key.arn if key is not None and kms_on_volume else None,
            data_capture_config=(
                aws_native.sagemaker.EndpointConfigDataCaptureConfigArgs(
                    enable_capture=True,
                    initial_sampling_percentage=args.options.data_capture_percent,
                    destination_s3_uri=args.options.data_capture_s3_uri or "",
                    kms_key_id=key.arn,
                    capture_options=[
                        aws_native.sagemaker.EndpointConfigCaptureOptionArgs(capture_mode="Input"),
                        aws_native.sagemaker.EndpointConfigCaptureOptionArgs(capture_mode="Output"),
                    ],
                )
                if capture and key is not None else None
            ),
            tags=[{"key": k, "value": v} for k, v in sorted(config_tags(naming,
                                                                          args.plans).items())],
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=config.endpoint_config_name,
            deployment_config={
                **deployment_policy(args.options.endpoint_deployment, args.plans),
                "auto_rollback_configuration": {
                    "alarms": pulumi.Output.from_input(args.rollback_alarm_names).apply(
                        lambda names: [{"alarm_name": n} for n in names]
                    ),
                },
            },
            tags=naming.tags(),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[args.log_group] if args.log_group is not None else [])),
        )
        self.endpoint_name = endpoint.name
        self.register_outputs(
            {"endpointName": self.endpoint_name, "securityGroupId": self.security_group_id}
        )

    def _security_group(self, name: str, args: ServingEndpointArgs,
                        opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        """No ingress (SageMaker reaches the container on the instance, not through the ENI).
        Egress HTTPS only: to the VPC's interface endpoints, to S3 through the gateway endpoint
        (model data), and to the internet only when a model downloads from the Hub."""
        s3 = aws.ec2.get_prefix_list_output(
            name=f"com.amazonaws.{args.region}.s3",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        egress: list[aws.ec2.SecurityGroupEgressArgs] = [
            aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS to the VPC interface endpoints (ECR, STS, logs)",
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=[args.vpc_cidr],
            ),
            aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS to S3 through the gateway endpoint (model weights)",
                protocol="tcp", from_port=443, to_port=443, prefix_list_ids=[s3.id],
            ),
        ]
        if args.hub_egress:
            egress.append(aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS to the Hugging Face Hub through NAT (models without "
                "weightsUri)",
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
            ))
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="SageMaker model containers: no ingress, HTTPS egress only",
            vpc_id=args.vpc_id,
            egress=egress,
            tags={**args.naming.tags(), "Name": args.naming.physical("sagemaker")},
            opts=opts,
        )
        return sg.id


def endpoint_key_policy(account: str, partition: str, role_arn: str) -> dict[str, Any]:
    """The endpoint key: administered by the account, used by the execution role, which is the
    identity SageMaker writes captured data as (SSE-KMS with this key) and attaches storage with.
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "ExecutionRoleUse",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*",
                           "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"],
                "Resource": "*",
            },
        ],
    }
