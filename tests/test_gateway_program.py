"""The gateway as each platform builds it: the whole program run offline, asserting on the graph."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.gateway import config as gw
from components.gateway import eks as geks
from components.gateway.fargate import decode_bundle
from components.offline import ACCOUNT, SECRET_SIG, Graph, run_program, unwrap
from components.stackfile import read_stack_file
from tests.conftest import ROOT

SM_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
POLICY = "aws:appautoscaling/policy:Policy"
BEDROCK = "bedrock:us.meta.llama3-1-70b-instruct-v1:0"


def stack(name: str, **overrides: Any) -> Graph:
    s = read_stack_file(ROOT / f"Pulumi.{name}.yaml")
    config = dict(s.config)
    for key, value in overrides.items():
        config[f"llm-hosting:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return run_program(config, stack=s.stack, secret_keys=s.secret_keys)


def models_of(name: str) -> list[dict[str, Any]]:
    return json.loads(read_stack_file(ROOT / f"Pulumi.{name}.yaml").config["llm-hosting:models"])


@pytest.fixture(scope="module")
def staging() -> Graph:
    """ECS, gateway on by default; the model scales to zero and falls back to Bedrock."""
    models = models_of("staging")
    models[0].update(minReplicas=0, fallbacks=[BEDROCK])
    return stack("staging", models=models)


@pytest.fixture(scope="module")
def prod() -> Graph:
    """The prod EKS stack run as staging (scale to zero is refused in prod), gateway on by
    default, the 8B model at zero, an internal ALB."""
    models = models_of("prod")
    models[1]["minReplicas"] = 0
    return stack("prod", models=models, environment="staging", eks={**yaml.safe_load(
        (ROOT / "Pulumi.prod.yaml").read_text())["config"]["llm-hosting:eks"],
        "ingress": "internal-alb"})


@pytest.fixture(scope="module")
def dev() -> Graph:
    """SageMaker with the gateway turned on, the model at zero, a Bedrock fallback."""
    models = models_of("dev")
    models[0].update(minReplicas=0, fallbacks=[BEDROCK])
    return stack("dev", models=models, gateway={"enabled": True})


def bundle_of(graph: Graph) -> dict[str, str]:
    parts = sorted(graph.of_type("aws:ssm/parameter:Parameter"),
                   key=lambda p: int(p.inputs["name"].rsplit("/", 1)[1]))
    return decode_bundle("".join(p.inputs["insecureValue"] for p in parts))


def litellm_of(files: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(files["config.yaml"])


def policy_of(graph: Graph, name: str) -> dict[str, Any]:
    return json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


def container_of(graph: Graph, name: str) -> dict[str, Any]:
    """The proxy's container (the other is the config step)."""
    containers = json.loads(graph.one("aws:ecs/taskDefinition:TaskDefinition", name)
                            .inputs["containerDefinitions"])
    return next(c for c in containers if c["name"] == "gateway")


@pytest.mark.parametrize("fixture", ["staging", "prod", "dev"])
def test_every_platform_exports_the_gateway_url_and_its_key_secret(fixture, request):
    graph: Graph = request.getfixturevalue(fixture)
    assert graph.exports["gatewayUrl"].startswith("http://")
    assert graph.exports["gatewayUrl"].endswith("/v1")
    secret = graph.one("aws:secretsmanager/secret:Secret", f"{_platform(graph)}-gateway-master-key")
    assert graph.exports["gatewayKeySecretArn"] == secret.outputs["arn"]
    # The key exists only as a Pulumi secret on its SecretVersion, nowhere in plain text.
    version = graph.one("aws:secretsmanager/secretVersion:SecretVersion",
                        f"{_platform(graph)}-gateway-master-key-value")
    assert version.inputs["secretString"][next(iter(version.inputs["secretString"]))] == \
        SECRET_SIG
    key = unwrap(version.inputs["secretString"])
    assert key.startswith("sk-")
    leaks = [r.name for r in graph.resources if r is not version and key in json.dumps(r.inputs)]
    assert leaks == []


def _platform(graph: Graph) -> str:
    return graph.exports["platform"]


