"""Karpenter objects for one model, as plain dicts: the GPU `NodePool` and its `EC2NodeClass`.

Sizing decides what a pool may launch. For a model, the candidate instances are the catalog
types on which one replica fits (`components.sizing.estimate_memory`) and whose price per
replica is within `instancePriceRatio` of the sized choice. The NodePool then requires the
candidates' instance *families* (the catalog covers every size of a family, and per-GPU memory
is uniform within a family), their GPU-count range, a per-GPU memory floor computed from the
sizing result, and the candidate instance types themselves (a family also holds sizes far above
the price ratio, e.g. g6e.16xlarge at 4x g6e.xlarge for the same single GPU; the policy pack
prices a pool by the priciest type it admits), using Karpenter's well-known labels:
https://karpenter.sh/docs/reference/instance-types/ (`karpenter.k8s.aws/instance-gpu-memory` is
MiB per GPU, as `ec2:DescribeInstanceTypes` reports it). A 70B FP16 replica therefore can only
get instances whose GPUs hold it, and an 8B model never asks for p5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from components.config import EksConfig, Model
from components.eks.labels import GPU_RESOURCE, GPU_TAINT, gpu_node_labels, node_pool_name
from components.facts import GPU_INSTANCES, GpuInstance
from components.facts.charts import AL2023_AMI_ALIAS, BOTTLEROCKET_AMI_ALIAS
from components.sizing import estimate_memory
from components.tags import serving_descriptor

CONSOLIDATE_AFTER = "30m"
"""How long a node must stay empty/underutilized before Karpenter consolidates it. A replica
takes ~10 minutes to pull a 10-20 GB image and load weights; 30 minutes (3x that) keeps a
scale-in/scale-out cycle from throwing away a freshly loaded replica.
https://karpenter.sh/docs/concepts/disruption/#consolidation"""

DISRUPTION_BUDGET = "10%"
"""At most 10% of a pool's nodes are voluntarily disrupted at once; Karpenter rounds a
percentage up, so small pools still move one node at a time, never more.
https://karpenter.sh/docs/concepts/disruption/#nodepool-disruption-budgets"""

EXPIRE_AFTER = "720h"
"""Nodes are replaced after 30 days so AMI and kernel patches land even without drift."""

TERMINATION_GRACE_PERIOD = "1h"
"""Upper bound on draining a node (PDB-blocked pods are evicted after it), far above a
serving pod's own grace period for in-flight streams."""

ROOT_VOLUME_IOPS = 6000
ROOT_VOLUME_THROUGHPUT_MIBPS = 1000
"""gp3 provisioned for image pulls: 1,000 MiB/s is gp3's ceiling in the Karpenter API and needs
>= 4,000 IOPS (0.25 MiB/s per IOPS). SOCI parallel unpack is disk-throughput bound; the default
125 MiB/s would turn a 20 GB pull into minutes of I/O wait.
https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html#gp3-ebs-volume-type"""

SNAPSHOT_INITIALIZATION_RATE_MIBPS = 300
"""Provisioned rate for restoring the image snapshot (EBS maximum): without it, blocks load
lazily from S3 on first read and the 'pre-pulled' image starts slower than a pull.
https://docs.aws.amazon.com/ebs/latest/userguide/initalize-volume.html"""

BOTTLEROCKET_OS_VOLUME_GIB = 4
"""Bottlerocket's OS volume; images and the model cache live on the data volume."""

IMDS_HOP_LIMIT = 1
"""IMDSv2 with hop limit 1: only host-network pods (VPC CNI, kube-proxy, Pod Identity agent,
device plugin) reach instance metadata. Serving pods get credentials from Pod Identity and
need no IMDS. https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-existing-instances.html"""

NODE_CLASS_API = "karpenter.k8s.aws/v1"
NODE_POOL_API = "karpenter.sh/v1"

AmiFamily = Literal["AL2023", "Bottlerocket"]


@dataclass(frozen=True)
class GpuRequirements:
    """What a model's pool may launch, derived from the sizing result."""

    families: tuple[str, ...]
    categories: tuple[str, ...]
    min_gpus: int
    max_gpus: int
    min_gpu_memory_mib: int
    candidates: tuple[str, ...]

    def admits(self, instance: GpuInstance) -> bool:
        """Would the NodePool's requirements let Karpenter launch `instance`?"""
        return (
            instance.name in self.candidates
            and instance.family in self.families
            and _category(instance.family) in self.categories
            and self.min_gpus <= instance.gpu_count <= self.max_gpus
            and instance.gpu_memory_mib >= self.min_gpu_memory_mib
        )



