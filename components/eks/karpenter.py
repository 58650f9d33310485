"""Karpenter: node IAM, interruption handling, the controller (Helm) and one GPU pool per model.

* IAM: a node role + instance profile (with an `EC2_LINUX` access entry so its nodes can join),
  and a controller role bound to Karpenter's service account by an EKS Pod Identity
  association, carrying the documented controller policy scoped to this cluster
  (`components.eks.iam.karpenter_controller_policy`).
* Interruption: an SQS queue fed by EventBridge rules for spot interruption warnings,
  rebalance recommendations, instance state changes, AWS Health scheduled events and capacity
  reservation interruption warnings, so Karpenter drains a node *before* EC2 takes it.
  https://karpenter.sh/docs/concepts/disruption/#interruption
* The CRD chart and the controller chart, pinned, on the system nodes.
* Per model: an EC2NodeClass and a NodePool built by `components.eks.nodepool`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import EksConfig, Model
from components.eks import iam
from components.eks.labels import SYSTEM_NODE_LABELS, node_pool_name
from components.eks.nodepool import ec2_node_class, node_pool
from components.eks.roles import pod_identity_role, service_role
from components.facts.charts import KARPENTER_CHART, KARPENTER_CRD_CHART, KARPENTER_VERSION
from components.tags import Naming

NAMESPACE = "kube-system"
"""Karpenter's documented default namespace; its pods get system-cluster-critical priority."""
SERVICE_ACCOUNT = "karpenter"

INTERRUPTION_RULES: Mapping[str, dict[str, Any]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {
        "source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"],
    },
    "rebalance": {
        "source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"],
    },
    "instance-state-change": {
        "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
    },
    # Capacity Blocks / interruptible capacity reservations warn before reclaiming capacity;
    # Karpenter 1.14 drains on this event (CapacityReservationInterruptionRule).
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}
"""The five EventBridge rules of Karpenter's v1.14.1 getting-started template, by role
(tests/reference/iam/karpenter-v1.14.1-cloudformation.yaml, held to by
tests/test_iam_upstream.py)."""

QUEUE_RETENTION_SECONDS = 300
"""A spot warning is worth nothing after its two minutes; the template keeps messages 300 s."""


def controller_values(
    *, cluster_name: str, queue_name: str, region: str
) -> dict[str, Any]:
    """Helm values for the Karpenter chart.

    Two replicas (leader election) with the chart's default spread and PDB, on the system
    nodes only, with the region set so the controller never needs instance metadata.
    https://github.com/aws/karpenter-provider-aws/blob/main/charts/karpenter/values.yaml
    """
    return {
        "replicas": 2,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "settings": {"clusterName": cluster_name, "interruptionQueue": queue_name},
        "nodeSelector": dict(SYSTEM_NODE_LABELS),
        "priorityClassName": "system-cluster-critical",
        "controller": {
            "env": [{"name": "AWS_REGION", "value": region}],
            # Requests = limits: the controller is never throttled or evicted under pressure.
            "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
        },
        "logLevel": "info",
    }


@dataclass(frozen=True)
class KarpenterArgs:
    naming: Naming
    config: EksConfig
    models: tuple[Model, ...]
    region: str
    account: pulumi.Input[str]
    partition: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource]
    """What must exist before the controller starts: system nodes, Pod Identity agent."""


