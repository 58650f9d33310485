"""The load balancer in front of every model: one ALB, one path prefix per model.

Requests to `/<model>/v1/...` are forwarded to that model's target group with the prefix
stripped by an ALB URL-rewrite transform, so every engine sees plain OpenAI paths (`/v1/...`).
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-transforms.html
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config import EcsConfig
from components.network import ELB_TLS_POLICY, Network
from components.tags import Naming

IDLE_TIMEOUT_SECONDS = 600
"""A non-streaming completion of a few thousand tokens runs minutes with no bytes on the wire;
the 60 s default would cut it. https://docs.aws.amazon.com/elasticloadbalancing/latest/
application/edit-load-balancer-attributes.html#connection-idle-timeout"""

TLS_POLICY = ELB_TLS_POLICY


@dataclass(frozen=True)
class LoadBalancerArgs:
    naming: Naming
    network: Network
    config: EcsConfig
    engine_ports: list[int] = field(default_factory=list)
    idle_timeout_seconds: int = IDLE_TIMEOUT_SECONDS
    """Raised with the gateway on: a held request sends nothing until its model wakes."""
    gateway: bool = False
    """The gateway's tasks call the models through this ALB from the VPC's private subnets."""


class LoadBalancer(pulumi.ComponentResource):
    """ALB + security group + the one listener models attach rules to."""

    dns_name: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    scheme: str

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:ecs:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming, cfg, net = args.naming, args.config, args.network
        public = cfg.load_balancer_scheme == "internet-facing"
        https = cfg.certificate_arn is not None
        self.scheme = "https" if https else "http"
        cidrs = list(cfg.allowed_cidrs) or [net.vpc_cidr]
        if args.gateway and net.vpc_cidr not in cidrs:
            cidrs.append(net.vpc_cidr)
        port = 443 if https else 80

        ingress = [aws.ec2.SecurityGroupIngressArgs(
            description="clients", protocol="tcp", from_port=port, to_port=port, cidr_blocks=cidrs,
        )]
        if https:  # port 80 only redirects to HTTPS
            ingress.append(aws.ec2.SecurityGroupIngressArgs(
                description="redirect to HTTPS", protocol="tcp", from_port=80, to_port=80,
                cidr_blocks=cidrs,
            ))
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="LLM load balancer: clients in, engine ports out to the VPC only",
            vpc_id=net.vpc_id,
            ingress=ingress,
            egress=[aws.ec2.SecurityGroupEgressArgs(
                description="engines", protocol="tcp", from_port=p, to_port=p,
                cidr_blocks=[net.vpc_cidr],
            ) for p in sorted(set(args.engine_ports))],
            tags={**naming.tags(), "Name": naming.physical("alb")},
            opts=child,
        )
        prod = naming.protect
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=not public,
            subnets=net.public_subnet_ids if public else net.private_subnet_ids,
            security_groups=[sg.id],
            idle_timeout=args.idle_timeout_seconds,
            drop_invalid_header_fields=True,
            enable_deletion_protection=prod,
            tags=naming.tags(),
            opts=child,
        )
        not_found = aws.lb.ListenerDefaultActionArgs(
            type="fixed-response",
            fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                content_type="application/json", status_code="404",
                message_body='{"error": "unknown model path; use /<model>/v1/..."}',
            ),
        )
        if https:
            listener = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=cfg.certificate_arn,
                default_actions=[not_found],
                tags=naming.tags(),
                opts=child,
            )
            aws.lb.Listener(
                f"{name}-http-redirect",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        port="443", protocol="HTTPS", status_code="HTTP_301"),
                )],
                tags=naming.tags(),
                opts=child,
            )
        else:
            listener = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[not_found],
                tags=naming.tags(),
                opts=child,
            )
        self.dns_name = alb.dns_name
        self.arn_suffix = alb.arn_suffix
        self.security_group_id = sg.id
        self.listener_arn = listener.arn
        self.register_outputs({"dnsName": self.dns_name, "listenerArn": self.listener_arn})
