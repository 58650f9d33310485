"""The policy table of docs/policies.md, generated from the rules, the family table and the
environment config files (`python scripts/policy_reference.py` rewrites it; a test fails when it
is stale), so the docs list exactly what the pack checks and where."""

from __future__ import annotations

import json
from pathlib import Path

from policies.rules import RULES
from policies.rules._framework import Rule
from policies.rules.families import FAMILIES

PACK = Path(__file__).resolve().parent
ENVIRONMENTS = ("dev", "staging", "prod")


def enforcement(rule: str) -> dict[str, str]:
    """The level each environment's config file gives a policy (the pack default: advisory)."""
    out = {}
    for env in ENVIRONMENTS:
        config = json.loads((PACK / f"config.{env}.json").read_text())
        level = config.get("all", "advisory")
        own = config.get(rule)
        if isinstance(own, str):
            level = own
        elif isinstance(own, dict):
            level = own.get("enforcementLevel", level)
        out[env] = level
    return out


def _types(rule: Rule) -> str:
    groups: dict[str, list[str]] = {"aws": [], "aws-native": [], "other": []}
    for token in sorted(rule.types):
        provider, _, rest = token.partition(":")
        key = provider if provider in ("aws", "aws-native") else "other"
        groups[key].append(rest if key != "other" else token)
    parts = [f"**{k}** {', '.join(f'`{t}`' for t in v)}" for k, v in groups.items() if v]
    return "; ".join(parts) or "every taggable type (aws_taggable_types.txt, " \
                                "aws_native_taggable_types.txt) and pulumi_eks/awsx components"


def policy_reference_markdown() -> str:
    families = {r.name: [f.name for f in FAMILIES if r.name in f.rules] for r in RULES}
    rows = ["| policy | family | checks | dev / staging / prod | resource types |",
            "| --- | --- | --- | --- | --- |"]
    for rule in RULES:
        levels = enforcement(rule.name)
        kind = " (stack)" if rule.stack_check is not None else ""
        rows.append(
            f"| `{rule.name}`{kind} | {', '.join(families[rule.name]) or '-'} | "
            f"{rule.description} | {' / '.join(levels[e] for e in ENVIRONMENTS)} | "
            f"{_types(rule)} |")
    return "\n".join(rows)
