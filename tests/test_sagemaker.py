"""SageMaker platform under the offline runner: one model, three packed models, secrets.

Requests are checked against botocore's SageMaker model after mapping the recorded Pulumi inputs
(camelCase, ints as floats) onto API member names, so a field SageMaker would reject fails here.
"""

from __future__ import annotations

import copy
import json
import shlex
import sys
import types
from typing import Any

import pytest
from botocore import xform_name

from components.offline import SECRET_SIG, Graph, run_program, unwrap
from tests.aws_api import request_problems, service_model
from tests.conftest import BASE_CONFIG

EC = "aws-native:sagemaker:EndpointConfig"
EP = "aws:sagemaker/endpoint:Endpoint"
MODEL = "aws:sagemaker/model:Model"
IC = "aws-native:sagemaker:InferenceComponent"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOKEN = "hf_TESTTOKENdoNotLeak123"

# --- mapping recorded inputs onto API request shapes ----------------------------------------

ROLE_ARN = "arn:aws:iam::123456789012:role/llm-hosting-sagemaker"
"""The mock invents `arn:aws:mock:...` for every ARN; a real role ARN stands in for it."""


def pascal(value: Any) -> Any:
    """camelCase keys -> PascalCase, integral floats -> int (the engine sends ints as floats)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def endpoint_config_request(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    """aws-native inputs are the API's members, camelCased; tags are already a Key/Value list."""
    request = pascal(inputs)
    request.update(EndpointConfigName=name, ExecutionRoleArn=ROLE_ARN)
    return request


def endpoint_request(inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "EndpointName": inputs["name"],
        "EndpointConfigName": inputs["endpointConfigName"],
        "DeploymentConfig": pascal(inputs["deploymentConfig"]),
        "Tags": tag_list(inputs.get("tags", {})),
    }


def inference_component_request(inputs: dict[str, Any]) -> dict[str, Any]:
    request = pascal({k: v for k, v in inputs.items() if k != "deploymentConfig"})
    return request


def ic_deployment_config(inputs: dict[str, Any]) -> dict[str, Any]:
    """UpdateInferenceComponent's DeploymentConfig (CreateInferenceComponent has none)."""
    return pascal(inputs["deploymentConfig"])


def model_request(inputs: dict[str, Any]) -> dict[str, Any]:
    container = dict(unwrap(inputs["primaryContainer"]))
    source = container.pop("modelDataSource", None)
    request_container = pascal(container)
    # Environment keys are variable names, not members: keep them as they are.
    request_container["Environment"] = container.get("environment", {})
    if source is not None:
        (s3,) = source["s3DataSources"]
        request_container["ModelDataSource"] = {"S3DataSource": pascal(s3)}
    return {
        "ModelName": "sagemaker-model-0a1b2c3",
        "ExecutionRoleArn": ROLE_ARN,
        "PrimaryContainer": request_container,
        "VpcConfig": pascal(inputs["vpcConfig"]),
        "EnableNetworkIsolation": inputs["enableNetworkIsolation"],
        "Tags": tag_list(inputs.get("tags", {})),
    }


# --- stacks under test ----------------------------------------------------------------------

ONE_MODEL: dict[str, Any] = {
    **copy.deepcopy(BASE_CONFIG),
    "aws:region": "eu-west-1",  # not us-east-1: images and ARNs must follow the stack's region
    "llm-hosting:sagemaker": {"endpointDeployment": "rolling"},
}

# Two models share a 4-GPU g5.12xlarge (4 + 2 copies per instance), one sits on its own type.
THREE_MODELS: dict[str, Any] = {
    "aws:region": "us-west-2",
    "llm-hosting:environment": "staging",
    "llm-hosting:platform": "sagemaker",
    "llm-hosting:hfToken": TOKEN,
    "llm-hosting:sagemaker": {"alarmTopicArn": "arn:aws:sns:us-west-2:123456789012:oncall"},
    "llm-hosting:models": [
        {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct", "engine": "vllm",
         "instanceType": "g5.12xlarge", "minReplicas": 2, "maxReplicas": 4,
         "weightsUri": "s3://weights-bucket/llama-3.1-8b"},
        {"name": "mistral-7b", "modelId": "mistralai/Mistral-7B-Instruct-v0.3", "engine": "tgi",
         "instanceType": "g5.12xlarge", "gpusPerReplica": 2, "minReplicas": 1,
         "maxReplicas": 1},
        {"name": "qwen-14b", "modelId": "Qwen/Qwen2.5-14B-Instruct", "engine": "vllm",
         "quantization": "fp8", "instanceType": "g6e.xlarge", "minReplicas": 0,
         "maxReplicas": 2, "weightsUri": "s3://other-bucket/qwen/14b/"},
    ],
}


@pytest.fixture(scope="module")
def one() -> Graph:
    return run_program(copy.deepcopy(ONE_MODEL), stack="dev")


