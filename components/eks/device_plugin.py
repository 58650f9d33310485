"""The NVIDIA device plugin: advertises `nvidia.com/gpu` so pods can request GPUs.

Installed from its pinned Helm chart onto GPU nodes only: it tolerates the GPU taint and
selects our stable `llm-hosting/node-role=gpu` label. The chart's default affinity expects
labels from Node Feature Discovery, which this cluster does not run, so it is replaced.
Not installed for Bottlerocket GPU nodes, whose NVIDIA variants run their own device plugin.
https://github.com/NVIDIA/k8s-device-plugin#deployment-via-helm
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.eks.labels import GPU_TOLERATION, NODE_ROLE_LABEL
from components.facts.charts import (
    NVIDIA_DEVICE_PLUGIN_CHART,
    NVIDIA_DEVICE_PLUGIN_REPO,
    NVIDIA_DEVICE_PLUGIN_VERSION,
)


def device_plugin_values() -> dict[str, Any]:
    """Helm values: GPU nodes only, node-critical priority, fail loudly if NVML is missing."""
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{
                        "matchExpressions": [
                            {"key": NODE_ROLE_LABEL, "operator": "In", "values": ["gpu"]},
                        ],
                    }],
                },
            },
        },
        "tolerations": [dict(GPU_TOLERATION),
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "failOnInitError": True,
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }


class DevicePlugin(pulumi.ComponentResource):
    """One Helm release of the NVIDIA device plugin chart."""

    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__("llm-hosting:eks:DevicePlugin", name, None, opts)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="nvidia-device-plugin",
            chart=NVIDIA_DEVICE_PLUGIN_CHART,
            version=NVIDIA_DEVICE_PLUGIN_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=NVIDIA_DEVICE_PLUGIN_REPO),
            namespace="kube-system",
            atomic=True,
            cleanup_on_fail=True,
            max_history=10,
            values=device_plugin_values(),
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=list(depends_on)),
        )
        self.register_outputs({"status": self.release.status})
