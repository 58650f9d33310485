"""One tag set everywhere; serving tags carry what the policy pack needs to re-size a model."""

from __future__ import annotations

import json

from components.config import parse_stack_config
from components.tags import SERVING_TAG_PREFIX, Naming


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
    cfg = parse_stack_config(raw, project="llm-hosting", stack="dev")
    (model,) = cfg.models
    tags = Naming("llm-hosting", "dev", "dev").serving_tags(model, "sagemaker")
    p = SERVING_TAG_PREFIX
    assert tags[f"{p}model-id"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert tags[f"{p}instance-type"] == model.instance.name
    assert tags[f"{p}max-total-tokens"] == "4096" and tags[f"{p}max-replicas"] == "2"
    assert tags["model"] == "llama-8b" and tags["project"] == "llm-hosting"
    assert all(len(k) <= 128 and len(v) <= 256 for k, v in tags.items())
