"""EKS serving objects, validated against the schemas the cluster enforces.

Core kinds go through `kubernetes_validate` (strict: unknown fields fail) for the cluster's
Kubernetes version; Prometheus Operator objects through the operator's CRD schemas in
tests/reference/crds with unknown fields rejected the way `kubectl apply` with strict field
validation rejects them; PromQL through a real PromQL parser (promql-parser, the Rust
`promql-parser` crate's Python binding).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml

from components.config import Model, StackConfig
from components.eks import monitoring as mon
from components.eks import serving as srv
from components.eks.autoscaling import amp_query_policy, amp_trigger_authentication
from components.eks.labels import GPU_TOLERATION, gpu_node_selector
from components.eks.load_balancer import controller_policy
from components.facts.charts import DEFAULT_KUBERNETES_VERSION
from components.platforms import parse_config
from tests.conftest import crd_schema

K8S = DEFAULT_KUBERNETES_VERSION
WEIGHTS = "s3://weights-bucket/meta-llama/Llama-3.3-70B-Instruct/"

MODELS = [
    {"name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct", "quantization": "fp8",
     "maxInputTokens": 7168, "maxTotalTokens": 8192, "gpusPerReplica": 4,
     "minReplicas": 2, "maxReplicas": 4, "weightsUri": WEIGHTS},
    {"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct", "minReplicas": 1,
     "maxReplicas": 3},
]


def _config(models: list[dict[str, Any]], environment: str = "prod") -> StackConfig:
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": environment,
           "llm-hosting:platform": "eks", "llm-hosting:models": json.dumps(models)}
    return parse_config(raw, project="llm-hosting", stack="prod")


@pytest.fixture(scope="module")
def models() -> dict[str, Model]:
    return {m.name: m for m in _config(MODELS).models}


@pytest.fixture(scope="module")
def s3_model(models) -> Model:
    return models["llama-70b"]


@pytest.fixture(scope="module")
def hub_model(models) -> Model:
    return models["qwen-7b"]


def _deployment(model: Model, token: bool = False) -> dict[str, Any]:
    return srv.deployment(model, region="us-east-1", node_selector=gpu_node_selector(model.name),
                          with_hf_token=token)


def _args(model: Model) -> dict[str, str]:
    args = srv.vllm_args(model)
    return {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}


# --- schema validation ----------------------------------------------------------------------


def _core_objects(model: Model) -> list[dict[str, Any]]:
    scaled = srv.scaled_object(model, srv.MetricsSource("http://prometheus:9090"))
    return [
        srv.namespace(model), srv.service_account(model), srv.hf_token_secret(model, "hf_x"),
        _deployment(model, token=True), srv.service(model), srv.pod_disruption_budget(model),
        srv.equivalent_hpa(scaled), srv.ingress(model, "10.0.0.0/16"),
        mon.dashboard_config_map(),
    ]


@pytest.mark.parametrize("name", ["llama-70b", "qwen-7b"])
def test_every_core_object_validates_strictly_for_the_cluster_version(models, name):
    for obj in _core_objects(models[name]):
        kubernetes_validate.validate(obj, K8S, strict=True)


def test_strict_validation_would_catch_a_misspelt_field(hub_model):
    bad = _deployment(hub_model)
    bad["spec"]["strategy"]["rollingUpdate"]["maxUnavaliable"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S, strict=True)


def _strict(schema: Any) -> Any:
    """The API server prunes and, with strict field validation, rejects unknown fields: close
    every object schema that declares its properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_validator(filename: str, version: str) -> jsonschema.Validator:
    schema = _strict(crd_schema(filename, version))
    # metadata is validated by the API server itself, not by the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def test_service_monitors_match_the_prometheus_operator_crd(models):
    validator = _crd_validator("monitoring.coreos.com_servicemonitors.yaml", "v1")
    for obj in (mon.dcgm_service_monitor(), *(mon.service_monitor(m) for m in models.values())):
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        validator.validate(obj)
    bad = copy.deepcopy(mon.service_monitor(models["qwen-7b"]))
    bad["spec"]["endpoints"][0]["scrapeIntervall"] = "15s"
    assert list(validator.iter_errors(bad)), "a misspelt field must fail the CRD schema"


