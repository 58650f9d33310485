"""EKS serving components under mocks: what `pulumi up` would register, per model.

Component-level graphs (ModelServing, Observability, Keda, LoadBalancerController registered on
their own) keep these fast and independent of the cluster; the whole-program graphs for one and
two models live in tests/test_eks_serving_program.py.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.eks.autoscaling import Keda, KedaArgs
from components.eks.labels import gpu_node_selector
from components.eks.load_balancer import LoadBalancerController, LoadBalancerControllerArgs
from components.eks.monitoring import ChartPin, Observability, ObservabilityArgs
from components.eks.serving import MetricsSource, ModelServing, ModelServingArgs
from components.offline import SECRET_SIG, Graph, run_program, unwrap
from components.platforms import parse_config
from components.tags import Naming

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET = "kubernetes:core/v1:Secret"
SCALED = "kubernetes:keda.sh/v1alpha1:ScaledObject"
RELEASE = "kubernetes:helm.sh/v3:Release"
PIN = ChartPin("chart", "https://charts.example", "1.0.0")

MODELS = [
    {"name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct", "quantization": "fp8",
     "maxInputTokens": 7168, "maxTotalTokens": 8192, "gpusPerReplica": 4, "minReplicas": 2,
     "maxReplicas": 4, "weightsUri": "s3://weights-bucket/meta-llama/Llama-3.3-70B-Instruct/"},
    {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct", "minReplicas": 1,
     "maxReplicas": 3},
]


def build(monitoring: str = "kube-prometheus-stack", ingress: str = "none") -> Graph:
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": "prod",
           "llm-hosting:platform": "eks", "llm-hosting:models": json.dumps(MODELS),
           "llm-hosting:hfToken": "hf_secret"}
    cfg = parse_config(raw, project="llm-hosting", stack="prod",
                             secret_keys=["llm-hosting:hfToken"])

    def program() -> None:
        naming = Naming("llm-hosting", "prod", "prod", {"team": "ml"})
        opts = pulumi.ResourceOptions(providers={
            "aws": aws.Provider("aws", region="us-east-1"),
            "kubernetes": k8s.Provider("k8s", kubeconfig="{}"),
        })
        gpu_ready = k8s.core.v1.Namespace("gpu-ready", metadata={"name": "ready"}, opts=opts)
        obs = Observability("obs", ObservabilityArgs(
            naming=naming, mode=monitoring, cluster_name="llm-hosting-prod", region="us-east-1",
            models=cfg.models, stack_chart=PIN, dcgm_chart=PIN,
            system_node_selector={"llm-hosting/node-role": "system"},
            gpu_node_selector={"llm-hosting/node-role": "gpu"}), opts)
        keda = Keda("keda", KedaArgs(naming=naming, chart=PIN, cluster_name="llm-hosting-prod",
                                     system_node_selector={"llm-hosting/node-role": "system"},
                                     amp_workspace_arn=obs.workspace_arn), opts)
        if ingress == "internal-alb":
            LoadBalancerController("alb", LoadBalancerControllerArgs(
                naming=naming, chart=PIN, cluster_name="llm-hosting-prod", region="us-east-1",
                vpc_id="vpc-0mock", system_node_selector={}), opts)
        token = pulumi.Output.secret("hf_secret")
        for model in cfg.models:
            ModelServing(f"serve-{model.name}", ModelServingArgs(
                model=model, naming=naming, cluster_name="llm-hosting-prod", region="us-east-1",
                node_selector=gpu_node_selector(model.name), metrics=obs.metrics,
                hf_token=token, ingress=ingress, vpc_cidr="10.30.0.0/16",
                depends_on=[gpu_ready, keda.release]), opts)

    return run_program({}, stack="prod", program=program)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build()


@pytest.fixture(scope="module")
def amp() -> Graph:
    return build(monitoring="amp", ingress="internal-alb")


def _named(graph: Graph, type_: str, name: str) -> Any:
    return graph.one(type_, name)


def test_one_deployment_per_model_on_its_namespace_without_replicas(graph):
    deps = {d.name: d for d in graph.of_type(DEPLOYMENT)}
    assert set(deps) == {"serve-llama-70b-deployment", "serve-llama-8b-deployment"}
    spec = deps["serve-llama-8b-deployment"].inputs["spec"]
    assert "replicas" not in spec
    assert deps["serve-llama-8b-deployment"].inputs["metadata"]["namespace"] == "llm-llama-8b"
    pod = spec["template"]["spec"]
    assert pod["nodeSelector"] == {"llm-hosting/model": "llama-8b", "llm-hosting/node-role": "gpu"}


def test_deployment_waits_for_gpu_capacity_and_the_autoscaler(graph):
    dep = graph.one(DEPLOYMENT, "serve-llama-8b-deployment")
    ready = graph.one("kubernetes:core/v1:Namespace", "gpu-ready")
    keda = graph.one(RELEASE, "keda-release")
    component = graph.one("llm-hosting:eks:ModelServing", "serve-llama-8b")
    assert dep.parent == component.urn
    assert {ready.urn, keda.urn} <= set(dep.dependencies)
    # Custom resources wait for the chart that installs their CRDs.
    stack = graph.one(RELEASE, "obs-kube-prometheus-stack")
    for monitor in graph.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor"):
        assert stack.urn in monitor.dependencies
    scaler = graph.one(SCALED, "serve-llama-8b-scaler")
    assert dep.urn in scaler.dependencies


def test_hub_token_secret_only_for_the_model_without_s3_weights_and_stays_secret(graph):
    (secret,) = graph.of_type(SECRET)
    assert secret.name == "serve-llama-8b-hf-token"
    data = secret.inputs["stringData"]
    assert SECRET_SIG in json.dumps(data), "the token must reach the engine as a secret"
    assert data != unwrap(data)
    assert unwrap(data)["HF_TOKEN"] == "hf_secret"
    env = graph.one(DEPLOYMENT, "serve-llama-8b-deployment").inputs["spec"]["template"]["spec"][
        "containers"][0]["env"]
    assert "hf_secret" not in json.dumps(env)
    env70 = graph.one(DEPLOYMENT, "serve-llama-70b-deployment").inputs["spec"]["template"][
        "spec"]["containers"][0]["env"]
    assert all(e["name"] != "HF_TOKEN" for e in env70)


def test_s3_weights_role_reads_only_its_prefix_and_is_bound_to_the_service_account(graph):
    assoc = graph.one("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                      "serve-llama-70b-pod-identity")
    assert assoc.inputs["namespace"] == "llm-llama-70b"
    assert assoc.inputs["serviceAccount"] == "llama-70b"
    assert assoc.inputs["tags"]["model"] == "llama-70b"
    role = graph.one("aws:iam/role:Role", "serve-llama-70b-weights-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Condition"]["StringEquals"][
        "aws:RequestTag/kubernetes-service-account"] == "llama-70b"
    policy = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy",
                                  "serve-llama-70b-weights-read").inputs["policy"])
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert resources == ["arn:aws:s3:::weights-bucket/meta-llama/Llama-3.3-70B-Instruct/*",
                         "arn:aws:s3:::weights-bucket"]
    # The Hub model gets no AWS role at all.
    assert not [r for r in graph.of_type("aws:iam/role:Role") if "llama-8b" in r.name]


def test_sse_kms_weights_key_is_decryptable_by_the_weights_role_through_s3_only(graph):
    """`weightsKmsKeyArn` adds kms:Decrypt on exactly that key to the model's weights role, only
    as S3 in the stack's region reading the weights bucket; unset (the shared graph), none."""
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": "prod",
           "llm-hosting:platform": "eks",
           "llm-hosting:models": json.dumps([{**MODELS[0], "weightsKmsKeyArn": key}])}
    (model,) = parse_config(raw, project="llm-hosting", stack="prod").models

    def program() -> None:
        opts = pulumi.ResourceOptions(providers={
            "aws": aws.Provider("aws", region="us-east-1"),
            "kubernetes": k8s.Provider("k8s", kubeconfig="{}"),
        })
        ModelServing("serve-llama-70b", ModelServingArgs(
            model=model, naming=Naming("llm-hosting", "prod", "prod", {}),
            cluster_name="llm-hosting-prod", region="us-east-1",
            node_selector=gpu_node_selector(model.name),
            metrics=MetricsSource("http://prometheus:9090")), opts)

    policy = json.loads(run_program({}, stack="prod", program=program).one(
        "aws:iam/rolePolicy:RolePolicy", "serve-llama-70b-weights-read").inputs["policy"])
    (decrypt,) = [s for s in policy["Statement"] if s["Sid"] == "DecryptWeights"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
            "arn:aws:s3:::weights-bucket",
            "arn:aws:s3:::weights-bucket/meta-llama/Llama-3.3-70B-Instruct/*"]},
    }
    unset = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy",
                                 "serve-llama-70b-weights-read").inputs["policy"])
    assert not any("kms:" in json.dumps(s["Action"]) for s in unset["Statement"])


