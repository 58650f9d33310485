"""ALB listener-rule priorities for the `/<model>/*` routes (pure; no Pulumi).

Every model owns one rule on the shared listener, and a listener holds at most one rule per
priority (CreateRule/SetRulePriorities fail with `PriorityInUse`). The paths are disjoint
(`/<model>/*` with DNS-label names), so the order between model rules never matters; only
uniqueness and stability do.

* Default: `1 + crc32(name) mod 50000`, the value every earlier release used, so upgrading
  changes no existing rule. It depends on the model's own name only, so adding or removing
  another model never moves it (an index into the sorted names would shift every later model's
  rule on one insertion, and those in-place moves race each other into `PriorityInUse`).
* A hash can clash (`l10` and `l38` both give 38985). Names are resolved in sorted order: the
  first keeps its hash, a later one takes the next free priority above it (wrapping at 50000),
  so the result is deterministic and collision-free for any set of names.
* `llm-hosting:ecs.listenerPriorities` pins a model's priority (1-50000), for instance to keep
  an existing rule where it is when a newly added name would clash with it. Pins are placed
  first; two pins on one priority are a config error naming both keys, the only collision
  that can remain.

What a changed priority does to a running stack: an in-place update, not a replacement. The
pulumi-aws provider (terraform-provider-aws `internal/service/elbv2/listener_rule.go`: `priority`
is `ForceNew: false` and `resourceListenerRuleUpdate` calls `SetRulePriorities`) moves the
existing rule, so its route keeps serving; see docs/ecs.md for the one ordering caveat.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

PRIORITY_MIN = 1
PRIORITY_MAX = 50000
"""Listener rule priorities AWS accepts (CreateRule `Priority`: 1-50000).
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateRule.html"""


def hashed_priority(model_name: str) -> int:
    """The default priority of a model's rule: stable across releases and other models."""
    return PRIORITY_MIN + zlib.crc32(model_name.encode()) % PRIORITY_MAX


def _next(priority: int) -> int:
    return PRIORITY_MIN if priority >= PRIORITY_MAX else priority + 1


def listener_priorities(model_names: Sequence[str],
                        pinned: Mapping[str, int] | None = None) -> dict[str, int]:
    """Every model's rule priority: pins first, then each other name (sorted) at its hash or
    the next free priority above it. Distinct for distinct names unless two pins are equal,
    which `priority_problems` reports before anything is built."""
    pins = {n: p for n, p in (pinned or {}).items() if n in set(model_names)}
    taken = set(pins.values())
    out = dict(pins)
    for name in sorted(set(model_names) - set(pins)):
        priority = hashed_priority(name)
        while priority in taken:
            priority = _next(priority)
        taken.add(priority)
        out[name] = priority
    return {n: out[n] for n in model_names}


def priority_problems(model_names: Sequence[str], pinned: Mapping[str, int],
                      key: str) -> list[str]:
    """What is wrong with `listenerPriorities` (at config key `key`): pins for unknown models,
    and two models pinned to one priority (each named by its key path)."""
    problems: list[str] = []
    known = set(model_names)
    for name in sorted(set(pinned) - known):
        problems.append(f"{key}.{name}: {name!r} is not a model in llm-hosting:models "
                        f"(models: {', '.join(sorted(known))}); pin only configured models")
    by_priority: dict[int, list[str]] = {}
    for name, priority in pinned.items():
        if name in known:
            by_priority.setdefault(priority, []).append(name)
    for priority, names in sorted(by_priority.items()):
        if len(names) > 1:
            first, *rest = sorted(names)
            for other in rest:
                problems.append(
                    f"{key}.{first} and {key}.{other}: both pin ALB rule priority {priority}; "
                    "a listener holds one rule per priority, so give each model its own "
                    f"({PRIORITY_MIN}-{PRIORITY_MAX}) or remove one pin")
    return problems
