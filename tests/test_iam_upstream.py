"""Ours against upstream: the Karpenter and AWS Load Balancer Controller policies we mirror.

The published documents live unchanged in tests/reference/iam/ (see its README for the source
and release). Compared as (action, resource type) pairs from AWS's authorization data
(`Checker.grants`), conditions aside: ours narrows with conditions and account-scoped ARNs on
purpose, and `tests/test_iam.py` checks that every condition can hold. What upstream grants and
we do not, and anything we grant beyond upstream, is listed here with its reason; an unlisted
difference either way fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from components.eks.iam import NODE_MANAGED_POLICIES
from components.eks.karpenter import INTERRUPTION_RULES
from components.offline import Graph
from tests.iam_matrix import graph
from tests.iam_reference import Checker

REFERENCE = Path(__file__).parent / "reference" / "iam"
KARPENTER_TEMPLATE = REFERENCE / "karpenter-v1.14.1-cloudformation.yaml"
ALB_POLICY = REFERENCE / "aws-load-balancer-controller-v2.17.1-iam_policy.json"
CHECKER = Checker()

# --- what upstream grants that we chose not to grant, with the reason --------------------------

KARPENTER_NOT_GRANTED: dict[tuple[str, str], str] = {
    **{(f"iam:{action}", "instance-profile"):
       "Karpenter never manages instance profiles here: the program creates the node role's "
       "profile and every EC2NodeClass names it (`spec.instanceProfile`), so Karpenter only "
       "reads it (iam:GetInstanceProfile, on that profile alone)"
       for action in ("CreateInstanceProfile", "TagInstanceProfile", "AddRoleToInstanceProfile",
                      "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile")},
    **{("arc-zonal-shift:GetManagedResource", rt):
       "ARC zonal shift awareness is off (`settings.enableZonalShift`, the chart's default "
       "false): the controller never calls it"
       for rt in ("ALB", "NLB")},
}

ALB_UNUSED_ADDON = ("the WAF, WAF Classic and Shield add-ons are off in the controller's values "
                    "(enableWaf/enableWafv2/enableShield: false) and no Ingress here carries "
                    "their annotations, so the controller makes none of these calls")
ALB_NOT_GRANTED: dict[tuple[str, str], str] = {
    ("cognito-idp:DescribeUserPoolClient", "userpool"):
        "Cognito authentication on the ALB is not used (no auth-type annotation)",
    **{("elasticloadbalancing:ModifyCapacityReservation", rt):
       "ALB capacity reservations (minimum-load-balancer-capacity annotation) are not used"
       for rt in ("loadbalancer/app/", "loadbalancer/net/", "loadbalancer/gwy/")},
    ("elasticloadbalancing:ModifyIpPools", "loadbalancer/app/"):
        "IPAM IPv4 pools for the ALB (ipam-ipv4-pool-id annotation) are not used",
    ("elasticloadbalancing:SetWebAcl", ""): ALB_UNUSED_ADDON,
    ("shield:CreateProtection", ""): ALB_UNUSED_ADDON,
    ("shield:DeleteProtection", "protection"): ALB_UNUSED_ADDON,
    ("shield:DescribeProtection", "protection"): ALB_UNUSED_ADDON,
    ("waf-regional:AssociateWebACL", "loadbalancer/app/"): ALB_UNUSED_ADDON,
    ("waf-regional:AssociateWebACL", "webacl"): ALB_UNUSED_ADDON,
    ("waf-regional:DisassociateWebACL", "loadbalancer/app/"): ALB_UNUSED_ADDON,
    ("waf-regional:GetWebACL", "webacl"): ALB_UNUSED_ADDON,
    ("waf-regional:GetWebACLForResource", "loadbalancer/app/"): ALB_UNUSED_ADDON,
    ("wafv2:AssociateWebACL", "webacl"): ALB_UNUSED_ADDON,
    **{("wafv2:DisassociateWebACL", rt): ALB_UNUSED_ADDON
       for rt in ("amplify-app", "apigateway", "apprunner", "appsync", "loadbalancer/app/",
                  "userpool", "verified-access-instance")},
    **{(action, rt):
       "Gateway Load Balancers: the controller builds ALBs here (ingress class alb); upstream's "
       "`*` also covers GWLB resource types, which AWS lists as required alternatives"
       for action, rt in (
           ("elasticloadbalancing:CreateListener", "loadbalancer/gwy/"),
           ("elasticloadbalancing:CreateLoadBalancer", "loadbalancer/gwy/"),
           ("elasticloadbalancing:DeleteListener", "listener/gwy"),
           ("elasticloadbalancing:DeleteLoadBalancer", "loadbalancer/gwy/"),
           ("elasticloadbalancing:ModifyListener", "listener/gwy"),
           ("elasticloadbalancing:ModifyListenerAttributes", "listener/gwy"),
           ("elasticloadbalancing:ModifyLoadBalancerAttributes", "loadbalancer/gwy/"),
           ("elasticloadbalancing:SetIpAddressType", "loadbalancer/gwy/"),
           ("elasticloadbalancing:SetSubnets", "loadbalancer/gwy/"),
       )},
}

# --- loading the references -------------------------------------------------------------------


class _CloudFormation(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (`!Sub`, `!Ref`, `!GetAtt`) as text."""


