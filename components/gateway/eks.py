"""The gateway on EKS: a Deployment on the system nodes, its Service, PDB, HPA, config and scrape.

Pure builders return the manifests exactly as the API server receives them (tests validate them
with `kubernetes_validate` and the CRD schemas); `EksGateway` registers them. The pinned
LiteLLM image runs unchanged: the generated config and the hooks file are one ConfigMap mounted
at `CONFIG_DIR`, whose hash in the pod template rolls the Deployment when either changes.

The master key stays in Secrets Manager: the container's start command reads it with the pod's
own identity (EKS Pod Identity, boto3 in the image) into the proxy's environment, so no
Kubernetes Secret holds it and no secrets-store add-on is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.gateway import config as gw
from components.network import ELB_TLS_POLICY

NAMESPACE = "llm-gateway"
NAME = "llm-gateway"
CONFIG_DIR = "/etc/llm-gateway"
SERVICE_PORT = 80
HTTP, METRICS = "http", "metrics"
KEY_ARN_ENV = "LLM_HOSTING_GATEWAY_KEY_ARN"
"""Names where the key lives (an ARN, not the key: the name avoids the pack's credential words)."""
PRESTOP_SLEEP_SECONDS = 15
CPU_TARGET_PERCENT = 60


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "litellm", "app.kubernetes.io/instance": NAME,
            "app.kubernetes.io/component": "gateway", "app.kubernetes.io/part-of": "llm-hosting",
            "app.kubernetes.io/managed-by": "pulumi"}


def selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": "litellm", "app.kubernetes.io/instance": NAME}


def _meta(name: str = NAME, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": labels(), **extra}


def cluster_url() -> str:
    """What clients in the cluster call (OpenAI base URL)."""
    return f"http://{NAME}.{NAMESPACE}.svc.cluster.local:{SERVICE_PORT}/v1"


def model_api_base(model: str, namespace: str, port: int) -> str:
    """A model's Service, as the gateway calls it (same cluster DNS the model's clients use)."""
    return f"http://{model}.{namespace}.svc.cluster.local:{port}/v1"


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NAMESPACE, "labels": {**labels(),
                                      "pod-security.kubernetes.io/enforce": "restricted",
                                      "pod-security.kubernetes.io/audit": "restricted",
                                      "pod-security.kubernetes.io/warn": "restricted"}}}


def service_account() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(),
            "automountServiceAccountToken": False}


def config_map(files: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(f"{NAME}-config"),
            "data": dict(files)}


def files_hash(files: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(files), sort_keys=True).encode()).hexdigest()


# Read the key with the pod's identity, then exec the image's entrypoint with the config.
_READ_KEY = ("import boto3,os;print(boto3.client('secretsmanager').get_secret_value("
             f"SecretId=os.environ['{KEY_ARN_ENV}'])['SecretString'])")


def start_command(entrypoint: Sequence[str]) -> list[str]:
    args = " ".join([*entrypoint, *gw.proxy_args(CONFIG_DIR)])
    return ["/bin/sh", "-c",
            f'{gw.MASTER_KEY_ENV}="$(python3 -c "{_READ_KEY}")" || exit 1; '
            f"export {gw.MASTER_KEY_ENV}; exec {args}"]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": HTTP}, "periodSeconds": period,
            "failureThreshold": failures, "timeoutSeconds": 5}


def termination_grace_seconds(plan: gw.GatewayPlan) -> int:
    """A replica being replaced finishes what it holds and streams (uvicorn drains open
    requests on SIGTERM): the longest hold plus generation the load balancer allows."""
    return plan.idle_timeout_seconds + PRESTOP_SLEEP_SECONDS


