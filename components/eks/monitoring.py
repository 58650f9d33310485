"""Observability for vLLM on EKS: scrape, alert, dashboard, GPU telemetry.

`monitoring: kube-prometheus-stack` (default) runs Prometheus, Alertmanager and Grafana in the
cluster on the system nodes, and Alertmanager publishes every alert to a KMS-encrypted SNS topic
(output `alertsTopicArn`) with its own Pod Identity: the chart's default route ends in a `null`
receiver that drops every alert.
`monitoring: amp` keeps the Prometheus Operator but runs Prometheus in agent mode, remote-writing
(SigV4, Pod Identity) to an Amazon Managed Prometheus workspace; the alert rules are loaded into
the workspace's rules namespace instead, because an agent evaluates no rules, and AMP's alert
manager routes firing alerts to a KMS-encrypted SNS topic (output `alertsTopicArn`).
https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-onboard-ingest-metrics-remote-write.html

Either way the scrape config is the same Prometheus Operator objects, built here as plain dicts
and validated in tests against the operator's CRDs; the alert PromQL is parsed by a real parser.

vLLM metric names are those of the pinned image (v0.12): `vllm:kv_cache_usage_perc` replaced
`vllm:gpu_cache_usage_perc`, which was deprecated in 0.9/0.10 and removed in 0.12
(https://github.com/vllm-project/vllm/pull/29330). The KV-cache alert reads both, so it keeps
working across an image bump in either direction.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.config import Model
from components.eks.labels import GPU_TOLERATION
from components.eks.roles import pod_identity_role
from components.eks.serving import (
    HTTP_PORT_NAME,
    MetricsSource,
    labels,
    namespace_name,
    selector_labels,
)
from components.facts.images import VLLM
from components.gateway import monitoring as gateway_monitoring
from components.kms import service_only_key
from components.tags import Naming

Monitoring = Literal["kube-prometheus-stack", "amp"]

NAMESPACE = "monitoring"
STACK_RELEASE = "kube-prometheus-stack"
DCGM_RELEASE = "dcgm-exporter"
PROMETHEUS_SERVICE_ACCOUNT = "prometheus"
ALERTMANAGER_SERVICE_ACCOUNT = "alertmanager"
"""Set in the chart values (`alertmanager.serviceAccount.name`), so the Pod Identity association
names it; the chart's default would be `<fullname>-alertmanager`."""
PROMETHEUS_PORT = 9090
DASHBOARD_LABEL = "grafana_dashboard"  # the kube-prometheus-stack Grafana sidecar's default

SCRAPE_INTERVAL = "15s"
#: Alert thresholds. KV cache above 90% for 10 min: the batch no longer fits the VRAM and vLLM
#: preempts (recomputes) sequences. A queue that averages > 1 for 10 min means the autoscaler is
#: at maxReplicas or capacity is not arriving. TTFT p95 above 3 s is a starting SLO for chat.
KV_CACHE_SATURATION = 0.9
KV_CACHE_FOR = "10m"
QUEUE_DEPTH = 1
QUEUE_FOR = "10m"
TTFT_P95_SECONDS = 3.0
TTFT_FOR = "10m"
THROUGHPUT_DROP_RATIO = 0.5
THROUGHPUT_FOR = "15m"


# --------------------------------------------------------------------------------------------
# pure builders


def service_monitor(model: Model) -> dict[str, Any]:
    """Scrape vLLM's `/metrics` (on the API port) for one model's Service."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": model.name, "namespace": namespace_name(model),
                     "labels": labels(model)},
        "spec": {
            "selector": {"matchLabels": selector_labels(model)},
            "namespaceSelector": {"matchNames": [namespace_name(model)]},
            "endpoints": [{"port": HTTP_PORT_NAME, "path": VLLM.metrics_path,
                           "interval": SCRAPE_INTERVAL, "scrapeTimeout": "10s"}],
        },
    }


def dcgm_service_monitor() -> dict[str, Any]:
    """Scrape the DCGM exporter. `honorLabels` keeps the exporter's `namespace`/`pod` labels (the
    pod using each GPU), so GPU utilization joins the vLLM series of the same model."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": DCGM_RELEASE, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/name": "dcgm-exporter",
                                "app.kubernetes.io/part-of": "llm-hosting"}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter",
                                         "app.kubernetes.io/instance": DCGM_RELEASE}},
            "namespaceSelector": {"matchNames": [NAMESPACE]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": SCRAPE_INTERVAL,
                           "honorLabels": True}],
        },
    }


