"""The gateway's master key: generated once in Secrets Manager, never in config or state as text.

Clients send it as the Bearer token (LiteLLM's `general_settings.master_key`, which must start
with `sk-`). Secrets Manager generates the random part (GetRandomPassword) when the secret is
created; later runs leave the stored value alone (`ignore_changes`), so a key rotated with
`aws secretsmanager put-secret-value` is never reverted by `pulumi up`. The value is a Pulumi
secret wherever it passes through the engine.

The secret is encrypted with a key of the stack's own that only Secrets Manager may use
(components/kms.py): the gateway's readers (the Fargate execution role, the EKS pod's role) get
the value through Secrets Manager and need no KMS permission, and the prod policy config
requires customer-managed keys (docs/policies.md). On a stack created before, the key is set in
place: Secrets Manager re-encrypts the AWSCURRENT/AWSPENDING/AWSPREVIOUS versions with it (the
value does not change).
https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_update-encryption-key.html
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.kms import service_only_key
from components.tags import Naming

RECOVERY_DAYS: dict[str, int] = {"dev": 7, "staging": 7, "prod": 30}
KEY_LENGTH = 48


def master_key_secret(name: str, naming: Naming,
                      parent: pulumi.Resource) -> aws.secretsmanager.Secret:
    opts = pulumi.ResourceOptions(parent=parent)
    region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=parent)).region
    key = service_only_key(
        f"{name}-key", description=f"{naming.prefix}: the gateway's master key secret",
        service="secretsmanager", region=region, tags=naming.tags(component="gateway"),
        # Without the key the secret cannot be read: protected with it.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=naming.protect)))
    secret = aws.secretsmanager.Secret(
        name, name_prefix=f"{naming.prefix}/gateway-master-key-",
        description=f"{naming.prefix}: the gateway's master key (clients send it as Bearer "
                    "token)",
        recovery_window_in_days=RECOVERY_DAYS[naming.environment],
        kms_key_id=key.arn,
        tags=naming.tags(component="gateway"),
        # Clients hold this key: deleting the secret would lock every one of them out.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=naming.protect)))
    random = aws.secretsmanager.get_random_password_output(
        password_length=KEY_LENGTH, exclude_punctuation=True,
        opts=pulumi.InvokeOutputOptions(parent=parent))
    aws.secretsmanager.SecretVersion(
        f"{name}-value", secret_id=secret.id,
        secret_string=pulumi.Output.secret(pulumi.Output.concat("sk-", random.random_password)),
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["secretString"]))
    return secret
