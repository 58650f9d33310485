"""Edges of the IAM, S3 and transit rules, each asserting the exact message: the branches the
family tests (tests/policies/test_policy_families_protocol.py) pass through without telling
apart: statement order, NotPrincipal/NotAction, mixed condition values, federated providers,
aws-native load balancers and listeners, legacy inline bucket encryption, schema defaults.
In-process (helpers.run) so scripts/mutation.py can run them for every mutant."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import run, run_stack

ROLE = "aws:iam/role:Role"
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust(*statements: dict[str, Any]) -> list[str]:
    return run("iam-role-trust-scoped", ROLE, {"assumeRolePolicy": _policy(*statements)})


def _identity(*statements: dict[str, Any]) -> list[str]:
    return run("iam-policy-no-star-on-star", "aws:iam/policy:Policy",
               {"policy": _policy(*statements)})


ANYONE = ("assumeRolePolicy Statement[{i}] lets any AWS principal (*) assume the role; name the "
          "principals, or pin them with aws:PrincipalArn / aws:PrincipalOrgID")


# ------------------------------------------------------------------------------------- IAM


def test_star_on_star_is_found_after_a_narrow_statement():
    found = _identity({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, ALLOW_ALL)
    assert found == ["policy Statement[1] allows every action (*) on *; grant the actions the "
                     "workload calls on its own resources"]


@pytest.mark.parametrize(("action", "every"), [
    ("*", True), ("*:*", True), ("**", True), ("iam:*", False), ("s3:Get*", False), ("", False),
])
def test_only_a_pattern_of_wildcards_matches_every_action(action, every):
    found = _identity({"Effect": "Allow", "Action": action, "Resource": "*"})
    assert found == ([f"policy Statement[0] allows every action ({action}) on *; grant the "
                      "actions the workload calls on its own resources"] if every else [])


@pytest.mark.parametrize(("sid", "label"), [("Admin", " (Admin)"), ("", ""), (5, "")])
def test_the_label_names_a_non_empty_string_sid_only(sid, label):
    found = _identity({**ALLOW_ALL, "Sid": sid})
    assert found == [f"policy Statement[0]{label} allows every action (*) on *; grant the "
                     "actions the workload calls on its own resources"]


def test_an_open_trust_is_found_after_a_deny():
    deny = {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}
    found = _trust(deny, {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"})
    assert found == [ANYONE.format(i=1)]


def test_allow_with_not_principal_trusts_everyone_else():
    found = _trust({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": "sts:AssumeRole"})
    assert found == [ANYONE.format(i=0)]


@pytest.mark.parametrize("statement", [
    {"NotAction": "s3:*"},  # every action but S3's: sts:AssumeRole included
    {"Action": "*"},
    {"Action": ["s3:GetObject", "sts:AssumeRole"]},  # one assume action is enough
    {"Action": "STS:AssumeRoleWithWebIdentity"},
])
def test_a_statement_that_allows_assuming_the_role_is_a_trust_statement(statement):
    assert _trust({"Effect": "Allow", "Principal": "*", **statement}) == [ANYONE.format(i=0)]


def test_a_statement_without_an_assume_action_is_no_trust():
    assert _trust({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}) == []


@pytest.mark.parametrize(("values", "pinned"), [
    (["*", "arn:aws:iam::111122223333:role/ci"], True),  # one real value pins
    (["*", "?"], False),
    ([True], False),  # a boolean is not an ARN
    ([], False),
])
def test_condition_values_that_pin_the_caller(values, pinned):
    found = _trust({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
                    "Condition": {"ArnLike": {"aws:PrincipalArn": values}}})
    assert found == ([] if pinned else [ANYONE.format(i=0)])


def test_a_weak_operator_before_a_pinning_one_does_not_stop_the_search():
    found = _trust({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
                    "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "1"},
                                  "ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/x"}}})
    assert found == []


@pytest.mark.parametrize("principal", ["111122223333", "arn:aws:iam::111122223333:root"])
def test_a_whole_account_by_id_or_root_arn(principal):
    found = _trust({"Effect": "Allow", "Principal": {"AWS": principal},
                    "Action": "sts:AssumeRole"})
    assert found == [
        "assumeRolePolicy Statement[0] trusts every principal of account 111122223333 "
        f"({principal}) without a condition; name the role, or add aws:PrincipalArn or "
        "sts:ExternalId (or list the account in trustedAccountIds)"]


SAML = "arn:aws:iam::111122223333:saml-provider/corp"
COGNITO = "cognito-identity.amazonaws.com"


@pytest.mark.parametrize(("provider", "condition", "pinned"), [
    (SAML, {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}, True),
    (SAML, {"StringEquals": {"SAML:sub": "alice"}}, True),
    (SAML, {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:a/b:*"}}, False),
    (COGNITO, {"StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:pool"}}, True),
    (COGNITO, {"StringEquals": {"cognito-identity.amazonaws.com:sub": "x"}}, False),
    ("arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
     {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}, False),
])
def test_federated_trust_is_pinned_by_the_providers_subject_key(provider, condition, pinned):
    found = _trust({"Effect": "Allow", "Principal": {"Federated": provider},
                    "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition})
    assert found == ([] if pinned else [
        f"assumeRolePolicy Statement[0] trusts every identity of {provider}; condition it on the "
        "token's subject (<provider>:sub, or SAML:aud / cognito ...:aud for those providers)"])


# -------------------------------------------------------------------------------------- S3

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def test_a_legacy_bucket_grant_lists_its_permissions():
    found = run("s3-bucket-no-public-acl", "aws:s3/bucket:Bucket", {"grants": [
        {"type": "Group", "uri": ALL_USERS, "permissions": ["READ", "READ_ACP"]}]})
    assert found == ["grants grants access (permissions READ, READ_ACP) to AllUsers; grant "
                     "named accounts only"]


def test_a_public_statement_is_found_after_a_deny():
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    found = run("s3-bucket-no-public-policy", "aws:s3/bucketPolicy:BucketPolicy",
                {"policy": _policy(deny, allow)})
    assert found == ["policy Statement[1] allows * (anyone) without a condition S3 counts as "
                     "non-public (aws:SourceVpce, aws:PrincipalOrgID, aws:SourceArn, ...); name "
                     "the principals"]


def test_a_service_principal_is_not_public():
    allow = {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": "*"}
    assert run("s3-bucket-no-public-policy", "aws:s3/bucketPolicy:BucketPolicy",
               {"policy": _policy(allow)}) == []


KMS = {"requireKms": True}
LEGACY = "aws:s3/bucket:Bucket"
INLINE = "serverSideEncryptionConfiguration.rule.applyServerSideEncryptionByDefault"
NO_CONFIG = ("no server-side encryption configuration: S3 applies SSE-S3, and this environment "
             "requires SSE-KMS with the stack's own key (add a "
             "BucketServerSideEncryptionConfigurationV2)")


@pytest.mark.parametrize(("props", "expected"), [
    ({"serverSideEncryptionConfiguration": {"rule": {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "AES256"}}}},
     [f"{INLINE}.sseAlgorithm is AES256; this environment requires SSE-KMS with the stack's "
      "own key"]),
    ({"serverSideEncryptionConfiguration": {"rule": {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:us-east-1:1:key/k"}}}}, []),
    ({}, [NO_CONFIG]),
])
def test_legacy_bucket_inline_encryption(props, expected):
    assert run_stack("s3-bucket-encryption", [(LEGACY, props)], KMS) == expected


def test_bucket_encryption_defaults_to_accepting_sse_s3():
    assert run_stack("s3-bucket-encryption", [(LEGACY, {})], {}) == []


def test_every_rule_is_read_even_where_kms_is_not_required():
    rules = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}},
             {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "rot13"}}]
    found = run_stack("s3-bucket-encryption", [(
        "aws:s3/bucketServerSideEncryptionConfigurationV2:"
        "BucketServerSideEncryptionConfigurationV2", {"rules": rules})], {})
    assert found == [
        "malformed input on r0 (aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServer"
        "SideEncryptionConfigurationV2): rules[1].applyServerSideEncryptionByDefault.sseAlgorithm"
        ' is "rot13", not AES256, aws:kms or aws:kms:dsse; the policy cannot judge it, fix the '
        "value"]


# --------------------------------------------------------------------------------- transit

NATIVE_LB = "aws-native:elasticloadbalancingv2:LoadBalancer"
NATIVE_LISTENER = "aws-native:elasticloadbalancingv2:Listener"
LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
FORWARD = [{"type": "forward", "targetGroupArn": "tg"}]


def _listen(lb: tuple[str, dict[str, Any]] | None, listener: tuple[str, dict[str, Any]],
            allow_internal: bool = False) -> list[str]:
    resources = [lb, listener] if lb is not None else [listener]
    deps = {1: {"loadBalancerArn": [0]}} if lb is not None else {}
    return run_stack("transit-listener-https", resources,
                     {"allowHttpOnInternalLoadBalancers": allow_internal}, deps=deps)


def _plain(protocol: str, port: Any, where: str, allowed: bool = False) -> list[str]:
    rule = ("plain HTTP is allowed on internal load balancers only" if allowed
            else "this environment requires HTTPS on every listener")
    return [f"{protocol} listener on port {port} of {where} serves plain text; {rule}: listen on "
            "HTTPS with an ACM certificate (or redirect to it)"]


@pytest.mark.parametrize(("scheme", "expected"), [
    ("internal", []),
    ("internet-facing", _plain("HTTP", 80, "the internet-facing load balancer r0", True)),
    (None, _plain("HTTP", 80, "the internet-facing load balancer r0", True)),
])
def test_an_aws_native_load_balancer_is_internal_by_its_scheme(scheme, expected):
    lb = (NATIVE_LB, {"scheme": scheme} if scheme else {})
    listener = (NATIVE_LISTENER, {"protocol": "HTTP", "port": 80, "defaultActions": FORWARD})
    assert _listen(lb, listener, allow_internal=True) == expected


def test_an_aws_native_listener_redirect_reads_redirect_config():
    listener = (NATIVE_LISTENER, {"protocol": "HTTP", "port": 80, "defaultActions": [
        {"type": "redirect", "redirectConfig": {"protocol": "HTTPS", "port": "443"}}]})
    assert _listen((NATIVE_LB, {}), listener) == []
    # the pulumi-aws spelling on an aws-native listener redirects nothing
    wrong = (NATIVE_LISTENER, {"protocol": "HTTP", "port": 80, "defaultActions": [
        {"type": "redirect", "redirect": {"protocol": "HTTPS"}}]})
    assert _listen((NATIVE_LB, {}), wrong) == _plain(
        "HTTP", 80, "the internet-facing load balancer r0")


@pytest.mark.parametrize(("lb_props", "expected"), [
    ({"loadBalancerType": "network"}, []),  # TCP passthrough on 443
    ({"loadBalancerType": "application"}, _plain(
        "HTTP", 443, "the internet-facing load balancer r0")),
    ({}, _plain("HTTP", 443, "the internet-facing load balancer r0")),
])
def test_a_listener_without_protocol_takes_its_load_balancers_default(lb_props, expected):
    listener = (LISTENER, {"port": 443, "defaultActions": FORWARD})
    assert _listen((LB, lb_props), listener) == expected


def test_a_listener_whose_load_balancer_is_not_in_the_stack():
    listener = (LISTENER, {"port": 80, "loadBalancerArn": "arn:aws:elasticloadbalancing:x",
                           "defaultActions": FORWARD})
    assert _listen(None, listener) == _plain(
        "HTTP", 80, "a load balancer outside this stack (cannot tell whether it is internal)")


def test_an_empty_arn_links_nothing():
    """Two unknown-yet ARNs (empty strings) are not the same load balancer."""
    lb = (LB, {"internal": True, "arn": ""})
    listener = (LISTENER, {"protocol": "HTTP", "port": 80, "loadBalancerArn": "",
                           "defaultActions": FORWARD})
    found = run_stack("transit-listener-https", [lb, listener],
                      {"allowHttpOnInternalLoadBalancers": True})
    assert found == _plain(
        "HTTP", 80, "a load balancer outside this stack (cannot tell whether it is internal)",
        True)


def test_a_listener_is_judged_by_its_own_load_balancer_among_several():
    public = (LB, {"internal": False})
    internal = (LB, {"internal": True})
    listener = (LISTENER, {"protocol": "HTTP", "port": 80, "defaultActions": FORWARD})
    found = run_stack("transit-listener-https", [public, internal, listener],
                      {"allowHttpOnInternalLoadBalancers": True},
                      deps={2: {"loadBalancerArn": [1]}})
    assert found == []


def test_a_listener_is_linked_by_its_load_balancers_arn_without_dependencies():
    lb = (LB, {"internal": True, "arn": "arn:aws:elasticloadbalancing:us-east-1:1:lb/app/x/1"})
    listener = (LISTENER, {"protocol": "HTTP", "port": 80, "defaultActions": FORWARD,
                           "loadBalancerArn": lb[1]["arn"]})
    found = run_stack("transit-listener-https", [lb, listener],
                      {"allowHttpOnInternalLoadBalancers": True})
    assert found == []


def test_a_rule_that_authenticates_over_plain_http_is_not_a_redirect():
    """Port 80 redirects by default, but a rule on it runs an OIDC login first: tokens and
    cookies would cross in plain text."""
    listener = (LISTENER, {"protocol": "HTTP", "port": 80, "defaultActions": [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}]})
    rule = ("aws:lb/listenerRule:ListenerRule", {"actions": [
        {"type": "authenticate-oidc"},
        {"type": "redirect", "redirect": {"protocol": "HTTPS"}}]})
    found = run_stack("transit-listener-https", [(LB, {}), listener, rule], {},
                      deps={1: {"loadBalancerArn": [0]}, 2: {"listenerArn": [1]}})
    assert found == [
        "HTTP listener on port 80 of the internet-facing load balancer r0 serves plain text "
        "(forwarded by rules r2); this environment requires HTTPS on every listener: listen on "
        "HTTPS with an ACM certificate (or redirect to it)"]


INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
A = "alb.ingress.kubernetes.io/"


def _ingress(annotations: dict[str, str], allow_internal: bool = True) -> list[str]:
    props = {"metadata": {"annotations": annotations}, "spec": {"ingressClassName": "alb"}}
    return run_stack("transit-listener-https", [(INGRESS, props)],
                     {"allowHttpOnInternalLoadBalancers": allow_internal})


def test_an_ingress_without_a_scheme_is_internal():
    """The AWS Load Balancer Controller's default scheme is internal."""
    assert _ingress({}) == []
    assert _ingress({f"{A}scheme": "internet-facing"}) == [
        f"{A}listen-ports opens HTTP on 80 of an internet-facing ALB; plain HTTP is allowed on "
        f"internal load balancers only: set {A}certificate-arn and listen on HTTPS 443 (or "
        f"{A}ssl-redirect)"]