def test_prometheus_rule_matches_the_prometheus_operator_crd():
    validator = _crd_validator("monitoring.coreos.com_prometheusrules.yaml", "v1")
    validator.validate(mon.prometheus_rule())
    bad = mon.prometheus_rule()
    bad["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    assert list(validator.iter_errors(bad)), "a malformed duration must fail the CRD schema"


# --- PromQL ---------------------------------------------------------------------------------


def _exprs() -> list[str]:
    rules = [r["expr"] for r in mon.alert_rules()]
    panels = [t["expr"] for p in mon.dashboard()["panels"] for t in p["targets"]]
    return rules + panels


def _metric_names(node: Any) -> set[str]:
    names: set[str] = set()

    def visit(n: Any) -> None:
        if isinstance(n, promql_parser.VectorSelector) and n.name:
            names.add(n.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(n, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                visit(child)
        for arg in getattr(n, "args", None) or []:
            visit(arg)

    visit(node)
    return names


#: Series the pinned vLLM v0.12 image and the DCGM exporter publish (vllm/v1/metrics/loggers.py;
#: Prometheus counters gain `_total`, histograms `_bucket`). The deprecated gpu_cache name is
#: read as a fallback only.
KNOWN_SERIES = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc", "vllm:generation_tokens_total",
    "vllm:time_to_first_token_seconds_bucket", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",
}


def test_every_alert_and_panel_query_parses_and_reads_published_series(models):
    queries = _exprs() + [srv.inflight_query(m) for m in models.values()]
    seen: set[str] = set()
    for q in queries:
        seen |= _metric_names(promql_parser.parse(q))
    assert seen <= KNOWN_SERIES, seen - KNOWN_SERIES
    assert {"vllm:kv_cache_usage_perc", "vllm:num_requests_waiting",
            "vllm:time_to_first_token_seconds_bucket", "vllm:generation_tokens_total",
            "DCGM_FI_DEV_GPU_UTIL"} <= seen


def test_parser_rejects_broken_promql():
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(vllm:generation_tokens_total[5m])")


def test_alerts_cover_kv_cache_queue_ttft_and_throughput():
    rules = {r["alert"]: r for r in mon.alert_rules()}
    kv = rules["VllmKvCacheSaturated"]
    assert "vllm:kv_cache_usage_perc" in kv["expr"] and kv["expr"].endswith("> 0.9")
    assert kv["for"] == "10m"
    assert "vllm:num_requests_waiting" in rules["VllmRequestsQueued"]["expr"]
    assert "histogram_quantile(0.95" in rules["VllmTimeToFirstTokenHigh"]["expr"]
    assert "offset 1h" in rules["VllmThroughputDropped"]["expr"]
    assert all(r["labels"]["severity"] for r in rules.values())
    # AMP receives exactly the same groups as a rule file.
    assert yaml.safe_load(mon.amp_rules_yaml()) == {"groups": mon.rule_groups()}


def test_amp_alert_subjects_fit_sns_for_every_alert():
    """SNS rejects subjects over 100 characters; render the template for each alert name."""
    (sns,) = yaml.safe_load(yaml.safe_load(mon.alertmanager_definition(
        "arn:aws:sns:us-east-1:123456789012:t", "us-east-1"))["alertmanager_config"])[
        "receivers"][0]["sns_configs"]
    for rule in mon.alert_rules():
        subject = sns["subject"].replace("{{ .Status }}", "resolved").replace(
            "{{ .CommonLabels.alertname }}", rule["alert"])
        assert "{{" not in subject and len(subject) <= 100, subject


def test_dashboard_covers_ttft_tokens_kv_cache_queue_and_gpu():
    cm = mon.dashboard_config_map()
    assert cm["metadata"]["labels"][mon.DASHBOARD_LABEL] == "1"
    board = json.loads(cm["data"]["vllm.json"])
    text = json.dumps(board["panels"])
    for series in ("time_to_first_token", "generation_tokens", "kv_cache_usage",
                   "num_requests_waiting", "DCGM_FI_DEV_GPU_UTIL"):
        assert series in text


# --- vLLM arguments against sizing ------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama-70b", "qwen-7b"])
def test_vllm_args_agree_with_sizing(models, name):
    model = models[name]
    args = _args(model)
    assert int(args["--tensor-parallel-size"]) == model.gpus_per_replica
    settings = model.memory.engine
    assert int(args["--max-model-len"]) == settings.max_model_len == model.spec.max_total_tokens
    assert float(args["--gpu-memory-utilization"]) == settings.gpu_memory_utilization
    assert int(args["--max-num-batched-tokens"]) == settings.max_num_batched_tokens
    assert int(args["--max-num-seqs"]) == settings.max_num_seqs
    assert settings.max_num_seqs >= model.spec.concurrency_target
    assert args["--served-model-name"] == model.spec.model_id
    container = _deployment(model)["spec"]["template"]["spec"]["containers"][0]
    gpus = str(model.gpus_per_replica)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus


def test_s3_weights_stream_with_runai_and_quantization_flag(s3_model, hub_model):
    args = srv.vllm_args(s3_model)
    assert args[0] == WEIGHTS.rstrip("/")
    assert _args(s3_model)["--load-format"] == "runai_streamer"
    assert _args(s3_model)["--quantization"] == "fp8"
    hub = srv.vllm_args(hub_model)
    assert hub[0] == hub_model.spec.model_id
    assert "--load-format" not in hub and "--quantization" not in hub


#: The keys and types vLLM v0.12.0's RunaiModelStreamerLoader reads from
#: `--model-loader-extra-config` (vllm/model_executor/model_loader/runai_streamer_loader.py at tag
#: v0.12.0: `isinstance(..., bool)` for `distributed`, `isinstance(..., int)` for the other two).
#: A misspelt key or a string value is ignored there without a word, so the test holds us to it.
VLLM_0_12_STREAMER_KEYS = {"distributed": bool, "concurrency": int, "memory_limit": int}


def _streamer(model: Model) -> dict[str, Any]:
    """The streamer config as the Deployment's container runs it."""
    args = _deployment(model)["spec"]["template"]["spec"]["containers"][0]["args"]
    return json.loads(args[args.index("--model-loader-extra-config") + 1])


def test_tensor_parallel_s3_model_streams_in_distributed_mode_with_a_bounded_buffer(s3_model):
    """Without `distributed` vLLM v0.12.0 passes is_distributed=False and each of the four
    ranks streams all 141 GB; without `memory_limit` the distributed streamer buffers without
    limit (RUNAI_STREAMER_MEMORY_LIMIT=-1)."""
    config = _streamer(s3_model)
    assert config == {"distributed": True, "concurrency": 8, "memory_limit": 2 * 1024**3}
    for key, value in config.items():
        assert type(value) is VLLM_0_12_STREAMER_KEYS[key], key
    # the buffer holds the checkpoint's largest tensor: the 128256 x 8192 bf16 embedding
    assert config["memory_limit"] >= 128256 * 8192 * 2
    # and the pod's memory holds every rank's buffer, the workers and /dev/shm
    container = _deployment(s3_model)["spec"]["template"]["spec"]["containers"][0]
    limit = int(container["resources"]["limits"]["memory"].removesuffix("Gi")) * 1024**3
    assert container["resources"]["requests"]["memory"] == container["resources"]["limits"][
        "memory"]
    assert limit >= 4 * config["memory_limit"] + srv.shm_size_gib(s3_model) * 1024**3


def test_single_gpu_s3_model_streams_alone_and_hub_models_use_no_streamer(hub_model):
    one = _config([{**MODELS[1], "weightsUri": "s3://weights-bucket/qwen/"}]).models[0]
    assert one.gpus_per_replica == 1
    assert _streamer(one) == {"concurrency": 8, "memory_limit": 2 * 1024**3}
    assert "--model-loader-extra-config" not in srv.vllm_args(hub_model)


def test_streamer_buffer_grows_past_the_largest_tensor_and_pod_memory_follows():
    """Gemma 2 9B ships float32: its 256000 x 3584 embedding is 3.4 GiB on disk, so the buffer
    is 3.5 GiB; on a host whose memory share is smaller than what the streamer and the workers
    need, the pod asks for the need (Karpenter then picks a larger admitted type)."""
    import dataclasses
    gemma = _config([{"name": "gemma", "modelId": "google/gemma-2-9b-it",
                      "weightsUri": "s3://weights-bucket/gemma/"}]).models[0]
    assert srv.largest_tensor_bytes(gemma) == 256000 * 3584 * 4
    assert srv.streamer_buffer_bytes(gemma) == 3.5 * 1024**3
    small = dataclasses.replace(gemma.instance, memory_mib=8 * 1024)  # 6 GiB share at 75%
    memory = srv.pod_resources(gemma, [small])["limits"]["memory"]
    assert memory == f"{srv.pod_memory_floor_gib(gemma)}Gi" == "12Gi"  # 6 + 3.5 + 2, rounded up


def test_pod_resources_fit_every_host_the_pool_may_launch(models):
    from components.eks.nodepool import gpu_requirements
    from components.facts.gpus import GPU_INSTANCES
    for model in models.values():
        req = gpu_requirements(model, 2.0)
        hosts = [i for i in GPU_INSTANCES.values() if req.admits(i)]
        res = srv.pod_resources(model, hosts)["requests"]
        for host in hosts:
            share = model.gpus_per_replica / host.gpu_count
            assert int(res["cpu"]) < host.vcpus * share
            assert int(res["memory"].removesuffix("Gi")) * 1024 < host.memory_mib * share


# --- the Deployment ---------------------------------------------------------------------------


def test_deployment_lands_on_the_models_gpu_pool_and_never_drops_capacity(hub_model):
    dep = _deployment(hub_model)
    spec = dep["spec"]
    assert "replicas" not in spec  # the autoscaler owns it
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    assert pod["nodeSelector"] == gpu_node_selector(hub_model.name)
    assert GPU_TOLERATION in pod["tolerations"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]} >= {"/dev/shm",
                                                                              "/models"}


def test_probes_tolerate_a_ten_minute_load_and_use_health(hub_model):
    c = _deployment(hub_model)["spec"]["template"]["spec"]["containers"][0]
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"


def test_grace_period_lets_the_longest_stream_finish(models):
    for model in models.values():
        pod = _deployment(model)["spec"]["template"]["spec"]
        new_tokens = model.spec.max_total_tokens - model.spec.max_input_tokens
        grace = pod["terminationGracePeriodSeconds"]
        assert grace >= srv.PRESTOP_SLEEP_SECONDS + new_tokens / srv.MIN_DECODE_TOKENS_PER_SECOND
        assert pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] < grace


