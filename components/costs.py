"""What a stack costs per hour besides its GPU replicas, read from the recorded resource graph.

The GPU cost per model comes from sizing (`components.sizing.estimate_cost`); this adds what
runs whether or not a model serves anything: NAT gateways and their public IPv4 addresses,
interface VPC endpoints (billed per AZ), EKS control planes and non-GPU node groups, load
balancers and KMS keys. Counting them in the graph the program registered, rather than
re-deriving them from config, keeps `plan` honest when a platform adds or drops one. Prices are
facts (`components.facts.fixed_costs`), with their sources and date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.facts.fixed_costs import (
    APPLICATION_LOAD_BALANCER,
    EKS_CLUSTER,
    FARGATE_SOURCE,
    FARGATE_VCPU,
    GENERAL_PURPOSE_USD_PER_HOUR,
    INTERFACE_ENDPOINT,
    KMS_KEY,
    NAT_GATEWAY,
    PUBLIC_IPV4,
    FixedPrice,
    fargate_task_usd_per_hour,
)
from components.facts.gpus import get_gpu_instance

if TYPE_CHECKING:
    from components.offline import Graph

VPC_TYPE = "awsx:ec2:Vpc"
INGRESS_TYPE = "kubernetes:networking.k8s.io/v1:Ingress"


@dataclass(frozen=True)
class FixedCost:
    """One line of the bill that does not depend on replicas."""

    item: str
    count: int
    usd_per_unit_hour: float | None
    """None when the price is not in the facts (shown, not guessed)."""
    per: str
    source: str

    @property
    def usd_per_hour(self) -> float | None:
        return None if self.usd_per_unit_hour is None else self.count * self.usd_per_unit_hour


def _line(item: str, count: int, price: FixedPrice) -> FixedCost:
    return FixedCost(item, count, price.usd_per_hour, price.per, price.source)


def _number(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else default


def fixed_costs(graph: Graph) -> list[FixedCost]:
    """Every fixed hourly charge of the resources in `graph`, in a stable order."""
    lines: list[FixedCost] = []
    azs = 0
    for vpc in graph.of_type(VPC_TYPE):
        azs = _number(vpc.inputs.get("numberOfAvailabilityZones"), 2)
        strategy = (vpc.inputs.get("natGateways") or {}).get("strategy", "OnePerAz")
        nats = {"None": 0, "Single": 1}.get(strategy, azs)
        if nats:
            lines.append(_line(f"NAT gateways ({strategy}, {azs} AZs)", nats, NAT_GATEWAY))
            lines.append(_line("public IPv4 of the NAT gateways", nats, PUBLIC_IPV4))
    endpoints = [r for r in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if r.inputs.get("vpcEndpointType") == "Interface"]
    if endpoints:
        per_az = max(azs, 1)
        lines.append(_line(f"interface VPC endpoints ({len(endpoints)} x {per_az} AZs)",
                           len(endpoints) * per_az, INTERFACE_ENDPOINT))
    clusters = graph.of_type("eks:index:Cluster")
    if clusters:
        lines.append(_line("EKS control plane", len(clusters), EKS_CLUSTER))
    for group in graph.of_type("aws:eks/nodeGroup:NodeGroup"):
        types = group.inputs.get("instanceTypes") or []
        first = types[0] if types and isinstance(types[0], str) else "?"
        if get_gpu_instance(first) is not None:
            continue  # GPU floors are in the models' cost
        nodes = _number((group.inputs.get("scalingConfig") or {}).get("desiredSize"))
        lines.append(FixedCost(
            f"EKS system nodes ({first})", nodes, GENERAL_PURPOSE_USD_PER_HOUR.get(first),
            "instance-hour, EC2 on-demand", "https://aws.amazon.com/ec2/pricing/on-demand/"))
    balancers = [r for r in graph.of_type("aws:lb/loadBalancer:LoadBalancer")
                 if r.inputs.get("loadBalancerType", "application") == "application"]
    balancers += graph.of_type(INGRESS_TYPE)  # the AWS Load Balancer Controller: one ALB each
    if balancers:
        lines.append(_line("application load balancers", len(balancers),
                           APPLICATION_LOAD_BALANCER))
    keys = graph.of_type("aws:kms/key:Key")
    if keys:
        lines.append(_line("KMS keys", len(keys), KMS_KEY))
    lines += _fargate(graph)
    return lines


def _fargate(graph: Graph) -> list[FixedCost]:
    """Fargate services (the gateway's) at their desired count, priced from their task size."""
    tasks = {t.outputs.get("arn"): t
             for t in graph.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    lines = []
    for service in graph.of_type("aws:ecs/service:Service"):
        task = tasks.get(service.inputs.get("taskDefinition"))
        if service.inputs.get("launchType") != "FARGATE" or task is None:
            continue
        arch = (task.inputs.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")
        vcpu = _number(float(task.inputs.get("cpu", 0))) / 1024
        gib = _number(float(task.inputs.get("memory", 0))) / 1024
        lines.append(FixedCost(
            f"Fargate tasks ({task.inputs.get('family')}: {vcpu:g} vCPU / {gib:g} GiB {arch})",
            _number(service.inputs.get("desiredCount")),
            fargate_task_usd_per_hour(vcpu, gib, arch) if arch in FARGATE_VCPU else None,
            "task-hour (vCPU-hours + GB-hours)", FARGATE_SOURCE))
    return lines
