"""One tag set everywhere; serving tags carry what the policy pack needs to re-size a model."""

from __future__ import annotations

import json
import re

import botocore.session

from components.platforms import parse_config
from components.tags import SERVING_TAG_PREFIX, SHAPE_TAG, Naming


def test_tags_merge_user_tags_under_the_project_set():
    naming = Naming("llm-hosting", "prod", "prod", {"cost-center": "ml"})
    assert naming.tags() == {"cost-center": "ml", "project": "llm-hosting", "stack": "prod",
                             "environment": "prod", "managed-by": "pulumi"}
    assert naming.tags(model="llama")["model"] == "llama"


def test_physical_names_keep_the_suffix_within_limits():
    naming = Naming("llm-hosting", "a-very-long-stack-name-for-a-team-sandbox", "dev")
    name = naming.physical("llama-3-70b-instruct", max_len=63)
    assert len(name) <= 63 and name.endswith("-llama-3-70b-instruct")
    assert Naming("p", "s", "dev").physical("x") == "p-s-x"


def test_serving_tags_round_trip_the_sizing_request(base_config):
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base_config.items()}
    cfg = parse_config(raw, project="llm-hosting", stack="dev")
    (model,) = cfg.models
    tags = Naming("llm-hosting", "dev", "dev").serving_tags(model, "sagemaker")
    p = SERVING_TAG_PREFIX
    assert tags[f"{p}model-id"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert tags[f"{p}instance-type"] == model.instance.name
    assert tags[f"{p}max-total-tokens"] == "4096" and tags[f"{p}max-replicas"] == "2"
    assert tags["model"] == "llama-8b" and tags["project"] == "llm-hosting"
    assert all(len(k) <= 128 and len(v) <= 256 for k, v in tags.items())


def _custom_model(base_config, **shape):
    base_config["llm-hosting:models"][0].update(
        modelId="acme/custom-7b",
        shape={"parameters": 7.2, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32,
               "kvHeads": 8, "headDim": 128, "vocabSize": 32000, "maxPositionEmbeddings": 32768,
               **shape})
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base_config.items()}
    (model,) = parse_config(raw, project="llm-hosting", stack="dev").models
    return model


def test_shape_tag_only_for_models_the_catalog_does_not_size(base_config):
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base_config.items()}
    (catalog_model,) = parse_config(raw, project="llm-hosting", stack="dev").models
    naming = Naming("llm-hosting", "dev", "dev")
    assert SHAPE_TAG not in naming.serving_tags(catalog_model, "sagemaker")
    custom = _custom_model(base_config, activeParameters=2.5, tiedEmbeddings=True)
    assert naming.serving_tags(custom, "sagemaker")[SHAPE_TAG] == (
        "p=7.2 a=2.5 l=32 h=4096 ah=32 kv=8 hd=128 v=32000 ctx=32768 tied=1 dtype=bfloat16 "
            "i=16384 k=1")


def _tag_value_patterns() -> dict[str, re.Pattern[str]]:
    """TagValue patterns of the APIs that restrict tag characters, from botocore's models.
    Java's \\p{L}\\p{Z}\\p{N} (letters, separators, digits) is \\w plus whitespace here."""
    session = botocore.session.get_session()
    out = {}
    for service in ("sagemaker", "ecs", "elbv2", "logs"):
        meta = session.get_service_model(service).shape_for("TagValue").metadata
        pattern = meta["pattern"].replace("\\p{L}\\p{Z}\\p{N}", "\\w\\s").strip("^$")
        out[service] = re.compile(pattern)
        assert meta["max"] == 256
    return out


def test_serving_tags_are_valid_tag_values_for_every_aws_api(base_config):
    """A comma (or any character outside `_ . : / = + - @`) in a tag value makes SageMaker's
    CreateModel and ECS's CreateService fail; the shape tag is the long, structured one."""
    custom = _custom_model(base_config)
    tags = Naming("llm-hosting", "dev", "dev").serving_tags(custom, "ecs")
    assert SHAPE_TAG in tags
    for service, pattern in _tag_value_patterns().items():
        for key, value in tags.items():
            assert pattern.fullmatch(value) and len(value) <= 256, (service, key, value)
    assert not _tag_value_patterns()["sagemaker"].fullmatch("p=7.2,a=7.2")
