"""Dated on-demand prices of the non-GPU pieces the stack adds (us-east-1), for `plan`.

GPU instance prices live with the instances (`components/facts/gpus.py`); these are the
gateway's: Fargate compute and an Application Load Balancer's hourly charge. LCU and data
charges depend on traffic and are left out (`plan` says so).
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-11-30"
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class FargatePrice:
    """Per vCPU-hour and per GB-hour of a task, by CPU architecture (Linux)."""

    vcpu_hour_usd: float
    gb_hour_usd: float


# https://aws.amazon.com/fargate/pricing/ (US East (N. Virginia), Linux; unchanged since the
# 2019 price cut, and as quoted in the June 2026 summaries at
# https://www.factualminds.com/blog/amazon-fargate-ecs-task-pricing-2026/ and
# https://www.vantage.sh/blog/fargate-pricing).
FARGATE: dict[str, FargatePrice] = {
    "X86_64": FargatePrice(vcpu_hour_usd=0.04048, gb_hour_usd=0.004445),
    "ARM64": FargatePrice(vcpu_hour_usd=0.03238, gb_hour_usd=0.00356),
}

ALB_HOUR_USD = 0.0225
"""Application Load Balancer hour, US East (N. Virginia); LCUs ($0.008/LCU-hour) come on top.
https://aws.amazon.com/elasticloadbalancing/pricing/"""


def fargate_hourly_usd(vcpu: float, memory_gib: float, architecture: str) -> float:
    price = FARGATE[architecture]
    return vcpu * price.vcpu_hour_usd + memory_gib * price.gb_hour_usd
