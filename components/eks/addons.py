"""EKS-managed core add-ons with pinned versions: VPC CNI, kube-proxy, CoreDNS, Pod Identity.

Managed add-ons get EKS's security patches through a version bump here instead of a manual
kubectl apply, and `OVERWRITE` adopts the self-managed copies EKS bootstraps at cluster
creation. CoreDNS waits for the system node group: with no node to run on, the add-on would
sit in DEGRADED and fail the deployment. The VPC CNI runs with its network policy agent on, so
the model namespaces' NetworkPolicies are enforced (components/eks/hardening.py).
https://docs.aws.amazon.com/eks/latest/userguide/eks-add-ons.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.eks.hardening import vpc_cni_configuration
from components.facts.charts import eks_addons
from components.tags import Naming


@dataclass(frozen=True)
class EksAddonsArgs:
    naming: Naming
    kubernetes_version: str
    cluster_name: pulumi.Input[str]
    system_nodes: Sequence[pulumi.Resource]


class EksAddons(pulumi.ComponentResource):
    """One `aws.eks.Addon` per core add-on, at the version pinned for the cluster's minor."""

    addons: dict[str, aws.eks.Addon]
    pod_identity_agent: aws.eks.Addon

    def __init__(
        self, name: str, args: EksAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:eks:Addons", name, None, opts)
        self.addons = {}
        for addon, version in eks_addons(args.kubernetes_version).by_addon_name().items():
            needs_nodes = addon == "coredns"
            # The VPC CNI enforces NetworkPolicy only with its policy agent on (hardening.py).
            values = json.dumps(vpc_cni_configuration()) if addon == "vpc-cni" else None
            self.addons[addon] = aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=args.cluster_name,
                addon_name=addon,
                addon_version=version,
                configuration_values=values,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=args.naming.tags(),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(args.system_nodes) if needs_nodes else []
                ),
            )
        self.pod_identity_agent = self.addons["eks-pod-identity-agent"]
        self.register_outputs({k: a.addon_version for k, a in self.addons.items()})
