"""The serving layer (part 2) on top of `EksPlatform`: monitoring, autoscaler, ingress, models.

`add_serving_layer` registers its components as direct children of the platform, on the
platform's Kubernetes provider, after the GPU capacity exists (Karpenter NodePools and the NVIDIA
device plugin: `ready`) and after the Pod Identity agent (every workload role here is Pod
Identity). It returns the stack outputs the serving layer owns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import StackConfig
from components.eks.autoscaling import AMP_TRIGGER_AUTH, Keda, KedaArgs
from components.eks.gateway import eks_gateway
from components.eks.labels import SYSTEM_NODE_LABELS, gpu_node_selector
from components.eks.load_balancer import LoadBalancerController, LoadBalancerControllerArgs
from components.eks.monitoring import (
    ChartPin,
    Observability,
    ObservabilityArgs,
)
from components.eks.nodepool import gpu_requirements
from components.eks.serving import (
    MetricsSource,
    ModelServing,
    ModelServingArgs,
    cluster_url,
    port_forward_command,
)
from components.facts import charts
from components.facts.gpus import GPU_INSTANCES
from components.gateway.monitoring import waiting_query
from components.tags import Naming

GPU_NODES = {"llm-hosting/node-role": "gpu"}
"""Every GPU node, whichever model it serves (DaemonSets such as the DCGM exporter)."""


@dataclass(frozen=True)
class ServingLayerArgs:
    config: StackConfig
    naming: Naming
    cluster_name: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    provider: k8s.Provider
    ready: Sequence[pulumi.Resource]
    """Karpenter NodePools + device plugin: GPU pods are not created before capacity can be."""
    pod_identity_agent: pulumi.Resource
    system_nodes: Sequence[pulumi.Resource] = ()
    """The system node group and CoreDNS: every Helm release here schedules onto them."""
    load_balancer_subnet_ids: pulumi.Input[list[str]] | None = None
    load_balancer_cidrs: pulumi.Input[list[str]] | None = None
    """The network's dedicated load-balancer subnets and their CIDRs (internal ALB)."""


def _pin(chart: str, repo: str, version: str) -> ChartPin:
    return ChartPin(chart=chart, repo=repo, version=version)


def add_serving_layer(name: str, parent: pulumi.Resource, args: ServingLayerArgs
                      ) -> dict[str, Any]:
    """Register monitoring, KEDA, the optional ALB controller and one `ModelServing` per model."""
    config, cfg = args.config, args.config.eks
    opts = pulumi.ResourceOptions(parent=parent, providers={"kubernetes": args.provider})
    system = dict(SYSTEM_NODE_LABELS)

    observability = Observability(f"{name}-observability", ObservabilityArgs(
        naming=args.naming, mode=cfg.monitoring, cluster_name=args.cluster_name,
        region=config.region, models=config.models,
        stack_chart=_pin(charts.KUBE_PROMETHEUS_STACK_CHART, charts.KUBE_PROMETHEUS_STACK_REPO,
                         charts.KUBE_PROMETHEUS_STACK_VERSION),
        dcgm_chart=_pin(charts.DCGM_EXPORTER_CHART, charts.DCGM_EXPORTER_REPO,
                        charts.DCGM_EXPORTER_VERSION),
        system_node_selector=system, gpu_node_selector=GPU_NODES,
        depends_on=[args.pod_identity_agent], release_depends_on=args.system_nodes,
        gateway=config.gateway_enabled,
    ), opts)
    keda = Keda(f"{name}-keda", KedaArgs(
        naming=args.naming,
        chart=_pin(charts.KEDA_CHART, charts.KEDA_REPO, charts.KEDA_VERSION),
        cluster_name=args.cluster_name, system_node_selector=system,
        amp_workspace_arn=observability.workspace_arn,
        depends_on=[args.pod_identity_agent], release_depends_on=args.system_nodes,
    ), opts)
    deps: list[pulumi.Resource] = [*args.ready, keda.release, args.pod_identity_agent]
    if cfg.ingress == "internal-alb":
        alb = LoadBalancerController(f"{name}-alb-controller", LoadBalancerControllerArgs(
            naming=args.naming,
            chart=_pin(charts.AWS_LOAD_BALANCER_CONTROLLER_CHART,
                       charts.AWS_LOAD_BALANCER_CONTROLLER_REPO,
                       charts.AWS_LOAD_BALANCER_CONTROLLER_VERSION),
            cluster_name=args.cluster_name, region=config.region, vpc_id=args.vpc_id,
            system_node_selector=system, depends_on=[args.pod_identity_agent],
            release_depends_on=args.system_nodes,
        ), opts)
        deps.append(alb.release)

    metrics: MetricsSource = observability.metrics
    if metrics.aws_region is not None:
        metrics = MetricsSource(metrics.server_address, metrics.aws_region, AMP_TRIGGER_AUTH)
    # One ipBlock per AZ: the count is config (never inside an apply), the CIDRs are outputs.
    cidrs = args.load_balancer_cidrs
    lb_cidrs = [pulumi.Output.from_input(cidrs).apply(lambda c, i=i: c[i])
                for i in range(config.network.availability_zones)] if cidrs is not None else []
    endpoints: dict[str, str] = {}
    commands: dict[str, str] = {}
    for model in config.models:
        req = gpu_requirements(model, cfg.instance_price_ratio)
        hosts = tuple(i for i in GPU_INSTANCES.values() if req.admits(i))
        ModelServing(f"{name}-serving-{model.name}", ModelServingArgs(
            model=model, naming=args.naming, cluster_name=args.cluster_name,
            region=config.region, node_selector=gpu_node_selector(model.name),
            metrics=metrics, hosts=hosts, hf_token=config.hf_token, ingress=cfg.ingress,
            certificate_arn=cfg.certificate_arn, vpc_cidr=args.vpc_cidr,
            load_balancer_subnet_ids=args.load_balancer_subnet_ids,
            load_balancer_cidrs=lb_cidrs, depends_on=deps,
            # minReplicas 0 with the gateway on: its waiting requests wake the model.
            gateway_waiting_query=(waiting_query(model.name) if config.gateway_enabled
                                   and model.spec.min_replicas == 0 else None),
        ), opts)
        endpoints[model.name] = cluster_url(model)
        commands[model.name] = port_forward_command(model)
    exports: dict[str, Any] = {"endpoints": endpoints, "invokeCommands": commands,
                               "monitoring": cfg.monitoring,
                               "alertsTopicArn": observability.alerts_topic_arn}
    if config.gateway_enabled:
        gateway, key = eks_gateway(
            f"{name}-gateway", config, args.naming, cluster_name=args.cluster_name,
            vpc_cidr=args.vpc_cidr, node_selector=system,
            depends_on=[args.pod_identity_agent, observability.stack,
                        *([alb.release] if cfg.ingress == "internal-alb" else [])],
            opts=opts)
        exports["gatewayUrl"] = gateway.url
        exports["gatewayKeySecretArn"] = key.arn
    return exports