for _tag in ("!Sub", "!Ref", "!GetAtt"):
    _CloudFormation.add_constructor(
        _tag, lambda loader, node: loader.construct_scalar(node)
        if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node))

SUBSTITUTIONS = {
    "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com", "ClusterName": "llm-hosting-prod",
    "KarpenterNodeRole.Arn": "arn:aws:iam::123456789012:role/KarpenterNodeRole-llm-hosting-prod",
    "KarpenterInterruptionQueue.Arn": "arn:aws:sqs:us-east-1:123456789012:llm-hosting-prod",
}


def karpenter_template() -> dict[str, Any]:
    return yaml.load(KARPENTER_TEMPLATE.read_text(), Loader=_CloudFormation)


def karpenter_controller_statements() -> list[dict[str, Any]]:
    """Every statement of the template's managed policies (the controller's role)."""
    out: list[dict[str, Any]] = []
    for resource in karpenter_template()["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            text = re.sub(r"\$\{([^}]+)\}", lambda m: SUBSTITUTIONS[m.group(1)],
                          resource["Properties"]["PolicyDocument"])
            out += json.loads(text)["Statement"]
    return out


def policy(g: Graph, name: str) -> list[dict[str, Any]]:
    return json.loads(g.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])["Statement"]


def compare(upstream: list[dict[str, Any]], ours: list[dict[str, Any]]
            ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(what upstream grants that ours does not, what ours grants that upstream does not)."""
    missing = CHECKER.grants(upstream) - CHECKER.grants(ours, star="all")
    extra = CHECKER.grants(ours) - CHECKER.grants(upstream, star="all")
    return missing, extra


# --- Karpenter v1.14.1 ------------------------------------------------------------------------


def test_karpenter_controller_grants_everything_upstream_grants_for_what_we_use():
    missing, extra = compare(karpenter_controller_statements(),
                             policy(graph("Pulumi.prod.yaml"), "eks-karpenter-controller-policy"))
    assert missing == set(KARPENTER_NOT_GRANTED)
    assert extra == set()  # e.g. ec2:DescribeAvailabilityZones, which 1.14 no longer calls


def test_karpenter_launches_may_use_capacity_reservations_and_placement_groups():
    statements = {s["Sid"]: s for s in policy(graph("Pulumi.prod.yaml"),
                                              "eks-karpenter-controller-policy")}
    scoped = statements["AllowScopedEC2InstanceAccessActions"]
    assert {r.rsplit(":", 1)[-1] for r in scoped["Resource"]} >= {
        "capacity-reservation/*", "placement-group/*"}
    upstream = {s["Sid"]: s for s in karpenter_controller_statements()}
    assert len(scoped["Resource"]) == len(
        upstream["AllowScopedEC2InstanceAccessActions"]["Resource"])


def test_karpenter_has_the_five_interruption_rules_of_the_template():
    resources = karpenter_template()["Resources"].values()
    upstream = sorted(json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
                      for r in resources if r["Type"] == "AWS::Events::Rule")
    assert len(upstream) == 5
    ours = sorted(json.dumps(p, sort_keys=True) for p in INTERRUPTION_RULES.values())
    assert ours == upstream
    deployed = sorted(json.dumps(json.loads(r.inputs["eventPattern"]), sort_keys=True)
                      for r in graph("Pulumi.prod.yaml").of_type(
                          "aws:cloudwatch/eventRule:EventRule"))
    assert deployed == upstream


def test_karpenter_queue_and_node_role_match_the_template():
    resources = karpenter_template()["Resources"]
    queue = resources["KarpenterInterruptionQueue"]["Properties"]
    prod = graph("Pulumi.prod.yaml")
    ours = prod.one("aws:sqs/queue:Queue", "eks-karpenter-interruption").inputs
    assert ours["messageRetentionSeconds"] == queue["MessageRetentionPeriod"]
    assert ours["sqsManagedSseEnabled"] is queue["SqsManagedSseEnabled"]
    upstream_senders = resources["KarpenterInterruptionQueuePolicy"]["Properties"][
        "PolicyDocument"]["Statement"][0]["Principal"]["Service"]
    (allow, _) = json.loads(prod.one("aws:sqs/queuePolicy:QueuePolicy",
                                     "eks-karpenter-interruption-policy").inputs["policy"])[
        "Statement"]
    # Only EventBridge sends to the queue: upstream's sqs.amazonaws.com principal grants
    # nothing the queue needs, and ours is pinned to the five rules' ARNs.
    assert set(upstream_senders) - {allow["Principal"]["Service"]} == {"sqs.amazonaws.com"}
    managed = resources["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"]
    assert {arn.rsplit("/", 1)[-1] for arn in managed} == set(NODE_MANAGED_POLICIES)


# --- AWS Load Balancer Controller v2.17.1 ----------------------------------------------------


def alb_policy() -> list[dict[str, Any]]:
    return policy(graph("eks-amp-alb"), "eks-alb-controller-policy")


def test_alb_controller_grants_everything_upstream_grants_for_what_we_use():
    upstream = json.loads(ALB_POLICY.read_text())["Statement"]
    missing, extra = compare(upstream, alb_policy())
    assert missing == set(ALB_NOT_GRANTED)
    assert extra == set()


def test_alb_controller_can_tag_the_listeners_and_rules_it_creates():
    """v2.17.1 creates listeners and rules with tags (ListenerRulesTagging, on by default): AddTags
    on a resource being created cannot meet `aws:ResourceTag`, so before this statement every
    listener was denied."""
    statements = {s["Sid"]: s for s in alb_policy()}
    tag_on_create = statements["TagOnCreateListenersAndRules"]
    assert tag_on_create["Action"] == "elasticloadbalancing:AddTags"
    assert {r.split(":", 5)[-1] for r in tag_on_create["Resource"]} == {
        "listener/app/*/*/*", "listener/net/*/*/*", "listener-rule/app/*/*/*/*",
        "listener-rule/net/*/*/*/*"}
    assert tag_on_create["Condition"] == {"StringEquals": {
        "aws:RequestTag/elbv2.k8s.aws/cluster": "llm-hosting-prod",
        "elasticloadbalancing:CreateAction": ["CreateListener", "CreateRule"]}}
    assert not [s for s in statements.values()
                if "aws:ResourceTag" in json.dumps(s.get("Condition", {}))
                and "elasticloadbalancing:CreateAction" in json.dumps(s.get("Condition", {}))]


def test_alb_controller_may_reorder_rules():
    """SetRulePriorities has no condition key in AWS's data: it is granted on listener rules
    unconditioned, as upstream grants it on `*`."""
    statements = {s["Sid"]: s for s in alb_policy()}
    assert statements["ReorderRules"]["Action"] == "elasticloadbalancing:SetRulePriorities"
    assert "Condition" not in statements["ReorderRules"]
    assert CHECKER.grants([statements["ReorderRules"]]) == {
        ("elasticloadbalancing:SetRulePriorities", "listener-rule/app"),
        ("elasticloadbalancing:SetRulePriorities", "listener-rule/net")}


def test_alb_controller_addons_it_has_no_permissions_for_are_off():
    release = next(r for r in graph("eks-amp-alb").of_type("kubernetes:helm.sh/v3:Release")
                   if r.inputs.get("name") == "aws-load-balancer-controller")
    values = release.inputs["values"]
    assert (values["enableWaf"], values["enableWafv2"], values["enableShield"]) == (
        False, False, False)
