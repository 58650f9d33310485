"""Hardening: the EKS builders against the cluster's schemas and the Pod Security `restricted`
profile's fields, and the Checkov judge of scripts/render_k8s.py on fixed reports."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from components.eks import serving as srv
from components.eks.hardening import GATEWAY_PEER, SCRAPER_PEER, vpc_cni_configuration
from components.eks.labels import gpu_node_selector
from components.facts.charts import DEFAULT_KUBERNETES_VERSION
from components.facts.images import VLLM
from components.platforms import parse_config
from scripts.render_k8s import ALLOWLIST, Allowed, judge

MODELS = [{"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct"}]


@pytest.fixture(scope="module")
def model():
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": "prod",
           "llm-hosting:platform": "eks", "llm-hosting:models": json.dumps(MODELS)}
    return parse_config(raw, project="llm-hosting", stack="prod").models[0]


def test_vllm_runs_non_root_read_only_with_every_written_path_mounted(model):
    dep = srv.deployment(model, region="us-east-1", node_selector=gpu_node_selector(model.name),
                         with_hf_token=False)
    kubernetes_validate.validate(dep, DEFAULT_KUBERNETES_VERSION, strict=True)
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ctx = c["securityContext"]
    assert ctx["readOnlyRootFilesystem"] and ctx["runAsNonRoot"] and ctx["runAsUser"] >= 10000
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/dev/shm", "/tmp", "/models", VLLM.non_root.home} <= mounts
    env = {e["name"]: e.get("value") for e in c["env"]}
    # every cache variable points into a mounted, writable path
    for name, value in VLLM.non_root.cache_env.items():
        if value.startswith("/"):
            assert any(value == m or value.startswith(m + "/") for m in mounts), name
    assert env["HOME"] == VLLM.non_root.home and env["USER"]  # getpass.getuser() needs it
    volumes = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in c["volumeMounts"]} == volumes
    storage = int(c["resources"]["limits"]["ephemeral-storage"].removesuffix("Gi"))
    sized = sum(int(v["emptyDir"]["sizeLimit"].removesuffix("Gi")) for v in pod["volumes"]
                if "medium" not in v["emptyDir"])
    assert storage == sized  # the disk-backed emptyDirs are exactly what the pod may use


def test_namespace_enforces_restricted(model):
    labels = srv.namespace(model)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_network_policy_denies_by_default_and_admits_three_sources(model):
    cidrs = ["10.0.36.0/22", "10.0.100.0/22"]
    np = srv.network_policy(model, cidrs)
    kubernetes_validate.validate(np, DEFAULT_KUBERNETES_VERSION, strict=True)
    spec = np["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": VLLM.port}]
    assert rule["from"] == [GATEWAY_PEER, SCRAPER_PEER, *({"ipBlock": {"cidr": c}} for c in cidrs)]
    egress = {json.dumps(e["ports"], sort_keys=True) for e in spec["egress"]}
    assert len(egress) == 3  # DNS, Pod Identity agent, HTTPS
    https = spec["egress"][2]["to"][0]["ipBlock"]
    assert https == {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}
    assert srv.network_policy(model)["spec"]["ingress"][0]["from"] == [GATEWAY_PEER, SCRAPER_PEER]


def test_vpc_cni_turns_on_its_policy_agent():
    assert vpc_cni_configuration() == {"enableNetworkPolicy": "true"}


def _report(failed: list[tuple[str, str]], passed: list[tuple[str, str]] = ()) -> list:
    def item(check: str, resource: str) -> dict:
        return {"check_id": check, "resource": resource, "file_path": "/s/x"}
    return [{"check_type": "kubernetes", "results": {
        "failed_checks": [item(*f) for f in failed],
        "passed_checks": [item(*p) for p in passed]}}]


def test_judge_separates_allowlisted_failed_stale_and_unevaluated():
    allow = (Allowed("CKV_K8S_11", "Deployment.llm-*.*", "why"),
             Allowed("CKV_K8S_99", "*", "stale"))
    verdict = judge(_report(
        [("CKV_K8S_11", "Deployment.llm-a.a"), ("CKV_K8S_11", "Deployment.default.mine"),
         ("CKV_AWS_336", "aws_ecs_task_definition.t")],
        [("CKV_AWS_249", "aws_ecs_task_definition.t"),
         ("CKV_AWS_249", "aws_ecs_task_definition.u"),
         ("CKV_AWS_335", "aws_ecs_task_definition.u")]),
        allow)
    assert [f.resource for f, _ in verdict.allowlisted] == ["Deployment.llm-a.a"]
    assert [(f.check, f.resource) for f in verdict.failed] == [
        ("CKV_K8S_11", "Deployment.default.mine"), ("CKV_AWS_336", "aws_ecs_task_definition.t")]
    assert [a.check for a in verdict.unused] == ["CKV_K8S_99"]
    assert verdict.unevaluated == ["/s/x:aws_ecs_task_definition.t"]
    assert verdict.passed == 3


def test_every_allowlist_entry_names_its_check_object_and_reason():
    for entry in ALLOWLIST:
        assert entry.check.startswith("CKV_") and entry.resource and len(entry.reason) > 60
