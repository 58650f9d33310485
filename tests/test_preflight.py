"""Preflight checks in-process: moto for the calls it implements, Stubbers for the rest
(tests/preflight_world.py). Each stack passes every check; then each failure on its own, with
the exact row the user reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.backends import get_backend

from components.preflight import Check, exit_code, run
from tests.preflight_world import (
    REGION,
    World,
    client,
    seed_key,
    seed_spot_role,
    seed_weights,
    stack_config,
)

V = "1.35"
ADDON_PINS = {"vpc-cni": "v1.21.1-eksbuild.1", "coredns": "v1.13.2-eksbuild.1",
              "kube-proxy": "v1.35.3-eksbuild.13", "eks-pod-identity-agent": "v1.3.10-eksbuild.2"}
AL2023_PARAMETER = ("/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64/nvidia/"
                    "amazon-eks-node-al2023-x86_64-nvidia-1.35-v20261112/image_id")


@pytest.fixture(scope="module")
def moto_account():
    """One moto account for the module: EC2 (AZs, offerings, instance types) is only read, and
    building its backend is the slowest part of a test; what tests write is reset per test."""
    with pytest.MonkeyPatch.context() as patch:
        for var in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
            patch.delenv(var, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        # Preflight reads no AMI through EC2; moto would otherwise build ~10,000 of them.
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with mock_aws():
            yield


@pytest.fixture
def aws(moto_account):
    yield
    for service in ("s3", "iam", "kms"):
        get_backend(service).reset()


def ecs_stack(**model: Any) -> dict[str, Any]:
    """One Spot model on ECS, S3 weights under an SSE-KMS key: every family but eks/bedrock."""
    return {
        "aws:region": REGION,
        "llm-hosting:environment": "staging",
        "llm-hosting:platform": "ecs",
        "llm-hosting:network": {"availabilityZones": 3},
        "llm-hosting:models": [{
            "name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
            "instanceType": "g6e.xlarge", "gpusPerReplica": 1,
            "maxInputTokens": 3072, "maxTotalTokens": 4096,
            "minReplicas": 2, "maxReplicas": 3, "capacity": "spot",
            "weightsUri": "s3://weights-staging/llama-8b/", **model,
        }],
    }


def eks_stack() -> dict[str, Any]:
    return {
        "aws:region": REGION,
        "llm-hosting:environment": "dev",
        "llm-hosting:platform": "eks",
        "llm-hosting:network": {"availabilityZones": 2},
        "llm-hosting:models": [{
            "name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct",
            "instanceType": "g6e.xlarge", "gpusPerReplica": 1,
            "maxInputTokens": 3072, "maxTotalTokens": 4096, "minReplicas": 1, "maxReplicas": 2,
        }],
        "llm-hosting:eks": {"systemNodeCount": 2, "systemNodeInstanceTypes": ["m7i.xlarge"]},
    }


def sagemaker_stack() -> dict[str, Any]:
    return {
        "aws:region": REGION,
        "llm-hosting:environment": "dev",
        "llm-hosting:platform": "sagemaker",
        "llm-hosting:models": [{
            "name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct",
            "instanceType": "g5.2xlarge", "gpusPerReplica": 1,
            "maxInputTokens": 3072, "maxTotalTokens": 4096, "minReplicas": 1, "maxReplicas": 2,
        }],
    }


def not_passing(rows: list[Check]) -> list[Check]:
    return [r for r in rows if r.status != "pass"]


# ---------------------------------------------------------------------------- ECS: every family


def ecs_world(tmp_path: Path, *, key_policy: dict[str, Any] | None = None,
              on_demand_quota: float = 20, spot_quota: float = 24, spot_role: bool = True,
              files: dict[str, bytes] | None = None, **model: Any) -> tuple[Any, World]:
    key = seed_key(key_policy)
    seed_weights("weights-staging", "llama-8b", files, kms_key=key)
    if spot_role:
        seed_spot_role()
    config = stack_config(tmp_path, "staging", ecs_stack(weightsKmsKeyArn=key, **model))
    world = World()
    world.ec2_quota("L-DB2E81BA", on_demand_quota)
    world.ec2_quota("L-3819A6DF", spot_quota)
    return config, world


def test_ecs_stack_passes_every_check(aws, tmp_path):
    config, world = ecs_world(tmp_path)
    rows = run(config, world)
    world.done()
    key = config.models[0].spec.weights_kms_key_arn
    assert [(r.check, r.status) for r in rows] == [
        ("credentials", "pass"),
        ("region", "pass"),
        ("availability zones", "pass"),
        ("offering llama-8b (on-demand)", "pass"),
        ("offering llama-8b (spot)", "pass"),
        ("quota Running On-Demand G and VT instances (L-DB2E81BA)", "pass"),
        ("quota All G and VT Spot Instance Requests (L-3819A6DF)", "pass"),
        ("spot service-linked role", "pass"),
        ("weights llama-8b", "pass"),
        ("kms key llama-8b", "pass"),
    ]
    by_name = {r.check: r.detail for r in rows}
    assert by_name["availability zones"] == (
        "the VPC spans us-east-1a, us-east-1b, us-east-1c (first 3 of 6, as awsx picks them)")
    # 2 on-demand tasks + 1 warm-pool instance, 4 vCPUs each; rollouts double the tasks.
    assert by_name["quota Running On-Demand G and VT instances (L-DB2E81BA)"] == (
        "needs 12 vCPUs at maxReplicas (llama-8b: 3 x g6e.xlarge at 4 vCPUs), up to 20 at "
        "peak; the quota is 20 vCPUs; instances already running in the account count against "
        "it too")
    assert by_name["weights llama-8b"] == (
        "s3://weights-staging/llama-8b/: config.json and 2 safetensors file(s), 0.0 GiB, in "
        "us-east-1")
    assert by_name["kms key llama-8b"] == (
        f"{key} is an enabled symmetric key whose policy delegates to IAM")
    assert exit_code(rows) == 0


def test_gpu_quota_zero_blocks_the_deploy(aws, tmp_path):
    config, world = ecs_world(tmp_path, on_demand_quota=0)
    rows = run(config, world)
    assert not_passing(rows) == [Check(
        "quota Running On-Demand G and VT instances (L-DB2E81BA)", "fail",
        "needs 12 vCPUs at maxReplicas (llama-8b: 3 x g6e.xlarge at 4 vCPUs), up to 20 at "
        "peak; the quota is 0 vCPUs",
        "request at least 20 vCPUs: `aws service-quotas request-service-quota-increase "
        "--region us-east-1 --service-code ec2 --quota-code L-DB2E81BA --desired-value 20`")]
    assert exit_code(rows) == 1


@pytest.mark.parametrize(("quota", "status"), [(11, "fail"), (12, "warn"), (19, "warn"),
                                               (20, "pass")])
def test_quota_blocks_below_steady_and_warns_below_peak(aws, tmp_path, quota, status):
    """On-demand need: 12 vCPUs at maxReplicas, 20 at peak (see the passing test)."""
    config, world = ecs_world(tmp_path, on_demand_quota=quota)
    rows = run(config, world)
    (row,) = [r for r in rows if r.check.endswith("(L-DB2E81BA)")]
    assert row.status == status
    assert exit_code(rows) == (1 if status == "fail" else 0)


def test_quota_between_steady_and_peak_warns_without_blocking(aws, tmp_path):
    config, world = ecs_world(tmp_path, spot_quota=4)
    rows = run(config, world)
    (warn,) = not_passing(rows)
    assert (warn.check, warn.status) == (
        "quota All G and VT Spot Instance Requests (L-3819A6DF)", "warn")
    assert warn.detail.startswith(
        "needs 4 vCPUs at maxReplicas (llama-8b: 1 x g6e.xlarge at 4 vCPUs), up to 24 at peak; "
        "the quota is 4 vCPUs (1 Spot task(s) beyond the on-demand base")
    assert exit_code(rows) == 0


def test_never_raised_quota_reads_the_aws_default(aws, tmp_path):
    key = seed_key()
    seed_weights("weights-staging", "llama-8b", kms_key=key)
    seed_spot_role()
    config = stack_config(tmp_path, "staging", ecs_stack(weightsKmsKeyArn=key))
    world = World()
    world.ec2_default_quota("L-DB2E81BA", 0)
    world.ec2_quota("L-3819A6DF", 24)
    rows = run(config, world)
    world.done()
    assert [(r.check, r.status) for r in not_passing(rows)] == [
        ("quota Running On-Demand G and VT instances (L-DB2E81BA)", "fail")]


def test_missing_spot_role_fails(aws, tmp_path):
    config, world = ecs_world(tmp_path, spot_role=False)
    assert not_passing(run(config, world)) == [Check(
        "spot service-linked role", "fail",
        "AWSServiceRoleForEC2Spot does not exist; llama-8b use Spot and would launch on-demand "
        "or not at all",
        "`aws iam create-service-linked-role --aws-service-name spot.amazonaws.com` (once per "
        "account)")]


def test_empty_weights_prefix_fails(aws, tmp_path):
    config, world = ecs_world(tmp_path, files={})
    assert not_passing(run(config, world)) == [Check(
        "weights llama-8b", "fail",
        "s3://weights-staging/llama-8b/ holds no objects at the root of the prefix",
        "`aws s3 sync ./<model dir> s3://weights-staging/llama-8b/` with the Hub repository's "
        "files at the root (docs/deploy.md#stage-weights-in-s3-weightsuri)")]


def test_weights_one_level_down_names_the_folder(aws, tmp_path):
    config, world = ecs_world(tmp_path, files={"snapshot/config.json": b"{}"})
    (row,) = not_passing(run(config, world))
    assert row.detail == ("s3://weights-staging/llama-8b/ holds no objects at the root of the "
                          "prefix; its files are one level down, under "
                          "s3://weights-staging/llama-8b/snapshot/")


@pytest.mark.parametrize(("files", "missing"), [
    ({"model.safetensors": b"x"}, "config.json"),
    ({"config.json": b"{}", "pytorch_model.bin": b"x"}, "*.safetensors"),
])
def test_weights_without_config_or_safetensors_fail(aws, tmp_path, files, missing):
    config, world = ecs_world(tmp_path, files=files)
    (row,) = not_passing(run(config, world))
    assert (row.check, row.status, row.detail) == (
        "weights llama-8b", "fail",
        f"s3://weights-staging/llama-8b/ has no {missing} at the root (1 object(s) there)"
        if missing == "config.json" else
        f"s3://weights-staging/llama-8b/ has no {missing} at the root (2 object(s) there)")


def test_weights_bucket_in_another_region_fails(aws, tmp_path):
    seed_weights("weights-eu", "llama-8b", region="eu-west-1")
    seed_spot_role()
    config = stack_config(tmp_path, "staging",
                          ecs_stack(weightsUri="s3://weights-eu/llama-8b/"))
    world = World()
    world.ec2_quota("L-DB2E81BA", 20)
    world.ec2_quota("L-3819A6DF", 24)
    assert not_passing(run(config, world)) == [Check(
        "weights llama-8b", "fail",
        "bucket weights-eu is in eu-west-1, the stack in us-east-1: the VPC's S3 gateway "
        "endpoint reaches same-region buckets only",
        "copy the weights to a bucket in us-east-1")]


def test_weights_bucket_missing_fails(aws, tmp_path):
    seed_spot_role()
    config = stack_config(tmp_path, "staging", ecs_stack(weightsUri="s3://nobody-made-it/x/"))
    world = World()
    world.ec2_quota("L-DB2E81BA", 20)
    world.ec2_quota("L-3819A6DF", 24)
    (row,) = not_passing(run(config, world))
    assert (row.status, row.detail) == ("fail", "bucket nobody-made-it does not exist")


def test_sse_kms_weights_without_the_key_in_config_fail(aws, tmp_path):
    key = seed_key()
    seed_weights("weights-staging", "llama-8b", kms_key=key)
    seed_spot_role()
    config = stack_config(tmp_path, "staging", ecs_stack())
    world = World()
    world.ec2_quota("L-DB2E81BA", 20)
    world.ec2_quota("L-3819A6DF", 24)
    assert not_passing(run(config, world)) == [Check(
        "weights llama-8b", "fail",
        f"model-00001-of-00002.safetensors is SSE-KMS encrypted with {key} but weightsKmsKeyArn "
        "is not set: the serving role cannot decrypt it",
        f"`pulumi config set --path 'llm-hosting:models[0].weightsKmsKeyArn' {key}`")]


def test_disabled_key_fails(aws, tmp_path):
    config, world = ecs_world(tmp_path)
    key = config.models[0].spec.weights_kms_key_arn
    client("kms").disable_key(KeyId=key.rsplit("/", 1)[1])
    assert not_passing(run(config, world)) == [Check(
        "kms key llama-8b", "fail", f"{key} is Disabled: S3 cannot decrypt with it",
        f"`aws kms enable-key --key-id {key}` (or cancel its deletion)")]


def test_key_policy_that_does_not_delegate_to_iam_fails(aws, tmp_path):
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "only-admins", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/key-admins"},
        "Action": "kms:*", "Resource": "*"}]}
    config, world = ecs_world(tmp_path, key_policy=policy)
    key = config.models[0].spec.weights_kms_key_arn
    assert not_passing(run(config, world)) == [Check(
        "kms key llama-8b", "fail",
        f"{key}'s key policy does not let account 123456789012's IAM policies grant it: the "
        "serving role's kms:Decrypt has no effect",
        "add the default key policy's 'Enable IAM User Permissions' statement "
        "(docs/deploy.md#stage-weights-in-s3-weightsuri)")]


# ------------------------------------------------------------------------------------ offerings


def test_type_missing_from_one_az_warns(aws, tmp_path):
    """moto's ap-south-1 data (from EC2) offers g6e.xlarge in 1a and 1b, not 1c."""
    raw = ecs_stack(capacity="on-demand", modelId="Qwen/Qwen2.5-7B-Instruct")
    raw["aws:region"] = "ap-south-1"
    del raw["llm-hosting:models"][0]["weightsUri"]
    config = stack_config(tmp_path, "staging", raw)
    world = World("ap-south-1")
    world.ec2_quota("L-DB2E81BA", 28)   # 3 tasks + 1 warm-pool instance, 6 + 1 at peak
    assert not_passing(run(config, world)) == [Check(
        "offering llama-8b", "warn",
        "g6e.xlarge is not offered in ap-south-1c (offered in ap-south-1a, ap-south-1b of the "
        "stack's 3 AZs); capacity launches only there",
        "nothing needed if that concentration is acceptable; else choose an instance type "
        "offered there (`aws ec2 describe-instance-type-offerings --region ap-south-1 "
        "--location-type availability-zone --filters Name=instance-type,Values=g6e.xlarge`), "
        "or another region")]


