"""Least-privilege workloads: the container and network rules the program's own serving
workloads meet (docs/hardening.md), so a user's additions to the stack are gated too.

* `workloads-no-privileged-containers`: no privileged container and no added capability
  (Kubernetes `securityContext`, ECS container definitions).
* `workloads-non-root`: a Kubernetes container must not be able to run as root
  (`runAsNonRoot: true` or a non-zero `runAsUser`, on the container or its pod); an ECS
  container running as root (no `user`, `0` or `root`) must at least drop every capability,
  the only way ECS has to take root's powers away (an image only known to run as root, or an
  init step that only chmods its own volumes).
* `workloads-no-privilege-escalation`: every Kubernetes container sets
  `allowPrivilegeEscalation: false` (the API's default is true).
* `workloads-serving-network-policy` (stack): every namespace running a model server (a
  workload with the program's serving annotations) has a NetworkPolicy selecting all its pods
  for ingress, so nothing in the cluster calls a model around the gateway and the load balancer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policies.rules._framework import (
    Resource,
    Rule,
    as_bool,
    as_number,
    get,
    is_map,
    items,
    parse_json,
    serving_tags,
)
from policies.rules.secrets import TASK_DEFINITIONS, WORKLOAD_TYPES, containers_of, pod_spec

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
_ROOT_USERS = frozenset({"", "0", "root"})


def _kind(resource: Resource) -> str:
    return resource.type.rsplit(":", 1)[-1]


def _pod_containers(resource: Resource) -> tuple[Any, list[Any]]:
    spec = pod_spec(resource.props, _kind(resource))
    return spec, [c for _, c in containers_of(spec)]


def _name(container: Any) -> str:
    return str(get(container, "name", default="?"))


def _ecs_containers(resource: Resource) -> list[Any]:
    return items(parse_json(get(resource.props, "containerDefinitions")))


def _drops_all(capabilities: Any) -> bool:
    return any(str(c).upper() == "ALL" for c in items(get(capabilities, "drop")))


# --- privileged / capabilities --------------------------------------------------------------


def _privileged_messages(name: str, privileged: Any, added: Any, how: str) -> Iterable[str]:
    if as_bool(privileged):
        yield (f"container {name} is privileged: it holds every capability and the host's "
               f"devices; remove {how}")
    extra = [str(c) for c in items(added)]
    if extra:
        yield (f"container {name} adds capabilities {', '.join(extra)}: drop ALL and add "
               "nothing (GPUs reach containers through the device plugin, not capabilities)")


def check_pod_privileged(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    _, containers = _pod_containers(resource)
    for c in containers:
        ctx = get(c, "securityContext", default={})
        yield from _privileged_messages(_name(c), get(ctx, "privileged"),
                                        get(ctx, "capabilities", "add"),
                                        "securityContext.privileged")


def check_task_privileged(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for c in _ecs_containers(resource):
        yield from _privileged_messages(_name(c), get(c, "privileged"),
                                        get(c, "linuxParameters", "capabilities", "add"),
                                        "`privileged`")


NO_PRIVILEGED = Rule(
    name="workloads-no-privileged-containers",
    description="No privileged container and no added Linux capability, on EKS or ECS.",
    checks={**dict.fromkeys(WORKLOAD_TYPES, check_pod_privileged),
            **dict.fromkeys(TASK_DEFINITIONS, check_task_privileged)},
)


# --- root -----------------------------------------------------------------------------------


def _runs_as_non_root(pod_ctx: Any, ctx: Any) -> bool:
    """The container's effective setting: its own field, else the pod's."""
    for field in ("runAsNonRoot", "runAsUser"):
        value = get(ctx, field)
        if value is None:
            value = get(pod_ctx, field)
        if field == "runAsNonRoot" and as_bool(value):
            return True
        if field == "runAsUser" and value is not None and (as_number(value) or 0) > 0:
            return True
    return False


def check_pod_root(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    spec, containers = _pod_containers(resource)
    pod_ctx = get(spec, "securityContext", default={})
    for c in containers:
        if not _runs_as_non_root(pod_ctx, get(c, "securityContext", default={})):
            yield (f"container {_name(c)} may run as root: set securityContext.runAsNonRoot: "
                   "true and a non-zero runAsUser (on the container or the pod), with the "
                   "paths it writes mounted as volumes")


def check_task_root(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for c in _ecs_containers(resource):
        user = str(get(c, "user", default="")).split(":")[0].strip()
        if user in _ROOT_USERS and not _drops_all(get(c, "linuxParameters", "capabilities")):
            yield (f"container {_name(c)} runs as root with root's capabilities: set `user` to a "
                   "non-zero UID, or at least linuxParameters.capabilities.drop: [\"ALL\"]")


NON_ROOT = Rule(
    name="workloads-non-root",
    description=("Kubernetes containers run as non-root; an ECS container running as root "
                 "drops every capability."),
    checks={**dict.fromkeys(WORKLOAD_TYPES, check_pod_root),
            **dict.fromkeys(TASK_DEFINITIONS, check_task_root)},
)


# --- privilege escalation -------------------------------------------------------------------


def check_pod_escalation(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    _, containers = _pod_containers(resource)
    for c in containers:
        if as_bool(get(c, "securityContext", "allowPrivilegeEscalation")) is not False:
            yield (f"container {_name(c)} may gain privileges (setuid binaries, file "
                   "capabilities): set securityContext.allowPrivilegeEscalation: false (the API "
                   "defaults it to true)")


NO_ESCALATION = Rule(
    name="workloads-no-privilege-escalation",
    description="Every Kubernetes container sets allowPrivilegeEscalation: false.",
    checks=dict.fromkeys(WORKLOAD_TYPES, check_pod_escalation),
)


# --- network policy for serving namespaces --------------------------------------------------


def _namespace(props: Mapping[str, Any]) -> str | None:
    ns = get(props, "metadata", "namespace")
    return ns if isinstance(ns, str) and ns else None


def _isolates_ingress(props: Mapping[str, Any]) -> bool:
    """Selects every pod of its namespace (`podSelector: {}`) for ingress."""
    selector = get(props, "spec", "podSelector")
    every_pod = is_map(selector) and not get(selector, "matchLabels") \
        and not get(selector, "matchExpressions")
    types = [str(t) for t in items(get(props, "spec", "policyTypes"))]
    # Without policyTypes, Ingress is always one of them (NetworkPolicySpec API reference).
    return every_pod and ("Ingress" in types or not types)


def check_serving_network_policies(resources: Sequence[Resource], config: Mapping[str, Any]
                                   ) -> Iterable[str]:
    serving: dict[str, str] = {}
    for r in resources:
        if r.type in WORKLOAD_TYPES and serving_tags(r.props):
            ns = _namespace(r.props)
            if ns is not None:  # unknown during preview: nothing to judge yet
                serving.setdefault(ns, r.name)
    isolated = {_namespace(r.props) for r in resources
                if r.type == NETWORK_POLICY and _isolates_ingress(r.props)}
    for ns, workload in sorted(serving.items()):
        if ns not in isolated:
            yield (f"namespace {ns} serves a model ({workload}) but no NetworkPolicy selects "
                   "all its pods for ingress: any pod in the cluster can call the model "
                   "directly; add a default-deny policy that admits the gateway, the metrics "
                   "scraper and the load balancer only (components/eks/hardening.py)")


SERVING_NETWORK_POLICY = Rule(
    name="workloads-serving-network-policy",
    description=("Every namespace that runs a model server has a NetworkPolicy isolating all "
                 "its pods for ingress."),
    stack_check=check_serving_network_policies,
    stack_types=frozenset((*WORKLOAD_TYPES, NETWORK_POLICY)),
)

RULES = [NO_PRIVILEGED, NON_ROOT, NO_ESCALATION, SERVING_NETWORK_POLICY]