def test_gateway_is_off_in_dev_by_default():
    graph = stack("dev")
    assert "gatewayUrl" not in graph.exports
    assert not [r for r in graph.resources if "gateway" in r.name]


# -- ECS ----------------------------------------------------------------------------------------


def test_ecs_gateway_serves_v1_on_the_stack_alb_and_calls_models_through_it(staging):
    rule = staging.one("aws:lb/listenerRule:ListenerRule", "ecs-gateway-route").inputs
    assert rule["conditions"] == [{"pathPattern": {"values": ["/v1/*"]}}]
    listener = staging.one("aws:lb/listener:Listener", "ecs-lb-http")
    assert rule["listenerArn"] == listener.outputs["arn"]
    assert rule["actions"][0]["targetGroupArn"] == staging.one(
        "aws:lb/targetGroup:TargetGroup", "ecs-gateway-tg").outputs["arn"]

    alb = staging.one("aws:lb/loadBalancer:LoadBalancer", "ecs-lb-alb")
    files = bundle_of(staging)
    assert files["llm_hosting_gateway.py"] == gw.HOOKS_FILE.read_text()
    cfg = litellm_of(files)
    (llama,) = [m for m in cfg["model_list"] if m["model_name"] == "llama-8b"]
    env_name = "LLM_HOSTING_API_BASE_LLAMA_8B"
    assert llama["litellm_params"]["api_base"] == f"os.environ/{env_name}"
    env = {e["name"]: e["value"] for e in container_of(staging, "ecs-gateway-task")["environment"]}
    assert env[env_name] == f"http://{alb.outputs['dnsName']}/llama-8b/v1"
    # A held non-streaming request sends nothing for its hold plus its generation: the ALB
    # waits that long (here more than the 600 s the stack's ALB had before the gateway).
    bound = cfg[gw.SETTINGS_KEY]["models"]["llama-8b"]["wait_bound_seconds"]
    assert alb.inputs["idleTimeout"] == bound + llama["litellm_params"]["timeout"] > 600


def test_ecs_gateway_network_path_is_alb_to_task_only(staging):
    alb_sg = staging.one("aws:ec2/securityGroup:SecurityGroup", "ecs-lb-sg")
    task_sg = staging.one("aws:ec2/securityGroup:SecurityGroup", "ecs-gateway-task-sg").inputs
    assert [(i["fromPort"], i["securityGroups"]) for i in task_sg["ingress"]] == [
        (gw.PORT, [alb_sg.outputs["id"] if "id" in alb_sg.outputs else "ecs-lb-sg-id"])]
    assert gw.PORT in {e["fromPort"] for e in alb_sg.inputs["egress"]}
    service = staging.one("aws:ecs/service:Service", "ecs-gateway-service").inputs
    assert service["launchType"] == "FARGATE"
    assert service["networkConfiguration"]["assignPublicIp"] is False
    assert service["cluster"] == staging.one("aws:ecs/cluster:Cluster").outputs["arn"]


def test_ecs_gateway_role_invokes_only_the_named_bedrock_fallback_and_writes_its_metrics(
        staging):
    statements = {s["Sid"]: s for s in policy_of(staging, "ecs-gateway-task-policy")["Statement"]}
    assert set(statements) == {"InvokeFallbackBedrockModels", "PublishGatewayMetrics"}
    assert statements["InvokeFallbackBedrockModels"]["Resource"] == sorted([
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.meta.llama3-1-70b-instruct-v1:0",
        "arn:aws:bedrock:*::foundation-model/meta.llama3-1-70b-instruct-v1:0"])


def test_ecs_model_at_zero_wakes_on_the_gateway_waiting_metric(staging):
    wake = staging.one(POLICY, "ecs-llama-8b-wake-from-zero").inputs
    alarm = staging.one(SM_ALARM, "ecs-llama-8b-gateway-waiting").inputs
    assert alarm["alarmActions"] == [staging.one(POLICY, "ecs-llama-8b-wake-from-zero")
                                     .outputs["arn"]]
    assert (alarm["namespace"], alarm["metricName"], alarm["period"]) == (
        gw.CLOUDWATCH_NAMESPACE, "RequestsWaiting", 10)
    assert alarm["dimensions"] == {"Stack": "llm-hosting-staging", "Model": "llama-8b"}
    cfg = litellm_of(bundle_of(staging))
    bound = cfg[gw.SETTINGS_KEY]["models"]["llama-8b"]["wait_bound_seconds"]
    step = wake["stepScalingPolicyConfiguration"]
    assert step["cooldown"] == bound and step["stepAdjustments"][0]["scalingAdjustment"] == 1


