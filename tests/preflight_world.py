"""An AWS account for the preflight tests: moto where moto implements the call, botocore
Stubbers where it does not.

moto 5.2 answers STS, EC2 (AZs, instance type offerings, instance types, snapshots), IAM, S3 and
KMS. It has no Service Quotas values for ec2/sagemaker (only `vpc`, and no
GetAWSDefaultServiceQuota), no EKS DescribeAddonVersions, no Bedrock foundation models, and no
SSM public parameters under /aws/service/eks or /aws/service/bottlerocket (and it refuses writes
under /aws/, as AWS does). Those four services go through `botocore.stub.Stubber`, which checks
every request and response against the service's API model; `STUBBED_CALLS` lists them for the
issue's note.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import yaml
from botocore.stub import Stubber

from components.config import StackConfig
from components.preflight import Clients, load_config
from components.preflight.checks import CLIENT_CONFIG

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account

STUBBED_CALLS = (
    "service-quotas:GetServiceQuota", "service-quotas:GetAWSDefaultServiceQuota",
    "service-quotas:ListAWSDefaultServiceQuotas", "eks:DescribeAddonVersions",
    "ssm:GetParameter (public /aws/service parameters)", "bedrock:GetFoundationModel",
    "bedrock:GetFoundationModelAvailability", "bedrock:GetInferenceProfile",
)

QUOTA_NAMES = {
    "L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    "L-DB2E81BA": "Running On-Demand G and VT instances",
    "L-417A185B": "Running On-Demand P instances",
    "L-34B43A08": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    "L-3819A6DF": "All G and VT Spot Instance Requests",
    "L-7212CCBC": "All P4, P3 and P2 Spot Instance Requests",
    "L-C4BD4855": "All P5 Spot Instance Requests",
}


def quota(service: str, code: str, name: str, value: float) -> dict[str, Any]:
    """A Quota as Service Quotas returns it (shape: botocore's ServiceQuota)."""
    return {"ServiceCode": service, "QuotaCode": code, "QuotaName": name, "Value": value,
            "QuotaArn": f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:{service}/{code}",
            "Unit": "None", "Adjustable": True, "GlobalQuota": False}


_LOADER = botocore.loaders.create_loader()
"""One loader for every test's session: it caches the parsed API models (EC2's alone takes a
noticeable share of a second to load), while each test still gets fresh credentials."""


def session() -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core)


_CLIENTS: dict[tuple[str, str, str | None], Any] = {}
_SESSION = session()


def client(service: str, region: str = REGION, endpoint_url: str | None = None) -> Any:
    """A client made once per (service, region, endpoint) for the whole test run: building one
    resolves its endpoint rule set (tens of ms), and moto answers every test's clients alike."""
    key = (service, region, endpoint_url)
    if key not in _CLIENTS:
        _CLIENTS[key] = _SESSION.client(service, region_name=region, endpoint_url=endpoint_url,
                                        config=CLIENT_CONFIG)
    return _CLIENTS[key]