@pytest.mark.parametrize("ports", ['[{"HTTP": 80, "HTTPS": 443}]', '[{"FTP": 21}]',
                                   '[{"HTTP": "80"}]', '[{"HTTP": true}]', '["HTTP"]'])
def test_malformed_listen_ports(ports):
    found = _ingress({f"{A}listen-ports": ports}, allow_internal=False)
    assert len(found) == 1 and found[0].startswith(
        f"malformed input on r0 ({INGRESS}): metadata.annotations.{A}listen-ports is "), found
    assert found[0].endswith("the policy cannot judge it, fix the value")


# ------------------------------------------------------------------------ security groups

SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SSH_FROM_ANYWHERE = ("rule admits 0.0.0.0/0 on tcp 22-22; only HTTPS (443 alone) to an allowed "
                     "public load balancer may be open to the internet")


@pytest.mark.parametrize(("kind", "expected"), [("ingress", [SSH_FROM_ANYWHERE]),
                                                ("egress", [])])
def test_a_security_group_rule_resource_is_judged_when_it_is_ingress(kind, expected):
    props = {"type": kind, "protocol": "tcp", "fromPort": 22, "toPort": 22,
             "cidrBlocks": ["0.0.0.0/0"], "securityGroupId": "sg-1"}
    assert run("private-by-default", SG_RULE, props) == expected


