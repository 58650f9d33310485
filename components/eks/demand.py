"""How many instances the EKS platform may run: the quota demand of GPU models and system nodes.

* GPU, per model: `ceil(maxReplicas / replicas per instance)` of the sized type at steady state;
  the peak adds one replica, the rolling update's surge that the Karpenter pool's GPU ceiling
  (`nodepool.gpu_limit`) is sized for. A `capacity: spot` model runs on Spot and falls back to
  on-demand inside the same pool when Spot is short (`nodepool.capacity_types`), so its
  on-demand peak is the whole pool. Karpenter may also pick a larger admitted type within
  `instancePriceRatio`; the quota is counted on the sized type.
* System nodes: `systemNodeCount` on-demand instances of the first listed type; a managed node
  group update adds up to twice the number of AZs in new nodes before old ones go
  (https://docs.aws.amazon.com/eks/latest/userguide/managed-node-update-behavior.html).
"""

from __future__ import annotations

import math

from components.config import StackConfig
from components.eks.nodegroups import floor_nodes
from components.eks.nodepool import gpu_limit
from components.platform_api import InstanceDemand


def capacity_demand(config: StackConfig) -> tuple[InstanceDemand, ...]:
    cfg = config.eks
    out: list[InstanceDemand] = []
    for model in config.models:
        spec, per = model.spec, model.cost.replicas_per_instance
        steady = math.ceil(spec.replicas_max / per)
        peak = max(steady, math.ceil(gpu_limit(model, cfg) // model.gpus_per_replica / per))
        why = (f"{spec.replicas_max} replica(s) at {per} per instance; the pool's GPU ceiling "
               "admits a rolling update's surge")
        floor = floor_nodes(model)
        if spec.capacity == "spot":
            out.append(InstanceDemand(model.name, model.instance.name, "spot", steady, peak, why,
                                      minimum=floor))
            out.append(InstanceDemand(
                model.name, model.instance.name, "on-demand", 0, peak,
                "Spot model: Karpenter launches on-demand when Spot capacity is short"))
        else:
            out.append(InstanceDemand(model.name, model.instance.name, "on-demand", steady, peak,
                                      why, minimum=floor))
    nodes, azs = cfg.system_node_count, config.network.availability_zones
    first, *others = cfg.system_node_instance_types
    out.append(InstanceDemand(
        "system nodes", first, "on-demand", nodes, nodes + 2 * azs,
        f"{nodes} system node(s); a node group update adds up to 2 per AZ ({azs} AZs)",
        minimum=nodes, alternatives=tuple(others)))
    return tuple(out)
