"""The gateway's master key: generated once in Secrets Manager, never in config or state as text.

Clients send it as the Bearer token (LiteLLM's `general_settings.master_key`, which must start
with `sk-`). Secrets Manager generates the random part (GetRandomPassword) when the secret is
created; later runs leave the stored value alone (`ignore_changes`), so a key rotated with
`aws secretsmanager put-secret-value` is never reverted by `pulumi up`. The value is a Pulumi
secret wherever it passes through the engine.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.tags import Naming

RECOVERY_DAYS: dict[str, int] = {"dev": 7, "staging": 7, "prod": 30}
KEY_LENGTH = 48


def master_key_secret(name: str, naming: Naming,
                      parent: pulumi.Resource) -> aws.secretsmanager.Secret:
    opts = pulumi.ResourceOptions(parent=parent)
    secret = aws.secretsmanager.Secret(
        name, name_prefix=f"{naming.prefix}/gateway-master-key-",
        description=f"{naming.prefix}: the gateway's master key (clients send it as Bearer "
                    "token)",
        recovery_window_in_days=RECOVERY_DAYS[naming.environment],
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
