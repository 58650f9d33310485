"""The EKS control plane: private API endpoint, audit logging, KMS envelope encryption of
Secrets, access entries, and the Kubernetes provider every in-cluster resource is deployed with.

`pulumi_eks.Cluster` builds the control plane; we hand it our own cluster role (so the role can
use the secrets key) and skip its default node group and security groups: every node, managed
or Karpenter-launched, joins the EKS-created cluster security group, which EKS keeps open
between its members and to the control plane. That group is tagged for Karpenter discovery.
https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.config import EksConfig
from components.eks import iam
from components.eks.roles import service_role
from components.network import FLOW_LOG_RETENTION_DAYS, Network
from components.tags import Naming

CONTROL_PLANE_LOG_TYPES: tuple[str, ...] = (
    "api", "audit", "authenticator", "controllerManager", "scheduler",
)
"""All five control-plane log streams; `audit` and `authenticator` are what an incident review
needs. https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html"""

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class EksClusterArgs:
    naming: Naming
    config: EksConfig
    network: Network
    region: str
    account: pulumi.Input[str]
    partition: pulumi.Input[str]


class EksCluster(pulumi.ComponentResource):
    """Control plane, its IAM role, secrets key, log group and the Kubernetes provider."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    cluster: eks.Cluster

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:eks:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, cfg = args.naming, args.config
        prod = naming.protect
        protect = pulumi.ResourceOptions(parent=self, protect=prod)

        key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"{naming.cluster_name}: envelope encryption of Kubernetes Secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(args.account, args.partition).apply(
                lambda ap: iam.secrets_key_policy(account=ap[0], partition=ap[1])
            ),
            tags=naming.tags(),
            opts=protect,
        )
        role, attachments = service_role(
            f"{name}-role",
            service="eks.amazonaws.com",
            description=f"EKS control plane of {naming.cluster_name}",
            managed_policies=iam.CLUSTER_MANAGED_POLICIES,
            account=args.account,
            partition=args.partition,
            tags=naming.tags(),
            opts=child,
        )
        encryption = aws.iam.RolePolicy(
            f"{name}-role-secrets-key",
            role=role.id,
            policy=key.arn.apply(iam.cluster_encryption_policy),
            opts=child,
        )
        # EKS writes control-plane logs to this exact group name; creating it first gives it a
        # retention and our logs key instead of "never expire", unencrypted.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{naming.cluster_name}/cluster",
            retention_in_days=FLOW_LOG_RETENTION_DAYS[naming.environment],
            kms_key_id=args.network.logs_kms_key_arn,
            tags=naming.tags(),
            opts=protect,
        )

        self.cluster = eks.Cluster(
            f"{name}-eks",
            name=naming.cluster_name,
            version=cfg.kubernetes_version,
            vpc_id=args.network.vpc_id,
            private_subnet_ids=args.network.private_subnet_ids,
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=bool(cfg.public_access_cidrs),
            public_access_cidrs=list(cfg.public_access_cidrs) or None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=_admin_access_entries(cfg, naming),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            encryption_config_key_arn=key.arn,
            service_role=role,
            skip_default_node_group=True,
            skip_default_security_groups=True,
            # Pod Identity (the agent add-on) instead of IRSA: see docs/eks.md.
            create_oidc_provider=False,
            # Core add-ons are EKS add-ons with pinned versions (EksAddons), not pulumi-eks's.
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=False),
            deletion_protection=prod,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            tags=naming.tags(),
            opts=pulumi.ResourceOptions(
                parent=self, protect=prod, depends_on=[*attachments, encryption, logs]
            ),
        )
        self.cluster_name = self.cluster.eks_cluster.name
        self.cluster_arn = self.cluster.eks_cluster.arn
        self.cluster_security_group_id = self.cluster.cluster_security_group_id

        # Karpenter finds the security group for its nodes by this tag (EC2NodeClass).
        aws.ec2.Tag(
            f"{name}-sg-discovery-tag",
            resource_id=self.cluster_security_group_id,
            key="karpenter.sh/discovery",
            value=naming.cluster_name,
            opts=child,
        )

        self.kubeconfig = pulumi.Output.secret(self.cluster.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=child,
        )
        self.register_outputs({
            "clusterName": self.cluster_name,
            "clusterArn": self.cluster_arn,
            "clusterSecurityGroupId": self.cluster_security_group_id,
            "kubeconfig": self.kubeconfig,
        })


def _admin_access_entries(cfg: EksConfig, naming: Naming) -> dict[str, eks.AccessEntryArgs]:
    """Cluster-admin access entries, keyed by the principal's name (stable under reordering)."""
    entries: dict[str, eks.AccessEntryArgs] = {}
    for arn in cfg.cluster_admin_arns:
        entries[f"admin-{arn.rsplit('/', 1)[-1]}"] = eks.AccessEntryArgs(
            principal_arn=arn,
            access_policies={
                "cluster-admin": eks.AccessPolicyAssociationArgs(
                    policy_arn=CLUSTER_ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                ),
            },
            tags=naming.tags(),
        )
    return entries
