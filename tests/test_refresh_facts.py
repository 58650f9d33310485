"""scripts/refresh_facts.py against moto (EC2) and a botocore Stubber (Price List API), offline."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from components.facts import GPU_INSTANCES

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "refresh_facts.py"
_spec = importlib.util.spec_from_file_location("refresh_facts", _SCRIPT)
refresh_facts = importlib.util.module_from_spec(_spec)
sys.modules["refresh_facts"] = refresh_facts  # dataclasses look their module up by name
_spec.loader.exec_module(refresh_facts)


@pytest.fixture(scope="module", autouse=True)
def offline_aws():
    """Dummy credentials so nothing can reach a real account (module scope: moto is slow to
    load its instance-type data, so every test here shares one mock)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield


@pytest.fixture
def ec2():
    return boto3.client("ec2", region_name="us-east-1")


def test_fetch_gpu_specs_reads_gpu_info(ec2):
    specs = refresh_facts.fetch_gpu_specs(ec2, ["g5", "p5"])
    assert set(specs) == {n for n in GPU_INSTANCES if n.split(".")[0] in ("g5", "p5")}
    # moto ships the real DescribeInstanceTypes data: A10G reports 22888 MiB, not 24 GiB.
    assert specs["g5.12xlarge"] == refresh_facts.GpuSpec(
        "g5.12xlarge", "A10G", 4, 22888, 48, 192 * 1024
    )
    assert specs["p5.4xlarge"].gpu_count == 1
    assert not any(name.startswith("g5g.") for name in specs)  # "g5.*" must not match g5g


def test_committed_specs_match_describe_instance_types_for_every_family(ec2):
    specs = refresh_facts.fetch_gpu_specs(ec2, refresh_facts.FAMILIES)
    assert refresh_facts.diff_catalog(GPU_INSTANCES, specs) == []


def test_diff_catalog_reports_changed_missing_and_new_types(ec2):
    specs = refresh_facts.fetch_gpu_specs(ec2, ["g6e"])
    catalog = dict(GPU_INSTANCES)
    catalog["g6e.xlarge"] = dataclasses.replace(catalog["g6e.xlarge"], gpu_memory_mib=49152)
    del catalog["g6e.48xlarge"]
    catalog["g6e.96xlarge"] = dataclasses.replace(catalog["g6e.24xlarge"], name="g6e.96xlarge")
    diffs = refresh_facts.diff_catalog(catalog, specs)
    D = refresh_facts.Difference
    assert diffs == [
        D("g6e.48xlarge", "instance", None, "present"),
        D("g6e.96xlarge", "instance", "present", None),
        D("g6e.xlarge", "gpu_memory_mib", 49152, 45776),
    ]
    assert "3 difference(s)" in refresh_facts.render_text(diffs)


def _price_item(service: str, attributes: dict, usd: str) -> str:
    """One PriceList entry as the Price List API returns it: a JSON document in a string."""
    return json.dumps({
        "product": {"productFamily": "ML Instance" if service == "AmazonSageMaker"
                    else "Compute Instance", "attributes": attributes, "sku": "ABCDEFGHIJKLMNOP"},
        "serviceCode": service,
        "terms": {"OnDemand": {"ABCDEFGHIJKLMNOP.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": "ABCDEFGHIJKLMNOP",
            "effectiveDate": "2025-06-01T00:00:00Z", "termAttributes": {},
            "priceDimensions": {"ABCDEFGHIJKLMNOP.JRTCKXETXF.6YS6EN2CT7": {
                "rateCode": "ABCDEFGHIJKLMNOP.JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs",
                "description": "On Demand usage", "beginRange": "0", "endRange": "Inf",
                "appliesTo": [], "pricePerUnit": {"USD": usd},
            }},
        }}},
        "version": "20251101000000", "publicationDate": "2025-11-01T00:00:00Z",
    })


def _ec2_attributes(name: str) -> dict:
    return {"instanceType": name, "regionCode": "us-east-1", "operatingSystem": "Linux",
            "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
            "usagetype": f"BoxUsage:{name}", "servicecode": "AmazonEC2"}


def _sm_attributes(name: str, component: str, usage: str) -> dict:
    return {"instanceName": f"ml.{name}", "regionCode": "us-east-1", "component": component,
            "usagetype": f"USE1-{usage}:ml.{name}", "servicecode": "AmazonSageMaker"}


def _filters(**attributes: str) -> list[dict]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in attributes.items()]


def test_fetch_prices_with_stubbed_pricing_api():
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2_filters = dict(regionCode="us-east-1", operatingSystem="Linux", tenancy="Shared",
                       preInstalledSw="NA", capacitystatus="Used")
    with Stubber(pricing) as stub:
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1",
             "PriceList": [_price_item("AmazonEC2", _ec2_attributes("g5.xlarge"), "1.006000")]},
            {"ServiceCode": "AmazonEC2",
             "Filters": _filters(instanceType="g5.xlarge", **ec2_filters)},
        )
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [
                # Training is listed too and costs less: it must not be taken for hosting.
                _price_item("AmazonSageMaker", _sm_attributes("g5.xlarge", "Training", "Train"),
                            "1.4080000000"),
                _price_item("AmazonSageMaker", _sm_attributes("g5.xlarge", "Hosting", "Host"),
                            "1.4100000000"),
            ]},
            {"ServiceCode": "AmazonSageMaker",
             "Filters": _filters(instanceName="ml.g5.xlarge", regionCode="us-east-1")},
        )
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1",
             "PriceList": [_price_item("AmazonEC2", _ec2_attributes("g4dn.metal"), "7.824000")]},
            {"ServiceCode": "AmazonEC2",
             "Filters": _filters(instanceType="g4dn.metal", **ec2_filters)},
        )
        stub.add_response(  # SageMaker does not sell g4dn.metal: an empty price list
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": []},
            {"ServiceCode": "AmazonSageMaker",
             "Filters": _filters(instanceName="ml.g4dn.metal", regionCode="us-east-1")},
        )
        ec2_prices, sm_prices = refresh_facts.fetch_prices(pricing, ["g5.xlarge", "g4dn.metal"])
        stub.assert_no_pending_responses()
    assert ec2_prices == {"g5.xlarge": 1.006, "g4dn.metal": 7.824}
    assert sm_prices == {"g5.xlarge": 1.41}

    # 1.006 matches the catalog; the hosting price moved 1.408 -> 1.41 and must be reported.
    catalog = {n: GPU_INSTANCES[n] for n in ("g5.xlarge", "g4dn.metal")}
    specs = {n: refresh_facts.GpuSpec(n, i.gpu.name, i.gpu_count, i.gpu_memory_mib, i.vcpus,
                                      i.memory_mib) for n, i in catalog.items()}
    diffs = refresh_facts.diff_catalog(catalog, specs, ec2_prices, sm_prices)
    assert diffs == [refresh_facts.Difference("g5.xlarge", "sagemaker_usd_per_hour", 1.408, 1.41)]


def test_main_prints_json_and_check_sets_exit_code(capsys):
    code = refresh_facts.main(["--families", "g6,p5en", "--skip-pricing", "--json", "--check"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == []
