"""GPU instance catalog: the one place the program, the plan command and the policy pack read
GPU memory, GPU counts and hourly prices from.

Why a hand-kept table instead of calling the APIs at deploy time: ``pulumi preview``, the offline
``plan`` command and the policy pack must give the same answer without AWS credentials, and a
price that silently changes between two previews makes cost diffs meaningless. The table is
checked against the live APIs by ``scripts/refresh_facts.py`` (prints a diff, never rewrites
this file), and the SageMaker column is cross-checked against botocore's
``ProductionVariantInstanceType`` enum by ``tests/test_facts.py``.

Units follow the APIs the values come from, so a refresh diff is a straight comparison:

* ``gpu_memory_mib`` is per GPU, exactly as ``ec2:DescribeInstanceTypes`` reports
  ``GpuInfo.Gpus[].MemoryInfo.SizeInMiB``. It is *less* than the marketing number for some
  GPUs (A10G and L4 report 22,888 MiB, not 24 GiB; L40S reports 45,776 MiB, not 48 GiB) and
  sizing must use the reported value.
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GpuDeviceMemoryInfo.html
* prices are on-demand USD per instance-hour in us-east-1: EC2 Linux / shared tenancy, and
  SageMaker real-time inference ("Hosting") for the ``ml.`` form.
  https://aws.amazon.com/ec2/pricing/on-demand/ and https://aws.amazon.com/sagemaker/pricing/

Spec values were cross-checked against two independent DescribeInstanceTypes dumps: the
SkyPilot AWS catalog (github.com/skypilot-org/skypilot-catalog, catalogs/v7/aws/vms.csv,
GpuInfo column) and moto's bundled instance-type data (moto 5.x, generated from the EC2 API).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

#: ISO date the prices below were compiled (from price-list snapshots up to 2026-08). Re-run
#: ``scripts/refresh_facts.py`` against the live Pricing API and bump
#: this when you change a price.
PRICES_AS_OF = "2026-11-25"

_ML_PREFIX = "ml."


@dataclass(frozen=True)
class GpuModel:
    """One GPU model: the memory the serving engine can see and the roofline's bandwidth.

    ``visible_memory_gib`` is what ``torch.cuda.mem_get_info()`` reports as the device total
    (GiB, 2^30 bytes) under the data-centre driver: the number vLLM multiplies by
    ``--gpu-memory-utilization``. It is below both the marketing figure and EC2's
    ``SizeInMiB`` (ECC and the driver's reservation come off first), so sizing uses it and
    never ``GpuInstance.gpu_memory_mib``. Each value carries the published log it was read from.

    ``memory_bandwidth_gbps`` is the vendor's published peak memory bandwidth (GB/s, 10^9 bytes)
    per GPU. Decode is memory-bound, so this caps tokens/s; it is a peak, never a measurement.
    """

    name: str
    memory_bandwidth_gbps: float
    visible_memory_gib: float


# Peak memory bandwidth per GPU, from each GPU's NVIDIA product page / datasheet:
# T4    320 GB/s GDDR6     https://www.nvidia.com/en-us/data-center/tesla-t4/
# A10G  600 GB/s GDDR6     (AWS's variant of the A10)
#                          https://www.nvidia.com/en-us/data-center/products/a10-gpu/
# L4    300 GB/s GDDR6     https://www.nvidia.com/en-us/data-center/l4/
# L40S  864 GB/s GDDR6     https://www.nvidia.com/en-us/data-center/l40s/
# A100  1,555 GB/s (40GB SXM, HBM2) and 2,039 GB/s (80GB SXM, HBM2e)
#                          https://www.nvidia.com/en-us/data-center/a100/
# H100  3.35 TB/s (SXM, HBM3)   https://www.nvidia.com/en-us/data-center/h100/
# H200  4.8 TB/s (SXM, HBM3e)   https://www.nvidia.com/en-us/data-center/h200/
#
# Visible memory per GPU (torch.cuda.mem_get_info total, as vLLM logs it):
# T4        14.58 GiB  PyTorch's "GPU 0 has a total capacity of 14.58 GiB" on T4 (e.g. the vLLM
#                      T4 start-up OOM reports collected in public troubleshooting notes).
# A10G      22.06 GiB  "total capacity of 22.06 GiB" on g5.2xlarge in a public Ray campaign report;
#                      the 24 GB A10 logs vLLM's `total_gpu_memory (22.07GiB)` (oracle-samples/
#                      oci-data-science-ai-samples ai-quick-actions/troubleshooting-tips.md).
# L4        22.03 GiB  "NVIDIA L4 (22.03 GiB visible to PyTorch)" (public notebook log); issue 12
#                      measured 22.04-22.07 on 24 GB parts, so the lower figure is conservative.
# L40S      44.39 GiB  vLLM `total_gpu_memory (44.39GiB)` on g6e.48xlarge (gnosia93/vlm-
#                      distillation, tests/reference/vllm_memory_logs.csv row V1).
# A100-40GB 39.39 GiB  vLLM `total_gpu_memory (39.39GiB)` on p4d (LMI container log, public).
# A100-80GB 79.15 GiB  PyTorch "total capacity of 79.15 GiB" on A100-SXM4-80GB (many public
#                      OOM reports).
# H100      79.19 GiB  vLLM 0.19 `total_memory=79.19GiB` on p5.48xlarge (llm-d-incubation/
#                      llm-d-planner accuracy/results/v0.19.0/logs, every H100 run).
# H200     139.57 GiB  not read from a log: EC2's 144,384 MiB less the same share the H100
#                      loses (79.19 of 80 GiB). Marked derived; refresh it from
#                      a p5en start-up log when one is published.
T4 = GpuModel("T4", 320.0, 14.58)
A10G = GpuModel("A10G", 600.0, 22.06)
L4 = GpuModel("L4", 300.0, 22.03)
L40S = GpuModel("L40S", 864.0, 44.39)
A100_40GB = GpuModel("A100-40GB", 1555.0, 39.39)
A100_80GB = GpuModel("A100-80GB", 2039.0, 79.15)
H100 = GpuModel("H100", 3350.0, 79.19)
H200 = GpuModel("H200", 4800.0, 139.57)

GPU_MODELS: Mapping[str, GpuModel] = MappingProxyType(
    {g.name: g for g in (T4, A10G, L4, L40S, A100_40GB, A100_80GB, H100, H200)}
)


@dataclass(frozen=True)
class GpuInstance:
    """One EC2 GPU instance type with its SageMaker twin (``ml.<name>``), if SageMaker sells it.

    ``sagemaker_usd_per_hour is None`` means SageMaker real-time inference does not offer the
    type; a test keeps that in step with botocore's ``ProductionVariantInstanceType`` enum.
    """

    name: str
    family: str
    gpu: GpuModel
    gpu_count: int
    gpu_memory_mib: int
    vcpus: int
    memory_mib: int
    ec2_usd_per_hour: float
    sagemaker_usd_per_hour: float | None

    @property
    def total_gpu_memory_mib(self) -> int:
        """All GPUs together, as DescribeInstanceTypes ``GpuInfo.TotalGpuMemoryInMiB``."""
        return self.gpu_memory_mib * self.gpu_count

    @property
    def gpu_memory_gib(self) -> float:
        """Per-GPU memory as EC2 reports it, in GiB (2^30 bytes); what Karpenter labels."""
        return self.gpu_memory_mib / 1024

    @property
    def visible_memory_gib(self) -> float:
        """Per-GPU memory the serving engine sees (the GPU model's driver-visible total)."""
        return self.gpu.visible_memory_gib

    @property
    def sagemaker_name(self) -> str | None:
        """``ml.g5.2xlarge`` for ``g5.2xlarge``; ``None`` when SageMaker does not offer it."""
        return f"{_ML_PREFIX}{self.name}" if self.offered_on_sagemaker else None

    @property
    def offered_on_sagemaker(self) -> bool:
        """True when SageMaker real-time inference sells this type."""
        return self.sagemaker_usd_per_hour is not None


# (size, gpu_count, vcpus, host memory GiB, EC2 $/h, SageMaker hosting $/h or None)
_Row = tuple[str, int, int, int, float, float | None]


def _family(family: str, gpu: GpuModel, gpu_memory_mib: int, rows: Iterable[_Row]) -> list[
    GpuInstance
]:
    """Expand one family's rows; every size in a family carries the same GPU model."""
    return [
        GpuInstance(
            name=f"{family}.{size}",
            family=family,
            gpu=gpu,
            gpu_count=gpu_count,
            gpu_memory_mib=gpu_memory_mib,
            vcpus=vcpus,
            memory_mib=memory_gib * 1024,
            ec2_usd_per_hour=ec2,
            sagemaker_usd_per_hour=sagemaker,
        )
        for size, gpu_count, vcpus, memory_gib, ec2, sagemaker in rows
    ]


# SageMaker column: real-time inference ("Hosting") prices from the SageMaker price list. For
# G families AWS applies a uniform markup (1.4x EC2 on xlarge, 1.25x on larger sizes); the
# g6.16xlarge and g6e.16xlarge entries follow it and were not read directly.
_INSTANCES: list[GpuInstance] = [
    # G4dn (NVIDIA T4). https://aws.amazon.com/ec2/instance-types/g4/
    # SageMaker does not sell g4dn.metal (absent from ProductionVariantInstanceType).
    *_family("g4dn", T4, 16384, [
        ("xlarge", 1, 4, 16, 0.526, 0.7364),
        ("2xlarge", 1, 8, 32, 0.752, 0.94),
        ("4xlarge", 1, 16, 64, 1.204, 1.505),
        ("8xlarge", 1, 32, 128, 2.176, 2.72),
        ("16xlarge", 1, 64, 256, 4.352, 5.44),
        ("12xlarge", 4, 48, 192, 3.912, 4.89),
        ("metal", 8, 96, 384, 7.824, None),
    ]),
    # G5 (NVIDIA A10G). https://aws.amazon.com/ec2/instance-types/g5/
    *_family("g5", A10G, 22888, [
        ("xlarge", 1, 4, 16, 1.006, 1.408),
        ("2xlarge", 1, 8, 32, 1.212, 1.515),
        ("4xlarge", 1, 16, 64, 1.624, 2.03),
        ("8xlarge", 1, 32, 128, 2.448, 3.06),
        ("16xlarge", 1, 64, 256, 4.096, 5.12),
        ("12xlarge", 4, 48, 192, 5.672, 7.09),
        ("24xlarge", 4, 96, 384, 8.144, 10.18),
        ("48xlarge", 8, 192, 768, 16.288, 20.36),
    ]),
    # G6 (NVIDIA L4). https://aws.amazon.com/ec2/instance-types/g6/
    *_family("g6", L4, 22888, [
        ("xlarge", 1, 4, 16, 0.8048, 1.1267),
        ("2xlarge", 1, 8, 32, 0.9776, 1.222),
        ("4xlarge", 1, 16, 64, 1.3232, 1.654),
        ("8xlarge", 1, 32, 128, 2.0144, 2.518),
        ("16xlarge", 1, 64, 256, 3.3968, 4.246),
        ("12xlarge", 4, 48, 192, 4.6016, 5.752),
        ("24xlarge", 4, 96, 384, 6.6752, 8.344),
        ("48xlarge", 8, 192, 768, 13.3504, 16.688),
    ]),
    # G6e (NVIDIA L40S). https://aws.amazon.com/ec2/instance-types/g6e/
    *_family("g6e", L40S, 45776, [
        ("xlarge", 1, 4, 32, 1.861, 2.61),
        ("2xlarge", 1, 8, 64, 2.24208, 2.80),
        ("4xlarge", 1, 16, 128, 3.00424, 3.76),
        ("8xlarge", 1, 32, 256, 4.52856, 5.6607),
        ("16xlarge", 1, 64, 512, 7.57719, 9.4715),
        ("12xlarge", 4, 48, 384, 10.49264, 13.12),
        ("24xlarge", 4, 96, 768, 15.06559, 18.83),
        ("48xlarge", 8, 192, 1536, 30.13118, 37.66),
    ]),
    # P4d (8x A100 40GB) and P4de (8x A100 80GB). https://aws.amazon.com/ec2/instance-types/p4/
    # P5 (H100; p5.4xlarge is the single-GPU size) and P5en (8x H200).
    # https://aws.amazon.com/ec2/instance-types/p5/
    #
    # EC2 prices are the CURRENT ones, after AWS's June 2025 on-demand price reduction for
    # P4d/P4de/P5/P5en (AWS What's New, June 2025, "Announcing up to 45% price reduction for
    # Amazon EC2 NVIDIA GPU-accelerated instances"): p4d 32.7726 -> 21.957642,
    # p4de 40.96575 -> 27.44705, p5.48xlarge 98.32 -> 55.04, p5en.48xlarge 63.296,
    # p5.4xlarge 6.88 (= 55.04 / 8). Pre-cut values: SkyPilot catalog (see module docstring).
    #
    # SageMaker hosting prices for P-types carry a 1.15x markup over EC2 after the same cut
    # (ml.p4d.24xlarge 25.251286, ml.p5.48xlarge 63.296 as read from the price list). The
    # ml.p4de / ml.p5.4xlarge / ml.p5en values below apply that same 1.15x and are NOT read
    # from the price list: confirm them with `scripts/refresh_facts.py` before relying on them.
    #
    # p5e.48xlarge is deliberately absent: it has no public EC2 on-demand price in us-east-1
    # (Capacity Blocks / Savings Plans only), so it cannot be costed like the rest.
    *_family("p4d", A100_40GB, 40960, [("24xlarge", 8, 96, 1152, 21.957642, 25.251286)]),
    *_family("p4de", A100_80GB, 81920, [("24xlarge", 8, 96, 1152, 27.44705, 31.564108)]),
    *_family("p5", H100, 81920, [
        ("4xlarge", 1, 16, 256, 6.88, 7.912),
        ("48xlarge", 8, 192, 2048, 55.04, 63.296),
    ]),
    *_family("p5en", H200, 144384, [("48xlarge", 8, 192, 2048, 63.296, 72.7904)]),
]

GPU_INSTANCES: Mapping[str, GpuInstance] = MappingProxyType({i.name: i for i in _INSTANCES})

#: Families this catalog covers completely (every size AWS sells), in catalog order.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(i.family for i in _INSTANCES))


def get_gpu_instance(name: str) -> GpuInstance | None:
    """Look up ``g5.2xlarge`` or its SageMaker spelling ``ml.g5.2xlarge``.

    An ``ml.`` name only resolves when SageMaker actually offers the type, so
    ``get_gpu_instance("ml.g4dn.metal")`` is ``None`` while ``"g4dn.metal"`` resolves.
    """
    if name.startswith(_ML_PREFIX):
        instance = GPU_INSTANCES.get(name[len(_ML_PREFIX):])
        return instance if instance is not None and instance.offered_on_sagemaker else None
    return GPU_INSTANCES.get(name)


def price_per_hour(instance: GpuInstance, pricing: Literal["ec2", "sagemaker"]) -> float | None:
    """On-demand USD/hour for the platform that bills it; ``None`` if SageMaker lacks the type."""
    match pricing:
        case "ec2":
            return instance.ec2_usd_per_hour
        case "sagemaker":
            return instance.sagemaker_usd_per_hour
    raise ValueError(f"pricing must be 'ec2' or 'sagemaker', got {pricing!r}")