def test_ecs_fallback_rate_alarm_and_dashboard_row(staging):
    alarm = staging.one(SM_ALARM, "ecs-gateway-llama-8b-fallback-rate").inputs
    assert [q["id"] for q in alarm["metricQueries"]] == ["fallbacks", "requests", "rate"]
    body = json.loads(staging.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert "Gateway: requests and fallbacks per model" in titles


# -- EKS ----------------------------------------------------------------------------------------


def test_eks_gateway_runs_on_system_nodes_with_the_generated_config(prod):
    cm = prod.one("kubernetes:core/v1:ConfigMap", "eks-gateway-config").inputs
    assert cm["data"]["llm_hosting_gateway.py"] == gw.HOOKS_FILE.read_text()
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    bases = {m["model_name"]: m["litellm_params"]["api_base"] for m in cfg["model_list"]}
    assert bases == {"llama-70b": "http://llama-70b.llm-llama-70b.svc.cluster.local:80/v1",
                     "llama-8b": "http://llama-8b.llm-llama-8b.svc.cluster.local:80/v1"}
    dep = prod.one("kubernetes:apps/v1:Deployment", "eks-gateway-deployment").inputs
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"llm-hosting/node-role": "system"}
    assert pod["serviceAccountName"] == geks.NAME
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env[geks.KEY_ARN_ENV] == prod.exports["gatewayKeySecretArn"]
    assert gw.MASTER_KEY_ENV not in env
    prod.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "eks-gateway-hpa")
    prod.one("kubernetes:policy/v1:PodDisruptionBudget", "eks-gateway-pdb")


