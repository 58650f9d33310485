"""The stack's gateway on the sagemaker platform: a Fargate service with its own internal ALB,
calling each inference component through SageMaker Runtime (SigV4, inside the VPC through the
`sagemaker.runtime` interface endpoint) and the Bedrock fallbacks named in config."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.facts.images import LITELLM
from components.gateway import config as gw
from components.gateway.fargate import FargateGateway, FargateGatewayArgs
from components.gateway.iam import sagemaker_arns
from components.network import Network
from components.tags import Naming


def sagemaker_gateway(name: str, config: StackConfig, naming: Naming, network: Network, *,
                      endpoint_name: str, inference_components: dict[str, str],
                      opts: pulumi.ResourceOptions) -> FargateGateway:
    """`inference_components`: model name -> inference component name."""
    plan = gw.gateway_plan(config)
    backends = {model: gw.sagemaker_backend(endpoint_name, ic, config.region)
                for model, ic in inference_components.items()}
    config_yaml = gw.render(gw.litellm_config(
        plan, backends, cloudwatch=gw.cloudwatch_settings(plan, naming.prefix)))
    invoke = pulumi.InvokeOutputOptions(parent=opts.parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    partition = aws.get_partition_output(opts=invoke).partition
    ics = list(inference_components.values())
    return FargateGateway(name, FargateGatewayArgs(
        naming=naming, plan=plan, config_yaml=config_yaml, environment={},
        region=config.region, account=account, partition=partition,
        vpc_id=network.vpc_id, vpc_cidr=network.vpc_cidr,
        subnet_ids=network.private_subnet_ids, logs_kms_key_arn=network.logs_kms_key_arn,
        image=LITELLM.image, entrypoint=LITELLM.entrypoint, user=(LITELLM.uid, LITELLM.gid),
        sagemaker_resources=pulumi.Output.all(account, partition).apply(
            lambda ap: sagemaker_arns(partition=ap[1], region=config.region, account=ap[0],
                                      endpoint_name=endpoint_name,
                                      inference_component_names=ics)),
        bedrock_resources=pulumi.Output.all(account, partition).apply(
            lambda ap: [arn for t in plan.bedrock_targets
                        for arn in gw.bedrock_resource_arns(t, config.region, ap[1], ap[0])]),
        alarm_topic_arn=config.sagemaker.alarm_topic_arn,
        certificate_arn=config.gateway.certificate_arn,
    ), opts)
