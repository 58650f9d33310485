"""Edges of the workload rules in-process (helpers.run), each with the exact message, so the
mutation run (scripts/mutation.py) can hold every branch cheaply; the protocol side is in
test_workload_rules.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import run

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