def test_on_demand_base_needs_its_own_type_though_spot_can_substitute(aws, tmp_path):
    """moto's eu-west-1 data offers no g6e at all; the Spot group's overrides (g5/g6 sizes)
    are offered there, the on-demand base's sized type is not."""
    seed_spot_role()
    raw = ecs_stack(modelId="Qwen/Qwen2.5-7B-Instruct")
    raw["aws:region"] = "eu-west-1"
    del raw["llm-hosting:models"][0]["weightsUri"]
    config = stack_config(tmp_path, "staging", raw)
    world = World("eu-west-1")
    world.ec2_quota("L-DB2E81BA", 20)
    world.ec2_quota("L-3819A6DF", 24)
    rows = run(config, world)
    (row,) = not_passing(rows)
    assert (row.check, row.status, row.detail) == (
        "offering llama-8b (on-demand)", "fail",
        "g6e.xlarge is not offered in any of the stack's AZs (eu-west-1a, eu-west-1b, "
        "eu-west-1c)")
    spot = next(r for r in rows if r.check == "offering llama-8b (spot)")
    assert spot.status == "pass" and spot.detail.startswith("g6e.xlarge or g6.2xlarge or ")


def test_type_in_one_az_fails_a_model_kept_at_two_replicas(aws, tmp_path):
    """moto's sa-east-1 data offers p5.48xlarge only in sa-east-1c."""
    raw = {
        "aws:region": "sa-east-1", "llm-hosting:environment": "prod",
        "llm-hosting:platform": "ecs",
        "llm-hosting:models": [{
            "name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct",
            "instanceType": "p5.48xlarge", "gpusPerReplica": 8, "minReplicas": 2,
            "maxReplicas": 2, "weightsUri": "s3://weights-sa/llama-70b/"}],
    }
    seed_weights("weights-sa", "llama-70b", region="sa-east-1")
    config = stack_config(tmp_path, "prod", raw)
    world = World("sa-east-1")
    world.ec2_quota("L-417A185B", 1536)
    (row,) = not_passing(run(config, world))
    assert (row.check, row.status, row.detail) == (
        "offering llama-70b", "fail",
        "p5.48xlarge is offered only in sa-east-1c of the stack's AZs; 2 instances kept "
        "running need 2 AZs to survive losing one")


