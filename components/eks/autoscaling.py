"""KEDA: the autoscaler that turns vLLM's queue gauges into replicas (see serving.py for why).

Installed once per cluster on the system nodes. With `monitoring: amp` the operator gets a Pod
Identity role that may only query the stack's AMP workspace, and a `ClusterTriggerAuthentication`
tells every model's ScaledObject to sign its queries with that identity.
https://keda.sh/docs/latest/authentication-providers/aws/
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.eks.monitoring import ChartPin
from components.eks.roles import pod_identity_role
from components.tags import Naming

NAMESPACE = "keda"
RELEASE = "keda"
OPERATOR_SERVICE_ACCOUNT = "keda-operator"
AMP_TRIGGER_AUTH = "aws-amp"


def keda_values(system_node_selector: Mapping[str, str]) -> dict[str, Any]:
    """Two operator and metrics-server replicas on the system nodes: the HPA of every model
    reads its metric through the metrics API server, so one replica would be a single point of
    failure for scaling."""
    sel = dict(system_node_selector)
    return {
        "nodeSelector": sel,
        "operator": {"replicaCount": 2},
        "metricsServer": {"replicaCount": 2},
        "webhooks": {"replicaCount": 2},
        "podDisruptionBudget": {"operator": {"minAvailable": 1},
                                "metricServer": {"minAvailable": 1},
                                "webhooks": {"minAvailable": 1}},
        "serviceAccount": {"operator": {"create": True, "name": OPERATOR_SERVICE_ACCOUNT}},
    }


def amp_query_policy(workspace_arn: str) -> dict[str, Any]:
    """Only the read calls the Prometheus scaler makes, only on this workspace."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"],
        "Resource": [workspace_arn],
    }]}


def amp_trigger_authentication() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ClusterTriggerAuthentication",
        "metadata": {"name": AMP_TRIGGER_AUTH},
        "spec": {"podIdentity": {"provider": "aws"}},
    }


@dataclass(frozen=True)
class KedaArgs:
    naming: Naming
    chart: ChartPin
    cluster_name: pulumi.Input[str]
    system_node_selector: Mapping[str, str]
    amp_workspace_arn: pulumi.Input[str] | None = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    release_depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What the Helm release waits for besides its namespace: the system node group."""


class Keda(pulumi.ComponentResource):
    """The KEDA operator (+ AMP query identity when metrics live in AMP)."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KedaArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:eks:Keda", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": NAMESPACE},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        deps: list[pulumi.Resource] = [ns]
        if args.amp_workspace_arn is not None:
            account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
            _, association = pod_identity_role(
                role_name=f"{name}-amp-query-role",
                policy_name=f"{name}-amp-query",
                association_name=f"{name}-pod-identity",
                description="KEDA operator: query the AMP workspace for scaling metrics",
                account=account.account_id,
                cluster_name=args.cluster_name,
                namespace=NAMESPACE,
                service_account=OPERATOR_SERVICE_ACCOUNT,
                policy=pulumi.Output.from_input(args.amp_workspace_arn).apply(
                    lambda a: json.dumps(amp_query_policy(a))),
                tags=args.naming.tags(),
                opts=child,
                depends_on=args.depends_on,
            )
            deps.append(association)
        pin = args.chart
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE, namespace=NAMESPACE, chart=pin.chart,
            version=pin.version, repository_opts={"repo": pin.repo},
            values=keda_values(args.system_node_selector), atomic=True, cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[*deps, *args.release_depends_on]))
        if args.amp_workspace_arn is not None:
            auth = amp_trigger_authentication()
            k8s.apiextensions.CustomResource(
                f"{name}-amp-auth", api_version=auth["apiVersion"], kind=auth["kind"],
                metadata=auth["metadata"], spec=auth["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        self.register_outputs({})
