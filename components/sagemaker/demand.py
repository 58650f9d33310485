"""How many `ml.` instances the endpoint may run per production variant: the quota demand.

SageMaker counts endpoint instances per type against the account's "ml.<type> for endpoint
usage" quota. Steady: the variant's `max_instances` (packing.plan_variants). Peak: an endpoint
update provisions new capacity before it retires the old: blue/green brings up a whole second
fleet, rolling adds one batch (ROLLING_BATCH_PERCENT of the capacity) at a time.
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-rolling.html
"""

from __future__ import annotations

import math

from components.config import StackConfig
from components.platform_api import InstanceDemand
from components.sagemaker.endpoint import ROLLING_BATCH_PERCENT
from components.sagemaker.packing import plan_variants


def capacity_demand(config: StackConfig) -> tuple[InstanceDemand, ...]:
    blue_green = config.sagemaker.endpoint_deployment == "blueGreen"
    out = []
    for plan in plan_variants(config):
        steady = plan.max_instances
        surge = steady if blue_green else math.ceil(steady * ROLLING_BATCH_PERCENT / 100)
        models = ", ".join(p.model.name for p in plan.placements)
        update = ("blue/green updates start a second fleet" if blue_green else
                  f"rolling updates add {ROLLING_BATCH_PERCENT}% batches")
        out.append(InstanceDemand(
            owner=models, instance_type=plan.instance_type, purchase="on-demand",
            steady=steady, peak=steady + surge,
            why=f"variant {plan.name} at most {steady} instance(s); {update}",
            minimum=plan.min_instances))
    return tuple(out)
