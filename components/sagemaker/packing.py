"""Which production variant hosts which model, and how many copies fit one instance.

Pure functions over the validated `StackConfig` (no Pulumi). An endpoint in inference-component
mode may have several production variants (up to 10, `ProductionVariantList` in the API model),
one per instance type; every model sized onto the same instance type shares that variant, so
small models pack onto one GPU instance (a g5.12xlarge carries four 1-GPU copies, of one model or
of several).

A copy reserves, on its instance:

* GPUs: `gpusPerReplica` (`NumberOfAcceleratorDevicesRequired`);
* host memory (`MinMemoryRequiredInMb`): its share of the instance's usable host memory in
  proportion to the GPUs it takes, or its own need if that is larger (see
  `host_memory_need_mib`);
* CPU cores (`NumberOfCpuCoresRequired`): the same proportional share, one vCPU kept back.

Copies per instance are the minimum of what the GPUs and the host memory allow. Instance counts
come from packing the copies first-fit-decreasing into instances of that capacity, which is exact
when every copy takes the proportional share (GPU counts 1/2/4/8 are powers of two).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from components.config import Model, StackConfig
from components.facts import GpuInstance
from components.sagemaker.containers import StartupTimeouts, startup_timeouts

#: Host memory kept back for the OS and SageMaker's host agents: 10%, at least 2 GiB. SageMaker
#: does not publish its own reservation; this is our assumption, see docs/sagemaker.md.
HOST_RESERVE_FRACTION = 0.10
HOST_RESERVE_MIN_MIB = 2048
#: Host memory a copy needs besides its share of the weights' page cache: Python, the CUDA
#: context and pinned staging buffers, per GPU it drives (assumption, typically 2-4 GiB).
HOST_RUNTIME_MIB_PER_GPU = 4096
#: Largest single weights file a loader holds in host memory at once: transformers'
#: `save_pretrained(max_shard_size="5GB")` default, i.e. 5e9 bytes.
SAFETENSORS_SHARD_MIB = math.ceil(5e9 / 2**20)
#: vCPUs kept back for the host.
CPU_RESERVE_VCPUS = 1
#: `ProductionVariantList` max in the CreateEndpointConfig input shape.
MAX_PRODUCTION_VARIANTS = 10


@dataclass(frozen=True)
class Placement:
    """One model's inference component: what each copy reserves and how many copies run."""

    model: Model
    variant_name: str
    gpus: int
    min_memory_mib: int
    cpu_cores: float
    host_need_mib: int
    copies_per_instance: int
    min_copies: int
    max_copies: int
    startup: StartupTimeouts

    @property
    def scales_to_zero(self) -> bool:
        return self.min_copies == 0

    @property
    def startup_timeout_seconds(self) -> int:
        """Both start-up timeouts back to back: the most one copy may take to come up."""
        return self.startup.total_seconds


@dataclass(frozen=True)
class VariantPlan:
    """One production variant: an instance type and the models whose copies it hosts."""

    name: str
    instance: GpuInstance
    placements: tuple[Placement, ...]
    min_instances: int
    max_instances: int
    needed_max_instances: int

    @property
    def instance_type(self) -> str:
        return f"ml.{self.instance.name}"

    @property
    def initial_instances(self) -> int:
        """`InitialInstanceCount` is at least 1 even when the variant may scale to zero."""
        return max(1, self.min_instances)

    @property
    def startup_timeout_seconds(self) -> int:
        return max(p.startup_timeout_seconds for p in self.placements)

    @property
    def container_startup_seconds(self) -> int:
        """The variant's `ContainerStartupHealthCheckTimeoutInSeconds`: its slowest model's."""
        return max(p.startup.container_startup_seconds for p in self.placements)

    @property
    def model_download_seconds(self) -> int:
        """The variant's `ModelDataDownloadTimeoutInSeconds`: its slowest model's."""
        return max(p.startup.model_download_seconds for p in self.placements)


def variant_name(instance: GpuInstance) -> str:
    """`g5-2xlarge`: stable per instance type (VariantName allows no dots)."""
    return instance.name.replace(".", "-")


def usable_host_mib(instance: GpuInstance) -> int:
    reserve = max(HOST_RESERVE_MIN_MIB, math.ceil(instance.memory_mib * HOST_RESERVE_FRACTION))
    return instance.memory_mib - reserve


