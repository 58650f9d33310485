"""Every family of checks, compliant and violating, through the analyzer protocol.

Each case is one resource (or a small stack, for the stack policies) sent to the pack as the
engine sends it, in pulumi-aws and in aws-native form, under the prod config unless a case says
otherwise; only the family's own policies are compared, with their exact messages.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_harness import Analyzer

from components.facts import GPU_INSTANCES
from components.offline import ROOT, Recorded
from components.tags import SERVING_TAG_PREFIX as P
from policies.rules.families import BY_FAMILY

CONFIGS = {env: json.loads((ROOT / "policies" / f"config.{env}.json").read_text())
           for env in ("dev", "staging", "prod")}
TAGS = {"project": "llm-hosting", "stack": "prod", "environment": "prod", "managed-by": "pulumi"}
NATIVE_TAGS = [{"key": k, "value": v} for k, v in TAGS.items()]
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    yield analyzer
    analyzer.stop()


def res(type_: str, props: dict[str, Any], name: str = "r",
        deps: dict[str, list[str]] | None = None) -> Recorded:
    urn = f"urn:pulumi:prod::llm-hosting::{type_}::{name}"
    return Recorded(type=type_, name=name, inputs=props, urn=urn, outputs=props,
                    property_dependencies=deps or {})


def judge(pack: Analyzer, family: str, *resources: Recorded, env: str = "prod",
          config: dict[str, Any] | None = None) -> set[tuple[str, str, str]]:
    """(policy, resource name, message) of the family's policies, Analyze and AnalyzeStack."""
    pack.configure({**CONFIGS[env], **(config or {})})
    rules = set(BY_FAMILY[family].rules)
    by_urn = {r.urn: r.name for r in resources}
    found = pack.analyze(list(resources)) + pack.analyze_stack(list(resources))
    return {(d.policy, by_urn.get(d.urn, ""), d.detail) for d in found if d.policy in rules}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# --------------------------------------------------------------------------------------------
# IAM


