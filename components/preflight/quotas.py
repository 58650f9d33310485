"""Service Quotas: EC2 vCPUs per instance class and purchase option, SageMaker endpoint
instances per type, against what the platform may run (`CAPACITY_DEMANDS`).

EC2 counts running On-Demand and Spot capacity in vCPUs per class of families. The codes, as
Service Quotas lists them for `ec2` (`aws service-quotas list-aws-default-service-quotas
--service-code ec2`; names and defaults also in the EC2 User Guide: "Spot Instance quotas",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html, and "On-Demand
Instance quotas", https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html).
New accounts start at 0 for every GPU class, Spot included.

SageMaker counts endpoint instances per type, in quotas named "ml.<type> for endpoint usage"
whose codes differ per type and are found by name (ListAWSDefaultServiceQuotas); such a quota
exists only where SageMaker hosts the type, which makes it the offering check too.

The applied value (GetServiceQuota) is the account's; a quota never raised has none and the
AWS default applies (GetAWSDefaultServiceQuota). Instances the account already runs in the
same class count against the same quota: the detail says so rather than reading usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from components.facts.gpus import GPU_INSTANCES
from components.platform_api import InstanceDemand, Purchase
from components.platforms import CAPACITY_DEMANDS
from components.preflight.checks import AWS_ERRORS, Check, Context, aws_error, error_code


@dataclass(frozen=True)
class Quota:
    code: str
    name: str


ON_DEMAND_QUOTAS: dict[str, Quota] = {
    "standard": Quota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) "
                                    "instances"),
    "g": Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "p": Quota("L-417A185B", "Running On-Demand P instances"),
}
"""On-demand vCPU quotas; every P generation (P4d, P4de, P5, P5en) shares L-417A185B."""

SPOT_QUOTAS: dict[str, Quota] = {
    "standard": Quota("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance "
                                    "Requests"),
    "g": Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
    "p": Quota("L-7212CCBC", "All P4, P3 and P2 Spot Instance Requests"),
    "p5": Quota("L-C4BD4855", "All P5 Spot Instance Requests"),
}
"""Spot vCPU quotas; P5-generation Spot (p5, p5e, p5en) has its own quota."""

_OTHER_CLASSES = ("inf", "trn", "dl", "hpc", "mac", "u-", "x", "f", "vt")
"""Family prefixes with quotas of their own that this program never launches (VT shares the
G quota but no VT type is in the GPU catalog)."""


def quota_class(instance_type: str, purchase: Purchase) -> str | None:
    """`g`, `p`, `p5` (Spot only) or `standard`; None for a class this module has no code for."""
    family = instance_type.removeprefix("ml.").split(".")[0]
    if family.startswith("g"):
        return "g"
    if family.startswith("p"):
        return "p5" if purchase == "spot" and family.startswith("p5") else "p"
    if family.startswith(_OTHER_CLASSES):
        return None
    return "standard" if family[:1] in "acdhimrtz" else None


def _quota_value(ctx: Context, service: str, code: str) -> float:
    """The applied value, or the AWS default when the account never changed it."""
    client = ctx.clients("service-quotas")
    try:
        return float(client.get_service_quota(ServiceCode=service, QuotaCode=code)
                     ["Quota"]["Value"])
    except AWS_ERRORS as exc:
        if error_code(exc) != "NoSuchResourceException":
            raise
    return float(client.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)
                 ["Quota"]["Value"])


def _vcpus(ctx: Context, types: Iterable[str]) -> dict[str, int]:
    """GPU types from the catalog (the figures sizing used); others from DescribeInstanceTypes."""
    out = {t: GPU_INSTANCES[t].vcpus for t in types if t in GPU_INSTANCES}
    rest = sorted(set(types) - set(out))
    if rest:
        page = ctx.clients("ec2").describe_instance_types(InstanceTypes=rest)
        out.update({i["InstanceType"]: i["VCpuInfo"]["DefaultVCpus"]
                    for i in page["InstanceTypes"]})
    return out


def _fmt(n: float) -> str:
    return f"{n:g}"


def _demand_text(demands: list[InstanceDemand], vcpus: dict[str, int]) -> str:
    parts = [f"{d.owner}: {d.steady} x {d.instance_type} at {vcpus[d.instance_type]} vCPUs"
             for d in demands if d.steady]
    return "; ".join(parts) or "none at steady state"


def ec2_rows(ctx: Context, demands: list[InstanceDemand]) -> list[Check]:
    try:
        vcpus = _vcpus(ctx, {d.instance_type for d in demands})
    except AWS_ERRORS as exc:
        return [aws_error("quota vCPUs", "ec2:DescribeInstanceTypes", exc,
                          "ec2:DescribeInstanceTypes")]
    grouped: dict[Quota, list[InstanceDemand]] = {}
    rows: list[Check] = []
    for d in demands:
        table = SPOT_QUOTAS if d.purchase == "spot" else ON_DEMAND_QUOTAS
        cls = quota_class(d.instance_type, d.purchase)
        if cls is None or d.instance_type not in vcpus:
            rows.append(Check(f"quota {d.instance_type}", "warn",
                              f"no vCPU quota known for {d.purchase} {d.instance_type}",
                              "check its quota in the Service Quotas console"))
            continue
        grouped.setdefault(table[cls], []).append(d)
    region = ctx.config.region
    for quota, items in grouped.items():
        name = f"quota {quota.name} ({quota.code})"
        steady = sum(d.steady * vcpus[d.instance_type] for d in items)
        peak = sum(d.peak * vcpus[d.instance_type] for d in items)
        try:
            value = _quota_value(ctx, "ec2", quota.code)
        except AWS_ERRORS as exc:
            rows.append(aws_error(name, "servicequotas:GetServiceQuota", exc,
                                  "servicequotas:GetServiceQuota and "
                                  "servicequotas:GetAWSDefaultServiceQuota"))
            continue
        need = (f"needs {steady} vCPUs at maxReplicas ({_demand_text(items, vcpus)}), up to "
                f"{peak} at peak; the quota is {_fmt(value)} vCPUs")
        ask = (f"request at least {peak} vCPUs: `aws service-quotas "
               f"request-service-quota-increase --region {region} --service-code ec2 "
               f"--quota-code {quota.code} --desired-value {peak}`")
        if value < steady:
            rows.append(Check(name, "fail", need, ask))
        elif value < peak:
            rows.append(Check(name, "warn", need + " (" + "; ".join(
                d.why for d in items) + ")", ask))
        else:
            rows.append(Check(name, "pass", need + "; instances already running in the "
                              "account count against it too"))
    return rows


SAGEMAKER_SUFFIX = " for endpoint usage"


def sagemaker_endpoint_quotas(ctx: Context) -> dict[str, dict[str, Any]]:
    """The region's "ml.<type> for endpoint usage" quotas (defaults), keyed by `ml.<type>`."""
    paginator = ctx.clients("service-quotas").get_paginator("list_aws_default_service_quotas")
    found: dict[str, dict[str, Any]] = {}
    for page in paginator.paginate(ServiceCode="sagemaker"):
        for q in page["Quotas"]:
            if q["QuotaName"].endswith(SAGEMAKER_SUFFIX):
                found[q["QuotaName"].removesuffix(SAGEMAKER_SUFFIX)] = q
    return found


