"""The stack's gateway on the ecs platform: a Fargate service in the stack's cluster, behind the
stack's internal ALB on `/v1/*`, calling each model through the same ALB (`/<model>/v1`).

`gateway_problems` is part of the ecs platform's config check: the gateway reaches the models
through the ALB from inside the VPC over HTTP, so it needs the internal, HTTP-only ALB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pulumi

from components.config import NAMESPACE, StackConfig
from components.ecs.routing import PRIORITY_MAX, PRIORITY_MIN, hashed_priority
from components.facts.images import LITELLM
from components.gateway import config as gw
from components.gateway.fargate import (
    FargateGateway,
    FargateGatewayArgs,
    ListenerAttachment,
    api_base_env,
)
from components.network import Network
from components.tags import Naming

ROUTE_NAME = "llm-hosting-gateway"
"""Its listener rule's priority is hashed from this name, like a model's from the model's."""


@dataclass(frozen=True)
class GatewayWake:
    """What a model service needs to wake from zero on the gateway's waiting metric."""

    stack: str
    cooldown_seconds: Mapping[str, int]
    """Per model: the wait bound; one step of +1 replica at most per bound (the first replica
    takes that long to start, and more steps meanwhile would overshoot)."""


def gateway_wake(config: StackConfig, naming: Naming) -> GatewayWake | None:
    if not config.gateway_enabled:
        return None
    plan = gw.gateway_plan(config)
    return GatewayWake(naming.prefix, {r.name: r.wait_bound_seconds for r in plan.routes})


def gateway_problems(config: StackConfig) -> list[str]:
    if config.platform != "ecs" or not config.gateway_enabled:
        return []
    ecs, p = config.ecs, f"{NAMESPACE}:ecs"
    off = f"or set `{NAMESPACE}:gateway.enabled` to false"
    problems = []
    if ecs.load_balancer_scheme == "internet-facing":
        problems.append(f"{p}.loadBalancerScheme: the gateway calls the models through the "
                        "stack's ALB from inside the VPC, which an internet-facing ALB is not; "
                        f"use internal (put your own public entry in front of the gateway) {off}")
    if ecs.certificate_arn is not None:
        problems.append(f"{p}.certificateArn: the gateway calls the models through the ALB over "
                        "HTTP, which an HTTPS listener redirects; remove the certificate (the "
                        f"ALB stays internal) {off}")
    for i, model in enumerate(config.models):
        if model.name == "v1":
            problems.append(f"{NAMESPACE}:models[{i}].name: 'v1' is the gateway's path "
                            f"(/v1/...); rename the model {off}")
    return problems


def ecs_gateway(name: str, config: StackConfig, naming: Naming, network: Network, *,
                cluster_arn: pulumi.Input[str], listener: ListenerAttachment,
                account: pulumi.Input[str], partition: pulumi.Input[str],
                depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions
                ) -> FargateGateway:
    plan = gw.gateway_plan(config)
    # The ALB's DNS name is known at deploy time only: the config names an environment
    # variable per model and the task definition sets it.
    backends = {r.name: gw.openai_backend(r, f"os.environ/{api_base_env(r.name)}")
                for r in plan.routes}
    environment = {api_base_env(r.name): pulumi.Output.concat(
        listener.scheme, "://", listener.dns_name, f"/{r.name}/v1") for r in plan.routes}
    config_yaml = gw.render(gw.litellm_config(
        plan, backends, cloudwatch=gw.cloudwatch_settings(plan, naming.prefix)))
    return FargateGateway(name, FargateGatewayArgs(
        naming=naming, plan=plan, config_yaml=config_yaml, environment=environment,
        region=config.region, account=account, partition=partition,
        vpc_id=network.vpc_id, vpc_cidr=network.vpc_cidr,
        subnet_ids=network.private_subnet_ids, logs_kms_key_arn=network.logs_kms_key_arn,
        image=LITELLM.image, entrypoint=LITELLM.entrypoint, user=(LITELLM.uid, LITELLM.gid),
        bedrock_resources=pulumi.Output.all(account, partition).apply(
            lambda ap: [arn for t in plan.bedrock_targets
                        for arn in gw.bedrock_resource_arns(t, config.region, ap[1], ap[0])]),
        cluster_arn=cluster_arn, attach=listener,
        egress=[(80, network.vpc_cidr)],  # the ALB, inside the VPC
        depends_on=depends_on,
    ), opts)


def free_priority(name: str, taken: Iterable[int]) -> int:
    """The gateway rule's priority: its name's hash, or the next free one (`routing`'s rule),
    chosen after every model's so enabling the gateway never moves a model's rule."""
    used = set(taken)
    priority = hashed_priority(name)
    while priority in used:
        priority = PRIORITY_MIN if priority >= PRIORITY_MAX else priority + 1
    return priority
