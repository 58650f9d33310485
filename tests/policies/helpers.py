"""Call one policy in-process through the real pulumi-policy objects, with properties wrapped in
the SDK's own proxy, as the analyzer hands them to a policy (fast enough for boundary tables and
the mutation run; the protocol tests cover the wire)."""

from __future__ import annotations

import json
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions
from pulumi_policy.proxy import unknown_checking_proxy

from components.tags import Naming
from policies.rules import BY_NAME

BASE_TAGS = Naming("llm-hosting", "prod", "prod").tags()
P = "llm-hosting/"


def serving(model_id: str = "meta-llama/Llama-3.1-8B-Instruct", instance: str = "g6e.xlarge",
            quantization: str = "none", gpus: int = 1, platform: str = "ecs", min_r: int = 1,
            max_r: int = 3, model: str = "llama-8b", inp: int = 6144, total: int = 8192,
            conc: int = 4) -> dict[str, str]:
    return {**BASE_TAGS, "model": model, f"{P}platform": platform, f"{P}model-id": model_id,
            f"{P}instance-type": instance, f"{P}quantization": quantization,
            f"{P}gpus-per-replica": str(gpus), f"{P}max-input-tokens": str(inp),
            f"{P}max-total-tokens": str(total), f"{P}concurrency-target": str(conc),
            f"{P}min-replicas": str(min_r), f"{P}max-replicas": str(max_r)}


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def run(policy: str, type_: str, props: dict[str, Any],
        config: dict[str, Any] | None = None) -> list[str]:
    """Messages the policy reports for one resource, without the description prefix."""
    pol = BY_NAME[policy].policy()
    found: list[str] = []
    args = ResourceValidationArgs(type_, unknown_checking_proxy(json.loads(json.dumps(props))),
                                  "urn:pulumi:prod::llm-hosting::x::r", "r", _opts(), None,
                                  config or {})
    pol.validate(args, lambda message, urn=None: found.append(message))
    return found


def run_stack(policy: str, resources: list[tuple[str, dict[str, Any]]],
              config: dict[str, Any] | None = None,
              deps: dict[int, dict[str, list[int]]] | None = None) -> list[str]:
    """Messages of a stack policy; `deps` links resource i's property to resources by index
    (the engine's property dependencies)."""
    pol = BY_NAME[policy].policy()
    found: list[str] = []
    policy_resources = [
        PolicyResource(t, unknown_checking_proxy(json.loads(json.dumps(p))),
                       f"urn:pulumi:prod::llm-hosting::{t}::r{i}", f"r{i}", _opts(), None, None,
                       [], {})
        for i, (t, p) in enumerate(resources)
    ]
    for i, links in (deps or {}).items():
        policy_resources[i].property_dependencies = {
            prop: [policy_resources[j] for j in targets] for prop, targets in links.items()}
    pol.validate(StackValidationArgs(policy_resources, config or {}),
                 lambda message, urn=None: found.append(message))
    return found
