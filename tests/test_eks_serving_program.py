"""The whole program with `platform: eks`: the serving layer on the cluster part 1 builds.

One and two models through `components.offline.run_program` (config -> network -> EksPlatform
-> serving layer -> exports), asserting what part 2 adds and how it hangs on part 1: the
platform's Kubernetes provider, the NodePools and device plugin it waits for, the Pod Identity
agent every workload role needs, and the stack outputs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError
from components.eks.labels import node_pool_name
from components.offline import SECRET_SIG, Graph, run_program

LLAMA_8B = {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
            "maxInputTokens": 6144, "maxTotalTokens": 8192, "minReplicas": 1, "maxReplicas": 3}
LLAMA_70B = {"name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct",
             "quantization": "fp8", "maxInputTokens": 7168, "maxTotalTokens": 8192,
             "gpusPerReplica": 4, "minReplicas": 2, "maxReplicas": 4,
             "weightsUri": "s3://weights-bucket/llama-3.3-70b/"}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVING = "llm-hosting:eks:ModelServing"


def config(models: list[dict[str, Any]], **eks: Any) -> dict[str, Any]:
    return {
        "aws:region": "us-east-1",
        "llm-hosting:environment": "prod",
        "llm-hosting:platform": "eks",
        "llm-hosting:models": models,
        "llm-hosting:hfToken": "hf_program_secret",
        "llm-hosting:eks": eks,
    }


@pytest.fixture(scope="module")
def one() -> Graph:
    return run_program(config([LLAMA_8B]), stack="prod", secret_keys=("llm-hosting:hfToken",))


@pytest.fixture(scope="module")
def two() -> Graph:
    return run_program(config([LLAMA_70B, LLAMA_8B], monitoring="amp", ingress="internal-alb"),
                       stack="prod", secret_keys=("llm-hosting:hfToken",))


def test_one_model_one_serving_stack_parented_to_the_platform(one):
    platform = one.one("llm-hosting:eks:EksPlatform")
    (serving,) = one.of_type(SERVING)
    assert serving.name == "eks-serving-llama-8b" and serving.parent == platform.urn
    assert one.one("llm-hosting:eks:Observability").parent == platform.urn
    assert one.one("llm-hosting:eks:Keda").parent == platform.urn
    assert not one.of_type("llm-hosting:eks:LoadBalancerController")


def test_workloads_use_the_clusters_kubernetes_provider(one):
    (provider,) = one.of_type("pulumi:providers:kubernetes")
    for r in one.resources:
        if r.type.startswith("kubernetes:") and r.custom:
            assert r.provider.startswith(provider.urn), f"{r.type} {r.name}: {r.provider}"


def test_model_pods_wait_for_their_node_pool_the_device_plugin_and_keda(one):
    dep = one.one(DEPLOYMENT, "eks-serving-llama-8b-deployment")
    pool = next(r for r in one.of_type("kubernetes:karpenter.sh/v1:NodePool")
                if r.inputs["metadata"]["name"] == node_pool_name("llama-8b"))
    plugin = one.one("kubernetes:helm.sh/v3:Release", "eks-device-plugin-release")
    keda = one.one("kubernetes:helm.sh/v3:Release", "eks-keda-release")
    assert {pool.urn, plugin.urn, keda.urn} <= set(dep.dependencies)
    pod = dep.inputs["spec"]["template"]["spec"]
    labels = pool.inputs["spec"]["template"]["metadata"]["labels"]
    assert pod["nodeSelector"].items() <= labels.items()  # the pool's nodes match the selector
    taint = pool.inputs["spec"]["template"]["spec"]["taints"][0]
    assert any(t["key"] == taint["key"] and t["effect"] == taint["effect"]
               for t in pod["tolerations"])


def test_hub_model_gets_the_token_as_a_secret_only(one):
    secret = one.one("kubernetes:core/v1:Secret", "eks-serving-llama-8b-hf-token")
    assert SECRET_SIG in json.dumps(secret.inputs["stringData"])
    dep = one.one(DEPLOYMENT, "eks-serving-llama-8b-deployment")
    assert "hf_program_secret" not in json.dumps(dep.inputs)


def test_vllm_args_follow_config_and_sizing(two):
    dep = two.one(DEPLOYMENT, "eks-serving-llama-70b-deployment")
    args = dep.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}
    assert args[0] == "s3://weights-bucket/llama-3.3-70b"
    assert flags["--tensor-parallel-size"] == "4" and flags["--max-model-len"] == "8192"
    assert flags["--quantization"] == "fp8" and flags["--load-format"] == "runai_streamer"
    # four ranks stream a quarter each (distributed mode), each with a bounded CPU buffer
    streamer = json.loads(flags["--model-loader-extra-config"])
    assert streamer == {"distributed": True, "concurrency": 8, "memory_limit": 2 * 1024**3}
    memory = dep.inputs["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "memory"]
    assert int(memory.removesuffix("Gi")) >= 4 * 2 + 4 * 4  # the four buffers + /dev/shm


def test_two_models_two_stacks_one_shared_monitoring_and_autoscaler(two):
    assert {s.name for s in two.of_type(SERVING)} == {"eks-serving-llama-70b",
                                                      "eks-serving-llama-8b"}
    assert len(two.of_type("llm-hosting:eks:Observability")) == 1
    assert len(two.of_type("llm-hosting:eks:Keda")) == 1
    ingresses = {i.name for i in two.of_type("kubernetes:networking.k8s.io/v1:Ingress")}
    # One per model, plus the gateway's (on by default outside dev, tests/test_gateway_program.py)
    assert ingresses == {"eks-serving-llama-70b-ingress", "eks-serving-llama-8b-ingress",
                         "eks-gateway-ingress"}
    two.one("llm-hosting:eks:LoadBalancerController")
    monitors = two.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert {m.inputs["metadata"]["name"] for m in monitors} == {"dcgm-exporter", "llama-70b",
                                                                "llama-8b", "llm-gateway"}


def test_pod_identity_associations_wait_for_the_agent(two):
    agent = two.one("aws:eks/addon:Addon", "eks-addons-eks-pod-identity-agent")
    ours = [a for a in two.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
            if a.name.startswith(("eks-serving", "eks-observability", "eks-keda", "eks-alb"))]
    assert {a.name for a in ours} == {
        "eks-serving-llama-70b-pod-identity", "eks-observability-prometheus-identity",
        "eks-keda-pod-identity", "eks-alb-controller-pod-identity"}
    by_urn = {r.urn: r for r in two.resources}

    def waits_for(r: Any, target: str, seen: set[str]) -> bool:
        if target in r.dependencies:
            return True
        parent = by_urn.get(r.parent)
        return parent is not None and r.parent not in seen and waits_for(
            parent, target, seen | {r.parent})

    for assoc in ours:
        assert waits_for(assoc, agent.urn, set()), assoc.name


def test_exports_give_url_and_streaming_command_per_model(one, two):
    assert two.exports["endpoints"] == {
        "llama-70b": "http://llama-70b.llm-llama-70b.svc.cluster.local:80/v1/chat/completions",
        "llama-8b": "http://llama-8b.llm-llama-8b.svc.cluster.local:80/v1/chat/completions",
    }
    cmd = two.exports["invokeCommands"]["llama-8b"]
    assert "port-forward svc/llama-8b" in cmd and '"stream": true' in cmd
    assert two.exports["monitoring"] == "amp"
    assert two.exports["alertsTopicArn"] == two.one("aws:sns/topic:Topic").outputs["arn"]
    assert two.exports["clusterName"]  # part 1's outputs are still there
    # in-cluster Alertmanager publishes to a topic of its own
    assert one.exports["alertsTopicArn"] == one.one("aws:sns/topic:Topic").outputs["arn"]


def test_prod_example_stack_keeps_metrics_in_amp_and_routes_its_alerts():
    """In-cluster Prometheus keeps its TSDB on an emptyDir: prod must not depend on it."""
    from components.offline import ROOT
    from components.stackfile import read_stack_file

    stack = read_stack_file(ROOT / "Pulumi.prod.yaml")
    graph = run_program(stack.config, stack=stack.stack, secret_keys=stack.secret_keys)
    assert graph.exports["monitoring"] == "amp"
    assert graph.one("aws:amp/workspace:Workspace").protect
    graph.one("aws:amp/alertManagerDefinition:AlertManagerDefinition")


def test_unknown_monitoring_mode_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        run_program(config([LLAMA_8B], monitoring="datadog"), stack="prod",
                    secret_keys=("llm-hosting:hfToken",))
    assert any(p.startswith("llm-hosting:eks.monitoring: 'datadog' is not accepted")
               for p in err.value.problems)


@pytest.mark.parametrize("which", ["one", "two"])
def test_every_helm_release_waits_for_the_system_node_group(which, request):
    """Helm waits (atomic) for the chart's pods; on a first deploy they need the system nodes
    (and CoreDNS on them) or the wait times out while the node group is still creating. Every
    release, in-cluster monitoring and AMP, with and without the ALB controller, names the system
    node group and the CoreDNS add-on among its own dependencies."""
    graph: Graph = request.getfixturevalue(which)
    system = graph.one("aws:eks/nodeGroup:NodeGroup", "eks-nodes-system")
    coredns = graph.one("aws:eks/addon:Addon", "eks-addons-coredns")
    releases = graph.of_type("kubernetes:helm.sh/v3:Release")
    expected = {"eks-karpenter-crd", "eks-karpenter-controller", "eks-device-plugin-release",
                "eks-observability-kube-prometheus-stack", "eks-observability-dcgm-exporter",
                "eks-keda-release"}
    if which == "two":
        expected.add("eks-alb-controller-release")
    assert {r.name for r in releases} == expected
    late = [r.name for r in releases
            if not {system.urn, coredns.urn} <= set(r.dependencies)
            and r.name != "eks-karpenter-crd"]  # CRDs only: no pods to wait for
    assert late == []
