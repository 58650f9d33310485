"""S3: public access blocked, no public ACL or bucket policy, encryption with KMS where required.

Since April 2023 S3 turns Block Public Access on and ACLs off for every new bucket, and since
January 2023 it encrypts every new object with SSE-S3; what a program can still get wrong is
switching those off or granting around them. So the rules judge what a stack *sets*:

- `s3-bucket-public-access-block`: a public access block (per bucket, per account, per access
  point, or inline on an aws-native bucket) has all four settings on. An omitted setting in a
  block the stack writes is off (PutPublicAccessBlock's default is false), so it counts as off.
- `s3-bucket-no-public-acl`: no canned ACL or grant to AllUsers/AuthenticatedUsers.
- `s3-bucket-no-public-policy`: no bucket or access-point policy that allows `*` without a
  condition S3 itself counts as non-public.
- `s3-bucket-encryption`: an encryption configuration is SSE-KMS with the stack's own key where
  the environment requires it (`requireKms`), else SSE-S3 or SSE-KMS; with `requireKms`, a bucket
  with no configuration (S3's SSE-S3 default) is a violation too.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html
https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-encryption-faq.html
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from policies.rules._framework import (
    Finding,
    Malformed,
    Resource,
    Rule,
    boolean_at,
    each_resource,
    get,
    items_at,
    json_at,
    map_at,
    string_at,
)
from policies.rules.iam import effect, pinning_keys, principals, statements

# ------------------------------------------------------------------------------------------
# s3-bucket-public-access-block

BLOCK_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                  "restrictPublicBuckets")

#: type -> path of the block's settings ("" = the resource's own top-level properties).
PUBLIC_ACCESS_BLOCKS: Mapping[str, tuple[str, ...]] = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (),
    "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock": (),
    "aws:s3/accessPoint:AccessPoint": ("publicAccessBlockConfiguration",),
    "aws-native:s3:Bucket": ("publicAccessBlockConfiguration",),
    "aws-native:s3:AccessPoint": ("publicAccessBlockConfiguration",),
    "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint": ("details",
                                                                    "publicAccessBlock"),
    "aws-native:s3:MultiRegionAccessPoint": ("publicAccessBlockConfiguration",),
}


def check_public_access_block(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    path = PUBLIC_ACCESS_BLOCKS[resource.type]
    block = map_at(resource.props, *path) if path else resource.props
    if path and get(resource.props, *path) is None:
        return  # not set: S3's default for new buckets and access points is all four on
    prefix = f"{'.'.join(path)}." if path else ""
    for setting in BLOCK_SETTINGS:
        value = boolean_at(block, setting)
        if value is not True:
            state = "unset (off)" if value is None else "false"
            yield (f"{prefix}{setting} is {state}; turn on all four public access block "
                   "settings")


S3_PUBLIC_ACCESS_BLOCK = Rule(
    name="s3-bucket-public-access-block",
    description="Every S3 public access block the stack writes has all four settings on.",
    checks=dict.fromkeys(PUBLIC_ACCESS_BLOCKS, check_public_access_block),
)


# ------------------------------------------------------------------------------------------
# s3-bucket-no-public-acl

PUBLIC_CANNED = {"public-read", "public-read-write", "authenticated-read"}
PUBLIC_CANNED_NATIVE = {"PublicRead", "PublicReadWrite", "AuthenticatedRead"}
PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
"""Canned ACLs and grantee groups that make a bucket or object public:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#canned-acl"""

ACL_TYPES: Mapping[str, tuple[tuple[str, ...], ...]] = {
    # type -> (canned-ACL property, grant list paths...)
    "aws:s3/bucket:Bucket": (("acl",), ("grants",)),
    "aws:s3/bucketV2:BucketV2": (("acl",), ("grants",)),
    "aws:s3/bucketAclV2:BucketAclV2": (("acl",), ("accessControlPolicy", "grants")),
    "aws:s3/bucketAcl:BucketAcl": (("acl",), ("accessControlPolicy", "grants")),
    "aws:s3/bucketObject:BucketObject": (("acl",),),
    "aws:s3/bucketObjectv2:BucketObjectv2": (("acl",),),
    "aws:s3/objectCopy:ObjectCopy": (("acl",), ("grants",)),
    "aws-native:s3:Bucket": (("accessControl",),),
}