# ------------------------------------------------------------------------------------------ EKS


def eks_world(tmp_path: Path, builds: dict[str, list[str]] | None = None,
              ami: str | None = "ami-0123456789abcdef0") -> tuple[Any, World]:
    config = stack_config(tmp_path, "dev", eks_stack())
    world = World()
    world.ec2_quota("L-DB2E81BA", 12)   # 2 x g6e.xlarge, +1 surge replica
    world.ec2_quota("L-1216C47A", 24)   # 2 x m7i.xlarge, +4 during a node group update
    world.addon_versions(V, builds or {a: [pin] for a, pin in ADDON_PINS.items()})
    world.parameter(AL2023_PARAMETER, ami)
    return config, world


def test_eks_stack_passes_every_check(aws, tmp_path):
    config, world = eks_world(tmp_path)
    rows = run(config, world)
    world.done()
    assert [(r.check, r.status) for r in rows] == [
        ("credentials", "pass"), ("region", "pass"), ("availability zones", "pass"),
        ("offering qwen-7b", "pass"), ("offering system nodes", "pass"),
        ("quota Running On-Demand G and VT instances (L-DB2E81BA)", "pass"),
        ("quota Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (L-1216C47A)",
         "pass"),
        ("eks add-on vpc-cni", "pass"), ("eks add-on coredns", "pass"),
        ("eks add-on kube-proxy", "pass"), ("eks add-on eks-pod-identity-agent", "pass"),
        ("eks gpu ami al2023@v20261112", "pass"),
    ]
    details = {r.check: r.detail for r in rows}
    # m7i.xlarge vCPUs come from moto's DescribeInstanceTypes (4), not from the GPU catalog.
    assert details["quota Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances "
                   "(L-1216C47A)"].startswith(
        "needs 8 vCPUs at maxReplicas (system nodes: 2 x m7i.xlarge at 4 vCPUs), up to 24")
    assert details["eks gpu ami al2023@v20261112"] == (
        f"ami-0123456789abcdef0 for Kubernetes 1.35 ({AL2023_PARAMETER})")


