"""Several small models as containers of one ECS task on one GPU instance (pure; no Pulumi).

`llm-hosting:ecs.sharedInstances` lists groups of models. Each group becomes ONE task definition
with one engine container per model (each with its own GPUs, port, health check, log stream and
shared memory), ONE service registered in one ALB target group per model, and ONE on-demand
Auto Scaling group + capacity provider (plus a Spot one for `capacity: spot`) whose instance
type has GPUs for all of them. Models not in a group keep one service each.

ECS reserves GPUs per container: "If you don't specify a sharing strategy, the container has
exclusive use of each GPU that Amazon ECS assigns to it", and the GPUs of all containers in a
task must fit one instance.
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ResourceRequirement.html

`ecs_problems` is the validation hook (`PlatformSpec.config_check`, components/platforms.py):
every message names the key to change and the numbers that do not fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from components.config import NAMESPACE, ConfigError, EcsSharedInstanceConfig, Model, StackConfig
from components.ecs.placement import (
    HOST_RESERVED_MEMORY_MIB,
    REGISTERED_MEMORY_FRACTION,
    ROOT_VOLUME_BASE_GIB,
    SIDECAR_MEMORY_MIB,
    SPOT_PRICE_CEILING,
    SPOT_TYPES_MAX,
    TaskShape,
    download_gib,
)
from components.ecs.routing import priority_problems
from components.facts import GPU_INSTANCES, GpuInstance, get_gpu_instance
from components.sizing import estimate_memory
from components.startup import estimate_for_model

SHARED_PORT_BASE = 8000
"""Engines of a shared task share its network namespace (awsvpc), so each listens on its own
port: the group's n-th model on 8000 + n (list order; appending keeps existing ports)."""

TGI_PROMETHEUS_PORT_BASE = 9000
"""TGI's router serves metrics on `--prometheus-port` (default 9000) and its shards rendezvous on
`--master-port` (default 29500): two TGI engines in one namespace need distinct values of both.
https://huggingface.co/docs/text-generation-inference/reference/launcher"""
TGI_MASTER_PORT_BASE = 29500

WEIGHTS_RESERVE_MIB = 512
"""The per-model weights init container (`aws s3 sync`) of a shared task."""
COLLECTOR_RESERVE_MIB = SIDECAR_MEMORY_MIB - WEIGHTS_RESERVE_MIB
"""The one metrics collector of a shared task (scrapes every engine)."""


@dataclass(frozen=True)
class SharedMember:
    """One model inside a shared task: its port(s) and its share of the task."""

    model: Model
    port: int
    metrics_port: int
    master_port: int | None  # TGI only
    shape: TaskShape  # this engine's memory, shm and load time (tasks_per_instance: the group's)


@dataclass(frozen=True)
class SharedHost:
    """One `sharedInstances` entry, validated and sized."""

    name: str
    members: tuple[SharedMember, ...]
    instance: GpuInstance
    shape: TaskShape  # the whole task: CPU, memory, longest load, root volume

    @property
    def gpus(self) -> int:
        return sum(m.model.gpus_per_replica for m in self.members)

    @property
    def capacity(self) -> str:
        return self.members[0].model.spec.capacity

    @property
    def min_replicas(self) -> int:
        return self.members[0].model.spec.min_replicas

    @property
    def max_replicas(self) -> int:
        return self.members[0].model.spec.replicas_max


def fits_group(models: Sequence[Model], inst: GpuInstance) -> bool:
    """Every model fits its own GPUs of `inst`, and together they fit its GPU count."""
    need = sum(m.gpus_per_replica for m in models)
    return inst.gpu_count >= need and all(estimate_memory(m.request, inst).fits for m in models)


def choose_shared_instance(models: Sequence[Model]) -> GpuInstance | None:
    """Cheapest EC2 catalog type for the group (ties: fewer GPUs, then name), as
    `sizing.choose_instance` does for one model."""
    fitting = [(i.ec2_usd_per_hour, i.gpu_count, i.name, i) for i in GPU_INSTANCES.values()
               if fits_group(models, i)]
    return min(fitting)[3] if fitting else None


