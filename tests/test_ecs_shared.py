"""ECS shared instances: several small models as engine containers of one task on one instance."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_ecs import (
    AAS,
    CP,
    ECS,
    ELBV2,
    GROUP,
    TD,
    TOKEN,
    _ints,
    _pascal,
    _plaintext_paths,
    validate,
)

from components.config import ConfigError, EcsConfig, _ecs_problems
from components.ecs.containers import METRICS
from components.ecs.iam import shared_task_role_policy
from components.ecs.routing import hashed_priority
from components.ecs.sharing import plan_shared, shared_spot_types
from components.offline import Graph, run_program
from components.platforms import parse_config

SVC = "aws:ecs/service:Service"
TG = "aws:lb/targetGroup:TargetGroup"
SHARED_TD = "ecs-small-task"


def shared_config() -> dict[str, Any]:
    """llama-8b alone (as today); llama-1b (vLLM, S3 weights, 1 GPU) and qwen-7b (TGI, Hub,
    2 GPUs) share one instance."""
    return {
        "aws:region": "us-east-1",
        "llm-hosting:environment": "staging",
        "llm-hosting:platform": "ecs",
        "llm-hosting:hfToken": TOKEN,
        "llm-hosting:models": [
            {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
             "weightsUri": "s3://weights-bucket/llama-8b/", "minReplicas": 1, "maxReplicas": 2},
            {"name": "llama-1b", "modelId": "meta-llama/Llama-3.2-1B-Instruct",
             "weightsUri": "s3://weights-bucket/llama-1b/", "minReplicas": 1, "maxReplicas": 3},
            {"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct", "engine": "tgi",
             "gpusPerReplica": 2, "minReplicas": 1, "maxReplicas": 3},
        ],
        "llm-hosting:ecs": {"sharedInstances": [
            {"name": "small", "models": ["llama-1b", "qwen-7b"]}]},
        # The model services are under test here; tests/test_gateway_program.py covers the
        # gateway this staging stack would otherwise get by default.
        "llm-hosting:gateway": {"enabled": False},
    }


def parse(raw: dict[str, Any]) -> Any:
    return parse_config(raw, project="llm-hosting", stack="staging",
                              secret_keys=["llm-hosting:hfToken"])


@pytest.fixture(scope="module")
def shared() -> Graph:
    return run_program(shared_config(), stack="staging", secret_keys=("llm-hosting:hfToken",))


@pytest.fixture(scope="module")
def alone() -> Graph:
    """The same stack without the group: every model keeps its own service."""
    raw = shared_config()
    raw["llm-hosting:ecs"] = {}
    return run_program(raw, stack="staging", secret_keys=("llm-hosting:hfToken",))


def shared_containers(graph: Graph) -> dict[str, dict[str, Any]]:
    defs = json.loads(graph.one(TD, SHARED_TD).inputs["containerDefinitions"])
    return {c["name"]: c for c in defs}


# --- the plan (pure) -----------------------------------------------------------------------


def test_group_gets_the_cheapest_instance_where_each_model_fits_its_own_gpus():
    (host,), problems = plan_shared(parse(shared_config()))
    assert problems == []
    # 1 + 2 GPUs: g4dn.12xlarge (4x T4 16 GiB, $3.912/h) is the cheapest 4-GPU type on which
    # llama-1b fits one GPU and qwen-7b fits two.
    assert (host.instance.name, host.gpus, host.shape.tasks_per_instance) == (
        "g4dn.12xlarge", 3, 1)
    assert [(m.model.name, m.port, m.metrics_port, m.master_port) for m in host.members] == [
        ("llama-1b", 8000, 8000, None), ("qwen-7b", 8001, 9001, 29501)]
    # CPU split by GPU share; engines + init + collector fit the task's memory.
    assert [m.shape.cpu_units for m in host.members] == [16384, 32768]
    assert host.shape.cpu_units == 48 * 1024
    reserved = sum(m.shape.engine_memory_mib + 512 for m in host.members) + 256
    assert reserved <= host.shape.memory_mib == int(192 * 1024 * 0.92) - 1024
    assert shared_spot_types(host)[0] == "g4dn.12xlarge"
    assert all(t.endswith(("12xlarge", "24xlarge")) for t in shared_spot_types(host))


# --- graph -----------------------------------------------------------------------------------


def test_one_task_definition_is_a_valid_register_task_definition_request(shared):
    td = shared.one(TD, SHARED_TD).inputs
    volumes = [{"name": v["name"], "dockerVolumeConfiguration": v["dockerVolumeConfiguration"]}
               for v in td["volumes"]]
    params = {
        "family": td["family"], "taskRoleArn": td["taskRoleArn"],
        "executionRoleArn": td["executionRoleArn"], "networkMode": td["networkMode"],
        "containerDefinitions": json.loads(td["containerDefinitions"]), "volumes": volumes,
        "requiresCompatibilities": td["requiresCompatibilities"], "cpu": td["cpu"],
        "memory": td["memory"], "tags": [{"key": k, "value": v} for k, v in td["tags"].items()],
    }
    assert validate(ECS, "RegisterTaskDefinition", params) == ""
    defs = params["containerDefinitions"]
    assert sum(c.get("memoryReservation", 0) for c in defs) <= int(td["memory"])
    gpus = [int(r["value"]) for c in defs for r in c.get("resourceRequirements", [])]
    assert sum(gpus) == 3 <= 4  # g4dn.12xlarge
    names = [c["name"] for c in defs]
    assert len(set(names)) == len(names)
    ports = [p["containerPort"] for c in defs for p in c.get("portMappings", [])]
    assert len(set(ports)) == len(ports)
    assert td["family"] == "llm-hosting-staging-small"
    assert "model" not in td["tags"] and td["tags"]["llm-hosting/models"] == "llama-1b qwen-7b"


def test_each_engine_has_its_own_gpus_port_health_check_shm_and_log_stream(shared):
    c = shared_containers(shared)
    assert set(c) == {"volumes", "weights-llama-1b", "engine-llama-1b", "engine-qwen-7b",
                      METRICS}
    llama, qwen = c["engine-llama-1b"], c["engine-qwen-7b"]
    assert llama["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert qwen["resourceRequirements"] == [{"type": "GPU", "value": "2"}]
    assert llama["portMappings"][0]["containerPort"] == 8000
    assert qwen["portMappings"][0]["containerPort"] == 8001
    # each engine is told its port (vLLM --port, TGI --port), and TGI moves its metrics and
    # shard rendezvous ports off the defaults a second TGI would also use
    assert llama["command"][llama["command"].index("--port") + 1] == "8000"
    qcmd = qwen["command"]
    assert qcmd[qcmd.index("--port") + 1] == "8001"
    assert qcmd[qcmd.index("--prometheus-port") + 1] == "9001"
    assert qcmd[qcmd.index("--master-port") + 1] == "29501"
    assert qcmd[qcmd.index("--num-shard") + 1] == "2"
    assert "127.0.0.1:8000/health" in llama["healthCheck"]["command"][1]
    assert "127.0.0.1:8001/health" in qwen["healthCheck"]["command"][1]
    assert llama["linuxParameters"]["sharedMemorySize"] == 2048
    assert qwen["linuxParameters"]["sharedMemorySize"] == 4096
    assert llama["logConfiguration"]["options"]["awslogs-stream-prefix"] == "llama-1b"
    assert qwen["logConfiguration"]["options"]["awslogs-stream-prefix"] == "qwen-7b"
    assert llama["dependsOn"] == [{"containerName": "volumes", "condition": "SUCCESS"},
                                  {"containerName": "weights-llama-1b", "condition": "SUCCESS"}]
    for engine in (llama, qwen):
        hc = engine["healthCheck"]
        assert hc["startPeriod"] + hc["interval"] * hc["retries"] >= 600


def test_hf_token_reaches_only_the_hub_engine_and_only_as_a_secret(shared):
    c = shared_containers(shared)
    secret = shared.one("aws:secretsmanager/secret:Secret").outputs["arn"]
    assert c["engine-qwen-7b"]["secrets"] == [{"name": "HF_TOKEN", "valueFrom": secret}]
    assert "secrets" not in c["engine-llama-1b"]  # its weights come from S3
    leaks = [f"{r.type} {r.name}{p}" for r in shared.resources
             for p in _plaintext_paths(r.inputs, TOKEN)]
    assert leaks == []


def test_collector_scrapes_every_engine_with_a_model_dimension(shared):
    env = shared_containers(shared)[METRICS]["environment"]
    config = json.loads(next(e["value"] for e in env if e["name"] == "AOT_CONFIG_CONTENT"))
    jobs = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert [(j["job_name"], j["static_configs"][0]["targets"]) for j in jobs] == [
        ("llama-1b", ["127.0.0.1:8000"]), ("qwen-7b", ["127.0.0.1:9001"])]
    decl = config["exporters"]["awsemf"]["metric_declarations"][0]
    assert decl["dimensions"] == [["ServiceName", "Model"]]


def test_one_service_registers_a_target_group_per_engine(shared):
    svc = shared.one(SVC, "ecs-small-service").inputs
    tgs = {r.name: r for r in shared.of_type(TG)}
    assert svc["loadBalancers"] == [
        {"targetGroupArn": tgs["ecs-small-llama-1b-tg"].outputs["arn"],
         "containerName": "engine-llama-1b", "containerPort": 8000},
        {"targetGroupArn": tgs["ecs-small-qwen-7b-tg"].outputs["arn"],
         "containerName": "engine-qwen-7b", "containerPort": 8001},
    ]
    net = svc["networkConfiguration"]
    params = _ints({
        "cluster": svc["cluster"], "serviceName": svc["name"],
        "taskDefinition": svc["taskDefinition"], "loadBalancers": svc["loadBalancers"],
        "desiredCount": svc["desiredCount"],
        "capacityProviderStrategy": svc["capacityProviderStrategies"],
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": svc["deploymentCircuitBreaker"],
            "maximumPercent": svc["deploymentMaximumPercent"],
            "minimumHealthyPercent": svc["deploymentMinimumHealthyPercent"]},
        "placementStrategy": svc["orderedPlacementStrategies"],
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": net["subnets"], "securityGroups": net["securityGroups"],
            "assignPublicIp": "DISABLED"}},
        "healthCheckGracePeriodSeconds": svc["healthCheckGracePeriodSeconds"],
        "enableECSManagedTags": svc["enableEcsManagedTags"],
        "propagateTags": svc["propagateTags"],
        "tags": [{"key": k, "value": v} for k, v in svc["tags"].items()],
    })
    assert validate(ECS, "CreateService", params) == ""
    assert len(params["loadBalancers"]) <= 5  # ECS: at most five target groups per service
    assert svc["deploymentMinimumHealthyPercent"] == 100
    (strategy,) = svc["capacityProviderStrategies"]
    assert strategy["capacityProvider"] == "llm-hosting-staging-small-on-demand"
    # ALB and container checks wait for the slowest engine (qwen-7b: 14.2 GiB at 0.2 GiB/s)
    assert svc["healthCheckGracePeriodSeconds"] == 600
    # the task security group admits each engine port from the load balancer only
    sg = shared.one("aws:ec2/securityGroup:SecurityGroup", "ecs-small-task-sg").inputs
    assert sorted(r["fromPort"] for r in sg["ingress"]) == [8000, 8001]
    assert {r["securityGroups"][0] for r in sg["ingress"]} == {"ecs-lb-sg-id"}


def test_listener_rules_route_each_model_path_to_its_own_target_group(shared):
    rules = {r.name: r.inputs for r in shared.of_type("aws:lb/listenerRule:ListenerRule")}
    tgs = {r.name: r for r in shared.of_type(TG)}
    for model in ("llama-1b", "qwen-7b"):
        rule = rules[f"ecs-small-{model}-route"]
        tg = tgs[f"ecs-small-{model}-tg"]
        assert rule["conditions"] == [{"pathPattern": {"values": [f"/{model}/*"]}}]
        assert rule["actions"] == [{"type": "forward", "targetGroupArn": tg.outputs["arn"]}]
        assert rule["transforms"][0]["urlRewriteConfig"]["rewrite"] == {
            "regex": f"^/{model}/(.*)$", "replace": "/$1"}
        assert rule["priority"] == hashed_priority(model)
        params = _ints({"Name": "t", "Protocol": tg.inputs["protocol"],
                        "Port": tg.inputs["port"], "VpcId": tg.inputs["vpcId"],
                        "TargetType": tg.inputs["targetType"],
                        "HealthCheckPath": tg.inputs["healthCheck"]["path"]})
        assert validate(ELBV2, "CreateTargetGroup", params) == ""
        # the policy pack still sees each shared model, on the shared instance type
        assert tg.inputs["tags"]["llm-hosting/instance-type"] == "g4dn.12xlarge"
        assert tg.inputs["tags"]["model"] == model
    assert tgs["ecs-small-llama-1b-tg"].inputs["port"] == 8000
    assert tgs["ecs-small-qwen-7b-tg"].inputs["port"] == 8001
    alb_sg = shared.one("aws:ec2/securityGroup:SecurityGroup", "ecs-lb-sg").inputs
    assert sorted(r["fromPort"] for r in alb_sg["egress"]) == [8000, 8001]


def test_one_group_one_provider_and_a_warm_pool_on_the_shared_instance_type(shared):
    groups = {g.name: g.inputs for g in shared.of_type(GROUP)}
    assert set(groups) == {"ecs-llama-8b-capacity-on-demand", "ecs-small-capacity-on-demand"}
    small = groups["ecs-small-capacity-on-demand"]
    assert small["name"] == "llm-hosting-staging-ecs-small-on-demand"
    assert small["maxSize"] == 6  # 3 replicas x 2 (deploys) / 1 task per instance
    assert small["warmPool"]["poolState"] == "Stopped"
    lt = shared.one("aws:ec2/launchTemplate:LaunchTemplate",
                    "ecs-small-capacity-on-demand-lt").inputs
    assert lt["instanceType"] == "g4dn.12xlarge"
    # root volume: 100 GiB + 1.2 x (2.3 + 14.2 GiB of checkpoints) per task, rounded up to 10
    assert lt["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 120
    tags = {t["key"]: t["value"] for t in small["tags"]}
    assert "model" not in tags and tags["llm-hosting/shared-instance"] == "small"
    providers = {cp.inputs["name"] for cp in shared.of_type(CP)}
    assert providers == {"llm-hosting-staging-llama-8b-on-demand",
                         "llm-hosting-staging-small-on-demand"}


def test_the_group_scales_together_on_every_models_signals(shared):
    (target,) = [t.inputs for t in shared.of_type("aws:appautoscaling/target:Target")
                 if t.name == "ecs-small-scaling-target"]
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 3)
    assert target["resourceId"] == "service/llm-hosting-staging/llm-hosting-staging-small"
    policies = {p.name: p.inputs for p in shared.of_type("aws:appautoscaling/policy:Policy")
                if p.name.startswith("ecs-small-")}
    assert set(policies) == {f"ecs-small-{m}-scale-{k}" for m in ("llama-1b", "qwen-7b")
                             for k in ("requests", "inflight")}
    for name, i in policies.items():
        params = _ints({
            "PolicyName": name, "ServiceNamespace": i["serviceNamespace"],
            "ResourceId": i["resourceId"], "ScalableDimension": i["scalableDimension"],
            "PolicyType": i["policyType"],
            "TargetTrackingScalingPolicyConfiguration":
                _pascal(i["targetTrackingScalingPolicyConfiguration"]),
        })
        assert validate(AAS, "PutScalingPolicy", params) == "", name
    inflight = policies["ecs-small-qwen-7b-scale-inflight"][
        "targetTrackingScalingPolicyConfiguration"]["customizedMetricSpecification"]["metrics"]
    dims = inflight[0]["metricStat"]["metric"]["dimensions"]
    assert dims == [{"name": "ServiceName", "value": "llm-hosting-staging-small"},
                    {"name": "Model", "value": "qwen-7b"}]


def test_alarms_and_dashboards_stay_per_model(shared):
    alarms = [a for a in shared.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.name.startswith("ecs-qwen-7b-monitoring")]
    assert len(alarms) == 3
    tg = shared.one(TG, "ecs-small-qwen-7b-tg").outputs["arnSuffix"]
    assert {a.inputs["dimensions"]["TargetGroup"] for a in alarms} == {tg}
    dash = shared.one("aws:cloudwatch/dashboard:Dashboard", "ecs-qwen-7b-monitoring-dashboard")
    body = json.loads(dash.inputs["dashboardBody"])
    inflight = next(w for w in body["widgets"] if w["properties"]["title"].startswith("In-fl"))
    assert inflight["properties"]["metrics"][0][2:] == [
        "ServiceName", "llm-hosting-staging-small", "Model", "qwen-7b"]
    assert set(shared.exports["endpoints"]) == {"llama-8b", "llama-1b", "qwen-7b"}
    summary = shared.exports["sharedInstances"]["small"]
    assert summary["instanceType"] == "g4dn.12xlarge" and summary["ports"] == {
        "llama-1b": 8000, "qwen-7b": 8001}
    # shared: 1..3 x $3.912; separate: llama-1b on g4dn.xlarge + qwen-7b 2 per g4dn.12xlarge
    assert (summary["hourlyUsdMin"], summary["hourlyUsdMax"]) == (3.912, 11.736)
    assert (summary["separateHourlyUsdMin"], summary["separateHourlyUsdMax"]) == (4.438, 9.402)


def test_models_outside_a_group_keep_their_resources_and_names(shared, alone):
    def single(graph: Graph) -> dict[str, Any]:
        return {r.urn: r.inputs for r in graph.resources if "llama-8b" in r.urn}

    assert single(shared) == single(alone)
    assert {r.name for r in alone.of_type(SVC)} == {
        "ecs-llama-8b-service", "ecs-llama-1b-service", "ecs-qwen-7b-service"}
    assert {r.name for r in shared.of_type(SVC)} == {"ecs-llama-8b-service", "ecs-small-service"}


# --- validation ------------------------------------------------------------------------------


def test_sse_kms_keys_reach_only_the_roles_that_read_their_weights():
    """Each model's `weightsKmsKeyArn` lands in the task role that reads its weights (the shared
    task's for a member, its own for a model alone), via S3 only; a role whose models have no
    key gets no KMS statement."""
    key_1b = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555"
    key_8b = "arn:aws:kms:us-east-1:111122223333:key/66666666-7777-8888-9999-000000000000"
    raw = shared_config()
    raw["llm-hosting:models"][0]["weightsKmsKeyArn"] = key_8b
    raw["llm-hosting:models"][1]["weightsKmsKeyArn"] = key_1b
    graph = run_program(raw, stack="staging", secret_keys=("llm-hosting:hfToken",))
    policies = {r.name: json.loads(r.inputs["policy"])
                for r in graph.of_type("aws:iam/rolePolicy:RolePolicy")}
    (decrypt,) = [s for s in policies["ecs-small-task-policy"]["Statement"]
                  if s["Action"] == "kms:Decrypt"]
    assert decrypt["Resource"] == key_1b
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
            "arn:aws:s3:::weights-bucket", "arn:aws:s3:::weights-bucket/llama-1b/*"]},
    }
    kms = {n: [s["Resource"] for s in p["Statement"] if s["Action"] == "kms:Decrypt"]
           for n, p in policies.items() if "kms:" in json.dumps(p)}
    assert kms == {"ecs-small-task-policy": [key_1b], "ecs-llama-8b-task-policy": [key_8b]}
    doc = json.loads(shared_task_role_policy(
        weights_uris=["s3://b/one", "s3://b/two"], metrics_log_group_arn="arn:aws:logs:x",
        weights_kms_keys={"s3://b/two": key_8b, "s3://elsewhere/x": key_1b},
        region="us-east-1"))
    assert [s["Resource"] for s in doc["Statement"] if s["Action"] == "kms:Decrypt"] == [key_8b]


P = "llm-hosting:ecs.sharedInstances"


def test_config_only_problems_name_the_key():
    cfg = EcsConfig.model_validate({"sharedInstances": [
        {"name": "Small", "models": ["a", "b", "a"]},
        {"name": "two", "models": ["b", "c"]},
        {"name": "two", "models": ["d"]},
        {"name": "many", "models": ["m1", "m2", "m3", "m4", "m5", "m6"]},
    ]})
    assert _ecs_problems(cfg) == [
        f"{P}[0].name: 'Small' must be a DNS-1123 label of at most 40 chars (it names the "
        "shared service and its hosts)",
        f"{P}[0].models[2]: 'a' is listed twice",
        f"{P}[1].models[0]: 'b' is already in {P}[0] ('Small'); a model runs on one shared "
        "instance at most",
        f"{P}[2].name: 'two' is also {P}[1]; shared instance names must be unique",
        f"{P}[2].models: lists 1 distinct model(s); a shared instance needs at least 2 (a "
        "single model needs no group)",
        f"{P}[3].models: lists 6 models; an ECS service registers at most 5 ALB target groups "
        "(one per model)",
    ]


def _with(groups: list[dict[str, Any]], **model_changes: dict[str, Any]) -> list[str]:
    """Problems config validation reports for these groups ([] when valid): the ECS checks
    run inside `parse_stack_config`, before any resource exists."""
    raw = copy.deepcopy(shared_config())
    raw["llm-hosting:ecs"] = {"sharedInstances": groups}
    for m in raw["llm-hosting:models"]:
        m.update(model_changes.get(m["name"].replace("-", "_"), {}))
    try:
        parse(raw)
    except ConfigError as err:
        return list(err.problems)
    return []


def test_unknown_models_and_model_names_are_rejected():
    config = _with([{"name": "llama-8b", "models": ["llama-1b", "gpt-4"]}])
    assert config == [
        f"{P}[0].name: 'llama-8b' is also a model name; shared instance names must differ from "
        "model names (they name the same kind of resources)",
        f"{P}[0].models[1]: 'gpt-4' is not a model in llm-hosting:models (models: llama-1b, "
        "llama-8b, qwen-7b)",
    ]


def test_capacity_and_replicas_must_agree_inside_a_group():
    config = _with([{"name": "small", "models": ["llama-1b", "qwen-7b"]}],
                   llama_1b={"capacity": "spot", "minReplicas": 2, "maxReplicas": 4})
    assert config == [
        f"{P}[0].models: capacity differs inside the group (llama-1b: spot, qwen-7b: on-demand); "
        "one task runs every model, so set the same capacity on each",
        f"{P}[0].models: minReplicas differs inside the group (llama-1b: 2, qwen-7b: 1); one "
        "task runs every model, so set the same minReplicas on each",
        f"{P}[0].models: maxReplicas differs inside the group (llama-1b: 4, qwen-7b: 3); one "
        "task runs every model, so set the same maxReplicas on each",
    ]


def test_gpu_sum_above_the_largest_instance_and_a_too_small_given_type():
    too_many = _with([{"name": "small", "models": ["llama-8b", "qwen-7b"]}],
                     llama_8b={"gpusPerReplica": 8, "minReplicas": 1, "maxReplicas": 3})
    assert too_many == [
        f"{P}[0].models: the group needs 10 GPUs together (llama-8b: 8, qwen-7b: 2); the largest "
        "catalog instance has 8: split the group",
    ]
    given = _with([{"name": "small", "models": ["llama-1b", "qwen-7b"],
                    "instanceType": "g6.48xlarge"}])
    assert given == []
    small = _with([{"name": "small", "models": ["llama-1b", "qwen-7b"],
                    "instanceType": "g5.xlarge"}])
    assert small == [
        f"{P}[0].instanceType: g5.xlarge has 1 GPU(s); the group needs 3 (llama-1b: 1, "
        "qwen-7b: 2); the cheapest that fits is g4dn.12xlarge",
    ]
    pinned = _with([{"name": "small", "models": ["llama-1b", "qwen-7b"]}],
                   llama_1b={"instanceType": "g5.xlarge"})
    assert pinned == [
        "llm-hosting:models[1].instanceType: llama-1b runs on shared instance 'small'; set "
        f"{P}[0].instanceType instead (or remove the model from the group)",
    ]


def test_the_program_refuses_an_invalid_group_before_building_it():
    raw = shared_config()
    raw["llm-hosting:ecs"] = {"sharedInstances": [
        {"name": "small", "models": ["llama-1b", "nope"]}]}
    with pytest.raises(ConfigError, match=r"\[0\]\.models\[1\]: 'nope' is not a model"):
        run_program(raw, stack="staging", secret_keys=("llm-hosting:hfToken",))
