"""Is each instance type offered in the AZs the stack's VPC spans?

EC2 platforms: `ec2:DescribeInstanceTypeOfferings` by AZ for every sized GPU type (and the EKS
system node types). SageMaker publishes no offerings API: a type it hosts in a region has an
"ml.<type> for endpoint usage" quota there, so its row comes from the quota family
(`quotas.sagemaker_rows`).

"Enough" AZs: a model that keeps two or more replicas running needs its type in two AZs, or an
AZ outage (or an insufficient-capacity event in one AZ) takes all of them; one replica needs
one. A type missing from some of the AZs is a warning: Karpenter and the Auto Scaling groups
launch only where it is offered, so capacity concentrates in the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from components.preflight.checks import Check, Context, guarded

DESCRIBE = "ec2:DescribeInstanceTypeOfferings"


@dataclass(frozen=True)
class Placement:
    """Who needs which instance types (any of them will do), and how many stay running."""

    owner: str
    types: tuple[str, ...]
    kept_running: int


def placements(ctx: Context) -> list[Placement]:
    config = ctx.config
    if config.platform == "sagemaker":
        return []
    out = [Placement(m.name, (m.instance.name,), m.spec.min_replicas) for m in config.models]
    if config.platform == "eks":
        out.append(Placement("system nodes", tuple(config.eks.system_node_instance_types),
                             config.eks.system_node_count))
    return out


def offered_by_az(ctx: Context, types: Iterable[str]) -> dict[str, set[str]]:
    """instance type -> AZs (of the stack's) where EC2 offers it."""
    paginator = ctx.clients("ec2").get_paginator("describe_instance_type_offerings")
    found: dict[str, set[str]] = {}
    for page in paginator.paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": sorted(set(types))},
                 {"Name": "location", "Values": list(ctx.azs)}],
    ):
        for offer in page["InstanceTypeOfferings"]:
            found.setdefault(offer["InstanceType"], set()).add(offer["Location"])
    return found


def _row(p: Placement, azs: Sequence[str], offered: dict[str, set[str]], region: str) -> Check:
    name = f"offering {p.owner}"
    types = " or ".join(p.types)
    covered = [az for az in azs if any(az in offered.get(t, set()) for t in p.types)]
    missing = [az for az in azs if az not in covered]
    needed = min(2, len(azs)) if p.kept_running >= 2 else 1
    fix = (f"choose an instance type offered there (`aws ec2 describe-instance-type-offerings "
           f"--region {region} --location-type availability-zone --filters "
           f"Name=instance-type,Values={p.types[0]}`), or another region")
    if not covered:
        return Check(name, "fail",
                     f"{types} is not offered in any of the stack's AZs ({', '.join(azs)})", fix)
    if len(covered) < needed:
        return Check(name, "fail",
                     f"{types} is offered only in {', '.join(covered)} of the stack's AZs; "
                     f"{p.kept_running} replicas kept running need {needed} AZs to survive "
                     "losing one", fix)
    if missing:
        return Check(name, "warn",
                     f"{types} is not offered in {', '.join(missing)} (offered in "
                     f"{', '.join(covered)} of the stack's {len(azs)} AZs); capacity launches "
                     "only there", "nothing needed if that concentration is acceptable; else "
                     + fix)
    return Check(name, "pass", f"{types} is offered in all {len(azs)} AZs ({', '.join(azs)})")


def check(ctx: Context) -> list[Check]:
    wanted = placements(ctx)
    if not wanted or not ctx.azs:
        return []

    def body() -> list[Check]:
        offered = offered_by_az(ctx, (t for p in wanted for t in p.types))
        return [_row(p, ctx.azs, offered, ctx.config.region) for p in wanted]

    return guarded("offerings", DESCRIBE, DESCRIBE, body)
