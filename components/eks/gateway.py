"""The stack's gateway on the eks platform: on the system nodes, calling each model's Service
inside the cluster and the Bedrock fallbacks named in config with its own Pod Identity role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.eks.roles import pod_identity_role
from components.eks.serving import SERVICE_PORT, namespace_name
from components.facts.images import LITELLM
from components.gateway import config as gw
from components.gateway import eks as gateway_eks
from components.gateway import iam
from components.gateway.master_key import master_key_secret
from components.tags import Naming


def eks_gateway(name: str, config: StackConfig, naming: Naming, *,
                cluster_name: pulumi.Input[str], vpc_cidr: pulumi.Input[str],
                node_selector: Mapping[str, str], depends_on: Sequence[pulumi.Resource],
                opts: pulumi.ResourceOptions) -> tuple[gateway_eks.EksGateway,
                                                       aws.secretsmanager.Secret]:
    """`depends_on`: the Pod Identity agent and the Prometheus Operator (ServiceMonitor CRD)."""
    plan = gw.gateway_plan(config)
    by_name = {m.name: m for m in config.models}
    backends = {r.name: gw.openai_backend(r, gateway_eks.model_api_base(
        r.name, namespace_name(by_name[r.name]), SERVICE_PORT)) for r in plan.routes}
    config_yaml = gw.render(gw.litellm_config(plan, backends))
    secret = master_key_secret(f"{name}-master-key", naming, opts.parent)
    invoke = pulumi.InvokeOutputOptions(parent=opts.parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    partition = aws.get_partition_output(opts=invoke).partition
    _, association = pod_identity_role(
        role_name=f"{name}-role", policy_name=f"{name}-policy",
        association_name=f"{name}-pod-identity",
        description="The gateway: read its master key, invoke the Bedrock fallbacks in config",
        account=account, cluster_name=cluster_name, namespace=gateway_eks.NAMESPACE,
        service_account=gateway_eks.NAME,
        policy=pulumi.Output.all(account, partition, secret.arn).apply(
            lambda v: iam.to_json(iam.gateway_policy(
                bedrock_resources=[arn for t in plan.bedrock_targets
                                   for arn in gw.bedrock_resource_arns(
                                       t, config.region, v[1], v[0])],
                master_key_secret_arn=v[2]))),
        tags=naming.tags(component="gateway"), opts=opts, depends_on=depends_on)
    gateway = gateway_eks.EksGateway(name, gateway_eks.EksGatewayArgs(
        plan=plan, config_yaml=config_yaml, region=config.region, image=LITELLM.image,
        entrypoint=LITELLM.entrypoint, user=(LITELLM.uid, LITELLM.gid),
        node_selector=node_selector,
        key_secret_arn=secret.arn, ingress=config.eks.ingress == "internal-alb",
        vpc_cidr=vpc_cidr, certificate_arn=config.eks.certificate_arn,
        depends_on=[association, *depends_on]), opts)
    return gateway, secret
