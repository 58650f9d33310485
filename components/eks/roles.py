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
