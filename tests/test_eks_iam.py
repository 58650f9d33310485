"""EKS IAM documents: syntactically valid for IAM, and least privilege where IAM allows it."""

from __future__ import annotations

import json

import pytest

from components.eks import iam

ACCOUNT = "123456789012"
CLUSTER = "llm-hosting-prod"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{CLUSTER}-karpenter"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/karpenter-node"
PROFILE = f"arn:aws:iam::{ACCOUNT}:instance-profile/{CLUSTER}-karpenter-node"
WRITE_ACTIONS = {"ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate",
                 "ec2:CreateTags", "ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"}


def controller() -> dict:
    return json.loads(iam.karpenter_controller_policy(
        partition="aws", region="us-east-1", account=ACCOUNT, cluster_name=CLUSTER,
        queue_arn=QUEUE, node_role_arn=NODE_ROLE, instance_profile_arn=PROFILE))


def actions(stmt: dict) -> list[str]:
    a = stmt["Action"]
    return [a] if isinstance(a, str) else a


def test_documents_are_accepted_by_iam():
    """moto applies IAM's policy-document grammar (MalformedPolicyDocument otherwise)."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        trusts = {
            "ec2": iam.service_assume_role_policy("ec2.amazonaws.com", ACCOUNT),
            "eks": iam.service_assume_role_policy("eks.amazonaws.com", ACCOUNT),
            "pod": iam.pod_identity_trust_policy(account=ACCOUNT, cluster_name=CLUSTER,
                                                 namespace="kube-system",
                                                 service_account="karpenter"),
        }
        for role, trust in trusts.items():
            client.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        client.put_role_policy(RoleName="pod", PolicyName="karpenter",
                               PolicyDocument=iam.karpenter_controller_policy(
                                   partition="aws", region="us-east-1", account=ACCOUNT,
                                   cluster_name=CLUSTER, queue_arn=QUEUE,
                                   node_role_arn=NODE_ROLE, instance_profile_arn=PROFILE))
        client.put_role_policy(RoleName="eks", PolicyName="kms", PolicyDocument=(
            iam.cluster_encryption_policy(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/abc")))
        with pytest.raises(client.exceptions.MalformedPolicyDocumentException):
            client.put_role_policy(RoleName="eks", PolicyName="bad",
                                   PolicyDocument='{"Version": "2012-10-17", "Statement": [{}]}')


def test_controller_policy_has_no_wildcard_writes():
    for stmt in controller()["Statement"]:
        assert "*" not in actions(stmt) and stmt["Effect"] == "Allow"
        if stmt["Resource"] == "*":
            assert all(a.split(":")[1].startswith(("Describe", "List", "Get"))
                       for a in actions(stmt)), stmt["Sid"]


def test_every_ec2_write_is_tied_to_this_cluster_or_to_our_account_and_region():
    for stmt in controller()["Statement"]:
        writes = WRITE_ACTIONS & set(actions(stmt))
        if not writes:
            continue
        resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [
            stmt["Resource"]]
        assert all(r.startswith("arn:aws:ec2:us-east-1:") for r in resources), stmt["Sid"]
        assert all(f":{ACCOUNT}:" in r or "::image/" in r or "::snapshot/" in r
                   for r in resources), stmt["Sid"]
        scoped = json.dumps(stmt.get("Condition", {}))
        unscoped_ok = stmt["Sid"] == "AllowScopedEC2InstanceAccessActions"  # AMIs/subnets/SGs
        assert unscoped_ok or f"kubernetes.io/cluster/{CLUSTER}" in scoped, stmt["Sid"]


def test_controller_passes_only_the_node_role_to_ec2_and_reads_only_its_queue():
    sids = {s["Sid"]: s for s in controller()["Statement"]}
    passrole = sids["AllowPassingInstanceRole"]
    assert passrole["Resource"] == NODE_ROLE
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert sids["AllowInterruptionQueueActions"]["Resource"] == QUEUE
    assert sids["AllowInstanceProfileReadActions"]["Resource"] == PROFILE
    # Karpenter never creates or deletes instance profiles: the EC2NodeClass names ours
    assert not [a for s in sids.values() for a in actions(s)
                if a in {"iam:CreateInstanceProfile", "iam:DeleteInstanceProfile",
                         "iam:AddRoleToInstanceProfile"}]
    assert sids["AllowAPIServerEndpointDiscovery"]["Resource"].endswith(f":cluster/{CLUSTER}")


def test_pod_identity_trust_is_limited_to_one_service_account_on_one_cluster():
    (stmt,) = json.loads(iam.pod_identity_trust_policy(
        account=ACCOUNT, cluster_name=CLUSTER, namespace="kube-system",
        service_account="karpenter"))["Statement"]
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(stmt["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert stmt["Condition"]["StringEquals"] == {
        "aws:SourceAccount": ACCOUNT,
        "aws:RequestTag/eks-cluster-name": CLUSTER,
        "aws:RequestTag/kubernetes-namespace": "kube-system",
        "aws:RequestTag/kubernetes-service-account": "karpenter",
    }
