"""The platform contract: what `__main__.py` hands a platform and what each platform offers back.

Every platform package depends on this module and nothing here depends on a platform, so the
import graph has no cycle: `components.platforms` (the switch) imports the platforms, the
platforms import this contract, and `components.config` imports neither. A platform registers
its config check through its `PlatformSpec`; config validation receives the checks as a plain
mapping, so the config module names no platform package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # types only: this module must stay importable without a provider package
    import pulumi

    from components.config import StackConfig
    from components.network import Network
    from components.tags import Naming


@dataclass(frozen=True)
class PlatformArgs:
    """What every platform is built from: the validated config and the shared network."""

    config: StackConfig
    network: Network
    naming: Naming


class Platform(Protocol):
    """A built platform; `exports` are the stack outputs it owns (endpoint names, commands)."""

    exports: Mapping[str, Any]


PlatformFactory = Callable[[str, PlatformArgs, "pulumi.ResourceOptions"], Platform]

ConfigCheck = Callable[["StackConfig"], list[str]]
"""A platform's own validation of a parsed, sized config: problems with key paths, [] if fine.
It runs inside config validation, before any resource registers."""


Purchase = Literal["on-demand", "spot"]


@dataclass(frozen=True)
class InstanceDemand:
    """Instances of one type that one part of a platform (a model, a shared host, the system
    nodes) may run at once: what the account's quotas must admit before `pulumi up`.

    `instance_type` is the name the platform's API takes (`g6e.xlarge` on EC2, `ml.g6e.xlarge`
    on SageMaker). `steady` is the count at `maxReplicas` once things have settled; `peak` adds
    what only runs for a while (rollouts that start new capacity before stopping old, warm-pool
    instances initializing, Spot falling back to on-demand). Preflight blocks a deploy whose
    quota is below `steady` and warns below `peak`; `why` says where the numbers come from.
    """

    owner: str
    instance_type: str
    purchase: Purchase
    steady: int
    peak: int
    why: str
    minimum: int = 0
    """Instances kept running at `minReplicas`: two or more should not share one AZ's fate."""
    alternatives: tuple[str, ...] = ()
    """Other types the same capacity may launch instead (Spot overrides, node group types);
    quotas are counted on `instance_type`, offerings accept any of them."""


CapacityDemand = Callable[["StackConfig"], tuple[InstanceDemand, ...]]
"""A platform's answer to "how many instances of which type may you run" for a parsed config
(read by `python -m components.preflight`; pure, no AWS calls)."""


def no_capacity_demand(config: StackConfig) -> tuple[InstanceDemand, ...]:
    """For a platform that launches no instances of its own."""
    return ()


@dataclass(frozen=True)
class PlatformSpec:
    """One platform as the switch sees it."""

    factory: PlatformFactory
    config_check: ConfigCheck
    interface_endpoints: tuple[str, ...]
    """The VPC interface endpoints this platform's workloads call (each costs per AZ-hour)."""
    load_balancer_subnets: bool = False
    """Whether its internal load balancers get dedicated subnets (`NetworkArgs`), so a
    NetworkPolicy can admit them by CIDR (EKS with `ip` targets; docs/hardening.md)."""
    capacity_demand: CapacityDemand = no_capacity_demand
    """The instances the platform may run, per type and purchase option (quota preflight)."""
