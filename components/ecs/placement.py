"""How one model's replica is sized onto its GPU instance (pure; no Pulumi).

ECS places a task only where the instance's *registered* CPU, memory and GPUs cover the task's
reservation, so every number here errs low: a task reserving 1 MiB more than the agent registered
never starts, and the capacity provider keeps launching instances for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.config import Model
from components.facts import GPU_INSTANCES, GpuInstance
from components.sizing import GIB, estimate_memory
from components.startup import checkpoint_bytes, estimate_for_model

HOST_RESERVED_MEMORY_MIB = 1024
"""`ECS_RESERVED_MEMORY`: kept from tasks for Docker, the ECS agent and the CloudWatch agent.
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/memory-management.html"""

REGISTERED_MEMORY_FRACTION = 0.92
"""The agent registers MemTotal (what the kernel leaves of the nominal size, ~94-97% on
G/P instances) minus `ECS_RESERVED_MEMORY`; 92% keeps every catalog type on the safe side."""

SIDECAR_MEMORY_MIB = 768
"""Reserved for the weights init container (512) and the metrics collector with the volumes
init step (256 together)."""

SPOT_PRICE_CEILING = 2.0
"""A Spot alternative may cost at most 2x the sized type's on-demand rate: capacity-optimized
allocation ignores price, and a p5 is never a sensible fallback for an 8B model."""

SPOT_TYPES_MAX = 6
"""Instance types offered to a Spot group: enough pools for capacity-optimized allocation to
find GPUs, few enough that every one is a reviewed fit. https://docs.aws.amazon.com/autoscaling/
ec2/userguide/ec2-auto-scaling-mixed-instances-groups.html"""

HEALTH_CHECK_START_PERIOD_MAX = 300
HEALTH_CHECK_INTERVAL_MAX = 300
HEALTH_CHECK_RETRIES_MAX = 10
"""ECS container health check limits: `startPeriod` 0-300 s, `interval` 5-300 s, `retries` 1-10
(botocore's ecs model, HealthCheck). So a container check alone covers at most 3,300 s; the
service's grace period, which has no such cap, covers the rest of a longer load.
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html"""

ROOT_VOLUME_BASE_GIB = 100
"""OS, Docker and the engine images (vLLM ~25 GiB unpacked) before any weights."""


@dataclass(frozen=True)
class TaskShape:
    tasks_per_instance: int
    cpu_units: int
    memory_mib: int
    engine_memory_mib: int
    shared_memory_mib: int
    download_gib: float
    task_startup_seconds: int
    """Task start to the engine's /health, the weights sync included (start-up model)."""
    container_startup_seconds: int
    """Engine container start to /health (start-up model)."""
    root_volume_gib: int


def download_gib(model: Model) -> float:
    """Checkpoint bytes fetched per replica (`startup.checkpoint_bytes`: fp8 is quantized at
    load from the 16-bit checkpoint, fp32 checkpoints are 4 bytes a weight on disk)."""
    return checkpoint_bytes(model.shape, model.checkpoint_quantization) / GIB


def task_shape(model: Model, root_volume_gib: int | None = None) -> TaskShape:
    inst, gpus = model.instance, model.gpus_per_replica
    per_instance = inst.gpu_count // gpus
    cpu = inst.vcpus * 1024 // per_instance
    usable = int(inst.memory_mib * REGISTERED_MEMORY_FRACTION) - HOST_RESERVED_MEMORY_MIB
    memory = usable // per_instance
    engine_memory = memory - SIDECAR_MEMORY_MIB
    # NCCL and PyTorch dataloaders use /dev/shm; tensor parallelism needs more of it.
    shm = min(2048 * gpus, engine_memory // 4)
    gib = download_gib(model)
    startup = estimate_for_model(model, "ecs")
    volume = root_volume_gib or _round_up(ROOT_VOLUME_BASE_GIB + 1.2 * gib * per_instance, 10)
    return TaskShape(per_instance, cpu, memory, engine_memory, shm, gib, startup.task_seconds,
                     startup.container_seconds, volume)


def health_check_grace_seconds(shape: TaskShape) -> int:
    """ALB and container health checks are ignored this long after a task starts: the start-up
    model's task window (weights sync, load, warm-up, with its margin), in whole minutes."""
    return _round_up(shape.task_startup_seconds, 60)


def container_health_timing(shape: TaskShape) -> dict[str, int]:
    """Container health check timing that does not call a loading engine unhealthy:
    `startPeriod` (at most 300 s) + `interval` x `retries` covers the engine container's window
    as far as ECS's limits allow (3,300 s); past that the grace period covers the rest. Past
    600 s the interval grows instead of the retries."""
    need = shape.container_startup_seconds
    start = min(HEALTH_CHECK_START_PERIOD_MAX, need)
    rest = max(0, need - start)
    interval = min(HEALTH_CHECK_INTERVAL_MAX, max(30, math.ceil(rest / HEALTH_CHECK_RETRIES_MAX)))
    retries = min(HEALTH_CHECK_RETRIES_MAX, max(3, math.ceil(rest / interval)))
    return {"interval": interval, "timeout": 10, "retries": retries, "startPeriod": start}


def max_instances(replicas: int, shape: TaskShape) -> int:
    """Group ceiling: a rolling deploy runs up to 2x tasks (maximumPercent 200)."""
    return max(1, math.ceil(2 * replicas / shape.tasks_per_instance))


def spot_instance_types(model: Model) -> list[str]:
    """Types a Spot replica fits as well as on the sized type: same GPU count, at least its vCPUs
    and memory (so the task reservation fits), and the model fits the GPU memory. Cheapest
    first, the sized type always included."""
    chosen, request = model.instance, model.request

    def fits(inst: GpuInstance) -> bool:
        return (inst.gpu_count == chosen.gpu_count and inst.vcpus >= chosen.vcpus
                and inst.memory_mib >= chosen.memory_mib
                and inst.ec2_usd_per_hour <= SPOT_PRICE_CEILING * chosen.ec2_usd_per_hour
                # the task's engine arguments are the sized type's: they must hold here too
                and estimate_memory(request, inst, model.memory.engine).fits)

    others = sorted((i for i in GPU_INSTANCES.values() if i.name != chosen.name and fits(i)),
                    key=lambda i: i.ec2_usd_per_hour)
    return [chosen.name, *(i.name for i in others)][:SPOT_TYPES_MAX]


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)