def test_iam_identity_policies(pack):
    ok = doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/p/*"})
    admin = doc({"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"})
    assert judge(pack, "iam-identity-policies",
                 res("aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps(ok)})) == set()
    assert judge(pack, "iam-identity-policies",
                 res("aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps(admin)})) == {(
        "iam-policy-no-star-on-star", "r", "policy Statement[0] (All) allows every action (*) "
        "on *; grant the actions the workload calls on its own resources")}
    not_action = doc({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})
    assert judge(pack, "iam-identity-policies",
                 res("aws-native:iam:ManagedPolicy", {"policyDocument": not_action})) == {(
        "iam-policy-no-notaction-allow", "r", "policyDocument Statement[0] allows every action "
        "except iam:* (NotAction), including actions AWS adds later; list the allowed actions "
        "instead")}
    inline = {"policies": [{"policyName": "p", "policyDocument": doc(
        {"Effect": "Allow", "Action": "*:*", "NotResource": "arn:aws:s3:::secret"})}],
        "assumeRolePolicyDocument": doc()}
    assert judge(pack, "iam-identity-policies", res("aws-native:iam:Role", inline)) == {(
        "iam-policy-no-star-on-star", "r", "policies[0].policyDocument Statement[0] allows every "
        "action (*:*) on NotResource (every other resource); grant the actions the workload "
        "calls on its own resources")}
    # A Deny of everything is no grant.
    deny = doc({"Effect": "Deny", "Action": "*", "Resource": "*"})
    assert judge(pack, "iam-identity-policies",
                 res("aws:iam/policy:Policy", {"policy": json.dumps(deny)})) == set()


def test_iam_managed_policy_attachments(pack):
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert judge(pack, "iam-identity-policies", res(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        {"role": "r", "policyArn": admin})) == {(
        "iam-policy-no-star-on-star", "r", "policyArn attaches the AWS-managed "
        "AdministratorAccess, which allows * on *; attach a policy with the actions the "
        "workload calls")}
    assert judge(pack, "iam-identity-policies", res(
        "aws-native:iam:Role", {"assumeRolePolicyDocument": doc(), "managedPolicyArns": [
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws-us-gov:iam::aws:policy/PowerUserAccess"]})) == {(
        "iam-policy-no-notaction-allow", "r", "managedPolicyArns[1] attaches the AWS-managed "
        "PowerUserAccess, an Allow with NotAction; attach a policy with the actions the "
        "workload calls")}


def _trust(*statements: dict[str, Any], native: bool = False) -> Recorded:
    if native:
        return res("aws-native:iam:Role", {"assumeRolePolicyDocument": doc(*statements)})
    return res("aws:iam/role:Role", {"assumeRolePolicy": json.dumps(doc(*statements))})


def test_iam_trust_to_everyone_an_account_or_a_whole_identity_provider(pack):
    anyone = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    assert judge(pack, "iam-trust", _trust(anyone)) == {(
        "iam-role-trust-scoped", "r", "assumeRolePolicy Statement[0] lets any AWS principal (*) "
        "assume the role; name the principals, or pin them with aws:PrincipalArn / "
        "aws:PrincipalOrgID")}
    org = {**anyone, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}
    assert judge(pack, "iam-trust", _trust(org, native=True)) == set()
    # A negated or IfExists operator pins nothing.
    weak = {**anyone, "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-x"},
                                    "StringEqualsIfExists": {"aws:PrincipalArn": "arn:x"}}}
    assert len(judge(pack, "iam-trust", _trust(weak))) == 1
    account = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
               "Action": "sts:AssumeRole"}
    assert judge(pack, "iam-trust", _trust(account, native=True)) == {(
        "iam-role-trust-scoped", "r", "assumeRolePolicyDocument Statement[0] trusts every "
        "principal of account 444455556666 (arn:aws:iam::444455556666:root) without a "
        "condition; name the role, or add aws:PrincipalArn or sts:ExternalId (or list the "
        "account in trustedAccountIds)")}
    external = {**account, "Condition": {"StringEquals": {"sts:ExternalId": "a1b2c3"}}}
    assert judge(pack, "iam-trust", _trust(external)) == set()
    assert judge(pack, "iam-trust", _trust(account), config={
        "iam-role-trust-scoped": {"trustedAccountIds": ["444455556666"]}}) == set()
    github = {"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
              "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/"
                                         "token.actions.githubusercontent.com"},
              "Condition": {"StringEquals": {
                  "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}
    assert judge(pack, "iam-trust", _trust(github)) == {(
        "iam-role-trust-scoped", "r", f"assumeRolePolicy Statement[0] trusts every identity of "
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com; condition it "
        "on the token's subject (<provider>:sub, or SAML:aud / cognito ...:aud for those "
        "providers)")}
    github["Condition"]["StringLike"] = {
        "token.actions.githubusercontent.com:sub": "repo:acme/llm:environment:prod"}
    assert judge(pack, "iam-trust", _trust(github)) == set()


def test_iam_service_trust_needs_confused_deputy_conditions(pack):
    bare = {"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com",
                                                         "ec2.amazonaws.com"]},
            "Action": "sts:AssumeRole"}
    assert judge(pack, "iam-trust", _trust(bare)) == {(
        "iam-role-trust-confused-deputy", "r", "assumeRolePolicy Statement[0] lets "
        "sagemaker.amazonaws.com assume the role for any account's resources; add "
        "aws:SourceAccount (and aws:SourceArn where the service documents it) so it acts only "
        "for this account")}
    guarded = {**bare, "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    assert judge(pack, "iam-trust", _trust(guarded, native=True)) == set()
    ec2 = {**bare, "Principal": {"Service": "ec2.amazonaws.com"}}
    assert judge(pack, "iam-trust", _trust(ec2)) == set()  # EC2 sets no source keys


# --------------------------------------------------------------------------------------------
# S3


def test_s3_public_access_block_missing_vs_false(pack):
    block = {"bucket": "b", "blockPublicAcls": True, "blockPublicPolicy": True,
             "ignorePublicAcls": True, "restrictPublicBuckets": True}
    pab = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    assert judge(pack, "s3-public-access-block", res(pab, block)) == set()
    missing = {k: v for k, v in block.items() if k != "blockPublicPolicy"}
    assert judge(pack, "s3-public-access-block", res(pab, missing)) == {(
        "s3-bucket-public-access-block", "r", "blockPublicPolicy is unset (off); turn on all "
        "four public access block settings")}
    assert judge(pack, "s3-public-access-block",
                 res(pab, {**block, "restrictPublicBuckets": False})) == {(
        "s3-bucket-public-access-block", "r", "restrictPublicBuckets is false; turn on all "
        "four public access block settings")}
    native = {"publicAccessBlockConfiguration": {"blockPublicAcls": True,
                                                 "ignorePublicAcls": "false"}}
    assert judge(pack, "s3-public-access-block", res("aws-native:s3:Bucket", native)) == {
        ("s3-bucket-public-access-block", "r", f"publicAccessBlockConfiguration.{s} is {state}; "
         "turn on all four public access block settings")
        for s, state in (("blockPublicPolicy", "unset (off)"), ("ignorePublicAcls", "false"),
                         ("restrictPublicBuckets", "unset (off)"))}
    # No block at all: S3's default for new buckets is all four on.
    assert judge(pack, "s3-public-access-block", res("aws-native:s3:Bucket", {})) == set()


def test_s3_public_acls(pack):
    assert judge(pack, "s3-acl", res("aws:s3/bucketAclV2:BucketAclV2",
                                     {"bucket": "b", "acl": "private"})) == set()
    assert judge(pack, "s3-acl", res("aws:s3/bucketAclV2:BucketAclV2",
                                     {"bucket": "b", "acl": "public-read"})) == {(
        "s3-bucket-no-public-acl", "r", "acl is public-read, which grants everyone access; use "
        "private (and bucket-owner-enforced object ownership)")}
    grants = {"bucket": "b", "accessControlPolicy": {"owner": {"id": "o"}, "grants": [
        {"permission": "READ", "grantee": {
            "type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}}
    ]}}
    assert judge(pack, "s3-acl", res("aws:s3/bucketAclV2:BucketAclV2", grants)) == {(
        "s3-bucket-no-public-acl", "r", "accessControlPolicy.grants grants READ (permissions "
        "READ) to AuthenticatedUsers; grant named accounts only")}
    assert judge(pack, "s3-acl", res("aws-native:s3:Bucket",
                                     {"accessControl": "PublicReadWrite"})) == {(
        "s3-bucket-no-public-acl", "r", "accessControl is PublicReadWrite, which grants "
        "everyone access; use private (and bucket-owner-enforced object ownership)")}


def test_s3_public_bucket_policies(pack):
    public = {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Resource": "arn:aws:s3:::b/*"}
    assert judge(pack, "s3-policy", res("aws:s3/bucketPolicy:BucketPolicy",
                                        {"bucket": "b", "policy": json.dumps(doc(public))})) == {(
        "s3-bucket-no-public-policy", "r", "policy Statement[0] (Anyone) allows * (anyone) "
        "without a condition S3 counts as non-public (aws:SourceVpce, aws:PrincipalOrgID, "
        "aws:SourceArn, ...); name the principals")}
    vpce = {**public, "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0abc"}}}
    assert judge(pack, "s3-policy", res("aws-native:s3:BucketPolicy",
                                        {"bucket": "b", "policyDocument": doc(vpce)})) == set()
    deny_http = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert judge(pack, "s3-policy", res("aws-native:s3:BucketPolicy",
                                        {"bucket": "b", "policyDocument": doc(deny_http)})) == set()


def test_s3_encryption_is_kms_with_a_stack_key_in_prod(pack):
    bucket = res("aws:s3/bucketV2:BucketV2", {"bucket": "b"}, "bucket")
    sse = res("aws:s3/bucketServerSideEncryptionConfigurationV2:"
              "BucketServerSideEncryptionConfigurationV2",
              {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {
                  "sseAlgorithm": "AES256"}}]}, "sse", {"bucket": [bucket.urn]})
    assert judge(pack, "s3-encryption", bucket, sse) == {(
        "s3-bucket-encryption", "sse", "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm "
        "is AES256; this environment requires SSE-KMS with the stack's own key")}
    assert judge(pack, "s3-encryption", bucket, sse, env="dev") == set()
    assert judge(pack, "s3-encryption", bucket) == {(
        "s3-bucket-encryption", "bucket", "no server-side encryption configuration: S3 applies "
        "SSE-S3, and this environment requires SSE-KMS with the stack's own key (add a "
        "BucketServerSideEncryptionConfigurationV2)")}
    kms = {"bucketEncryption": {"serverSideEncryptionConfiguration": [
        {"serverSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                           "kmsMasterKeyId": "arn:aws:kms:us-east-1:1:key/k"}}]}}
    assert judge(pack, "s3-encryption", res("aws-native:s3:Bucket", kms)) == set()
    managed = json.loads(json.dumps(kms))
    managed["bucketEncryption"]["serverSideEncryptionConfiguration"][0][
        "serverSideEncryptionByDefault"]["kmsMasterKeyId"] = "alias/aws/s3"
    assert judge(pack, "s3-encryption", res("aws-native:s3:Bucket", managed)) == {(
        "s3-bucket-encryption", "r", "bucketEncryption.serverSideEncryptionConfiguration[0]"
        ".serverSideEncryptionByDefault.kmsMasterKeyId is alias/aws/s3; this environment "
        "requires a customer-managed KMS key")}


# --------------------------------------------------------------------------------------------
# encryption in transit


def _lb(internal: bool, native: bool = False) -> Recorded:
    if native:
        props = {"type": "application", **({"scheme": "internal"} if internal else {})}
        return res("aws-native:elasticloadbalancingv2:LoadBalancer", props, "alb")
    return res("aws:lb/loadBalancer:LoadBalancer",
               {"internal": internal, "loadBalancerType": "application"}, "alb")


def _listener(lb: Recorded, protocol: str, port: int, actions: list[dict[str, Any]],
              native: bool = False, name: str = "listener") -> Recorded:
    type_ = ("aws-native:elasticloadbalancingv2:Listener" if native
             else "aws:lb/listener:Listener")
    return res(type_, {"protocol": protocol, "port": port, "defaultActions": actions,
                       "loadBalancerArn": "unknown-until-created"}, name,
               {"loadBalancerArn": [lb.urn]})


FIXED = [{"type": "fixed-response", "fixedResponse": {"statusCode": "404"}}]
REDIRECT = [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}]


def test_http_listener_on_an_internal_load_balancer_where_allowed(pack):
    lb = _lb(internal=True)
    http = _listener(lb, "HTTP", 80, FIXED)
    assert judge(pack, "load-balancer-listeners", lb, http, env="staging") == set()
    assert judge(pack, "load-balancer-listeners", lb, http) == {(
        "transit-listener-https", "listener", "HTTP listener on port 80 of the internal load "
        "balancer alb serves plain text; this environment requires HTTPS on every listener: "
        "listen on HTTPS with an ACM certificate (or redirect to it)")}
    public = _lb(internal=False, native=True)
    native = _listener(public, "HTTP", 8080, FIXED, native=True)
    assert judge(pack, "load-balancer-listeners", public, native, env="staging") == {(
        "transit-listener-https", "listener", "HTTP listener on port 8080 of the "
        "internet-facing load balancer alb serves plain text; plain HTTP is allowed on internal "
        "load balancers only: listen on HTTPS with an ACM certificate (or redirect to it)")}
    https = _listener(public, "HTTPS", 443, FIXED, native=True)
    assert judge(pack, "load-balancer-listeners", public, https) == set()


def test_redirect_only_http_listener_unless_a_rule_forwards(pack):
    lb = _lb(internal=False)
    redirect = _listener(lb, "HTTP", 80, REDIRECT)
    assert judge(pack, "load-balancer-listeners", lb, redirect) == set()
    rule = res("aws:lb/listenerRule:ListenerRule", {
        "listenerArn": "x", "priority": 1,
        "actions": [{"type": "forward", "targetGroupArn": "tg"}]}, "route",
        {"listenerArn": [redirect.urn]})
    assert judge(pack, "load-balancer-listeners", lb, redirect, rule) == {(
        "transit-listener-https", "listener", "HTTP listener on port 80 of the internet-facing "
        "load balancer alb serves plain text (forwarded by rules route); this environment "
        "requires HTTPS on every listener: listen on HTTPS with an ACM certificate (or "
        "redirect to it)")}


def test_alb_ingress_listen_ports(pack):
    ing = {"metadata": {"annotations": {"alb.ingress.kubernetes.io/scheme": "internal"}},
           "spec": {"ingressClassName": "alb"}}
    ingress = "kubernetes:networking.k8s.io/v1:Ingress"
    assert judge(pack, "load-balancer-listeners", res(ingress, ing), env="dev") == set()
    assert judge(pack, "load-balancer-listeners", res(ingress, ing)) == {(
        "transit-listener-https", "r", "alb.ingress.kubernetes.io/listen-ports opens HTTP on 80 "
        "of an internal ALB; this environment requires HTTPS on every listener: set "
        "alb.ingress.kubernetes.io/certificate-arn and listen on HTTPS 443 (or "
        "alb.ingress.kubernetes.io/ssl-redirect)")}
    ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"] = "arn:acm"
    assert judge(pack, "load-balancer-listeners", res(ingress, ing)) == set()


def test_no_classic_load_balancer(pack):
    message = ("a Classic Load Balancer: previous generation, older TLS policies only; use an "
               "Application or Network Load Balancer")
    for type_ in ("aws:elb/loadBalancer:LoadBalancer",
                  "aws-native:elasticloadbalancing:LoadBalancer"):
        assert judge(pack, "classic-load-balancer", res(type_, {"internal": True})) == {
            ("transit-no-classic-elb", "r", message)}
    service = "kubernetes:core/v1:Service"
    nlb = {"spec": {"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb"}}
    assert judge(pack, "classic-load-balancer", res(service, nlb)) == set()
    assert judge(pack, "classic-load-balancer",
                 res(service, {"spec": {"type": "LoadBalancer"}})) == {(
        "transit-no-classic-elb", "r", "Service of type LoadBalancer without "
        "spec.loadBalancerClass or the service.beta.kubernetes.io/aws-load-balancer-type "
        "annotation: the in-tree cloud provider creates a Classic Load Balancer; set "
        "loadBalancerClass: service.k8s.aws/nlb")}


# --------------------------------------------------------------------------------------------
# encryption at rest and customer-managed keys


def test_at_rest_efs_sqs_logs_ebs_and_kubernetes_secrets(pack):
    fam = "encryption-at-rest"
    assert judge(pack, fam, res("aws:efs/fileSystem:FileSystem", {})) == {(
        "encryption-at-rest", "r", "encrypted is unset (EFS's default: not encrypted); file "
        "systems holding weights or caches must be encrypted")}
    assert judge(pack, fam, res("aws-native:efs:FileSystem", {"encrypted": False})) == {(
        "encryption-at-rest", "r", "encrypted is false; file systems holding weights or caches "
        "must be encrypted")}
    assert judge(pack, fam, res("aws-native:sqs:Queue", {"sqsManagedSseEnabled": False})) == {(
        "encryption-at-rest", "r", "sqsManagedSseEnabled is false and no kmsMasterKeyId: "
        "messages are stored unencrypted; set a KMS key (or SSE-SQS)")}
    assert judge(pack, fam, res("aws:sqs/queue:Queue", {})) == set()  # SSE-SQS by default
    assert judge(pack, fam, res("aws-native:logs:LogGroup", {"retentionInDays": 30})) == {(
        "encryption-at-rest", "r", "kmsKeyId is unset; encrypt the log group with a KMS key")}
    lt = {"launchTemplateData": {"blockDeviceMappings": [
        {"deviceName": "/dev/xvda", "ebs": {"encrypted": False}}]}}
    assert judge(pack, fam, res("aws-native:ec2:LaunchTemplate", lt)) == {(
        "encryption-at-rest", "r", "launchTemplateData.blockDeviceMappings[0] (/dev/xvda): "
        "ebs.encrypted is not true")}
    assert judge(pack, fam, res("aws:ec2/instance:Instance",
                                {"rootBlockDevice": {"volumeSize": 100}})) == {(
        "encryption-at-rest", "r", "rootBlockDevice.encrypted is not true")}
    cluster = {"encryptionConfig": [{"resources": ["secrets"],
                                     "provider": {"keyArn": "arn:aws:kms:k"}}]}
    assert judge(pack, fam, res("aws-native:eks:Cluster", cluster)) == set()
    assert judge(pack, fam, res("aws-native:eks:Cluster", {"encryptionConfig": []})) == {(
        "encryption-at-rest", "r", "encryptionConfig does not encrypt 'secrets' with a KMS "
        "key; envelope-encrypt Kubernetes secrets")}


def test_customer_managed_keys_in_prod(pack):
    fam = "customer-managed-keys"
    key = "arn:aws:kms:us-east-1:123456789012:key/0a1b"
    assert judge(pack, fam, res("aws:sns/topic:Topic", {"kmsMasterKeyId": key})) == set()
    assert judge(pack, fam, res("aws-native:sns:Topic", {"kmsMasterKeyId": "alias/aws/sns"})) \
        == {("encryption-customer-managed-keys", "r", "kmsMasterKeyId is alias/aws/sns "
             "(AWS-managed); this environment requires a customer-managed KMS key, or list the "
             "resource in awsManagedKeyAllowed if it holds no model or user data")}
    assert judge(pack, fam, res("aws-native:aps:Workspace", {})) == {(
        "encryption-customer-managed-keys", "r", "kmsKeyArn is unset (an AWS-owned or "
        "AWS-managed key); this environment requires a customer-managed KMS key (only at "
        "creation: adding it later replaces the workspace and its metrics), or list the "
        "resource in awsManagedKeyAllowed if it holds no model or user data")}
    queue = res("aws:sqs/queue:Queue", {"sqsManagedSseEnabled": True},
                "eks-karpenter-interruption")
    assert judge(pack, fam, queue) == set()  # prod's config exempts the EC2 event queue
    assert judge(pack, fam, res("aws:secretsmanager/secret:Secret", {}), env="dev") == set()
    assert len(judge(pack, fam, res("aws-native:secretsmanager:Secret", {}))) == 1


def test_log_retention(pack):
    fam = "log-retention"
    assert judge(pack, fam, res("aws:cloudwatch/logGroup:LogGroup",
                                {"retentionInDays": 30})) == set()
    assert judge(pack, fam, res("aws-native:logs:LogGroup", {})) == {(
        "logs-retention-required", "r", "retentionInDays is unset: events are kept forever; set "
        "one of CloudWatch's values, at least 1 days")}


# --------------------------------------------------------------------------------------------
# network exposure


def test_public_ips_on_compute(pack):
    fam = "public-ip"
    assert judge(pack, fam, res("aws:ec2/instance:Instance",
                                {"associatePublicIpAddress": False})) == set()
    assert judge(pack, fam, res("aws:ec2/instance:Instance",
                                {"associatePublicIpAddress": True})) == {(
        "compute-no-public-ip", "r", "associatePublicIpAddress is true; compute runs in private "
        "subnets without public IPs")}
    svc = {"networkConfiguration": {"awsvpcConfiguration": {"assignPublicIp": "ENABLED"}}}
    assert judge(pack, fam, res("aws-native:ecs:Service", svc)) == {(
        "compute-no-public-ip", "r", "networkConfiguration.awsvpcConfiguration.assignPublicIp "
        "is ENABLED; compute runs in private subnets without public IPs")}
    assert judge(pack, fam, res("aws-native:ec2:Eip", {"instanceId": "i-0abc"})) == {(
        "compute-no-public-ip", "r", "instanceId is set: an Elastic IP on an instance is a "
        "public IP; compute runs in private subnets without public IPs")}
    assert judge(pack, fam, res("aws:ec2/eip:Eip", {"domain": "vpc"})) == set()  # NAT's EIP
    lt = {"launchTemplateData": {"networkInterfaces": [{"associatePublicIpAddress": True}]}}
    assert judge(pack, fam, res("aws-native:ec2:LaunchTemplate", lt)) == {(
        "compute-no-public-ip", "r", "launchTemplateData.networkInterfaces[0]."
        "associatePublicIpAddress is true; compute runs in private subnets without public IPs")}


def test_security_group_ingress_native_twins(pack):
    fam = "security-group-ingress"
    sg = {"groupDescription": "d", "securityGroupIngress": [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"}]}
    assert judge(pack, fam, res("aws-native:ec2:SecurityGroup", sg)) == {(
        "private-by-default", "r", "securityGroupIngress[0] admits 0.0.0.0/0 on tcp 22-22; only "
        "HTTPS (443 alone) to an allowed public load balancer may be open to the internet")}
    rule = {"groupId": "sg-1", "ipProtocol": "-1", "cidrIpv6": "::/0"}
    assert judge(pack, fam, res("aws-native:ec2:SecurityGroupIngress", rule)) == {(
        "private-by-default", "r", "rule admits ::/0 on -1 all ports; only HTTPS (443 alone) to "
        "an allowed public load balancer may be open to the internet")}
    vpc_only = {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                             "cidrBlocks": ["10.0.0.0/16"]}]}
    assert judge(pack, fam, res("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                                vpc_only)) == set()


def test_load_balancer_scheme_and_endpoints_native_twins(pack):
    assert judge(pack, "load-balancer-scheme",
                 res("aws-native:elasticloadbalancingv2:LoadBalancer", {"type": "network"})) == {(
        "private-by-default", "r", "scheme is unset (default internet-facing): this "
        "environment allows only internal load balancers; set scheme=internal (or "
        "allowPublicLoadBalancers in the policy config)")}
    public_api = {"resourcesVpcConfig": {"endpointPublicAccess": True,
                                         "publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}}
    assert judge(pack, "kubernetes-api-endpoint", res("aws-native:eks:Cluster", public_api)) \
        == {("private-by-default", "r", "resourcesVpcConfig.endpointPublicAccess is true and "
             "publicAccessCidrs allows the whole internet; turn the public endpoint off or "
             "restrict it to your CIDRs")}
    assert judge(pack, "sagemaker-model-network", res("aws-native:sagemaker:Model", {})) == {(
        "private-by-default", "r", "vpcConfig is unset: the model container runs outside this "
        "VPC with SageMaker's own internet access; give it the private subnets and a security "
        "group")}


# --------------------------------------------------------------------------------------------
# secrets in arguments, ConfigMaps, envFrom


TOKEN = "hf_" + "a" * 34


def test_secrets_in_ecs_arguments_native_task_definition(pack):
    container = {"name": "engine", "command": ["--model", "m", "--hf-token", "abcdef123"],
                 "environment": [{"name": "HF_HOME", "value": "/models"}]}
    assert judge(pack, "container-secrets", res("aws-native:ecs:TaskDefinition",
                                                {"containerDefinitions": [container]})) == {(
        "no-plaintext-secrets", "r", "container engine: command: flag --hf-token is given a "
        "literal credential; DescribeTaskDefinition shows arguments in plain text: pass it as a "
        "secret-backed environment variable and reference it")}
    container["command"] = ["sh", "-c", "vllm serve m --api-key ${VLLM_API_KEY}"]
    assert judge(pack, "container-secrets", res("aws:ecs/taskDefinition:TaskDefinition",
                                                {"containerDefinitions": json.dumps(
                                                    [container])})) == set()


def test_secrets_in_init_container_args_config_maps_and_config_map_refs(pack):
    pod = {"spec": {"template": {"spec": {
        "initContainers": [{"name": "fetch", "args": ["download", f"--token={TOKEN}"]}],
        "containers": [{"name": "vllm", "args": ["--api-key", "$(API_KEY)"], "env": [
            {"name": "HF_TOKEN", "valueFrom": {"configMapKeyRef": {"name": "cfg",
                                                                   "key": "token"}}}],
            "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}}
    assert judge(pack, "container-secrets", res("kubernetes:apps/v1:Deployment", pod)) == {
        ("no-plaintext-secrets", "r", "container fetch: args: an argument holds a value shaped "
         "like a credential; the pod spec shows arguments in plain text: pass it as a "
         "secret-backed environment variable and reference it"),
        ("no-plaintext-secrets", "r", "container vllm: env HF_TOKEN is read from ConfigMap cfg, "
         "which anyone who can read ConfigMaps sees in plain text: use "
         "valueFrom.secretKeyRef"),
    }
    cm = {"data": {"HF_TOKEN": "abc", "litellm.yaml": "general_settings:\n  master_key: "
                   "os.environ/LITELLM_KEY\nmodel_list:\n- api_key: sk-live-0123456789\n"}}
    assert judge(pack, "container-secrets", res("kubernetes:core/v1:ConfigMap", cm)) == {
        ("no-plaintext-secrets", "r", "data.HF_TOKEN is named like a credential; a ConfigMap "
         "(and every envFrom that reads it) shows it in plain text: use a Secret"),
        ("no-plaintext-secrets", "r", "data.litellm.yaml sets api_key to a literal credential; "
         "mount it from a Secret instead"),
    }
    dashboard = {"data": {"vllm.json": json.dumps({"title": "tokens/s", "max_tokens": 8192})}}
    assert judge(pack, "container-secrets", res("kubernetes:core/v1:ConfigMap", dashboard)) \
        == set()


# --------------------------------------------------------------------------------------------
# instance metadata, GPU capacity, start-up, warm capacity (aws-native twins)


def test_imds_native_twins_and_account_defaults(pack):
    fam = "instance-metadata"
    lt = {"launchTemplateData": {"metadataOptions": {"httpTokens": "optional"}}}
    assert judge(pack, fam, res("aws-native:ec2:LaunchTemplate", lt)) == {(
        "imdsv2-required", "r", "launchTemplateData.metadataOptions.httpTokens is optional; set "
        "it to 'required' so instance credentials are only reachable with IMDSv2 session "
        "tokens")}
    assert judge(pack, fam, res("aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults",
                                {"httpTokens": "optional"})) == {(
        "imdsv2-required", "r", "httpTokens is optional; an account default must not allow "
        "IMDSv1 (set 'required')")}
    assert judge(pack, fam, res("aws-native:ec2:Instance", {"metadataOptions": {
        "httpTokens": "required", "httpPutResponseHopLimit": 1}})) == set()


def test_gpu_capacity_allowlist_native_twins_and_attribute_selection(pack):
    fam = "gpu-capacity"
    asg = {"maxSize": "2", "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "g6e.xlarge"}, {"instanceType": "p5.48xlarge"}]}},
        "tags": [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in TAGS.items()]}
    found = judge(pack, fam, res("aws-native:autoscaling:AutoScalingGroup", asg), env="dev")
    assert ("gpu-instance-allowlist", "r", "mixedInstancesPolicy.launchTemplate.overrides[1]."
            "instanceType: p5.48xlarge is a p5 instance; this environment allows the GPU "
            "families g4dn, g5, g6, g6e") in found
    abs_lt = {"instanceRequirements": {"vcpuCount": {"min": 4}, "memoryMib": {"min": 16384}}}
    assert judge(pack, fam, res("aws:ec2/launchTemplate:LaunchTemplate", abs_lt)) == {(
        "gpu-instance-allowlist", "r", "instanceRequirements lets EC2 pick any instance type "
        "with matching attributes, GPU families outside this environment's allowlist included; "
        "name the instance types, or cap acceleratorCount.max at 0")}
    cpu_only = {"instanceRequirements": {**abs_lt["instanceRequirements"],
                                         "acceleratorCount": {"max": 0}}}
    assert judge(pack, fam, res("aws:ec2/launchTemplate:LaunchTemplate", cpu_only)) == set()


def _asg_tags(**extra: str) -> list[dict[str, Any]]:
    return [{"key": k, "value": v, "propagateAtLaunch": True}
            for k, v in {**TAGS, **extra}.items()]


def test_cost_from_what_the_group_allows_untagged_gpu_capacity_and_lying_tags(pack):
    """The issue's cases: up to 100 p5.48xlarge with no serving tags cost nothing; serving tags
    claiming max-replicas 1 on a group of maxSize 50 were believed."""
    lt = res("aws:ec2/launchTemplate:LaunchTemplate", {"instanceType": "p5.48xlarge"}, "lt")
    asg = res("aws:autoscaling/group:Group", {"maxSize": 100, "minSize": 0, "tags": _asg_tags(),
                                              "launchTemplate": {"id": "lt-unknown"}},
              "gpus", {"launchTemplate": [lt.urn]})
    found = judge(pack, "gpu-capacity", lt, asg)
    assert ("cost-ceiling", "gpus", "GPU capacity without serving tags (llm-hosting/*, or "
            "llm-hosting/models for shared capacity): the pack cannot check what it serves; tag "
            "it with components.tags.Naming.serving_tags") in found
    (over,) = [m for p, n, m in found if n == ""]
    worst = 100 * GPU_INSTANCES["p5.48xlarge"].ec2_usd_per_hour
    assert over.startswith(f"worst case is ${worst:.2f}/hour, over this environment's budget "
                           f"of $150.00/hour: capacity the resources allow ${worst:.2f} (gpus "
                           f"${worst:.2f})")
    # The ECS capacity provider pointing at the group does not count it a second time.
    provider = res("aws:ecs/capacityProvider:CapacityProvider", {"autoScalingGroupProvider": {
        "autoScalingGroupArn": "arn"}}, "cp", {"autoScalingGroupProvider": [asg.urn]})
    assert judge(pack, "gpu-capacity", lt, asg, provider) == found


def test_cost_serving_tags_raise_never_lower(pack):
    serving = {"model": "llama-8b", f"{P}platform": "ecs",
               f"{P}model-id": "meta-llama/Llama-3.1-8B-Instruct",
               f"{P}instance-type": "g6e.xlarge", f"{P}quantization": "none",
               f"{P}gpus-per-replica": "1", f"{P}max-input-tokens": "6144",
               f"{P}max-total-tokens": "8192", f"{P}concurrency-target": "4",
               f"{P}min-replicas": "1"}
    lt = res("aws:ec2/launchTemplate:LaunchTemplate", {"instanceType": "g6e.xlarge"}, "lt")

    def asg(max_size: int, max_replicas: int) -> Recorded:
        return res("aws:autoscaling/group:Group", {
            "maxSize": max_size, "tags": _asg_tags(**serving, **{
                f"{P}max-replicas": str(max_replicas)})}, "gpus", {"launchTemplate": [lt.urn]})

    budget = {"cost-ceiling": {"maxHourlyUsd": 20}}
    # maxSize 50 x $1.861 = $93.05 whatever the tags say.
    (lying,) = judge(pack, "gpu-capacity", lt, asg(50, 1), config=budget)
    assert lying[2].startswith("worst case is $93.05/hour, over this environment's budget of "
                               "$20.00/hour: capacity the resources allow $93.05 (gpus $93.05), "
                               "serving tags at max replicas $1.86 (llama-8b $1.86)")
    # Tags that claim more than the group allows raise the figure.
    (raised,) = judge(pack, "gpu-capacity", lt, asg(2, 20), config=budget)
    assert raised[2].startswith("worst case is $37.22/hour")
    assert judge(pack, "gpu-capacity", lt, asg(2, 2), config=budget) == set()


def test_cost_karpenter_pools_and_sagemaker_variants(pack):
    pool = {"metadata": {"annotations": {f"{P}models": "x"}}, "spec": {"template": {"spec": {
        "requirements": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                          "values": ["g6e"]}]}}}}
    nodepool = "kubernetes:karpenter.sh/v1:NodePool"
    assert judge(pack, "gpu-capacity", res(nodepool, pool)) == {(
        "cost-ceiling", "r", "cannot bound the cost of r: spec.limits sets no nvidia.com/gpu, "
        "cpu or memory limit: Karpenter may launch GPU nodes without end; set spec.limits "
        "(e.g. nvidia.com/gpu)")}
    pool["spec"]["limits"] = {"nvidia.com/gpu": "8"}
    found = judge(pack, "gpu-capacity", res(nodepool, pool),
                  config={"cost-ceiling": {"maxHourlyUsd": 1}})
    # The priciest g6e per GPU is g6e.16xlarge: one GPU at its whole price.
    per_gpu = max(g.ec2_usd_per_hour / g.gpu_count for g in GPU_INSTANCES.values()
                  if g.family == "g6e")
    assert per_gpu == GPU_INSTANCES["g6e.16xlarge"].ec2_usd_per_hour
    ((_, _, message),) = found
    assert message.startswith(f"worst case is ${8 * per_gpu:.2f}/hour, over this environment's "
                              "budget of $1.00/hour: capacity the resources allow")
    unpinned = {"spec": {"limits": {"nvidia.com/gpu": "8"}, "template": {"spec": {
        "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                          "values": ["spot"]}]}}}}
    assert judge(pack, "gpu-capacity", res(nodepool, unpinned)) == {(
        "cost-ceiling", "r", "cannot bound the cost of r: spec.template.spec.requirements let "
        "Karpenter launch any GPU type, beyond what the facts catalog can price; pin "
        "karpenter.k8s.aws/instance-family (or node.kubernetes.io/instance-type) to catalog "
        "GPU types"), ("cost-ceiling", "r", "GPU capacity without serving tags (llm-hosting/*, "
                       "or llm-hosting/models for shared capacity): the pack cannot check what "
                       "it serves; tag it with components.tags.Naming.serving_tags")}
    variant = {"variantName": "g6e-xlarge", "instanceType": "ml.g6e.xlarge",
               "initialInstanceCount": 1,
               "managedInstanceScaling": {"status": "ENABLED", "minInstanceCount": 1,
                                          "maxInstanceCount": 3}}
    config = res("aws-native:sagemaker:EndpointConfig", {
        "productionVariants": [variant], "tags": [*NATIVE_TAGS, {"key": f"{P}models",
                                                                  "value": "a b"}]}, "ec")
    target = res("aws-native:applicationautoscaling:ScalableTarget", {
        "resourceId": "endpoint/e/variant/g6e-xlarge", "maxCapacity": 10,
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount", "minCapacity": 1,
        "serviceNamespace": "sagemaker"}, "t")
    (alone,) = judge(pack, "gpu-capacity", config, config={"cost-ceiling": {"maxHourlyUsd": 1}})
    (scaled,) = judge(pack, "gpu-capacity", config, target,
                      config={"cost-ceiling": {"maxHourlyUsd": 1}})
    per_instance = float(alone[2].split("$")[1].split("/")[0]) / 3
    assert scaled[2].startswith(f"worst case is ${per_instance * 10:.2f}/hour")


def test_serving_fit_start_up_and_warm_capacity_native_twins(pack):
    svc = {"loadBalancers": [{"containerName": "engine", "containerPort": 8000}]}
    assert judge(pack, "serving-start-up", res("aws-native:ecs:Service", svc)) == {(
        "llm-startup-timeouts", "r", "healthCheckGracePeriodSeconds is unset; set it to at "
        "least 600 s so ECS does not replace tasks whose health checks fail while the model "
        "loads")}
    target = {"serviceNamespace": "sagemaker", "minCapacity": 0, "maxCapacity": 2,
              "resourceId": "inference-component/ic",
              "scalableDimension": "sagemaker:inference-component:DesiredCopyCount"}
    assert judge(pack, "warm-capacity",
                 res("aws-native:applicationautoscaling:ScalableTarget", target)) == {(
        "warm-capacity-in-prod", "r", "minCapacity is 0; keep at least 1 so the first request "
        "after idle does not wait for a GPU and a model load")}
    tags = {"model": "m", f"{P}platform": "ecs", f"{P}model-id": "meta-llama/Llama-3.1-70B",
            f"{P}instance-type": "g5.xlarge", f"{P}quantization": "none",
            f"{P}gpus-per-replica": "1", f"{P}max-input-tokens": "1024",
            f"{P}max-total-tokens": "2048", f"{P}concurrency-target": "1",
            f"{P}min-replicas": "1", f"{P}max-replicas": "1"}
    found = judge(pack, "serving-fit", res("aws-native:ecs:TaskDefinition", {"tags": [
        {"key": k, "value": v} for k, v in tags.items()]}))
    ((_, _, message),) = found
    assert message.startswith("tag llm-hosting/instance-type: m (meta-llama/Llama-3.1-70B, ")
    assert " GiB per GPU but g5.xlarge offers " in message
    assert message.endswith(" GiB usable per GPU")