def test_scaled_objects_read_in_cluster_prometheus(graph):
    for so in graph.of_type(SCALED):
        trigger = so.inputs["spec"]["triggers"][0]
        assert trigger["metadata"]["serverAddress"] == (
            "http://kube-prometheus-stack-prometheus.monitoring.svc:9090")
        assert "authenticationRef" not in trigger


def test_kube_prometheus_stack_mode_installs_stack_dcgm_monitors_rules_dashboard(graph):
    releases = {r.name: r.inputs for r in graph.of_type(RELEASE)}
    stack = releases["obs-kube-prometheus-stack"]["values"]
    assert stack["prometheus"]["agentMode"] is False and stack["grafana"]["enabled"] is True
    assert stack["grafana"]["adminPassword"] == ""  # random, never the chart's constant
    assert releases["obs-dcgm-exporter"]["values"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    monitors = graph.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert {m.inputs["metadata"]["name"] for m in monitors} == {"dcgm-exporter", "llama-70b",
                                                                "llama-8b"}
    graph.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    cm = graph.one("kubernetes:core/v1:ConfigMap", "obs-dashboard")
    assert cm.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert not graph.of_type("aws:amp/workspace:Workspace")
    assert not graph.of_type("kubernetes:networking.k8s.io/v1:Ingress")


def test_amp_mode_remote_writes_loads_rules_into_amp_and_signs_keda_queries(amp):
    ws = amp.one("aws:amp/workspace:Workspace")
    assert ws.inputs["tags"]["team"] == "ml"
    assert ws.protect  # prod: metric history survives a mistaken `pulumi destroy`
    stack = amp.one(RELEASE, "obs-kube-prometheus-stack").inputs["values"]
    assert stack["prometheus"]["agentMode"] is True
    (rw,) = stack["prometheus"]["prometheusSpec"]["remoteWrite"]
    assert rw == {"url": "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-obs-"
                         "workspace/api/v1/remote_write", "sigv4": {"region": "us-east-1"}}
    rules = amp.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace")
    assert "VllmKvCacheSaturated" in rules.inputs["data"]
    assert not amp.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    writer = json.loads(amp.one("aws:iam/rolePolicy:RolePolicy", "obs-remote-write")
                        .inputs["policy"])
    assert writer["Statement"][0]["Action"] == ["aps:RemoteWrite"]
    for so in amp.of_type(SCALED):
        trigger = so.inputs["spec"]["triggers"][0]
        assert trigger["metadata"]["awsRegion"] == "us-east-1"
        assert trigger["metadata"]["serverAddress"].endswith("/workspaces/ws-obs-workspace")
        assert trigger["authenticationRef"]["kind"] == "ClusterTriggerAuthentication"
    amp.one("kubernetes:keda.sh/v1alpha1:ClusterTriggerAuthentication")
    assoc = amp.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "keda-pod-identity")
    assert assoc.inputs["serviceAccount"] == "keda-operator"


