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
from components.sizing import GIB, estimate_memory, weight_bytes

HOST_RESERVED_MEMORY_MIB = 1024
"""`ECS_RESERVED_MEMORY`: kept from tasks for Docker, the ECS agent and the CloudWatch agent.
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/memory-management.html"""

REGISTERED_MEMORY_FRACTION = 0.92
"""The agent registers MemTotal (what the kernel leaves of the nominal size, ~94-97% on
G/P instances) minus `ECS_RESERVED_MEMORY`; 92% keeps every catalog type on the safe side."""

SIDECAR_MEMORY_MIB = 768
"""Reserved for the weights init container (512) and the metrics collector (256)."""

SPOT_PRICE_CEILING = 2.0
"""A Spot alternative may cost at most 2x the sized type's on-demand rate: capacity-optimized
allocation ignores price, and a p5 is never a sensible fallback for an 8B model."""

SPOT_TYPES_MAX = 6
"""Instance types offered to a Spot group: enough pools for capacity-optimized allocation to
find GPUs, few enough that every one is a reviewed fit. https://docs.aws.amazon.com/autoscaling/
ec2/userguide/ec2-auto-scaling-mixed-instances-groups.html"""

ENGINE_START_SECONDS = 180
"""CUDA init, weight load into HBM, CUDA-graph capture / torch.compile of a 7-70B model."""

DOWNLOAD_GIB_PER_SECOND = 0.2
"""Conservative single-task rate for S3 (gateway endpoint, `aws s3 sync`) and the HF Hub (NAT)."""

MIN_STARTUP_SECONDS = 600
"""Shortest start-up allowance for any serving container: the figure AWS uses for LLM containers
on SageMaker, and the policy pack's `llm-startup-timeouts` floor.
https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-hosting.html"""

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
    load_seconds: int
    root_volume_gib: int


def download_gib(model: Model) -> float:
    """Checkpoint bytes fetched per replica: fp8 is quantized at load from a 16-bit checkpoint."""
    quant = model.spec.quantization
    on_disk = "none" if quant in ("none", "fp8") else quant
    return weight_bytes(model.shape, on_disk) / GIB


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
    load = ENGINE_START_SECONDS + math.ceil(gib / DOWNLOAD_GIB_PER_SECOND)
    volume = root_volume_gib or _round_up(ROOT_VOLUME_BASE_GIB + 1.2 * gib * per_instance, 10)
    return TaskShape(per_instance, cpu, memory, engine_memory, shm, gib, load, volume)


def health_check_grace_seconds(shape: TaskShape) -> int:
    """ALB health checks are ignored this long after a task starts: download + load, x1.5."""
    return max(MIN_STARTUP_SECONDS, _round_up(shape.load_seconds * 1.5, 60))


def container_health_timing(shape: TaskShape) -> dict[str, int]:
    """Container health check timing that never kills a loading engine: startPeriod (ECS caps it
    at 300 s) + interval x retries (at most 10) covers the whole load estimate, and at least
    `MIN_STARTUP_SECONDS`. Past 600 s the interval grows instead of the retries.
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html"""
    need = max(MIN_STARTUP_SECONDS, shape.load_seconds)
    start = 300
    interval = max(30, math.ceil((need - start) / 10))
    retries = min(10, max(3, math.ceil((need - start) / interval)))
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
