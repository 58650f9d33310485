"""Diff the committed GPU catalog (components/facts/gpus.py) against the live AWS APIs.

Why a diff and not a rewrite: prices and specs are reviewed facts with source comments; a
human decides whether a change is real (a price cut) or noise (a new SKU variant) and edits the
table. Run it before bumping ``PRICES_AS_OF``::

    python scripts/refresh_facts.py --families g5,g6e,p5 [--json] [--check]

Reads ``ec2:DescribeInstanceTypes`` in ``--region`` (GPU count, GPU memory, vCPUs, host
memory) and the AWS Price List API (``pricing:GetProducts``, served from us-east-1) for
on-demand prices in ``--region``: AmazonEC2 Linux / shared tenancy / no pre-installed software,
and AmazonSageMaker real-time inference ("Hosting") for the ``ml.`` types.
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.facts.gpus import FAMILIES, GPU_INSTANCES, PRICES_AS_OF, GpuInstance

PRICING_API_REGION = "us-east-1"  # the Price List API endpoint lives in us-east-1 (and ap-south-1)


@dataclass(frozen=True)
class GpuSpec:
    """What DescribeInstanceTypes says about one GPU instance type."""

    name: str
    gpu_name: str
    gpu_count: int
    gpu_memory_mib: int
    vcpus: int
    memory_mib: int


@dataclass(frozen=True)
class Difference:
    """One field that differs between the committed catalog and the live API."""

    instance: str
    field: str
    committed: Any
    live: Any


def fetch_gpu_specs(ec2_client: Any, families: Iterable[str]) -> dict[str, GpuSpec]:
    """GPU instance specs for ``families`` (``"g5"`` matches ``g5.*`` but not ``g5g.*``)."""
    specs: dict[str, GpuSpec] = {}
    paginator = ec2_client.get_paginator("describe_instance_types")
    filters = [{"Name": "instance-type", "Values": [f"{family}.*" for family in families]}]
    for page in paginator.paginate(Filters=filters):
        for item in page["InstanceTypes"]:
            gpus = item.get("GpuInfo", {}).get("Gpus", [])
            if not gpus:
                continue
            gpu = gpus[0]
            specs[item["InstanceType"]] = GpuSpec(
                name=item["InstanceType"],
                gpu_name=gpu["Name"],
                gpu_count=sum(g["Count"] for g in gpus),
                gpu_memory_mib=gpu["MemoryInfo"]["SizeInMiB"],
                vcpus=item["VCpuInfo"]["DefaultVCpus"],
                memory_mib=item["MemoryInfo"]["SizeInMiB"],
            )
    return specs


def _on_demand_usd(price_item: Mapping[str, Any]) -> float | None:
    """The hourly USD price of the first OnDemand term, or None for a $0 / missing price."""
    for term in price_item.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = float(dimension.get("pricePerUnit", {}).get("USD", "0"))
            if usd > 0:
                return usd
    return None


def _term_filters(**attributes: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in attributes.items()]


def _products(pricing_client: Any, service_code: str, filters: list[dict[str, str]]) -> Iterable[
    dict[str, Any]
]:
    paginator = pricing_client.get_paginator("get_products")
    for page in paginator.paginate(ServiceCode=service_code, Filters=filters):
        for raw in page["PriceList"]:
            yield json.loads(raw)  # PriceList entries are JSON documents serialised as strings


def fetch_prices(
    pricing_client: Any, instance_types: Iterable[str], region: str = "us-east-1"
) -> tuple[dict[str, float], dict[str, float]]:
    """On-demand ``(ec2_prices, sagemaker_prices)`` keyed by EC2 name, for ``region``.

    A type missing from a result has no on-demand price there (for SageMaker: not offered).
    """
    ec2: dict[str, float] = {}
    sagemaker: dict[str, float] = {}
    for name in instance_types:
        ec2_filters = _term_filters(
            instanceType=name, regionCode=region, operatingSystem="Linux", tenancy="Shared",
            preInstalledSw="NA", capacitystatus="Used",
        )
        for item in _products(pricing_client, "AmazonEC2", ec2_filters):
            price = _on_demand_usd(item)
            if price is not None:
                ec2[name] = price
                break
        sm_filters = _term_filters(instanceName=f"ml.{name}", regionCode=region)
        for item in _products(pricing_client, "AmazonSageMaker", sm_filters):
            attributes = item.get("product", {}).get("attributes", {})
            hosting = attributes.get("component") == "Hosting" or "Host:" in attributes.get(
                "usagetype", ""
            )
            price = _on_demand_usd(item)
            if hosting and price is not None:
                sagemaker[name] = price
                break
    return ec2, sagemaker


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)


def diff_catalog(
    catalog: Mapping[str, GpuInstance],
    specs: Mapping[str, GpuSpec],
    ec2_prices: Mapping[str, float] | None = None,
    sagemaker_prices: Mapping[str, float] | None = None,
) -> list[Difference]:
    """Fields where ``catalog`` disagrees with the live data, plus types only one side has.

    Only the families present in ``specs`` are compared; pass ``None`` for the price maps to
    skip price comparison (e.g. when the Pricing API is not reachable).
    """
    families = {name.split(".")[0] for name in specs}
    committed = {n: i for n, i in catalog.items() if i.family in families}
    out: list[Difference] = []
    for name in sorted(set(committed) | set(specs)):
        instance, spec = committed.get(name), specs.get(name)
        if instance is None:
            out.append(Difference(name, "instance", None, "present"))
            continue
        if spec is None:
            out.append(Difference(name, "instance", "present", None))
            continue
        for field, ours, theirs in (
            ("gpu_count", instance.gpu_count, spec.gpu_count),
            ("gpu_memory_mib", instance.gpu_memory_mib, spec.gpu_memory_mib),
            ("vcpus", instance.vcpus, spec.vcpus),
            ("memory_mib", instance.memory_mib, spec.memory_mib),
        ):
            if ours != theirs:
                out.append(Difference(name, field, ours, theirs))
        if ec2_prices is not None and not _close(instance.ec2_usd_per_hour, ec2_prices.get(name)):
            out.append(
                Difference(name, "ec2_usd_per_hour", instance.ec2_usd_per_hour,
                           ec2_prices.get(name))
            )
        if sagemaker_prices is not None and not _close(
            instance.sagemaker_usd_per_hour, sagemaker_prices.get(name)
        ):
            out.append(
                Difference(name, "sagemaker_usd_per_hour", instance.sagemaker_usd_per_hour,
                           sagemaker_prices.get(name))
            )
    return out


def render_text(differences: Sequence[Difference]) -> str:
    """Human-readable diff, one line per difference."""
    if not differences:
        return f"catalog matches the live APIs (prices as of {PRICES_AS_OF})"
    lines = [f"{len(differences)} difference(s) against the catalog (prices as of {PRICES_AS_OF}):"]
    lines += [f"  {d.instance:<16} {d.field:<24} committed={d.committed!r} live={d.live!r}"
              for d in differences]
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="us-east-1",
                        help="region for specs and prices (the catalog holds us-east-1 prices)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated instance families (default: all in the catalog)")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON")
    parser.add_argument("--skip-pricing", action="store_true", help="compare specs only")
    parser.add_argument("--check", action="store_true", help="exit 1 when there is a difference")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    import boto3  # imported here so the module's functions import without boto3 installed

    args = _parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    specs = fetch_gpu_specs(boto3.client("ec2", region_name=args.region), families)
    ec2_prices = sagemaker_prices = None
    if not args.skip_pricing:
        pricing = boto3.client("pricing", region_name=PRICING_API_REGION)
        names = sorted(set(specs) | {n for n, i in GPU_INSTANCES.items() if i.family in families})
        ec2_prices, sagemaker_prices = fetch_prices(pricing, names, args.region)
    differences = diff_catalog(GPU_INSTANCES, specs, ec2_prices, sagemaker_prices)
    if args.json:
        print(json.dumps([asdict(d) for d in differences], indent=2))
    else:
        print(render_text(differences))
    return 1 if args.check and differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
