"""The workload rules (policies/rules/workloads.py) through the analyzer protocol: the EKS and
ECS example stacks comply; changing one property of a compliant workload, or adding a user's
own unhardened Deployment, gives exactly the expected violations."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from policy_harness import Analyzer

from components.offline import ROOT, Recorded
from tests.policies.test_policy_protocol import CONFIGS, analyze_all, recorded

PROD, STAGING = ROOT / "Pulumi.prod.yaml", ROOT / "Pulumi.staging.yaml"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
RULES = ("workloads-no-privileged-containers", "workloads-non-root",
         "workloads-no-privilege-escalation", "workloads-serving-network-policy")


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    yield analyzer
    analyzer.stop()


def workload_findings(pack: Analyzer, resources: list[Recorded], env: str
                      ) -> list[tuple[str, str, str]]:
    return sorted((d.policy, d.level, d.detail) for d in analyze_all(pack, resources, env)
                  if d.policy in RULES)


def _mutated(path: Any, type_: str, change: Callable[[dict[str, Any]], None]
             ) -> tuple[list[Recorded], str]:
    """The stack with `change` applied to the first resource of `type_` (inputs and outputs)."""
    graph, env = recorded(path)
    resources = [copy.deepcopy(r) for r in graph.resources]
    # The model's resource, not the gateway's (tests/test_gateway_config.py covers those).
    target = next(r for r in resources if r.type == type_ and ":gateway:" not in r.urn)
    for props in (target.inputs, target.outputs):
        if props:
            change(props)
    return resources, env


def _engine(props: dict[str, Any]) -> dict[str, Any]:
    return props["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("path", [PROD, STAGING], ids=["eks", "ecs"])
def test_example_stacks_comply(pack, path):
    graph, env = recorded(path)
    assert workload_findings(pack, graph.resources, env) == []


def test_privileged_container_is_mandatory_violation_in_prod(pack):
    resources, env = _mutated(PROD, DEPLOYMENT,
                              lambda p: _engine(p)["securityContext"].update(privileged=True))
    assert workload_findings(pack, resources, env) == [(
        "workloads-no-privileged-containers", "mandatory",
        "container vllm is privileged: it holds every capability and the host's devices; "
        "remove securityContext.privileged")]


def test_root_container_is_reported_when_neither_pod_nor_container_says_non_root(pack):
    def root(props: dict[str, Any]) -> None:
        for ctx in (props["spec"]["template"]["spec"]["securityContext"],
                    _engine(props)["securityContext"]):
            ctx.pop("runAsNonRoot"), ctx.pop("runAsUser")
    resources, env = _mutated(PROD, DEPLOYMENT, root)
    assert workload_findings(pack, resources, env) == [(
        "workloads-non-root", "mandatory",
        "container vllm may run as root: set securityContext.runAsNonRoot: true and a non-zero "
        "runAsUser (on the container or the pod), with the paths it writes mounted as volumes")]


def test_pod_level_non_root_is_enough(pack):
    def pod_only(props: dict[str, Any]) -> None:
        ctx = _engine(props)["securityContext"]
        ctx.pop("runAsNonRoot"), ctx.pop("runAsUser")
    resources, env = _mutated(PROD, DEPLOYMENT, pod_only)
    assert workload_findings(pack, resources, env) == []


def test_privilege_escalation_left_to_the_default_is_reported(pack):
    resources, env = _mutated(
        PROD, DEPLOYMENT, lambda p: _engine(p)["securityContext"].pop("allowPrivilegeEscalation"))
    assert workload_findings(pack, resources, env) == [(
        "workloads-no-privilege-escalation", "mandatory",
        "container vllm may gain privileges (setuid binaries, file capabilities): set "
        "securityContext.allowPrivilegeEscalation: false (the API defaults it to true)")]


def test_serving_namespace_without_network_policy_is_reported(pack):
    graph, env = recorded(PROD)
    resources = [r for r in graph.resources if r.type != NETWORK_POLICY]
    namespaces = sorted(r.inputs["metadata"]["namespace"] for r in graph.of_type(DEPLOYMENT)
                        if ":gateway:" not in r.urn)  # the gateway serves no model itself
    found = workload_findings(pack, resources, env)
    assert len(namespaces) == 2
    assert [f[:2] for f in found] == [("workloads-serving-network-policy", "mandatory")] * 2
    assert [f[2].split(" ")[1] for f in found] == namespaces


def test_a_policy_that_selects_only_some_pods_does_not_isolate_the_namespace(pack):
    resources, env = _mutated(
        PROD, NETWORK_POLICY,
        lambda p: p["spec"].update(podSelector={"matchLabels": {"app": "other"}}))
    found = workload_findings(pack, resources, env)
    assert [f[0] for f in found] == ["workloads-serving-network-policy"]


def test_a_users_unhardened_deployment_is_gated(pack):
    graph, env = recorded(PROD)
    mine = Recorded(
        type=DEPLOYMENT, name="my-app", urn=f"urn:pulumi:prod::llm-hosting::{DEPLOYMENT}::my-app",
        inputs={"metadata": {"name": "my-app", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "my-app"}}, "template": {
                    "metadata": {"labels": {"app": "my-app"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
    found = workload_findings(pack, [*graph.resources, mine], env)
    assert [(f[0], f[2].split(":")[0]) for f in found] == [
        ("workloads-no-privilege-escalation", "container app may gain privileges (setuid "
         "binaries, file capabilities)"),
        ("workloads-non-root", "container app may run as root"),
    ]


def _ecs_engine(props: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    containers = json.loads(props["containerDefinitions"])
    change(next(c for c in containers if c["name"] == "engine"))
    props["containerDefinitions"] = json.dumps(containers)


def test_ecs_privileged_engine_is_reported(pack):
    resources, env = _mutated(STAGING, TASK,
                              lambda p: _ecs_engine(p, lambda c: c.update(privileged=True)))
    assert workload_findings(pack, resources, env) == [(
        "workloads-no-privileged-containers", "mandatory",
        "container engine is privileged: it holds every capability and the host's devices; "
        "remove `privileged`")]


@pytest.mark.parametrize("keep_drop", [True, False])
def test_ecs_root_container_must_at_least_drop_every_capability(pack, keep_drop):
    def root(c: dict[str, Any]) -> None:
        c.pop("user")
        if not keep_drop:
            c["linuxParameters"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    resources, env = _mutated(STAGING, TASK, lambda p: _ecs_engine(p, root))
    found = workload_findings(pack, resources, env)
    if keep_drop:
        assert found == []
    else:
        assert [(f[0], f[2]) for f in found] == [
            ("workloads-no-privileged-containers",
             "container engine adds capabilities SYS_ADMIN: drop ALL and add nothing (GPUs "
             "reach containers through the device plugin, not capabilities)"),
            ("workloads-non-root",
             "container engine runs as root with root's capabilities: set `user` to a non-zero "
             "UID, or at least linuxParameters.capabilities.drop: [\"ALL\"]")]


def test_dev_reports_the_same_findings_as_advisory(pack):
    resources, _ = _mutated(PROD, DEPLOYMENT,
                            lambda p: _engine(p)["securityContext"].update(privileged=True))
    pack.configure(CONFIGS["dev"])
    found = [d for d in pack.analyze(resources, resources) if d.policy in RULES]
    assert [(d.policy, d.level) for d in found] == [
        ("workloads-no-privileged-containers", "advisory")]
