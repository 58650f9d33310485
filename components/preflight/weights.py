"""Each `weightsUri`: in the stack's region, holding `config.json` and `*.safetensors` at the root
of the prefix (where every platform's loader reads them), encrypted with the key the stack names.

With `weightsKmsKeyArn` the key must be usable: enabled, a symmetric encrypt/decrypt key, and
delegating to IAM (the default key policy's "Enable IAM User Permissions" statement), since the
serving role's `kms:Decrypt` comes from an IAM policy.
https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
"""

from __future__ import annotations

import json
import re
from typing import Any

from components.config import Model
from components.preflight.checks import AWS_ERRORS, Check, Context, aws_error, error_code

_S3_URI = re.compile(r"^s3://([^/]+)/(.+?)/?$")
STAGING_DOC = "docs/deploy.md#stage-weights-in-s3-weightsuri"


def bucket_region(location: str | None) -> str:
    """GetBucketLocation's answer as a region: us-east-1 has no constraint; "EU" is legacy."""
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location or "")


def _root_listing(s3: Any, bucket: str, prefix: str) -> tuple[list[dict[str, Any]], list[str]]:
    objects: list[dict[str, Any]] = []
    folders: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"):
        objects += page.get("Contents", [])
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return objects, folders


def _encryption(head: dict[str, Any], model: Model, key: str, index: int) -> Check | None:
    name = f"weights {model.name}"
    wanted = model.spec.weights_kms_key_arn
    used = head.get("SSEKMSKeyId") if str(head.get("ServerSideEncryption", "")).startswith(
        "aws:kms") else None
    if used and not wanted:
        return Check(name, "fail", f"{key} is SSE-KMS encrypted with {used} but weightsKmsKeyArn "
                     "is not set: the serving role cannot decrypt it",
                     f"`pulumi config set --path 'llm-hosting:models[{index}].weightsKmsKeyArn' "
                     f"{used}`")
    if used and wanted and used != wanted:
        return Check(name, "fail", f"{key} is encrypted with {used}, not weightsKmsKeyArn "
                     f"{wanted}", f"set weightsKmsKeyArn to {used}, or re-upload with "
                     "`aws s3 cp --sse aws:kms --sse-kms-key-id <weightsKmsKeyArn>`")
    return None


def weights_rows(ctx: Context, model: Model) -> list[Check]:
    uri = model.spec.weights_uri
    assert uri is not None
    name = f"weights {model.name}"
    match = _S3_URI.match(uri)
    if match is None:  # config validation already refused it; kept for a clear row
        return [Check(name, "fail", f"{uri} is not s3://<bucket>/<prefix>", STAGING_DOC)]
    bucket, prefix = match.group(1), match.group(2).rstrip("/") + "/"
    s3 = ctx.clients("s3")
    region = ctx.config.region
    try:
        location = bucket_region(s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"))
        objects, folders = _root_listing(s3, bucket, prefix)
    except AWS_ERRORS as exc:
        if error_code(exc) == "NoSuchBucket":
            return [Check(name, "fail", f"bucket {bucket} does not exist",
                          f"create it in {region} and stage the weights ({STAGING_DOC})")]
        return [aws_error(name, "s3:GetBucketLocation / s3:ListBucket", exc,
                          f"s3:GetBucketLocation and s3:ListBucket on arn:{ctx.partition}:s3:::"
                          f"{bucket}")]
    if location != region:
        return [Check(name, "fail", f"bucket {bucket} is in {location}, the stack in {region}: "
                      "the VPC's S3 gateway endpoint reaches same-region buckets only",
                      f"copy the weights to a bucket in {region}")]
    keys = [o["Key"].removeprefix(prefix) for o in objects]
    fix = (f"`aws s3 sync ./<model dir> {uri.rstrip('/')}/` with the Hub repository's files at "
           f"the root ({STAGING_DOC})")
    if not keys:
        where = (f"; its files are one level down, under s3://{bucket}/{folders[0]}"
                 if folders else "")
        return [Check(name, "fail", f"{uri} holds no objects at the root of the prefix{where}",
                      fix)]
    missing = []
    if "config.json" not in keys:
        missing.append("config.json")
    shards = [k for k in keys if k.endswith(".safetensors")]
    if not shards:
        missing.append("*.safetensors")
    if missing:
        return [Check(name, "fail", f"{uri} has no {' and no '.join(missing)} at the root "
                      f"({len(keys)} object(s) there)", fix)]
    try:
        head = s3.head_object(Bucket=bucket, Key=prefix + shards[0])
    except AWS_ERRORS as exc:
        return [aws_error(name, "s3:GetObject (HEAD)", exc,
                          f"s3:GetObject on arn:{ctx.partition}:s3:::{bucket}/{prefix}*")]
    problem = _encryption(head, model, shards[0], ctx.config.models.index(model))
    if problem is not None:
        return [problem]
    size = sum(o.get("Size", 0) for o in objects if o["Key"].endswith(".safetensors"))
    return [Check(name, "pass", f"{uri}: config.json and {len(shards)} safetensors file(s), "
                  f"{size / 2**30:.1f} GiB, in {region}")]


def _delegates_to_iam(policy: dict[str, Any], account: str, partition: str) -> bool:
    """True when an Allow statement gives the account root kms:* or kms:Decrypt (IAM policies
    of the account may then grant the key)."""
    roots = {f"arn:{partition}:iam::{account}:root", account}
    for st in policy.get("Statement", []):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal", {})
        aws = principal.get("AWS", []) if isinstance(principal, dict) else principal
        principals = {aws} if isinstance(aws, str) else set(aws)
        actions = st.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions)
        if principals & roots and actions & {"kms:*", "kms:Decrypt", "*"}:
            return True
    return False