@pytest.fixture(scope="module")
def three() -> Graph:
    return run_program(copy.deepcopy(THREE_MODELS), stack="staging",
                       secret_keys=("llm-hosting:hfToken",))


def by_name(graph: Graph, type_: str) -> dict[str, Any]:
    return {r.name: r for r in graph.of_type(type_)}


# --- one model ------------------------------------------------------------------------------


def test_one_model_builds_one_endpoint_one_variant_one_component(one):
    assert len(one.of_type(EC)) == len(one.of_type(EP)) == 1
    assert len(one.of_type(MODEL)) == len(one.of_type(IC)) == 1
    (variant,) = one.one(EC).inputs["productionVariants"]
    assert "modelName" not in variant  # inference-component mode
    assert variant["variantName"] == "g6-xlarge" and variant["instanceType"] == "ml.g6.xlarge"
    assert variant["managedInstanceScaling"] == {
        "status": "ENABLED", "minInstanceCount": 1, "maxInstanceCount": 2}
    assert variant["routingConfig"] == {"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert variant["containerStartupHealthCheckTimeoutInSeconds"] >= 600
    assert variant["modelDataDownloadTimeoutInSeconds"] >= 600


def test_endpoint_config_and_endpoint_are_valid_sagemaker_requests(one):
    config = one.one(EC)
    request = endpoint_config_request(config.inputs, config.outputs["endpointConfigName"])
    assert request_problems("sagemaker", "CreateEndpointConfig", request) == []
    role = one.one("aws:iam/role:Role", "sagemaker-role-role")
    assert config.inputs["executionRoleArn"] == role.outputs["arn"]
    endpoint = one.one(EP)
    assert request_problems("sagemaker", "CreateEndpoint", endpoint_request(endpoint.inputs)) == []
    assert endpoint.inputs["endpointConfigName"] == config.outputs["endpointConfigName"]


def test_endpoint_config_places_the_instances_in_the_private_subnets_isolated(one):
    """In inference-component mode VPC placement and network isolation are endpoint-level
    (CreateEndpointConfig `VpcConfig`/`EnableNetworkIsolation`); on the model alone they would
    not place the instances in the VPC."""
    config = one.one(EC).inputs
    sg = next(r for r in one.of_type("aws:ec2/securityGroup:SecurityGroup")
              if r.name == "sagemaker-endpoint-sg")
    assert config["vpcConfig"] == {"subnets": ["subnet-private-0", "subnet-private-1"],
                                   "securityGroupIds": [f"{sg.name}-id"]}
    assert config["enableNetworkIsolation"] is True  # S3 weights only: no outbound network


def test_inference_component_is_a_valid_request_sized_from_sizing(one):
    ic = one.one(IC)
    assert request_problems("sagemaker", "CreateInferenceComponent",
                            inference_component_request(ic.inputs)) == []
    update = {"InferenceComponentName": ic.inputs["inferenceComponentName"],
              "DeploymentConfig": ic_deployment_config(ic.inputs)}
    assert request_problems("sagemaker", "UpdateInferenceComponent", update) == []
    spec = ic.inputs["specification"]
    assert spec["modelName"] == one.one(MODEL).outputs["name"]
    needs = spec["computeResourceRequirements"]
    assert needs["numberOfAcceleratorDevicesRequired"] == 1
    # g6.xlarge: 16 GiB host memory, 2 GiB kept back, one GPU -> the whole 14 GiB.
    assert needs["minMemoryRequiredInMb"] == 16384 - 2048
    assert ic.inputs["runtimeConfig"] == {"copyCount": 1}
    assert ic.inputs["variantName"] == "g6-xlarge"
    assert ic.inputs["endpointName"] == one.one(EP).inputs["name"]


def test_model_is_a_valid_request_with_s3_weights_and_network_isolation(one):
    model = one.one(MODEL)
    assert request_problems("sagemaker", "CreateModel", model_request(model.inputs)) == []
    container = model.inputs["primaryContainer"]
    assert container["image"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128")
    assert container["modelDataSource"]["s3DataSources"] == [{
        "s3Uri": "s3://weights-bucket/llama-3-8b/", "s3DataType": "S3Prefix",
        "compressionType": "None"}]
    assert container["environment"]["HF_MODEL_ID"] == "/opt/ml/model"
    assert "HF_TOKEN" not in container["environment"]
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["vpcConfig"]["subnets"] == ["subnet-private-0", "subnet-private-1"]
    sg = next(r for r in one.of_type("aws:ec2/securityGroup:SecurityGroup")
              if r.name == "sagemaker-endpoint-sg")
    assert model.inputs["vpcConfig"]["securityGroupIds"] == [f"{sg.name}-id"]


def test_security_group_has_no_ingress_and_no_internet_egress_without_hub_models(one):
    sg = next(r for r in one.of_type("aws:ec2/securityGroup:SecurityGroup")
              if r.name == "sagemaker-endpoint-sg")
    assert not sg.inputs.get("ingress")
    assert all((e["fromPort"], e["toPort"]) == (443, 443) for e in sg.inputs["egress"])
    assert all("0.0.0.0/0" not in e.get("cidrBlocks", []) for e in sg.inputs["egress"])
    assert any(e.get("prefixListIds") == ["pl-63a5400a"] for e in sg.inputs["egress"])


def test_single_variant_endpoint_rolls_and_rolls_back_on_the_variant_alarms(one):
    deployment = one.one(EP).inputs["deploymentConfig"]
    assert deployment["rollingUpdatePolicy"]["maximumBatchSize"] == {
        "type": "CAPACITY_PERCENT", "value": 25}
    assert "blueGreenUpdatePolicy" not in deployment
    names = {a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]}
    alarms = {a.inputs["name"]: a.inputs for a in one.of_type(ALARM)}
    assert names == {"llm-hosting-dev-g6-xlarge-5xx", "llm-hosting-dev-g6-xlarge-latency-p90"}
    assert names <= set(alarms)
    assert alarms["llm-hosting-dev-g6-xlarge-latency-p90"]["extendedStatistic"] == "p90"
    assert alarms["llm-hosting-dev-g6-xlarge-5xx"]["dimensions"] == {
        "EndpointName": "llm-hosting-dev-endpoint", "VariantName": "g6-xlarge"}


def test_component_rolls_one_copy_at_a_time_and_rolls_back_on_its_alarms(one):
    deployment = one.one(IC).inputs["deploymentConfig"]
    policy = deployment["rollingUpdatePolicy"]
    assert policy["maximumBatchSize"] == {"type": "COPY_COUNT", "value": 1}
    names = [a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]]
    assert names == ["llm-hosting-dev-llama-8b-5xx", "llm-hosting-dev-llama-8b-latency-p90",
                     "llm-hosting-dev-llama-8b-zero-copies"]
    zero = next(a.inputs for a in one.of_type(ALARM)
                if a.inputs["name"] == "llm-hosting-dev-llama-8b-zero-copies")
    assert zero["treatMissingData"] == "breaching" and zero["statistic"] == "SampleCount"
    assert zero["dimensions"] == {"InferenceComponentName": "llm-hosting-dev-llama-8b"}
    gpu = next(a.inputs for a in one.of_type(ALARM)
               if a.inputs["name"] == "llm-hosting-dev-llama-8b-gpu-memory")
    assert gpu["metricName"] == "GPUMemoryUtilizationNormalized"


