"""`kms:Decrypt` for weights in an SSE-KMS bucket: one IAM statement builder every platform uses.

A GetObject on an SSE-KMS object makes S3 call `kms:Decrypt` with the requester's credentials, so
the role that reads the weights needs `kms:Decrypt` on the bucket's key and nothing more:
`kms:GenerateDataKey` is what uploads need, and reads call no `kms:DescribeKey`.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html

The grant is usable only through S3 in the stack's region (`kms:ViaService`) and only for the
weights bucket (`kms:EncryptionContext:aws:s3:arn`). S3 sets that context to the *object* ARN,
or to the *bucket* ARN when S3 Bucket Keys are enabled
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/configuring-bucket-key.html), so the
condition accepts exactly the bucket ARN and the object ARNs under the weights prefix: it holds
with and without Bucket Keys, and never matches another bucket (`bucket*` would match
`bucket-other`). With Bucket Keys the context cannot narrow below the bucket; the S3 statements
still limit reads to the prefix.

The key's own policy must let the account's IAM policies grant it (the default key policy's
"Enable IAM User Permissions" statement); an IAM statement alone cannot open a key whose policy
does not: https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def s3_via_service(region: str) -> str:
    """The `kms:ViaService` value for S3 in `region`.
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
    """
    return f"s3.{region}.amazonaws.com"


def weights_decrypt_statements(
    grants: Iterable[tuple[str, str, str]], *, region: str, partition: str = "aws"
) -> list[dict[str, Any]]:
    """One `kms:Decrypt` statement per key; `grants` is (key ARN, bucket, prefix) per weights
    location read with that key. Empty `grants`: no statement."""
    contexts: dict[str, set[str]] = {}
    for key_arn, bucket, prefix in grants:
        if not region:
            raise ValueError("a weights KMS grant needs the stack's region (kms:ViaService)")
        bucket_arn = f"arn:{partition}:s3:::{bucket}"
        contexts.setdefault(key_arn, set()).update(
            {bucket_arn, f"{bucket_arn}/{prefix.strip('/')}/*"})
    keys = sorted(contexts)
    return [
        {
            "Sid": "DecryptWeights" if len(keys) == 1 else f"DecryptWeights{i}",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key_arn,
            "Condition": {
                "StringEquals": {"kms:ViaService": s3_via_service(region)},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": sorted(contexts[key_arn])},
            },
        }
        for i, key_arn in enumerate(keys)
    ]
