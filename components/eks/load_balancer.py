"""AWS Load Balancer Controller: turns each model's Ingress into an internal ALB.

Only installed when `llm-hosting:eks.ingress` is `internal-alb`. Its IAM policy follows the
controller's published policy at the pinned release (docs/install/iam_policy.json of
kubernetes-sigs/aws-load-balancer-controller v2.17.1, kept unchanged in
tests/reference/iam/, which tests/test_iam_upstream.py holds this policy to), written here
action by action and narrowed: every mutating call is conditioned on the
`elbv2.k8s.aws/cluster` tag *equal to this cluster* (the published policy only requires the
tag to exist, or nothing), so the controller cannot touch load balancers or security groups of
another cluster in the account. Where AWS's authorization data leaves no condition to narrow
with, the grant matches upstream:

* v2.17.1 creates listeners and rules *with tags* (the `ListenerRulesTagging` feature gate,
  on by default: pkg/config/feature_gates.go; the tags are the stack's, including
  `elbv2.k8s.aws/cluster`, pkg/deploy/elbv2/listener_manager.go and tracking/provider.go).
  Tags in a create request are authorized as `elasticloadbalancing:AddTags` on the new
  listener/rule, which has no tags yet: an `aws:ResourceTag` condition can never hold there.
  Tag-on-create is allowed by the create action and the request's cluster tag instead.
* `SetRulePriorities` carries no condition key at all (Service Authorization Reference), so it
  is granted on listener rules unconditioned, as upstream grants it on `*`.

Describe calls cannot be scoped by resource and stay on `*`. What upstream grants that is not
granted here (WAF, Shield, Cognito, capacity reservations, IPAM pools) is listed with its reason
in tests/test_iam_upstream.py; the Helm values turn those add-ons off so the controller never
tries them.
https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/installation/
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.eks.monitoring import ChartPin
from components.eks.roles import pod_identity_role
from components.tags import Naming

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"

_DESCRIBE = [
    "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeCoipPools",
    "ec2:GetCoipPoolUsage", "ec2:DescribeRouteTables", "ec2:GetSecurityGroupsForVpc",
    "ec2:DescribeIpamPools",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeCapacityReservation",
    "acm:ListCertificates", "acm:DescribeCertificate",
    "iam:ListServerCertificates", "iam:GetServerCertificate",
    "wafv2:GetWebACL", "wafv2:GetWebACLForResource", "shield:GetSubscriptionState",
]


def controller_policy(*, cluster_name: str, region: str, account: str,
                      partition: str = "aws") -> dict[str, Any]:
    """The controller's permissions, mutations scoped to resources tagged for this cluster."""
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    elb = f"arn:{partition}:elasticloadbalancing:{region}:{account}"
    ours = {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name}}
    tagging_ours = {"StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}}
    lb_arns = [f"{elb}:loadbalancer/app/*/*", f"{elb}:loadbalancer/net/*/*",
               f"{elb}:targetgroup/*/*"]
    listener_arns = [f"{elb}:listener/app/*/*/*", f"{elb}:listener-rule/app/*/*/*/*",
                     f"{elb}:listener/net/*/*/*", f"{elb}:listener-rule/net/*/*/*/*"]
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ServiceLinkedRole", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
         "Resource": "*", "Condition": {"StringEquals": {
             "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}},
        {"Sid": "Describe", "Effect": "Allow", "Action": _DESCRIBE, "Resource": "*"},
        {"Sid": "CreateTaggedSecurityGroup", "Effect": "Allow",
         "Action": "ec2:CreateSecurityGroup", "Resource": [f"{ec2}:security-group/*"],
         "Condition": tagging_ours},
        {"Sid": "CreateSecurityGroupInVpc", "Effect": "Allow",
         "Action": "ec2:CreateSecurityGroup", "Resource": [f"{ec2}:vpc/*"]},
        {"Sid": "TagOnCreateSecurityGroup", "Effect": "Allow", "Action": "ec2:CreateTags",
         "Resource": [f"{ec2}:security-group/*"],
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup",
                                        f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}}},
        {"Sid": "ManageOwnSecurityGroups", "Effect": "Allow",
         "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup", "ec2:CreateTags", "ec2:DeleteTags"],
         "Resource": [f"{ec2}:security-group/*"], "Condition": ours},
        # Node/pod security groups the controller opens to its ALB are not tagged by it.
        {"Sid": "OpenTargetsToOwnAlbs", "Effect": "Allow",
         "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
         "Resource": [f"{ec2}:security-group/*"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}":
                                        "owned"}}},
        {"Sid": "CreateTaggedLoadBalancers", "Effect": "Allow",
         "Action": ["elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup"],
         "Resource": lb_arns, "Condition": tagging_ours},
        {"Sid": "TagOnCreate", "Effect": "Allow", "Action": "elasticloadbalancing:AddTags",
         "Resource": lb_arns, "Condition": {
             "StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name,
                              "elasticloadbalancing:CreateAction": [
                                  "CreateTargetGroup", "CreateLoadBalancer"]}}},
        {"Sid": "ManageOwnLoadBalancers", "Effect": "Allow",
         "Action": ["elasticloadbalancing:ModifyLoadBalancerAttributes",
                    "elasticloadbalancing:SetIpAddressType",
                    "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
                    "elasticloadbalancing:DeleteLoadBalancer",
                    "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    "elasticloadbalancing:DeleteTargetGroup",
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                    "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
                    "elasticloadbalancing:CreateListener"],
         "Resource": lb_arns, "Condition": ours},
        {"Sid": "ManageListenersOfOwnAlbs", "Effect": "Allow",
         "Action": ["elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule",
                    "elasticloadbalancing:ModifyRule", "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:ModifyListenerAttributes",
                    "elasticloadbalancing:AddListenerCertificates",
                    "elasticloadbalancing:RemoveListenerCertificates",
                    "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
         "Resource": listener_arns, "Condition": ours},
        # Listeners and rules are created with tags: AddTags on the new resource, which has
        # none yet (see the module docstring).
        {"Sid": "TagOnCreateListenersAndRules", "Effect": "Allow",
         "Action": "elasticloadbalancing:AddTags", "Resource": listener_arns,
         "Condition": {"StringEquals": {
             f"aws:RequestTag/{CLUSTER_TAG}": cluster_name,
             "elasticloadbalancing:CreateAction": ["CreateListener", "CreateRule"]}}},
        # No condition key exists for SetRulePriorities (see the module docstring).
        {"Sid": "ReorderRules", "Effect": "Allow",
         "Action": "elasticloadbalancing:SetRulePriorities",
         "Resource": [f"{elb}:listener-rule/app/*/*/*/*", f"{elb}:listener-rule/net/*/*/*/*"]},
    ]}


