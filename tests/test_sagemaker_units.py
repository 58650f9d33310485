"""SageMaker platform, pure parts: packing, validation messages, containers, images, IAM, API
shape checks. No Pulumi program runs here except where a test says so."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from components.config import ConfigError, StackConfig
from components.facts.images import SAGEMAKER_IMAGES
from components.offline import RecordingMocks, run_program
from components.platforms import parse_config
from components.sagemaker.api import sagemaker_instance_types
from components.sagemaker.containers import (
    MAX_STARTUP_SECONDS,
    engine_environment,
    startup_timeouts,
)
from components.sagemaker.endpoint import volume_kms_allowed
from components.sagemaker.iam import execution_policy
from components.sagemaker.packing import instances_needed, plan_variants
from components.sagemaker.validation import sagemaker_problems
from components.startup import estimate_for_model
from tests.aws_api import request_problems

BASE: dict[str, Any] = {
    "aws:region": "us-east-1",
    "llm-hosting:environment": "dev",
    "llm-hosting:platform": "sagemaker",
    "llm-hosting:models": [
        {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
         "instanceType": "g5.12xlarge", "minReplicas": 1, "maxReplicas": 8,
         "weightsUri": "s3://weights-bucket/llama-3.1-8b"},
    ],
}


def parse(raw: dict[str, Any] | None = None, **overrides: Any) -> StackConfig:
    data = copy.deepcopy(raw or BASE)
    data.update({f"llm-hosting:{k}": v for k, v in overrides.items()})
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return parse_config(encoded, project="llm-hosting", stack="dev")


def with_instance(config: StackConfig, **changes: Any) -> StackConfig:
    models = tuple(dataclasses.replace(m, instance=dataclasses.replace(m.instance, **changes))
                   for m in config.models)
    return dataclasses.replace(config, models=models)


# --- packing --------------------------------------------------------------------------------


def test_copies_per_instance_follow_gpus_per_instance_over_gpus_per_replica():
    config = parse(models=[
        {"name": "a", "modelId": "meta-llama/Llama-3.1-8B-Instruct",
         "instanceType": "g5.48xlarge", "gpusPerReplica": 1, "maxReplicas": 9,
         "weightsUri": "s3://weights-bucket/llama"},
        {"name": "b", "modelId": "Qwen/Qwen2.5-14B-Instruct",
         "instanceType": "g5.48xlarge", "gpusPerReplica": 2, "maxReplicas": 3},
    ])
    (plan,) = plan_variants(config)
    assert [p.copies_per_instance for p in plan.placements] == [8, 4]
    # max: 9 x 1 + 3 x 2 = 15 GPUs on 8-GPU instances -> 2; min: 1 + 2 = 3 GPUs -> 1.
    assert (plan.min_instances, plan.max_instances) == (1, 2)


def test_host_memory_limits_copies_when_it_binds():
    config = parse()
    # A 4-GPU instance with only 24 GiB of host memory: 20,480 MiB usable, 8,865 MiB a copy.
    (plan,) = plan_variants(with_instance(config, memory_mib=24 * 1024))
    (placement,) = plan.placements
    assert placement.host_need_mib == 4096 + 4769
    assert placement.copies_per_instance == 2
    assert instances_needed(plan.placements, "max", plan.instance) == 4  # 8 copies, 2 each


def test_scale_to_zero_variant_starts_with_one_instance_and_may_reach_zero():
    config = parse(models=[{**BASE["llm-hosting:models"][0], "minReplicas": 0}])
    (plan,) = plan_variants(config)
    assert plan.min_instances == 0 and plan.initial_instances == 1
    assert plan.placements[0].scales_to_zero


# --- validation: bad input fails with key paths and numbers -------------------------------


def test_valid_stack_has_no_problems():
    assert sagemaker_problems(parse()) == []


def platform_problems(**overrides: Any) -> tuple[str, ...]:
    """Config validation runs the sagemaker checks last and raises with their problems."""
    with pytest.raises(ConfigError) as err:
        parse(**overrides)
    return err.value.problems


def test_copies_that_cannot_fit_the_max_instance_count_are_reported_with_numbers():
    assert platform_problems(sagemaker={"maxInstanceCount": 1}) == (
        "llm-hosting:sagemaker.maxInstanceCount: 1 instance(s) of ml.g5.12xlarge (4 GPU each) "
        "cannot hold the maxReplicas copies (llama-8b 8 x 1 GPU): they need 2; raise "
        "maxInstanceCount or lower maxReplicas",
    )


def test_a_copy_that_needs_more_host_memory_than_the_instance_has_is_reported():
    problems = sagemaker_problems(with_instance(parse(), memory_mib=8 * 1024))
    assert problems == [
        "llm-hosting:models[0]: one copy of llama-8b needs 8865 MiB of host memory but "
        "ml.g5.12xlarge has 6144 MiB usable; choose a larger instanceType"
    ]


def test_an_instance_type_missing_from_botocores_enum_is_rejected():
    problems = sagemaker_problems(with_instance(parse(), name="g5.96xlarge"))
    assert problems[0] == (
        "llm-hosting:models[0].instanceType: SageMaker does not offer ml.g5.96xlarge (not in "
        "botocore's ProductionVariantInstanceType enum); pick another instance type"
    )
    assert "ml.g5.12xlarge" in sagemaker_instance_types()


def test_an_engine_whose_dlc_is_not_in_the_region_is_rejected():
    config = parse(**{})
    config = dataclasses.replace(config, region="ap-south-2")
    (problem,) = sagemaker_problems(config)
    assert problem.startswith("llm-hosting:models[0].engine: the djl-inference DLC for engine "
                              "'vllm' is not published in ap-south-2;")
    tgi = parse(models=[{**BASE["llm-hosting:models"][0], "engine": "tgi"}])
    assert sagemaker_problems(dataclasses.replace(tgi, region="ap-south-2")) == []


def test_data_capture_needs_a_destination():
    (problem,) = platform_problems(sagemaker={"dataCapturePercent": 20})
    assert problem == ("llm-hosting:sagemaker.dataCaptureS3Uri: required when "
                       "dataCapturePercent is 20; set s3://<bucket>/<prefix>")


def test_more_instance_types_than_production_variants_is_rejected():
    config = parse()
    model = config.models[0]
    models = tuple(
        dataclasses.replace(model, spec=model.spec.model_copy(update={"name": f"m{i}"}),
                            instance=dataclasses.replace(model.instance, name=f"g5.{i}xlarge"))
        for i in range(11)
    )
    problems = sagemaker_problems(dataclasses.replace(config, models=models))
    assert ("llm-hosting:models: 11 different instance types need 11 production variants; one "
            "endpoint takes at most 10") in problems


def test_the_platform_refuses_to_build_what_validation_rejects():
    raw = copy.deepcopy(BASE)
    raw["llm-hosting:environment"] = "prod"
    raw["llm-hosting:models"][0]["minReplicas"] = 0
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as err:
        run_program(raw, stack="prod", mocks=mocks)
    assert err.value.problems[0].startswith("llm-hosting:models[0].minReplicas: 0")
    assert not [r for r in mocks.resources if r.type.startswith("aws:sagemaker")]


# --- containers and images ------------------------------------------------------------------


def test_images_resolve_to_the_regions_own_dlc_account():
    tgi, lmi = SAGEMAKER_IMAGES["tgi"], SAGEMAKER_IMAGES["vllm"]
    assert tgi.uri("eu-south-2").startswith(
        "503227376785.dkr.ecr.eu-south-2.amazonaws.com/huggingface-pytorch-tgi-inference:")
    assert lmi.uri("af-south-1").startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert lmi.uri("cn-north-1").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/djl-inference:")
    assert lmi.repository_arn("us-gov-west-1") == (
        "arn:aws-us-gov:ecr:us-gov-west-1:442386744353:repository/djl-inference")
    for image in (tgi, lmi):
        assert "latest" not in image.tag and image.source.startswith("https://")


def test_engine_environment_per_dlc():
    config = parse(models=[
        {"name": "a", "modelId": "Qwen/Qwen2.5-7B-Instruct-AWQ", "engine": "tgi",
         "quantization": "awq", "gpusPerReplica": 4, "instanceType": "g5.12xlarge"},
        {"name": "b", "modelId": "meta-llama/Llama-3.1-8B-Instruct", "engine": "vllm",
         "quantization": "fp8", "weightsUri": "s3://bucket/llama"},
    ])
    tgi, lmi = (engine_environment(m) for m in config.models)
    a, b = config.models
    # TGI reads the AWQ format from the checkpoint; its memory options are the sized settings
    # (prefill covers the longest prompt: TGI cannot chunk one).
    assert tgi == {"HF_MODEL_ID": "Qwen/Qwen2.5-7B-Instruct-AWQ", "SM_NUM_GPUS": "4",
                   "MAX_INPUT_TOKENS": "3072", "MAX_TOTAL_TOKENS": "4096",
                   "MAX_BATCH_PREFILL_TOKENS": str(a.memory.engine.max_num_batched_tokens),
                   "MAX_CONCURRENT_REQUESTS": str(a.memory.engine.max_num_seqs),
                   "CUDA_MEMORY_FRACTION": f"{a.memory.engine.gpu_memory_utilization:.2f}",
                   "MESSAGES_API_ENABLED": "true"}
    assert a.memory.engine.max_num_batched_tokens >= 3072
    assert lmi["HF_MODEL_ID"] == "/opt/ml/model" and lmi["OPTION_ROLLING_BATCH"] == "vllm"
    assert lmi["OPTION_QUANTIZE"] == "fp8" and lmi["OPTION_MAX_MODEL_LEN"] == "4096"
    assert lmi["OPTION_MAX_ROLLING_BATCH_SIZE"] == str(b.memory.engine.max_num_seqs)
    assert lmi["OPTION_MAX_ROLLING_BATCH_PREFILL_TOKENS"] == str(
        b.memory.engine.max_num_batched_tokens)
    assert lmi["OPTION_GPU_MEMORY_UTILIZATION"] == f"{b.memory.engine.gpu_memory_utilization:.2f}"
    assert not any(k.startswith("HF_TOKEN") for k in {**tgi, **lmi})


def test_startup_timeouts_come_from_the_startup_model_within_the_api_maximum():
    small = parse().models[0]
    large = parse(models=[{"name": "big", "modelId": "meta-llama/Llama-3.1-70B-Instruct",
                           "gpusPerReplica": 8, "instanceType": "p4de.24xlarge",
                           "weightsUri": "s3://weights-bucket/llama-70b"}]).models[0]
    # 8B from S3: the copy (16 GB at 85 MB/s, x1.5 = 284 s) and the start (48 s load + 180 s
    # warm-up, x1.5) are both under the 600 s floor
    assert startup_timeouts(small) == type(startup_timeouts(small))(600, 600)
    big = startup_timeouts(large)
    estimate = estimate_for_model(large, "sagemaker")
    assert big.model_download_seconds == estimate.model_download_seconds == 2492
    assert big.container_startup_seconds == estimate.container_seconds == 903
    assert max(big.container_startup_seconds, big.model_download_seconds) <= MAX_STARTUP_SECONDS


def test_no_gpu_family_in_the_catalog_takes_a_volume_kms_key():
    # CreateEndpointConfig rejects KmsKeyId for instance types with local NVMe storage.
    assert volume_kms_allowed(plan_variants(parse())) is False


# --- IAM ------------------------------------------------------------------------------------


def test_execution_policy_never_allows_a_wildcard_action():
    policy = execution_policy(
        partition="aws", region="us-east-1", account="123456789012", vpc_id="vpc-1",
        repository_arns=["arn:aws:ecr:us-east-1:763104351884:repository/djl-inference"],
        weights=[("b", "p/q"), ("b", "r")], endpoint_name="ep",
        inference_component_names=["ep-a"],
    )
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]
        assert all(a != "*" and ":" in a and not a.endswith(":*") for a in actions)
    read = next(s for s in policy["Statement"] if s["Sid"] == "ReadWeights0")
    assert read["Resource"] == ["arn:aws:s3:::b/p/q/*", "arn:aws:s3:::b/r/*"]
    logs = next(s for s in policy["Statement"] if s["Sid"] == "WriteLogs")
    assert "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/InferenceComponents/"\
           "ep-a:*" in logs["Resource"]


# --- API shape checks can fail --------------------------------------------------------------


def test_request_checks_catch_minimums_maximums_enums_patterns_and_unknown_members():
    request = {
        "InferenceComponentName": "bad.name",
        "EndpointName": "ep",
        "Specification": {
            "ModelName": "m",
            "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 64},
            "StartupParameters": {"ContainerStartupHealthCheckTimeoutInSeconds": 7200},
            "InstanceType": "ml.g5.96xlarge",
            "model_name": "snake",
        },
    }
    problems = "\n".join(request_problems("sagemaker", "CreateInferenceComponent", request))
    assert "MinMemoryRequiredInMb" in problems  # below the minimum 128
    assert "7200 is above the maximum 3600" in problems
    assert "'ml.g5.96xlarge' is not one of ProductionVariantInstanceType's values" in problems
    assert "'bad.name' does not match" in problems
    assert "model_name" in problems  # an untranslated key is an unknown member


def test_rolling_endpoint_updates_are_refused_for_several_instance_types():
    # AWS deployment guardrails exclude multi-variant endpoints from rolling deployments.
    models = [BASE["llm-hosting:models"][0],
              {"name": "qwen-14b", "modelId": "Qwen/Qwen2.5-14B-Instruct",
               "instanceType": "g6e.xlarge", "weightsUri": "s3://weights-bucket/qwen"}]
    assert platform_problems(models=models, sagemaker={"endpointDeployment": "rolling"}) == (
        "llm-hosting:sagemaker.endpointDeployment: 'rolling' is not available for an endpoint "
        "with several production variants, and these models need 2 instance types "
        "(ml.g5.12xlarge, ml.g6e.xlarge); use 'blueGreen' or size every model onto one "
        "instance type",
    )
    assert sagemaker_problems(parse(models=models)) == []  # blueGreen (default) is fine
    assert sagemaker_problems(parse(sagemaker={"endpointDeployment": "rolling"})) == []