def test_copy_autoscaling_tracks_concurrency_per_copy(one):
    target = one.one(TARGET).inputs
    assert target["resourceId"] == "inference-component/llm-hosting-dev-llama-8b"
    assert target["scalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 2)
    (policy,) = one.of_type(POLICY)
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")
    assert tracking["targetValue"] == 4  # concurrencyTarget default


def _policy(graph: Graph, name: str) -> dict[str, dict[str, Any]]:
    """The statements of RolePolicy `name`, by Sid."""
    body = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
    return {s["Sid"]: s for s in body["Statement"]}


def test_execution_role_is_least_privilege(one):
    role = one.one("aws:iam/role:Role", "sagemaker-role-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    for policy in ("sagemaker-role-policy", "sagemaker-llama-8b-policy"):
        statements = _policy(one, policy)
        for s in statements.values():
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions)
        assert statements["PullServingImages"]["Resource"] == [
            "arn:aws:ecr:eu-west-1:763104351884:repository/djl-inference"]
        wildcard = {sid for sid, s in statements.items() if s["Resource"] == "*"}
        assert wildcard == {"EcrAuth", "PutMetrics", "DescribeVpc"}
    model = _policy(one, "sagemaker-llama-8b-policy")
    assert model["ReadWeights0"]["Resource"] == ["arn:aws:s3:::weights-bucket/llama-3-8b/*"]
    assert model["ListWeights0"]["Condition"] == {
        "StringLike": {"s3:prefix": ["llama-3-8b/*"]}}


def test_eni_permissions_are_split_by_resource_type_as_aws_documents(one):
    """CreateNetworkInterface's new `network-interface` carries no `ec2:Vpc` in AWS's
    authorization data, so `ArnEquals ec2:Vpc` on `*` denied every endpoint: the interface is
    granted unconditioned, the subnet and security group it goes into only in this VPC."""
    ec2 = "arn:aws:ec2:eu-west-1:123456789012"
    vpc = {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/vpc-0mock"}}
    for policy in ("sagemaker-role-policy", "sagemaker-llama-8b-policy"):
        statements = _policy(one, policy)
        assert statements["CreateEnis"] == {
            "Sid": "CreateEnis", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
            "Resource": f"{ec2}:network-interface/*"}
        assert statements["CreateEnisInThisVpc"]["Action"] == "ec2:CreateNetworkInterface"
        assert statements["CreateEnisInThisVpc"]["Resource"] == [
            f"{ec2}:subnet/*", f"{ec2}:security-group/*"]
        assert statements["CreateEnisInThisVpc"]["Condition"] == vpc
        assert statements["ManageEnisInThisVpc"]["Resource"] == f"{ec2}:network-interface/*"
        assert statements["ManageEnisInThisVpc"]["Condition"] == vpc
        assert "ec2:CreateNetworkInterface" not in statements["ManageEnisInThisVpc"]["Action"]


def test_each_model_has_its_own_role_reading_only_its_weights(three):
    """One identity per model: a Model's execution role is the one SageMaker uses for its
    artifacts (CreateModel API reference); the endpoint role reads no weights at all."""
    models = {m.name.removeprefix("sagemaker-").removesuffix("-model"): m
              for m in three.of_type("aws:sagemaker/model:Model")}
    roles = {r.name: r for r in three.of_type("aws:iam/role:Role")
             if "sagemaker" in r.name and "gateway" not in r.name}  # the gateway's: its own test
    assert set(roles) == {"sagemaker-role-role", "sagemaker-llama-8b-role",
                          "sagemaker-mistral-7b-role", "sagemaker-qwen-14b-role"}
    for name, model in models.items():
        assert model.inputs["executionRoleArn"] == roles[f"sagemaker-{name}-role"].outputs["arn"]
    reads = {name: sorted(r for sid, s in _policy(three, f"sagemaker-{name}-policy").items()
                          if sid.startswith(("ReadWeights", "ListWeights"))
                          for r in (s["Resource"] if isinstance(s["Resource"], list)
                                    else [s["Resource"]]))
             for name in models}
    assert reads == {
        "llama-8b": ["arn:aws:s3:::weights-bucket", "arn:aws:s3:::weights-bucket/llama-3.1-8b/*"],
        "mistral-7b": [],  # from the Hub: no S3 read at all
        "qwen-14b": ["arn:aws:s3:::other-bucket", "arn:aws:s3:::other-bucket/qwen/14b/*"],
    }
    endpoint = _policy(three, "sagemaker-role-policy")
    assert not [sid for sid in endpoint if "Weights" in sid]


def test_inference_components_use_the_stacks_aws_native_provider_in_the_stack_region(one):
    (native,) = [r for r in one.resources if r.type == "pulumi:providers:aws-native"]
    assert native.inputs["region"] == "eu-west-1"
    assert json.loads(native.inputs["defaultTags"])["tags"]["project"] == "llm-hosting"
    assert one.one(IC).provider.startswith(native.urn)
    for r in one.resources:
        if r.custom and r.type.startswith("aws:"):
            assert "pulumi:providers:aws::aws::" in r.provider, r.name


def test_every_taggable_resource_is_tagged(one):
    tagged = [EP, MODEL, TARGET, ALARM, "aws:iam/role:Role",
              "aws:ec2/securityGroup:SecurityGroup"]
    for type_ in tagged:
        for r in one.of_type(type_):
            assert r.inputs["tags"]["stack"] == "dev", r.name
    config_tags = {t["key"]: t["value"] for t in one.one(EC).inputs["tags"]}
    assert config_tags["stack"] == "dev"
    ic_tags = {t["key"]: t["value"] for t in one.one(IC).inputs["tags"]}
    assert ic_tags["model"] == "llama-8b" and ic_tags["llm-hosting/platform"] == "sagemaker"


#: Operations the AWS CLI deletes from its command table (awscli/customizations/removals.py):
#: every event-stream operation, this one included, so no CLI command can stream.
CLI_REMOVED = {("sagemaker-runtime", "invoke-endpoint-with-response-stream")}
CLI_GLOBAL_OPTIONS = {"--region", "--cli-binary-format"}


def cli_request(command: str) -> tuple[str, str, dict[str, Any]]:
    """(service, operation, API request) of an `aws` command line, via botocore's model."""
    aws, service, verb, *rest = shlex.split(command)
    assert aws == "aws" and (service, verb) not in CLI_REMOVED
    operation = {xform_name(op, "-"): op
                 for op in service_model(service).operation_names}[verb]
    members = {xform_name(m, "-"): m
               for m in service_model(service).operation_model(operation).input_shape.members}
    request: dict[str, Any] = {}
    positional = []
    while rest:
        token = rest.pop(0)
        if not token.startswith("--"):
            positional.append(token)
        elif token in CLI_GLOBAL_OPTIONS:
            rest.pop(0)
        else:
            request[members[token[2:]]] = rest.pop(0)
    assert positional == ["/dev/stdout"]  # invoke-endpoint's required outfile
    return service, operation, request


def test_outputs_name_the_endpoint_and_components_and_an_invoke_command_that_runs(one):
    exports = one.exports
    assert exports["endpointName"] == "llm-hosting-dev-endpoint"
    assert exports["inferenceComponentNames"] == {"llama-8b": "llm-hosting-dev-llama-8b"}
    service, operation, request = cli_request(exports["invokeCommands"]["llama-8b"])
    assert (service, operation) == ("sagemaker-runtime", "InvokeEndpoint")
    assert request_problems(service, operation, {**request, "Body": request["Body"].encode()}
                            ) == []
    assert request["EndpointName"] == "llm-hosting-dev-endpoint"
    assert request["InferenceComponentName"] == "llm-hosting-dev-llama-8b"
    assert json.loads(request["Body"])["messages"][0]["role"] == "user"


def test_stream_command_streams_through_boto3_with_a_valid_request(one, monkeypatch, capsys):
    argv = shlex.split(one.exports["streamCommands"]["llama-8b"])
    assert argv[:2] == ["python3", "-c"]
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    class Client:
        def invoke_endpoint_with_response_stream(self, **params: Any) -> dict[str, Any]:
            calls.append((self.service, self.kwargs, params))
            return {"Body": [{"PayloadPart": {"Bytes": b"GPUs "}},
                             {"PayloadPart": {"Bytes": b"hum"}}]}

    def client(service: str, **kwargs: Any) -> Client:
        c = Client()
        c.service, c.kwargs = service, kwargs
        return c

    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=client))
    monkeypatch.setattr(sys, "argv", ["-c", *argv[3:]])
    exec(compile(argv[2], "<stream command>", "exec"), {})
    ((service, kwargs, params),) = calls
    assert (service, kwargs) == ("sagemaker-runtime", {"region_name": "eu-west-1"})
    assert request_problems("sagemaker-runtime", "InvokeEndpointWithResponseStream",
                            {**params, "Body": params["Body"].encode()}) == []
    assert params["InferenceComponentName"] == "llm-hosting-dev-llama-8b"
    assert json.loads(params["Body"])["stream"] is True
    assert capsys.readouterr().out == "GPUs hum"