class World(Clients):
    """`Clients` whose stubbed services answer from queued responses; the rest is moto."""

    STUBBED = ("service-quotas", "eks", "bedrock", "ssm")

    def __init__(self, region: str = REGION, shared: bool = True) -> None:
        """`shared=False`: a fresh session that resolves credentials again (the test that has
        none); otherwise moto-backed clients come from the run-wide cache."""
        super().__init__(region, session())
        self._shared = shared
        self.stubbers: dict[str, Stubber] = {}
        for service in self.STUBBED:
            client = self._session.client(service, region_name=region, config=CLIENT_CONFIG)
            stubber = Stubber(client)
            stubber.activate()
            self._clients[service] = client
            self.stubbers[service] = stubber

    def __call__(self, service: str) -> Any:
        if self._shared and service not in self.STUBBED:
            return client(service, self.region)
        return super().__call__(service)

    def refuse(self, service: str, operation: str, code: str, message: str, times: int) -> None:
        """Drop what was queued for `service`; it answers `times` calls with an AWS error."""
        self.stubbers[service].deactivate()
        stubber = Stubber(self._clients[service])
        for _ in range(times):
            stubber.add_client_error(operation, code, message)
        stubber.activate()
        self.stubbers[service] = stubber

    def done(self) -> None:
        """Every queued response was asked for, with the parameters expected."""
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()

    # Service Quotas -------------------------------------------------------------------------
    def ec2_quota(self, code: str, value: float) -> None:
        self.stubbers["service-quotas"].add_response(
            "get_service_quota", {"Quota": quota("ec2", code, QUOTA_NAMES[code], value)},
            {"ServiceCode": "ec2", "QuotaCode": code})

    def ec2_default_quota(self, code: str, value: float) -> None:
        """The account never changed the quota: only the AWS default exists."""
        sq = self.stubbers["service-quotas"]
        sq.add_client_error("get_service_quota", "NoSuchResourceException",
                            "The request failed because the specified resource does not exist.",
                            expected_params={"ServiceCode": "ec2", "QuotaCode": code})
        sq.add_response("get_aws_default_service_quota",
                        {"Quota": quota("ec2", code, QUOTA_NAMES[code], value)},
                        {"ServiceCode": "ec2", "QuotaCode": code})

    def sagemaker_quotas(self, listed: Mapping[str, str], applied: Mapping[str, float]) -> None:
        """`listed`: ml type -> quota code in the region; `applied`: code -> account value."""
        defaults = [quota("sagemaker", code, f"{ml} for endpoint usage", 0.0)
                    for ml, code in listed.items()]
        defaults.append(quota("sagemaker", "L-0B6A1E4A", "Number of endpoints", 100.0))
        self.stubbers["service-quotas"].add_response(
            "list_aws_default_service_quotas", {"Quotas": defaults}, {"ServiceCode": "sagemaker"})
        for code, value in applied.items():
            ml = next(m for m, c in listed.items() if c == code)
            self.stubbers["service-quotas"].add_response(
                "get_service_quota",
                {"Quota": quota("sagemaker", code, f"{ml} for endpoint usage", value)},
                {"ServiceCode": "sagemaker", "QuotaCode": code})

    # EKS and SSM ----------------------------------------------------------------------------
    def addon_versions(self, version: str, builds: Mapping[str, list[str]],
                       compatible: str | None = None) -> None:
        """`builds`: add-on -> builds EKS lists (newest first), each compatible with `compatible`
        (default: `version`)."""
        for addon, versions in builds.items():
            self.stubbers["eks"].add_response("describe_addon_versions", {"addons": [{
                "addonName": addon, "type": "networking", "owner": "aws", "publisher": "eks",
                "addonVersions": [{
                    "addonVersion": v, "architecture": ["amd64", "arm64"],
                    "compatibilities": [{"clusterVersion": compatible or version,
                                         "platformVersions": ["*"],
                                         "defaultVersion": i == 0}],
                } for i, v in enumerate(versions)],
            }]}, {"kubernetesVersion": version, "addonName": addon})

    def parameter(self, name: str, value: str | None) -> None:
        ssm = self.stubbers["ssm"]
        if value is None:
            ssm.add_client_error("get_parameter", "ParameterNotFound", "",
                                 expected_params={"Name": name})
        else:
            ssm.add_response("get_parameter", {"Parameter": {
                "Name": name, "Type": "String", "Value": value, "Version": 1}}, {"Name": name})

    # Bedrock --------------------------------------------------------------------------------
    def foundation_model(self, model_id: str, *, on_demand: bool = True,
                         lifecycle: str = "ACTIVE", access: str = "AVAILABLE") -> None:
        bedrock = self.stubbers["bedrock"]
        bedrock.add_response("get_foundation_model", {"modelDetails": {
            "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
            "modelId": model_id, "modelName": model_id, "providerName": "Anthropic",
            "inferenceTypesSupported": ["ON_DEMAND"] if on_demand else ["INFERENCE_PROFILE"],
            "modelLifecycle": {"status": lifecycle},
        }}, {"modelIdentifier": model_id})
        if on_demand:
            bedrock.add_response("get_foundation_model_availability", {
                "modelId": model_id,
                "agreementAvailability": {"status": "AVAILABLE"},
                "authorizationStatus": "AUTHORIZED",
                "entitlementAvailability": access,
                "regionAvailability": "AVAILABLE",
            }, {"modelId": model_id})


