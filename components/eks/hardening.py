"""Least privilege for the workloads this program runs on EKS: pod and container security
contexts, and one NetworkPolicy per model namespace (pure builders; docs/hardening.md).

Containers: non-root with a fixed UID where the image allows it (the facts module records each
image's non-root layout), no privilege escalation, every capability dropped, the runtime's
default seccomp profile, and a read-only root filesystem with each path the engine writes
mounted as an `emptyDir`. That satisfies the Pod Security `restricted` profile, which the model
namespaces now enforce. https://kubernetes.io/docs/concepts/security/pod-security-standards/

Network: a model namespace denies everything, then admits
* ingress to the serving port from the gateway's pods (`GATEWAY_PEER`), the metrics scraper's
  pods (`SCRAPER_PEER`) and, with `eks.ingress: internal-alb`, the load balancer's dedicated
  subnets (`Network.load_balancer_cidrs`): with `ip` targets the ALB connects from its own ENIs,
  and those subnets hold nothing else, whereas a VPC-range rule would admit every pod (the VPC
  CNI gives pods VPC addresses);
* egress to cluster DNS, the EKS Pod Identity agent (169.254.170.23:80, the credentials the
  SDK's container provider fetches) and HTTPS anywhere except instance metadata: S3 through its
  gateway endpoint still resolves to S3's public ranges, which a NetworkPolicy cannot name by
  service, and Hub downloads go to a CDN.
Kubelet probes come from the node's own IP, which the VPC CNI's policy agent always admits
(aws/aws-network-policy-agent #65), as Kubernetes documents for every implementation.
https://kubernetes.io/docs/concepts/services-networking/network-policies/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.facts.images import NonRootLayout

#: The LiteLLM gateway (issue 15) runs in this namespace with this label on its pods; it is the
#: one selector model namespaces admit for it. The gateway package must keep both (its pods'
#: `app.kubernetes.io/component: gateway` and the namespace name).
GATEWAY_NAMESPACE = "llm-gateway"
GATEWAY_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/component": "gateway"}

#: Prometheus (kube-prometheus-stack; the Prometheus Operator labels every server pod, agent
#: mode included, `app.kubernetes.io/name: prometheus`), in the monitoring namespace.
SCRAPER_NAMESPACE = "monitoring"
SCRAPER_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "prometheus"}

#: Cluster DNS: CoreDNS (EKS add-on) keeps the `k8s-app: kube-dns` label in kube-system.
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS: Mapping[str, str] = {"k8s-app": "kube-dns"}

#: EKS Pod Identity agent: link-local, port 80, on every node (IPv4; fd00:ec2::23 on IPv6).
#: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT = 80
#: Instance metadata stays unreachable (IMDSv2 hop limit 1 already stops pods; belt and braces).
IMDS_CIDR = "169.254.169.254/32"

_NS_NAME = "kubernetes.io/metadata.name"  # set by the API server on every namespace


def peer(namespace: str, pod_labels: Mapping[str, str]) -> dict[str, Any]:
    """A NetworkPolicy peer: pods with `pod_labels` in the namespace named `namespace`."""
    return {"namespaceSelector": {"matchLabels": {_NS_NAME: namespace}},
            "podSelector": {"matchLabels": dict(pod_labels)}}


GATEWAY_PEER = peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)
SCRAPER_PEER = peer(SCRAPER_NAMESPACE, SCRAPER_POD_LABELS)


# --- pods and containers --------------------------------------------------------------------


def pod_security_context(layout: NonRootLayout | None) -> dict[str, Any]:
    """Pod-level: non-root with the image's UID/GID (fsGroup makes the emptyDirs the pod's own)
    and RuntimeDefault seccomp; `None` (image known only as root): seccomp only."""
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if layout is not None:
        ctx |= {"runAsNonRoot": True, "runAsUser": layout.uid, "runAsGroup": layout.gid,
                "fsGroup": layout.gid, "fsGroupChangePolicy": "OnRootMismatch"}
    return ctx


def container_security_context(layout: NonRootLayout | None) -> dict[str, Any]:
    """Container-level: never escalate, no capabilities, read-only root filesystem; repeats the
    pod's user so the container is compliant on its own (Checkov and the policy pack read it)."""
    ctx: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "readOnlyRootFilesystem": True,
    }
    if layout is not None:
        ctx |= {"runAsNonRoot": True, "runAsUser": layout.uid, "runAsGroup": layout.gid}
    return ctx


HOME_VOLUME = "home"
TMP_VOLUME = "tmp"
#: Compile caches (torch.compile, Triton, FlashInfer JIT) of one engine: a few hundred MB to a
#: few GB per model and GPU architecture; 8 GiB leaves room for several recompiles.
HOME_SIZE_GIB = 8
#: ZMQ IPC sockets, Python tempfiles.
TMP_SIZE_GIB = 2


def scratch_volumes(layout: NonRootLayout) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) for HOME and the image's scratch paths, disk-backed emptyDirs."""
    volumes = [{"name": HOME_VOLUME, "emptyDir": {"sizeLimit": f"{HOME_SIZE_GIB}Gi"}}]
    mounts = [{"name": HOME_VOLUME, "mountPath": layout.home}]
    for i, path in enumerate(layout.scratch):
        name = TMP_VOLUME if i == 0 else f"{TMP_VOLUME}-{i}"
        volumes.append({"name": name, "emptyDir": {"sizeLimit": f"{TMP_SIZE_GIB}Gi"}})
        mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


def scratch_gib(layout: NonRootLayout | None) -> int:
    """Ephemeral storage the scratch volumes may use (counted in the pod's request/limit)."""
    if layout is None:
        return 0
    return HOME_SIZE_GIB + TMP_SIZE_GIB * len(layout.scratch)


# --- network policy -------------------------------------------------------------------------


def model_network_policy(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    port: int,
    load_balancer_cidrs: Sequence[Any] = (),
) -> dict[str, Any]:
    """Default deny for the namespace's pods, then exactly the flows serving needs.

    `podSelector: {}` selects every pod of the namespace (a pod the user adds there is denied
    too, until they admit it); only the serving `port` is opened, to the three sources.
    `load_balancer_cidrs` (the ALB's dedicated subnets, `internal-alb` only) may be outputs.
    """
    sources: list[dict[str, Any]] = [dict(GATEWAY_PEER), dict(SCRAPER_PEER)]
    sources += [{"ipBlock": {"cidr": cidr}} for cidr in load_balancer_cidrs]
    dns_ports = [{"protocol": proto, "port": 53} for proto in ("UDP", "TCP")]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": sources,
                "ports": [{"protocol": "TCP", "port": port}],
            }],
            "egress": [
                {"to": [peer(DNS_NAMESPACE, DNS_POD_LABELS)], "ports": dns_ports},
                {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
                 "ports": [{"protocol": "TCP", "port": POD_IDENTITY_AGENT_PORT}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [IMDS_CIDR]}}],
                 "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def vpc_cni_configuration() -> dict[str, Any]:
    """`configurationValues` of the vpc-cni add-on: turn on its network policy agent.

    Without it the API server accepts NetworkPolicy objects and nothing enforces them: every
    pod can still reach every model directly. The key is in the add-on's configuration schema
    from v1.14.0 (`aws eks describe-addon-configuration --addon-name vpc-cni`), a string.
    https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html
    """
    return {"enableNetworkPolicy": "true"}