def test_a_vpc_ingress_rule_resource():
    props = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0",
             "securityGroupId": "sg-1"}
    assert run("private-by-default", INGRESS_RULE, props) == [SSH_FROM_ANYWHERE]


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("fromPort", 65536, "65536"), ("fromPort", 22.5, "22.5"), ("toPort", -2, "-2"),
    ("protocol", None, "null"), ("protocol", True, "true"), ("protocol", ["tcp"], '["tcp"]'),
])
def test_malformed_ports_and_protocols(field, value, shown):
    rule = {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"],
            field: value}
    found = run("private-by-default", "aws:ec2/securityGroup:SecurityGroup", {"ingress": [rule]})
    expected = ("a protocol (tcp, udp, icmp, -1, ...)" if field == "protocol"
                else "a port number (-1 to 65535)")
    assert found == [f"malformed input on r (aws:ec2/securityGroup:SecurityGroup): "
                     f"ingress[0].{field} is {shown}, not {expected}; the policy cannot judge "
                     "it, fix the value"]


def test_a_service_with_the_legacy_internal_annotation_is_internal():
    svc = "kubernetes:core/v1:Service"
    legacy = {"metadata": {"annotations": {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "spec": {"type": "LoadBalancer"}}
    assert run("private-by-default", svc, legacy) == []
    public = {"metadata": {"annotations": {}}, "spec": {"type": "LoadBalancer"}}
    assert run("private-by-default", svc, public) == [
        "Service of type LoadBalancer is internet-facing; annotate "
        "service.beta.kubernetes.io/aws-load-balancer-scheme: internal"]


# --------------------------------------------------------------------------- public IPs

NIC = "networkInterfaces[0].associatePublicIpAddress"
PUBLIC_IP_CASES = [
    # (type, props with the public IP on, where the message points)
    ("aws:ec2/instance:Instance", {"associatePublicIpAddress": True}, "associatePublicIpAddress"),
    ("aws:ec2/spotInstanceRequest:SpotInstanceRequest", {"associatePublicIpAddress": True},
     "associatePublicIpAddress"),
    ("aws:ec2/launchConfiguration:LaunchConfiguration", {"associatePublicIpAddress": True},
     "associatePublicIpAddress"),
    ("aws-native:autoscaling:LaunchConfiguration", {"associatePublicIpAddress": True},
     "associatePublicIpAddress"),
    ("aws:ec2/launchTemplate:LaunchTemplate", {"networkInterfaces": [
        {"associatePublicIpAddress": "true"}]}, NIC),
    ("aws-native:ec2:Instance", {"networkInterfaces": [{"associatePublicIpAddress": True}]}, NIC),
    ("aws-native:ec2:LaunchTemplate", {"launchTemplateData": {"networkInterfaces": [
        {"associatePublicIpAddress": True}]}}, f"launchTemplateData.{NIC}"),
    ("aws:ec2/spotFleetRequest:SpotFleetRequest", {"launchSpecifications": [
        {"associatePublicIpAddress": True}]}, "launchSpecifications[0].associatePublicIpAddress"),
    ("aws-native:ec2:SpotFleet", {"spotFleetRequestConfigData": {"launchSpecifications": [
        {"networkInterfaces": [{"associatePublicIpAddress": True}]}]}},
     f"spotFleetRequestConfigData.launchSpecifications[0].{NIC}"),
    ("aws:ecs/service:Service", {"networkConfiguration": {"assignPublicIp": True}},
     "networkConfiguration.assignPublicIp"),
    ("aws:ecs/taskSet:TaskSet", {"networkConfiguration": {"assignPublicIp": True}},
     "networkConfiguration.assignPublicIp"),
    ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", {"spec": {
        "associatePublicIPAddress": True}}, "spec.associatePublicIPAddress"),
    ("eks:index:Cluster", {"nodeAssociatePublicIpAddress": True}, "nodeAssociatePublicIpAddress"),
    ("eks:index:NodeGroup", {"nodeAssociatePublicIpAddress": True},
     "nodeAssociatePublicIpAddress"),
    ("eks:index:NodeGroupV2", {"nodeAssociatePublicIpAddress": True},
     "nodeAssociatePublicIpAddress"),
]