def test_amp_alerts_reach_an_encrypted_topic_only_the_workspace_may_publish_to(amp):
    """An agent-mode Prometheus sends no alerts; AMP's alert manager must route them somewhere."""
    ws = amp.one("aws:amp/workspace:Workspace")
    topic = amp.one("aws:sns/topic:Topic", "obs-alerts")
    key = amp.one("aws:kms/key:Key", "obs-alerts-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    (aps,) = [s for s in json.loads(key.inputs["policy"])["Statement"]
              if s["Principal"] == {"Service": "aps.amazonaws.com"}]
    assert set(aps["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    policy = amp.one("aws:sns/topicPolicy:TopicPolicy", "obs-alerts-policy")
    allow, deny = json.loads(policy.inputs["policy"])["Statement"]
    assert allow["Principal"] == {"Service": "aps.amazonaws.com"}
    assert allow["Resource"] == topic.outputs["arn"] == policy.inputs["arn"]
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == ws.outputs["arn"]
    assert deny["Effect"] == "Deny"
    am = amp.one("aws:amp/alertManagerDefinition:AlertManagerDefinition")
    assert am.inputs["workspaceId"] == amp.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace"
                                               ).inputs["workspaceId"]
    assert "obs-alerts-policy" in {d.rsplit("::", 1)[-1] for d in am.dependencies}
    config = yaml.safe_load(yaml.safe_load(am.inputs["definition"])["alertmanager_config"])
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (sns,) = receiver["sns_configs"]
    assert sns["topic_arn"] == topic.outputs["arn"] and sns["sigv4"] == {"region": "us-east-1"}


def test_in_cluster_alertmanager_publishes_every_alert_to_the_encrypted_topic(graph):
    """The chart's default route ends in a `null` receiver that drops every alert. In-cluster
    mode routes them to the same kind of encrypted SNS topic AMP mode uses, published with
    Alertmanager's own Pod Identity, scoped to the topic and its key."""
    topic = graph.one("aws:sns/topic:Topic", "obs-alerts")
    key = graph.one("aws:kms/key:Key", "obs-alerts-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert not graph.of_type("aws:amp/alertManagerDefinition:AlertManagerDefinition")
    # no service principal anywhere: the publisher is an IAM role of this account
    key_policy = json.loads(key.inputs["policy"])
    assert [s["Sid"] for s in key_policy["Statement"]] == ["AccountAdministration"]
    (deny,) = json.loads(graph.one("aws:sns/topicPolicy:TopicPolicy", "obs-alerts-policy")
                         .inputs["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}}

    values = graph.one(RELEASE, "obs-kube-prometheus-stack").inputs["values"]["alertmanager"]
    assert values["enabled"] is True
    assert values["serviceAccount"] == {"create": True, "name": "alertmanager"}
    config = values["config"]
    assert config["route"]["receiver"] == "sns"
    # Watchdog (always firing, a dead man's switch) stays on the chart's null receiver
    assert config["route"]["routes"] == [{"receiver": "null",
                                          "matchers": ['alertname = "Watchdog"']}]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"null", "sns"} and receivers["null"] == {"name": "null"}
    (sns,) = receivers["sns"]["sns_configs"]
    assert sns["topic_arn"] == topic.outputs["arn"]
    assert sns["sigv4"] == {"region": "us-east-1"}
    # Alertmanager v0.31 SNSConfig keys (prometheus/alertmanager config/notifiers.go)
    assert set(sns) <= {"send_resolved", "http_config", "api_url", "sigv4", "topic_arn",
                        "phone_number", "target_arn", "subject", "message", "attributes"}

    assoc = graph.one("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                      "obs-alertmanager-identity")
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == (
        "monitoring", "alertmanager")
    assert assoc.urn in graph.one(RELEASE, "obs-kube-prometheus-stack").dependencies
    policy = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", "obs-alertmanager-publish")
                        .inputs["policy"])
    publish, kms = policy["Statement"]
    assert publish["Action"] == ["sns:Publish"] and publish["Resource"] == [
        topic.outputs["arn"]]
    assert set(kms["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert kms["Resource"] == [key.outputs["arn"]]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}


def test_internal_alb_per_model_with_controller_identity(amp):
    ingresses = amp.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert len(ingresses) == 2
    for ing in ingresses:
        ann = ing.inputs["metadata"]["annotations"]
        assert ann["alb.ingress.kubernetes.io/scheme"] == "internal"
        assert ann["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.30.0.0/16"
    release = amp.one(RELEASE, "alb-release").inputs["values"]
    assert release["clusterName"] == "llm-hosting-prod" and release["vpcId"] == "vpc-0mock"
    policy = json.loads(amp.one("aws:iam/rolePolicy:RolePolicy", "alb-policy").inputs["policy"])
    assert "llm-hosting-prod" in json.dumps(policy)


def test_every_aws_resource_is_tagged_and_parented(amp):
    for r in amp.resources:
        if r.type.startswith("aws:") and r.custom and "tags" in r.inputs:
            assert r.inputs["tags"]["managed-by"] == "pulumi", r.name
        if r.type.startswith(("aws:iam/role:", "aws:eks/pod", "aws:amp/workspace",
                              "aws:amp/ruleGroup", "aws:sns/topic:", "aws:kms/")):
            assert r.inputs.get("tags"), f"{r.name} is untagged"
        if r.type.startswith(("aws:", "kubernetes:")) and not r.type.startswith("pulumi:"):
            assert r.parent, r.name
