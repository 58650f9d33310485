"""The config contract: every bad input is reported with its key path and fix, all at once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError, StackConfig
from components.platforms import parse_config


def parse(config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> StackConfig:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return parse_config(raw, project="llm-hosting", stack="test", secret_keys=secret_keys)


def problems(config: dict[str, Any], **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse(config, **kwargs)
    return err.value.problems


def model(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    config["llm-hosting:models"][0].update(changes)
    return config


def test_valid_config_parses_with_environment_defaults(base_config):
    cfg = parse(base_config)
    assert cfg.environment == "dev" and cfg.platform == "sagemaker"
    assert cfg.network.cidr_block == "10.0.0.0/16"
    assert cfg.network.availability_zones == 2
    assert cfg.network.nat_gateways == "single"
    (m,) = cfg.models
    assert m.spec.gpus_per_replica is None and m.gpus_per_replica == 1  # chosen by sizing
    assert m.gpus_chosen and m.spec.capacity == "on-demand"
    assert m.memory.fits and m.instance.offered_on_sagemaker
    assert cfg.hf_token is None


def test_prod_defaults_to_three_azs_and_nat_per_az(base_config):
    base_config["llm-hosting:environment"] = "prod"
    cfg = parse(base_config)
    assert (cfg.network.availability_zones, cfg.network.nat_gateways) == (3, "onePerAz")


def test_unknown_platform_names_key_and_accepted_values(base_config):
    base_config["llm-hosting:platform"] = "gke"
    assert problems(base_config) == (
        "llm-hosting:platform: 'gke' is not accepted; use one of 'sagemaker', 'eks' or 'ecs'",
    )



def test_missing_required_keys(base_config):
    del base_config["llm-hosting:environment"]
    del base_config["llm-hosting:models"]
    assert set(problems(base_config)) == {
        "llm-hosting:environment: required key is missing; set it with `pulumi config set "
        "--path 'llm-hosting:environment' <value>`",
        "llm-hosting:models: required key is missing; set it with `pulumi config set "
        "--path 'llm-hosting:models' <value>`",
    }


def test_empty_model_list(base_config):
    base_config["llm-hosting:models"] = []
    assert problems(base_config) == (
        "llm-hosting:models: List should have at least 1 item after validation, not 0 (got [])",
    )


def test_typo_in_key_is_an_error_not_ignored(base_config):
    model(base_config, maxReplica=3)
    base_config["llm-hosting:network"] = {"cidr": "10.1.0.0/16"}
    base_config["llm-hosting:enviroment"] = "dev"
    found = problems(base_config)
    assert "llm-hosting:enviroment: unknown key; accepted keys: ecs, eks, environment, gateway, "\
        "hfToken, models, network, platform, protection, sagemaker, tags" in found
    assert "llm-hosting:models[0].maxReplica: unknown key; accepted keys: capacity, "\
        "concurrencyTarget, engine, fallbacks, gpusPerReplica, instanceType, maxInputTokens, "\
        "maxReplicas, maxTotalTokens, minReplicas, modelId, name, quantization, shape, "\
        "weightsKmsKeyArn, weightsUri" in found
    assert "llm-hosting:network.cidr: unknown key; accepted keys: availabilityZones, cidrBlock, "\
        "natGateways" in found


def test_tokens_and_replica_bounds(base_config):
    model(base_config, maxInputTokens=4096, maxTotalTokens=4096, minReplicas=3, maxReplicas=2)
    assert set(problems(base_config)) == {
        "llm-hosting:models[0].maxTotalTokens: 4096 must be greater than maxInputTokens (4096); "
        "it counts prompt + output",
        "llm-hosting:models[0].minReplicas: 3 is greater than maxReplicas (2); raise maxReplicas "
        "or lower minReplicas",
    }


def test_max_replicas_defaults_to_min(base_config):
    config = model(base_config, minReplicas=3)
    del config["llm-hosting:models"][0]["maxReplicas"]
    assert parse(config).models[0].spec.replicas_max == 3


def test_duplicate_model_names(base_config):
    base_config["llm-hosting:models"].append(dict(base_config["llm-hosting:models"][0]))
    assert problems(base_config) == (
        "llm-hosting:models: name 'llama-8b' is used by models[0], models[1]; model names must "
        "be unique",
    )


def test_bad_name_model_id_and_weights_uri(base_config):
    model(base_config, name="Llama_8B", modelId="llama3", weightsUri="https://x/y")
    assert set(problems(base_config)) == {
        "llm-hosting:models[0].name: 'Llama_8B' must be a DNS-1123 label of at most 40 chars "
        "(lowercase letters, digits, '-'; it names endpoints and namespaces)",
        "llm-hosting:models[0].modelId: 'llama3' is not a Hugging Face id; use <org>/<model>, "
        "e.g. meta-llama/Meta-Llama-3-8B-Instruct",
        "llm-hosting:models[0].modelId: 'llama3' is not in the model catalog; add "
        "'llm-hosting:models[0].shape' (parameters, layers, hiddenSize, attentionHeads, kvHeads, "
        "vocabSize, maxPositionEmbeddings, and headDim if it is not hiddenSize / attentionHeads) "
        "from its config.json",
        "llm-hosting:models[0].weightsUri: 'https://x/y' must be s3://<bucket>/<prefix> of "
        "pre-staged weights",
    }


@pytest.mark.parametrize("uri", [
    "s3://weights-bucket/*", "s3://weights-bucket/llama/*/", "s3://weights-bucket/llama-?b/",
    "s3://weights-bucket/${aws:username}/llama/",
])
def test_weights_uri_with_a_wildcard_is_refused(base_config, uri):
    # Every platform grants s3:GetObject on '<bucket>/<prefix>/*': s3://b/* read b/*/*.
    model(base_config, weightsUri=uri)
    prefix = uri.removeprefix("s3://weights-bucket/").rstrip("/")
    assert problems(base_config) == (
        f"llm-hosting:models[0].weightsUri: {uri!r} has a wildcard or IAM policy variable in "
        f"its prefix: the read grant on 'weights-bucket/{prefix}/*' would reach other prefixes "
        "(s3://<bucket>/* reads the whole bucket); give the exact prefix, e.g. "
        "s3://weights-bucket/<org>/<model>/",
    )


@pytest.mark.parametrize("uri", ["s3://weights-bucket", "s3://weights-bucket/"])
def test_weights_uri_without_a_prefix_is_refused(base_config, uri):
    model(base_config, weightsUri=uri)
    assert problems(base_config) == (
        f"llm-hosting:models[0].weightsUri: {uri!r} names a whole bucket; give the prefix the "
        "weights were staged under, e.g. s3://weights-bucket/<org>/<model>/ (the role may read "
        "that prefix only)",
    )


@pytest.mark.parametrize("uri", ["s3://weights-bucket//llama/", "s3://weights-bucket/a/../b/"])
def test_weights_uri_with_an_empty_or_relative_segment_is_refused(base_config, uri):
    model(base_config, weightsUri=uri)
    assert problems(base_config) == (
        f"llm-hosting:models[0].weightsUri: {uri!r} has an empty or relative ('.', '..') path "
        "segment; give the prefix exactly as the weights were staged, e.g. "
        "s3://weights-bucket/<org>/<model>/",
    )


@pytest.mark.parametrize("uri", ["s3://weights-bucket/llama", "s3://weights-bucket/a/b.c/d-1/",
                                 "s3://weights-bucket/meta-llama/Llama-3.1-8B-Instruct/"])
def test_weights_uri_with_an_exact_prefix_is_accepted(base_config, uri):
    model(base_config, weightsUri=uri)
    assert parse(base_config).models[0].spec.weights_uri == uri


def test_enum_fields_list_accepted_values(base_config):
    model(base_config, engine="trt", quantization="int3", capacity="reserved", gpusPerReplica=3)
    found = problems(base_config)
    assert "llm-hosting:models[0].engine: 'trt' is not accepted; use one of 'vllm' or 'tgi'" \
        in found
    assert "llm-hosting:models[0].quantization: 'int3' is not accepted; use one of 'none', "\
        "'awq', 'gptq' or 'fp8'" in found
    assert "llm-hosting:models[0].capacity: 'reserved' is not accepted; use one of "\
        "'on-demand' or 'spot'" in found
    assert "llm-hosting:models[0].gpusPerReplica: 3 is not accepted; use one of 1, 2, 4 or 8" \
        in found


def test_non_gpu_instance_type(base_config):
    model(base_config, instanceType="m5.xlarge")
    assert problems(base_config) == (
        "llm-hosting:models[0].instanceType: 'm5.xlarge' is not a GPU instance type in the "
        "catalog; use a size of g4dn, g5, g6, g6e, p4d, p4de, p5, p5en, or omit it to let sizing "
        "choose (the cheapest that fits is g6.xlarge)",
    )


def test_ml_prefix_is_rejected_with_the_fix(base_config):
    model(base_config, instanceType="ml.g5.2xlarge")
    assert problems(base_config) == (
        "llm-hosting:models[0].instanceType: give the EC2 name (g5.2xlarge); the sagemaker "
        "platform adds 'ml.' itself",
    )


def test_model_too_big_for_instance_names_numbers_and_suggestion(base_config):
    model(base_config, modelId="meta-llama/Meta-Llama-3-70B-Instruct", instanceType="g5.12xlarge",
          gpusPerReplica=4)
    # 70.6e9 x 2 B / 4 GPUs = 32.9 GiB of weights + 0.3 activation + 2.2 NCCL/all-reduce
    # + 1.55 context/NCCL (inside the budget of LMI's vLLM 0.8.4) + 4 x 0.3125 GiB KV = 38.2,
    # against 22.06 GiB visible x 0.89 (graphs must fit outside the budget) = 19.6 GiB.
    assert problems(base_config) == (
        "llm-hosting:models[0].instanceType: llama-8b (meta-llama/Meta-Llama-3-70B-Instruct, "
        "quantization none) needs 38.2 GiB per GPU but g5.12xlarge offers 19.6 GiB usable per "
        "GPU; the cheapest that fits is g6e.12xlarge",
    )


def test_too_few_gpus_on_instance(base_config):
    model(base_config, instanceType="g5.2xlarge", gpusPerReplica=2)
    assert problems(base_config) == (
        "llm-hosting:models[0].instanceType: g5.2xlarge has 1 GPU(s) but gpusPerReplica is 2; "
        "the cheapest that fits is g4dn.12xlarge",
    )


def test_sagemaker_has_no_spot(base_config):
    model(base_config, capacity="spot")
    assert problems(base_config) == (
        "llm-hosting:models[0].capacity: SageMaker real-time endpoints have no Spot capacity; "
        "use 'on-demand' or the eks/ecs platform",
    )


def test_context_longer_than_model_supports(base_config):
    model(base_config, maxInputTokens=9000, maxTotalTokens=10000)
    assert problems(base_config) == (
        "llm-hosting:models[0].maxTotalTokens: 10000 exceeds the model's context length (8192)",
    )


def test_unknown_model_accepted_with_explicit_shape(base_config):
    model(
        base_config,
        modelId="acme/house-model-7b",
        shape={"parameters": 7.2, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32,
               "kvHeads": 8, "headDim": 128, "vocabSize": 32000, "maxPositionEmbeddings": 32768},
    )
    (m,) = parse(base_config).models
    assert m.shape.parameters_b == 7.2 and m.shape.kv_heads == 8
    assert m.memory.fits


def test_bad_shape_field(base_config):
    model(base_config, modelId="acme/x", shape={"parameters": -1, "layers": 32})
    found = problems(base_config)
    assert any(p.startswith("llm-hosting:models[0].shape.parameters: Input should be greater "
                            "than 0") for p in found)
    assert any(p.startswith("llm-hosting:models[0].shape.hiddenSize: required key is missing")
               for p in found)


def test_plaintext_hf_token_is_rejected(base_config):
    base_config["llm-hosting:hfToken"] = "hf_abcdef"
    assert problems(base_config) == (
        "llm-hosting:hfToken: is stored in plaintext; remove it with `pulumi config rm "
        "llm-hosting:hfToken` and set it again with `pulumi config set --secret "
        "llm-hosting:hfToken <token>`",
    )


def test_secret_hf_token_is_accepted(base_config):
    base_config["llm-hosting:hfToken"] = "hf_abcdef"
    parse(base_config, secret_keys=("llm-hosting:hfToken",))


def test_network_problems(base_config):
    base_config["llm-hosting:network"] = {"cidrBlock": "8.8.0.0/24", "availabilityZones": 7,
                                          "natGateways": "none"}
    found = set(problems(base_config))
    assert "llm-hosting:network.natGateways: 'none' is not accepted; use one of 'single' or "\
        "'onePerAz'" in found
    assert "llm-hosting:network.availabilityZones: Input should be less than or equal to 6 "\
        "(got 7)" in found


def test_cidr_must_be_private_and_sized(base_config):
    base_config["llm-hosting:network"] = {"cidrBlock": "8.8.0.0/24"}
    assert set(problems(base_config)) == {
        "llm-hosting:network.cidrBlock: 8.8.0.0/24 is not a private (RFC 1918) range; use e.g. "
        "10.0.0.0/16",
        "llm-hosting:network.cidrBlock: prefix /24 is outside /16../20; GPU pods and endpoints "
        "need room, use a /16 to /20",
    }


def test_reserved_and_invalid_tags(base_config):
    base_config["llm-hosting:tags"] = {"project": "x", "aws:owner": "y", "team": "z" * 300}
    assert set(problems(base_config)) == {
        "llm-hosting:tags.project: 'project' is set by llm-hosting itself; choose another key",
        "llm-hosting:tags.aws:owner: not a valid AWS tag key (1-128 chars, no 'aws:' prefix)",
        "llm-hosting:tags.team: value is 300 chars; AWS allows at most 256",
    }


def test_missing_region(base_config):
    del base_config["aws:region"]
    assert problems(base_config) == (
        "aws:region: required; set it with `pulumi config set aws:region us-east-1`",
    )


def test_structured_value_that_is_not_json(base_config):
    base_config["llm-hosting:models"] = "[{name: x"
    assert problems(base_config) == (
        "llm-hosting:models: not valid structured config (Expecting property name enclosed in "
        "double quotes); set it with `pulumi config set --path 'llm-hosting:models...'`",
    )


def test_all_problems_reported_together(base_config):
    base_config["llm-hosting:platform"] = "gke"
    base_config["llm-hosting:hfToken"] = "plain"
    second = dict(base_config["llm-hosting:models"][0], name="second", minReplicas=5,
                  maxReplicas=1)
    base_config["llm-hosting:models"].append(second)
    model(base_config, engine="x")
    found = problems(base_config)
    assert [p.split(": ", 1)[0] for p in found] == [
        "llm-hosting:platform",
        "llm-hosting:hfToken",
        "llm-hosting:models[0].engine",
        "llm-hosting:models[1].minReplicas",
    ]


def test_tensor_parallel_must_divide_attention_heads(base_config):
    model(base_config, modelId="tiiuae/falcon-7b-instruct", gpusPerReplica=2,
          maxInputTokens=1024, maxTotalTokens=2048, instanceType="g5.12xlarge")
    assert problems(base_config) == (
        "llm-hosting:models[0].gpusPerReplica: 2 does not divide the model's 71 attention heads; "
        "tensor parallelism needs it to",
    )


def test_gated_model_needs_weights_in_s3_or_a_token(base_config):
    del base_config["llm-hosting:models"][0]["weightsUri"]
    assert problems(base_config) == (
        "llm-hosting:models[0].modelId: meta-llama/Meta-Llama-3-8B-Instruct is gated on the "
        "Hugging Face Hub; set weightsUri to pre-staged S3 weights (recommended) or `pulumi "
        "config set --secret llm-hosting:hfToken hf_...`",
    )
    base_config["llm-hosting:hfToken"] = "hf_x"
    parse(base_config, secret_keys=("llm-hosting:hfToken",))
    model(base_config, modelId="Qwen/Qwen2.5-7B-Instruct")
    del base_config["llm-hosting:hfToken"]
    parse(base_config)  # open model: no token needed


def test_platform_sections_are_validated_with_everything_else(base_config):
    base_config["llm-hosting:platform"] = "ecs"
    base_config["llm-hosting:environment"] = "prod"
    base_config["llm-hosting:ecs"] = {"loadBalancerScheme": "internet-facing"}
    base_config["llm-hosting:eks"] = {"publicAccessCidrs": ["0.0.0.0/0"]}
    found = problems(base_config)
    assert [p.split(": ", 1)[0] for p in found] == [
        "llm-hosting:eks.publicAccessCidrs[0]",
        "llm-hosting:ecs.certificateArn",
        "llm-hosting:ecs.allowedCidrs",
    ]


def test_platform_specific_checks_run_before_any_resource(base_config):
    base_config["llm-hosting:sagemaker"] = {"dataCapturePercent": 20}
    assert problems(base_config) == (
        "llm-hosting:sagemaker.dataCaptureS3Uri: required when dataCapturePercent is 20; set "
        "s3://<bucket>/<prefix>",
    )


def test_gated_model_is_reported_even_when_other_fields_of_it_are_wrong(base_config):
    del base_config["llm-hosting:models"][0]["weightsUri"]
    model(base_config, maxReplicas=0)
    assert [p.split(": ", 1)[0] for p in problems(base_config)] == [
        "llm-hosting:models[0].maxReplicas",
        "llm-hosting:models[0].modelId",
    ]


KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_FIX = ("use arn:<partition>:kms:<region>:<account>:key/<key-id> (`aws kms describe-key "
           "--key-id <id or alias> --query KeyMetadata.Arn`)")


def test_weights_kms_key_arn_is_accepted_with_weights_uri(base_config):
    cfg = parse(model(base_config, weightsKmsKeyArn=KEY_ARN))
    assert cfg.models[0].spec.weights_kms_key_arn == KEY_ARN
    multi_region = KEY_ARN.replace("1234abcd-12ab-34cd-56ef-1234567890ab",
                                   "mrk-1234abcd12ab34cd56ef1234567890ab")
    assert parse(model(base_config, weightsKmsKeyArn=multi_region))


def test_weights_kms_alias_arn_is_rejected_with_the_reason(base_config):
    alias = "arn:aws:kms:us-east-1:111122223333:alias/llm-weights"
    assert problems(model(base_config, weightsKmsKeyArn=alias)) == (
        f"llm-hosting:models[0].weightsKmsKeyArn: {alias!r} is an alias ARN; IAM policies grant "
        f"kms:Decrypt only on a key ARN, not through an alias; {KEY_FIX}",
    )


@pytest.mark.parametrize("value", [
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    "alias/llm-weights",
    "arn:aws:kms:us-east-1:1111:key/1234abcd",
    "arn:aws:s3:::weights-bucket",
])
def test_weights_kms_key_must_be_a_key_arn(base_config, value):
    assert problems(model(base_config, weightsKmsKeyArn=value)) == (
        f"llm-hosting:models[0].weightsKmsKeyArn: {value!r} is not a KMS key ARN; {KEY_FIX}",
    )


def test_weights_kms_key_needs_weights_uri(base_config):
    del base_config["llm-hosting:models"][0]["weightsUri"]
    base_config["llm-hosting:models"][0]["modelId"] = "Qwen/Qwen2.5-7B-Instruct"  # not gated
    assert problems(model(base_config, weightsKmsKeyArn=KEY_ARN)) == (
        "llm-hosting:models[0].weightsKmsKeyArn: set without weightsUri; the key only decrypts "
        "S3 weights, so set weightsUri or remove weightsKmsKeyArn",
    )


def test_weights_kms_key_must_be_in_the_stack_region(base_config):
    key = KEY_ARN.replace("us-east-1", "eu-west-1")
    assert problems(model(base_config, weightsKmsKeyArn=key)) == (
        "llm-hosting:models[0].weightsKmsKeyArn: the key is in eu-west-1 but the stack is in "
        "us-east-1; an SSE-KMS bucket's key is in the bucket's region and the weights bucket "
        "must be in the stack's region",
    )


# --- sizing decisions made during validation (issue 12) ----------------------------------------


def test_gpus_per_replica_is_chosen_when_omitted(base_config):
    # 70B in 16-bit fits no single GPU; sizing picks the cheapest instance over every degree.
    model(base_config, modelId="meta-llama/Llama-3.1-70B-Instruct")
    (m,) = parse(base_config).models
    assert m.gpus_chosen and (m.instance.name, m.gpus_per_replica) == ("g6e.12xlarge", 4)
    assert m.request.gpus_per_replica == 4 and m.memory.fits


def test_nothing_fits_lists_the_nearest_candidates_and_the_gpu_count_that_would(base_config):
    model(base_config, modelId="meta-llama/Llama-3.1-70B-Instruct", gpusPerReplica=1)
    (problem,) = problems(base_config)
    assert problem.startswith("llm-hosting:models[0].instanceType: llama-8b fits no GPU "
                              "instance with 1 GPU(s) per replica; nearest: p5en.48xlarge at "
                              "1 GPU(s) needs 139.0 GiB per GPU, offers 125.6;")
    assert "it fits with gpusPerReplica 4 on g6e.12xlarge" in problem


def test_awq_on_16_bit_weights_is_refused_with_the_awq_repository(base_config):
    model(base_config, modelId="Qwen/Qwen2.5-7B-Instruct", quantization="awq")
    assert problems(base_config) == (
        "llm-hosting:models[0].quantization: 'awq' needs a checkpoint quantized with AWQ, but "
        "Qwen/Qwen2.5-7B-Instruct holds 16-bit weights and vLLM refuses `--quantization awq` on "
        "them; set modelId to Qwen/Qwen2.5-7B-Instruct-AWQ, or use quantization 'fp8' (dynamic "
        "FP8 of these weights) or 'none'",
    )


def test_quantization_must_match_a_pre_quantized_checkpoint(base_config):
    model(base_config, modelId="Qwen/Qwen2.5-7B-Instruct-AWQ", quantization="none")
    assert problems(base_config) == (
        "llm-hosting:models[0].quantization: Qwen/Qwen2.5-7B-Instruct-AWQ is a pre-quantized AWQ "
        "checkpoint and is loaded as awq whatever is asked; set quantization to 'awq'",
    )


def test_pre_quantized_and_dynamic_fp8_checkpoints_are_accepted(base_config):
    model(base_config, modelId="Qwen/Qwen2.5-7B-Instruct-AWQ", quantization="awq")
    (awq,) = parse(base_config).models
    assert awq.checkpoint_quantization == "awq" and awq.engine_quantization is None
    model(base_config, modelId="Qwen/Qwen2.5-7B-Instruct", quantization="fp8")
    (fp8,) = parse(base_config).models
    assert fp8.checkpoint_quantization == "none" and fp8.engine_quantization == "fp8"


def test_custom_checkpoint_declares_its_quantization(base_config):
    shape = {"parameters": 7.2, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32,
             "kvHeads": 8, "headDim": 128, "vocabSize": 32000, "maxPositionEmbeddings": 32768}
    model(base_config, modelId="acme/custom-7b-awq", quantization="awq", shape=shape)
    assert problems(base_config)[0].startswith(
        "llm-hosting:models[0].quantization: 'awq' needs a checkpoint quantized with AWQ, but "
        "acme/custom-7b-awq holds 16-bit weights")
    model(base_config, shape={**shape, "quantization": "awq"})
    (m,) = parse(base_config).models
    assert m.checkpoint_quantization == "awq" and m.shape.intermediate_size == 4 * 4096


def test_vision_language_models_are_refused(base_config):
    model(base_config, modelId="Qwen/Qwen2.5-VL-7B-Instruct")
    (problem,) = problems(base_config)
    assert problem.startswith("llm-hosting:models[0].modelId: Qwen/Qwen2.5-VL-7B-Instruct is a "
                              "vision-language model; vLLM profiles its vision encoder unsplit")


SCALE_TO_ZERO = ("llm-hosting:models[0].minReplicas: 0 scales llama-8b to zero, and the first "
                 "request after idle waits minutes for a GPU instance, the image and the "
                 "weights; use at least 1 in prod (scale to zero is for dev and staging)")


@pytest.mark.parametrize("platform", ["sagemaker", "eks", "ecs"])
def test_scale_to_zero_is_one_rule_on_every_platform_refused_in_prod_only(base_config, platform):
    """docs/deploy.md: `minReplicas: 0` is dev/staging only. One check in config validation,
    the same message whatever the platform (SageMaker used to be the only one refusing it)."""
    base_config["llm-hosting:platform"] = platform
    model(base_config, minReplicas=0, maxReplicas=2)
    for environment in ("dev", "staging"):
        base_config["llm-hosting:environment"] = environment
        assert parse(base_config).models[0].spec.min_replicas == 0
    base_config["llm-hosting:environment"] = "prod"
    assert problems(base_config) == (SCALE_TO_ZERO,)
    model(base_config, minReplicas=1)
    assert parse(base_config).models[0].spec.min_replicas == 1


def test_eks_certificate_is_an_acm_arn_for_the_internal_albs(base_config):
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    base_config["llm-hosting:eks"] = {"ingress": "internal-alb", "certificateArn": cert}
    parse(base_config)
    base_config["llm-hosting:eks"] = {"certificateArn": cert}
    assert problems(base_config) == (
        "llm-hosting:eks.certificateArn: only used with ingress 'internal-alb'; remove it or set "
        "ingress",)
    base_config["llm-hosting:eks"] = {"ingress": "internal-alb",
                                      "certificateArn": "arn:aws:iam::123456789012:server-cert/x"}
    assert problems(base_config) == (
        "llm-hosting:eks.certificateArn: 'arn:aws:iam::123456789012:server-cert/x' is not an ACM "
        "certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)",)


def test_gateway_certificate_is_for_the_sagemaker_gateways_own_alb(base_config):
    """Only the sagemaker gateway has an ALB of its own; eks shares the models' certificate,
    ecs the models' ALB."""
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    base_config["llm-hosting:gateway"] = {"enabled": True, "certificateArn": cert}
    base_config["llm-hosting:platform"] = "sagemaker"
    assert parse(base_config).gateway.certificate_arn == cert
    base_config["llm-hosting:gateway"] = {"enabled": True, "certificateArn": "arn:aws:acm:x"}
    assert problems(base_config) == (
        "llm-hosting:gateway.certificateArn: 'arn:aws:acm:x' is not an ACM certificate ARN "
        "(arn:aws:acm:<region>:<account>:certificate/<id>)",)
    base_config["llm-hosting:gateway"] = {"enabled": True, "certificateArn": cert}
    base_config["llm-hosting:platform"] = "eks"
    assert problems(base_config) == (
        "llm-hosting:gateway.certificateArn: on eks the gateway's Ingress uses "
        "llm-hosting:eks.certificateArn; move the certificate there",)
    base_config["llm-hosting:platform"] = "ecs"
    assert "llm-hosting:gateway.certificateArn: on ecs the gateway sits on the stack's ALB, "\
           "which it calls over HTTP; remove it" in problems(base_config)
