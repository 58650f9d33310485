"""GPU capacity for one model (or one shared instance of several models): launch template(s),
Auto Scaling group(s), warm pool, and the ECS capacity provider(s) that scale them.

Warm pool constraints, each checked against AWS's documentation:
* Pool state `Stopped`: G and P instance families cannot hibernate (hibernation lists no GPU
  families, and an instance in an Auto Scaling group or used by ECS cannot be hibernated), and a
  `Running` pool bills idle GPUs. Stopped instances pay only for EBS.
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/hibernating-prerequisites.html
* No `InstanceReusePolicy.ReuseOnScaleIn`: "When you create or update a warm pool for an Auto
  Scaling group for Amazon ECS, you cannot set the option that returns instances to the warm pool
  on scale in." https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-warm-pool.html
* `ECS_WARM_POOLS_CHECK=true` in the agent config (see userdata.py), per the same page.
* No warm pool on a group with a mixed instances policy or Spot: PutWarmPool "cannot be called on
  an Auto Scaling group that has a mixed instances policy or a launch template or launch
  configuration that requests Spot Instances."
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html
  Hence `capacity: spot` adds a *second* group (Spot, several fitting types, capacity-optimized,
  no warm pool) beside the on-demand group that keeps the warm pool.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.config import Capacity, EcsConfig, Model
from components.ecs import iam
from components.ecs.placement import TaskShape, max_instances, spot_instance_types
from components.ecs.userdata import LIFECYCLE_HOOK_NAME, user_data
from components.network import Network
from components.tags import Naming

GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
"""The ECS-optimized AL2023 GPU AMI (NVIDIA driver, container toolkit, ECS agent). AL2023 over
AL2 because the AL2 ECS AMI reaches end of life on 2026-06-30.
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-optimized_AMI.html
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html
Resolved at every `pulumi up` (not at instance launch via `resolve:ssm:`): a new AMI then shows
in the preview as a new launch template version, which starts an instance refresh, instead of
silently mixing AMIs in one group."""

INSTANCE_WARMUP_SECONDS = 300
LIFECYCLE_HEARTBEAT_SECONDS = 1200
"""Time a warm-pool candidate gets to pull the images (~10 GB for vLLM) before the hook
continues on its own (CONTINUE: a failed pre-pull only costs a pull at task start)."""

GROUP_METRICS = (
    "GroupInServiceInstances", "GroupPendingInstances", "GroupDesiredCapacity",
    "GroupTerminatingInstances", "GroupTotalInstances", "WarmPoolDesiredCapacity",
    "WarmPoolWarmedCapacity", "WarmPoolPendingCapacity", "WarmPoolTerminatingCapacity",
    "WarmPoolTotalCapacity", "GroupAndWarmPoolTotalCapacity",
)

Purchase = Literal["on-demand", "spot"]


@dataclass(frozen=True)
class HostPlan:
    """What one set of groups hosts: one model (`for_model`) or a shared instance's models.

    `name` (model or shared-instance name) names the groups, launch templates and providers;
    `host_tags` go on hosts, groups and templates (a single model's serving tags, which the
    policy pack reads), `tags` on the IAM role, profile and capacity providers."""

    name: str
    instance_type: str
    capacity: Capacity
    min_replicas: int
    max_replicas: int
    spot_types: tuple[str, ...]
    host_tags: Mapping[str, str]
    tags: Mapping[str, str]

    @classmethod
    def for_model(cls, model: Model, naming: Naming) -> HostPlan:
        spec = model.spec
        return cls(
            name=model.name, instance_type=model.instance.name, capacity=spec.capacity,
            min_replicas=spec.min_replicas, max_replicas=spec.replicas_max,
            spot_types=tuple(spot_instance_types(model)) if spec.capacity == "spot" else (),
            host_tags=naming.serving_tags(model, "ecs"), tags=naming.tags(model=model.name),
        )


@dataclass(frozen=True)
class GpuCapacityArgs:
    naming: Naming
    hosts: HostPlan
    shape: TaskShape
    network: Network
    config: EcsConfig
    region: str
    cluster_name: str
    account: pulumi.Input[str]
    partition: pulumi.Input[str]
    images: list[str]


def warm_pool_args(config: EcsConfig) -> aws.autoscaling.GroupWarmPoolArgs:
    """Stopped, no ReuseOnScaleIn (see the module docstring for the AWS rules), and exactly
    `warmPoolSize` instances. Without `MaxGroupPreparedCapacity` the pool is sized
    `MaxSize - DesiredCapacity` (up to 2x maxReplicas stopped GPU hosts, each with its gp3 volume
    and a 10+ GB image pull); "only when MaxGroupPreparedCapacity and MinSize are set to the same
    value does the warm pool have an absolute size."
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html"""
    return aws.autoscaling.GroupWarmPoolArgs(
        pool_state="Stopped",
        min_size=config.warm_pool_size,
        max_group_prepared_capacity=config.warm_pool_size,
    )


def managed_scaling_args(
    config: EcsConfig, group_max: int
) -> aws.ecs.CapacityProviderAutoScalingGroupProviderManagedScalingArgs:
    """Target tracking on the cluster's CapacityProviderReservation; steps of at most the whole
    group so one burst does not launch more GPUs than the model can ever use.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/asg-capacity-providers.html"""
    return aws.ecs.CapacityProviderAutoScalingGroupProviderManagedScalingArgs(
        status="ENABLED",
        target_capacity=config.target_capacity,
        minimum_scaling_step_size=1,
        maximum_scaling_step_size=group_max,
        instance_warmup_period=INSTANCE_WARMUP_SECONDS,
    )


class GpuCapacity(pulumi.ComponentResource):
    """One model's (or shared instance's) GPU instances and capacity provider(s)."""

    on_demand_provider: pulumi.Output[str]
    spot_provider: pulumi.Output[str] | None
    group_names: list[str]
    warm_group_name: str | None
    instance_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GpuCapacityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:ecs:GpuCapacity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, hosts = args.naming, args.hosts
        self._cap_args = args
        self._serving_tags = dict(hosts.host_tags)

        on_demand_name = naming.physical("ecs", hosts.name, "on-demand", max_len=255)
        spot_name = naming.physical("ecs", hosts.name, "spot", max_len=255)
        spot = hosts.capacity == "spot"
        self.group_names = [on_demand_name, *([spot_name] if spot else [])]
        self.warm_group_name = on_demand_name

        sg = aws.ec2.SecurityGroup(
            f"{name}-instance-sg",
            description=f"ECS GPU hosts for {hosts.name}: no inbound (tasks use their own ENIs)",
            vpc_id=args.network.vpc_id,
            egress=[aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS: ECS, ECR, registries, SSM, CloudWatch (endpoints or NAT)",
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
            )],
            tags={**self._serving_tags, "Name": naming.physical("ecs", hosts.name, "hosts")},
            opts=child,
        )
        self.instance_security_group_id = sg.id
        profile = self._instance_profile(name, args, on_demand_name, child)

        # On-demand: the warm-pool group. It holds `minReplicas` (the base) in spot mode and
        # every replica otherwise.
        base_replicas = max(hosts.min_replicas, 1) if spot else hosts.max_replicas
        od_max = max_instances(base_replicas, args.shape)
        od_template = self._launch_template(name, "on-demand", sg, profile, on_demand_name, child)
        od_group = aws.autoscaling.Group(
            f"{name}-on-demand",
            name=on_demand_name,
            min_size=0,
            max_size=od_max,
            vpc_zone_identifiers=args.network.private_subnet_ids,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=od_template.id, version=od_template.latest_version.apply(str)),
            warm_pool=warm_pool_args(args.config),
            initial_lifecycle_hooks=[aws.autoscaling.GroupInitialLifecycleHookArgs(
                name=LIFECYCLE_HOOK_NAME,
                lifecycle_transition="autoscaling:EC2_INSTANCE_LAUNCHING",
                default_result="CONTINUE",
                heartbeat_timeout=LIFECYCLE_HEARTBEAT_SECONDS,
            )],
            **self._group_common(on_demand_name),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                ignore_changes=["desiredCapacity"])),  # the capacity provider owns it
        )
        self.on_demand_provider = self._capacity_provider(
            name, "on-demand", od_group, od_max, child)

        self.spot_provider = None
        if spot:
            spot_max = max_instances(hosts.max_replicas, args.shape)
            spot_template = self._launch_template(name, "spot", sg, profile, None, child)
            spot_group = aws.autoscaling.Group(
                f"{name}-spot",
                name=spot_name,
                min_size=0,
                max_size=spot_max,
                vpc_zone_identifiers=args.network.private_subnet_ids,
                capacity_rebalance=True,
                mixed_instances_policy=aws.autoscaling.GroupMixedInstancesPolicyArgs(
                    instances_distribution=(
                        aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                            on_demand_base_capacity=0,
                            on_demand_percentage_above_base_capacity=0,
                            # GPU Spot pools are shallow: prefer the deepest pools over price.
                            spot_allocation_strategy="capacity-optimized",
                        )
                    ),
                    launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                        launch_template_specification=aws.autoscaling.
                        GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                            launch_template_id=spot_template.id,
                            version=spot_template.latest_version.apply(str),
                        ),
                        overrides=[
                            aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(
                                instance_type=t)
                            for t in hosts.spot_types
                        ],
                    ),
                ),
                **self._group_common(spot_name),
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    ignore_changes=["desiredCapacity"])),
            )
            self.spot_provider = self._capacity_provider(name, "spot", spot_group, spot_max, child)

        self.register_outputs({"onDemandProvider": self.on_demand_provider,
                               "spotProvider": self.spot_provider})

    def _group_common(self, group_name: str) -> dict[str, object]:
        tags = {**self._serving_tags, "Name": group_name, "AmazonECSManaged": "true"}
        return dict(
            # Managed termination protection needs scale-in protection on new instances.
            protect_from_scale_in=True,
            health_check_type="EC2",
            default_instance_warmup=INSTANCE_WARMUP_SECONDS,
            enabled_metrics=list(GROUP_METRICS),
            metrics_granularity="1Minute",
            # AMI rollouts: launch replacements first (max healthy 200%), never below 100%;
            # ECS managed draining moves tasks off protected instances before they go.
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=100,
                    max_healthy_percentage=200,
                    instance_warmup=str(INSTANCE_WARMUP_SECONDS),
                    skip_matching=True,
                    scale_in_protected_instances="Refresh",
                    standby_instances="Terminate",
                ),
            ),
            tags=[aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True)
                  for k, v in sorted(tags.items())],
        )

    def _instance_profile(
        self, name: str, args: GpuCapacityArgs, group: str, opts: pulumi.ResourceOptions
    ) -> aws.iam.InstanceProfile:
        tags = dict(args.hosts.tags)
        role = aws.iam.Role(
            f"{name}-instance-role",
            description=f"ECS GPU hosts of {args.hosts.name}: agent, SSM, hook, GPU metrics",
            assume_role_policy=pulumi.Output.from_input(args.account).apply(
                lambda acct: iam.assume_role_policy("ec2.amazonaws.com", acct)),
            tags=tags,
            opts=opts,
        )
        for i, policy in enumerate(iam.ECS_INSTANCE_MANAGED_POLICIES):
            aws.iam.RolePolicyAttachment(
                f"{name}-instance-{['ecs', 'ssm'][i]}",
                role=role.name,
                policy_arn=pulumi.Output.from_input(args.partition).apply(
                    lambda p, pol=policy: f"arn:{p}:iam::aws:policy/{pol}"),
                opts=opts,
            )
        aws.iam.RolePolicy(
            f"{name}-instance-policy",
            role=role.id,
            policy=pulumi.Output.all(args.account, args.partition).apply(
                lambda ap: iam.instance_role_policy(asg_arns=[iam.asg_arn(
                    region=args.region, account=ap[0], name=group, partition=ap[1])])),
            opts=opts,
        )
        return aws.iam.InstanceProfile(
            f"{name}-instance-profile", role=role.name, tags=tags, opts=opts)

    def _launch_template(
        self,
        name: str,
        purchase: Purchase,
        sg: aws.ec2.SecurityGroup,
        profile: aws.iam.InstanceProfile,
        warm_pool_group: str | None,
        opts: pulumi.ResourceOptions,
    ) -> aws.ec2.LaunchTemplate:
        args = self._cap_args
        ami = aws.ssm.get_parameter_output(
            name=GPU_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self))
        script = user_data(cluster_name=args.cluster_name, region=args.region,
                           images=args.images if warm_pool_group else [],
                           warm_pool_group=warm_pool_group)
        resource_tags = {**self._serving_tags, "Name": args.naming.physical("ecs", args.hosts.name)}
        return aws.ec2.LaunchTemplate(
            f"{name}-{purchase}-lt",
            description=f"ECS GPU hosts for {args.hosts.name} ({purchase})",
            image_id=ami.insecure_value,
            instance_type=args.hosts.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            vpc_security_group_ids=[sg.id],
            user_data=base64.b64encode(script.encode()).decode(),
            ebs_optimized="true",
            update_default_version=True,
            # IMDSv2 only; hop limit 1 so nothing one network hop away (a bridge-mode container)
            # can fetch the instance role's credentials; the agent uses the host network.
            # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
            ),
            # Root volume holds Docker images and the model weights synced per task: encrypted
            # gp3 with 1,000 MB/s so a weight sync is not disk-bound (gp3 needs >= 4,000 IOPS
            # for that). https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=args.shape.root_volume_gib,
                    volume_type="gp3",
                    iops=4000,
                    throughput=1000,
                    encrypted="true",
                    delete_on_termination="true",
                ),
            )],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=t, tags=resource_tags)
                for t in ("instance", "volume", "network-interface")
            ],
            tags=self._serving_tags,
            opts=opts,
        )

    def _capacity_provider(
        self,
        name: str,
        purchase: Purchase,
        group: aws.autoscaling.Group,
        group_max: int,
        opts: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        args = self._cap_args
        provider = aws.ecs.CapacityProvider(
            f"{name}-{purchase}-cp",
            name=args.naming.physical(args.hosts.name, purchase, max_len=255),
            auto_scaling_group_provider=aws.ecs.CapacityProviderAutoScalingGroupProviderArgs(
                auto_scaling_group_arn=group.arn,
                managed_termination_protection="ENABLED",
                managed_draining="ENABLED",
                managed_scaling=managed_scaling_args(args.config, group_max),
            ),
            tags=dict(args.hosts.tags),
            opts=opts,
        )
        return provider.name