def _switched_off(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _switched_off(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_switched_off(v) for v in value]
    return False if value in (True, "true") else value


@pytest.mark.parametrize(("type_", "props", "where"), PUBLIC_IP_CASES,
                         ids=[c[0] for c in PUBLIC_IP_CASES])
def test_every_compute_type_with_a_public_ip(type_, props, where):
    assert run("compute-no-public-ip", type_, props) == [
        f"{where} is true; compute runs in private subnets without public IPs"]
    assert run("compute-no-public-ip", type_, _switched_off(props)) == []


@pytest.mark.parametrize(("type_", "key"), [
    ("aws-native:ecs:Service", "awsvpcConfiguration"),
    ("aws-native:ecs:TaskSet", "awsVpcConfiguration"),
])
def test_aws_native_ecs_public_ip_by_its_spelling(type_, key):
    def props(value: Any) -> dict[str, Any]:
        return {"networkConfiguration": {key: {"assignPublicIp": value}}}
    where = f"networkConfiguration.{key}.assignPublicIp"
    assert run("compute-no-public-ip", type_, props("ENABLED")) == [
        f"{where} is ENABLED; compute runs in private subnets without public IPs"]
    assert run("compute-no-public-ip", type_, props("DISABLED")) == []
    assert run("compute-no-public-ip", type_, {}) == []
    assert run("compute-no-public-ip", type_, props("YES")) == [
        f"malformed input on r ({type_}): {where} is \"YES\", not ENABLED or DISABLED; the "
        "policy cannot judge it, fix the value"]


@pytest.mark.parametrize(("type_", "key"), [
    ("aws:ec2/eip:Eip", "instance"), ("aws:ec2/eipAssociation:EipAssociation", "instance"),
    ("aws-native:ec2:Eip", "instanceId"), ("aws-native:ec2:EipAssociation", "instanceId"),
])
def test_an_elastic_ip_on_an_instance(type_, key):
    assert run("compute-no-public-ip", type_, {key: "i-0123"}) == [
        f"{key} is set: an Elastic IP on an instance is a public IP; compute runs in private "
        "subnets without public IPs"]
    # a NAT gateway's Elastic IP is not on an instance
    assert run("compute-no-public-ip", type_, {"domain": "vpc"}) == []


@pytest.mark.parametrize(("cidr", "internet"), [
    ("0.0.0.1/0", True),   # host bits set: AWS normalises it, so does the rule
    (" 0.0.0.0/0 ", True),
])
def test_cidrs_with_host_bits_or_spaces(cidr, internet):
    props = {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22,
                          "cidrBlocks": [cidr]}]}
    assert run("private-by-default", "aws:ec2/securityGroup:SecurityGroup", props) == [
        f"ingress[0] admits {cidr} on tcp 22-22; only HTTPS (443 alone) to an allowed public "
        "load balancer may be open to the internet"]


