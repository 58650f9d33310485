"""A shared instance's models as ONE ECS service: one task definition with an engine container
per model, one ALB target group + `/<model>/*` rule per model, one Application Auto Scaling
target with each model's policies (see `components.ecs.sharing` for the plan)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.ecs import iam
from components.ecs.containers import (
    TASK_VOLUMES,
    engine_container_name,
    shared_container_definitions,
)
from components.ecs.placement import health_check_grace_seconds
from components.ecs.service import (
    ServiceContext,
    TaskLogsAndRolesArgs,
    capacity_strategy,
    scalable_target,
    scaling_policies,
    target_group_and_route,
    task_logs_and_roles,
    wake_from_zero,
)
from components.ecs.sharing import SharedHost
from components.facts.images import ENGINE_IMAGES
from components.tags import SERVING_TAG_PREFIX, Naming

SHARED_TAG = f"{SERVING_TAG_PREFIX}shared-instance"
MODELS_TAG = f"{SERVING_TAG_PREFIX}models"


def shared_tags(naming: Naming, host: SharedHost) -> dict[str, str]:
    """Tags of resources that serve several models: no `model` tag (it means exactly one) and no
    single-model serving tags; the shared-instance name and the member list instead (space
    separated: ECS/ELB tag values allow no comma)."""
    return naming.tags(**{SHARED_TAG: host.name,
                          MODELS_TAG: " ".join(m.model.name for m in host.members)})


def member_serving_tags(naming: Naming, host: SharedHost, model_name: str) -> dict[str, str]:
    """A member's serving tags with the shared instance type, for its per-model resources (the
    target group), so the policy pack still sees, fits and costs every shared model."""
    member = next(m for m in host.members if m.model.name == model_name)
    return {**naming.serving_tags(member.model, "ecs"),
            f"{SERVING_TAG_PREFIX}instance-type": host.instance.name}


@dataclass(frozen=True)
class SharedServiceArgs(ServiceContext):
    host: SharedHost
    on_demand_provider: pulumi.Input[str]
    spot_provider: pulumi.Input[str] | None


class SharedService(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    target_group_arn_suffixes: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: SharedServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:ecs:SharedService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, host = args.naming, args.host
        tags = shared_tags(naming, host)
        prod = naming.protect
        service_name = naming.physical(host.name, max_len=255)
        members = [m.model for m in host.members]

        # Only a member that downloads from the Hub is handed the token (and the role reads it).
        hub = any(m.spec.weights_uri is None for m in members)
        secret_arn = args.hf_token_secret_arn if hub else None
        weights = [m.spec.weights_uri for m in members if m.spec.weights_uri is not None]
        weights_keys = {m.spec.weights_uri: m.spec.weights_kms_key_arn for m in members
                        if m.spec.weights_uri is not None
                        and m.spec.weights_kms_key_arn is not None}
        # One log group per task; each model's containers log to streams `<model>/...`.
        task_iam = task_logs_and_roles(
            name,
            TaskLogsAndRolesArgs(
                naming=naming, tags=tags, log_name=host.name,
                logs_kms_key_arn=args.logs_kms_key_arn, account=args.account,
                partition=args.partition, secret_arn=secret_arn,
                execution_description=f"ECS pulls images, writes logs, reads secrets for "
                                      f"shared {host.name}",
                task_description=f"shared {host.name} containers: read weights prefixes, "
                                 "write EMF",
                task_policy=lambda metrics_arn, partition: iam.shared_task_role_policy(
                    weights_uris=weights, metrics_log_group_arn=metrics_arn,
                    partition=partition, weights_kms_keys=weights_keys, region=args.region),
            ),
            child,
        )
        logs, metrics_logs = task_iam.logs, task_iam.metrics_logs
        execution_role, task_role = task_iam.execution_role, task_iam.task_role

        definitions = pulumi.Output.all(logs.name, metrics_logs.name, secret_arn).apply(
            lambda v: json.dumps(shared_container_definitions(
                host, region=args.region, service_name=service_name, log_group=v[0],
                metrics_log_group=v[1], hf_token_secret_arn=v[2])))
        task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=service_name,
            network_mode="awsvpc",
            requires_compatibilities=["EC2"],
            cpu=str(host.shape.cpu_units),
            memory=str(host.shape.memory_mib),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=definitions,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(
                name=volume,
                docker_volume_configuration=aws.ecs.TaskDefinitionVolumeDockerVolumeConfigurationArgs(
                    scope="task", driver="local"),
            ) for volume in TASK_VOLUMES],
            tags=tags,
            opts=child,
        )

        task_sg = aws.ec2.SecurityGroup(
            f"{name}-task-sg",
            description=f"shared {host.name} tasks: engine ports from the load balancer only",
            vpc_id=args.network.vpc_id,
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                description=f"load balancer to {m.model.name}", protocol="tcp",
                from_port=m.port, to_port=m.port, security_groups=[args.alb_security_group_id],
            ) for m in host.members],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS: S3 weights, Hugging Face Hub, CloudWatch",
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
            )],
            tags={**tags, "Name": naming.physical("ecs", host.name, "tasks")},
            opts=child,
        )

        groups: dict[str, aws.lb.TargetGroup] = {}
        rules: list[aws.lb.ListenerRule] = []
        for member in host.members:
            model = member.model
            target_group, rule = target_group_and_route(
                f"{name}-{model.name}", model_name=model.name,
                priority=args.rule_priorities[model.name],
                image=ENGINE_IMAGES[model.spec.engine], port=member.port,
                vpc_id=args.network.vpc_id, listener_arn=args.listener_arn,
                tags=member_serving_tags(naming, host, model.name), opts=child)
            groups[model.name] = target_group
            rules.append(rule)

        service = aws.ecs.Service(
            f"{name}-service",
            name=service_name,
            cluster=args.cluster_arn,
            task_definition=task.arn,
            desired_count=host.min_replicas,
            capacity_provider_strategies=capacity_strategy(
                args.on_demand_provider, args.spot_provider, host.min_replicas),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True),
            # ALB and container health checks are ignored until the slowest engine has loaded.
            health_check_grace_period_seconds=max(
                health_check_grace_seconds(m.shape) for m in host.members),
            # One target group per engine container: a service may register up to five.
            # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/register-multiple-targetgroups.html
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=groups[m.model.name].arn,
                container_name=engine_container_name(m.model.name),
                container_port=m.port) for m in host.members],
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.network.private_subnet_ids, security_groups=[task_sg.id],
                assign_public_ip=False),
            ordered_placement_strategies=[
                aws.ecs.ServiceOrderedPlacementStrategyArgs(
                    type="spread", field="attribute:ecs.availability-zone"),
                aws.ecs.ServiceOrderedPlacementStrategyArgs(type="binpack", field="memory"),
            ],
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=False,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[*rules, *args.depends_on],
                ignore_changes=["desiredCount"],
                protect=prod,
            )),
        )

        # The group scales as one: each model's policies act on the same desired count, so the
        # busiest model scales every model out, and scale-in waits until all are quiet.
        target = scalable_target(
            name, cluster_name=args.cluster_name, service=service,
            min_replicas=host.min_replicas, max_replicas=host.max_replicas, tags=tags,
            opts=child)
        for member in host.members:
            model = member.model
            scaling_policies(
                f"{name}-{model.name}", target=target,
                concurrency_target=model.spec.concurrency_target,
                alb_arn_suffix=args.alb_arn_suffix, target_group=groups[model.name],
                dimensions={"ServiceName": service_name, "Model": model.name}, opts=child)
        if host.min_replicas == 0 and args.gateway_wake is not None:
            wake_from_zero(name, target=target, models=[m.name for m in members],
                           wake=args.gateway_wake, naming=naming, opts=child)

        self.service_name = service.name
        self.target_group_arn_suffixes = {n: g.arn_suffix for n, g in groups.items()}
        self.register_outputs({"serviceName": self.service_name})

