"""`platform: ecs`: every model as an ECS service on its own GPU capacity provider(s).

Composition: cluster (Container Insights enhanced) -> one ALB -> per model a `GpuCapacity`
(launch template, on-demand group with a Stopped warm pool, optional Spot group, capacity
providers) and a `ModelService` (task definition, target group, service, autoscaling) with its
`ModelMonitoring` -> the cluster's capacity provider associations and default strategy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.config import NAMESPACE, ConfigError, Model
from components.ecs.capacity import GpuCapacity, GpuCapacityArgs, HostPlan
from components.ecs.gateway import ROUTE_NAME as GATEWAY_ROUTE
from components.ecs.gateway import ecs_gateway, free_priority, gateway_wake
from components.ecs.loadbalancer import IDLE_TIMEOUT_SECONDS, LoadBalancer, LoadBalancerArgs
from components.ecs.monitoring import ModelMonitoring, MonitoringArgs
from components.ecs.placement import task_shape
from components.ecs.routing import listener_priorities, priority_problems
from components.ecs.service import (
    ModelService,
    ModelServiceArgs,
    ServiceContext,
    shallow_fields,
)
from components.ecs.shared_service import SharedService, SharedServiceArgs, shared_tags
from components.ecs.sharing import SharedHost, shared_hosts, shared_spot_types, sizing_summary
from components.facts.images import ADOT_COLLECTOR_IMAGE, AWS_CLI_IMAGE, ENGINE_IMAGES
from components.gateway import config as gw
from components.gateway.fargate import ListenerAttachment
from components.kms import service_only_key
from components.platform_api import PlatformArgs

if TYPE_CHECKING:
    from components.tags import Naming

HF_TOKEN_RECOVERY_DAYS: dict[str, int] = {"dev": 7, "staging": 7, "prod": 30}


def curl_command(scheme: str, dns_name: str, model: Model) -> str:
    """A ready-to-paste streaming chat completion against one model's path."""
    body = json.dumps({
        "model": model.spec.model_id,
        "stream": True,
        "max_tokens": 128,
        "messages": [{"role": "user", "content": "Say hello in one sentence."}],
    })
    return (f"curl -sN {scheme}://{dns_name}/{model.name}/v1/chat/completions "
            f"-H 'Content-Type: application/json' -d '{body}'")


def _host_plan(host: SharedHost, naming: Naming) -> HostPlan:
    return HostPlan(
        name=host.name, instance_type=host.instance.name,
        capacity=host.capacity,  # type: ignore[arg-type]  # validated: one value per group
        min_replicas=host.min_replicas, max_replicas=host.max_replicas,
        spot_types=tuple(shared_spot_types(host)) if host.capacity == "spot" else (),
        host_tags=shared_tags(naming, host), tags=shared_tags(naming, host),
    )


def _images(host: SharedHost) -> list[str]:
    """Every image a shared task runs, pre-pulled onto warm-pool instances."""
    engines = [ENGINE_IMAGES[m.model.spec.engine].image for m in host.members]
    weights = [AWS_CLI_IMAGE] if any(m.model.spec.weights_uri for m in host.members) else []
    return [*dict.fromkeys(engines), ADOT_COLLECTOR_IMAGE, *weights]