def test_eks_gateway_identity_reads_its_key_and_nothing_else(prod):
    association = prod.one("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                           "eks-gateway-pod-identity").inputs
    assert (association["namespace"], association["serviceAccount"]) == (
        geks.NAMESPACE, geks.NAME)
    statements = policy_of(prod, "eks-gateway-policy")["Statement"]
    assert statements == [{"Sid": "ReadMasterKey", "Effect": "Allow",
                           "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [prod.exports["gatewayKeySecretArn"]]}]


def test_eks_model_at_zero_is_woken_by_keda_on_the_gateway_metric(prod):
    scalers = {r.name: r.inputs for r in prod.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")}
    small = scalers["eks-serving-llama-8b-scaler"]["spec"]
    assert small["minReplicaCount"] == 0
    assert small["triggers"][1]["metadata"]["query"] == (
        'sum(llm_gateway_requests_waiting{model="llama-8b"})')
    assert len(scalers["eks-serving-llama-70b-scaler"]["spec"]["triggers"]) == 1


def test_eks_gateway_alerts_dashboard_and_ingress_idle_timeout(prod):
    rules = prod.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace").inputs["data"]
    assert "GatewayFallbackRateHigh" in rules and "GatewayHoldTimeouts" in rules
    dashboard = json.loads(prod.one("kubernetes:core/v1:ConfigMap",
                                    "eks-observability-dashboard").inputs["data"]["vllm.json"])
    assert any(p["title"].startswith("Gateway:") for p in dashboard["panels"])
    ingress = prod.one("kubernetes:networking.k8s.io/v1:Ingress", "eks-gateway-ingress").inputs
    attrs = ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
    idle = int(attrs.split(",")[0].split("=")[1])
    bound = max(m["wait_bound_seconds"] for m in yaml.safe_load(prod.one(
        "kubernetes:core/v1:ConfigMap", "eks-gateway-config").inputs["data"]["config.yaml"])[
        gw.SETTINGS_KEY]["models"].values())
    assert idle > bound


# -- SageMaker ----------------------------------------------------------------------------------


def test_sagemaker_gateway_invokes_only_this_stacks_endpoint_and_component(dev):
    statements = {s["Sid"]: s for s in policy_of(dev, "sagemaker-gateway-task-policy")
                  ["Statement"]}
    endpoint = dev.exports["endpointName"]
    (component,) = dev.exports["inferenceComponentNames"].values()
    assert statements["InvokeThisStacksModels"]["Resource"] == [
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/{endpoint}",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:inference-component/{component}"]
    cfg = litellm_of(bundle_of(dev))
    (qwen,) = [m for m in cfg["model_list"] if m["model_name"] == "qwen-7b"]
    assert qwen["litellm_params"]["model"] == f"sagemaker_chat/{endpoint}"
    assert qwen["litellm_params"]["model_id"] == component
    assert cfg["router_settings"]["fallbacks"] == [{"qwen-7b": [BEDROCK]}]


def test_sagemaker_gateway_has_its_own_internal_alb_with_the_hold_idle_timeout(dev):
    alb = dev.one("aws:lb/loadBalancer:LoadBalancer", "sagemaker-gateway-alb").inputs
    assert alb["internal"] is True and alb["dropInvalidHeaderFields"] is True
    cfg = litellm_of(bundle_of(dev))
    bound = cfg[gw.SETTINGS_KEY]["models"]["qwen-7b"]["wait_bound_seconds"]
    assert alb["idleTimeout"] > bound
    sg = dev.one("aws:ec2/securityGroup:SecurityGroup", "sagemaker-gateway-alb-sg").inputs
    assert [i["cidrBlocks"] for i in sg["ingress"]] == [["10.0.0.0/16"]]


def test_sagemaker_component_at_zero_wakes_on_the_gateway_waiting_metric(dev):
    wake = dev.one(POLICY, "sagemaker-qwen-7b-scaling-wake-from-zero")
    alarm = dev.one(SM_ALARM, "sagemaker-qwen-7b-scaling-gateway-waiting").inputs
    assert alarm["alarmActions"] == [wake.outputs["arn"]]
    assert alarm["metricName"] == "RequestsWaiting"
    # ...beside SageMaker's own NoCapacityInvocationFailures alarm on the same policy.
    no_capacity = dev.one(SM_ALARM, "sagemaker-qwen-7b-scaling-no-capacity").inputs
    assert no_capacity["alarmActions"] == [wake.outputs["arn"]]
    body = json.loads(dev.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    assert any(w["properties"]["title"].startswith("Gateway:") for w in body["widgets"])


def test_ecs_gateway_rule_never_moves_a_model_rule():
    """The gateway's priority is chosen after the models', so turning it on keeps every model
    rule where it was; on a clash the gateway steps aside, not the model."""
    from components.ecs.gateway import ROUTE_NAME, free_priority
    from components.ecs.routing import hashed_priority, listener_priorities

    clash = hashed_priority(ROUTE_NAME)
    assert free_priority(ROUTE_NAME, [clash, clash + 1]) == clash + 2
    models = models_of("staging")
    on, off = (stack("staging", models=models, gateway={"enabled": flag}) for flag in (True,
                                                                                       False))
    def rules(graph: Graph) -> dict[str, float]:
        return {r.name: r.inputs["priority"]
                for r in graph.of_type("aws:lb/listenerRule:ListenerRule")}
    with_gateway = rules(on)
    gateway = with_gateway.pop("ecs-gateway-route")
    assert with_gateway == rules(off) == {
        "ecs-llama-8b-route": listener_priorities(["llama-8b"])["llama-8b"]}
    assert gateway == free_priority(ROUTE_NAME, with_gateway.values())


def test_plan_counts_the_gateway_tasks_in_the_fixed_costs():
    from components.facts.fixed_costs import fargate_task_usd_per_hour
    from components.plan import build_plan

    plan = build_plan("staging")
    (line,) = [c for c in plan.doc["fixedCosts"] if c["item"].startswith("Fargate tasks")]
    assert line["count"] == 2  # gateway.replicas, default
    assert line["usdPerUnitHour"] == pytest.approx(fargate_task_usd_per_hour(1, 2, "X86_64"))
    assert plan.doc["gateway"]["monthlyUsd"] == pytest.approx(
        2 * fargate_task_usd_per_hour(1, 2, "X86_64") * 730, abs=0.01)
