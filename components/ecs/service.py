"""One model as an ECS service: roles, logs, task definition, target group + listener rule,
the service on its capacity provider(s), and Application Auto Scaling."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import Model
from components.ecs import iam
from components.ecs.containers import (
    ENGINE,
    INFLIGHT_RUNNING,
    INFLIGHT_WAITING,
    TASK_VOLUMES,
    TaskInputs,
    container_definitions,
)
from components.ecs.gateway import GatewayWake
from components.ecs.iam import INFLIGHT_NAMESPACE
from components.ecs.placement import TaskShape, health_check_grace_seconds
from components.facts.images import EngineImage
from components.gateway.monitoring import wake_alarm_spec
from components.network import Network
from components.tags import Naming, startup_descriptor

LOG_RETENTION_DAYS: dict[str, int] = {"dev": 30, "staging": 90, "prod": 365}
DEREGISTRATION_DELAY_SECONDS = 120
"""In-flight streams get two minutes to finish when a task leaves (matches the container
stopTimeout); longer generations are cut, which clients retry."""

ASSUMED_REQUEST_SECONDS = 30
"""Mean request duration used to turn `concurrencyTarget` into ALB requests per target per
minute (target = concurrency x 60 / 30). The in-flight policy is the precise one; this one also
works before the first EMF datapoint exists."""

SCALE_IN_COOLDOWN_SECONDS = 600
"""A GPU replica costs minutes to get back: scale in slowly. https://docs.aws.amazon.com/
autoscaling/application/userguide/target-tracking-scaling-policy-overview.html"""
SCALE_OUT_COOLDOWN_SECONDS = 60



def _aas(part: str) -> Any:
    """An Application Auto Scaling target-tracking Args class by the part of its (very long)
    generated name after `PolicyTargetTrackingScalingPolicyConfiguration`."""
    return getattr(aws.appautoscaling, f"PolicyTargetTrackingScalingPolicyConfiguration{part}Args")


_TRACKING = _aas("")
_PREDEFINED = _aas("PredefinedMetricSpecification")
_CUSTOM = _aas("CustomizedMetricSpecification")
_METRIC = _aas("CustomizedMetricSpecificationMetric")
_STAT = _aas("CustomizedMetricSpecificationMetricMetricStat")
_STAT_METRIC = _aas("CustomizedMetricSpecificationMetricMetricStatMetric")
_DIM = _aas("CustomizedMetricSpecificationMetricMetricStatMetricDimension")

def path_rewrite(model_name: str) -> tuple[str, str]:
    """ALB URL-rewrite regex and replacement that strip `/<model>` from the path."""
    return f"^/{model_name}/(.*)$", "/$1"


@dataclass(frozen=True)
class ServiceContext:
    """What every ECS service of the platform shares: cluster, load balancer, identity, keys.
    Built once by the platform; single-model and shared services extend it with what they run."""

    naming: Naming
    network: Network
    region: str
    account: pulumi.Input[str]
    partition: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    cluster_name: str
    listener_arn: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    alb_security_group_id: pulumi.Input[str]
    logs_kms_key_arn: pulumi.Input[str]
    hf_token_secret_arn: pulumi.Input[str] | None
    depends_on: list[pulumi.Resource]
    rule_priorities: Mapping[str, int]
    """Model name -> its listener rule priority (`routing.listener_priorities`)."""
    gateway_wake: GatewayWake | None
    """Set with the gateway on: services that scale to zero wake on its waiting metric."""


def shallow_fields(context: ServiceContext) -> dict[str, Any]:
    """The context's fields as keyword arguments for a service's Args (no deep copy: they hold
    resources and outputs)."""
    return {f.name: getattr(context, f.name) for f in fields(context)}


@dataclass(frozen=True)
class ModelServiceArgs(ServiceContext):
    model: Model
    image: EngineImage
    shape: TaskShape
    on_demand_provider: pulumi.Input[str]
    spot_provider: pulumi.Input[str] | None


class ModelService(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:ecs:ModelService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, model, image, shape = args.naming, args.model, args.image, args.shape
        spec = model.spec
        tags = naming.tags(model=model.name)
        prod = naming.protect
        service_name = naming.physical(model.name, max_len=255)

        # The token is only handed to a container that downloads from the Hub.
        secret_arn = args.hf_token_secret_arn if spec.weights_uri is None else None
        task_iam = task_logs_and_roles(
            name,
            TaskLogsAndRolesArgs(
                naming=naming, tags=tags, log_name=model.name,
                logs_kms_key_arn=args.logs_kms_key_arn, account=args.account,
                partition=args.partition, secret_arn=secret_arn,
                execution_description=f"ECS pulls images, writes logs, reads secrets for "
                                      f"{model.name}",
                task_description=f"{model.name} containers: read the weights prefix, write EMF "
                                 "metrics",
                task_policy=lambda metrics_arn, partition: iam.task_role_policy(
                    weights_uri=spec.weights_uri, metrics_log_group_arn=metrics_arn,
                    partition=partition, weights_kms_key_arn=spec.weights_kms_key_arn,
                    region=args.region),
            ),
            child,
        )
        logs, metrics_logs = task_iam.logs, task_iam.metrics_logs
        execution_role, task_role = task_iam.execution_role, task_iam.task_role

        definitions = pulumi.Output.all(logs.name, metrics_logs.name, secret_arn).apply(
            lambda v: json.dumps(container_definitions(TaskInputs(
                model=model, image=image, shape=shape, region=args.region,
                service_name=service_name, log_group=v[0], metrics_log_group=v[1],
                hf_token_secret_arn=v[2],
            )))
        )
        task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=service_name,
            network_mode="awsvpc",
            requires_compatibilities=["EC2"],
            cpu=str(shape.cpu_units),
            memory=str(shape.memory_mib),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=definitions,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(
                name=volume,
                docker_volume_configuration=aws.ecs.TaskDefinitionVolumeDockerVolumeConfigurationArgs(
                    scope="task", driver="local"),
            ) for volume in TASK_VOLUMES],
            tags=naming.serving_tags(model, "ecs"),
            opts=child,
        )

        task_sg = aws.ec2.SecurityGroup(
            f"{name}-task-sg",
            description=f"{model.name} tasks: engine port from the load balancer only",
            vpc_id=args.network.vpc_id,
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                description="load balancer", protocol="tcp", from_port=image.port,
                to_port=image.port, security_groups=[args.alb_security_group_id],
            )],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS: S3 weights, Hugging Face Hub, CloudWatch",
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
            )],
            tags={**tags, "Name": naming.physical("ecs", model.name, "tasks")},
            opts=child,
        )
        target_group, rule = target_group_and_route(
            name, model_name=model.name, priority=args.rule_priorities[model.name], image=image,
            port=image.port, vpc_id=args.network.vpc_id, listener_arn=args.listener_arn,
            tags=tags, opts=child)

        strategy = capacity_strategy(args.on_demand_provider, args.spot_provider,
                                     spec.min_replicas)
        service = aws.ecs.Service(
            f"{name}-service",
            name=service_name,
            cluster=args.cluster_arn,
            task_definition=task.arn,
            desired_count=spec.min_replicas,
            capacity_provider_strategies=strategy,
            # Deploys add new tasks before removing old ones, and roll back on failure.
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True),
            health_check_grace_period_seconds=health_check_grace_seconds(shape),
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=target_group.arn, container_name=ENGINE,
                container_port=image.port)],
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
            # Model loads take minutes; `pulumi up` must not hold for steady state.
            wait_for_steady_state=False,
            # + the start-up model's inputs, so the pack checks the grace period it was set from
            tags={**naming.serving_tags(model, "ecs"), **startup_descriptor(model)},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[rule, *args.depends_on],
                ignore_changes=["desiredCount"],  # Application Auto Scaling owns it
                protect=prod,
            )),
        )
        self._autoscaling(name, args, service_name, target_group, service, child)
        self.service_name = service.name
        self.target_group_arn_suffix = target_group.arn_suffix
        self.register_outputs({"serviceName": self.service_name})

    def _autoscaling(
        self,
        name: str,
        args: ModelServiceArgs,
        service_name: str,
        target_group: aws.lb.TargetGroup,
        service: aws.ecs.Service,
        opts: pulumi.ResourceOptions,
    ) -> None:
        spec = args.model.spec
        target = scalable_target(name, cluster_name=args.cluster_name, service=service,
                                 min_replicas=spec.min_replicas, max_replicas=spec.replicas_max,
                                 tags=args.naming.tags(model=args.model.name), opts=opts)
        scaling_policies(
            name, target=target, concurrency_target=spec.concurrency_target,
            alb_arn_suffix=args.alb_arn_suffix, target_group=target_group,
            dimensions={"ServiceName": service_name}, opts=opts)
        if spec.min_replicas == 0 and args.gateway_wake is not None:
            wake_from_zero(name, target=target, models=[args.model.name],
                           wake=args.gateway_wake, naming=args.naming, opts=opts)


@dataclass(frozen=True)
class TaskLogsAndRolesArgs:
    naming: Naming
    tags: dict[str, str]
    log_name: str
    """`/llm-hosting/<stack>/ecs/<log_name>`: the model, or the shared instance."""
    logs_kms_key_arn: pulumi.Input[str]
    account: pulumi.Input[str]
    partition: pulumi.Input[str]
    secret_arn: pulumi.Input[str] | None
    """The HF token secret, only when a container downloads from the Hub."""
    execution_description: str
    task_description: str
    task_policy: Callable[[str, str], str]
    """(metrics log group ARN, partition) -> the task role's policy document."""


