"""Managed node groups: the on-demand system group and a small GPU floor per model.

The system group runs CoreDNS, Karpenter and monitoring on capacity Karpenter does not manage,
so a Karpenter outage or a bad NodePool never takes down the controllers that would fix it.
The GPU floor keeps `minReplicas` worth of GPU nodes under an EKS managed node group, sized
from the sizing result; Karpenter adds everything above it. Both use launch templates for
IMDSv2 (hop limit 1) and encrypted gp3 volumes.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import EksConfig, Model
from components.eks import iam
from components.eks.labels import GPU_TAINT_KEY, SYSTEM_NODE_LABELS, gpu_node_labels
from components.eks.nodepool import (
    FAST_IMAGE_PULL_USER_DATA,
    IMDS_HOP_LIMIT,
    ROOT_VOLUME_IOPS,
    ROOT_VOLUME_THROUGHPUT_MIBPS,
    SNAPSHOT_INITIALIZATION_RATE_MIBPS,
    ami_family,
    gpu_candidates,
)
from components.eks.roles import service_role
from components.tags import Naming

SYSTEM_ROOT_VOLUME_GIB = 50
"""System nodes hold only controller images and logs."""


@dataclass(frozen=True)
class NodeGroupsArgs:
    naming: Naming
    config: EksConfig
    models: tuple[Model, ...]
    cluster_name: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    partition: pulumi.Input[str]
    account: pulumi.Input[str]


def floor_nodes(model: Model) -> int:
    """GPU floor nodes for a model: enough instances for `minReplicas` (0 means no floor)."""
    per_instance = model.cost.replicas_per_instance
    return math.ceil(model.spec.min_replicas / per_instance)


MAX_SPOT_FLOOR_TYPES = 10
"""Instance types offered to a spot floor; a handful of pools is what price-capacity-optimized
allocation needs. https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html"""


def floor_instance_types(model: Model, cfg: EksConfig) -> list[str]:
    """The floor's instance types. On-demand: exactly the sized instance (what reservations and
    quotas are bought for). Spot: the sized instance first, then every Karpenter candidate with
    the same GPU count (so `floor_nodes` still holds: one replica count per instance), because a
    single-type spot group loses all its nodes together when that one spot pool is reclaimed.
    https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html#managed-node-group-capacity-types
    """
    sized = model.instance
    if model.spec.capacity != "spot" or model.spec.instance_type is not None:
        return [sized.name]
    alike = [i.name for i in gpu_candidates(model, cfg.instance_price_ratio)
             if i.gpu_count == sized.gpu_count and i.name != sized.name]
    return [sized.name, *alike][:MAX_SPOT_FLOOR_TYPES]


def gpu_ami_type(cfg: EksConfig) -> str:
    """Managed node group AMI type matching the Karpenter AMI family for GPU nodes."""
    return ("BOTTLEROCKET_x86_64_NVIDIA" if ami_family(cfg) == "Bottlerocket"
            else "AL2023_x86_64_NVIDIA")


def _metadata_options() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(
        http_endpoint="enabled",
        http_tokens="required",
        http_put_response_hop_limit=IMDS_HOP_LIMIT,
        instance_metadata_tags="disabled",
    )


def _ebs(size: int, *, snapshot: str | None = None,
         fast: bool = True) -> aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs:
    return aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
        volume_size=size,
        volume_type="gp3",
        iops=ROOT_VOLUME_IOPS if fast else None,
        throughput=ROOT_VOLUME_THROUGHPUT_MIBPS if fast else None,
        # A volume from a snapshot inherits the snapshot's encryption (EC2 rejects both).
        encrypted=None if snapshot else "true",
        snapshot_id=snapshot,
        volume_initialization_rate=SNAPSHOT_INITIALIZATION_RATE_MIBPS if snapshot else None,
        delete_on_termination="true",
    )


def gpu_block_devices(cfg: EksConfig) -> list[aws.ec2.LaunchTemplateBlockDeviceMappingArgs]:
    if ami_family(cfg) == "AL2023":
        return [aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name="/dev/xvda", ebs=_ebs(cfg.gpu_root_volume_gib))]
    return [
        aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name="/dev/xvda", ebs=_ebs(4, fast=False)),
        aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name="/dev/xvdb",
            ebs=_ebs(cfg.gpu_root_volume_gib, snapshot=cfg.image_snapshot_id)),
    ]


class NodeGroups(pulumi.ComponentResource):
    """The shared managed-node-group role, the system group and the per-model GPU floors."""

    role_arn: pulumi.Output[str]
    system: aws.eks.NodeGroup
    gpu_floors: dict[str, aws.eks.NodeGroup]

    def __init__(
        self, name: str, args: NodeGroupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:eks:NodeGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, cfg = args.naming, args.config

        # EKS creates the access entry for a managed node group's role itself (API mode), so
        # this role is never given one by us; Karpenter's node role is separate for that reason.
        role, attachments = service_role(
            f"{name}-role",
            service="ec2.amazonaws.com",
            description=f"Managed node groups of {naming.cluster_name}",
            managed_policies=iam.NODE_MANAGED_POLICIES,
            account=args.account,
            partition=args.partition,
            tags=naming.tags(),
            opts=child,
        )
        self.role_arn = role.arn
        after_role = pulumi.ResourceOptions(parent=self, depends_on=attachments)

        system_lt = aws.ec2.LaunchTemplate(
            f"{name}-system-lt",
            description="System nodes: IMDSv2, encrypted gp3 root",
            update_default_version=True,
            metadata_options=_metadata_options(),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda", ebs=_ebs(SYSTEM_ROOT_VOLUME_GIB, fast=False))],
            tag_specifications=_tag_specs(naming.tags(**{"Name": naming.physical("system")})),
            tags=naming.tags(),
            opts=child,
        )
        self.system = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=args.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=list(cfg.system_node_instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=cfg.system_node_count,
                desired_size=cfg.system_node_count,
                max_size=cfg.system_node_count,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=system_lt.id, version=system_lt.latest_version.apply(str)),
            labels=dict(SYSTEM_NODE_LABELS),
            tags=naming.tags(),
            opts=after_role,
        )

        self.gpu_floors = {}
        for model in args.models:
            nodes = floor_nodes(model)
            if nodes == 0:
                continue
            self.gpu_floors[model.name] = self._gpu_floor(
                name, args, model, nodes, role.arn, after_role)

        self.register_outputs({
            "roleArn": self.role_arn,
            "system": self.system.id,
            "gpuFloors": {m: ng.id for m, ng in self.gpu_floors.items()},
        })

    def _gpu_floor(
        self,
        name: str,
        args: NodeGroupsArgs,
        model: Model,
        nodes: int,
        role_arn: pulumi.Output[str],
        opts: pulumi.ResourceOptions,
    ) -> aws.eks.NodeGroup:
        naming, cfg = args.naming, args.config
        tags = naming.serving_tags(model, "eks")
        user_data = (base64.b64encode(FAST_IMAGE_PULL_USER_DATA.encode()).decode()
                     if ami_family(cfg) == "AL2023" else None)
        lt = aws.ec2.LaunchTemplate(
            f"{name}-gpu-{model.name}-lt",
            description=f"GPU floor for {model.name}: IMDSv2, encrypted gp3 for LLM images",
            update_default_version=True,
            metadata_options=_metadata_options(),
            block_device_mappings=gpu_block_devices(cfg),
            user_data=user_data,
            tag_specifications=_tag_specs({**tags, "Name": naming.physical(model.name)}),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.NodeGroup(
            f"{name}-gpu-{model.name}",
            cluster_name=args.cluster_name,
            node_role_arn=role_arn,
            subnet_ids=args.subnet_ids,
            ami_type=gpu_ami_type(cfg),
            capacity_type="SPOT" if model.spec.capacity == "spot" else "ON_DEMAND",
            instance_types=floor_instance_types(model, cfg),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=nodes, desired_size=nodes, max_size=nodes),
            # New nodes join before old ones drain during AMI updates (EKS surges the group).
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=lt.id, version=lt.latest_version.apply(str)),
            labels=gpu_node_labels(model.name),
            taints=[aws.eks.NodeGroupTaintArgs(
                key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")],
            tags=tags,
            opts=opts,
        )


def _tag_specs(tags: dict[str, str]) -> list[aws.ec2.LaunchTemplateTagSpecificationArgs]:
    """Tags on the instances and volumes a node group launches (default_tags cannot reach
    resources the EKS service creates)."""
    return [aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
            for kind in ("instance", "volume")]