_BY = "namespace, model_name"


def alert_rules() -> list[dict[str, Any]]:
    """Alerts on LLM signals, per model (vLLM labels every series with `model_name`)."""
    kv = f"max by ({_BY}) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)"
    tokens = f"sum by ({_BY}) (rate(vllm:generation_tokens_total[10m]))"
    tokens_before = f"sum by ({_BY}) (rate(vllm:generation_tokens_total[10m] offset 1h))"
    demand = f"sum by ({_BY}) (vllm:num_requests_running + vllm:num_requests_waiting)"
    return [
        {
            "alert": "VllmKvCacheSaturated",
            "expr": f"{kv} > {KV_CACHE_SATURATION}",
            "for": KV_CACHE_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model_name }}: KV cache above 90% for 10 minutes",
                "description": "The running batch no longer fits the KV cache, so vLLM preempts "
                "and recomputes sequences. Lower concurrencyTarget or maxTotalTokens, quantize, "
                "or use more GPUs per replica.",
            },
        },
        {
            "alert": "VllmRequestsQueued",
            "expr": f"sum by ({_BY}) (avg_over_time(vllm:num_requests_waiting[10m])) "
                    f"> {QUEUE_DEPTH}",
            "for": QUEUE_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model_name }}: requests queueing for 10+ minutes",
                "description": "Requests wait for a batch slot: the autoscaler is at "
                "maxReplicas or GPU capacity is not arriving (Karpenter limits, Spot capacity).",
            },
        },
        {
            "alert": "VllmTimeToFirstTokenHigh",
            "expr": "histogram_quantile(0.95, sum by (namespace, model_name, le) "
                    "(rate(vllm:time_to_first_token_seconds_bucket[5m]))) "
                    f"> {TTFT_P95_SECONDS}",
            "for": TTFT_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model_name }}: p95 time to first token above "
                f"{TTFT_P95_SECONDS:g} s",
                "description": "Prefill is queueing behind long prompts or the replica is "
                "saturated; check queue depth and KV cache usage.",
            },
        },
        {
            "alert": "VllmThroughputDropped",
            "expr": f"({tokens} < {THROUGHPUT_DROP_RATIO} * {tokens_before}) and ({demand} > 0)",
            "for": THROUGHPUT_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model_name }}: generated tokens/s halved versus an "
                "hour ago while requests are in flight",
                "description": "Decode throughput dropped with demand present: GPU throttling, "
                "preemption storms, or a replica lost. Compare GPU utilization (DCGM).",
            },
        },
    ]


def rule_groups(gateway: bool = False) -> list[dict[str, Any]]:
    """vLLM's alerts, and with the gateway on its fallback-rate and hold-timeout alerts."""
    groups = [{"name": "llm-hosting.vllm", "interval": "1m", "rules": alert_rules()}]
    if gateway:
        groups.append({"name": "llm-hosting.gateway", "interval": "1m",
                       "rules": gateway_monitoring.alert_rules()})
    return groups


def prometheus_rule(gateway: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "vllm", "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/part-of": "llm-hosting"}},
        "spec": {"groups": rule_groups(gateway)},
    }


def amp_rules_yaml(gateway: bool = False) -> str:
    """The same groups in Prometheus rule-file form, for an AMP rule groups namespace."""
    return yaml.safe_dump({"groups": rule_groups(gateway)}, sort_keys=False)