def test_hub_token_only_by_secret_reference(hub_model, s3_model):
    env = _deployment(hub_model, token=True)["spec"]["template"]["spec"]["containers"][0]["env"]
    token = next(e for e in env if e["name"] == "HF_TOKEN")
    assert "value" not in token
    assert token["valueFrom"]["secretKeyRef"]["name"] == f"{hub_model.name}-hf-token"
    assert srv.needs_hf_token(hub_model, True) and not srv.needs_hf_token(hub_model, False)
    assert not srv.needs_hf_token(s3_model, True)  # weights from S3 need no Hub token


def test_pdb_keeps_a_replica_and_lets_stuck_pods_go(models):
    one = srv.pod_disruption_budget(models["qwen-7b"])["spec"]
    two = srv.pod_disruption_budget(models["llama-70b"])["spec"]
    assert one["minAvailable"] == 1 and "maxUnavailable" not in one
    assert two["maxUnavailable"] == 1
    assert one["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# --- autoscaling ------------------------------------------------------------------------------


def test_scaled_object_scales_on_vllm_queue_within_config_bounds(s3_model):
    so = srv.scaled_object(s3_model, srv.MetricsSource("http://prom:9090"))
    spec = so["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 4)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    assert "vllm:num_requests_waiting" in query and "vllm:num_requests_running" in query
    assert 'namespace="llm-llama-70b"' in query
    assert trigger["metadata"]["threshold"] == str(s3_model.spec.concurrency_target)
    assert "authenticationRef" not in trigger
    down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    # Three model loads (~10 min each) of patience before giving a replica back.
    assert down["stabilizationWindowSeconds"] >= 3 * 600
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 600}]


