"""The gateway as an ECS Fargate service (ECS and SageMaker platforms).

Inside the VPC: tasks in the private subnets, reached through an internal ALB (the ECS
platform's own, on `/v1/*`; on SageMaker a dedicated one). The pinned LiteLLM image runs
unchanged: the generated config and the hooks file are stored gzip+base64 in SSM parameters
(standard tier, 4 KB each), handed by ECS as environment variables (`secrets` with SSM
`valueFrom`) to a config step that writes them into a task volume before the proxy starts
(every container read-only, unprivileged, capabilities dropped; the proxy as the image's
non-root user). The master key comes from Secrets Manager the same way. A hash of the bundle in
the task definition makes a config change roll the service.
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-ssm-paramstore.html

Values only known at deploy time (the ECS ALB's DNS name in model URLs) stay out of the bundle:
the config names them `os.environ/<VAR>` (LiteLLM resolves those at start) and the task
definition sets the variables, so the bundle, and the number of parameters, is known at preview.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.gateway import config as gw
from components.gateway import iam, monitoring
from components.gateway.master_key import master_key_secret
from components.network import ELB_TLS_POLICY
from components.tags import Naming

CONTAINER = "gateway"
CONFIG_STEP = "config"
CONFIG_DIR = "/etc/llm-gateway"
"""Where the proxy reads its config and our hooks: a task volume, read-only in the proxy."""
SCRATCH_DIR = "/tmp"
CONFIG_VOLUME, SCRATCH_VOLUME = "gateway-config", "gateway-tmp"
BUNDLE_ENV = "LLM_HOSTING_GATEWAY_BUNDLE"
BUNDLE_PARTS_ENV = f"{BUNDLE_ENV}_PARTS"
BUNDLE_HASH_ENV = f"{BUNDLE_ENV}_SHA256"
PARAMETER_CHUNK = 4000
"""Characters per SSM parameter: the standard tier holds 4 KB (no advanced-tier charge)."""
LOG_RETENTION_DAYS: dict[str, int] = {"dev": 30, "staging": 90, "prod": 365}
STOP_TIMEOUT_SECONDS = 120
"""Fargate's maximum: on a rollout a task finishes in-flight streams this long after SIGTERM."""
DEREGISTRATION_DELAY_SECONDS = 120
CPU_TARGET_PERCENT = 60
CONFIG_STEP_MEMORY_MIB = 64


def encode_bundle(files: Mapping[str, str]) -> str:
    return base64.b64encode(gzip.compress(json.dumps(dict(files), sort_keys=True).encode(),
                                          mtime=0)).decode()


def decode_bundle(encoded: str) -> dict[str, str]:
    return dict(json.loads(gzip.decompress(base64.b64decode(encoded))))


def bundle_chunks(files: Mapping[str, str]) -> list[str]:
    encoded = encode_bundle(files)
    return [encoded[i:i + PARAMETER_CHUNK] for i in range(0, len(encoded), PARAMETER_CHUNK)]


def writer_script(config_dir: str = CONFIG_DIR) -> str:
    """Python (the image's interpreter) that joins the parts and writes the files."""
    return ("import base64,gzip,json,os,pathlib;"
            f"d=pathlib.Path('{config_dir}');"
            f"n=int(os.environ['{BUNDLE_PARTS_ENV}']);"
            f"b=''.join(os.environ['{BUNDLE_ENV}_%d'%i] for i in range(n));"
            "[(d/k).write_text(v) for k,v in "
            "json.loads(gzip.decompress(base64.b64decode(b))).items()]")


def config_step_command() -> list[str]:
    """The config step's `sh -c` script: write the bundle into the config volume, then open the
    volumes to the proxy's user (Fargate creates bind-mount volumes root-owned 0755; an owner
    may chmod its own files without any capability)."""
    return [f'python3 -c "{writer_script()}" && chmod 0755 {CONFIG_DIR} && '
            f"chmod 0644 {CONFIG_DIR}/* && chmod 1777 {SCRATCH_DIR}"]


def api_base_env(model: str) -> str:
    """The environment variable holding a model's URL when only the deployment knows it."""
    return "LLM_HOSTING_API_BASE_" + model.upper().replace("-", "_")


def _logs(log_group: str, region: str, prefix: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": prefix,
        "mode": "non-blocking", "max-buffer-size": "25m"}}