def _panel(pid: int, title: str, unit: str, targets: Sequence[tuple[str, str]],
           x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


DASHBOARD_UID = "llm-hosting-vllm"


def dashboard(gateway: bool = False) -> dict[str, Any]:
    """Grafana dashboard: TTFT, tokens/s, KV cache, queue depth, GPU utilization and memory
    (and with the gateway on, its fallbacks, waiting/held requests, hold time, circuits)."""
    m = 'model_name=~"$model"'
    ns = 'namespace=~"$namespace"'
    panels = [
        _panel(1, "Time to first token (p50 / p95)", "s", [
            (f"histogram_quantile(0.5, sum by (model_name, le) "
             f"(rate(vllm:time_to_first_token_seconds_bucket{{{m}}}[5m])))", "p50 {{model_name}}"),
            (f"histogram_quantile(0.95, sum by (model_name, le) "
             f"(rate(vllm:time_to_first_token_seconds_bucket{{{m}}}[5m])))", "p95 {{model_name}}"),
        ], 0, 0),
        _panel(2, "Generated tokens/s", "short", [
            (f"sum by (model_name) (rate(vllm:generation_tokens_total{{{m}}}[5m]))",
             "{{model_name}}"),
        ], 12, 0),
        _panel(3, "KV cache usage", "percentunit", [
            (f"max by (model_name) (vllm:kv_cache_usage_perc{{{m}}} "
             f"or vllm:gpu_cache_usage_perc{{{m}}})", "{{model_name}}"),
        ], 0, 8),
        _panel(4, "Queue depth", "short", [
            (f"sum by (model_name) (vllm:num_requests_waiting{{{m}}})", "waiting {{model_name}}"),
            (f"sum by (model_name) (vllm:num_requests_running{{{m}}})", "running {{model_name}}"),
        ], 12, 8),
        _panel(5, "GPU utilization", "percent", [
            (f"avg by (namespace) (DCGM_FI_DEV_GPU_UTIL{{{ns}}})", "{{namespace}}"),
        ], 0, 16),
        _panel(6, "GPU memory used", "decmbytes", [
            (f"sum by (namespace) (DCGM_FI_DEV_FB_USED{{{ns}}})", "{{namespace}}"),
        ], 12, 16),
    ]
    if gateway:
        for i, (title, targets) in enumerate(gateway_monitoring.grafana_targets()):
            panels.append(_panel(7 + i, title, "short", targets, 12 * (i % 2), 24 + 8 * (i // 2)))
    return {
        "uid": DASHBOARD_UID,
        "title": "LLM serving (vLLM)",
        "tags": ["llm-hosting", "vllm"],
        "schemaVersion": 39,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "model", "type": "query", "datasource": {"uid": "${datasource}"},
             "query": "label_values(vllm:num_requests_running, model_name)",
             "includeAll": True, "multi": True, "refresh": 2},
            {"name": "namespace", "type": "query", "datasource": {"uid": "${datasource}"},
             "query": "label_values(vllm:num_requests_running, namespace)",
             "includeAll": True, "multi": True, "refresh": 2},
        ]},
        "panels": panels,
    }


def dashboard_config_map(gateway: bool = False) -> dict[str, Any]:
    """The dashboard as a ConfigMap the Grafana sidecar loads (label `grafana_dashboard`)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "llm-hosting-vllm-dashboard", "namespace": NAMESPACE,
                     "labels": {DASHBOARD_LABEL: "1", "app.kubernetes.io/part-of": "llm-hosting"}},
        "data": {"vllm.json": json.dumps(dashboard(gateway), indent=1)},
    }


def _system(selector: Mapping[str, str]) -> dict[str, Any]:
    return {"nodeSelector": dict(selector)}


def stack_values(mode: Monitoring, system_node_selector: Mapping[str, str],
                 remote_write_url: Any = None, region: str | None = None,
                 alerts_topic_arn: Any = None) -> dict[str, Any]:
    """kube-prometheus-stack values: operator + Prometheus (+ Alertmanager, Grafana in-cluster).

    EKS runs the control plane, so its scrape jobs (etcd, scheduler, controller manager, proxy
    metrics on localhost) are off. Every ServiceMonitor/PrometheusRule in the cluster is picked
    up, not only the chart's own (`...NilUsesHelmValues: false`). Grafana gets a random admin
    password in a Secret (the chart's default is a published constant).
    """
    amp = mode == "amp"
    prometheus_spec: dict[str, Any] = {
        **_system(system_node_selector),
        "scrapeInterval": SCRAPE_INTERVAL,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                      "limits": {"memory": "4Gi"}},
    }
    if amp:
        prometheus_spec["remoteWrite"] = [{"url": remote_write_url, "sigv4": {"region": region}}]
    else:
        prometheus_spec["retention"] = "15d"
    return {
        "fullnameOverride": STACK_RELEASE,
        "crds": {"enabled": True},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheusOperator": _system(system_node_selector),
        "kube-state-metrics": _system(system_node_selector),
        # node-exporter runs everywhere, GPU nodes included.
        "prometheus-node-exporter": {"tolerations": [dict(GPU_TOLERATION)]},
        "prometheus": {
            "agentMode": amp,
            "serviceAccount": {"create": True, "name": PROMETHEUS_SERVICE_ACCOUNT},
            "prometheusSpec": prometheus_spec,
        },
        "alertmanager": {
            "enabled": not amp,
            "alertmanagerSpec": _system(system_node_selector),
            "serviceAccount": {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT},
            **({"config": in_cluster_alertmanager_config(alerts_topic_arn, str(region))}
               if not amp and alerts_topic_arn is not None else {}),
        },
        "grafana": {
            "enabled": not amp,
            "adminPassword": "",
            **_system(system_node_selector),
            "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL,
                                       "labelValue": "1", "searchNamespace": "ALL"}},
        },
    }


def dcgm_values(gpu_node_selector: Mapping[str, str]) -> dict[str, Any]:
    """DCGM exporter on GPU nodes only; our ServiceMonitor (not the chart's) scrapes it."""
    return {
        "nodeSelector": dict(gpu_node_selector),
        "tolerations": [dict(GPU_TOLERATION)],
        "serviceMonitor": {"enabled": False},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"memory": "512Mi"}},
    }


ALERT_SUBJECT = "llm-hosting {{ .Status }}: {{ .CommonLabels.alertname }}"
"""SNS subjects are capped at 100 characters; Alertmanager's default subject lists every label
and is truncated or rejected, so AMP's guide recommends a short template.
https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-receiver-config.html"""


def _sns_receiver(topic_arn: Any, region: str) -> dict[str, Any]:
    """One SNS receiver, signed with SigV4 in `region` by the default credential chain (AMP's
    own identity, or Alertmanager's Pod Identity). Alertmanager v0.31 `SNSConfig` keys:
    prometheus/alertmanager config/notifiers.go."""
    return {"name": "sns", "sns_configs": [{
        "topic_arn": topic_arn, "sigv4": {"region": region}, "subject": ALERT_SUBJECT,
    }]}


_ROUTE = {"receiver": "sns", "group_by": ["alertname", "namespace", "model_name"],
          "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def alertmanager_definition(topic_arn: str, region: str) -> str:
    """AMP alert manager definition: every alert to one SNS topic, grouped per model.

    AMP's alert manager only supports SNS receivers, each with a `sigv4.region`; the routing
    config is a YAML string under `alertmanager_config`.
    https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-config.html
    """
    config = {"route": dict(_ROUTE), "receivers": [_sns_receiver(topic_arn, region)]}
    inner = yaml.safe_dump(config, sort_keys=False, width=1000)
    return "alertmanager_config: |\n" + textwrap.indent(inner, "  ")


def in_cluster_alertmanager_config(topic_arn: Any, region: str) -> dict[str, Any]:
    """`alertmanager.config` chart values: every alert to the SNS topic, grouped per model, and
    the chart's always-firing `Watchdog` (a dead man's switch for an external monitor) to `null`
    as the chart routes it. Helm deep-merges maps with the chart defaults, so `global`,
    `inhibit_rules` and `templates` stay the chart's; the lists set here replace theirs.
    kube-prometheus-stack 82.6.0 values.yaml `alertmanager.config`."""
    return {
        "route": {**_ROUTE, "routes": [
            {"receiver": "null", "matchers": ['alertname = "Watchdog"']}]},
        "receivers": [{"name": "null"}, _sns_receiver(topic_arn, region)],
    }


def alerts_topic_policy(*, topic_arn: str, workspace_arn: str | None, account: str
                        ) -> dict[str, Any]:
    """Over TLS only; in `amp` mode this stack's AMP workspace may publish (a service principal
    needs the topic policy). In-cluster Alertmanager is an IAM role of this account: its own
    policy grants the publish, no topic-policy statement needed.
    https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-receiver-AMPpermission.html"""
    statements: list[dict[str, Any]] = []
    if workspace_arn is not None:
        statements.append(
            {"Sid": "AmpWorkspacePublishes", "Effect": "Allow",
             "Principal": {"Service": "aps.amazonaws.com"},
             "Action": ["sns:Publish", "sns:GetTopicAttributes"], "Resource": topic_arn,
             "Condition": {"ArnEquals": {"aws:SourceArn": workspace_arn},
                           "StringEquals": {"aws:SourceAccount": account}}})
    statements.append(
        {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    return {"Version": "2012-10-17", "Statement": statements}


def alerts_key_policy(*, account: str, partition: str, amp: bool = True) -> dict[str, Any]:
    """Key of the encrypted alerts topic: the account administers it (and delegates to IAM, so
    the in-cluster Alertmanager's role may use it through its own policy); with `amp`, AMP may
    generate data keys for what it publishes, on behalf of this account only. An AWS managed
    `alias/aws/sns` key cannot grant a service principal, hence a customer key.
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"""
    statements: list[dict[str, Any]] = [
        {"Sid": "AccountAdministration", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"}]
    if amp:
        statements.append(
            {"Sid": "AmpPublishesEncrypted", "Effect": "Allow",
             "Principal": {"Service": "aps.amazonaws.com"},
             "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceAccount": account}}})
    return {"Version": "2012-10-17", "Statement": statements}


def alerts_publish_policy(*, topic_arn: str, key_arn: str, region: str) -> dict[str, Any]:
    """In-cluster Alertmanager's role: publish to the alerts topic, and the two key operations
    SNS performs for a publisher to an encrypted topic, only through SNS in this region.
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#sns-what-permissions-for-sse"""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "PublishAlerts", "Effect": "Allow", "Action": ["sns:Publish"],
         "Resource": [topic_arn]},
        {"Sid": "EncryptForTheTopic", "Effect": "Allow",
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": [key_arn],
         "Condition": {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}}},
    ]}