@pytest.mark.parametrize(("low", "high", "protocol", "shown"), [
    (-1, -1, "tcp", "tcp -1--1"), (65535, 65535, "tcp", "tcp 65535-65535"),
    (0, 65535, 6.0, "6 0-65535"), (22, 22, 17.0, "17 22-22"),
])
def test_port_and_protocol_limits_are_accepted(low, high, protocol, shown):
    props = {"ingress": [{"protocol": protocol, "fromPort": low, "toPort": high,
                          "cidrBlocks": ["0.0.0.0/0"]}]}
    assert run("private-by-default", "aws:ec2/securityGroup:SecurityGroup", props) == [
        f"ingress[0] admits 0.0.0.0/0 on {shown}; only HTTPS (443 alone) to an allowed public "
        "load balancer may be open to the internet"]


def test_protocol_six_as_a_float_is_tcp_for_the_443_exception():
    props = {"ingress": [{"protocol": 6.0, "fromPort": 443, "toPort": 443,
                          "cidrBlocks": ["0.0.0.0/0"]}]}
    assert run("private-by-default", "aws:ec2/securityGroup:SecurityGroup", props,
               {"allowPublicLoadBalancers": True}) == []


@pytest.mark.parametrize(("cidrs", "open_"), [
    ([], True),  # no list: the endpoint is open to all
    (["10.1.0.0/16", "0.0.0.0/0"], True),  # one internet CIDR is enough
    (["10.1.0.0/16"], False),
])
def test_eks_public_endpoint_cidrs(cidrs, open_):
    props = {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": cidrs}}
    found = run("private-by-default", "aws:eks/cluster:Cluster", props,
                {"requirePrivateClusterEndpoint": True})
    assert bool(found) is open_, found


# -------------------------------------------------------------------------- encryption

LT_EBS = [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}},
          {"deviceName": "/dev/sdb", "virtualName": "ephemeral0"},  # instance store: no ebs
          {"ebs": {"encrypted": False}}]


@pytest.mark.parametrize(("type_", "props", "expected"), [
    ("aws:ec2/launchTemplate:LaunchTemplate", {"blockDeviceMappings": LT_EBS},
     ["blockDeviceMappings[2] (?): ebs.encrypted is not true"]),
    ("aws-native:ec2:LaunchTemplate", {"launchTemplateData": {"blockDeviceMappings": LT_EBS}},
     ["launchTemplateData.blockDeviceMappings[2] (?): ebs.encrypted is not true"]),
    ("aws-native:ec2:Instance", {"blockDeviceMappings": LT_EBS},
     ["blockDeviceMappings[2] (?): ebs.encrypted is not true"]),
    ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", {"spec": {"blockDeviceMappings": LT_EBS}},
     ["spec.blockDeviceMappings[2] (?): ebs.encrypted is not true"]),
    ("aws:ec2/instance:Instance", {"rootBlockDevice": {"encrypted": False}, "ebsBlockDevices": [
        {"deviceName": "/dev/sdb", "encrypted": True}, {"encrypted": False}]},
     ["rootBlockDevice.encrypted is not true", "ebsBlockDevices[1] (?): encrypted is not true"]),
    ("aws:ec2/instance:Instance", {"ebsBlockDevices": [{"deviceName": "/dev/sdf"}]},
     ["ebsBlockDevices[0] (/dev/sdf): encrypted is not true"]),
    ("aws:ec2/instance:Instance", {"rootBlockDevice": {"encrypted": True}}, []),
    ("aws:ec2/instance:Instance", {}, []),  # no root block: the AMI's, judged by the account
    ("aws:ebs/volume:Volume", {"encrypted": False}, ["encrypted is not true"]),
    ("aws:ebs/volume:Volume", {}, ["encrypted is not true"]),
    ("aws-native:ec2:Volume", {"encrypted": True}, []),
])
def test_block_storage_encryption(type_, props, expected):
    assert run("encryption-at-rest", type_, props) == expected