@dataclass(frozen=True)
class TaskLogsAndRoles:
    logs: aws.cloudwatch.LogGroup
    metrics_logs: aws.cloudwatch.LogGroup
    execution_role: aws.iam.Role
    task_role: aws.iam.Role


def task_logs_and_roles(
    name: str, args: TaskLogsAndRolesArgs, opts: pulumi.ResourceOptions
) -> TaskLogsAndRoles:
    """A task's log groups and its two roles, kept apart on purpose: the execution role is what
    ECS uses (pull images, write logs, read the token secret), the task role what the containers
    use (read weights, write EMF metrics), so a container never holds the token-reading grant.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html
    """
    naming = args.naming
    # The serving logs are the incident record: protected like every other log group in prod.
    kept = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=naming.protect))
    logs = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/llm-hosting/{naming.stack}/ecs/{args.log_name}",
        retention_in_days=LOG_RETENTION_DAYS[naming.environment],
        kms_key_id=args.logs_kms_key_arn,
        tags=args.tags,
        opts=kept,
    )
    metrics_logs = aws.cloudwatch.LogGroup(
        f"{name}-metrics-logs",
        name=f"/llm-hosting/{naming.stack}/ecs/{args.log_name}/metrics",
        retention_in_days=7,  # EMF events only carry metrics CloudWatch already extracted
        kms_key_id=args.logs_kms_key_arn,
        tags=args.tags,
        opts=kept,
    )
    trust = pulumi.Output.all(args.account, args.partition).apply(
        lambda ap: iam.assume_role_policy("ecs-tasks.amazonaws.com", ap[0], ap[1]))
    execution_role = aws.iam.Role(
        f"{name}-execution-role",
        description=args.execution_description,
        assume_role_policy=trust,
        tags=args.tags,
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-execution-policy",
        role=execution_role.id,
        policy=pulumi.Output.all(logs.arn, args.secret_arn).apply(
            lambda v: iam.execution_role_policy(
                log_group_arn=v[0], secret_arns=[v[1]] if v[1] else [])),
        opts=opts,
    )
    task_role = aws.iam.Role(
        f"{name}-task-role",
        description=args.task_description,
        assume_role_policy=trust,
        tags=args.tags,
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-task-policy",
        role=task_role.id,
        policy=pulumi.Output.all(metrics_logs.arn, args.partition).apply(
            lambda v: args.task_policy(v[0], v[1])),
        opts=opts,
    )
    return TaskLogsAndRoles(logs, metrics_logs, execution_role, task_role)