class EcsPlatform(pulumi.ComponentResource):
    """The ECS platform; `exports` holds the stack outputs it owns."""

    exports: Mapping[str, Any]

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:ecs:EcsPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, network, naming = args.config, args.network, args.naming
        ecs_cfg = config.ecs
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        cluster_name = naming.cluster_name
        names = [m.name for m in config.models]
        # Defaults cannot collide; pins are checked here too, so a config parsed without the
        # platform checks still fails before any child registers.
        pin_problems = priority_problems(names, ecs_cfg.listener_priorities,
                                         f"{NAMESPACE}:ecs.listenerPriorities")
        if pin_problems:
            raise ConfigError(pin_problems)
        priorities = listener_priorities(names, ecs_cfg.listener_priorities)
        gateway_on = config.gateway_enabled
        # After the models' own priorities, so turning the gateway on never moves a model's rule.
        gateway_priority = free_priority(GATEWAY_ROUTE, priorities.values()) if gateway_on else 0
        plan = gw.gateway_plan(config) if gateway_on else None
        wake = gateway_wake(config, naming)
        hosts = shared_hosts(config)  # ConfigError before any child registers
        grouped = {m.model.name for h in hosts for m in h.members}
        single = [m for m in config.models if m.name not in grouped]

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=cluster_name,
            # Enhanced observability: per-task and per-container metrics.
            # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cloudwatch-container-insights.html
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enhanced")],
            tags=naming.tags(),
            opts=child,
        )
        lb = LoadBalancer(
            f"{name}-lb",
            LoadBalancerArgs(naming, network, ecs_cfg,
                             [ENGINE_IMAGES[m.spec.engine].port for m in single]
                             + [m.port for h in hosts for m in h.members]
                             + ([gw.PORT] if gateway_on else []),
                             idle_timeout_seconds=(plan.idle_timeout_seconds if plan
                                                   else IDLE_TIMEOUT_SECONDS),
                             gateway=gateway_on),
            child,
        )

        secret_arn: pulumi.Output[str] | None = None
        if config.hf_token is not None and any(m.spec.weights_uri is None for m in config.models):
            # A key of the stack's own, usable only through Secrets Manager: the execution role
            # reads the secret with GetSecretValue and needs no KMS permission of its own.
            key = service_only_key(
                f"{name}-hf-token-key", description=f"{naming.prefix}: Hugging Face token secret",
                service="secretsmanager", region=config.region, tags=naming.tags(), opts=child)
            secret = aws.secretsmanager.Secret(
                f"{name}-hf-token",
                name_prefix=f"{naming.prefix}/hf-token-",
                description="Hugging Face token for gated models (ECS task secret)",
                recovery_window_in_days=HF_TOKEN_RECOVERY_DAYS[naming.environment],
                kms_key_id=key.arn,
                tags=naming.tags(),
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-hf-token-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(config.hf_token),
                opts=child,
            )
            secret_arn = secret.arn

        capacities: list[GpuCapacity] = []
        endpoints: dict[str, pulumi.Output[str]] = {}
        commands: dict[str, pulumi.Output[str]] = {}
        pending: list[tuple[Model, GpuCapacity]] = []
        for model in single:
            image = ENGINE_IMAGES[model.spec.engine]
            shape = task_shape(model, ecs_cfg.root_volume_gib)
            capacity = GpuCapacity(
                f"{name}-{model.name}-capacity",
                GpuCapacityArgs(
                    naming=naming, hosts=HostPlan.for_model(model, naming), shape=shape,
                    network=network, config=ecs_cfg,
                    region=config.region, cluster_name=cluster_name, account=account,
                    partition=partition,
                    images=[image.image, ADOT_COLLECTOR_IMAGE]
                    + ([AWS_CLI_IMAGE] if model.spec.weights_uri else []),
                ),
                child,
            )
            capacities.append(capacity)
            pending.append((model, capacity))
        shared: list[tuple[SharedHost, GpuCapacity]] = []
        for host in hosts:
            capacity = GpuCapacity(
                f"{name}-{host.name}-capacity",
                GpuCapacityArgs(
                    naming=naming, hosts=_host_plan(host, naming), shape=host.shape,
                    network=network, config=ecs_cfg, region=config.region,
                    cluster_name=cluster_name, account=account, partition=partition,
                    images=_images(host),
                ),
                child,
            )
            capacities.append(capacity)
            shared.append((host, capacity))

        providers = [p for c in capacities
                     for p in (c.on_demand_provider, c.spot_provider) if p is not None]
        associations = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=cluster.name,
            capacity_providers=providers,
            # Services set their own strategy; the default only catches ad-hoc run-task calls,
            # which land on the first model's on-demand capacity instead of failing.
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=capacities[0].on_demand_provider, base=0, weight=1)
            ],
            opts=child,
        )
        context = shallow_fields(ServiceContext(
            naming=naming, network=network, region=config.region, account=account,
            partition=partition, cluster_arn=cluster.arn, cluster_name=cluster_name,
            listener_arn=lb.listener_arn, alb_arn_suffix=lb.arn_suffix,
            alb_security_group_id=lb.security_group_id,
            logs_kms_key_arn=network.logs_kms_key_arn, hf_token_secret_arn=secret_arn,
            depends_on=[associations], rule_priorities=priorities, gateway_wake=wake,
        ))
        gateway_stack = naming.prefix if gateway_on else None

        for model, capacity in pending:
            image = ENGINE_IMAGES[model.spec.engine]
            shape = task_shape(model, ecs_cfg.root_volume_gib)
            service = ModelService(
                f"{name}-{model.name}",
                ModelServiceArgs(
                    **context, model=model, image=image, shape=shape,
                    on_demand_provider=capacity.on_demand_provider,
                    spot_provider=capacity.spot_provider,
                ),
                child,
            )
            ModelMonitoring(
                f"{name}-{model.name}-monitoring",
                MonitoringArgs(
                    naming=naming, model=model.name, region=config.region,
                    load_balancer_arn_suffix=lb.arn_suffix,
                    target_group_arn_suffix=service.target_group_arn_suffix,
                    cluster_name=cluster_name, service_name=service.service_name,
                    group_names=list(capacity.group_names),
                    warm_group_name=capacity.warm_group_name,
                    gateway_stack=gateway_stack,
                ),
                child,
            )
            endpoints[model.name] = pulumi.Output.concat(
                lb.scheme, "://", lb.dns_name, f"/{model.name}/v1")
            commands[model.name] = lb.dns_name.apply(
                lambda dns, m=model: curl_command(lb.scheme, dns, m))

        for host, capacity in shared:
            shared_service = SharedService(
                f"{name}-{host.name}",
                SharedServiceArgs(
                    **context, host=host,
                    on_demand_provider=capacity.on_demand_provider,
                    spot_provider=capacity.spot_provider,
                ),
                child,
            )
            for member in host.members:
                model = member.model
                ModelMonitoring(
                    f"{name}-{model.name}-monitoring",
                    MonitoringArgs(
                        naming=naming, model=model.name, region=config.region,
                        load_balancer_arn_suffix=lb.arn_suffix,
                        target_group_arn_suffix=shared_service.target_group_arn_suffixes[
                            model.name],
                        cluster_name=cluster_name, service_name=shared_service.service_name,
                        group_names=list(capacity.group_names),
                        warm_group_name=capacity.warm_group_name, shared=True,
                        gateway_stack=gateway_stack,
                    ),
                    child,
                )
                endpoints[model.name] = pulumi.Output.concat(
                    lb.scheme, "://", lb.dns_name, f"/{model.name}/v1")
                commands[model.name] = lb.dns_name.apply(
                    lambda dns, m=model: curl_command(lb.scheme, dns, m))

        self.exports = {
            "clusterName": cluster.name,
            "loadBalancerDnsName": lb.dns_name,
            "endpoints": endpoints,
            "invokeCommands": commands,
        }
        if hosts:
            self.exports = {**self.exports,
                            "sharedInstances": {h.name: sizing_summary(h) for h in hosts}}
        if gateway_on:
            gateway = ecs_gateway(
                f"{name}-gateway", config, naming, network, cluster_arn=cluster.arn,
                listener=ListenerAttachment(
                    listener_arn=lb.listener_arn, priority=gateway_priority,
                    security_group_id=lb.security_group_id, dns_name=lb.dns_name,
                    scheme=lb.scheme, arn_suffix=lb.arn_suffix),
                account=account, partition=partition, depends_on=[associations], opts=child)
            self.exports = {**self.exports, "gatewayUrl": gateway.url,
                            "gatewayKeySecretArn": gateway.master_key_secret_arn}
        self.register_outputs(dict(self.exports))
