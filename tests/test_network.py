"""Network: private subnets for GPU capacity, endpoints instead of NAT, encrypted flow logs."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from components.config import Network as NetworkConfig
from components.network import (
    FLOW_LOG_RETENTION_DAYS,
    INTERFACE_ENDPOINTS,
    Network,
    NetworkArgs,
    subnet_masks,
)
from components.offline import Graph, run_program
from components.tags import Naming


def build(environment: str = "dev", azs: int = 2, nat: str = "single",
          cidr: str = "10.0.0.0/16") -> Graph:
    def program() -> None:
        naming = Naming("llm-hosting", environment, environment, {"team": "ml"})
        provider = aws.Provider("aws", region="eu-west-1")
        Network(
            "network",
            NetworkArgs(naming, NetworkConfig(cidr, azs, nat), "eu-west-1"),
            pulumi.ResourceOptions(providers={"aws": provider}),
        )

    return run_program({}, stack=environment, program=program)


@pytest.fixture(scope="module")
def dev() -> Graph:
    return build()


@pytest.fixture(scope="module")
def prod() -> Graph:
    return build("prod", azs=3, nat="onePerAz", cidr="10.30.0.0/16")


def test_subnet_masks_fit_six_azs_for_every_allowed_prefix():
    for prefix in range(16, 21):
        masks = subnet_masks(prefix)
        used = 6 * 2 ** (32 - masks.private) + 6 * 2 ** (32 - masks.public)
        assert used <= 2 ** (32 - prefix)


def test_vpc_spans_configured_azs_with_nat_strategy(dev, prod):
    vpc = dev.one("awsx:ec2:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert vpc.inputs["numberOfAvailabilityZones"] == 2
    assert vpc.inputs["natGateways"] == {"strategy": "Single"}
    pvpc = prod.one("awsx:ec2:Vpc")
    assert pvpc.inputs["numberOfAvailabilityZones"] == 3
    assert pvpc.inputs["natGateways"] == {"strategy": "OnePerAz"}
    assert pvpc.inputs["cidrBlock"] == "10.30.0.0/16"


def test_subnets_carry_load_balancer_and_karpenter_tags(dev):
    specs = {s["type"]: s for s in dev.one("awsx:ec2:Vpc").inputs["subnetSpecs"]}
    assert set(specs) == {"Private", "Public"}
    private, public = specs["Private"], specs["Public"]
    assert private["cidrMask"] == 19 and public["cidrMask"] == 22
    assert private["tags"]["kubernetes.io/role/internal-elb"] == "1"
    assert private["tags"]["karpenter.sh/discovery"] == "llm-hosting-dev"
    assert public["tags"]["kubernetes.io/role/elb"] == "1"
    assert "karpenter.sh/discovery" not in public["tags"]  # GPU nodes never land in public subnets
    for spec in (private, public):
        assert spec["tags"]["project"] == "llm-hosting" and spec["tags"]["team"] == "ml"


def test_interface_endpoints_in_private_subnets_behind_https_only_sg(dev):
    endpoints = {e.inputs["serviceName"]: e for e in dev.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    expected = {f"com.amazonaws.eu-west-1.{s}" for s in INTERFACE_ENDPOINTS}
    assert expected | {"com.amazonaws.eu-west-1.s3"} == set(endpoints)
    sg = dev.one("aws:ec2/securityGroup:SecurityGroup")
    for service in expected:
        ep = endpoints[service].inputs
        assert ep["vpcEndpointType"] == "Interface" and ep["privateDnsEnabled"] is True
        assert ep["subnetIds"] == ["subnet-private-0", "subnet-private-1"]
        assert ep["securityGroupIds"] == [f"{sg.name}-id"]
    (rule,) = sg.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
    assert rule["cidrBlocks"] == ["10.0.0.0/16"]
    assert not sg.inputs.get("egress")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_s3_gateway_endpoint_uses_every_route_table_awsx_made(env, dev, prod):
    graph = {"dev": dev, "prod": prod}[env]
    s3 = next(e for e in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
              if e.inputs["serviceName"].endswith(".s3"))
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    azs = graph.one("awsx:ec2:Vpc").inputs["numberOfAvailabilityZones"]
    tables = [f"network-vpc-{kind}-{az}" for az in range(1, int(azs) + 1)
              for kind in ("public", "private")]  # awsx: one table per subnet
    assert sorted(s3.inputs["routeTableIds"]) == sorted(f"{t}-id" for t in tables)
    # From the component's output, in the dependency graph, not from a DescribeRouteTables
    # lookup that would also catch tables other tools add to the VPC.
    assert {f"urn:pulumi:{env}::llm-hosting::aws:ec2/routeTable:RouteTable::{t}"
            for t in tables} <= set(s3.dependencies)
    assert not [i for i in graph.invoked if "getRouteTable" in i.token]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_flow_logs_encrypted_with_retention_per_environment(env, dev, prod):
    graph = {"dev": dev, "prod": prod}[env]
    group = graph.one("aws:cloudwatch/logGroup:LogGroup")
    key = graph.one("aws:kms/key:Key")
    assert group.inputs["retentionInDays"] == FLOW_LOG_RETENTION_DAYS[env]
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert group.protect is key.protect is (env == "prod")
    flow = graph.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["vpcId"] == "vpc-0mock" and flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestination"] == group.outputs["arn"]


def test_logs_key_policy_lets_only_cloudwatch_logs_of_this_account_use_it(dev):
    policy = json.loads(dev.one("aws:kms/key:Key").inputs["policy"])
    logs = next(s for s in policy["Statement"] if s["Sid"] == "CloudWatchLogs")
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:*"
    )


def test_flow_log_role_is_least_privilege(dev):
    role = dev.one("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:eu-west-1:123456789012:vpc-flow-log/*"},
    }
    deliver, find = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])[
        "Statement"]
    group_arn = dev.one("aws:cloudwatch/logGroup:LogGroup").outputs["arn"]
    assert group_arn == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:/llm-hosting/dev/vpc-flow-logs")
    assert deliver["Resource"] == [group_arn, f"{group_arn}:*"]
    # DescribeLogGroups has no resource-level permissions; nothing else is on "*".
    assert find == {"Sid": "FindTheFlowLogGroup", "Effect": "Allow",
                    "Action": "logs:DescribeLogGroups", "Resource": "*"}
    assert not any("*" == a or a.endswith(":*") for a in deliver["Action"])


def test_flow_log_role_has_every_action_aws_documents_for_cloudwatch_logs(dev):
    """https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html: the policy
    "must include at least" these five; the role lacked CreateLogGroup and DescribeLogGroups."""
    statements = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])[
        "Statement"]
    granted = {a for s in statements for a in (
        s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert granted == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                       "logs:DescribeLogGroups", "logs:DescribeLogStreams"}


def test_flow_log_starts_after_its_role_can_write(dev):
    policy = dev.one("aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in dev.one("aws:ec2/flowLog:FlowLog").dependencies


def test_invokes_use_the_explicit_provider(dev):
    assert {i.token for i in dev.invoked} == {
        "aws:index/getCallerIdentity:getCallerIdentity", "aws:index/getPartition:getPartition",
    }
    for invoke in dev.invoked:
        assert "pulumi:providers:aws::aws::" in invoke.provider


def test_default_aws_provider_may_be_disabled():
    """What `pulumi:disable-default-providers: [aws]` does to a `pulumi up`: anything without
    the explicit provider fails. The harness applies the rule; Network passes it."""

    def program() -> None:
        naming = Naming("llm-hosting", "dev", "dev", {})
        provider = aws.Provider("aws", region="eu-west-1")
        Network("network", NetworkArgs(naming, NetworkConfig("10.0.0.0/16", 2, "single"),
                                       "eu-west-1"),
                pulumi.ResourceOptions(providers={"aws": provider}))

    run_program({"pulumi:disable-default-providers": ["aws"]}, program=program)


def test_children_are_parented_and_use_the_explicit_provider(dev):
    network = dev.one("llm-hosting:network:Network")
    children = dev.children_of(network)
    assert len(children) == 1 + 1 + 1 + len(INTERFACE_ENDPOINTS) + 5  # vpc, sg, s3, ..., logs
    for child in children:
        if child.custom:
            assert "pulumi:providers:aws::aws::" in child.provider
    assert all(r.parent for r in dev.resources if r.type.startswith("aws:")
               and not r.type.startswith("pulumi:providers"))