def _price_per_replica(instance: GpuInstance, gpus_per_replica: int) -> float:
    return instance.ec2_usd_per_hour / (instance.gpu_count // gpus_per_replica)


def gpu_candidates(model: Model, price_ratio: float) -> tuple[GpuInstance, ...]:
    """Catalog instances one replica fits on, within `price_ratio` of the sized instance's
    price per replica, with no more GPUs than the sized instance (or the replica) needs.

    The GPU-count cap keeps Karpenter from bin-packing several pending replicas onto one large
    instance (an 8-GPU p4d for eight 8B replicas): one replica per node unless the sized
    instance itself packs more, so a spot reclaim or node failure costs one replica. A pinned
    `instanceType` is honoured exactly (reservations, quotas).
    """
    if model.spec.instance_type is not None:
        return (model.instance,)
    request = model.request
    tp = request.gpus_per_replica
    ceiling = _price_per_replica(model.instance, tp) * price_ratio
    max_gpus = max(tp, model.instance.gpu_count)
    found = [
        inst for inst in GPU_INSTANCES.values()
        if tp <= inst.gpu_count <= max_gpus
        # the pod's vLLM arguments are the sized instance's: they must hold on every type
        and estimate_memory(request, inst, model.memory.engine).fits
        and _price_per_replica(inst, tp) <= ceiling + 1e-9
    ]
    return tuple(sorted(found, key=lambda i: (_price_per_replica(i, tp), i.name)))


def _category(family: str) -> str:
    """EC2 instance category: the family's leading letter (`g6e` -> `g`, `p5en` -> `p`)."""
    return family[0]


def gpu_requirements(model: Model, price_ratio: float) -> GpuRequirements:
    candidates = gpu_candidates(model, price_ratio)
    families = tuple(dict.fromkeys(i.family for i in candidates))
    # Per-GPU memory a replica needs, before vLLM's utilization cap (sizing works on the capped
    # budget): the floor any launched GPU must meet. Sizing counts driver-visible memory, which
    # is below the EC2 figure Karpenter labels, so this floor never excludes a GPU that fits.
    needed = (model.memory.required_gib_per_gpu * 1024
              / model.memory.engine.gpu_memory_utilization)
    return GpuRequirements(
        families=families,
        categories=tuple(sorted({_category(f) for f in families})),
        min_gpus=model.gpus_per_replica,
        max_gpus=max(i.gpu_count for i in candidates),
        min_gpu_memory_mib=math.ceil(needed),
        candidates=tuple(i.name for i in candidates),
    )


def gpu_limit(model: Model, cfg: EksConfig) -> int:
    """GPUs the model's pool may run at once: the cost ceiling. Default: one replica above
    `maxReplicas` (a rolling update's surge), which also lets Karpenter stand in for the whole
    managed floor during a spot reclaim or a node-group AMI update."""
    if cfg.max_gpus_per_model is not None:
        return cfg.max_gpus_per_model
    return (model.spec.replicas_max + 1) * model.gpus_per_replica


def cpu_limit(model: Model, cfg: EksConfig, req: GpuRequirements) -> int:
    """vCPUs matching the GPU ceiling on the most CPU-heavy admitted instance per GPU."""
    admitted = [i for i in GPU_INSTANCES.values() if req.admits(i)]
    per_gpu = max(i.vcpus / i.gpu_count for i in admitted)
    return math.ceil(gpu_limit(model, cfg) * per_gpu)


def capacity_types(model: Model) -> list[str]:
    """`spot` models may fall back to on-demand inside the same pool: Karpenter prefers spot
    (price-capacity-optimized) and launches on-demand when spot is unavailable.
    https://karpenter.sh/docs/concepts/nodepools/#spectemplatespecrequirements"""
    return ["spot", "on-demand"] if model.spec.capacity == "spot" else ["on-demand"]


def node_pool(model: Model, cfg: EksConfig) -> dict[str, Any]:
    """The model's GPU NodePool (karpenter.sh/v1)."""
    req = gpu_requirements(model, cfg.instance_price_ratio)
    name = node_pool_name(model.name)
    return {
        "apiVersion": NODE_POOL_API,
        "kind": "NodePool",
        "metadata": {
            "name": name,
            "labels": {"llm-hosting/model": model.name},
            # What the pool serves, for the policy pack's fit and cost checks.
            "annotations": serving_descriptor(model, "eks"),
        },
        "spec": {
            "template": {
                "metadata": {"labels": gpu_node_labels(model.name)},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name,
                    },
                    "requirements": [
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": capacity_types(model)},
                        {"key": "karpenter.k8s.aws/instance-category", "operator": "In",
                         "values": list(req.categories)},
                        {"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                         "values": list(req.families)},
                        {"key": "node.kubernetes.io/instance-type", "operator": "In",
                         "values": list(req.candidates)},
                        {"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "In",
                         "values": ["nvidia"]},
                        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt",
                         "values": [str(req.min_gpus - 1)]},
                        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt",
                         "values": [str(req.max_gpus + 1)]},
                        {"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gt",
                         "values": [str(req.min_gpu_memory_mib - 1)]},
                    ],
                    "taints": [dict(GPU_TAINT)],
                    "expireAfter": EXPIRE_AFTER,
                    "terminationGracePeriod": TERMINATION_GRACE_PERIOD,
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": CONSOLIDATE_AFTER,
                "budgets": [{"nodes": DISRUPTION_BUDGET}],
            },
            "limits": {
                GPU_RESOURCE: str(gpu_limit(model, cfg)),
                "cpu": str(cpu_limit(model, cfg, req)),
            },
        },
    }


