"""`platform: eks`: an EKS cluster whose GPU capacity Karpenter provisions just in time.

Composition only: cluster -> managed node groups (system + GPU floor) -> core add-ons ->
Karpenter (IAM, interruption queue, controller, per-model NodePools) -> NVIDIA device plugin.
The serving layer (part 2) builds on the attributes this component exposes: the Kubernetes
provider, the cluster name, the per-model NodePool names and the stable node labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.eks.addons import EksAddons, EksAddonsArgs
from components.eks.cluster import EksCluster, EksClusterArgs
from components.eks.device_plugin import DevicePlugin
from components.eks.karpenter import Karpenter, KarpenterArgs
from components.eks.nodegroups import NodeGroups, NodeGroupsArgs
from components.eks.nodepool import ami_family
from components.eks.workloads import ServingLayerArgs, add_serving_layer
from components.platform_api import PlatformArgs


class EksPlatform(pulumi.ComponentResource):
    """EKS + Karpenter GPU platform (type `llm-hosting:eks:EksPlatform`)."""

    exports: Mapping[str, Any]
    provider: k8s.Provider
    """Kubernetes provider for the cluster (built from its kubeconfig); deploy workloads with it."""
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret."""
    node_role_arn: pulumi.Output[str]
    """Role of the GPU nodes Karpenter launches."""
    managed_node_role_arn: pulumi.Output[str]
    """Role of the managed node groups (system nodes and GPU floors)."""
    node_pools: Mapping[str, str]
    """Model name -> Karpenter NodePool name."""
    pod_identity_agent: aws.eks.Addon
    """Depend on it before creating a `PodIdentityAssociation` (workload IAM is Pod Identity)."""
    ready: list[pulumi.Resource]
    """Depend on these before scheduling GPU workloads (Karpenter, pools, device plugin)."""

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:eks:EksPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, naming, network = args.config, args.naming, args.network
        cfg = config.eks
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        cluster = EksCluster(f"{name}-cluster", EksClusterArgs(
            naming=naming, config=cfg, network=network, region=config.region,
            account=account, partition=partition,
        ), child)
        nodes = NodeGroups(f"{name}-nodes", NodeGroupsArgs(
            naming=naming, config=cfg, models=config.models,
            cluster_name=cluster.cluster_name, subnet_ids=network.private_subnet_ids,
            partition=partition, account=account,
        ), child)
        addons = EksAddons(f"{name}-addons", EksAddonsArgs(
            naming=naming, kubernetes_version=cfg.kubernetes_version,
            cluster_name=cluster.cluster_name, system_nodes=[nodes.system],
        ), child)
        # Every Helm release waits (atomic) for its pods; on a first deploy they need the system
        # nodes and CoreDNS on them, or the wait races the node group's creation and times out.
        system_nodes: list[pulumi.Resource] = [nodes.system, addons.addons["coredns"]]
        karpenter = Karpenter(f"{name}-karpenter", KarpenterArgs(
            naming=naming, config=cfg, models=config.models, region=config.region,
            account=account, partition=partition, cluster_name=cluster.cluster_name,
            provider=cluster.provider,
            depends_on=[*system_nodes, addons.pod_identity_agent],
        ), child)
        self.ready = list(karpenter.ready)
        if ami_family(cfg) == "AL2023":
            plugin = DevicePlugin(f"{name}-device-plugin", cluster.provider, child,
                                  depends_on=system_nodes)
            self.ready.append(plugin.release)

        # Part 2: monitoring, KEDA, optional ALB controller, one ModelServing per model.
        serving = add_serving_layer(name, self, ServingLayerArgs(
            config=config, naming=naming, cluster_name=cluster.cluster_name,
            vpc_id=network.vpc_id, vpc_cidr=network.vpc_cidr, provider=cluster.provider,
            ready=self.ready, pod_identity_agent=addons.pod_identity_agent,
            system_nodes=system_nodes, load_balancer_subnet_ids=network.load_balancer_subnet_ids,
            load_balancer_cidrs=network.load_balancer_cidrs,
        ))

        self.provider = cluster.provider
        self.cluster_name = cluster.cluster_name
        self.cluster_arn = cluster.cluster_arn
        self.kubeconfig = cluster.kubeconfig
        self.node_role_arn = karpenter.node_role_arn
        self.managed_node_role_arn = nodes.role_arn
        self.node_pools = dict(karpenter.node_pools)
        self.pod_identity_agent = addons.pod_identity_agent
        self.exports = {
            "clusterName": self.cluster_name,
            "kubeconfig": self.kubeconfig,
            "nodeRoleArn": self.node_role_arn,
            "nodePools": self.node_pools,
            "updateKubeconfig": pulumi.Output.concat(
                "aws eks update-kubeconfig --region ", config.region, " --name ",
                self.cluster_name),
            **serving,
        }
        self.register_outputs(dict(self.exports))