class Karpenter(pulumi.ComponentResource):
    """Karpenter's AWS side, its Helm releases and the per-model GPU NodePools."""

    node_role_arn: pulumi.Output[str]
    controller_role_arn: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    node_pools: dict[str, str]
    """Model name -> NodePool name."""
    ready: list[pulumi.Resource]
    """Resources serving workloads should depend on (controller and pools)."""

    def __init__(
        self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-hosting:eks:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        naming = args.naming

        node_role, profile = self._node_identity(name, args, child)
        queue = self._interruption_queue(name, args, child)
        controller_role, association = self._controller_identity(
            name, args, child, queue=queue, node_role=node_role, profile=profile
        )
        self.node_role_arn = node_role.arn
        self.controller_role_arn = controller_role.arn
        self.queue_name = queue.name

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        crds = k8s.helm.v3.Release(
            f"{name}-crd",
            name="karpenter-crd",
            chart=KARPENTER_CRD_CHART,
            version=KARPENTER_VERSION,
            namespace=NAMESPACE,
            atomic=True,
            cleanup_on_fail=True,
            max_history=10,
            opts=k8s_opts,
        )
        controller = k8s.helm.v3.Release(
            f"{name}-controller",
            name="karpenter",
            chart=KARPENTER_CHART,
            version=KARPENTER_VERSION,
            namespace=NAMESPACE,
            skip_crds=True,  # owned by the karpenter-crd release, which Helm does upgrade
            atomic=True,
            cleanup_on_fail=True,
            max_history=10,
            values=pulumi.Output.all(args.cluster_name, queue.name).apply(
                lambda cq: controller_values(
                    cluster_name=cq[0], queue_name=cq[1], region=args.region)
            ),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[crds, association, *args.depends_on])),
        )

        self.node_pools = {}
        pools: list[pulumi.Resource] = []
        for model in args.models:
            pool = node_pool_name(model.name)
            node_class = ec2_node_class(
                model, args.config,
                cluster_name=naming.cluster_name,
                instance_profile=naming.physical("karpenter-node"),
                tags=naming.serving_tags(model, "eks"),
            )
            nc = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{model.name}",
                api_version=node_class["apiVersion"],
                kind=node_class["kind"],
                metadata=node_class["metadata"],
                spec=node_class["spec"],
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                    depends_on=[crds, profile])),
            )
            np_obj = node_pool(model, args.config)
            pools.append(k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{model.name}",
                api_version=np_obj["apiVersion"],
                kind=np_obj["kind"],
                metadata=np_obj["metadata"],
                spec=np_obj["spec"],
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                    depends_on=[crds, nc, controller])),
            ))
            self.node_pools[model.name] = pool
        self.ready = [controller, *pools]
        self.register_outputs({
            "nodeRoleArn": self.node_role_arn,
            "controllerRoleArn": self.controller_role_arn,
            "interruptionQueue": self.queue_name,
            "nodePools": self.node_pools,
        })

    def _node_identity(
        self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        naming = args.naming
        role, attachments = service_role(
            f"{name}-node-role",
            service="ec2.amazonaws.com",
            description=f"Nodes Karpenter launches for {naming.cluster_name}",
            managed_policies=iam.NODE_MANAGED_POLICIES,
            account=args.account,
            partition=args.partition,
            tags=naming.tags(),
            opts=opts,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-node-profile",
            name=naming.physical("karpenter-node"),
            role=role.name,
            tags=naming.tags(),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                depends_on=attachments)),
        )
        # Karpenter's nodes are not a managed node group, so EKS does not create their access
        # entry; EC2_LINUX maps the role to system:nodes for kubelet bootstrap.
        aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            type="EC2_LINUX",
            tags=naming.tags(),
            opts=opts,
        )
        return role, profile

    def _interruption_queue(
        self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions
    ) -> aws.sqs.Queue:
        naming = args.naming
        queue = aws.sqs.Queue(
            f"{name}-interruption",
            name=naming.physical("karpenter", max_len=80),
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=naming.tags(),
            opts=opts,
        )
        rules = []
        for role, pattern in INTERRUPTION_RULES.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{role}",
                description=f"Karpenter interruption handling ({role}) for "
                            f"{naming.cluster_name}",
                event_pattern=json.dumps(pattern),
                tags=naming.tags(),
                opts=opts,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{role}-target",
                rule=rule.name,
                target_id="KarpenterInterruptionQueueTarget",
                arn=queue.arn,
                opts=opts,
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-interruption-policy",
            queue_url=queue.id,
            policy=pulumi.Output.all(queue.arn, *[r.arn for r in rules]).apply(
                lambda arns: iam.interruption_queue_policy(
                    queue_arn=arns[0], rule_arns=list(arns[1:]))
            ),
            opts=opts,
        )
        return queue

    def _controller_identity(
        self,
        name: str,
        args: KarpenterArgs,
        opts: pulumi.ResourceOptions,
        *,
        queue: aws.sqs.Queue,
        node_role: aws.iam.Role,
        profile: aws.iam.InstanceProfile,
    ) -> tuple[aws.iam.Role, aws.eks.PodIdentityAssociation]:
        naming = args.naming
        return pod_identity_role(
            role_name=f"{name}-controller-role",
            policy_name=f"{name}-controller-policy",
            association_name=f"{name}-controller-identity",
            description=f"Karpenter controller of {naming.cluster_name} (EKS Pod Identity)",
            account=args.account,
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.all(
                args.partition, args.account, args.cluster_name, queue.arn, node_role.arn,
                profile.arn,
            ).apply(lambda v: iam.karpenter_controller_policy(
                partition=v[0], region=args.region, account=v[1], cluster_name=v[2],
                queue_arn=v[3], node_role_arn=v[4], instance_profile_arn=v[5],
            )),
            tags=naming.tags(),
            opts=opts,
            depends_on=args.depends_on,
        )
