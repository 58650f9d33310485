"""Every rule of the pack, one module per family; `policies/__main__.py` makes the policies."""

from policies.rules import (
    compute,
    cost,
    encryption,
    iam,
    logs,
    network,
    secrets,
    startup,
    storage,
    tags,
    transit,
    workloads,
)
from policies.rules._framework import Rule

RULES: list[Rule] = [
    *compute.RULES,
    *secrets.RULES,
    *encryption.RULES,
    *transit.RULES,
    *network.RULES,
    *iam.RULES,
    *storage.RULES,
    *logs.RULES,
    *tags.RULES,
    *startup.RULES,
    *cost.RULES,
    *workloads.RULES,
]
"""In the order `pulumi preview` lists them."""

BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