def target_group_and_route(
    name: str,
    *,
    model_name: str,
    priority: int,
    image: EngineImage,
    port: int,
    vpc_id: pulumi.Input[str],
    listener_arn: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.lb.TargetGroup, aws.lb.ListenerRule]:
    """One model's target group (`{name}-tg`) and its `/<model>/*` rule (`{name}-route`)."""
    target_group = aws.lb.TargetGroup(
        f"{name}-tg",
        port=port,
        protocol="HTTP",
        target_type="ip",
        vpc_id=vpc_id,
        # Route each request to the replica with the fewest in flight: LLM requests vary
        # from milliseconds to minutes, so round robin piles up on one engine.
        load_balancing_algorithm_type="least_outstanding_requests",
        deregistration_delay=str(DEREGISTRATION_DELAY_SECONDS),
        health_check=aws.lb.TargetGroupHealthCheckArgs(
            path=image.health_path, port="traffic-port", protocol="HTTP", matcher="200",
            interval=15, timeout=5, healthy_threshold=2, unhealthy_threshold=3,
        ),
        tags=tags,
        opts=opts,
    )
    regex, replace = path_rewrite(model_name)
    rule = aws.lb.ListenerRule(
        f"{name}-route",
        listener_arn=listener_arn,
        priority=priority,
        conditions=[aws.lb.ListenerRuleConditionArgs(
            path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(
                values=[f"/{model_name}/*"]),
        )],
        transforms=[aws.lb.ListenerRuleTransformArgs(
            type="url-rewrite",
            url_rewrite_config=aws.lb.ListenerRuleTransformUrlRewriteConfigArgs(
                rewrite=aws.lb.ListenerRuleTransformUrlRewriteConfigRewriteArgs(
                    regex=regex, replace=replace)),
        )],
        actions=[aws.lb.ListenerRuleActionArgs(
            type="forward", target_group_arn=target_group.arn)],
        tags=tags,
        opts=opts,
    )
    return target_group, rule


