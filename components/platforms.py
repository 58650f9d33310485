"""The platform switch: one mapping from `llm-hosting:platform` to the component that builds it.

A platform is a `ComponentResource` built from `PlatformArgs` that exposes `exports`, the stack
outputs it owns (endpoint names, invoke commands). Nothing else in the program asks which platform
it is on. A platform whose issue has not landed yet is simply absent here, and config validation
reports "not built yet" instead of creating half a deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi

from components.config import StackConfig
from components.ecs.platform import EcsPlatform
from components.eks import EksPlatform
from components.network import (
    BASE_INTERFACE_ENDPOINTS,
    NODE_ACCESS_ENDPOINTS,
    SAGEMAKER_ENDPOINTS,
    Network,
)
from components.sagemaker.platform import SageMakerPlatform
from components.tags import Naming


@dataclass(frozen=True)
class PlatformArgs:
    config: StackConfig
    network: Network
    naming: Naming


class Platform(Protocol):
    exports: Mapping[str, Any]


PlatformFactory = Callable[[str, PlatformArgs, pulumi.ResourceOptions], Platform]

PLATFORMS: Mapping[str, PlatformFactory] = {
    "ecs": EcsPlatform,
    "eks": EksPlatform,
    "sagemaker": SageMakerPlatform,
}

PLATFORM_ENDPOINTS: Mapping[str, tuple[str, ...]] = {
    "ecs": (*BASE_INTERFACE_ENDPOINTS, *NODE_ACCESS_ENDPOINTS),
    "eks": (*BASE_INTERFACE_ENDPOINTS, *NODE_ACCESS_ENDPOINTS),
    "sagemaker": (*BASE_INTERFACE_ENDPOINTS, *SAGEMAKER_ENDPOINTS),
}
"""The VPC interface endpoints each platform's workloads call: EC2-hosted platforms need
Session Manager for their GPU hosts; SageMaker hosts are AWS-managed but its clients call the
SageMaker APIs from inside the VPC."""