def container_definitions(
    *, image: str, entrypoint: Sequence[str], region: str, log_group: str,
    master_key_secret_arn: str, parameter_arns: Sequence[str], bundle_hash: str,
    environment: Mapping[str, str], task: gw.TaskSize, user: tuple[int, int],
) -> list[dict[str, Any]]:
    """Two containers, in RegisterTaskDefinition's shape (checked against botocore), both with a
    read-only root filesystem, unprivileged, every capability dropped:

    * `config` (runs first, exits): as root, writes the bundle into the config volume and opens
      the scratch volume; it alone receives the bundle parameters;
    * `gateway`: the proxy as the image's non-root user, config volume read-only, scratch at
      /tmp (LiteLLM's UI and asset copies go there; the admin UI is off: no database).
    """
    hardened = {"readonlyRootFilesystem": True, "privileged": False}
    step_env = {BUNDLE_PARTS_ENV: str(len(parameter_arns)), BUNDLE_HASH_ENV: bundle_hash}
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of LiteLLM's price map
           "DISABLE_ADMIN_UI": "True",
           "LITELLM_UI_PATH": f"{SCRATCH_DIR}/litellm/ui",
           "LITELLM_ASSETS_PATH": f"{SCRATCH_DIR}/litellm/assets",
           "AWS_REGION": region, "AWS_DEFAULT_REGION": region, **environment}
    health = (f"python3 -c \"import urllib.request; urllib.request.urlopen("
              f"'http://127.0.0.1:{gw.PORT}{gw.HEALTH_PATH}', timeout=5)\" || exit 1")
    config_step = {
        "name": CONFIG_STEP,
        "image": image,
        "essential": False,
        "user": "0",
        "entryPoint": ["/bin/sh", "-c"],
        "command": config_step_command(),
        "environment": [{"name": k, "value": v} for k, v in sorted(step_env.items())],
        "secrets": [{"name": f"{BUNDLE_ENV}_{i}", "valueFrom": arn}
                    for i, arn in enumerate(parameter_arns)],
        "mountPoints": [{"sourceVolume": CONFIG_VOLUME, "containerPath": CONFIG_DIR},
                        {"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_DIR}],
        "memoryReservation": CONFIG_STEP_MEMORY_MIB,
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
        **hardened,
        "logConfiguration": _logs(log_group, region, CONFIG_STEP),
    }
    gateway = {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "user": f"{user[0]}:{user[1]}",  # the image's own non-root user
        "entryPoint": list(entrypoint),
        "command": gw.proxy_args(CONFIG_DIR),
        "dependsOn": [{"containerName": CONFIG_STEP, "condition": "SUCCESS"}],
        "portMappings": [{"containerPort": gw.PORT, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "secrets": [{"name": gw.MASTER_KEY_ENV, "valueFrom": master_key_secret_arn}],
        "mountPoints": [{"sourceVolume": CONFIG_VOLUME, "containerPath": CONFIG_DIR,
                         "readOnly": True},
                        {"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_DIR}],
        "healthCheck": {"command": ["CMD-SHELL", health], "interval": 15, "timeout": 5,
                        "retries": 3, "startPeriod": 60},
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "memoryReservation": task.memory_mib // 2,
        "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        **hardened,
        "logConfiguration": _logs(log_group, region, CONTAINER),
    }
    return [config_step, gateway]


# --------------------------------------------------------------------------------- component


@dataclass(frozen=True)
class _Entry:
    """Where clients come in: the security group they arrive from, and the ALB."""

    security_group_id: pulumi.Input[str]
    listener_arn: pulumi.Input[str] | None
    alb_arn: pulumi.Input[str] | None
    dns_name: pulumi.Input[str]
    scheme: str
    arn_suffix: pulumi.Input[str]


@dataclass(frozen=True)
class ListenerAttachment:
    """Attach to an existing ALB (ECS): a `/v1/*` rule on its listener; the ALB's security group
    may send to the gateway's port."""

    listener_arn: pulumi.Input[str]
    priority: int
    security_group_id: pulumi.Input[str]
    dns_name: pulumi.Input[str]
    scheme: str
    arn_suffix: pulumi.Input[str]


@dataclass(frozen=True)
class FargateGatewayArgs:
    naming: Naming
    plan: gw.GatewayPlan
    config_yaml: str
    """`gw.render(gw.litellm_config(...))`: static; deploy-time values via `environment`."""
    environment: Mapping[str, pulumi.Input[str]]
    region: str
    account: pulumi.Input[str]
    partition: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: pulumi.Input[list[str]]
    logs_kms_key_arn: pulumi.Input[str]
    image: str
    entrypoint: Sequence[str]
    user: tuple[int, int]
    sagemaker_resources: pulumi.Input[list[str]] | None = None
    bedrock_resources: pulumi.Input[list[str]] | None = None
    cluster_arn: pulumi.Input[str] | None = None
    """None: the gateway gets its own Fargate-only cluster."""
    attach: ListenerAttachment | None = None
    """None: the gateway gets its own internal ALB."""
    egress: Sequence[tuple[int, str]] = ()
    """(port, CIDR) the gateway calls besides HTTPS (AWS APIs): the ECS ALB on 80."""
    alarm_topic_arn: str | None = None
    certificate_arn: str | None = None
    """On its own ALB: serve HTTPS on 443 only with this ACM certificate (else HTTP on 80)."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class FargateGateway(pulumi.ComponentResource):
    """Secret, config bundle, roles, logs, task definition, (ALB,) target group, service,
    CPU autoscaling. Outputs: `url`, `master_key_secret_arn`, names for dashboards/alarms."""

    url: pulumi.Output[str]
    master_key_secret_arn: pulumi.Output[str]
    service_name: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]

    def __init__(self, name: str, args: FargateGatewayArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:gateway:FargateGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, plan = args.naming, args.plan
        tags = naming.tags(component="gateway")
        prod = naming.protect  # prod, unless `protection: off` for a teardown
        task = gw.FARGATE_TASK

        secret = master_key_secret(f"{name}-master-key", naming, self)
        files = gw.bundle(args.config_yaml)
        parameters = [aws.ssm.Parameter(
            f"{name}-bundle-{i}",
            name=f"/llm-hosting/{naming.stack}/gateway/bundle/{i}",
            description=f"{naming.prefix} gateway config + hooks, part {i} (gzip+base64)",
            type="String",
            tier="Standard",
            insecure_value=chunk,  # config, not a secret: previews show its diff
            tags=tags,
            opts=child,
        ) for i, chunk in enumerate(bundle_chunks(files))]
        bundle_hash = hashlib.sha256(encode_bundle(files).encode()).hexdigest()

        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/llm-hosting/{naming.stack}/gateway",
            retention_in_days=LOG_RETENTION_DAYS[naming.environment],
            kms_key_id=args.logs_kms_key_arn, tags=tags,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=prod)))
        trust = pulumi.Output.all(args.account, args.partition).apply(
            lambda ap: iam.to_json(iam.ecs_tasks_trust(ap[0], ap[1])))
        execution = aws.iam.Role(
            f"{name}-execution-role", assume_role_policy=trust, tags=tags, opts=child,
            description="ECS for the gateway: write its logs, hand it its master key and config")
        aws.iam.RolePolicy(
            f"{name}-execution-policy", role=execution.id, opts=child,
            policy=pulumi.Output.all(logs.arn, secret.arn, *[p.arn for p in parameters]).apply(
                lambda v: iam.to_json(iam.execution_policy(
                    log_group_arn=v[0], master_key_secret_arn=v[1], parameter_arns=v[2:]))))
        role = aws.iam.Role(
            f"{name}-task-role", assume_role_policy=trust, tags=tags, opts=child,
            description="The gateway: invoke this stack's models and named Bedrock fallbacks, "
                        "publish its metrics")
        task_policy = aws.iam.RolePolicy(
            f"{name}-task-policy", role=role.id, opts=child,
            policy=pulumi.Output.all(args.sagemaker_resources or [],
                                     args.bedrock_resources or []).apply(
                lambda v: iam.to_json(iam.gateway_policy(
                    sagemaker_resources=v[0], bedrock_resources=v[1],
                    metrics_namespace=gw.CLOUDWATCH_NAMESPACE))))

        family = naming.physical("gateway", max_len=255)
        definitions = pulumi.Output.all(
            logs.name, secret.arn, [p.arn for p in parameters], dict(args.environment)).apply(
            lambda v: json.dumps(container_definitions(
                image=args.image, entrypoint=args.entrypoint, region=args.region,
                log_group=v[0], master_key_secret_arn=v[1], parameter_arns=v[2],
                bundle_hash=bundle_hash, environment=v[3], task=task, user=args.user)))
        task_definition = aws.ecs.TaskDefinition(
            f"{name}-task", family=family, network_mode="awsvpc",
            requires_compatibilities=["FARGATE"], cpu=str(task.cpu_units),
            memory=str(task.memory_mib),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                cpu_architecture=task.architecture, operating_system_family="LINUX"),
            execution_role_arn=execution.arn, task_role_arn=role.arn,
            container_definitions=definitions,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=CONFIG_VOLUME),
                     aws.ecs.TaskDefinitionVolumeArgs(name=SCRATCH_VOLUME)],
            tags=tags, opts=child)

        cluster_arn, self.cluster_name = self._cluster(name, args, tags, child)
        entry = self._load_balancer(name, args, tags, child)
        task_sg = aws.ec2.SecurityGroup(
            f"{name}-task-sg", vpc_id=args.vpc_id, tags={**tags, "Name": family},
            description="Gateway tasks: proxy port from the load balancer; out: AWS APIs "
                        "(HTTPS) and the stack's model endpoints",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                description="load balancer", protocol="tcp", from_port=gw.PORT,
                to_port=gw.PORT, security_groups=[entry.security_group_id])],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS: SageMaker, Bedrock, CloudWatch, Secrets Manager, SSM, image",
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"])]
            + [aws.ec2.SecurityGroupEgressArgs(
                description="models", protocol="tcp", from_port=port, to_port=port,
                cidr_blocks=[cidr]) for port, cidr in args.egress],
            opts=child)
        target_group = aws.lb.TargetGroup(
            f"{name}-tg", port=gw.PORT, protocol="HTTP", target_type="ip",
            vpc_id=args.vpc_id, load_balancing_algorithm_type="least_outstanding_requests",
            deregistration_delay=str(DEREGISTRATION_DELAY_SECONDS),
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=gw.HEALTH_PATH, port="traffic-port", protocol="HTTP", matcher="200",
                interval=15, timeout=5, healthy_threshold=2, unhealthy_threshold=3),
            tags=tags, opts=child)
        route = self._route(name, args, entry, target_group, tags, child)

        service = aws.ecs.Service(
            f"{name}-service", name=family, cluster=cluster_arn,
            task_definition=task_definition.arn, desired_count=plan.replicas,
            launch_type="FARGATE", platform_version="LATEST",
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True),
            health_check_grace_period_seconds=60,
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=target_group.arn, container_name=CONTAINER,
                container_port=gw.PORT)],
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids, security_groups=[task_sg.id], assign_public_ip=False),
            enable_ecs_managed_tags=True, propagate_tags="SERVICE",
            wait_for_steady_state=False, tags=tags,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[route, task_policy, *args.depends_on],
                ignore_changes=["desiredCount"], protect=prod)))
        self._autoscaling(name, plan, self.cluster_name, service, tags, child)
        for route_ in plan.routes:
            if not route_.fallbacks:
                continue  # nothing to fall back to: no fallback rate
            actions = [args.alarm_topic_arn] if args.alarm_topic_arn else []
            aws.cloudwatch.MetricAlarm(
                f"{name}-{route_.name}-fallback-rate",
                **monitoring.fallback_rate_alarm_spec(
                    name=naming.physical(route_.name, "fallback-rate", max_len=255),
                    stack=naming.prefix, model=route_.name),
                alarm_actions=actions, ok_actions=actions,
                tags=naming.tags(model=route_.name, component="gateway"), opts=child)

        self.url = pulumi.Output.concat(entry.scheme, "://", entry.dns_name, "/v1")
        self.master_key_secret_arn = secret.arn
        self.service_name = service.name
        self.load_balancer_arn_suffix = pulumi.Output.from_input(entry.arn_suffix)
        self.target_group_arn_suffix = target_group.arn_suffix
        self.register_outputs({"url": self.url, "masterKeySecretArn": secret.arn})

    def _cluster(self, name: str, args: FargateGatewayArgs, tags: dict[str, str],
                 opts: pulumi.ResourceOptions) -> tuple[pulumi.Input[str], pulumi.Output[str]]:
        if args.cluster_arn is not None:
            arn = pulumi.Output.from_input(args.cluster_arn)
            return arn, arn.apply(lambda a: a.rsplit("/", 1)[-1])
        cluster = aws.ecs.Cluster(
            f"{name}-cluster", name=args.naming.physical("gateway"),
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enhanced")],
            tags=tags, opts=opts)
        return cluster.arn, cluster.name

    def _load_balancer(self, name: str, args: FargateGatewayArgs, tags: dict[str, str],
                       opts: pulumi.ResourceOptions) -> _Entry:
        if args.attach is not None:
            a = args.attach
            return _Entry(a.security_group_id, a.listener_arn, None, a.dns_name, a.scheme,
                          a.arn_suffix)
        naming = args.naming
        https = args.certificate_arn is not None
        port = 443 if https else 80
        sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg", vpc_id=args.vpc_id, tags={**tags, "Name": naming.physical(
                "gateway-alb")},
            description="Gateway load balancer: HTTP from the VPC, out to the gateway tasks",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                description="clients in the VPC", protocol="tcp", from_port=port, to_port=port,
                cidr_blocks=[args.vpc_cidr])],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                description="gateway tasks", protocol="tcp", from_port=gw.PORT,
                to_port=gw.PORT, cidr_blocks=[args.vpc_cidr])],
            opts=opts)
        alb = aws.lb.LoadBalancer(
            f"{name}-alb", load_balancer_type="application", internal=True,
            subnets=args.subnet_ids, security_groups=[sg.id],
            # A held request sends nothing until its model answers (docs/gateway.md).
            idle_timeout=args.plan.idle_timeout_seconds,
            drop_invalid_header_fields=True,
            enable_deletion_protection=naming.protect, tags=tags, opts=opts)
        return _Entry(sg.id, None, alb.arn, alb.dns_name, "https" if https else "http",
                      alb.arn_suffix)

    def _route(self, name: str, args: FargateGatewayArgs, entry: _Entry,
               target_group: aws.lb.TargetGroup, tags: dict[str, str],
               opts: pulumi.ResourceOptions) -> pulumi.Resource:
        """`/v1/*` on the ECS ALB's listener; on its own ALB, the listener's default action."""
        forward = [aws.lb.ListenerRuleActionArgs(type="forward",
                                                 target_group_arn=target_group.arn)]
        if args.attach is not None:
            return aws.lb.ListenerRule(
                f"{name}-route", listener_arn=entry.listener_arn, priority=args.attach.priority,
                conditions=[aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(
                        values=["/v1/*"]))],
                actions=forward, tags=tags, opts=opts)
        default_actions = [aws.lb.ListenerDefaultActionArgs(
            type="forward", target_group_arn=target_group.arn)]
        if args.certificate_arn is not None:
            # HTTPS only, no port-80 redirect: clients are our own, inside the VPC.
            return aws.lb.Listener(
                f"{name}-https", load_balancer_arn=entry.alb_arn, port=443, protocol="HTTPS",
                ssl_policy=ELB_TLS_POLICY, certificate_arn=args.certificate_arn,
                default_actions=default_actions, tags=tags, opts=opts)
        return aws.lb.Listener(
            f"{name}-http", load_balancer_arn=entry.alb_arn, port=80, protocol="HTTP",
            default_actions=default_actions, tags=tags, opts=opts)

    def _autoscaling(self, name: str, plan: gw.GatewayPlan, cluster_name: pulumi.Output[str],
                     service: aws.ecs.Service, tags: dict[str, str],
                     opts: pulumi.ResourceOptions) -> None:
        """Replicas between `gateway.replicas` and three times that, on average CPU."""
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target", service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cluster_name, "/", service.name),
            min_capacity=plan.replicas, max_capacity=gw.max_replicas(plan.replicas),
            tags=tags, opts=opts)
        aws.appautoscaling.Policy(
            f"{name}-scale-cpu", policy_type="TargetTrackingScaling",
            resource_id=target.resource_id, scalable_dimension=target.scalable_dimension,
            service_namespace=target.service_namespace,
            target_tracking_scaling_policy_configuration=aws.appautoscaling
            .PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(CPU_TARGET_PERCENT),
                predefined_metric_specification=aws.appautoscaling
                .PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"),
                scale_in_cooldown=300, scale_out_cooldown=60),
            opts=opts)
