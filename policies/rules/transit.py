"""Encryption in transit: HTTPS listeners, and no Classic Load Balancer.

`transit-listener-https` (stack): every load balancer listener serves TLS (HTTPS/TLS), or only
redirects to HTTPS; plain HTTP is accepted on an *internal* load balancer where the
environment's config allows it (`allowHttpOnInternalLoadBalancers`). Whether a listener's load
balancer is internal is a property of another resource, so this is a stack rule: the listener is
linked to its load balancer, and listener rules to their listener, through the engine's property
dependencies (known during preview, before any ARN exists), falling back to matching ARNs. An
HTTP listener whose default action redirects but that carries a rule forwarding traffic still
serves plain HTTP, so rules count. Kubernetes Ingresses of the AWS Load Balancer Controller are
judged from their annotations (`listen-ports`, `certificate-arn`, `ssl-redirect`, `scheme`):
https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/

Network load balancer listeners on TCP/UDP pass bytes through: on port 443 they are taken as
TLS passthrough, on any other port as plain text.

`transit-no-classic-elb`: Classic Load Balancers (pulumi-aws `elb`, aws-native
`elasticloadbalancing`), and Kubernetes Services of type LoadBalancer that the in-tree cloud
provider would turn into one (no `loadBalancerClass: service.k8s.aws/nlb` and no
`aws-load-balancer-type` annotation), are refused: AWS retires them, they speak only older TLS
policies, and the program never needs one.
https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/nlb/
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policies.rules._framework import (
    Finding,
    Malformed,
    Resource,
    Rule,
    boolean_at,
    count_at,
    each_resource,
    get,
    is_list,
    is_map,
    items_at,
    map_at,
    string_at,
)

LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
                  "aws-native:elasticloadbalancingv2:LoadBalancer")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener",
             "aws-native:elasticloadbalancingv2:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule",
                  "aws-native:elasticloadbalancingv2:ListenerRule")
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
K8S_SERVICE = "kubernetes:core/v1:Service"
CLASSIC = ("aws:elb/loadBalancer:LoadBalancer", "aws-native:elasticloadbalancing:LoadBalancer")

TLS = ("HTTPS", "TLS")
PASS_THROUGH = ("TCP", "UDP", "TCP_UDP")


def _native(resource: Resource) -> bool:
    return resource.type.startswith("aws-native:")


def lb_is_internal(lb: Resource) -> bool:
    if _native(lb):
        # CreateLoadBalancer's default scheme is internet-facing.
        return string_at(lb.props, "scheme") == "internal"
    return boolean_at(lb.props, "internal") is True


def lb_type(lb: Resource | None) -> str:
    if lb is None:
        return "application"
    value = string_at(lb.props, "type" if _native(lb) else "loadBalancerType")
    return value or "application"


def _linked(resource: Resource, prop: str, candidates: Sequence[Resource]) -> Resource | None:
    """The resource `prop` was computed from: by property dependency, else by ARN/id value."""
    urns = set(resource.deps.get(prop, ()))
    for c in candidates:
        if c.urn and c.urn in urns:
            return c
    value = get(resource.props, prop)
    if isinstance(value, str) and value:
        for c in candidates:
            if value in (get(c.props, "arn"), get(c.props, "loadBalancerArn"),
                         get(c.props, "listenerArn"), c.urn):
                return c
    return None


def _actions(resource: Resource, key: str) -> list[Any]:
    return items_at(resource.props, key)


def _redirects_to_https(action: Any, native: bool) -> bool:
    if string_at(action, "type") != "redirect":
        return False
    redirect = map_at(action, "redirectConfig" if native else "redirect")
    return (string_at(redirect, "protocol") or "").upper() == "HTTPS"


def _serves(action: Any) -> bool:
    """Actions that hand a request to a target (as opposed to a redirect or fixed answer)."""
    return string_at(action, "type") not in ("redirect", "fixed-response")


def _protocol(listener: Resource, lb: Resource | None) -> str:
    protocol = string_at(listener.props, "protocol")
    if protocol:
        return protocol.upper()
    # pulumi-aws: "Defaults to HTTP" for ALBs; NLB listeners need one (TCP is the API default).
    return "TCP" if lb_type(lb) == "network" else "HTTP"


def check_listeners(resources: Sequence[Resource], config: Mapping[str, Any]
                    ) -> Iterable[Finding]:
    allow_internal = bool(config["allowHttpOnInternalLoadBalancers"])
    lbs = [r for r in resources if r.type in LOAD_BALANCERS]
    rules = [r for r in resources if r.type in LISTENER_RULES]

    def judge(resource: Resource) -> Iterable[str]:
        if resource.type in LISTENERS:
            yield from _judge_listener(resource, lbs, rules, allow_internal)
        elif resource.type == INGRESS:
            yield from _judge_ingress(resource, allow_internal)

    yield from each_resource([r for r in resources if r.type in (*LISTENERS, INGRESS)], judge)


def _judge_listener(listener: Resource, lbs: Sequence[Resource], rules: Sequence[Resource],
                    allow_internal: bool) -> Iterable[str]:
    lb = _linked(listener, "loadBalancerArn", lbs)
    protocol = _protocol(listener, lb)
    port = count_at(listener.props, "port")
    if protocol in TLS:
        return
    if protocol in PASS_THROUGH and port == 443:
        return  # TLS passthrough to the targets
    if protocol not in ("HTTP", *PASS_THROUGH):
        raise Malformed("protocol", get(listener.props, "protocol"),
                        "HTTP, HTTPS, TCP, TLS, UDP or TCP_UDP")
    native = _native(listener)
    defaults = _actions(listener, "defaultActions")
    attached = [r for r in rules if _linked(r, "listenerArn", [listener]) is listener]
    forwarding = [r.name for r in attached if any(_serves(a) for a in _actions(r, "actions"))]
    if protocol == "HTTP" and defaults and all(_redirects_to_https(a, native) for a in defaults) \
            and not forwarding:
        return  # port 80 only tells clients to come back over HTTPS
    internal = lb is not None and lb_is_internal(lb)
    if allow_internal and internal:
        return
    where = (f"the {'internal' if internal else 'internet-facing'} load balancer {lb.name}"
             if lb is not None
             else "a load balancer outside this stack (cannot tell whether it is internal)")
    via = f" (forwarded by rules {', '.join(forwarding)})" if forwarding else ""
    allowed = ("plain HTTP is allowed on internal load balancers only" if allow_internal
               else "this environment requires HTTPS on every listener")
    yield (f"{protocol} listener on port {port if port is not None else '(default)'} of {where} "
           f"serves plain text{via}; {allowed}: listen on HTTPS with an ACM certificate (or "
           "redirect to it)")


ALB_INGRESS = "alb.ingress.kubernetes.io/"


def _judge_ingress(ingress: Resource, allow_internal: bool) -> Iterable[str]:
    annotations = map_at(ingress.props, "metadata", "annotations")
    cls = string_at(ingress.props, "spec", "ingressClassName") or \
        string_at(annotations, "kubernetes.io/ingress.class")
    if cls != "alb":
        return  # not an AWS load balancer
    certificate = string_at(annotations, f"{ALB_INGRESS}certificate-arn")
    raw = string_at(annotations, f"{ALB_INGRESS}listen-ports")
    if raw is None:
        ports = [("HTTPS", 443)] if certificate else [("HTTP", 80)]
    else:
        ports = _listen_ports(raw)
    redirect = string_at(annotations, f"{ALB_INGRESS}ssl-redirect")
    # The controller's default scheme is internal.
    internal = (string_at(annotations, f"{ALB_INGRESS}scheme") or "internal") == "internal"
    plain = [p for proto, p in ports if proto == "HTTP"]
    if not plain or redirect:
        return
    if allow_internal and internal:
        return
    allowed = ("plain HTTP is allowed on internal load balancers only" if allow_internal
               else "this environment requires HTTPS on every listener")
    yield (f"{ALB_INGRESS}listen-ports opens HTTP on {', '.join(map(str, plain))} of "
           f"{'an internal' if internal else 'an internet-facing'} ALB; {allowed}: set "
           f"{ALB_INGRESS}certificate-arn and listen on HTTPS 443 (or {ALB_INGRESS}ssl-redirect)")


def _listen_ports(raw: str) -> list[tuple[str, int]]:
    where = f"metadata.annotations.{ALB_INGRESS}listen-ports"
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise Malformed(where, raw, 'JSON such as [{"HTTPS": 443}]') from None
    if not is_list(parsed):
        raise Malformed(where, raw, 'a JSON list such as [{"HTTPS": 443}]')
    out = []
    for entry in parsed:
        if not is_map(entry) or len(entry) != 1:
            raise Malformed(where, raw, 'a JSON list such as [{"HTTPS": 443}]')
        ((protocol, port),) = entry.items()
        if protocol not in ("HTTP", "HTTPS") or isinstance(port, bool) or \
                not isinstance(port, int):
            raise Malformed(where, raw, "HTTP/HTTPS with integer ports")
        out.append((protocol, port))
    return out


TRANSIT_LISTENER_HTTPS = Rule(
    name="transit-listener-https",
    description="Load balancer listeners and ALB Ingresses serve HTTPS, with plain HTTP only "
                "on internal load balancers where the environment allows it.",
    stack_check=check_listeners,
    stack_types=frozenset((*LOAD_BALANCERS, *LISTENERS, *LISTENER_RULES, INGRESS)),
    config={
        "allowHttpOnInternalLoadBalancers": {
            "type": "boolean",
            "default": False,
            "description": "plain HTTP is accepted on internal load balancers",
        },
    },
)


# ------------------------------------------------------------------------------------------
# transit-no-classic-elb


def check_classic(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    yield ("a Classic Load Balancer: previous generation, older TLS policies only; use an "
           "Application or Network Load Balancer")


_NLB_TYPES = ("external", "nlb", "nlb-ip")


def check_k8s_service(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if string_at(resource.props, "spec", "type") != "LoadBalancer":
        return
    if string_at(resource.props, "spec", "loadBalancerClass") is not None:
        return  # handled by the named controller (service.k8s.aws/nlb: the AWS LB controller)
    kind = string_at(resource.props, "metadata", "annotations",
                     "service.beta.kubernetes.io/aws-load-balancer-type")
    if kind not in _NLB_TYPES:
        yield ("Service of type LoadBalancer without spec.loadBalancerClass or the "
               "service.beta.kubernetes.io/aws-load-balancer-type annotation: the in-tree cloud "
               "provider creates a Classic Load Balancer; set loadBalancerClass: "
               "service.k8s.aws/nlb")


TRANSIT_NO_CLASSIC_ELB = Rule(
    name="transit-no-classic-elb",
    description="No Classic Load Balancer, declared directly or through a Kubernetes Service.",
    checks={**dict.fromkeys(CLASSIC, check_classic), K8S_SERVICE: check_k8s_service},
)

RULES = [TRANSIT_LISTENER_HTTPS, TRANSIT_NO_CLASSIC_ELB]