SECRETS_NOT_ENCRYPTED = ("encryptionConfig does not encrypt 'secrets' with a KMS key; "
                         "envelope-encrypt Kubernetes secrets")


@pytest.mark.parametrize(("type_", "config", "encrypted"), [
    ("aws:eks/cluster:Cluster", {"resources": ["secrets"], "provider": {"keyArn": "k"}}, True),
    ("aws:eks/cluster:Cluster", {"resources": ["secrets"], "provider": {}}, False),
    ("aws:eks/cluster:Cluster", {"resources": ["configmaps"], "provider": {"keyArn": "k"}}, False),
    ("aws:eks/cluster:Cluster", None, False),
    ("aws-native:eks:Cluster", [{"resources": ["secrets"], "provider": {"keyArn": "k"}}], True),
    ("aws-native:eks:Cluster", [], False),
])
def test_eks_secrets_encryption(type_, config, encrypted):
    props = {} if config is None else {"encryptionConfig": config}
    assert run("encryption-at-rest", type_, props) == ([] if encrypted else
                                                        [SECRETS_NOT_ENCRYPTED])


def test_any_allowed_name_pattern_exempts_a_resource():
    config = {"requireCustomerManagedKeys": True,
              "awsManagedKeyAllowed": ["*-karpenter-interruption", "r"]}
    assert run("encryption-customer-managed-keys", "aws:sqs/queue:Queue", {}, config) == []
    config["awsManagedKeyAllowed"] = ["*-karpenter-interruption"]
    assert run("encryption-customer-managed-keys", "aws:sqs/queue:Queue", {}, config) == [
        "kmsMasterKeyId is unset (an AWS-owned or AWS-managed key); this environment requires a "
        "customer-managed KMS key, or list the resource in awsManagedKeyAllowed if it holds no "
        "model or user data"]


# ----------------------------------------------------------------------------- secrets

HF = "hf_" + "a" * 34
SAGEMAKER_ENV = ("environment variable HF_TOKEN is named like a credential; {api} shows it in "
                 "plain text to anyone allowed to describe it: stage the weights in S3 "
                 "(weightsUri) so no token is needed")


def test_every_container_of_a_sagemaker_model():
    props = {"containers": [{"environment": {"A": "1"}}, {"environment": {"HF_TOKEN": HF}}]}
    assert run("no-plaintext-secrets", "aws:sagemaker/model:Model", props) == [
        "containers[1]: " + SAGEMAKER_ENV.format(api="DescribeModel")]


def test_every_specification_of_an_inference_component():
    props = {"specifications": [{"container": {"environment": {"HF_TOKEN": HF}}}]}
    assert run("no-plaintext-secrets", "aws-native:sagemaker:InferenceComponent", props) == [
        "specifications[0].container: " + SAGEMAKER_ENV.format(api="DescribeInferenceComponent")]


