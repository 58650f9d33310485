"""Hourly prices of what a stack runs besides its GPUs: the bill a stack runs up while idle.

`plan` prints these beside the GPU costs, so the total it shows is what an idle stack costs,
not only its GPUs. On-demand us-east-1 list prices in USD, as published on each service's
pricing page (linked per entry); usage-based charges (GB through a NAT gateway or an endpoint,
load balancer capacity units, CloudWatch, AMP) are named in each entry's `per` but not added:
they depend on traffic, not on the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: ISO date these prices were compiled from the pricing pages below. Bump it when you change one.
FIXED_PRICES_AS_OF = "2026-11-30"
HOURS_PER_MONTH = 730  # the AWS pricing pages' month


@dataclass(frozen=True)
class FixedPrice:
    """One hourly price: what it is charged per, and where it is published."""

    usd_per_hour: float
    per: str
    source: str


NAT_GATEWAY = FixedPrice(
    0.045, "NAT gateway-hour (+ $0.045 per GB processed)", "https://aws.amazon.com/vpc/pricing/")
PUBLIC_IPV4 = FixedPrice(
    0.005, "public IPv4 address-hour (each NAT gateway's Elastic IP)",
    "https://aws.amazon.com/vpc/pricing/")
INTERFACE_ENDPOINT = FixedPrice(
    0.01, "interface endpoint-hour per AZ (+ $0.01 per GB processed)",
    "https://aws.amazon.com/privatelink/pricing/")
EKS_CLUSTER = FixedPrice(
    0.10, "EKS cluster-hour in standard support", "https://aws.amazon.com/eks/pricing/")
APPLICATION_LOAD_BALANCER = FixedPrice(
    0.0225, "ALB-hour (+ $0.008 per LCU-hour of traffic)",
    "https://aws.amazon.com/elasticloadbalancing/pricing/")
KMS_KEY = FixedPrice(
    1.0 / HOURS_PER_MONTH, "customer managed key-month ($1), per hour",
    "https://aws.amazon.com/kms/pricing/")

FARGATE_SOURCE = "https://aws.amazon.com/fargate/pricing/"
FARGATE_VCPU: Mapping[str, FixedPrice] = MappingProxyType({
    # Linux, per vCPU-hour (the gateway's tasks): unchanged since the 2019 price cut, as quoted
    # in June 2026 summaries (https://www.factualminds.com/blog/amazon-fargate-ecs-task-pricing-2026/).
    "X86_64": FixedPrice(0.04048, "Fargate vCPU-hour, Linux/x86", FARGATE_SOURCE),
    "ARM64": FixedPrice(0.03238, "Fargate vCPU-hour, Linux/ARM", FARGATE_SOURCE),
})
FARGATE_GB: Mapping[str, FixedPrice] = MappingProxyType({
    "X86_64": FixedPrice(0.004445, "Fargate GB-hour, Linux/x86", FARGATE_SOURCE),
    "ARM64": FixedPrice(0.00356, "Fargate GB-hour, Linux/ARM", FARGATE_SOURCE),
})


def fargate_task_usd_per_hour(vcpu: float, memory_gib: float, architecture: str) -> float:
    """One Fargate task's hour: its vCPUs and its GB of memory (20 GB of storage included)."""
    return (vcpu * FARGATE_VCPU[architecture].usd_per_hour
            + memory_gib * FARGATE_GB[architecture].usd_per_hour)


GENERAL_PURPOSE_USD_PER_HOUR: Mapping[str, float] = MappingProxyType({
    # EC2 on-demand Linux, shared tenancy, us-east-1: https://aws.amazon.com/ec2/pricing/on-demand/
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384,
    "m6a.large": 0.0864, "m6a.xlarge": 0.1728, "m6a.2xlarge": 0.3456,
    "m7i.large": 0.1008, "m7i.xlarge": 0.2016, "m7i.2xlarge": 0.4032,
    "m7a.large": 0.11592, "m7a.xlarge": 0.23184, "m7a.2xlarge": 0.46368,
    "c6i.xlarge": 0.17, "c7i.xlarge": 0.1785, "r6i.xlarge": 0.252, "r7i.xlarge": 0.2646,
})
"""Non-GPU instance types the EKS system node group is commonly given (`systemNodeInstanceTypes`);
a type not listed here is shown without a price rather than guessed."""