def controller_values(*, cluster_name: Any, region: str, vpc_id: Any,
                      system_node_selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,  # no IMDS lookup: serving nodes keep hop limit 1
        "replicaCount": 2,
        "nodeSelector": dict(system_node_selector),
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "podDisruptionBudget": {"maxUnavailable": 1},
        # Only Ingresses with ingressClassName alb; Services stay ClusterIP unless asked.
        "enableServiceMutatorWebhook": False,
        "createIngressClassResource": True,
        "ingressClass": "alb",
        # No Ingress here asks for WAF, WAF Classic or Shield, and the role grants none of
        # their calls (tests/test_iam_upstream.py): the add-ons are off.
        "enableWaf": False,
        "enableWafv2": False,
        "enableShield": False,
    }


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    naming: Naming
    chart: ChartPin
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    system_node_selector: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    release_depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What the Helm release waits for besides its identity: the system node group."""


class LoadBalancerController(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:eks:LoadBalancerController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        _, identity = pod_identity_role(
            role_name=f"{name}-role",
            policy_name=f"{name}-policy",
            association_name=f"{name}-pod-identity",
            description="AWS Load Balancer Controller (Pod Identity)",
            account=account.account_id,
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.all(account.account_id, args.cluster_name,
                                     partition.partition).apply(
                lambda a: json.dumps(controller_policy(
                    cluster_name=a[1], region=args.region, account=a[0], partition=a[2]))),
            tags=args.naming.tags(),
            opts=child,
            depends_on=args.depends_on,
        )
        pin = args.chart
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name="aws-load-balancer-controller", namespace=NAMESPACE,
            chart=pin.chart, version=pin.version, repository_opts={"repo": pin.repo},
            values=controller_values(cluster_name=args.cluster_name, region=args.region,
                                     vpc_id=args.vpc_id,
                                     system_node_selector=args.system_node_selector),
            atomic=True, cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[identity, *args.release_depends_on]))
        self.register_outputs({})