def sagemaker_rows(ctx: Context, demands: list[InstanceDemand]) -> list[Check]:
    region = ctx.config.region
    try:
        quotas = sagemaker_endpoint_quotas(ctx)
    except AWS_ERRORS as exc:
        return [aws_error("sagemaker quotas", "servicequotas:ListAWSDefaultServiceQuotas", exc,
                          "servicequotas:ListAWSDefaultServiceQuotas")]
    rows: list[Check] = []
    for d in demands:
        quota_name = f"{d.instance_type}{SAGEMAKER_SUFFIX}"
        default = quotas.get(d.instance_type)
        if default is None:
            rows.append(Check(
                f"offering {d.owner}", "fail",
                f"SageMaker hosts no {d.instance_type} endpoints in {region} (no "
                f"'{quota_name}' quota there)",
                "choose another instanceType (`python -m components.plan --stack <stack> "
                "--compare`) or a region where SageMaker offers it"))
            continue
        rows.append(Check(f"offering {d.owner}", "pass",
                          f"SageMaker hosts {d.instance_type} endpoints in {region}"))
        name = f"quota {quota_name} ({default['QuotaCode']})"
        try:
            value = _quota_value(ctx, "sagemaker", default["QuotaCode"])
        except AWS_ERRORS as exc:
            rows.append(aws_error(name, "servicequotas:GetServiceQuota", exc,
                                  "servicequotas:GetServiceQuota"))
            continue
        need = (f"needs {d.steady} instance(s) at maxReplicas, {d.peak} during endpoint "
                f"updates ({d.why}); the quota is {_fmt(value)}")
        ask = (f"request at least {d.peak}: `aws service-quotas request-service-quota-increase "
               f"--region {region} --service-code sagemaker --quota-code "
               f"{default['QuotaCode']} --desired-value {d.peak}`")
        status = "fail" if value < d.steady else "warn" if value < d.peak else "pass"
        rows.append(Check(name, status, need, ask if status != "pass" else ""))
    return rows


def check(ctx: Context) -> list[Check]:
    demands = list(CAPACITY_DEMANDS[ctx.config.platform](ctx.config))
    if ctx.config.platform == "sagemaker":
        return sagemaker_rows(ctx, demands)
    return ec2_rows(ctx, demands)