def check_acl(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    canned_path, *grant_paths = ACL_TYPES[resource.type]
    canned = string_at(resource.props, *canned_path)
    if canned in PUBLIC_CANNED or canned in PUBLIC_CANNED_NATIVE:
        yield (f"{canned_path[0]} is {canned}, which grants everyone access; use private "
               "(and bucket-owner-enforced object ownership)")
    for path in grant_paths:
        for grant in items_at(resource.props, *path):
            grantee = map_at(grant, "grantee") if get(grant, "grantee") is not None else grant
            uri = string_at(grantee, "uri")
            if uri in PUBLIC_GROUPS:
                yield (f"{'.'.join(path)} grants {string_at(grant, 'permission') or 'access'} "
                       f"(permissions {preview_permissions(grant)}) to {uri.rsplit('/', 1)[-1]}; "
                       "grant named accounts only")


def preview_permissions(grant: Any) -> str:
    permissions = get(grant, "permissions")
    if permissions is None:
        return string_at(grant, "permission") or "?"
    return ", ".join(str(p) for p in items_at(grant, "permissions"))


S3_NO_PUBLIC_ACL = Rule(
    name="s3-bucket-no-public-acl",
    description="No S3 bucket or object ACL grants access to everyone or every AWS user.",
    checks=dict.fromkeys(ACL_TYPES, check_acl),
)


# ------------------------------------------------------------------------------------------
# s3-bucket-no-public-policy

POLICY_DOCUMENTS: Mapping[str, tuple[str, ...]] = {
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:s3/bucket:Bucket": ("policy",),
    "aws:s3/bucketV2:BucketV2": ("policy",),
    "aws:s3/accessPoint:AccessPoint": ("policy",),
    "aws:s3control/accessPointPolicy:AccessPointPolicy": ("policy",),
    "aws:s3control/bucketPolicy:BucketPolicy": ("policy",),
    "aws:s3control/multiRegionAccessPointPolicy:MultiRegionAccessPointPolicy":
        ("details", "policy"),
    "aws:s3control/objectLambdaAccessPointPolicy:ObjectLambdaAccessPointPolicy": ("policy",),
    "aws-native:s3:BucketPolicy": ("policyDocument",),
    "aws-native:s3:AccessPoint": ("policy",),
    "aws-native:s3:MultiRegionAccessPointPolicy": ("policy",),
    "aws:s3/filesFileSystemPolicy:FilesFileSystemPolicy": ("policy",),
    "aws:s3/vectorsVectorBucketPolicy:VectorsVectorBucketPolicy": ("policy",),
    "aws:s3control/accessGrantsInstanceResourcePolicy:AccessGrantsInstanceResourcePolicy":
        ("policy",),
}

#: Condition keys with fixed values that make S3 treat a `*` grant as non-public ("The meaning
#: of public" in access-control-block-public-access.html, section policy status).
NON_PUBLIC_KEYS = frozenset({
    "aws:principalarn", "aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths",
    "aws:sourcearn", "aws:sourceaccount", "aws:sourceorgid", "aws:sourceorgpaths",
    "aws:sourcevpc", "aws:sourcevpce", "aws:sourceip", "aws:userid", "aws:sourceowner",
    "s3:dataaccesspointarn", "s3:dataaccesspointaccount",
})


def public_statements(where: str, document: Any) -> Iterator[str]:
    for label, statement in statements(where, document):
        if effect(statement, label) != "Allow":
            continue
        found = principals(statement, label)
        if ("*" in found or "*" in found.get("AWS", [])) and \
                not pinning_keys(statement, label) & NON_PUBLIC_KEYS:
            yield label


def check_public_policy(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    path = POLICY_DOCUMENTS[resource.type]
    document = json_at(resource.props, *path)
    if document is None:
        return
    for label in public_statements(".".join(path), document):
        yield (f"{label} allows * (anyone) without a condition S3 counts as non-public "
               "(aws:SourceVpce, aws:PrincipalOrgID, aws:SourceArn, ...); name the principals")


S3_NO_PUBLIC_POLICY = Rule(
    name="s3-bucket-no-public-policy",
    description="No S3 bucket or access point policy allows anyone without a non-public "
                "condition.",
    checks=dict.fromkeys(POLICY_DOCUMENTS, check_public_policy),
)


# ------------------------------------------------------------------------------------------
# s3-bucket-encryption (stack: a pulumi-aws bucket's encryption is a separate resource)

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws-native:s3:Bucket")
ENCRYPTION_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
)
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _defaults(resource: Resource) -> list[tuple[str, Any]]:
    """(where, applyServerSideEncryptionByDefault-like object) of an encryption setting."""
    p = resource.props
    if resource.type in ENCRYPTION_CONFIGS:
        return [(f"rules[{i}].applyServerSideEncryptionByDefault",
                 map_at(rule, "applyServerSideEncryptionByDefault"))
                for i, rule in enumerate(items_at(p, "rules"))]
    if resource.type == "aws-native:s3:Bucket":
        rules = items_at(p, "bucketEncryption", "serverSideEncryptionConfiguration")
        return [(f"bucketEncryption.serverSideEncryptionConfiguration[{i}]"
                 ".serverSideEncryptionByDefault", map_at(rule, "serverSideEncryptionByDefault"))
                for i, rule in enumerate(rules)]
    if resource.type == "aws:s3/bucket:Bucket":
        rule = get(p, "serverSideEncryptionConfiguration", "rule")
        if rule is None:
            return []
        return [("serverSideEncryptionConfiguration.rule.applyServerSideEncryptionByDefault",
                 map_at(rule, "applyServerSideEncryptionByDefault"))]
    out = []
    # BucketV2's legacy inline form: every level is a list in the provider's schema
    # (`applyServerSideEncryptionByDefaults: Sequence[...]`, pulumi_aws.s3 BucketV2 inputs).
    for i, conf in enumerate(items_at(p, "serverSideEncryptionConfigurations")):
        for j, rule in enumerate(items_at(conf, "rules")):
            for k, default in enumerate(items_at(rule, "applyServerSideEncryptionByDefaults")):
                out.append((f"serverSideEncryptionConfigurations[{i}].rules[{j}]"
                            f".applyServerSideEncryptionByDefaults[{k}]", default))
    return out


def _judge_defaults(settings: Sequence[tuple[str, Any]], require_kms: bool) -> Iterator[str]:
    for where, default in settings:
        algorithm = string_at(default, "sseAlgorithm")
        key = string_at(default, "kmsMasterKeyId")
        if algorithm not in ("AES256", *KMS_ALGORITHMS):
            raise Malformed(f"{where}.sseAlgorithm", algorithm, "AES256, aws:kms or aws:kms:dsse")
        if not require_kms:
            continue
        if algorithm not in KMS_ALGORITHMS:
            yield (f"{where}.sseAlgorithm is {algorithm}; this environment requires SSE-KMS "
                   "with the stack's own key")
        elif not key or key.startswith("alias/aws/") or ":alias/aws/" in key:
            yield (f"{where}.kmsMasterKeyId is {key or 'unset (the AWS managed aws/s3 key)'}; "
                   "this environment requires a customer-managed KMS key")


def check_bucket_encryption(resources: Sequence[Resource], config: Mapping[str, Any]
                            ) -> Iterable[Finding]:
    require_kms = bool(config["requireKms"])
    configured: set[str] = set()
    for r in resources:
        if r.type in ENCRYPTION_CONFIGS:
            configured.update(urn for urns in r.deps.values() for urn in urns)

    def judge(resource: Resource) -> Iterable[str]:
        if resource.type not in (*BUCKETS, *ENCRYPTION_CONFIGS):
            return
        settings = _defaults(resource)
        yield from _judge_defaults(settings, require_kms)
        if require_kms and not settings and resource.type in BUCKETS and \
                resource.urn not in configured:
            yield ("no server-side encryption configuration: S3 applies SSE-S3, and this "
                   "environment requires SSE-KMS with the stack's own key (add a "
                   "BucketServerSideEncryptionConfigurationV2)")

    yield from each_resource(resources, judge)


S3_ENCRYPTION = Rule(
    name="s3-bucket-encryption",
    description="S3 buckets encrypt with SSE-S3 or SSE-KMS, and with the stack's own KMS key "
                "where the environment requires it.",
    stack_check=check_bucket_encryption,
    stack_types=frozenset((*BUCKETS, *ENCRYPTION_CONFIGS)),
    config={
        "requireKms": {
            "type": "boolean",
            "default": False,
            "description": "buckets must use SSE-KMS with a customer-managed key",
        },
    },
)

RULES = [S3_PUBLIC_ACCESS_BLOCK, S3_NO_PUBLIC_ACL, S3_NO_PUBLIC_POLICY, S3_ENCRYPTION]