def remote_write_policy(workspace_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["aps:RemoteWrite"], "Resource": [workspace_arn]}]}


def in_cluster_prometheus_url() -> str:
    return f"http://{STACK_RELEASE}-prometheus.{NAMESPACE}.svc:{PROMETHEUS_PORT}"


# --------------------------------------------------------------------------------------------
# component


@dataclass(frozen=True)
class ChartPin:
    """A pinned Helm chart (mirrors the facts module's chart pins)."""

    chart: str
    repo: str
    version: str


@dataclass(frozen=True)
class ObservabilityArgs:
    """`models` get ServiceMonitors; `system_node_selector` places Prometheus and Grafana on the
    system nodes; `gpu_node_selector` places the DCGM exporter on GPU nodes."""

    naming: Naming
    mode: Monitoring
    cluster_name: pulumi.Input[str]
    region: str
    models: Sequence[Model]
    stack_chart: ChartPin
    dcgm_chart: ChartPin
    system_node_selector: Mapping[str, str]
    gpu_node_selector: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    release_depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What the Helm releases wait for besides the namespace: the system node group."""
    gateway: bool = False
    """The stack's gateway runs: its alerts and dashboard panels join the vLLM ones."""


class Observability(pulumi.ComponentResource):
    """Prometheus (in-cluster or AMP), DCGM exporter, ServiceMonitors, alerts, dashboard."""

    metrics: MetricsSource
    workspace_arn: pulumi.Output[str] | None
    alerts_topic_arn: pulumi.Output[str]
    """The SNS topic every alert is published to (by AMP's alert manager or the in-cluster
    Alertmanager); subscribe on-call to it."""

    def __init__(self, name: str, args: ObservabilityArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:eks:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        amp = args.mode == "amp"
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "llm-hosting"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])

        remote_write_url: Any = None
        self.workspace_arn = None
        writer: aws.eks.PodIdentityAssociation | None = None
        if amp:
            # Metric history is the one stateful thing here: protected in prod. Its key is set
            # at creation in every environment: AMP cannot add or change a workspace's key later
            # (CreateWorkspace only), so adding one replaces the workspace and its metrics.
            workspace = aws.amp.Workspace(
                f"{name}-workspace", alias=args.naming.physical("metrics"),
                kms_key_arn=self._workspace_key(name, args).arn,
                tags=args.naming.tags(), opts=pulumi.ResourceOptions(
                    parent=self, protect=args.naming.protect))
            self.workspace_arn = workspace.arn
            endpoint = workspace.prometheus_endpoint.apply(lambda e: e.rstrip("/"))
            remote_write_url = endpoint.apply(lambda e: f"{e}/api/v1/remote_write")
            self.metrics = MetricsSource(server_address=endpoint, aws_region=args.region,
                                         trigger_authentication="aws-amp")
            writer = self._remote_write_identity(name, args, workspace.arn)
            aws.amp.RuleGroupNamespace(
                f"{name}-rules", workspace_id=workspace.id, name="llm-hosting-vllm",
                data=amp_rules_yaml(args.gateway), tags=args.naming.tags(), opts=child)
            self.alerts_topic_arn = self._alert_routing(name, args, workspace)
        else:
            self.metrics = MetricsSource(server_address=in_cluster_prometheus_url())
            self.alerts_topic_arn, writer = self._in_cluster_alert_routing(name, args)

        pin = args.stack_chart
        stack = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name=STACK_RELEASE, namespace=NAMESPACE, chart=pin.chart, version=pin.version,
            repository_opts={"repo": pin.repo},
            values=stack_values(args.mode, args.system_node_selector, remote_write_url,
                                args.region, None if amp else self.alerts_topic_arn),
            atomic=True, cleanup_on_fail=True, timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                ns, *([writer] if writer else []), *args.release_depends_on]))
        self.stack = stack
        crd_ready = pulumi.ResourceOptions(parent=self, depends_on=[ns, stack])
        dpin = args.dcgm_chart
        k8s.helm.v3.Release(
            f"{name}-dcgm-exporter",
            name=DCGM_RELEASE, namespace=NAMESPACE, chart=dpin.chart, version=dpin.version,
            repository_opts={"repo": dpin.repo}, values=dcgm_values(args.gpu_node_selector),
            atomic=True, cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.release_depends_on]))

        for obj in (dcgm_service_monitor(), *(service_monitor(m) for m in args.models)):
            k8s.apiextensions.CustomResource(
                f"{name}-monitor-{obj['metadata']['name']}", api_version=obj["apiVersion"],
                kind=obj["kind"], metadata=obj["metadata"], spec=obj["spec"], opts=crd_ready)
        if not amp:
            rule = prometheus_rule(args.gateway)
            k8s.apiextensions.CustomResource(
                f"{name}-alerts", api_version=rule["apiVersion"], kind=rule["kind"],
                metadata=rule["metadata"], spec=rule["spec"], opts=crd_ready)
        cm = dashboard_config_map(args.gateway)
        k8s.core.v1.ConfigMap(f"{name}-dashboard", metadata=cm["metadata"], data=cm["data"],
                              opts=in_ns)
        self.register_outputs({"prometheusUrl": self.metrics.server_address,
                               "alertsTopicArn": self.alerts_topic_arn})

    def _workspace_key(self, name: str, args: ObservabilityArgs) -> aws.kms.Key:
        """Usable by this account's principals through AMP only, so the Prometheus writer and
        KEDA's querier need no KMS permission of their own.
        https://docs.aws.amazon.com/prometheus/latest/userguide/encryption-at-rest-Amazon-Service-Prometheus.html"""
        return service_only_key(
            f"{name}-workspace-key", description="llm-hosting: AMP workspace metrics",
            service="aps", region=args.region, tags=args.naming.tags(),
            opts=pulumi.ResourceOptions(parent=self, protect=args.naming.protect))

    def _alerts_topic(self, name: str, args: ObservabilityArgs,
                      workspace_arn: pulumi.Output[str] | None
                      ) -> tuple[aws.kms.Key, aws.sns.Topic, aws.sns.TopicPolicy]:
        """The KMS-encrypted alerts topic (same names in both modes), TLS only; AMP's workspace
        may publish to it in `amp` mode."""
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        tags = args.naming.tags()
        amp = workspace_arn is not None
        key = aws.kms.Key(
            f"{name}-alerts-key",
            description="llm-hosting: AMP alerts SNS topic" if amp
            else "llm-hosting: Alertmanager alerts SNS topic",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=pulumi.Output.all(account, partition).apply(
                lambda ap: json.dumps(alerts_key_policy(account=ap[0], partition=ap[1],
                                                        amp=amp))),
            tags=tags, opts=pulumi.ResourceOptions(parent=self, protect=args.naming.protect))
        topic = aws.sns.Topic(
            f"{name}-alerts", name=args.naming.physical("alerts"), kms_master_key_id=key.arn,
            tags=tags, opts=child)
        policy = aws.sns.TopicPolicy(
            f"{name}-alerts-policy", arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, workspace_arn, account).apply(
                lambda v: json.dumps(alerts_topic_policy(
                    topic_arn=v[0], workspace_arn=v[1], account=v[2]))),
            opts=child)
        return key, topic, policy

    def _in_cluster_alert_routing(self, name: str, args: ObservabilityArgs
                                  ) -> tuple[pulumi.Output[str], aws.eks.PodIdentityAssociation]:
        """The chart's Alertmanager routes every alert to a `null` receiver. Route them to the
        encrypted topic instead, published with Alertmanager's own Pod Identity (v0.31's SNS
        notifier loads the AWS SDK's default credential chain, which reads the EKS Pod Identity
        agent's credentials). The association exists before the chart, so the pod starts with
        credentials."""
        key, topic, _ = self._alerts_topic(name, args, None)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        _, association = pod_identity_role(
            role_name=f"{name}-alertmanager-role",
            policy_name=f"{name}-alertmanager-publish",
            association_name=f"{name}-alertmanager-identity",
            description="Alertmanager: publish alerts to the encrypted SNS topic",
            account=account.account_id,
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=ALERTMANAGER_SERVICE_ACCOUNT,
            policy=pulumi.Output.all(topic.arn, key.arn).apply(
                lambda tk: json.dumps(alerts_publish_policy(
                    topic_arn=tk[0], key_arn=tk[1], region=args.region))),
            tags=args.naming.tags(),
            opts=pulumi.ResourceOptions(parent=self),
            depends_on=args.depends_on,
        )
        return topic.arn, association

    def _alert_routing(self, name: str, args: ObservabilityArgs,
                       workspace: aws.amp.Workspace) -> pulumi.Output[str]:
        """AMP evaluates the rules; without an alert manager definition the firing alerts go
        nowhere. Route them to a KMS-encrypted SNS topic only this workspace may publish to."""
        _, topic, policy = self._alerts_topic(name, args, workspace.arn)
        aws.amp.AlertManagerDefinition(
            f"{name}-alertmanager", workspace_id=workspace.id,
            definition=topic.arn.apply(lambda arn: alertmanager_definition(arn, args.region)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        return topic.arn

    def _remote_write_identity(self, name: str, args: ObservabilityArgs,
                               workspace_arn: pulumi.Output[str]
                               ) -> aws.eks.PodIdentityAssociation:
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        _, association = pod_identity_role(
            role_name=f"{name}-remote-write-role",
            policy_name=f"{name}-remote-write",
            association_name=f"{name}-prometheus-identity",
            description="Prometheus agent: remote-write to the AMP workspace",
            account=account.account_id,
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=PROMETHEUS_SERVICE_ACCOUNT,
            policy=workspace_arn.apply(lambda a: json.dumps(remote_write_policy(a))),
            tags=args.naming.tags(),
            opts=child,
            depends_on=args.depends_on,
        )
        return association