def test_dashboard_shows_latency_percentiles_gpu_and_copies_vs_instances(one):
    body = json.loads(one.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    names = {m[1] for m in metrics}
    assert {"Invocations", "ModelLatency", "GPUUtilizationNormalized",
            "GPUMemoryUtilizationNormalized", "ConcurrentRequestsPerCopy"} <= names
    stats = {m[-1].get("stat") for m in metrics if m[1] == "ModelLatency"}
    assert stats == {"p50", "p90", "p99"}
    assert any(m[1] == "CPUUtilization" and "g6-xlarge" in m for m in metrics)
    assert all(w["properties"]["region"] == "eu-west-1" for w in body["widgets"])


# --- three models ---------------------------------------------------------------------------


def test_models_on_one_instance_type_share_a_variant_packed_as_sizing_says(three):
    variants = {v["variantName"]: v for v in three.one(EC).inputs["productionVariants"]}
    assert set(variants) == {"g5-12xlarge", "g6e-xlarge"}
    shared = variants["g5-12xlarge"]["managedInstanceScaling"]
    # min: 2 x 1-GPU + 1 x 2-GPU copies = 4 GPUs = 1 instance; max: 4 x 1 + 1 x 2 = 6 GPUs = 2.
    assert (shared["minInstanceCount"], shared["maxInstanceCount"]) == (1, 2)
    alone = variants["g6e-xlarge"]
    assert alone["managedInstanceScaling"]["minInstanceCount"] == 0  # scales to zero
    assert alone["initialInstanceCount"] == 1
    request = endpoint_config_request(three.one(EC).inputs,
                                      three.one(EC).outputs["endpointConfigName"])
    assert request_problems("sagemaker", "CreateEndpointConfig", request) == []


def test_each_component_names_its_variant_and_reserves_its_share(three):
    ics = {r.inputs["inferenceComponentName"]: r.inputs for r in three.of_type(IC)}
    assert set(ics) == {"llm-hosting-staging-llama-8b", "llm-hosting-staging-mistral-7b",
                        "llm-hosting-staging-qwen-14b"}
    for inputs in ics.values():
        assert request_problems("sagemaker", "CreateInferenceComponent",
                                inference_component_request(inputs)) == []
    llama, mistral = ics["llm-hosting-staging-llama-8b"], ics["llm-hosting-staging-mistral-7b"]
    assert llama["variantName"] == mistral["variantName"] == "g5-12xlarge"
    assert ics["llm-hosting-staging-qwen-14b"]["variantName"] == "g6e-xlarge"
    # g5.12xlarge: 4 GPUs, 192 GiB host, 10% kept back -> 176,947 MiB usable, a quarter per GPU.
    llama_needs = llama["specification"]["computeResourceRequirements"]
    mistral_needs = mistral["specification"]["computeResourceRequirements"]
    assert llama_needs["numberOfAcceleratorDevicesRequired"] == 1
    assert mistral_needs["numberOfAcceleratorDevicesRequired"] == 2
    assert llama_needs["minMemoryRequiredInMb"] == 176947 // 4
    assert mistral_needs["minMemoryRequiredInMb"] == 176947 * 2 // 4
    assert llama["runtimeConfig"] == {"copyCount": 2}


def test_tgi_model_from_the_hub_gets_the_token_only_as_a_secret(three):
    models = by_name(three, MODEL)
    mistral = models["sagemaker-mistral-7b-model"].inputs
    # The token makes the whole container definition a secret: wrapped, never plain.
    assert mistral["primaryContainer"]["4dabf18193072939515e22adb298388d"] == SECRET_SIG
    container = unwrap(mistral["primaryContainer"])
    plain = container["environment"]
    assert plain["HF_TOKEN"] == TOKEN and plain["HF_MODEL_ID"] == (
        "mistralai/Mistral-7B-Instruct-v0.3")
    assert plain["SM_NUM_GPUS"] == "2" and plain["MAX_TOTAL_TOKENS"] == "4096"
    assert container["image"].startswith(
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-pytorch-tgi-inference:")
    # It must reach the Hub, and isolation is endpoint-wide: no container on this endpoint
    # is isolated (the security group still limits egress to HTTPS).
    assert mistral["enableNetworkIsolation"] is False
    assert models["sagemaker-llama-8b-model"].inputs["enableNetworkIsolation"] is False
    assert three.one(EC).inputs["enableNetworkIsolation"] is False
    llama = models["sagemaker-llama-8b-model"].inputs["primaryContainer"]["environment"]
    assert "HF_TOKEN" not in unwrap(llama)  # S3 weights need no token
    assert request_problems("sagemaker", "CreateModel", model_request(mistral)) == []


def _strip_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return "<secret>"
        return {k: _strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secrets(v) for v in value]
    return value


def test_no_recorded_input_or_output_holds_the_token_in_plaintext(three):
    assert any(TOKEN in json.dumps(unwrap(r.inputs)) for r in three.resources)  # it is there
    for r in three.resources:
        assert TOKEN not in json.dumps(_strip_secrets(r.inputs)), r.name
    assert TOKEN not in json.dumps(three.exports)


def test_hub_egress_opens_https_to_the_internet_only_then(three):
    sg = by_name(three, "aws:ec2/securityGroup:SecurityGroup")["sagemaker-endpoint-sg"]
    internet = [e for e in sg.inputs["egress"] if e.get("cidrBlocks") == ["0.0.0.0/0"]]
    assert [(e["fromPort"], e["protocol"]) for e in internet] == [(443, "tcp")]


def test_scale_to_zero_model_gets_the_wake_up_step_policy_and_alarm(three):
    policies = by_name(three, POLICY)
    wake = policies["sagemaker-qwen-14b-scaling-wake-from-zero"].inputs
    step = wake["stepScalingPolicyConfiguration"]
    assert step["adjustmentType"] == "ChangeInCapacity"
    assert step["stepAdjustments"] == [{"metricIntervalLowerBound": "0", "scalingAdjustment": 1}]
    alarm = by_name(three, ALARM)["sagemaker-qwen-14b-scaling-no-capacity"]
    assert alarm.inputs["metricName"] == "NoCapacityInvocationFailures"
    assert alarm.inputs["dimensions"] == {"InferenceComponentName":
                                          "llm-hosting-staging-qwen-14b"}
    assert alarm.inputs["alarmActions"] == [
        by_name(three, POLICY)["sagemaker-qwen-14b-scaling-wake-from-zero"].outputs["arn"]]
    targets = {r.inputs["resourceId"]: r.inputs for r in three.of_type(TARGET)}
    assert targets["inference-component/llm-hosting-staging-qwen-14b"]["minCapacity"] == 0
    # Models that keep copies get no wake-up machinery, and no zero-copies alarm is skipped.
    assert "sagemaker-llama-8b-scaling-wake-from-zero" not in policies
    names = {a.inputs["name"] for a in three.of_type(ALARM)}
    assert "llm-hosting-staging-qwen-14b-zero-copies" not in names
    assert "llm-hosting-staging-llama-8b-zero-copies" in names


def test_multi_variant_endpoint_deploys_blue_green_and_alarms_notify(three):
    deployment = three.one(EP).inputs["deploymentConfig"]
    routing = deployment["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY" and routing["canarySize"] == {
        "type": "CAPACITY_PERCENT", "value": 10}
    assert "rollingUpdatePolicy" not in deployment
    assert request_problems("sagemaker", "CreateEndpoint", endpoint_request(three.one(EP).inputs)
                            ) == []
    for alarm in three.of_type(ALARM):
        # Wake-from-zero alarms act on the scaling policy (SageMaker's own and the gateway's).
        if alarm.inputs.get("metricName") not in ("NoCapacityInvocationFailures",
                                                  "RequestsWaiting"):
            assert alarm.inputs["alarmActions"] == [
                "arn:aws:sns:us-west-2:123456789012:oncall"], alarm.name


def test_roles_pull_only_the_dlcs_their_models_run(three):
    endpoint = _policy(three, "sagemaker-role-policy")
    assert endpoint["PullServingImages"]["Resource"] == [
        "arn:aws:ecr:us-west-2:763104351884:repository/djl-inference",
        "arn:aws:ecr:us-west-2:763104351884:repository/huggingface-pytorch-tgi-inference",
    ]
    assert _policy(three, "sagemaker-mistral-7b-policy")["PullServingImages"]["Resource"] == [
        "arn:aws:ecr:us-west-2:763104351884:repository/huggingface-pytorch-tgi-inference"]
    assert _policy(three, "sagemaker-qwen-14b-policy")["PullServingImages"]["Resource"] == [
        "arn:aws:ecr:us-west-2:763104351884:repository/djl-inference"]


def scaling_requests(graph: Graph) -> list[tuple[str, str, dict[str, Any]]]:
    """Targets, policies and alarms as Application Auto Scaling / CloudWatch API requests."""
    requests = []
    for r in graph.of_type(TARGET):
        request = pascal({k: v for k, v in r.inputs.items() if k != "tags"})
        requests.append(("application-autoscaling", "RegisterScalableTarget",
                         {**request, "Tags": r.inputs["tags"]}))
    for r in graph.of_type(POLICY):
        request = pascal({**r.inputs, "policyName": r.name})
        for step in request.get("StepScalingPolicyConfiguration", {}).get("StepAdjustments", []):
            step["MetricIntervalLowerBound"] = float(step["MetricIntervalLowerBound"])
        requests.append(("application-autoscaling", "PutScalingPolicy", request))
    for r in graph.of_type(ALARM):
        inputs = dict(r.inputs)
        dimensions, tags = inputs.pop("dimensions"), inputs.pop("tags")
        request = pascal({k: v for k, v in inputs.items() if k not in ("name", "okActions")})
        request.update(AlarmName=inputs["name"], OKActions=inputs.get("okActions", []),
                       Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                       Tags=tag_list(tags))
        request["Threshold"] = float(request["Threshold"])
        # The mock invents `arn:aws:mock:...` for the wake-up policy's ARN.
        request["AlarmActions"] = [a if a.startswith("arn:aws:sns:") else ROLE_ARN
                                   for a in request["AlarmActions"]]
        requests.append(("cloudwatch", "PutMetricAlarm", request))
    return requests


def test_autoscaling_and_alarms_are_valid_api_requests(three):
    """Scalable dimension, predefined metric type, statistics, comparison operators: every enum
    comes from the published API models, so a misspelt name fails here."""
    requests = scaling_requests(three)
    assert {op for _, op, _ in requests} == {"RegisterScalableTarget", "PutScalingPolicy",
                                             "PutMetricAlarm"}
    for service, operation, request in requests:
        assert request_problems(service, operation, request) == [], (operation, request)


def test_data_capture_when_on_is_encrypted_and_a_valid_request():
    raw = copy.deepcopy(ONE_MODEL)
    raw["llm-hosting:sagemaker"] = {"dataCapturePercent": 20,
                                    "dataCaptureS3Uri": "s3://capture-bucket/llama"}
    graph = run_program(raw, stack="dev")
    config = graph.one(EC)
    capture = config.inputs["dataCaptureConfig"]
    key = graph.one("aws:kms/key:Key", "sagemaker-endpoint-key")
    assert capture["kmsKeyId"] == key.outputs["arn"] and key.inputs["enableKeyRotation"] is True
    assert capture["destinationS3Uri"] == "s3://capture-bucket/llama"
    assert "kmsKeyId" not in config.inputs  # g6 has NVMe instance storage: no volume key
    request = endpoint_config_request(config.inputs, config.outputs["endpointConfigName"])
    assert request_problems("sagemaker", "CreateEndpointConfig", request) == []


WEIGHTS_KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_sse_kms_weights_key_is_decryptable_through_s3_only(one):
    """With `weightsKmsKeyArn` the execution role may decrypt with exactly that key, only when S3
    in the stack's region asks for the weights bucket; without it, no KMS grant at all."""
    raw = copy.deepcopy(ONE_MODEL)
    raw["llm-hosting:models"][0]["weightsKmsKeyArn"] = WEIGHTS_KEY
    graph = run_program(raw, stack="dev")
    policy = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", "sagemaker-llama-8b-policy")
                        .inputs["policy"])
    (decrypt,) = [s for s in policy["Statement"] if s["Sid"] == "DecryptWeights"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == WEIGHTS_KEY
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
            "arn:aws:s3:::weights-bucket", "arn:aws:s3:::weights-bucket/llama-3-8b/*"]},
    }
    for name in ("sagemaker-role-policy", "sagemaker-llama-8b-policy"):
        unset = json.loads(one.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
        assert not [s for s in unset["Statement"] if "kms:" in json.dumps(s["Action"])]
    endpoint = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", "sagemaker-role-policy")
                          .inputs["policy"])
    assert not [s for s in endpoint["Statement"] if "kms:" in json.dumps(s["Action"])]


