"""What each platform says it may launch (`PlatformSpec.capacity_demand`), the figures the quota
and offering preflights check. Expected counts are worked out by hand from the platform's rules,
in the comments."""

from __future__ import annotations

import json
from typing import Any

from components.platform_api import InstanceDemand
from components.platforms import CAPACITY_DEMANDS, parse_config

MODEL = {"modelId": "Qwen/Qwen2.5-7B-Instruct", "gpusPerReplica": 1, "maxInputTokens": 3072,
         "maxTotalTokens": 4096, "minReplicas": 1, "maxReplicas": 2}


def demand(platform: str, models: list[dict[str, Any]], **options: Any) -> list[InstanceDemand]:
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": "staging",
           "llm-hosting:platform": platform, "llm-hosting:models": json.dumps(models),
           **{f"llm-hosting:{k}": json.dumps(v) for k, v in options.items()}}
    config = parse_config(raw, project="llm-hosting", stack="staging")
    return list(CAPACITY_DEMANDS[platform](config))


def counts(items: list[InstanceDemand]) -> list[tuple[Any, ...]]:
    return [(d.owner, d.instance_type, d.purchase, d.steady, d.peak, d.minimum, d.alternatives)
            for d in items]


def test_ecs_groups_with_warm_pool_spot_beyond_the_base_and_a_shared_host():
    found = demand("ecs", [
        {"name": "qwen-a", **MODEL}, {"name": "qwen-b", **MODEL},
        {"name": "qwen-c", **MODEL, "instanceType": "g6e.xlarge", "capacity": "spot",
         "maxReplicas": 4},
    ], ecs={"sharedInstances": [{"name": "pair", "models": ["qwen-a", "qwen-b"],
                                 "instanceType": "g6e.12xlarge"}]})
    spot_types = found[1].alternatives
    assert counts(found) == [
        # on-demand base: minReplicas 1 + 1 warm-pool instance; ceiling 2x the base + 1 warm
        ("qwen-c", "g6e.xlarge", "on-demand", 2, 3, 1, ()),
        # 3 tasks beyond the base on Spot; the Spot group's ceiling is 2 x maxReplicas
        ("qwen-c", "g6e.xlarge", "spot", 3, 8, 0, spot_types),
        # 2 models x 1 GPU per task on 4 GPUs: 2 tasks per instance, 2 replicas -> 1 + 1 warm
        ("pair", "g6e.12xlarge", "on-demand", 2, 3, 1, ()),
    ]
    assert spot_types and "g6e.xlarge" not in spot_types


def test_eks_pools_spot_falls_back_on_demand_and_system_nodes_surge_per_az():
    found = demand("eks", [
        {"name": "qwen-a", **MODEL, "instanceType": "g6e.12xlarge", "maxReplicas": 3},
        {"name": "qwen-c", **MODEL, "instanceType": "g6e.xlarge", "capacity": "spot",
         "maxReplicas": 4},
    ], eks={"systemNodeInstanceTypes": ["m7i.xlarge", "m6i.xlarge"]})
    assert counts(found) == [
        # 4 one-GPU replicas per g6e.12xlarge: 3 replicas, and 4 with the surge, fit one
        ("qwen-a", "g6e.12xlarge", "on-demand", 1, 1, 1, ()),
        ("qwen-c", "g6e.xlarge", "spot", 4, 5, 1, ()),
        ("qwen-c", "g6e.xlarge", "on-demand", 0, 5, 0, ()),
        # 3 nodes (staging: 3 AZs); an update adds up to 2 per AZ
        ("system nodes", "m7i.xlarge", "on-demand", 3, 9, 3, ("m6i.xlarge",)),
    ]


def test_sagemaker_variants_blue_green_doubles_rolling_adds_a_batch():
    models = [{"name": "qwen-7b", **MODEL, "instanceType": "g5.2xlarge", "maxReplicas": 4}]
    blue_green = demand("sagemaker", models)
    rolling = demand("sagemaker", models, sagemaker={"endpointDeployment": "rolling"})
    assert counts(blue_green) == [("qwen-7b", "ml.g5.2xlarge", "on-demand", 4, 8, 1, ())]
    assert counts(rolling) == [("qwen-7b", "ml.g5.2xlarge", "on-demand", 4, 5, 1, ())]


def test_every_example_stack_states_its_demand():
    """The example stacks leave gpusPerReplica to sizing (prod): demand reads the resolved
    count, and names every model (and EKS's system nodes)."""
    from components.offline import ROOT
    from components.preflight import load_config

    for stack in ("dev", "staging", "prod"):
        config = load_config(stack, ROOT)
        found = CAPACITY_DEMANDS[config.platform](config)
        owners = {d.owner for d in found}
        expected = {m.name for m in config.models} | (
            {"system nodes"} if config.platform == "eks" else set())
        if config.platform == "sagemaker":  # one variant per instance type, named by its models
            owners = {name for d in found for name in d.owner.split(", ")}
        assert owners == expected, stack
        assert all(d.steady >= 0 and d.peak >= d.steady for d in found), stack
