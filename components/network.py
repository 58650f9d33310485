"""The VPC every platform runs in: private subnets for GPU capacity, endpoints, flow logs.

GPU workloads only ever land in private subnets. Model pulls (ECR, S3) and control traffic (STS,
SageMaker, CloudWatch, SSM) go through VPC endpoints, which keeps them off the internet and off
the NAT bill: a 70B model's 140 GB of weights through a NAT gateway costs about $6 per pull
(us-east-1 NAT data processing, $0.045/GB), every time a node starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from components.config import Network as NetworkConfig
from components.tags import Naming

BASE_INTERFACE_ENDPOINTS: tuple[str, ...] = ("ecr.api", "ecr.dkr", "sts", "logs")
"""Interface endpoints every platform uses: ECR image pulls, STS (Pod Identity and role
sessions), CloudWatch Logs."""
SAGEMAKER_ENDPOINTS: tuple[str, ...] = ("sagemaker.api", "sagemaker.runtime")
"""SageMaker control and runtime APIs, for clients inside the VPC."""
NODE_ACCESS_ENDPOINTS: tuple[str, ...] = ("ssm", "ssmmessages", "ec2messages")
"""Session Manager access to our own EC2 GPU hosts without SSH or a bastion."""
INTERFACE_ENDPOINTS: tuple[str, ...] = (
    *BASE_INTERFACE_ENDPOINTS, *SAGEMAKER_ENDPOINTS, *NODE_ACCESS_ENDPOINTS
)
"""All of them: the default when a caller does not say which platform runs in the VPC.
Each interface endpoint costs about $7/month per AZ, so a platform asks only for its own."""

ELB_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
"""TLS 1.3 and 1.2 only, forward-secret ciphers: every HTTPS listener the platforms create.
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html"""

FLOW_LOG_RETENTION_DAYS: dict[str, int] = {"dev": 30, "staging": 90, "prod": 365}
"""Flow-log retention per environment; prod keeps a year for incident forensics."""


@dataclass(frozen=True)
class SubnetMasks:
    private: int
    public: int
    load_balancer: int


def subnet_masks(vpc_prefix: int) -> SubnetMasks:
    """Private subnets get 1/8 of the VPC each (EKS's VPC CNI gives every pod a VPC IP), public
    ones 1/64 (only load balancers and NAT gateways live there). Six AZs use 6/8 + 6/64 of the
    range, so every configurable AZ count fits. Dedicated load-balancer subnets (EKS) are as
    small as the public ones: /26 in the smallest VPC (/20), above the /27 an ALB needs."""
    return SubnetMasks(private=vpc_prefix + 3, public=vpc_prefix + 6,
                       load_balancer=vpc_prefix + 6)


LOAD_BALANCER_SUBNETS = "loadbalancer"
"""Name of the dedicated load-balancer subnet spec (awsx names the subnets
`<vpc>-loadbalancer-<az>`)."""


@dataclass(frozen=True)
class NetworkArgs:
    naming: Naming
    config: NetworkConfig
    region: str
    interface_endpoints: tuple[str, ...] = INTERFACE_ENDPOINTS
    load_balancer_subnets: bool = False
    """Add isolated subnets that hold only internal load balancers, so a NetworkPolicy can admit
    the load balancer by CIDR without admitting every pod (EKS with `ip` targets)."""


class Network(pulumi.ComponentResource):
    """VPC (awsx) across the configured AZs, VPC endpoints, and flow logs to an encrypted group."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    vpc_cidr: str
    load_balancer_subnet_ids: pulumi.Output[list[str]]
    """The dedicated load-balancer subnets ([] unless `load_balancer_subnets`)."""
    load_balancer_cidrs: pulumi.Output[list[str]]
    """Their CIDR blocks, one per AZ, in AZ order."""
    endpoint_security_group_id: pulumi.Output[str]
    logs_kms_key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, cfg = args.naming, args.config
        self.vpc_cidr = cfg.cidr_block

        vpc = self._vpc(name, naming, cfg, child, args.load_balancer_subnets)
        self.vpc_id = vpc.vpc_id
        self.private_subnet_ids = vpc.private_subnet_ids
        self.public_subnet_ids = vpc.public_subnet_ids
        self.load_balancer_subnet_ids = vpc.isolated_subnet_ids
        self.load_balancer_cidrs = pulumi.Output.all(
            vpc.subnets, vpc.isolated_subnet_ids).apply(_isolated_cidrs)

        self._endpoints(name, args, vpc, child)
        self.logs_kms_key_arn = self._flow_logs(name, args, child)

        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
                "endpointSecurityGroupId": self.endpoint_security_group_id,
                "logsKmsKeyArn": self.logs_kms_key_arn,
            }
        )

    def _vpc(
        self, name: str, naming: Naming, cfg: NetworkConfig, opts: pulumi.ResourceOptions,
        load_balancer_subnets: bool = False,
    ) -> awsx.ec2.Vpc:
        masks = subnet_masks(int(cfg.cidr_block.split("/")[1]))
        discovery = {"karpenter.sh/discovery": naming.cluster_name}
        # Appended last: with the `Auto` strategy awsx allocates each AZ's subnets in spec
        # order ("Order remains as specified by specs", pulumi-awsx SubnetAllocationStrategy;
        # awsx/ec2/subnetDistributorNew.ts), so adding it leaves every existing subnet's range
        # and name unchanged. Isolated: no route to a NAT or internet gateway, which an internal
        # ALB never needs (it reaches targets over the VPC's local route).
        extra = [awsx.ec2.SubnetSpecArgs(
            type=awsx.ec2.SubnetType.ISOLATED,
            name=LOAD_BALANCER_SUBNETS,
            cidr_mask=masks.load_balancer,
            tags={**naming.tags(), "llm-hosting/subnet-role": "load-balancer"},
        )] if load_balancer_subnets else []
        return awsx.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cfg.cidr_block,
            number_of_availability_zones=cfg.availability_zones,
            nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                strategy=(
                    awsx.ec2.NatGatewayStrategy.SINGLE
                    if cfg.nat_gateways == "single"
                    else awsx.ec2.NatGatewayStrategy.ONE_PER_AZ
                )
            ),
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PRIVATE,
                    name="private",
                    cidr_mask=masks.private,
                    tags={**naming.tags(), "kubernetes.io/role/internal-elb": "1", **discovery},
                ),
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PUBLIC,
                    name="public",
                    cidr_mask=masks.public,
                    tags={**naming.tags(), "kubernetes.io/role/elb": "1"},
                ),
                *extra,
            ],
            enable_dns_hostnames=True,  # required for interface endpoints' private DNS
            enable_dns_support=True,
            tags={**naming.tags(), "Name": naming.physical()},
            opts=opts,
        )

    def _endpoints(
        self, name: str, args: NetworkArgs, vpc: awsx.ec2.Vpc, opts: pulumi.ResourceOptions
    ) -> None:
        naming, region = args.naming, args.region
        sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            description="VPC interface endpoints: HTTPS from inside the VPC only",
            vpc_id=vpc.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="HTTPS from the VPC",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[args.config.cidr_block],
                )
            ],
            tags={**naming.tags(), "Name": naming.physical("endpoints")},
            opts=opts,
        )
        self.endpoint_security_group_id = sg.id

        # A gateway endpoint works through routes: it goes into every route table awsx made
        # (one per subnet, so per-AZ private tables too). Taken from the component's
        # `route_tables` output rather than a DescribeRouteTables lookup: the ids are in the
        # dependency graph (no invoke gated on a remote component, no ec2:DescribeRouteTables
        # at every preview, no route tables that other tools added to the VPC or its main table)
        # and a new AZ's table joins in the same update.
        route_table_ids = vpc.route_tables.apply(
            lambda tables: pulumi.Output.all(*[t.id for t in tables])
        )
        aws.ec2.VpcEndpoint(
            f"{name}-endpoint-s3",
            vpc_id=vpc.vpc_id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=route_table_ids,
            tags={**naming.tags(), "Name": naming.physical("s3")},
            opts=opts,
        )
        # No endpoint policies (AWS's default: full access through the endpoint, IAM decides).
        # The usual perimeter condition, `aws:PrincipalAccount`, would break IRSA: its
        # sts:AssumeRoleWithWebIdentity call is unsigned, so it has no principal; and an S3
        # policy limited to our buckets would break image pulls, whose ECR layers live in
        # AWS-owned buckets (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html).
        for service in args.interface_endpoints:
            slug = service.replace(".", "-")
            aws.ec2.VpcEndpoint(
                f"{name}-endpoint-{slug}",
                vpc_id=vpc.vpc_id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=vpc.private_subnet_ids,
                security_group_ids=[sg.id],
                tags={**naming.tags(), "Name": naming.physical(slug)},
                opts=opts,
            )

    def _flow_logs(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        naming, region = args.naming, args.region
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        prod = naming.protect

        key = aws.kms.Key(
            f"{name}-logs-key",
            description=f"{naming.prefix}: CloudWatch Logs encryption (flow logs, serving logs)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(account, partition).apply(
                lambda ap: logs_key_policy(account=ap[0], partition=ap[1], region=region)
            ),
            tags=naming.tags(),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=prod)),
        )
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/llm-hosting/{naming.stack}/vpc-flow-logs",
            retention_in_days=FLOW_LOG_RETENTION_DAYS[naming.environment],
            kms_key_id=key.arn,
            tags=naming.tags(),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=prod)),
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description="Lets VPC Flow Logs write to this stack's flow-log group only",
            assume_role_policy=pulumi.Output.all(account, partition).apply(
                lambda ap: flow_logs_trust_policy(account=ap[0], partition=ap[1], region=region)
            ),
            tags=naming.tags(),
            opts=opts,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=group.arn.apply(flow_logs_role_policy),
            opts=opts,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=naming.tags(),
            # Delivery starts at creation: the role must already hold its permissions, or the
            # flow log reports an access error until IAM catches up.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[policy])),
        )
        return key.arn