def key_rows(ctx: Context, model: Model) -> list[Check]:
    key = model.spec.weights_kms_key_arn
    assert key is not None
    name = f"kms key {model.name}"
    kms = ctx.clients("kms")
    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except AWS_ERRORS as exc:
        if error_code(exc) == "NotFoundException":
            return [Check(name, "fail", f"{key} does not exist", "set weightsKmsKeyArn to the "
                          "key the weights bucket encrypts with")]
        return [aws_error(name, "kms:DescribeKey", exc, f"kms:DescribeKey on {key}")]
    if meta.get("KeyState") != "Enabled":
        return [Check(name, "fail", f"{key} is {meta.get('KeyState')}: S3 cannot decrypt with it",
                      f"`aws kms enable-key --key-id {key}` (or cancel its deletion)")]
    if meta.get("KeyUsage") != "ENCRYPT_DECRYPT" or meta.get("KeySpec",
                                                             "SYMMETRIC_DEFAULT") != \
            "SYMMETRIC_DEFAULT":
        return [Check(name, "fail", f"{key} is a {meta.get('KeySpec')} {meta.get('KeyUsage')} "
                      "key; SSE-KMS needs a symmetric encrypt/decrypt key", "use such a key")]
    key_account = meta.get("AWSAccountId", ctx.account)
    try:
        policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    except AWS_ERRORS as exc:
        return [Check(name, "warn", f"{key} is enabled; its key policy was not readable "
                      f"({error_code(exc)}), so delegation to IAM is unchecked",
                      f"allow kms:GetKeyPolicy on {key} to check it")]
    if not _delegates_to_iam(policy, key_account, ctx.partition):
        return [Check(name, "fail", f"{key}'s key policy does not let account {key_account}'s "
                      "IAM policies grant it: the serving role's kms:Decrypt has no effect",
                      "add the default key policy's 'Enable IAM User Permissions' statement "
                      "(docs/deploy.md#stage-weights-in-s3-weightsuri)")]
    return [Check(name, "pass", f"{key} is an enabled symmetric key whose policy delegates to "
                  "IAM")]


def check(ctx: Context) -> list[Check]:
    rows: list[Check] = []
    for model in ctx.config.models:
        if model.spec.weights_uri is None:
            continue
        rows += weights_rows(ctx, model)
        if model.spec.weights_kms_key_arn is not None:
            rows += key_rows(ctx, model)
    return rows
