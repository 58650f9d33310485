"""Stable node labels, taints and selectors that workloads use to find GPU capacity.

These are *our* names, set identically on Karpenter NodePools and on the managed GPU node
groups, so a Deployment selecting `llm-hosting/model=<name>` lands on either and keeps working
when a NodePool is renamed or a node group replaced. Part 2 (serving) imports them from here.
"""

from __future__ import annotations

from typing import Literal

MODEL_LABEL = "llm-hosting/model"
"""Node label naming the model a GPU node is provisioned for (value: the model's `name`)."""

NODE_ROLE_LABEL = "llm-hosting/node-role"
"""`system` for the on-demand controller nodes, `gpu` for model-serving nodes."""

NodeRole = Literal["system", "gpu"]

GPU_RESOURCE = "nvidia.com/gpu"
"""Extended resource the NVIDIA device plugin advertises; pods request it in `limits`."""

GPU_TAINT_KEY = GPU_RESOURCE
GPU_TAINT: dict[str, str] = {"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}
"""Keeps everything that does not tolerate it (CoreDNS, Karpenter, monitoring) off GPU nodes."""

GPU_TOLERATION: dict[str, str] = {
    "key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule",
}
"""The toleration serving pods and GPU DaemonSets (device plugin, DCGM exporter) carry."""


def node_pool_name(model: str) -> str:
    """The Karpenter NodePool (and EC2NodeClass) name for one model: `llm-<model>`."""
    return f"llm-{model}"


def gpu_node_labels(model: str) -> dict[str, str]:
    """Labels every GPU node for `model` carries, whichever mechanism launched it."""
    return {MODEL_LABEL: model, NODE_ROLE_LABEL: "gpu"}


def gpu_node_selector(model: str) -> dict[str, str]:
    """`nodeSelector` for a model's serving pods (pair it with `GPU_TOLERATION`)."""
    return gpu_node_labels(model)


SYSTEM_NODE_LABELS: dict[str, str] = {NODE_ROLE_LABEL: "system"}
"""Labels of the system node group; controllers select them with `nodeSelector`."""
