"""An IAM role an AWS service assumes, with its AWS-managed policies attached.

The control plane, the managed node groups and Karpenter's nodes each need one; keeping the shape
in one place keeps their trust policies (scoped to this account) and attachment names alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.eks import iam


def service_role(
    role_name: str,
    *,
    service: str,
    description: str,
    managed_policies: Sequence[str],
    account: pulumi.Input[str],
    partition: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The role `role_name` and one attachment `<role_name>-<policy>` per managed policy;
    depend on the attachments before anything uses the role's permissions."""
    role = aws.iam.Role(
        role_name,
        description=description,
        assume_role_policy=pulumi.Output.from_input(account).apply(
            lambda acct: iam.service_assume_role_policy(service, acct)
        ),
        tags=tags,
        opts=opts,
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{role_name}-{policy}",
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", policy),
            opts=opts,
        )
        for policy in managed_policies
    ]
    return role, attachments


def pod_identity_role(
    *,
    role_name: str,
    policy_name: str,
    association_name: str,
    description: str,
    account: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    depends_on: Sequence[pulumi.Resource] = (),
) -> tuple[aws.iam.Role, aws.eks.PodIdentityAssociation]:
    """A role only `namespace/service_account` of this cluster can assume (EKS Pod Identity),
    its inline `policy`, and the association. The association waits for the policy, so a pod
    never starts with credentials that cannot yet do their job, and for `depends_on` (the Pod
    Identity agent add-on, the service account).
    https://docs.aws.amazon.com/eks/latest/userguide/pod-id-association.html
    """
    role = aws.iam.Role(
        role_name,
        description=description,
        assume_role_policy=pulumi.Output.all(account, cluster_name).apply(
            lambda ac: iam.pod_identity_trust_policy(
                account=ac[0], cluster_name=ac[1], namespace=namespace,
                service_account=service_account)
        ),
        tags=tags,
        opts=opts,
    )
    role_policy = aws.iam.RolePolicy(policy_name, role=role.id, policy=policy, opts=opts)
    association = aws.eks.PodIdentityAssociation(
        association_name,
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        tags=tags,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[role_policy, *depends_on])
        ),
    )
    return role, association
