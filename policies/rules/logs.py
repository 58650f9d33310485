"""`logs-retention-required`: every log group expires its events.

A CloudWatch log group without a retention keeps every event forever (and bills for it); serving
logs can hold prompts. `retentionInDays` must be one of the values CloudWatch Logs accepts and
at least `minRetentionDays`. In pulumi-aws `0` means "never expire", so it is refused like an
unset value.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html

Log groups AWS creates on first write (`/aws/sagemaker/Endpoints/<name>`, `/aws/eks/<name>/cluster`)
are not resources of the stack and never reach the pack: the program creates them itself with a
retention (components/sagemaker/endpoint.py, components/eks/cluster.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.rules._framework import Resource, Rule, number_at

#: PutRetentionPolicy's `retentionInDays` values.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)

LOG_GROUPS = ("aws:cloudwatch/logGroup:LogGroup", "aws-native:logs:LogGroup")


def check_retention(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    minimum = int(config["minRetentionDays"])
    days = number_at(resource.props, "retentionInDays")
    if days is None or days == 0:
        state = "unset" if days is None else "0 (never expire)"
        yield (f"retentionInDays is {state}: events are kept forever; set one of "
               f"CloudWatch's values, at least {minimum} days")
    elif days not in RETENTION_DAYS:
        yield (f"retentionInDays is {days:g}, which CloudWatch Logs does not accept; use one of "
               f"{', '.join(str(d) for d in RETENTION_DAYS if d >= minimum)}")
    elif days < minimum:
        yield f"retentionInDays is {days:g}; this environment keeps logs at least {minimum} days"


LOGS_RETENTION_REQUIRED = Rule(
    name="logs-retention-required",
    description="Every CloudWatch log group sets a retention CloudWatch accepts, at least the "
                "environment's minimum.",
    checks=dict.fromkeys(LOG_GROUPS, check_retention),
    config={
        "minRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "maximum": 3653,
            "default": 1,
            "description": "shortest retention allowed, in days",
        },
    },
)

RULES = [LOGS_RETENTION_REQUIRED]