def test_unknown_addon_build_fails(aws, tmp_path):
    builds = {a: [pin] for a, pin in ADDON_PINS.items()}
    builds["vpc-cni"] = ["v1.21.1-eksbuild.3", "v1.21.0-eksbuild.2"]
    config, world = eks_world(tmp_path, builds)
    assert not_passing(run(config, world)) == [Check(
        "eks add-on vpc-cni", "fail",
        "v1.21.1-eksbuild.1 is not a build EKS offers for Kubernetes 1.35 in us-east-1; newest: "
        "v1.21.1-eksbuild.3, v1.21.0-eksbuild.2",
        "pin a listed build in components/facts/charts.py (EKS_ADDON_VERSIONS['1.35']): `aws "
        "eks describe-addon-versions --kubernetes-version 1.35 --addon-name vpc-cni --query "
        "'addons[].addonVersions[].addonVersion'`")]


def test_ami_alias_without_a_published_ami_fails(aws, tmp_path):
    config, world = eks_world(tmp_path, ami=None)
    (row,) = not_passing(run(config, world))
    assert (row.check, row.status, row.detail) == (
        "eks gpu ami al2023@v20261112", "fail",
        f"no AMI for Kubernetes 1.35 in us-east-1: {AL2023_PARAMETER} does not exist "
        "(Karpenter: failed to discover any AMIs for alias)")


