"""Pinned versions for the EKS platform: Kubernetes, EKS add-ons, Helm charts and node AMIs.

Every pin is exact (never `latest`), so nodes and controllers change because someone edited this
file, not because a registry or an SSM parameter moved. Each value names where it was read and
when; re-check them with the commands in the comments before bumping `KUBERNETES_VERSION`.
No Pulumi import: the config module, the plan command and the policy pack read this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: Date the pins below were last compared with their sources.
CHECKED_AS_OF = "2026-11-25"


@dataclass(frozen=True)
class EksAddons:
    """EKS-managed add-on versions for one Kubernetes minor.

    Source: `aws eks describe-addon-versions --kubernetes-version <minor> --addon-name <name>`
    (the first, i.e. newest, `addonVersion` whose `compatibilities[].defaultVersion` build runs
    on the minor). kube-proxy must match the control-plane minor; the others span several.
    https://docs.aws.amazon.com/eks/latest/userguide/workloads-add-ons-available-eks.html
    """

    vpc_cni: str
    coredns: str
    kube_proxy: str
    pod_identity_agent: str

    def by_addon_name(self) -> dict[str, str]:
        """Keyed by the EKS add-on name (`addonName` in the API)."""
        return {
            "vpc-cni": self.vpc_cni,
            "coredns": self.coredns,
            "kube-proxy": self.kube_proxy,
            "eks-pod-identity-agent": self.pod_identity_agent,
        }


#: Kubernetes minors this program has pins for; `llm-hosting:eks.kubernetesVersion` must be one.
#: 1.35 is in EKS standard support until 2027-03-27 (https://endoflife.date/amazon-eks, EKS
#: release calendar) and inside Karpenter 1.14's supported range; 1.36/1.37 are added here once
#: their add-on builds are read from describe-addon-versions.
EKS_ADDON_VERSIONS: Mapping[str, EksAddons] = MappingProxyType(
    {
        "1.35": EksAddons(
            vpc_cni="v1.21.1-eksbuild.1",
            coredns="v1.13.2-eksbuild.1",
            kube_proxy="v1.35.3-eksbuild.13",
            pod_identity_agent="v1.3.10-eksbuild.2",
        ),
    }
)

DEFAULT_KUBERNETES_VERSION = "1.35"

# --- Karpenter ------------------------------------------------------------------------------
# Chart and CRD chart from the public ECR OCI registry; the app version equals the chart
# version. 1.14.1 is the release whose CRDs the tests validate against
# (tests/reference/crds, aws/karpenter-provider-aws v1.14.1, pkg/apis/crds/), so the objects
# we create are checked against the exact API server schema we install.
# https://karpenter.sh/docs/upgrading/upgrade-guide/ (CRD chart installed separately so CRDs
# are upgraded with the controller; Helm never upgrades a chart's crds/ directory).
KARPENTER_VERSION = "1.14.1"
KARPENTER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"

# --- NVIDIA device plugin -------------------------------------------------------------------
# https://github.com/NVIDIA/k8s-device-plugin/releases (0.20.0, August 2026). The EKS AL2023
# NVIDIA AMIs ship the driver and container toolkit but not the device plugin; Bottlerocket's
# NVIDIA variants run their own plugin, so the chart is only installed for AL2023 GPU nodes.
# https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html
NVIDIA_DEVICE_PLUGIN_VERSION = "0.20.0"
NVIDIA_DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
NVIDIA_DEVICE_PLUGIN_CHART = "nvidia-device-plugin"

# --- Node AMIs (Karpenter `amiSelectorTerms` aliases) -----------------------------------------
# Pinned, because `@latest` makes every GPU node drift (and be replaced) the day AWS publishes an
# AMI: Karpenter's own docs advise against `latest` in production.
# https://karpenter.sh/docs/concepts/nodeclasses/#specamiselectorterms
# AL2023: awslabs/amazon-eks-ami release v20261112 (AL2023_x86_64_NVIDIA for K8s 1.33-1.35 is
# built on al2023-ami-minimal-2023.12.20261112.0-kernel-6.12).
# https://github.com/awslabs/amazon-eks-ami/releases/tag/v20261112
AL2023_AMI_ALIAS = "al2023@v20261112"
# Bottlerocket: bottlerocket-os/bottlerocket v1.65.0 (aws-k8s-1.35-nvidia variant).
# https://github.com/bottlerocket-os/bottlerocket/releases
BOTTLEROCKET_AMI_ALIAS = "bottlerocket@v1.65.0"

# --- Serving layer (part 2): monitoring, autoscaling, ingress ---------------------------------
# kube-prometheus-stack: Prometheus Operator + Prometheus + Alertmanager + Grafana; installs the
# monitoring.coreos.com CRDs our ServiceMonitors/PrometheusRule need. 82.6.0 (March 2026,
# https://github.com/prometheus-community/helm-charts/releases/tag/kube-prometheus-stack-82.6.0).
KUBE_PROMETHEUS_STACK_VERSION = "82.6.0"
KUBE_PROMETHEUS_STACK_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"
# NVIDIA DCGM exporter: the chart version equals the exporter version (deployment/Chart.yaml);
# release 4.6.0-4.8.3 (DCGM 4.6.0, exporter 4.8.3, July 2026,
# https://github.com/NVIDIA/dcgm-exporter/pull/711).
DCGM_EXPORTER_VERSION = "4.8.3"
DCGM_EXPORTER_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_CHART = "dcgm-exporter"
# KEDA: the chart version equals the app version; 2.19.0 (February 2026,
# https://github.com/kedacore/keda/releases/tag/v2.19.0). Fallback `behavior` needs >= 2.17.
KEDA_VERSION = "2.19.0"
KEDA_REPO = "https://kedacore.github.io/charts"
KEDA_CHART = "keda"
# AWS Load Balancer Controller (only with `eks.ingress: internal-alb`): chart 1.17.1 (app
# v2.17.1), the last 1.x before the chart jumped to 3.x (aws/eks-charts#1312, March 2026; 3.x
# not adopted until its upgrade notes are published).
AWS_LOAD_BALANCER_CONTROLLER_VERSION = "1.17.1"
AWS_LOAD_BALANCER_CONTROLLER_REPO = "https://aws.github.io/eks-charts"
AWS_LOAD_BALANCER_CONTROLLER_CHART = "aws-load-balancer-controller"


def eks_addons(kubernetes_version: str) -> EksAddons:
    """The add-on pins for `kubernetes_version`; `KeyError` names the supported minors."""
    try:
        return EKS_ADDON_VERSIONS[kubernetes_version]
    except KeyError:
        supported = ", ".join(sorted(EKS_ADDON_VERSIONS))
        raise KeyError(
            f"no EKS add-on pins for Kubernetes {kubernetes_version}; supported: {supported}"
        ) from None