# ------------------------------------------------------------------------------ moto seeding


def write_stack(root: Path, name: str, config: Mapping[str, Any]) -> Path:
    """A Pulumi.<name>.yaml as a user would write it (structured values as YAML)."""
    path = root / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": dict(config)}, sort_keys=False))
    return path


def stack_config(root: Path, name: str, config: Mapping[str, Any]) -> StackConfig:
    write_stack(root, name, config)
    return load_config(name, root)


def seed_weights(bucket: str, prefix: str, files: Mapping[str, bytes] | None = None, *,
                 region: str = REGION, kms_key: str | None = None,
                 endpoint_url: str | None = None) -> None:
    """A weights bucket holding `files` under `prefix/` (default: a config and two shards)."""
    s3 = client("s3", region, endpoint_url)
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        extra = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **extra)
    files = files if files is not None else {
        "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
        "model-00001-of-00002.safetensors": b"\0" * 1024,
        "model-00002-of-00002.safetensors": b"\0" * 512,
        "tokenizer.json": b"{}",
    }
    encryption = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key
                  else {})
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body, **encryption)


def seed_spot_role(endpoint_url: str | None = None) -> None:
    """The role `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com` makes.
    moto's CreateServiceLinkedRole names it `AWSServiceRoleForspot` (AWS: AWSServiceRoleForEC2Spot),
    so the test creates it under its real name and path."""
    client("iam", REGION, endpoint_url).create_role(
        RoleName="AWSServiceRoleForEC2Spot", Path="/aws-service-role/spot.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "spot.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}))


def seed_key(policy: dict[str, Any] | None = None) -> str:
    """A customer-managed symmetric key (default key policy unless `policy`); its ARN."""
    kms = client("kms")
    args: dict[str, Any] = {"KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT"}
    if policy is not None:
        args["Policy"] = json.dumps(policy)
    return str(kms.create_key(**args)["KeyMetadata"]["Arn"])


# ---------------------------------------------------------------------- moto's server, on loopback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(quotas: Mapping[tuple[str, str], tuple[str, float]]) -> Iterator[str]:
    """moto's server (`ThreadedMotoServer`, the app `moto_server` runs) on a free loopback port;
    yields its URL for AWS_ENDPOINT_URL.

    moto answers Service Quotas for `vpc` only; `quotas` maps (service code, quota code) to
    (quota name, value) for GetServiceQuota, and the `sagemaker` entries also make up
    ListAWSDefaultServiceQuotas. Everything else is moto's implementation."""
    from moto.server import ThreadedMotoServer
    from moto.servicequotas.models import ServiceQuotasBackend

    get_original = ServiceQuotasBackend.get_service_quota
    list_original = ServiceQuotasBackend.list_aws_default_service_quotas

    def get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
        if (service_code, quota_code) in quotas:
            name, value = quotas[service_code, quota_code]
            return quota(service_code, quota_code, name, value)
        return get_original(self, service_code, quota_code)

    def list_defaults(self: Any, service_code: str) -> list[dict[str, Any]]:
        found = [quota(service, code, name, value)
                 for (service, code), (name, value) in quotas.items() if service == service_code]
        return found or list_original(self, service_code)

    saved = (os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS"),)
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # ~10,000 AMIs nobody reads
    ServiceQuotasBackend.get_service_quota = get_service_quota  # type: ignore[method-assign]
    ServiceQuotasBackend.list_aws_default_service_quotas = list_defaults  # type: ignore[method-assign]
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        ServiceQuotasBackend.get_service_quota = get_original  # type: ignore[method-assign]
        ServiceQuotasBackend.list_aws_default_service_quotas = list_original  # type: ignore[method-assign]
        if saved[0] is None:
            os.environ.pop("MOTO_EC2_LOAD_DEFAULT_AMIS", None)
        else:
            os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = saved[0]