FLOW_LOG_DELIVERY_ACTIONS: tuple[str, ...] = (
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
    "logs:DescribeLogGroups", "logs:DescribeLogStreams",
)
"""What AWS documents the flow-log role must allow to publish to CloudWatch Logs ("must
include at least the following permissions"):
https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html"""


def flow_logs_role_policy(log_group_arn: str) -> str:
    """The documented delivery actions, on this stack's flow-log group only; DescribeLogGroups
    has no resource-level permissions (AWS's Service Authorization Reference), so it alone
    takes `*` (it reads names, no log data)."""
    scoped = [a for a in FLOW_LOG_DELIVERY_ACTIONS if a != "logs:DescribeLogGroups"]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DeliverToTheFlowLogGroup", "Effect": "Allow", "Action": scoped,
             "Resource": [log_group_arn, f"{log_group_arn}:*"]},
            {"Sid": "FindTheFlowLogGroup", "Effect": "Allow",
             "Action": "logs:DescribeLogGroups", "Resource": "*"},
        ],
    })


def flow_logs_trust_policy(*, account: str, partition: str, region: str) -> str:
    """Only VPC Flow Logs, acting for this account's flow logs, may assume the role.

    `aws:SourceAccount` and `aws:SourceArn` guard against the confused deputy:
    https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html
    """
    flow_logs = f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": flow_logs},
                    },
                }
            ],
        }
    )


def logs_key_policy(*, account: str, partition: str, region: str) -> str:
    """Key policy letting CloudWatch Logs in this region use the key for this account's groups.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministration",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    # AWS's example key policy also lists kms:Describe*, under the same
                    # encryption-context condition; no Describe action carries that key
                    # (Service Authorization Reference), so it could never be allowed there:
                    # left out, nothing changes (tests/iam_reference.py reports it).
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:{partition}:logs:{region}:{account}:log-group:*"
                            )
                        }
                    },
                },
            ],
        }
    )


def _isolated_cidrs(values: list[Any]) -> Any:
    """CIDR blocks of the isolated subnets, in the order of `isolated_subnet_ids` (awsx gives
    the subnets as resources; their ids and ranges are outputs of their own)."""
    subnets, isolated = values
    if not isolated:
        return []
    pairs = pulumi.Output.all(*[pulumi.Output.all(s.id, s.cidr_block) for s in subnets])
    return pairs.apply(lambda ps: [dict(ps)[i] for i in isolated if i in dict(ps)])