def ami_family(cfg: EksConfig) -> AmiFamily:
    return "Bottlerocket" if cfg.cold_start == "bottlerocket-snapshot" else "AL2023"


FAST_IMAGE_PULL_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  featureGates:
    FastImagePull: true

--//--
"""
"""nodeadm config turning on SOCI parallel pull/unpack on AL2023 (merged with the NodeConfig
Karpenter or the managed node group writes). nodeadm ignores it on instances below its CPU and
memory threshold, which no GPU instance is. It is marked experimental by the EKS AMI project.
https://aws.amazon.com/blogs/containers/introducing-seekable-oci-parallel-pull-mode-for-amazon-eks/"""


def block_device_mappings(cfg: EksConfig) -> list[dict[str, Any]]:
    """Karpenter `blockDeviceMappings` for GPU nodes in the configured cold-start mode."""
    data: dict[str, Any] = {
        "volumeSize": f"{cfg.gpu_root_volume_gib}Gi",
        "volumeType": "gp3",
        "iops": ROOT_VOLUME_IOPS,
        "throughput": ROOT_VOLUME_THROUGHPUT_MIBPS,
        "deleteOnTermination": True,
    }
    if cfg.cold_start == "soci-parallel-pull":
        return [{"deviceName": "/dev/xvda", "rootVolume": True,
                 "ebs": {**data, "encrypted": True}}]
    # Bottlerocket: small OS volume; the data volume (images, model cache) is restored from the
    # snapshot that holds the serving image. A volume from a snapshot takes the snapshot's
    # encryption (EC2 rejects an explicit `encrypted` with a snapshot), so the snapshot must be
    # encrypted - docs/eks.md.
    return [
        {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {
            "volumeSize": f"{BOTTLEROCKET_OS_VOLUME_GIB}Gi", "volumeType": "gp3",
            "encrypted": True, "deleteOnTermination": True,
        }},
        {"deviceName": "/dev/xvdb", "ebs": {
            **data,
            "snapshotID": cfg.image_snapshot_id,
            "volumeInitializationRate": SNAPSHOT_INITIALIZATION_RATE_MIBPS,
        }},
    ]


def ec2_node_class(
    model: Model,
    cfg: EksConfig,
    *,
    cluster_name: str,
    instance_profile: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The model's EC2NodeClass (karpenter.k8s.aws/v1): pinned GPU AMI, private subnets and the
    cluster security group found by the discovery tag, IMDSv2, an encrypted gp3 volume sized and
    provisioned for 10-20 GB images, and the model's serving tags on every instance/volume."""
    family = ami_family(cfg)
    discovery = [{"tags": {"karpenter.sh/discovery": cluster_name}}]
    spec: dict[str, Any] = {
        "amiFamily": family,
        "amiSelectorTerms": [
            {"alias": AL2023_AMI_ALIAS if family == "AL2023" else BOTTLEROCKET_AMI_ALIAS},
        ],
        "instanceProfile": instance_profile,
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
        "associatePublicIPAddress": False,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
            "httpTokens": "required",
        },
        "blockDeviceMappings": block_device_mappings(cfg),
        "detailedMonitoring": True,
        "tags": dict(tags),
    }
    if family == "AL2023":
        spec["userData"] = FAST_IMAGE_PULL_USER_DATA
    return {
        "apiVersion": NODE_CLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": node_pool_name(model.name)},
        "spec": spec,
    }