def shared_task_shape(
    models: Sequence[Model], inst: GpuInstance, root_volume_gib: int | None
) -> tuple[TaskShape, list[TaskShape]]:
    """The task's shape and each engine's, splitting CPU and memory by GPU share.

    Same arithmetic as `placement.task_shape` (92% of nominal memory minus ECS_RESERVED_MEMORY,
    divided by tasks per instance), then each engine gets its GPU share of the task minus its
    weights init container; the one collector comes off the top."""
    gpus = sum(m.gpus_per_replica for m in models)
    per_instance = inst.gpu_count // gpus
    cpu = inst.vcpus * 1024 // per_instance
    usable = int(inst.memory_mib * REGISTERED_MEMORY_FRACTION) - HOST_RESERVED_MEMORY_MIB
    memory = usable // per_instance
    engines_memory = memory - COLLECTOR_RESERVE_MIB
    members: list[TaskShape] = []
    for m in models:
        g = m.gpus_per_replica
        engine_memory = engines_memory * g // gpus - WEIGHTS_RESERVE_MIB
        gib = download_gib(m)
        members.append(TaskShape(
            tasks_per_instance=per_instance,
            cpu_units=cpu * g // gpus,
            memory_mib=engine_memory + WEIGHTS_RESERVE_MIB,
            engine_memory_mib=engine_memory,
            shared_memory_mib=min(2048 * g, engine_memory // 4),
            download_gib=gib,
            task_startup_seconds=estimate_for_model(m, "ecs").task_seconds,
            container_startup_seconds=estimate_for_model(m, "ecs").container_seconds,
            root_volume_gib=0,
        ))
    total_gib = sum(s.download_gib for s in members)
    volume = root_volume_gib or int(
        math.ceil((ROOT_VOLUME_BASE_GIB + 1.2 * total_gib * per_instance) / 10) * 10)
    task = TaskShape(
        tasks_per_instance=per_instance, cpu_units=cpu, memory_mib=memory,
        engine_memory_mib=sum(s.engine_memory_mib for s in members),
        shared_memory_mib=sum(s.shared_memory_mib for s in members),
        download_gib=total_gib,
        task_startup_seconds=max(s.task_startup_seconds for s in members),
        container_startup_seconds=max(s.container_startup_seconds for s in members),
        root_volume_gib=volume,
    )
    return task, members


def shared_spot_types(host: SharedHost) -> list[str]:
    """Spot alternatives for a shared host: same GPU count, at least its vCPUs and memory, every
    model fits, at most 2x its on-demand price; cheapest first, the chosen type first."""
    chosen = host.instance
    models = [m.model for m in host.members]
    others = sorted(
        (i for i in GPU_INSTANCES.values()
         if i.name != chosen.name and i.gpu_count == chosen.gpu_count
         and i.vcpus >= chosen.vcpus and i.memory_mib >= chosen.memory_mib
         and i.ec2_usd_per_hour <= SPOT_PRICE_CEILING * chosen.ec2_usd_per_hour
         and fits_group(models, i)),
        key=lambda i: i.ec2_usd_per_hour)
    return [chosen.name, *(i.name for i in others)][:SPOT_TYPES_MAX]


def _members(models: Sequence[Model], shapes: Sequence[TaskShape]) -> tuple[SharedMember, ...]:
    out = []
    for n, (m, shape) in enumerate(zip(models, shapes, strict=True)):
        port = SHARED_PORT_BASE + n
        tgi = m.spec.engine == "tgi"
        out.append(SharedMember(
            model=m, port=port,
            metrics_port=TGI_PROMETHEUS_PORT_BASE + n if tgi else port,
            master_port=TGI_MASTER_PORT_BASE + n if tgi else None,
            shape=shape,
        ))
    return tuple(out)


def _group(
    i: int, group: EcsSharedInstanceConfig, by_name: dict[str, Model], config: StackConfig
) -> tuple[SharedHost | None, list[str]]:
    p = f"{NAMESPACE}:ecs.sharedInstances[{i}]"
    problems: list[str] = []
    if group.name in by_name:
        problems.append(f"{p}.name: {group.name!r} is also a model name; shared instance names "
                        "must differ from model names (they name the same kind of resources)")
    for j, name in enumerate(group.model_names):
        if name not in by_name:
            problems.append(f"{p}.models[{j}]: {name!r} is not a model in {NAMESPACE}:models "
                            f"(models: {', '.join(sorted(by_name))})")
    models = [by_name[n] for n in dict.fromkeys(group.model_names) if n in by_name]
    if problems or len(models) < 2:
        return None, problems  # the rest would only repeat the unknown names

    index = {m.name: k for k, m in enumerate(config.models)}
    for m in models:
        if m.spec.instance_type is not None:
            problems.append(
                f"{NAMESPACE}:models[{index[m.name]}].instanceType: {m.name} runs on shared "
                f"instance {group.name!r}; set {p}.instanceType instead (or remove the model "
                "from the group)")

    def differ(label: str, value: object) -> None:
        values = {m.name: value(m) for m in models}  # type: ignore[operator]
        if len(set(values.values())) > 1:
            listed = ", ".join(f"{n}: {v}" for n, v in values.items())
            problems.append(f"{p}.models: {label} differs inside the group ({listed}); one task "
                            f"runs every model, so set the same {label} on each")

    differ("capacity", lambda m: m.spec.capacity)
    differ("minReplicas", lambda m: m.spec.min_replicas)
    differ("maxReplicas", lambda m: m.spec.replicas_max)

    gpus = sum(m.gpus_per_replica for m in models)
    split = ", ".join(f"{m.name}: {m.gpus_per_replica}" for m in models)
    largest = max(i.gpu_count for i in GPU_INSTANCES.values())
    instance: GpuInstance | None = None
    if gpus > largest:
        problems.append(f"{p}.models: the group needs {gpus} GPUs together ({split}); the largest "
                        f"catalog instance has {largest}: split the group")
    elif group.instance_type is None:
        instance = choose_shared_instance(models)
        if instance is None:
            problems.append(f"{p}.models: no catalog instance has {gpus} GPUs ({split}) on which "
                            "every model fits its own share; split the group or quantize")
    else:
        instance = _given_instance(p, group.instance_type, models, gpus, split, problems)
    if problems or instance is None:
        return None, problems
    task, shapes = shared_task_shape(models, instance, config.ecs.root_volume_gib)
    return SharedHost(name=group.name, members=_members(models, shapes), instance=instance,
                      shape=task), problems


def _given_instance(
    p: str, name: str, models: list[Model], gpus: int, split: str, problems: list[str]
) -> GpuInstance | None:
    path = f"{p}.instanceType"
    cheapest = choose_shared_instance(models)
    hint = f"the cheapest that fits is {cheapest.name}" if cheapest else "split the group"
    before = len(problems)
    inst = get_gpu_instance(name)
    if inst is None:
        problems.append(f"{path}: {name!r} is not a GPU instance type in the catalog; {hint}")
        return None
    if inst.gpu_count < gpus:
        problems.append(f"{path}: {name} has {inst.gpu_count} GPU(s); the group needs {gpus} "
                        f"({split}); {hint}")
        return None
    for m in models:
        memory = estimate_memory(m.request, inst)
        if not memory.fits:
            problems.append(
                f"{path}: {m.name} needs {memory.required_gib_per_gpu:.1f} GiB per GPU but "
                f"{name} offers {memory.available_gib_per_gpu:.1f} GiB usable per GPU; {hint}")
    return inst if len(problems) == before else None


def plan_shared(config: StackConfig) -> tuple[list[SharedHost], list[str]]:
    """Sized shared hosts and the problems found (only `platform: ecs` reads the option)."""
    if config.platform != "ecs":
        return [], []
    by_name = {m.name: m for m in config.models}
    hosts: list[SharedHost] = []
    problems: list[str] = []
    for i, group in enumerate(config.ecs.shared_instances):
        host, found = _group(i, group, by_name, config)
        problems += found
        if host is not None:
            hosts.append(host)
    return hosts, problems


def ecs_problems(config: StackConfig) -> list[str]:
    """Validation hook registered in components/platforms.py (runs after sizing)."""
    if config.platform != "ecs":
        return []
    pins = priority_problems([m.name for m in config.models], config.ecs.listener_priorities,
                             f"{NAMESPACE}:ecs.listenerPriorities")
    return plan_shared(config)[1] + pins


def shared_hosts(config: StackConfig) -> list[SharedHost]:
    """The shared hosts to build; raises `ConfigError` (before any child registers) if invalid."""
    hosts, problems = plan_shared(config)
    if problems:
        raise ConfigError(problems)
    return hosts


def hourly_usd(host: SharedHost) -> tuple[float, float]:
    """On-demand $/hour of the shared hosts at min and max replicas:
    `ceil(replicas / tasks per instance) x price`, the formula `sizing.estimate_cost` uses."""
    price, per = host.instance.ec2_usd_per_hour, host.shape.tasks_per_instance
    return (math.ceil(host.min_replicas / per) * price,
            math.ceil(host.max_replicas / per) * price)


def sizing_summary(host: SharedHost) -> dict[str, object]:
    """What the stack exports per shared instance, beside what the same models would cost on
    their own sized instances (`Model.cost`), so the choice to share is made with numbers."""
    low, high = hourly_usd(host)
    return {
        "instanceType": host.instance.name,
        "tasksPerInstance": host.shape.tasks_per_instance,
        "ports": {m.model.name: m.port for m in host.members},
        "hourlyUsdMin": round(low, 4),
        "hourlyUsdMax": round(high, 4),
        "separateHourlyUsdMin": round(sum(m.model.cost.hourly_usd_min for m in host.members), 4),
        "separateHourlyUsdMax": round(sum(m.model.cost.hourly_usd_max for m in host.members), 4),
    }