def capacity_strategy(
    on_demand: pulumi.Input[str], spot: pulumi.Input[str] | None, min_replicas: int
) -> list[aws.ecs.ServiceCapacityProviderStrategyArgs]:
    """On-demand only, or the `minReplicas` base on on-demand and every task beyond it on Spot."""
    strategy = [aws.ecs.ServiceCapacityProviderStrategyArgs(
        capacity_provider=on_demand,
        base=min_replicas if spot is not None else 0,
        weight=0 if spot is not None else 1,
    )]
    if spot is not None:  # beyond the on-demand base, every task is Spot
        strategy.append(aws.ecs.ServiceCapacityProviderStrategyArgs(
            capacity_provider=spot, base=0, weight=1))
    return strategy


def scalable_target(
    name: str,
    *,
    cluster_name: str,
    service: aws.ecs.Service,
    min_replicas: int,
    max_replicas: int,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.appautoscaling.Target:
    return aws.appautoscaling.Target(
        f"{name}-scaling-target",
        service_namespace="ecs",
        scalable_dimension="ecs:service:DesiredCount",
        resource_id=pulumi.Output.concat("service/", cluster_name, "/", service.name),
        min_capacity=min_replicas,
        max_capacity=max_replicas,
        tags=tags,
        opts=opts,
    )


def wake_from_zero(
    name: str,
    *,
    target: aws.appautoscaling.Target,
    models: list[str],
    wake: GatewayWake,
    naming: Naming,
    opts: pulumi.ResourceOptions,
) -> None:
    """`{name}-wake-from-zero`: +1 task when the gateway holds (or diverts) requests for a model
    of this service. At zero there is no in-flight gauge and no ALB request to track, so target
    tracking alone would never add the first task; this step does. Its cooldown is the model's
    wait bound, so one slow start is not answered with a second, third... task.
    https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-step-scaling-policies.html"""
    policy = aws.appautoscaling.Policy(
        f"{name}-wake-from-zero",
        policy_type="StepScaling",
        service_namespace=target.service_namespace,
        resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension,
        step_scaling_policy_configuration=aws.appautoscaling
        .PolicyStepScalingPolicyConfigurationArgs(
            adjustment_type="ChangeInCapacity",
            metric_aggregation_type="Maximum",
            cooldown=max(wake.cooldown_seconds[m] for m in models),
            step_adjustments=[aws.appautoscaling
                              .PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                                  metric_interval_lower_bound="0", scaling_adjustment=1)],
        ),
        opts=opts,
    )
    for model in models:
        aws.cloudwatch.MetricAlarm(
            f"{name}-{model}-gateway-waiting" if len(models) > 1 else f"{name}-gateway-waiting",
            **wake_alarm_spec(name=naming.physical(model, "gateway-waiting", max_len=255),
                              stack=wake.stack, model=model),
            alarm_actions=[policy.arn],
            tags=naming.tags(model=model),
            opts=opts,
        )