def test_scaled_object_signs_amp_queries_with_keda_identity(hub_model):
    metrics = srv.MetricsSource("https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1",
                                aws_region="us-east-1", trigger_authentication="aws-amp")
    (trigger,) = srv.scaled_object(hub_model, metrics)["spec"]["triggers"]
    assert trigger["metadata"]["awsRegion"] == "us-east-1"
    assert trigger["authenticationRef"] == {"name": "aws-amp",
                                            "kind": "ClusterTriggerAuthentication"}
    assert amp_trigger_authentication()["spec"] == {"podIdentity": {"provider": "aws"}}


def test_scale_to_zero_is_expressible(hub_model):
    model = _config([{**MODELS[1], "minReplicas": 0, "maxReplicas": 2}], "staging").models[0]
    so = srv.scaled_object(model, srv.MetricsSource("http://p:9090"))
    assert so["spec"]["minReplicaCount"] == 0
    kubernetes_validate.validate(srv.equivalent_hpa(so), K8S, strict=True)


# --- IAM ---------------------------------------------------------------------------------------


def test_pod_reads_only_the_weights_prefix():
    doc = srv.weights_read_policy(WEIGHTS)
    get, lst = doc["Statement"]
    assert get["Action"] == ["s3:GetObject"]
    assert get["Resource"] == [
        "arn:aws:s3:::weights-bucket/meta-llama/Llama-3.3-70B-Instruct/*"]
    assert lst["Action"] == ["s3:ListBucket"]
    assert lst["Resource"] == ["arn:aws:s3:::weights-bucket"]
    assert lst["Condition"]["StringLike"]["s3:prefix"] == [
        "meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct/*"]