# ------------------------------------------------------------------------------------ SageMaker


def sagemaker_world(tmp_path: Path, applied: float) -> tuple[Any, World]:
    config = stack_config(tmp_path, "dev", sagemaker_stack())
    world = World()
    world.sagemaker_quotas({"ml.g5.2xlarge": "L-1928E07C", "ml.g5.xlarge": "L-1928E07B"},
                           {"L-1928E07C": applied})
    return config, world


def test_sagemaker_stack_passes_every_check(aws, tmp_path):
    config, world = sagemaker_world(tmp_path, 4)
    rows = run(config, world)
    world.done()
    assert rows[3:] == [
        Check("offering qwen-7b", "pass", "SageMaker hosts ml.g5.2xlarge endpoints in us-east-1"),
        Check("quota ml.g5.2xlarge for endpoint usage (L-1928E07C)", "pass",
              "needs 2 instance(s) at maxReplicas, 4 during endpoint updates (variant g5-2xlarge "
              "at most 2 instance(s); blue/green updates start a second fleet); the quota is 4"),
    ]
    assert exit_code(rows) == 0


def test_sagemaker_quota_below_a_blue_green_update_warns(aws, tmp_path):
    config, world = sagemaker_world(tmp_path, 3)
    assert not_passing(run(config, world)) == [Check(
        "quota ml.g5.2xlarge for endpoint usage (L-1928E07C)", "warn",
        "needs 2 instance(s) at maxReplicas, 4 during endpoint updates (variant g5-2xlarge at "
        "most 2 instance(s); blue/green updates start a second fleet); the quota is 3",
        "request at least 4: `aws service-quotas request-service-quota-increase --region "
        "us-east-1 --service-code sagemaker --quota-code L-1928E07C --desired-value 4`")]


