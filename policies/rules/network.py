"""`private-by-default` and `encryption-at-rest`.

Private: the EKS API endpoint is private (or CIDR-restricted) where the environment requires it,
load balancers are internal unless the environment allows public ones, no security group admits
0.0.0.0/0 except HTTPS to an allowed public load balancer, and serving capacity never gets a
public IP. Subnet *ids* are unknown until `pulumi up` (and awsx's subnets are opaque offline), so
"private subnets only" is checked through the public-IP switches every launch path has.

Encryption: EBS (launch templates, EC2NodeClasses, volumes, managed node groups), the SageMaker
endpoint's ML storage volume (KMS, except on instance-store types where SageMaker forbids a key and
the hardware encrypts), EKS secrets envelope encryption, and CloudWatch log groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.rules._framework import (
    ENDPOINT_CONFIGS,
    Resource,
    Rule,
    as_bool,
    as_number,
    family_of,
    get,
    is_map,
    items,
)

ANY_IPV4, ANY_IPV6 = "0.0.0.0/0", "::/0"

# ------------------------------------------------------------------------------------------
# private-by-default


def _public_cidrs_open(cidrs: Any) -> bool:
    values = [str(c) for c in items(cidrs)]
    return not values or ANY_IPV4 in values or ANY_IPV6 in values


def check_eks_component_endpoint(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # pulumi_eks defaults endpointPublicAccess to true (Cluster input docs).
    p = resource.props
    yield from _endpoint(as_bool(get(p, "endpointPublicAccess")), get(p, "publicAccessCidrs"),
                         "endpointPublicAccess", config)
    if as_bool(get(p, "nodeAssociatePublicIpAddress")) is True:
        yield "nodeAssociatePublicIpAddress is true; nodes must not get public IPs"


def check_eks_cluster_endpoint(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    vpc = get(resource.props, "vpcConfig", default={})
    yield from _endpoint(as_bool(get(vpc, "endpointPublicAccess")), get(vpc, "publicAccessCidrs"),
                         "vpcConfig.endpointPublicAccess", config)


def _endpoint(public: bool | None, cidrs: Any, where: str,
              config: Mapping[str, Any]) -> Iterable[str]:
    if not config["requirePrivateClusterEndpoint"] or public is False:
        return
    if _public_cidrs_open(cidrs):
        yield (f"{where} is {'true' if public else 'unset (default true)'} and publicAccessCidrs "
               "allows the whole internet; turn the public endpoint off or restrict it to your "
               "CIDRs")


def check_load_balancer(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config["allowPublicLoadBalancers"]:
        return
    if as_bool(get(resource.props, "internal")) is not True:
        yield ("internal is not true: this environment allows only internal load balancers; "
               "set internal=true (or allowPublicLoadBalancers in the policy config)")


def check_k8s_service(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config["allowPublicLoadBalancers"] or get(resource.props, "spec", "type") != "LoadBalancer":
        return
    annotations = get(resource.props, "metadata", "annotations", default={})
    # AWS Load Balancer Controller annotations:
    # https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/
    scheme = get(annotations, "service.beta.kubernetes.io/aws-load-balancer-scheme")
    legacy = as_bool(get(annotations, "service.beta.kubernetes.io/aws-load-balancer-internal"))
    if scheme != "internal" and legacy is not True:
        yield ("Service of type LoadBalancer is internet-facing; annotate "
               "service.beta.kubernetes.io/aws-load-balancer-scheme: internal")


def check_k8s_ingress(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config["allowPublicLoadBalancers"]:
        return
    scheme = get(resource.props, "metadata", "annotations", "alb.ingress.kubernetes.io/scheme")
    if scheme != "internal":
        yield ("Ingress ALB scheme is not internal; annotate alb.ingress.kubernetes.io/scheme: "
               "internal")


def _open_rule(where: str, cidrs: list[str], protocol: Any, from_port: Any, to_port: Any,
               config: Mapping[str, Any]) -> Iterable[str]:
    open_to = [c for c in cidrs if c in (ANY_IPV4, ANY_IPV6)]
    if not open_to:
        return
    https = (str(protocol) in ("tcp", "6") and as_number(from_port) == 443
             and as_number(to_port) == 443)
    if https and config["allowPublicLoadBalancers"]:
        return
    ports = f"{as_number(from_port) or 0:g}-{as_number(to_port) or 0:g}"
    yield (f"{where} admits {', '.join(open_to)} on {protocol} {ports}; only HTTPS (443) to an "
           "allowed public load balancer may be open to the internet")


def check_security_group(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for i, rule in enumerate(items(get(resource.props, "ingress"))):
        cidrs = [str(c) for c in items(get(rule, "cidrBlocks")) + items(get(rule,
                                                                             "ipv6CidrBlocks"))]
        yield from _open_rule(f"ingress[{i}]", cidrs, get(rule, "protocol"),
                              get(rule, "fromPort"), get(rule, "toPort"), config)


def check_security_group_rule(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    if get(p, "type") != "ingress":
        return
    cidrs = [str(c) for c in items(get(p, "cidrBlocks")) + items(get(p, "ipv6CidrBlocks"))]
    yield from _open_rule("rule", cidrs, get(p, "protocol"), get(p, "fromPort"),
                          get(p, "toPort"), config)


def check_ingress_rule(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    cidrs = [str(c) for c in (get(p, "cidrIpv4"), get(p, "cidrIpv6")) if c]
    yield from _open_rule("rule", cidrs, get(p, "ipProtocol"), get(p, "fromPort"),
                          get(p, "toPort"), config)


def check_launch_template_public_ip(resource: Resource,
                                    config: Mapping[str, Any]) -> Iterable[str]:
    for i, nic in enumerate(items(get(resource.props, "networkInterfaces"))):
        if as_bool(get(nic, "associatePublicIpAddress")) is True:
            yield (f"networkInterfaces[{i}].associatePublicIpAddress is true; serving capacity "
                   "runs in private subnets without public IPs")


def check_ecs_service_public_ip(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if as_bool(get(resource.props, "networkConfiguration", "assignPublicIp")) is True:
        yield ("networkConfiguration.assignPublicIp is true; serving tasks run in private "
               "subnets without public IPs")


def check_node_class_public_ip(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if as_bool(get(resource.props, "spec", "associatePublicIPAddress")) is True:
        yield ("spec.associatePublicIPAddress is true; GPU nodes run in private subnets without "
               "public IPs")


def check_sagemaker_model_vpc(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not is_map(get(resource.props, "vpcConfig")):
        yield ("vpcConfig is unset: the model container runs outside this VPC with SageMaker's "
               "own internet access; give it the private subnets and a security group")


PRIVATE_BY_DEFAULT = Rule(
    name="private-by-default",
    description=(
        "EKS API, load balancers, security groups and serving capacity are private unless the "
        "environment allows otherwise."
    ),
    checks={
        "eks:index:Cluster": check_eks_component_endpoint,
        "aws:eks/cluster:Cluster": check_eks_cluster_endpoint,
        "aws:lb/loadBalancer:LoadBalancer": check_load_balancer,
        "aws:alb/loadBalancer:LoadBalancer": check_load_balancer,
        "kubernetes:core/v1:Service": check_k8s_service,
        "kubernetes:networking.k8s.io/v1:Ingress": check_k8s_ingress,
        "aws:ec2/securityGroup:SecurityGroup": check_security_group,
        "aws:ec2/securityGroupRule:SecurityGroupRule": check_security_group_rule,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": check_ingress_rule,
        "aws:ec2/launchTemplate:LaunchTemplate": check_launch_template_public_ip,
        "aws:ecs/service:Service": check_ecs_service_public_ip,
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": check_node_class_public_ip,
        "aws:sagemaker/model:Model": check_sagemaker_model_vpc,
    },
    config={
        "requirePrivateClusterEndpoint": {
            "type": "boolean",
            "default": True,
            "description": "EKS public API endpoint must be off or restricted to CIDRs",
        },
        "allowPublicLoadBalancers": {
            "type": "boolean",
            "default": False,
            "description": "internet-facing load balancers (HTTPS only) are allowed",
        },
    },
)

# ------------------------------------------------------------------------------------------
# encryption-at-rest


def _ebs_mappings(mappings: Any, where: str) -> Iterable[str]:
    for i, m in enumerate(items(mappings)):
        ebs = get(m, "ebs")
        if is_map(ebs) and as_bool(get(ebs, "encrypted")) is not True:
            yield f"{where}[{i}] ({get(m, 'deviceName', default='?')}): ebs.encrypted is not true"


def check_launch_template_ebs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _ebs_mappings(get(resource.props, "blockDeviceMappings"), "blockDeviceMappings")


def check_node_class_ebs(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _ebs_mappings(get(resource.props, "spec", "blockDeviceMappings"),
                             "spec.blockDeviceMappings")


def check_volume(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if as_bool(get(resource.props, "encrypted")) is not True:
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
    types = [str(get(v, "instanceType", default="")) for v in
             items(get(resource.props, "productionVariants"))]
    local = [t for t in types if family_of(t) in LOCAL_NVME_FAMILIES]
    field = "kmsKeyId" if resource.type.startswith("aws-native:") else "kmsKeyArn"
    key = get(resource.props, field)
    if local and key:
        yield (f"{field} is set but {', '.join(local)} use(s) NVMe instance storage, which is "
               "hardware-encrypted; SageMaker rejects a KMS key for these types: remove it")
    elif not local and not key:
        yield f"{field} is unset; encrypt the endpoint's ML storage volumes with a KMS key"


def check_eks_component_secrets(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not get(resource.props, "encryptionConfigKeyArn"):
        yield ("encryptionConfigKeyArn is unset; envelope-encrypt Kubernetes secrets with a "
               "KMS key")


def check_eks_cluster_secrets(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    enc = get(resource.props, "encryptionConfig", default={})
    if "secrets" not in [str(r) for r in items(get(enc, "resources"))] or \
            not get(enc, "provider", "keyArn"):
        yield ("encryptionConfig does not encrypt 'secrets' with a KMS key; envelope-encrypt "
               "Kubernetes secrets")


def check_log_group(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not get(resource.props, "kmsKeyId"):
        yield "kmsKeyId is unset; encrypt the log group with a KMS key"


ENCRYPTION_AT_REST = Rule(
    name="encryption-at-rest",
    description=(
        "EBS volumes, SageMaker endpoint volumes, EKS secrets and log groups are encrypted "
        "at rest."
    ),
    checks={
        "aws:ec2/launchTemplate:LaunchTemplate": check_launch_template_ebs,
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": check_node_class_ebs,
        "aws:ebs/volume:Volume": check_volume,
        "aws:eks/nodeGroup:NodeGroup": check_node_group_disk,
        **dict.fromkeys(ENDPOINT_CONFIGS, check_endpoint_config_kms),
        "eks:index:Cluster": check_eks_component_secrets,
        "aws:eks/cluster:Cluster": check_eks_cluster_secrets,
        "aws:cloudwatch/logGroup:LogGroup": check_log_group,
    },
)

RULES = [ENCRYPTION_AT_REST, PRIVATE_BY_DEFAULT]