def scaling_policies(
    name: str,
    *,
    target: aws.appautoscaling.Target,
    concurrency_target: int,
    alb_arn_suffix: pulumi.Input[str],
    target_group: aws.lb.TargetGroup,
    dimensions: dict[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> None:
    """`{name}-scale-requests` (ALB requests per target) and `{name}-scale-inflight` (the
    engine's running + waiting gauges with `dimensions`). Several target-tracking policies on
    one target scale out when any asks and in only when all agree.
    https://docs.aws.amazon.com/autoscaling/application/userguide/
    application-auto-scaling-target-tracking.html"""
    common = dict(
        policy_type="TargetTrackingScaling",
        resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension,
        service_namespace=target.service_namespace,
        opts=opts,
    )
    aws.appautoscaling.Policy(
        f"{name}-scale-requests",
        target_tracking_scaling_policy_configuration=_TRACKING(
            target_value=float(concurrency_target * 60 // ASSUMED_REQUEST_SECONDS),
            predefined_metric_specification=_PREDEFINED(
                predefined_metric_type="ALBRequestCountPerTarget",
                resource_label=pulumi.Output.concat(
                    alb_arn_suffix, "/", target_group.arn_suffix),
            ),
            scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
            scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
        ),
        **common,
    )
    dims = [_DIM(name=k, value=v) for k, v in dimensions.items()]

    def stat(metric_id: str, metric: str) -> Any:
        return _METRIC(
            id=metric_id,
            return_data=False,
            metric_stat=_STAT(stat="Average", metric=_STAT_METRIC(
                namespace=INFLIGHT_NAMESPACE, metric_name=metric, dimensions=dims)),
        )

    aws.appautoscaling.Policy(
        f"{name}-scale-inflight",
        target_tracking_scaling_policy_configuration=_TRACKING(
            # Average in-flight (running + queued) per task, from the engine's own gauges.
            target_value=float(concurrency_target),
            customized_metric_specification=_CUSTOM(
                metrics=[
                    stat("running", INFLIGHT_RUNNING),
                    stat("waiting", INFLIGHT_WAITING),
                    _METRIC(
                        id="inflight", expression="running + waiting",
                        label="in-flight requests per task", return_data=True),
                ],
            ),
            scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
            scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
        ),
        **common,
    )