def test_sagemaker_quota_zero_fails(aws, tmp_path):
    config, world = sagemaker_world(tmp_path, 0)
    (row,) = not_passing(run(config, world))
    assert (row.status, row.detail) == (
        "fail", "needs 2 instance(s) at maxReplicas, 4 during endpoint updates (variant "
        "g5-2xlarge at most 2 instance(s); blue/green updates start a second fleet); the quota "
        "is 0")


def test_sagemaker_type_without_an_endpoint_quota_is_not_offered(aws, tmp_path):
    config = stack_config(tmp_path, "dev", sagemaker_stack())
    world = World()
    world.sagemaker_quotas({"ml.g5.xlarge": "L-1928E07B"}, {})
    rows = run(config, world)
    world.done()
    assert not_passing(rows) == [Check(
        "offering qwen-7b", "fail",
        "SageMaker hosts no ml.g5.2xlarge endpoints in us-east-1 (no 'ml.g5.2xlarge for "
        "endpoint usage' quota there)",
        "choose another instanceType (`python -m components.plan --stack <stack> --compare`) "
        "or a region where SageMaker offers it")]


# ----------------------------------------------------------------------- account and errors


def test_no_credentials_stops_at_the_first_row(aws, tmp_path, monkeypatch):
    config = stack_config(tmp_path, "dev", sagemaker_stack())
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    rows = run(config, World(shared=False))
    assert rows == [Check(
        "credentials", "fail", "no AWS credentials found (environment, AWS_PROFILE, SSO)",
        "export AWS_PROFILE=<profile> (or `aws sso login --profile <profile>`), then run "
        "preflight again")]
    assert exit_code(rows) == 1


def test_shell_region_that_differs_from_the_stack_warns(aws, tmp_path, monkeypatch):
    config = stack_config(tmp_path, "dev", sagemaker_stack())
    world = World()
    world.sagemaker_quotas({"ml.g5.2xlarge": "L-1928E07C"}, {"L-1928E07C": 4})
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    rows = run(config, world)
    assert not_passing(rows) == [Check(
        "region", "warn",
        "AWS_REGION=eu-west-1 but the stack deploys to us-east-1; preflight checked us-east-1",
        "export AWS_REGION=us-east-1, or change the stack's aws:region if the other region is "
        "meant")]


def test_a_refused_call_is_an_error_row_that_blocks(aws, tmp_path):
    config, world = ecs_world(tmp_path)
    world.refuse("service-quotas", "get_service_quota", "AccessDeniedException",
                 "User is not authorized to perform servicequotas:GetServiceQuota", times=2)
    rows = run(config, world)
    errors = [r for r in rows if r.status == "error"]
    assert errors == [
        Check(f"quota {name}", "error",
              "servicequotas:GetServiceQuota failed: AccessDeniedException (User is not "
              "authorized to perform servicequotas:GetServiceQuota)",
              "allow servicequotas:GetServiceQuota and servicequotas:GetAWSDefaultServiceQuota "
              "to the identity running preflight, then run it again")
        for name in ("Running On-Demand G and VT instances (L-DB2E81BA)",
                     "All G and VT Spot Instance Requests (L-3819A6DF)")]
    assert [r.status for r in rows if r not in errors] == ["pass"] * 8
    assert exit_code(rows) == 1


# ------------------------------------------------------------------------------------- Bedrock


def bedrock_world(tmp_path: Path, targets: list[str]) -> tuple[Any, World]:
    """The SageMaker stack with the gateway on and `models[0].fallbacks` set."""
    raw = sagemaker_stack()
    raw["llm-hosting:gateway"] = {"enabled": True}
    raw["llm-hosting:models"][0]["fallbacks"] = targets
    config = stack_config(tmp_path, "dev", raw)
    world = World()
    world.sagemaker_quotas({"ml.g5.2xlarge": "L-1928E07C"}, {"L-1928E07C": 4})
    return config, world


HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def test_bedrock_fallbacks_enabled_in_the_region_pass(aws, tmp_path):
    config, world = bedrock_world(tmp_path, [f"bedrock:{HAIKU}"])
    world.foundation_model(HAIKU)
    rows = run(config, world)
    world.done()
    assert rows[-1] == Check(f"bedrock qwen-7b -> {HAIKU}", "pass", f"{HAIKU} is enabled in "
                             "us-east-1")
    assert exit_code(rows) == 0


def test_bedrock_model_without_access_fails(aws, tmp_path):
    config, world = bedrock_world(tmp_path, [f"bedrock:{HAIKU}"])
    world.foundation_model(HAIKU, access="NOT_AVAILABLE")
    assert not_passing(run(config, world)) == [Check(
        f"bedrock qwen-7b -> {HAIKU}", "fail", f"{HAIKU}: model access not granted",
        "grant model access in the Bedrock console (us-east-1, Model access) and accept the "
        "provider's terms")]


def test_bedrock_model_only_through_a_profile_fails(aws, tmp_path):
    config, world = bedrock_world(tmp_path, [f"bedrock:arn:aws:bedrock:us-east-1::"
                                             f"foundation-model/{HAIKU}"])
    world.foundation_model(HAIKU, on_demand=False)
    (row,) = not_passing(run(config, world))
    assert (row.status, row.detail, row.fix) == (
        "fail", f"{HAIKU} takes no on-demand calls in us-east-1 (only INFERENCE_PROFILE)",
        f"use its inference profile (e.g. bedrock:us.{HAIKU}) instead")


def test_unknown_bedrock_model_fails(aws, tmp_path):
    config, world = bedrock_world(tmp_path, ["bedrock:anthropic.claude-9"])
    world.stubbers["bedrock"].add_client_error(
        "get_foundation_model", "ResourceNotFoundException", "Could not resolve the model",
        http_status_code=404, expected_params={"modelIdentifier": "anthropic.claude-9"})
    (row,) = not_passing(run(config, world))
    assert (row.status, row.detail) == (
        "fail", "anthropic.claude-9 is not a Bedrock model in us-east-1")


def test_cross_region_inference_profile_passes(aws, tmp_path):
    profile = f"us.{HAIKU}"
    config, world = bedrock_world(tmp_path, [f"bedrock:{profile}"])
    world.stubbers["bedrock"].add_response("get_inference_profile", {
        "inferenceProfileName": "US Claude 3.5 Haiku", "inferenceProfileId": profile,
        "inferenceProfileArn": f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                               f"{profile}",
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{HAIKU}"}
                   for r in ("us-east-1", "us-east-2", "us-west-2")],
        "status": "ACTIVE", "type": "SYSTEM_DEFINED"}, {"inferenceProfileIdentifier": profile})
    rows = run(config, world)
    world.done()
    assert rows[-1] == Check(f"bedrock qwen-7b -> {profile}", "pass",
                             f"{profile} is an active inference profile over 3 model(s)")


def test_only_bedrock_targets_are_checked_against_bedrock(tmp_path):
    from components.preflight.bedrock import bedrock_fallbacks

    raw = sagemaker_stack()
    raw["llm-hosting:gateway"] = {"enabled": True}
    spare = {**raw["llm-hosting:models"][0], "name": "qwen-spare"}
    raw["llm-hosting:models"][0]["fallbacks"] = ["qwen-spare", f"bedrock:us.{HAIKU}"]
    raw["llm-hosting:models"].append(spare)
    config = stack_config(tmp_path, "dev", raw)
    assert bedrock_fallbacks(config) == [("qwen-7b", f"us.{HAIKU}")]