def deployment(plan: gw.GatewayPlan, *, image: str, entrypoint: Sequence[str], region: str,
               node_selector: Mapping[str, str], files: Mapping[str, str],
               key_secret_arn: Any, user: tuple[int, int]) -> dict[str, Any]:
    """The proxy on the system nodes, spread over zones and nodes. `spec.replicas` is unset: the
    HPA owns it (like the models' Deployments), so `pulumi up` never resets a scaled-out
    gateway."""
    container = {
        "name": "gateway",
        "image": image,
        "imagePullPolicy": "Always",  # a small image; the tag is pinned, the registry decides
        "command": start_command(entrypoint),
        "ports": [{"name": HTTP, "containerPort": gw.PORT, "protocol": "TCP"},
                  {"name": METRICS, "containerPort": gw.METRICS_PORT, "protocol": "TCP"}],
        "env": [{"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"},
                # No database: no admin UI; LiteLLM's UI/asset copies go to the /tmp volume.
                {"name": "DISABLE_ADMIN_UI", "value": "True"},
                {"name": "LITELLM_UI_PATH", "value": "/tmp/litellm/ui"},
                {"name": "LITELLM_ASSETS_PATH", "value": "/tmp/litellm/assets"},
                {"name": "AWS_REGION", "value": region},
                {"name": "AWS_DEFAULT_REGION", "value": region},
                {"name": KEY_ARN_ENV, "value": key_secret_arn}],
        "resources": {"requests": {"cpu": gw.POD_CPU_REQUEST, "memory": gw.POD_MEMORY},
                      "limits": {"cpu": gw.POD_CPU_LIMIT, "memory": gw.POD_MEMORY_LIMIT}},
        "startupProbe": _probe(gw.HEALTH_PATH, 5, 36),  # up to 3 minutes to load
        "readinessProbe": _probe(gw.HEALTH_PATH, 10, 3),
        "livenessProbe": _probe(gw.HEALTH_PATH, 20, 3),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        # The image's own user (nobody), read-only root; PSS `restricted` (the namespace
        # enforces it).
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "runAsUser": user[0], "runAsGroup": user[1],
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    sel = selector()
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(),
        "spec": {
            "selector": {"matchLabels": sel},
            "revisionHistoryLimit": 5,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(),
                             "annotations": {"llm-hosting/config-sha256": files_hash(files)}},
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": user[0],
                                        "runAsGroup": user[1], "fsGroup": user[1],
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationGracePeriodSeconds": termination_grace_seconds(plan),
                    "nodeSelector": dict(node_selector),
                    "topologySpreadConstraints": [
                        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                         "labelSelector": {"matchLabels": sel}}
                        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")],
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-config"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(), "spec": {
        "type": "ClusterIP", "selector": selector(),
        "ports": [{"name": HTTP, "port": SERVICE_PORT, "targetPort": HTTP, "protocol": "TCP"},
                  {"name": METRICS, "port": gw.METRICS_PORT, "targetPort": METRICS,
                   "protocol": "TCP"}]}}


def pod_disruption_budget(plan: gw.GatewayPlan) -> dict[str, Any]:
    """Drains take one replica at a time, and never the last one."""
    budget = {"maxUnavailable": 1} if plan.replicas >= 2 else {"minAvailable": 1}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(),
            "spec": {**budget, "selector": {"matchLabels": selector()},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"}}


def horizontal_pod_autoscaler(plan: gw.GatewayPlan) -> dict[str, Any]:
    """Between `gateway.replicas` and three times that, on average CPU against the request."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(), "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                "minReplicas": plan.replicas, "maxReplicas": gw.max_replicas(plan.replicas),
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600,
                                           "policies": [{"type": "Pods", "value": 1,
                                                         "periodSeconds": 300}]}},
            }}


def service_monitor(interval: str = "15s") -> dict[str, Any]:
    """Prometheus scrapes every replica's hooks endpoint (KEDA and the alerts read the sum)."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": _meta(), "spec": {
                "selector": {"matchLabels": selector()},
                "namespaceSelector": {"matchNames": [NAMESPACE]},
                "endpoints": [{"port": METRICS, "path": "/metrics", "interval": interval,
                               "scrapeTimeout": "10s"}]}}


