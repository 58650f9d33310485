"""Edges of the workload rules in-process (helpers.run), each with the exact message, so the
mutation run (scripts/mutation.py) can hold every branch cheaply; the protocol side is in
test_workload_rules.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import run, run_stack

ROOT_POD = ("container app may run as root: set securityContext.runAsNonRoot: true and a "
            "non-zero runAsUser (on the container or the pod), with the paths it writes "
            "mounted as volumes")


def _deployment(pod_ctx: dict[str, Any] | None, ctx: dict[str, Any] | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app"}
    if ctx is not None:
        container["securityContext"] = ctx
    spec: dict[str, Any] = {"containers": [container]}
    if pod_ctx is not None:
        spec["securityContext"] = pod_ctx
    return {"spec": {"template": {"spec": spec}}}


@pytest.mark.parametrize(("pod_ctx", "ctx", "root"), [
    (None, None, True),
    (None, {"runAsUser": 0}, True),
    (None, {"runAsUser": 1}, False),
    (None, {"runAsNonRoot": True}, False),
    (None, {"runAsNonRoot": False}, True),
    ({"runAsUser": 10001}, None, False),                  # the pod's setting applies
    ({"runAsNonRoot": True}, {"runAsUser": 0}, False),    # either field is enough
    ({"runAsUser": 10001}, {"runAsUser": 0}, True),       # the container's own field wins
])
def test_who_a_kubernetes_container_runs_as(pod_ctx, ctx, root):
    found = run("workloads-non-root", "kubernetes:apps/v1:Deployment", _deployment(pod_ctx, ctx))
    assert found == ([ROOT_POD] if root else [])


def test_every_workload_kind_finds_its_pod_spec():
    job = {"spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}}
    assert run("workloads-non-root", "kubernetes:batch/v1:Job", job) == [ROOT_POD]
    pod = {"spec": {"containers": [{"name": "app"}]}}
    assert run("workloads-non-root", "kubernetes:core/v1:Pod", pod) == [ROOT_POD]


ROOT_TASK = ("container app runs as root with root's capabilities: set `user` to a non-zero "
             "UID, or at least linuxParameters.capabilities.drop: [\"ALL\"]")


@pytest.mark.parametrize(("container", "root"), [
    ({}, True), ({"user": "0"}, True), ({"user": "root"}, True), ({"user": "0:0"}, True),
    ({"user": "10001"}, False), ({"user": "10001:0"}, False),
    ({"user": "0", "linuxParameters": {"capabilities": {"drop": ["ALL"]}}}, False),
])
def test_who_an_ecs_container_runs_as(container, root):
    props = {"containerDefinitions": json.dumps([{"name": "app", **container}])}
    found = run("workloads-non-root", "aws:ecs/taskDefinition:TaskDefinition", props)
    assert found == ([ROOT_TASK] if root else [])


def _ctx_pod(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "app", "securityContext": ctx}]}}


PRIVILEGED = ("container app is privileged: it holds every capability and the host's devices; "
              "remove {how}")
ADDS = ("container app adds capabilities {caps}: drop ALL and add nothing (GPUs reach "
        "containers through the device plugin, not capabilities)")


@pytest.mark.parametrize(("ctx", "expected"), [
    ({"privileged": True}, [PRIVILEGED.format(how="securityContext.privileged")]),
    ({"privileged": False}, []), ({}, []),
    ({"capabilities": {"add": ["NET_ADMIN", "SYS_PTRACE"]}},
     [ADDS.format(caps="NET_ADMIN, SYS_PTRACE")]),
    ({"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
     [PRIVILEGED.format(how="securityContext.privileged"), ADDS.format(caps="SYS_ADMIN")]),
])
def test_privileged_and_added_capabilities_on_kubernetes(ctx, expected):
    found = run("workloads-no-privileged-containers", "kubernetes:core/v1:Pod", _ctx_pod(ctx))
    assert found == expected


@pytest.mark.parametrize(("container", "expected"), [
    ({"privileged": True}, [PRIVILEGED.format(how="`privileged`")]),
    ({"linuxParameters": {"capabilities": {"add": ["NET_RAW"]}}}, [ADDS.format(caps="NET_RAW")]),
    ({"privileged": False}, []),
])
def test_privileged_and_added_capabilities_on_ecs(container, expected):
    props = {"containerDefinitions": json.dumps([{"name": "app", **container}])}
    found = run("workloads-no-privileged-containers",
                "aws:ecs/taskDefinition:TaskDefinition", props)
    assert found == expected


@pytest.mark.parametrize(("drop", "root"), [
    (["ALL"], False), (["all"], False), (["NET_RAW", "ALL"], False), (["NET_RAW"], True)])
def test_dropping_all_capabilities_in_any_spelling_or_position(drop, root):
    props = {"containerDefinitions": json.dumps([{"name": "app", "user": "0", "linuxParameters": {
        "capabilities": {"drop": drop}}}])}
    found = run("workloads-non-root", "aws:ecs/taskDefinition:TaskDefinition", props)
    assert found == ([ROOT_TASK] if root else [])


ESCALATION = ("container app may gain privileges (setuid binaries, file capabilities): set "
              "securityContext.allowPrivilegeEscalation: false (the API defaults it to true)")


@pytest.mark.parametrize(("ctx", "flagged"), [
    ({"allowPrivilegeEscalation": False}, False), ({"allowPrivilegeEscalation": True}, True),
    ({}, True)])
def test_privilege_escalation_must_be_false_explicitly(ctx, flagged):
    found = run("workloads-no-privilege-escalation", "kubernetes:core/v1:Pod", _ctx_pod(ctx))
    assert found == ([ESCALATION] if flagged else [])


NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _serving(ns: str | None) -> tuple[str, dict[str, Any]]:
    metadata: dict[str, Any] = {"annotations": {"llm-hosting/model-id": "m"}}
    if ns is not None:
        metadata["namespace"] = ns
    return ("kubernetes:apps/v1:Deployment", {"metadata": metadata, "spec": {}})


def _policy(ns: str, selector: Any, types: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    spec: dict[str, Any] = {"podSelector": selector}
    if types is not None:
        spec["policyTypes"] = types
    return (NETPOL, {"metadata": {"namespace": ns}, "spec": spec})


def _unisolated(ns: str, workload: str) -> str:
    return (f"namespace {ns} serves a model ({workload}) but no NetworkPolicy selects all its "
            "pods for ingress")


@pytest.mark.parametrize(("policy", "isolated"), [
    (_policy("llm-a", {}), True),
    (_policy("llm-a", {}, ["Ingress"]), True),
    (_policy("llm-a", {}, ["Ingress", "Egress"]), True),
    (_policy("llm-a", {}, ["Egress"]), False),
    (_policy("llm-a", {"matchLabels": {"app": "x"}}), False),
    (_policy("llm-a", {"matchExpressions": [{"key": "app", "operator": "Exists"}]}), False),
    (_policy("llm-a", None), False),
    (_policy("llm-b", {}), False),           # another namespace's policy
    (("kubernetes:core/v1:ConfigMap", {"metadata": {"namespace": "llm-a"},
                                      "spec": {"podSelector": {}}}), False),
])
def test_what_isolates_a_serving_namespace(policy, isolated):
    found = run_stack("workloads-serving-network-policy", [_serving("llm-a"), policy])
    assert [m[:len(_unisolated("llm-a", "r0"))] for m in found] == (
        [] if isolated else [_unisolated("llm-a", "r0")])


def test_only_serving_workloads_with_a_known_namespace_need_isolation():
    plain = ("kubernetes:apps/v1:Deployment", {"metadata": {"namespace": "tools"}, "spec": {}})
    assert run_stack("workloads-serving-network-policy", [plain, _serving(None)]) == []
    tagged_map = ("kubernetes:core/v1:ConfigMap",
                  {"metadata": {"namespace": "x", "annotations": {"llm-hosting/model-id": "m"}}})
    assert run_stack("workloads-serving-network-policy", [tagged_map]) == []
