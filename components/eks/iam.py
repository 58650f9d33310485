"""IAM documents for the EKS platform, as pure functions (tested without Pulumi).

Each returns a JSON string ready for `assume_role_policy` / `policy`. Scoping follows the
documents they come from: the Karpenter controller policy is the v1 getting-started
CloudFormation template's `KarpenterControllerPolicy`, narrowed where this program makes that
possible (an instance profile we create, so Karpenter never creates or deletes profiles).
"""

from __future__ import annotations

import json
from typing import Any

NODE_MANAGED_POLICIES: tuple[str, ...] = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
"""AWS managed policies every node role gets: kubelet registration, the VPC CNI (which runs with
the node's credentials), image pulls (`PullOnly`, the narrower successor of `ReadOnly`) and
Session Manager access instead of SSH.
https://docs.aws.amazon.com/eks/latest/userguide/create-node-role.html"""

CLUSTER_MANAGED_POLICIES: tuple[str, ...] = ("AmazonEKSClusterPolicy",)
"""https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html"""


def _doc(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=None)


def service_assume_role_policy(service: str, account: str) -> str:
    """Trust for an AWS service principal (`ec2.amazonaws.com`, `eks.amazonaws.com`), limited
    to calls made on behalf of this account (confused-deputy protection)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"] if service.startswith("eks.")
        else "sts:AssumeRole",
    }
    if not service.startswith("ec2."):
        # EC2 does not send aws:SourceAccount when an instance assumes its profile role.
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return _doc([statement])


def pod_identity_trust_policy(
    *, account: str, cluster_name: str, namespace: str, service_account: str
) -> str:
    """Trust for an EKS Pod Identity role, scoped to one service account on one cluster.

    Pod Identity assumes the role with session tags (hence `sts:TagSession`); conditioning on
    them means no other association in the account can use the role.
    https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html
    """
    return _doc([{
        "Sid": "AllowEksPodIdentity",
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:SourceAccount": account,
            "aws:RequestTag/eks-cluster-name": cluster_name,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }},
    }])


def cluster_encryption_policy(key_arn: str) -> str:
    """Lets the cluster role use the secrets-encryption key (envelope encryption of Secrets).
    https://docs.aws.amazon.com/eks/latest/userguide/enable-kms.html"""
    return _doc([{
        "Sid": "ClusterSecretsEncryption",
        "Effect": "Allow",
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
        "Resource": key_arn,
    }])


def secrets_key_policy(*, account: str, partition: str) -> str:
    """Key policy of the secrets key: the account administers it and delegates use to IAM
    (the cluster role's inline policy above); nothing else is granted here."""
    return _doc([{
        "Sid": "AccountAdministration",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }])


def karpenter_controller_policy(
    *,
    partition: str,
    region: str,
    account: str,
    cluster_name: str,
    queue_arn: str,
    node_role_arn: str,
    instance_profile_arn: str,
) -> str:
    """Karpenter v1 controller permissions, scoped to this cluster, region and account.

    Statement for statement the controller policies of Karpenter's v1.14.1 getting-started
    CloudFormation template (aws/karpenter-provider-aws, kept unchanged in
    tests/reference/iam/karpenter-v1.14.1-cloudformation.yaml; tests/test_iam_upstream.py
    lists every difference): launches may use capacity reservations and placement groups (1.14
    launches into ODCRs and Capacity Blocks a NodeClass selects). Narrowings: every
    `arn:...:*:` account wildcard is this account (capacity reservations shared from another
    account through RAM would need it back); because the EC2NodeClass names an instance profile
    we create, the statements letting Karpenter create, tag, modify and delete instance
    profiles are left out (it may only read ours); the ARC zonal shift read is left out
    (`settings.enableZonalShift` is off, the chart's default).
    """
    ec2 = f"arn:{partition}:ec2:{region}"
    cluster_tag = f"kubernetes.io/cluster/{cluster_name}"
    created = [f"{ec2}:{account}:{kind}/*" for kind in (
        "fleet", "instance", "volume", "network-interface", "launch-template",
        "spot-instances-request",
    )]
    return _doc([
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Effect": "Allow",
            "Resource": [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:{account}:security-group/*",
                f"{ec2}:{account}:subnet/*",
                f"{ec2}:{account}:capacity-reservation/*",
                f"{ec2}:{account}:placement-group/*",
            ],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Effect": "Allow",
            "Resource": f"{ec2}:{account}:launch-template/*",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Resource": created,
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Condition": {
                "StringEquals": {
                    f"aws:RequestTag/{cluster_tag}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Resource": created,
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {
                    f"aws:RequestTag/{cluster_tag}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Resource": f"{ec2}:{account}:instance/*",
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"],
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Resource": [f"{ec2}:{account}:instance/*", f"{ec2}:{account}:launch-template/*"],
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            # Describe* calls take no resource ARN (IAM requires "*"); the region condition is
            # the narrowest scope the API allows.
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {
            "Sid": "AllowSSMReadActions",
            "Effect": "Allow",
            "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
            "Action": "ssm:GetParameter",
        },
        {
            # The Price List API has no resource-level permissions.
            "Sid": "AllowPricingReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": "pricing:GetProducts",
        },
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Resource": queue_arn,
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        },
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Resource": node_role_arn,
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Resource": instance_profile_arn,
            "Action": "iam:GetInstanceProfile",
        },
        {
            # ListInstanceProfiles supports no resource-level scoping.
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Effect": "Allow",
            "Resource": "*",
            "Action": "iam:ListInstanceProfiles",
        },
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Resource": f"arn:{partition}:eks:{region}:{account}:cluster/{cluster_name}",
            "Action": "eks:DescribeCluster",
        },
    ])


def interruption_queue_policy(*, queue_arn: str, rule_arns: list[str]) -> str:
    """Queue policy: EventBridge may deliver only from our five rules; TLS is mandatory.

    The template grants `events.amazonaws.com` and `sqs.amazonaws.com` without conditions; we
    keep EventBridge (the only sender) and pin it to the rules' ARNs.
    """
    return _doc([
        {
            "Sid": "EventBridgeRulesOnly",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
        },
        {
            "Sid": "DenyHTTP",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ])
