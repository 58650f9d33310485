"""Is each instance type offered in the AZs the stack's VPC spans?

EC2 platforms: `ec2:DescribeInstanceTypeOfferings` by AZ for every sized GPU type (and the EKS
system node types). SageMaker publishes no offerings API: a type it hosts in a region has an
"ml.<type> for endpoint usage" quota there, so its row comes from the quota family
(`quotas.sagemaker_rows`).

Which types: what each platform says it launches (`CAPACITY_DEMANDS`): a model's sized type, a
shared ECS host's type, the EKS system node types, Spot overrides; any of an owner's types will
do. "Enough" AZs: capacity that keeps two or more instances running needs its types in two AZs,
or an AZ outage (or an insufficient-capacity event in one AZ) takes all of them; one instance
needs one. A type missing from some of the AZs is a warning: Karpenter and the Auto Scaling
groups launch only where it is offered, so capacity concentrates in the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from components.platforms import CAPACITY_DEMANDS
from components.preflight.checks import Check, Context, guarded

DESCRIBE = "ec2:DescribeInstanceTypeOfferings"


@dataclass(frozen=True)
class Placement:
    """Who needs an EC2 type offered (any of `types` will do), and how many instances of it
    stay running."""

    owner: str
    types: tuple[str, ...]
    kept_running: int


def placements(ctx: Context) -> list[Placement]:
    """One per owner of EC2 capacity (a model, a shared ECS host, the EKS system nodes) and
    purchase option, from what the platform says it launches. Capacity that never runs
    (`steady` and `minimum` 0: an EKS Spot model's on-demand fallback) and SageMaker's `ml.`
    types (not EC2 offerings) are left out; an on-demand group must have its own type, while a
    Spot group may launch any of its overrides."""
    demands = [d for d in CAPACITY_DEMANDS[ctx.config.platform](ctx.config)
               if not d.instance_type.startswith("ml.") and (d.steady or d.minimum)]
    purchases: dict[str, set[str]] = {}
    for d in demands:
        purchases.setdefault(d.owner, set()).add(d.purchase)
    out: dict[tuple[str, str], Placement] = {}
    for d in demands:
        label = d.owner if len(purchases[d.owner]) == 1 else f"{d.owner} ({d.purchase})"
        types = (d.instance_type, *d.alternatives)
        seen = out.get((d.owner, d.purchase))
        out[d.owner, d.purchase] = Placement(label, types, d.minimum) if seen is None else \
            Placement(label, tuple(dict.fromkeys(seen.types + types)),
                      seen.kept_running + d.minimum)
    return list(out.values())


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
           f"Name=instance-type,Values={','.join(p.types)}`), or another region")
    if not covered:
        return Check(name, "fail",
                     f"{types} is not offered in any of the stack's AZs ({', '.join(azs)})", fix)
    if len(covered) < needed:
        return Check(name, "fail",
                     f"{types} is offered only in {', '.join(covered)} of the stack's AZs; "
                     f"{p.kept_running} instances kept running need {needed} AZs to survive "
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
