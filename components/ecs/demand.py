"""How many GPU instances the ECS platform may run per Auto Scaling group: the quota demand.

Mirrors `GpuCapacity` (capacity.py) and the services' capacity provider strategy (service.py):
* on-demand group: `maxReplicas` tasks (or, with `capacity: spot`, the `minReplicas` base that
  the strategy keeps on on-demand), plus the warm pool. Warm-pool instances are Stopped between
  uses, but each one runs while it initializes (image pre-pull) and again whenever the pool is
  refilled after a scale-out, so its vCPUs count against the *running* on-demand quota then.
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html
* Spot group (`capacity: spot`): every task beyond the base.
* peak: the group ceilings (`max_instances`), which admit a rolling deploy's 2x tasks
  (`deployment_maximum_percent=200`).
Spot groups may launch any of their override types; they all have at least the sized type's
vCPUs (`spot_instance_types`), so the quota is counted on the sized type and is a floor.
"""

from __future__ import annotations

import math

from components.config import StackConfig
from components.ecs.placement import TaskShape, max_instances, spot_instance_types, task_shape
from components.ecs.sharing import plan_shared, shared_spot_types
from components.platform_api import InstanceDemand


def _group_demand(name: str, instance_type: str, spot: bool, min_replicas: int,
                  max_replicas: int, shape: TaskShape, warm: int,
                  spot_types: tuple[str, ...]) -> tuple[InstanceDemand, ...]:
    per = shape.tasks_per_instance
    base = max(min_replicas, 1) if spot else max_replicas
    on_demand_steady = (min_replicas if spot else max_replicas)
    warm_note = f" + {warm} warm-pool instance(s) while they initialize" if warm else ""
    out = [InstanceDemand(
        owner=name, instance_type=instance_type, purchase="on-demand",
        steady=math.ceil(on_demand_steady / per) + warm,
        peak=max_instances(base, shape) + warm,
        why=(f"{on_demand_steady} on-demand task(s) at {per} per instance{warm_note}; a "
             "rolling deploy runs up to 2x tasks"),
        minimum=math.ceil(min_replicas / per),
    )]
    if spot:
        beyond = max_replicas - min_replicas
        out.append(InstanceDemand(
            owner=name, instance_type=instance_type, purchase="spot",
            steady=math.ceil(beyond / per),
            peak=max_instances(max_replicas, shape),
            why=(f"{beyond} Spot task(s) beyond the on-demand base at {per} per instance; a "
                 "rolling deploy runs up to 2x tasks"),
            alternatives=tuple(t for t in spot_types if t != instance_type),
        ))
    return tuple(out)


def capacity_demand(config: StackConfig) -> tuple[InstanceDemand, ...]:
    """Per model (or shared instance) and purchase option, in config order."""
    hosts, _ = plan_shared(config)  # validation already refused a bad sharedInstances
    grouped = {m.model.name for h in hosts for m in h.members}
    warm = config.ecs.warm_pool_size
    out: list[InstanceDemand] = []
    for model in config.models:
        if model.name in grouped:
            continue
        spec = model.spec
        spot = spec.capacity == "spot"
        out += _group_demand(model.name, model.instance.name, spot, spec.min_replicas,
                             spec.replicas_max, task_shape(model, config.ecs.root_volume_gib),
                             warm, tuple(spot_instance_types(model)) if spot else ())
    for host in hosts:
        spot = host.capacity == "spot"
        out += _group_demand(host.name, host.instance.name, spot, host.min_replicas,
                             host.max_replicas, host.shape, warm,
                             tuple(shared_spot_types(host)) if spot else ())
    return tuple(out)