def _pod(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {"containers": [{"name": "app", "env": env}]}


@pytest.mark.parametrize(("kind", "props"), [
    ("core/v1:Pod", {"spec": _pod([{"name": "API_KEY", "value": "abcdefgh"}])}),
    ("batch/v1:CronJob", {"spec": {"jobTemplate": {"spec": {"template": {
        "spec": _pod([{"name": "API_KEY", "value": "abcdefgh"}])}}}}}),
    ("batch/v1:Job", {"spec": {"template": {"spec": _pod([{"name": "API_KEY",
                                                           "value": "abcdefgh"}])}}}),
])
def test_the_pod_spec_of_every_workload_kind(kind, props):
    assert run("no-plaintext-secrets", f"kubernetes:{kind}", props) == [
        "container app: env API_KEY is named like a credential; its value is readable by anyone "
        "who can read the pod spec: use valueFrom.secretKeyRef"]


@pytest.mark.parametrize(("value", "expected"), [
    (12345678, "is named like a credential"),  # a number is still a literal
    (0.5, "is named like a credential"),
    (True, None), ({"a": 1}, None),            # malformed: not a string value
])
def test_non_string_environment_values(value, expected):
    props = {"spec": _pod([{"name": "API_KEY", "value": value}])}
    found = run("no-plaintext-secrets", "kubernetes:core/v1:Pod", props)
    if expected:
        assert found == [f"container app: env API_KEY {expected}; its value is readable by "
                         "anyone who can read the pod spec: use valueFrom.secretKeyRef"]
    else:
        assert found == [f"malformed input on r (kubernetes:core/v1:Pod): spec.containers[0]."
                         f"env[0].value is {json.dumps(value)}, not a string value; the policy "
                         "cannot judge it, fix the value"]


def test_a_malformed_environment_value_is_named_by_its_property_path():
    ecs = {"containerDefinitions": json.dumps([{"name": "a", "environment": [
        {"name": "X", "value": True}]}])}
    assert run("no-plaintext-secrets", "aws:ecs/taskDefinition:TaskDefinition", ecs) == [
        "malformed input on r (aws:ecs/taskDefinition:TaskDefinition): containerDefinitions[0]."
        "environment[0].value is true, not a string value; the policy cannot judge it, fix the "
        "value"]
    model = {"primaryContainer": {"environment": {"X": False}}}
    assert run("no-plaintext-secrets", "aws:sagemaker/model:Model", model) == [
        "malformed input on r (aws:sagemaker/model:Model): primaryContainer.environment.X is "
        "false, not a string value; the policy cannot judge it, fix the value"]


CM = "kubernetes:core/v1:ConfigMap"


@pytest.mark.parametrize(("line", "flagged"), [
    ("api_key: abcdefg", False),      # 7 characters: too short to be a credential
    ("api_key: abcdefgh", True),      # 8
    ("api_key: abcdefghi", True),     # 9
    ("api_key: true", False), ("api_key: null", False), ("api_key: 12345678.9", False),
    ("api_key: ${API_KEY}", False), ("api_key: os.environ/API_KEY", False),
    ("timeout: abcdefghij", False),
])
def test_credentials_inside_a_config_file(line, flagged):
    text = f"# settings\nlog_level: info\n{line}\nother: x\n"
    found = run("no-plaintext-secrets", CM, {"data": {"config.yaml": text}})
    assert found == (["data.config.yaml sets api_key to a literal credential; mount it from a "
                      "Secret instead"] if flagged else [])


def test_every_line_and_every_file_of_a_config_map_is_read():
    data = {"a.yaml": "x: 1\npassword: hunter22hunter\n",
            "b.yaml": "skip\ntoken: abcdefghijk\n"}
    assert run("no-plaintext-secrets", CM, {"data": data}) == [
        "data.a.yaml sets password to a literal credential; mount it from a Secret instead",
        "data.b.yaml sets token to a literal credential; mount it from a Secret instead"]


def test_binary_data_shaped_like_a_credential():
    assert run("no-plaintext-secrets", CM, {"binaryData": {"blob": f"x {HF} y"}}) == [
        "binaryData.blob holds a value shaped like a credential; use a Secret"]
    # a credential-looking name in binaryData is not read as text
    assert run("no-plaintext-secrets", CM, {"binaryData": {"api_key": "abcdefgh"}}) == []


def test_a_config_map_key_named_like_a_credential_after_an_empty_one():
    assert run("no-plaintext-secrets", CM, {"data": {"empty": None, "API_KEY": "abcdefgh"}}) == [
        "data.API_KEY is named like a credential; a ConfigMap (and every envFrom that reads it) "
        "shows it in plain text: use a Secret"]
    assert run("no-plaintext-secrets", CM, {"data": {"API_KEY": "${API_KEY}"}}) == []


FLAG = ("container app: args: flag --api-key is given a literal credential; the pod spec shows "
        "arguments in plain text: pass it as a secret-backed environment variable and reference "
        "it")


@pytest.mark.parametrize(("args", "flagged"), [
    (["--api-key", "abcdefgh12"], True), (["--api-key=abcdefgh12"], True),
    (["--api-key", "API_KEY"], False),      # another credential's name, not a value
    (["--api-key=$(API_KEY)"], False),      # a reference Kubernetes expands
    (["--api-key", "--other"], False), (["--log-level", "debug"], False)])
def test_credential_flags_and_their_values(args, flagged):
    pod = {"spec": {"containers": [{"name": "app", "args": args}]}}
    assert run("no-plaintext-secrets", "kubernetes:core/v1:Pod", pod) == (
        [FLAG] if flagged else [])


# ------------------------------------------------------------------ S3 ACL and encryption edges


@pytest.mark.parametrize(("type_", "props", "prop", "canned"), [
    ("aws:s3/bucketV2:BucketV2", {"acl": "authenticated-read"}, "acl", "authenticated-read"),
    ("aws:s3/bucketObjectv2:BucketObjectv2", {"acl": "public-read"}, "acl", "public-read"),
    ("aws-native:s3:Bucket", {"accessControl": "PublicReadWrite"}, "accessControl",
     "PublicReadWrite"),
])
def test_public_canned_acls_of_either_provider(type_, props, prop, canned):
    assert run("s3-bucket-no-public-acl", type_, props) == [
        f"{prop} is {canned}, which grants everyone access; use private (and "
        "bucket-owner-enforced object ownership)"]


def test_private_canned_acls_pass():
    assert run("s3-bucket-no-public-acl", "aws-native:s3:Bucket",
               {"accessControl": "Private"}) == []
    assert run("s3-bucket-no-public-acl", "aws:s3/bucketV2:BucketV2", {"acl": "private"}) == []


@pytest.mark.parametrize(("grant", "shown"), [
    ({"permission": "READ"}, "grants READ (permissions READ)"),
    ({}, "grants access (permissions ?)"),
])
def test_an_acl_grant_without_a_permission_list(grant, shown):
    props = {"accessControlPolicy": {"grants": [{**grant, "grantee": {
        "type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"}}]}}
    assert run("s3-bucket-no-public-acl", "aws:s3/bucketAclV2:BucketAclV2", props) == [
        f"accessControlPolicy.grants {shown} to AllUsers; grant named accounts only"]


def _v2(*defaults: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """BucketV2's inline encryption: lists at every level, as the provider's schema has it."""
    return ("aws:s3/bucketV2:BucketV2", {"serverSideEncryptionConfigurations": [
        {"rules": [{"applyServerSideEncryptionByDefaults": list(defaults)}]}]})


V2_WHERE = "serverSideEncryptionConfigurations[0].rules[0].applyServerSideEncryptionByDefaults"


@pytest.mark.parametrize(("default", "expected"), [
    ({"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:us-east-1:123456789012:key/a"},
     []),
    ({"sseAlgorithm": "aws:kms",
      "kmsMasterKeyId": "arn:aws:kms:us-east-1:123456789012:alias/aws/s3"},
     [f"{V2_WHERE}[0].kmsMasterKeyId is arn:aws:kms:us-east-1:123456789012:alias/aws/s3; this "
      "environment requires a customer-managed KMS key"]),
    ({"sseAlgorithm": "aws:kms"},
     [f"{V2_WHERE}[0].kmsMasterKeyId is unset (the AWS managed aws/s3 key); this environment "
      "requires a customer-managed KMS key"]),
    ({"sseAlgorithm": "AES256"},
     [f"{V2_WHERE}[0].sseAlgorithm is AES256; this environment requires SSE-KMS with the "
      "stack's own key"]),
])
def test_bucket_v2_inline_encryption_is_a_list_of_defaults(default, expected):
    assert run_stack("s3-bucket-encryption", [_v2(default)], {"requireKms": True}) == expected
    assert run_stack("s3-bucket-encryption", [_v2(default)], {"requireKms": False}) == []


def test_native_bucket_encryption_rules():
    bucket = ("aws-native:s3:Bucket", {"bucketEncryption": {"serverSideEncryptionConfiguration": [
        {"serverSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}})
    assert run_stack("s3-bucket-encryption", [bucket], {"requireKms": True}) == [
        "bucketEncryption.serverSideEncryptionConfiguration[0].serverSideEncryptionByDefault."
        "sseAlgorithm is AES256; this environment requires SSE-KMS with the stack's own key"]


# ------------------------------------------------------------------ transit and start-up edges

ALB = "alb.ingress.kubernetes.io/"


def _alb_ingress(ports: str) -> tuple[str, dict[str, Any]]:
    annotations = {"kubernetes.io/ingress.class": "alb", f"{ALB}scheme": "internal",
                   f"{ALB}listen-ports": ports,
                   f"{ALB}certificate-arn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}
    return ("kubernetes:networking.k8s.io/v1:Ingress",
            {"metadata": {"annotations": annotations}, "spec": {"ingressClassName": "alb"}})


@pytest.mark.parametrize(("ports", "expected"), [
    ('[{"HTTPS": 443}]', []),
    ('[{"HTTPS": 443}, {"HTTP": 80}]', [
        f"{ALB}listen-ports opens HTTP on 80 of an internal ALB; this environment requires "
        f"HTTPS on every listener: set {ALB}certificate-arn and listen on HTTPS 443 (or "
        f"{ALB}ssl-redirect)"]),
    ('{"HTTPS": 443}', [
        "malformed input on r0 (kubernetes:networking.k8s.io/v1:Ingress): metadata.annotations."
        f'{ALB}listen-ports is "{{\\"HTTPS\\": 443}}", not a JSON list such as [{{"HTTPS": 443}}]; '
        "the policy cannot judge it, fix the value"]),
])
def test_ingress_listen_ports(ports, expected):
    found = run_stack("transit-listener-https", [_alb_ingress(ports)],
                      {"allowHttpOnInternalLoadBalancers": False})
    assert found == expected


CLASSIC = ("Service of type LoadBalancer without spec.loadBalancerClass or the "
           "service.beta.kubernetes.io/aws-load-balancer-type annotation: the in-tree cloud "
           "provider creates a Classic Load Balancer; set loadBalancerClass: service.k8s.aws/nlb")


@pytest.mark.parametrize(("kind", "classic"), [
    (None, True), ("nlb", False), ("nlb-ip", False), ("external", False), ("clb", True)])
def test_load_balancer_services_by_their_type_annotation(kind, classic):
    annotations = {} if kind is None else {
        "service.beta.kubernetes.io/aws-load-balancer-type": kind}
    props = {"metadata": {"annotations": annotations}, "spec": {"type": "LoadBalancer"}}
    assert run("transit-no-classic-elb", "kubernetes:core/v1:Service", props) == (
        [CLASSIC] if classic else [])


def _gpu_container(name: str, gpu_in: str = "limits", probe: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "resources": {gpu_in: {"nvidia.com/gpu": "1"}}}
    if probe is not None:
        container["livenessProbe"] = probe
    return container


SHORT = {"httpGet": {"path": "/health", "port": 8000}}  # 30 s with Kubernetes' defaults


def _restarts(name: str) -> str:
    return (f"container {name}: livenessProbe restarts it after 30 s (initialDelaySeconds + "
            "periodSeconds x failureThreshold); the model needs 600 s: give it a startupProbe "
            "that covers the load")


@pytest.mark.parametrize(("containers", "expected"), [
    ([_gpu_container("a"), _gpu_container("b", probe=SHORT)], [_restarts("b")]),
    ([_gpu_container("a", "requests", SHORT)], [_restarts("a")]),  # a GPU in requests only
    ([{"name": "sidecar", "livenessProbe": SHORT}], []),            # no GPU: not a model
])
def test_every_gpu_container_with_a_probe_is_judged(containers, expected):
    props = {"spec": {"template": {"spec": {"containers": containers}}}}
    assert run("llm-startup-timeouts", "kubernetes:apps/v1:Deployment", props) == expected
