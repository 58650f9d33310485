"""The platform switch: one mapping from `llm-hosting:platform` to the platform that builds it.

The only module that names every platform package. Each entry is the platform's contract
(`components.platform_api.PlatformSpec`): the component class, the config check that runs during
validation, and the VPC interface endpoints its workloads call. Nothing else in the program asks
which platform it is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from components.config import StackConfig, parse_stack_config
from components.ecs.demand import capacity_demand as ecs_demand
from components.ecs.gateway import gateway_problems
from components.ecs.platform import EcsPlatform
from components.ecs.sharing import ecs_problems
from components.eks import EksPlatform
from components.eks.demand import capacity_demand as eks_demand
from components.eks.validation import eks_problems
from components.network import (
    BASE_INTERFACE_ENDPOINTS,
    NODE_ACCESS_ENDPOINTS,
    SAGEMAKER_ENDPOINTS,
)
from components.platform_api import (
    CapacityDemand,
    ConfigCheck,
    PlatformArgs,
    PlatformSpec,
)
from components.sagemaker.demand import capacity_demand as sagemaker_demand
from components.sagemaker.platform import SageMakerPlatform
from components.sagemaker.validation import sagemaker_problems

__all__ = ["CAPACITY_DEMANDS", "CONFIG_CHECKS", "PLATFORMS", "PlatformArgs", "parse_config"]

PLATFORMS: Mapping[str, PlatformSpec] = {
    # EC2-hosted platforms need Session Manager for their GPU hosts; SageMaker hosts are
    # AWS-managed but its clients call the SageMaker APIs from inside the VPC.
    "ecs": PlatformSpec(
        EcsPlatform, lambda c: ecs_problems(c) + gateway_problems(c),
        (*BASE_INTERFACE_ENDPOINTS, *NODE_ACCESS_ENDPOINTS),
        capacity_demand=ecs_demand,
    ),
    "eks": PlatformSpec(
        EksPlatform, eks_problems, (*BASE_INTERFACE_ENDPOINTS, *NODE_ACCESS_ENDPOINTS),
        load_balancer_subnets=True,
        capacity_demand=eks_demand,
    ),
    "sagemaker": PlatformSpec(
        SageMakerPlatform, sagemaker_problems, (*BASE_INTERFACE_ENDPOINTS, *SAGEMAKER_ENDPOINTS),
        capacity_demand=sagemaker_demand,
    ),
}

CONFIG_CHECKS: Mapping[str, ConfigCheck] = {
    name: spec.config_check for name, spec in PLATFORMS.items()
}

CAPACITY_DEMANDS: Mapping[str, CapacityDemand] = {
    name: spec.capacity_demand for name, spec in PLATFORMS.items()
}
"""Per platform: the instances it may run for a config (read by the quota preflight)."""


def parse_config(
    raw: Mapping[str, Any], *, project: str, stack: str, secret_keys: Iterable[str] = (),
    hf_token_secret: Any = None,
) -> StackConfig:
    """`parse_stack_config` with every platform's own check: what `pulumi up` validates."""
    return parse_stack_config(
        raw, project=project, stack=stack, secret_keys=secret_keys,
        platform_checks=CONFIG_CHECKS, hf_token_secret=hf_token_secret,
    )