def test_data_capture_can_write_as_the_execution_role():
    """SageMaker writes captured requests as the execution role, SSE-KMS with the endpoint key:
    the role may put objects under the capture prefix only, and the key lets the role use it."""
    raw = copy.deepcopy(ONE_MODEL)
    raw["llm-hosting:sagemaker"] = {"dataCapturePercent": 20,
                                    "dataCaptureS3Uri": "s3://capture-bucket/llama/"}
    graph = run_program(raw, stack="dev")
    role = graph.one("aws:iam/role:Role", "sagemaker-role-role")
    policy = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", "sagemaker-role-policy")
                        .inputs["policy"])
    (write,) = [s for s in policy["Statement"] if s["Sid"] == "WriteDataCapture"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == "arn:aws:s3:::capture-bucket/llama/*"
    key_policy = json.loads(graph.one("aws:kms/key:Key", "sagemaker-endpoint-key")
                            .inputs["policy"])
    (use,) = [s for s in key_policy["Statement"] if s["Sid"] == "ExecutionRoleUse"]
    assert use["Principal"] == {"AWS": role.outputs["arn"]}
    assert "kms:GenerateDataKey*" in use["Action"] and "kms:*" not in use["Action"]
    off = run_program(copy.deepcopy(ONE_MODEL), stack="dev")
    statements = json.loads(off.one("aws:iam/rolePolicy:RolePolicy", "sagemaker-role-policy")
                            .inputs["policy"])["Statement"]
    assert not [s for s in statements if s["Sid"] == "WriteDataCapture"]


# --- log groups: created first, encrypted, retained, protected in prod ----------------------

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.fixture(scope="module")
def prod() -> Graph:
    return run_program({**copy.deepcopy(ONE_MODEL), "llm-hosting:environment": "prod",
                        "llm-hosting:sagemaker": {}}, stack="prod")


@pytest.mark.parametrize(("which", "days", "protected"),
                         [("one", 30, False), ("three", 90, False), ("prod", 365, True)])
def test_endpoint_and_component_log_groups_exist_encrypted_before_sagemaker_writes(
        which, days, protected, request):
    """SageMaker creates a missing group itself, unencrypted and never expiring; the program
    creates `/aws/sagemaker/Endpoints/<endpoint>` and `/aws/sagemaker/InferenceComponents/<ic>`
    first, with the endpoint's logs key and the environment's retention."""
    graph: Graph = request.getfixturevalue(which)
    endpoint = graph.one(EP)
    key = graph.one("aws:kms/key:Key", "sagemaker-logs-key")
    groups = {g.inputs["name"]: g for g in graph.of_type(LOG_GROUP)
              if g.inputs["name"].startswith("/aws/sagemaker/")}
    components = {ic.inputs["inferenceComponentName"]: ic for ic in graph.of_type(IC)}
    assert set(groups) == {f"/aws/sagemaker/Endpoints/{endpoint.inputs['name']}"} | {
        f"/aws/sagemaker/InferenceComponents/{name}" for name in components}
    for name, group in groups.items():
        assert group.inputs["kmsKeyId"] == key.outputs["arn"], name
        assert group.inputs["retentionInDays"] == days, name
        assert group.protect is protected and key.protect is protected
        assert request_problems("logs", "CreateLogGroup", {
            "logGroupName": name, "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
            "tags": group.inputs["tags"]}) == [], name
    # the endpoint and each component wait for their own group
    assert groups[f"/aws/sagemaker/Endpoints/{endpoint.inputs['name']}"].urn in \
        endpoint.dependencies
    for name, ic in components.items():
        assert groups[f"/aws/sagemaker/InferenceComponents/{name}"].urn in ic.dependencies


def test_logs_key_lets_cloudwatch_logs_use_it_for_exactly_these_log_groups(three):
    key = three.one("aws:kms/key:Key", "sagemaker-logs-key")
    policy = json.loads(key.inputs["policy"])
    admin, logs = policy["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert logs["Principal"] == {"Service": "logs.us-west-2.amazonaws.com"}
    assert "kms:*" not in logs["Action"] and "kms:GenerateDataKey*" in logs["Action"]
    names = sorted(g.inputs["name"] for g in three.of_type(LOG_GROUP)
                   if g.inputs["name"].startswith("/aws/sagemaker/"))
    (operator,) = logs["Condition"]
    assert operator == "ArnLike"  # the operator AWS documents for this key
    assert sorted(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]) == [
        f"arn:aws:logs:us-west-2:123456789012:log-group:{n}" for n in names]
    assert len(names) == 4  # the endpoint + three components