def host_memory_need_mib(gpus: int) -> int:
    return HOST_RUNTIME_MIB_PER_GPU * gpus + SAFETENSORS_SHARD_MIB


def _placement(model: Model) -> Placement:
    instance, gpus = model.instance, model.gpus_per_replica
    usable = usable_host_mib(instance)
    share = usable * gpus // instance.gpu_count
    need = host_memory_need_mib(gpus)
    reserve = max(share, need)
    by_gpu = instance.gpu_count // gpus
    by_memory = usable // reserve
    cpu = max(0.25, round((instance.vcpus - CPU_RESERVE_VCPUS) * gpus / instance.gpu_count, 2))
    return Placement(
        model=model,
        variant_name=variant_name(instance),
        gpus=gpus,
        min_memory_mib=reserve,
        cpu_cores=cpu,
        host_need_mib=need,
        copies_per_instance=min(by_gpu, by_memory),
        min_copies=model.spec.min_replicas,
        max_copies=model.spec.replicas_max,
        startup=startup_timeouts(model),
    )


def instances_needed(placements: Iterable[Placement], copies: str, instance: GpuInstance) -> int:
    """First-fit-decreasing count of instances for every copy (`copies`: "min" or "max").

    Computed on runs of identical instances rather than copy by copy, so the work grows with
    the number of models, not with `maxReplicas`: first-fit puts each copy in the first
    instance with room, so a run of instances in the same state fills one after another with
    the same number of copies each, and one run of N copies of one size is placed in a step.
    The result is exactly what placing the copies one at a time gives.
    """
    demand: dict[tuple[int, int], int] = {}
    for p in placements:
        if p.copies_per_instance == 0:
            continue
        count = p.min_copies if copies == "min" else p.max_copies
        if count:
            key = (p.gpus, p.min_memory_mib)
            demand[key] = demand.get(key, 0) + count
    empty = (instance.gpu_count, usable_host_mib(instance))
    runs: list[list[int]] = []  # [free gpus, free memory, instances in this state], in order
    for (gpus, memory), left in sorted(demand.items(), reverse=True):
        placed: list[list[int]] = []
        for free_gpus, free_memory, count in runs:
            fits = min(free_gpus // gpus, free_memory // memory) if left else 0
            if fits == 0:
                placed.append([free_gpus, free_memory, count])
                continue
            full, rest = divmod(min(left, fits * count), fits)
            filled = [free_gpus - fits * gpus, free_memory - fits * memory]
            partial = [free_gpus - rest * gpus, free_memory - rest * memory]
            untouched = count - full - (1 if rest else 0)
            placed += [[*filled, full]] if full else []
            placed += [[*partial, 1]] if rest else []
            placed += [[free_gpus, free_memory, untouched]] if untouched else []
            left -= full * fits + rest
        per_new = min(empty[0] // gpus, empty[1] // memory)
        if left and per_new:
            full, rest = divmod(left, per_new)
            placed += [[empty[0] - per_new * gpus, empty[1] - per_new * memory, full]] if full \
                else []
            placed += [[empty[0] - rest * gpus, empty[1] - rest * memory, 1]] if rest else []
        runs = placed
    return sum(count for *_, count in runs)


def plan_variants(config: StackConfig) -> tuple[VariantPlan, ...]:
    """Variants in first-appearance order of their instance type among the models."""
    groups: dict[str, list[Placement]] = {}
    instances: dict[str, GpuInstance] = {}
    for model in config.models:
        placement = _placement(model)
        groups.setdefault(placement.variant_name, []).append(placement)
        instances[placement.variant_name] = model.instance
    plans = []
    cap = config.sagemaker.max_instance_count
    for name, placements in groups.items():
        instance = instances[name]
        needed_max = instances_needed(placements, "max", instance)
        plans.append(
            VariantPlan(
                name=name,
                instance=instance,
                placements=tuple(placements),
                min_instances=instances_needed(placements, "min", instance),
                max_instances=cap if cap is not None else max(1, needed_max),
                needed_max_instances=needed_max,
            )
        )
    return tuple(plans)


def placements_by_model(plans: Iterable[VariantPlan]) -> dict[str, Placement]:
    return {p.model.name: p for plan in plans for p in plan.placements}
