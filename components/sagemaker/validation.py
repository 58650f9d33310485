"""`sagemaker_problems`: what only the sagemaker platform can reject, with key paths and numbers.

Called on a parsed `StackConfig` (sizing already ran), so it sees instance types and memory
estimates. Every message names the config key to change and the numbers that do not fit.
"""

from __future__ import annotations

import re

from components.config import NAMESPACE, StackConfig
from components.facts.images import SAGEMAKER_IMAGES
from components.sagemaker.api import sagemaker_instance_types
from components.sagemaker.packing import (
    MAX_PRODUCTION_VARIANTS,
    plan_variants,
    usable_host_mib,
)

_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")


def sagemaker_problems(config: StackConfig) -> list[str]:
    """Problems of a parsed sagemaker stack; [] for other platforms or a valid stack."""
    if config.platform != "sagemaker":
        return []
    problems: list[str] = []
    index = {m.name: i for i, m in enumerate(config.models)}
    offered = sagemaker_instance_types()
    sm = config.sagemaker
    p = f"{NAMESPACE}:sagemaker"

    for model in config.models:
        mp = f"{NAMESPACE}:models[{index[model.name]}]"
        ml_name = f"ml.{model.instance.name}"
        if ml_name not in offered:
            problems.append(
                f"{mp}.instanceType: SageMaker does not offer {ml_name} (not in botocore's "
                "ProductionVariantInstanceType enum); pick another instance type"
            )
        image = SAGEMAKER_IMAGES[model.spec.engine]
        if config.region not in image.accounts:
            regions = ", ".join(sorted(image.accounts))
            problems.append(
                f"{mp}.engine: the {image.repository} DLC for engine '{model.spec.engine}' is "
                f"not published in {config.region}; use another engine or one of: {regions}"
            )

    plans = plan_variants(config)
    if len(plans) > MAX_PRODUCTION_VARIANTS:
        problems.append(
            f"{NAMESPACE}:models: {len(plans)} different instance types need {len(plans)} "
            f"production variants; one endpoint takes at most {MAX_PRODUCTION_VARIANTS}"
        )
    if sm.endpoint_deployment == "rolling" and len(plans) > 1:
        # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html:
        # "If you're doing a rolling deployment ... Multi-variant inference endpoints" are
        # excluded, and the update would fall back to all-at-once blue/green without alarms.
        problems.append(
            f"{p}.endpointDeployment: 'rolling' is not available for an endpoint with several "
            f"production variants, and these models need {len(plans)} instance types "
            f"({', '.join(plan.instance_type for plan in plans)}); use 'blueGreen' or size "
            "every model onto one instance type"
        )
    for plan in plans:
        for placement in plan.placements:
            mp = f"{NAMESPACE}:models[{index[placement.model.name]}]"
            if placement.copies_per_instance == 0:
                problems.append(
                    f"{mp}: one copy of {placement.model.name} needs {placement.host_need_mib} "
                    f"MiB of host memory but {plan.instance_type} has "
                    f"{usable_host_mib(plan.instance)} MiB usable; choose a larger instanceType"
                )
        if sm.max_instance_count is not None and plan.needed_max_instances > plan.max_instances:
            copies = ", ".join(
                f"{pl.model.name} {pl.max_copies} x {pl.gpus} GPU" for pl in plan.placements
            )
            problems.append(
                f"{p}.maxInstanceCount: {sm.max_instance_count} instance(s) of "
                f"{plan.instance_type} ({plan.instance.gpu_count} GPU each) cannot hold the "
                f"maxReplicas copies ({copies}): they need {plan.needed_max_instances}; raise "
                "maxInstanceCount or lower maxReplicas"
            )

    if sm.data_capture_percent > 0 and sm.data_capture_s3_uri is None:
        problems.append(f"{p}.dataCaptureS3Uri: required when dataCapturePercent is "
                        f"{sm.data_capture_percent}; set s3://<bucket>/<prefix>")
    if sm.data_capture_s3_uri is not None and not _S3_URI.match(sm.data_capture_s3_uri):
        problems.append(f"{p}.dataCaptureS3Uri: {sm.data_capture_s3_uri!r} is not an s3:// URI")
    return problems