# ------------------------------------------------------------------- the example stacks, ready


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_example_stacks_pass_in_a_ready_account(aws, stack):
    """Each example stack, as shipped (sizing chooses what it chooses), in an account that has
    its weights, the Spot role, quotas at the peak it needs and EKS's pins: every row passes."""
    from components.facts import charts
    from components.offline import ROOT
    from components.platforms import CAPACITY_DEMANDS
    from components.preflight import load_config
    from components.preflight.eks import ami_parameter, gpu_ami_alias
    from components.preflight.quotas import ON_DEMAND_QUOTAS, SPOT_QUOTAS, quota_class

    config = load_config(stack, ROOT)
    for model in config.models:
        if model.spec.weights_uri:
            bucket, prefix = model.spec.weights_uri.removeprefix("s3://").rstrip("/").split("/", 1)
            seed_weights(bucket, prefix)
    if any(m.spec.capacity == "spot" for m in config.models):
        seed_spot_role()
    world = World(config.region)
    demands = CAPACITY_DEMANDS[config.platform](config)
    if config.platform == "sagemaker":
        codes = {d.instance_type: f"L-EXAMPLE{i}" for i, d in enumerate(demands)}
        world.sagemaker_quotas(codes, {codes[d.instance_type]: d.peak for d in demands})
    else:
        vcpus: dict[str, float] = {}
        for d in demands:
            table = SPOT_QUOTAS if d.purchase == "spot" else ON_DEMAND_QUOTAS
            code = table[quota_class(d.instance_type, d.purchase)].code
            vcpus[code] = vcpus.get(code, 0) + d.peak * 192  # ample: any type's vCPUs
        for code, value in vcpus.items():
            world.ec2_quota(code, value)
    if config.platform == "eks":
        version = config.eks.kubernetes_version
        world.addon_versions(version, {a: [pin] for a, pin in
                                       charts.eks_addons(version).by_addon_name().items()})
        world.parameter(ami_parameter(gpu_ami_alias(config.eks.cold_start), version),
                        "ami-0123456789abcdef0")
    rows = run(config, world)
    world.done()
    assert not_passing(rows) == []


def bottlerocket_world(tmp_path: Path, snapshot: str) -> tuple[Any, World]:
    raw = eks_stack()
    raw["llm-hosting:eks"].update({"coldStart": "bottlerocket-snapshot",
                                   "imageSnapshotId": snapshot})
    config = stack_config(tmp_path, "dev", raw)
    world = World()
    world.ec2_quota("L-DB2E81BA", 12)
    world.ec2_quota("L-1216C47A", 24)
    world.addon_versions(V, {a: [pin] for a, pin in ADDON_PINS.items()})
    world.parameter("/aws/service/bottlerocket/aws-k8s-1.35-nvidia/x86_64/1.65.0/image_id",
                    "ami-0fedcba9876543210")
    return config, world


def test_bottlerocket_snapshot_and_ami_pass(aws, tmp_path):
    ec2 = client("ec2")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    config, world = bottlerocket_world(tmp_path, snapshot)
    rows = run(config, world)
    world.done()
    assert rows[-2:] == [
        Check("eks gpu ami bottlerocket@v1.65.0", "pass", "ami-0fedcba9876543210 for Kubernetes "
              "1.35 (/aws/service/bottlerocket/aws-k8s-1.35-nvidia/x86_64/1.65.0/image_id)"),
        Check(f"eks image snapshot {snapshot}", "pass", f"{snapshot} is completed"),
    ]


def test_missing_image_snapshot_fails(aws, tmp_path):
    config, world = bottlerocket_world(tmp_path, "snap-0123456789abcdef0")
    assert not_passing(run(config, world)) == [Check(
        "eks image snapshot snap-0123456789abcdef0", "fail",
        "snap-0123456789abcdef0 does not exist in us-east-1 (or is not shared with this account)",
        "build it with bottlerocket-images-cache in this region and set "
        "llm-hosting:eks.imageSnapshotId")]


def test_more_azs_than_the_region_has_fails(aws, tmp_path):
    """moto's eu-west-1 has three AZs; awsx would refuse a four-AZ VPC."""
    raw = ecs_stack(capacity="on-demand", modelId="Qwen/Qwen2.5-7B-Instruct",
                    instanceType="g5.xlarge")
    raw["aws:region"] = "eu-west-1"
    raw["llm-hosting:network"] = {"availabilityZones": 4}
    del raw["llm-hosting:models"][0]["weightsUri"]
    config = stack_config(tmp_path, "staging", raw)
    world = World("eu-west-1")
    world.ec2_quota("L-DB2E81BA", 100)
    assert not_passing(run(config, world)) == [Check(
        "availability zones", "fail",
        "eu-west-1 has 3 zone(s); network.availabilityZones is 4 (awsx refuses the VPC)",
        "set llm-hosting:network.availabilityZones to 3 or less")]
