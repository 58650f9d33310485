"""`encryption-at-rest` and `encryption-customer-managed-keys`.

At rest: EBS (launch templates and configurations, instances, spot requests, EC2NodeClasses,
volumes, managed node groups), the SageMaker endpoint's ML storage volume (KMS, except on
instance-store types where SageMaker forbids a key and the hardware encrypts), EKS secrets
envelope encryption, CloudWatch log groups (KMS), EFS file systems (off unless asked) and SQS
queues (not with SSE switched off) — in pulumi-aws and aws-native alike. SNS topics, Secrets
Manager secrets and AMP workspaces are always encrypted (an AWS-managed or AWS-owned key when
none is named), so only the customer-managed-key rule judges them.

Customer-managed keys: where the environment requires them, SNS topics, SQS queues, Secrets
Manager secrets, EFS file systems, AMP workspaces and log groups name a KMS key of their own
(not `alias/aws/...`, not SSE-SQS): a key whose policy the stack writes, whose use CloudTrail
shows per key, and that can be disabled to cut access. Resources whose logical name matches
`awsManagedKeyAllowed` (glob) are exempt, for data that is not the model's or the users' (e.g.
Karpenter's interruption queue, which carries EC2 events). An AMP workspace takes its key only
at creation: adding one later replaces the workspace and loses its metrics (docs/policies.md).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from policies.rules import _capacity as cap
from policies.rules._framework import (
    ENDPOINT_CONFIGS,
    Resource,
    Rule,
    boolean_at,
    family_of,
    get,
    is_map,
    items_at,
    map_at,
    string_at,
)

# ------------------------------------------------------------------------------------------
# encryption-at-rest: block storage


def _ebs_mappings(mappings: list[Any], where: str) -> Iterable[str]:
    for i, m in enumerate(mappings):
        if get(m, "ebs") is None:
            continue  # instance-store or no-device entries
        ebs = map_at(m, "ebs")
        if boolean_at(ebs, "encrypted") is not True:
            name = string_at(m, "deviceName") or "?"
            yield f"{where}[{i}] ({name}): ebs.encrypted is not true"


def check_launch_template_ebs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if resource.type == cap.NATIVE_LAUNCH_TEMPLATE:
        data = map_at(resource.props, "launchTemplateData")
        yield from _ebs_mappings(items_at(data, "blockDeviceMappings"),
                                 "launchTemplateData.blockDeviceMappings")
        return
    yield from _ebs_mappings(items_at(resource.props, "blockDeviceMappings"),
                             "blockDeviceMappings")


def check_node_class_ebs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _ebs_mappings(items_at(resource.props, "spec", "blockDeviceMappings"),
                             "spec.blockDeviceMappings")


def check_instance_ebs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    """pulumi-aws instances, spot requests and launch configurations: `rootBlockDevice` and
    `ebsBlockDevices` each with their own `encrypted`."""
    p = resource.props
    if get(p, "rootBlockDevice") is not None and \
            boolean_at(map_at(p, "rootBlockDevice"), "encrypted") is not True:
        yield "rootBlockDevice.encrypted is not true"
    for i, device in enumerate(items_at(p, "ebsBlockDevices")):
        if boolean_at(device, "encrypted") is not True:
            name = string_at(device, "deviceName") or "?"
            yield f"ebsBlockDevices[{i}] ({name}): encrypted is not true"


def check_native_instance_ebs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _ebs_mappings(items_at(resource.props, "blockDeviceMappings"),
                             "blockDeviceMappings")


def check_volume(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if boolean_at(resource.props, "encrypted") is not True:
        yield "encrypted is not true"


def check_node_group_disk(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # Without a launch template EKS creates the root volume from diskSize with the account's
    # default encryption setting, which this pack cannot see.
    if not is_map(get(resource.props, "launchTemplate")):
        yield ("no launchTemplate: the root volume's encryption is the account default; use a "
               "launch template with an encrypted EBS root volume")


#: GPU families whose every size has NVMe instance storage. Instance store volumes are encrypted
#: by a hardware module, and SageMaker rejects a KmsKeyId for such types ("If you specify a value
#: for KmsKeyId when using any nitro-based instances with local storage, the call to
#: CreateEndpointConfig fails"):
#: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html and
#: https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html#ac_instance-store
LOCAL_NVME_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en"})


def check_endpoint_config_kms(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # KmsKeyArn encrypts the ML storage (EBS) volume; instance-store types are encrypted in
    # hardware and must not set it.
    types = [string_at(v, "instanceType") or "" for v in
             items_at(resource.props, "productionVariants")]
    local = [t for t in types if family_of(t) in LOCAL_NVME_FAMILIES]
    field = "kmsKeyId" if resource.type.startswith("aws-native:") else "kmsKeyArn"
    key = string_at(resource.props, field)
    if local and key:
        yield (f"{field} is set but {', '.join(local)} use(s) NVMe instance storage, which is "
               "hardware-encrypted; SageMaker rejects a KMS key for these types: remove it")
    elif not local and not key:
        yield f"{field} is unset; encrypt the endpoint's ML storage volumes with a KMS key"


# ------------------------------------------------------------------------------------------
# encryption-at-rest: Kubernetes secrets, logs, files, queues


def check_eks_component_secrets(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not string_at(resource.props, "encryptionConfigKeyArn"):
        yield ("encryptionConfigKeyArn is unset; envelope-encrypt Kubernetes secrets with a "
               "KMS key")


def _encrypts_secrets(entry: Any) -> bool:
    resources = [string_at(entry, "resources", i) for i in
                 range(len(items_at(entry, "resources")))]
    return "secrets" in resources and bool(string_at(entry, "provider", "keyArn"))


def check_eks_cluster_secrets(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # pulumi-aws: one encryptionConfig object; aws-native: a list of them.
    value = get(resource.props, "encryptionConfig")
    entries = items_at(resource.props, "encryptionConfig") if resource.type.startswith(
        "aws-native:") else ([map_at(resource.props, "encryptionConfig")]
                             if value is not None else [])
    if not any(_encrypts_secrets(e) for e in entries):
        yield ("encryptionConfig does not encrypt 'secrets' with a KMS key; envelope-encrypt "
               "Kubernetes secrets")


def check_log_group(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not string_at(resource.props, "kmsKeyId"):
        yield "kmsKeyId is unset; encrypt the log group with a KMS key"


def check_efs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    encrypted = boolean_at(resource.props, "encrypted")
    if encrypted is not True:
        state = "unset (EFS's default: not encrypted)" if encrypted is None else "false"
        yield f"encrypted is {state}; file systems holding weights or caches must be encrypted"


def check_sqs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # New queues get SSE-SQS unless it is switched off (CreateQueue, SqsManagedSseEnabled):
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html
    if string_at(resource.props, "kmsMasterKeyId"):
        return
    if boolean_at(resource.props, "sqsManagedSseEnabled") is False:
        yield ("sqsManagedSseEnabled is false and no kmsMasterKeyId: messages are stored "
               "unencrypted; set a KMS key (or SSE-SQS)")


SQS = ("aws:sqs/queue:Queue", "aws-native:sqs:Queue")
EFS = ("aws:efs/fileSystem:FileSystem", "aws-native:efs:FileSystem")
LOG_GROUPS = ("aws:cloudwatch/logGroup:LogGroup", "aws-native:logs:LogGroup")
SNS = ("aws:sns/topic:Topic", "aws-native:sns:Topic")
SECRETS = ("aws:secretsmanager/secret:Secret", "aws-native:secretsmanager:Secret")
AMP = ("aws:amp/workspace:Workspace", "aws-native:aps:Workspace")

ENCRYPTION_AT_REST = Rule(
    name="encryption-at-rest",
    description=(
        "EBS volumes, SageMaker endpoint volumes, EKS secrets, log groups, EFS file systems and "
        "SQS queues are encrypted at rest."
    ),
    checks={
        cap.LAUNCH_TEMPLATE: check_launch_template_ebs,
        cap.NATIVE_LAUNCH_TEMPLATE: check_launch_template_ebs,
        cap.NODE_CLASS: check_node_class_ebs,
        **dict.fromkeys((cap.INSTANCE, cap.SPOT_INSTANCE_REQUEST, cap.LAUNCH_CONFIGURATION),
                        check_instance_ebs),
        **dict.fromkeys((cap.NATIVE_INSTANCE, cap.NATIVE_LAUNCH_CONFIGURATION),
                        check_native_instance_ebs),
        "aws:ebs/volume:Volume": check_volume,
        "aws-native:ec2:Volume": check_volume,
        cap.NODE_GROUP: check_node_group_disk,
        cap.NATIVE_NODE_GROUP: check_node_group_disk,
        **dict.fromkeys(ENDPOINT_CONFIGS, check_endpoint_config_kms),
        "eks:index:Cluster": check_eks_component_secrets,
        "aws:eks/cluster:Cluster": check_eks_cluster_secrets,
        "aws-native:eks:Cluster": check_eks_cluster_secrets,
        **dict.fromkeys(LOG_GROUPS, check_log_group),
        **dict.fromkeys(EFS, check_efs),
        **dict.fromkeys(SQS, check_sqs),
    },
)


# ------------------------------------------------------------------------------------------
# encryption-customer-managed-keys

#: type -> the property naming its KMS key.
KEY_PROPERTY: Mapping[str, str] = {
    "aws:sns/topic:Topic": "kmsMasterKeyId",
    "aws-native:sns:Topic": "kmsMasterKeyId",
    "aws:sqs/queue:Queue": "kmsMasterKeyId",
    "aws-native:sqs:Queue": "kmsMasterKeyId",
    "aws:secretsmanager/secret:Secret": "kmsKeyId",
    "aws-native:secretsmanager:Secret": "kmsKeyId",
    "aws:efs/fileSystem:FileSystem": "kmsKeyId",
    "aws-native:efs:FileSystem": "kmsKeyId",
    "aws:amp/workspace:Workspace": "kmsKeyArn",
    "aws-native:aps:Workspace": "kmsKeyArn",
    "aws:cloudwatch/logGroup:LogGroup": "kmsKeyId",
    "aws-native:logs:LogGroup": "kmsKeyId",
}

_AT_CREATION = {"aws:amp/workspace:Workspace", "aws-native:aps:Workspace"}


def is_aws_managed_key(key: str) -> bool:
    """`alias/aws/sns`, `arn:...:alias/aws/sqs`: keys AWS manages for a service."""
    return key.startswith("alias/aws/") or ":alias/aws/" in key


def check_customer_key(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not config["requireCustomerManagedKeys"]:
        return
    if any(fnmatch.fnmatchcase(resource.name, str(p)) for p in config["awsManagedKeyAllowed"]):
        return
    prop = KEY_PROPERTY[resource.type]
    key = string_at(resource.props, prop)
    if key and not is_aws_managed_key(key):
        return
    state = f"{key} (AWS-managed)" if key else "unset (an AWS-owned or AWS-managed key)"
    later = (" (only at creation: adding it later replaces the workspace and its metrics)"
             if resource.type in _AT_CREATION else "")
    yield (f"{prop} is {state}; this environment requires a customer-managed KMS key"
           f"{later}, or list the resource in awsManagedKeyAllowed if it holds no model or user "
           "data")


ENCRYPTION_CUSTOMER_MANAGED_KEYS = Rule(
    name="encryption-customer-managed-keys",
    description="SNS topics, SQS queues, secrets, EFS file systems, AMP workspaces and log "
                "groups use a customer-managed KMS key where the environment requires it.",
    checks=dict.fromkeys(KEY_PROPERTY, check_customer_key),
    config={
        "requireCustomerManagedKeys": {
            "type": "boolean",
            "default": True,
            "description": "AWS-managed and AWS-owned keys are not enough",
        },
        "awsManagedKeyAllowed": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": [],
            "description": "logical-name globs of resources that may use AWS-managed "
                           "encryption (no model or user data)",
        },
    },
)

RULES = [ENCRYPTION_AT_REST, ENCRYPTION_CUSTOMER_MANAGED_KEYS]
