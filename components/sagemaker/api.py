"""SageMaker facts read from botocore's API model (no AWS call)."""

from __future__ import annotations

from functools import cache

import botocore.session


@cache
def sagemaker_instance_types() -> frozenset[str]:
    """`ProductionVariantInstanceType`: the authority on which `ml.` types SageMaker hosts on."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)