def ingress(plan: gw.GatewayPlan, vpc_cidr: Any, certificate_arn: str | None = None
            ) -> dict[str, Any]:
    """Internal ALB (AWS Load Balancer Controller) from the VPC range only, with the idle timeout
    a held request needs. With the models' certificate (`eks.certificateArn`) it listens on
    HTTPS 443 only, as theirs do (components/eks/serving.py `ingress`).
    https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/"""
    a = "alb.ingress.kubernetes.io/"
    tls = {f"{a}certificate-arn": certificate_arn, f"{a}listen-ports": '[{"HTTPS": 443}]',
           f"{a}ssl-policy": ELB_TLS_POLICY} if certificate_arn else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(
        annotations={
            **tls,
            f"{a}scheme": "internal", f"{a}target-type": "ip", f"{a}inbound-cidrs": vpc_cidr,
            f"{a}healthcheck-path": gw.HEALTH_PATH, f"{a}success-codes": "200",
            f"{a}load-balancer-attributes":
                f"idle_timeout.timeout_seconds={plan.idle_timeout_seconds},"
                "routing.http.drop_invalid_header_fields.enabled=true",
            f"{a}target-group-attributes":
                f"deregistration_delay.timeout_seconds={PRESTOP_SLEEP_SECONDS * 2}",
        }), "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": NAME, "port": {"name": HTTP}}}}]}}]}}


# --------------------------------------------------------------------------------- component


@dataclass(frozen=True)
class EksGatewayArgs:
    plan: gw.GatewayPlan
    config_yaml: str
    region: str
    image: str
    entrypoint: Sequence[str]
    user: tuple[int, int]
    """(UID, GID) of the image's non-root user."""
    node_selector: Mapping[str, str]
    key_secret_arn: pulumi.Input[str]
    ingress: bool
    vpc_cidr: pulumi.Input[str]
    certificate_arn: str | None = None
    """With `ingress`: HTTPS 443 only with this ACM certificate."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """The Pod Identity association (and the Prometheus Operator CRDs, for the monitor)."""


class EksGateway(pulumi.ComponentResource):
    """Namespace, identity, config, Deployment, Service, PDB, HPA, ServiceMonitor (+ Ingress).
    The Kubernetes provider comes from the parent chain."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: EksGatewayArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:gateway:EksGateway", name, None, opts)
        plan = args.plan
        files = gw.bundle(args.config_yaml)
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace()["metadata"],
                                   opts=pulumi.ResourceOptions(parent=self))
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        sa = k8s.core.v1.ServiceAccount(f"{name}-service-account",
                                        metadata=service_account()["metadata"],
                                        automount_service_account_token=False, opts=in_ns)
        cm_obj = config_map(files)
        cm = k8s.core.v1.ConfigMap(f"{name}-config", metadata=cm_obj["metadata"],
                                   data=cm_obj["data"], opts=in_ns)
        dep = deployment(plan, image=args.image, entrypoint=args.entrypoint, region=args.region,
                         node_selector=args.node_selector, files=files,
                         key_secret_arn=args.key_secret_arn, user=args.user)
        k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=dep["metadata"], spec=dep["spec"],
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[ns, sa, cm, *args.depends_on]))
        svc_obj = service()
        svc = k8s.core.v1.Service(f"{name}-service", metadata=svc_obj["metadata"],
                                  spec=svc_obj["spec"], opts=in_ns)
        pdb = pod_disruption_budget(plan)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=pdb["metadata"],
                                          spec=pdb["spec"], opts=in_ns)
        hpa = horizontal_pod_autoscaler(plan)
        k8s.autoscaling.v2.HorizontalPodAutoscaler(f"{name}-hpa", metadata=hpa["metadata"],
                                                   spec=hpa["spec"], opts=in_ns)
        mon = service_monitor()
        k8s.apiextensions.CustomResource(
            f"{name}-monitor", api_version=mon["apiVersion"], kind=mon["kind"],
            metadata=mon["metadata"], spec=mon["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.depends_on]))
        self.url = pulumi.Output.from_input(cluster_url())
        if args.ingress:
            ing = ingress(plan, args.vpc_cidr, args.certificate_arn)
            alb = k8s.networking.v1.Ingress(
                f"{name}-ingress", metadata=ing["metadata"], spec=ing["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, svc,
                                                                     *args.depends_on]))
            scheme = "https" if args.certificate_arn else "http"
            self.url = alb.status.apply(lambda status: _ingress_url(status, scheme))
        self.register_outputs({"url": self.url})


def _ingress_url(status: Any, scheme: str = "http") -> str:
    """The ALB's URL once the controller has published it (Pulumi waits for it on create)."""
    try:
        host = status.load_balancer.ingress[0].hostname
    except (AttributeError, IndexError, TypeError):
        return cluster_url()
    return f"{scheme}://{host}/v1" if host else cluster_url()
