"""`python -m components.preflight --stack NAME`: read-only AWS checks before `pulumi up`.

A first deploy of GPU infrastructure fails most often for reasons no plan shows: a new account's
GPU vCPU quota is 0 (Spot too), the region or an AZ does not offer the chosen type, the Spot
service-linked role is missing, the weights prefix is empty or unreadable, an add-on build does
not exist for the cluster version. One module per family of checks (account, offerings, quotas,
iam, weights, eks, bedrock); `runner` runs them and prints one table.

Knows no platform package: what a platform may launch comes through the platform contract
(`components.platforms.CAPACITY_DEMANDS`), the stack config through `parse_config`, exactly as
`plan` and `pulumi up` read it.
"""

from components.preflight.checks import Check, Clients, Context
from components.preflight.runner import exit_code, load_config, main, render, run

__all__ = ["Check", "Clients", "Context", "exit_code", "load_config", "main", "render", "run"]