def _actions(doc: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for s in doc["Statement"]:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        out += [(a, s["Resource"], s.get("Condition")) for a in actions]
    return out


def test_load_balancer_controller_mutates_only_this_clusters_resources():
    doc = controller_policy(cluster_name="llm-prod", region="us-east-1", account="123456789012")
    for action, resource, condition in _actions(doc):
        assert action != "*" and not action.endswith(":*")
        verb = action.split(":")[1]
        if verb.startswith(("Describe", "Get", "List")):
            continue
        if action == "ec2:CreateSecurityGroup" and resource == [
                "arn:aws:ec2:us-east-1:123456789012:vpc/*"]:
            continue
        if action == "elasticloadbalancing:SetRulePriorities":
            # No condition key exists for it (AWS's authorization data): rules only.
            assert all(":listener-rule/" in r for r in resource)
            continue
        assert condition, f"{action} is not conditioned"
        assert "llm-prod" in json.dumps(condition) or "elasticloadbalancing" in json.dumps(
            condition), action


def test_keda_and_prometheus_identities_touch_only_the_workspace():
    arn = "arn:aws:aps:us-east-1:123456789012:workspace/ws-1"
    query = _actions(amp_query_policy(arn))
    assert all(a.startswith(("aps:Query", "aps:Get")) and r == [arn] for a, r, _ in query)
    assert _actions(mon.remote_write_policy(arn)) == [("aps:RemoteWrite", [arn], None)]


# --- outputs -----------------------------------------------------------------------------------


def test_outputs_name_the_service_and_stream_a_chat_completion(hub_model):
    assert srv.cluster_url(hub_model) == (
        "http://qwen-7b.llm-qwen-7b.svc.cluster.local:80/v1/chat/completions")
    cmd = srv.port_forward_command(hub_model)
    assert cmd.startswith("kubectl -n llm-qwen-7b port-forward svc/qwen-7b 8080:80")
    body = json.loads(cmd.split("-d '", 1)[1].removesuffix("; kill $!").rstrip("'"))
    assert body["stream"] is True and body["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert "curl -N" in cmd  # -N: print tokens as they stream
