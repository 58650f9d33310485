"""`private-by-default` and `compute-no-public-ip`.

Private: the EKS API endpoint is private (or CIDR-restricted) where the environment requires it,
load balancers are internal unless the environment allows public ones, no security group rule
admits the internet except HTTPS (443 alone) to an allowed public load balancer, and SageMaker
models run in the VPC.

No public IPs: every way compute can get a public address (instances, launch templates and
configurations, spot requests and fleets, ECS tasks, Karpenter nodes, pulumi_eks nodes, an
Elastic IP on an instance) keeps it off. Subnet *ids* are unknown until `pulumi up` (and awsx's
subnets are opaque offline), so "private subnets only" is checked through these switches.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from policies.rules import _capacity as cap
from policies.rules._framework import (
    Malformed,
    Resource,
    Rule,
    boolean_at,
    get,
    is_map,
    items_at,
    map_at,
    number_at,
    string_at,
)

ANY_IPV4, ANY_IPV6 = "0.0.0.0/0", "::/0"

# ------------------------------------------------------------------------------------------
# the internet, in CIDRs


def is_internet(cidr: Any, where: str) -> bool:
    """A CIDR that reaches the internet at large: wider than a /8 (IPv4) or a /16 (IPv6) and
    not wholly private/reserved. `0.0.0.0/0` and `::/0` are; so are `0.0.0.0/1` and
    `128.0.0.0/1`, which a rule could use to dodge a literal match. A public /24 (an office's
    range) is not, nor is `fc00::/7` (unique local)."""
    if not isinstance(cidr, str):
        raise Malformed(where, cidr, "a CIDR block")
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise Malformed(where, cidr, "a CIDR block") from None
    widest = 8 if net.version == 4 else 16
    return net.prefixlen < widest and not net.is_private


# ------------------------------------------------------------------------------------------
# private-by-default: API endpoints and load balancers


def _public_cidrs_open(cidrs: list[Any], where: str) -> bool:
    return not cidrs or any(is_internet(c, f"{where}[{i}]") for i, c in enumerate(cidrs))


def check_eks_component_endpoint(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # pulumi_eks defaults endpointPublicAccess to true (Cluster input docs).
    p = resource.props
    yield from _endpoint(boolean_at(p, "endpointPublicAccess"), items_at(p, "publicAccessCidrs"),
                         "endpointPublicAccess", "publicAccessCidrs", config)


def check_eks_cluster_endpoint(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    key = "resourcesVpcConfig" if resource.type.startswith("aws-native:") else "vpcConfig"
    vpc = map_at(resource.props, key)
    yield from _endpoint(boolean_at(vpc, "endpointPublicAccess"),
                         items_at(vpc, "publicAccessCidrs"), f"{key}.endpointPublicAccess",
                         f"{key}.publicAccessCidrs", config)


def _endpoint(public: bool | None, cidrs: list[Any], where: str, cidrs_where: str,
              config: Mapping[str, Any]) -> Iterable[str]:
    # EKS's CreateCluster default is a public endpoint open to 0.0.0.0/0.
    if not config["requirePrivateClusterEndpoint"] or public is False:
        return
    if _public_cidrs_open(cidrs, cidrs_where):
        yield (f"{where} is {'true' if public else 'unset (default true)'} and publicAccessCidrs "
               "allows the whole internet; turn the public endpoint off or restrict it to your "
               "CIDRs")


def check_load_balancer(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config["allowPublicLoadBalancers"]:
        return
    if resource.type.startswith("aws-native:"):
        scheme = string_at(resource.props, "scheme")
        if scheme != "internal":
            yield (f"scheme is {scheme or 'unset (default internet-facing)'}: this environment "
                   "allows only internal load balancers; set scheme=internal (or "
                   "allowPublicLoadBalancers in the policy config)")
        return
    if boolean_at(resource.props, "internal") is not True:
        yield ("internal is not true: this environment allows only internal load balancers; "
               "set internal=true (or allowPublicLoadBalancers in the policy config)")


def check_k8s_service(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config["allowPublicLoadBalancers"] or \
            string_at(resource.props, "spec", "type") != "LoadBalancer":
        return
    annotations = map_at(resource.props, "metadata", "annotations")
    # AWS Load Balancer Controller annotations:
    # https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/
    scheme = string_at(annotations, "service.beta.kubernetes.io/aws-load-balancer-scheme")
    legacy = boolean_at(annotations, "service.beta.kubernetes.io/aws-load-balancer-internal")
    if scheme != "internal" and legacy is not True:
        yield ("Service of type LoadBalancer is internet-facing; annotate "
               "service.beta.kubernetes.io/aws-load-balancer-scheme: internal")


def check_k8s_ingress(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if config["allowPublicLoadBalancers"]:
        return
    scheme = string_at(resource.props, "metadata", "annotations",
                       "alb.ingress.kubernetes.io/scheme")
    if scheme != "internal":
        yield ("Ingress ALB scheme is not internal; annotate alb.ingress.kubernetes.io/scheme: "
               "internal")


def check_sagemaker_model_vpc(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if not is_map(get(resource.props, "vpcConfig")):
        yield ("vpcConfig is unset: the model container runs outside this VPC with SageMaker's "
               "own internet access; give it the private subnets and a security group")


# ------------------------------------------------------------------------------------------
# private-by-default: security group ingress


def _port(value: Any, where: str) -> int | None:
    number = number_at({"v": value}, "v") if value is not None else None
    if number is None:
        return None
    if number != int(number) or not -1 <= number <= 65535:
        raise Malformed(where, value, "a port number (-1 to 65535)")
    return int(number)


def _all_ports(protocol: str) -> bool:
    return protocol.lower() in ("-1", "all")


def _open_rule(where: str, cidrs: list[tuple[str, Any]], protocol: Any, from_port: Any,
               to_port: Any, config: Mapping[str, Any]) -> Iterable[str]:
    open_to = [str(c) for w, c in cidrs if is_internet(c, w)]
    if not open_to:
        return
    if protocol is None or isinstance(protocol, bool) or not isinstance(protocol, (str, int,
                                                                                   float)):
        raise Malformed(f"{where}.protocol", protocol, "a protocol (tcp, udp, icmp, -1, ...)")
    proto = str(int(protocol)) if isinstance(protocol, float) and protocol == int(protocol) \
        else str(protocol)
    low, high = _port(from_port, f"{where}.fromPort"), _port(to_port, f"{where}.toPort")
    # Only TCP 443 alone: a range that spans 443 (400-500) opens every other port in it too.
    https = proto.lower() in ("tcp", "6") and low == 443 and high == 443
    if https and config["allowPublicLoadBalancers"]:
        return
    ports = "all ports" if _all_ports(proto) else f"{_fmt(low)}-{_fmt(high)}"
    yield (f"{where} admits {', '.join(open_to)} on {proto} {ports}; only HTTPS (443 alone) to "
           "an allowed public load balancer may be open to the internet")


def _fmt(port: int | None) -> str:
    return "?" if port is None else str(port)


def _aws_rule_cidrs(rule: Any, where: str) -> list[tuple[str, Any]]:
    out = []
    for key in ("cidrBlocks", "ipv6CidrBlocks"):
        out += [(f"{where}.{key}[{i}]", c) for i, c in enumerate(items_at(rule, key))]
    return out


def check_security_group(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for i, rule in enumerate(items_at(resource.props, "ingress")):
        where = f"ingress[{i}]"
        yield from _open_rule(where, _aws_rule_cidrs(rule, where), get(rule, "protocol"),
                              get(rule, "fromPort"), get(rule, "toPort"), config)


def check_security_group_rule(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    if string_at(p, "type") != "ingress":
        return
    yield from _open_rule("rule", _aws_rule_cidrs(p, "rule"), get(p, "protocol"),
                          get(p, "fromPort"), get(p, "toPort"), config)


def check_ingress_rule(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    cidrs = [(k, get(p, k)) for k in ("cidrIpv4", "cidrIpv6") if get(p, k) is not None]
    yield from _open_rule("rule", cidrs, get(p, "ipProtocol"), get(p, "fromPort"),
                          get(p, "toPort"), config)


def _native_rule(rule: Any, where: str, config: Mapping[str, Any]) -> Iterable[str]:
    cidrs = [(f"{where}.{k}", get(rule, k)) for k in ("cidrIp", "cidrIpv6")
             if get(rule, k) is not None]
    yield from _open_rule(where, cidrs, get(rule, "ipProtocol"), get(rule, "fromPort"),
                          get(rule, "toPort"), config)


def check_native_security_group(resource: Resource, config: Mapping[str, Any]
                                ) -> Iterable[str]:
    for i, rule in enumerate(items_at(resource.props, "securityGroupIngress")):
        yield from _native_rule(rule, f"securityGroupIngress[{i}]", config)


def check_native_ingress(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield from _native_rule(resource.props, "rule", config)


SECURITY_GROUPS = {
    "aws:ec2/securityGroup:SecurityGroup": check_security_group,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": check_security_group,
    "aws:ec2/securityGroupRule:SecurityGroupRule": check_security_group_rule,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": check_ingress_rule,
    "aws-native:ec2:SecurityGroup": check_native_security_group,
    "aws-native:ec2:SecurityGroupIngress": check_native_ingress,
}

LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
                  "aws:elb/loadBalancer:LoadBalancer",
                  "aws-native:elasticloadbalancingv2:LoadBalancer",
                  "aws-native:elasticloadbalancing:LoadBalancer")

PRIVATE_BY_DEFAULT = Rule(
    name="private-by-default",
    description=(
        "EKS API, load balancers, security groups and SageMaker models are private unless the "
        "environment allows otherwise."
    ),
    checks={
        "eks:index:Cluster": check_eks_component_endpoint,
        "aws:eks/cluster:Cluster": check_eks_cluster_endpoint,
        "aws-native:eks:Cluster": check_eks_cluster_endpoint,
        **dict.fromkeys(LOAD_BALANCERS, check_load_balancer),
        "kubernetes:core/v1:Service": check_k8s_service,
        "kubernetes:networking.k8s.io/v1:Ingress": check_k8s_ingress,
        **SECURITY_GROUPS,
        "aws:sagemaker/model:Model": check_sagemaker_model_vpc,
        "aws-native:sagemaker:Model": check_sagemaker_model_vpc,
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
# compute-no-public-ip

_PRIVATE = "compute runs in private subnets without public IPs"


def _flag(holder: Any, key: str, where: str) -> Iterable[str]:
    if boolean_at(holder, key) is True:
        yield f"{where} is true; {_PRIVATE}"


def _interfaces(holder: Any, base: str) -> Iterable[str]:
    for i, nic in enumerate(items_at(holder, "networkInterfaces")):
        yield from _flag(nic, "associatePublicIpAddress",
                         f"{base}networkInterfaces[{i}].associatePublicIpAddress")


def check_public_ip(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p, t = resource.props, resource.type
    if t in (cap.INSTANCE, cap.SPOT_INSTANCE_REQUEST, cap.LAUNCH_CONFIGURATION,
             cap.NATIVE_LAUNCH_CONFIGURATION):
        yield from _flag(p, "associatePublicIpAddress", "associatePublicIpAddress")
    if t in (cap.LAUNCH_TEMPLATE, cap.NATIVE_INSTANCE):
        yield from _interfaces(p, "")
    if t == cap.NATIVE_LAUNCH_TEMPLATE:
        yield from _interfaces(map_at(p, "launchTemplateData"), "launchTemplateData.")
    if t == cap.SPOT_FLEET_REQUEST:
        for i, spec in enumerate(items_at(p, "launchSpecifications")):
            yield from _flag(spec, "associatePublicIpAddress",
                             f"launchSpecifications[{i}].associatePublicIpAddress")
    if t == cap.NATIVE_SPOT_FLEET:
        data = map_at(p, "spotFleetRequestConfigData")
        for i, spec in enumerate(items_at(data, "launchSpecifications")):
            yield from _interfaces(spec,
                                   f"spotFleetRequestConfigData.launchSpecifications[{i}].")
    if t in ("aws:ecs/service:Service", "aws:ecs/taskSet:TaskSet"):
        yield from _flag(map_at(p, "networkConfiguration"), "assignPublicIp",
                         "networkConfiguration.assignPublicIp")
    if t in NATIVE_ECS:
        # CloudFormation spells it awsvpcConfiguration on services, awsVpcConfiguration on task
        # sets.
        where = f"networkConfiguration.{NATIVE_ECS[t]}.assignPublicIp"
        value = string_at(p, "networkConfiguration", NATIVE_ECS[t], "assignPublicIp")
        if value == "ENABLED":
            yield f"{where} is ENABLED; {_PRIVATE}"
        elif value not in (None, "DISABLED"):
            raise Malformed(where, value, "ENABLED or DISABLED")
    if t == cap.NODE_CLASS:
        yield from _flag(map_at(p, "spec"), "associatePublicIPAddress",
                         "spec.associatePublicIPAddress")
    if t == cap.EKS_CLUSTER:
        yield from _flag(p, "nodeAssociatePublicIpAddress", "nodeAssociatePublicIpAddress")
    if t in (cap.EKS_NODE_GROUP, cap.EKS_NODE_GROUP_V2):
        yield from _flag(p, "nodeAssociatePublicIpAddress", "nodeAssociatePublicIpAddress")
    if t in EIPS:
        key = "instanceId" if t.startswith("aws-native:") else "instance"
        if get(p, key) is not None:
            yield f"{key} is set: an Elastic IP on an instance is a public IP; {_PRIVATE}"


NATIVE_ECS = {"aws-native:ecs:Service": "awsvpcConfiguration",
              "aws-native:ecs:TaskSet": "awsVpcConfiguration"}
EIPS = ("aws:ec2/eip:Eip", "aws:ec2/eipAssociation:EipAssociation", "aws-native:ec2:Eip",
        "aws-native:ec2:EipAssociation")

PUBLIC_IP_TYPES = (cap.INSTANCE, cap.SPOT_INSTANCE_REQUEST, cap.LAUNCH_CONFIGURATION,
                   cap.LAUNCH_TEMPLATE, cap.SPOT_FLEET_REQUEST, cap.NATIVE_INSTANCE,
                   cap.NATIVE_LAUNCH_CONFIGURATION, cap.NATIVE_LAUNCH_TEMPLATE,
                   cap.NATIVE_SPOT_FLEET, "aws:ecs/service:Service", "aws:ecs/taskSet:TaskSet",
                   *NATIVE_ECS,
                   cap.NODE_CLASS, cap.EKS_CLUSTER, cap.EKS_NODE_GROUP, cap.EKS_NODE_GROUP_V2,
                   *EIPS)

COMPUTE_NO_PUBLIC_IP = Rule(
    name="compute-no-public-ip",
    description="No instance, launch template, ECS task, Karpenter node or Elastic IP gives "
                "compute a public IP address.",
    checks=dict.fromkeys(PUBLIC_IP_TYPES, check_public_ip),
)

RULES = [PRIVATE_BY_DEFAULT, COMPUTE_NO_PUBLIC_IP]
