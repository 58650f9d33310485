"""Every number in the config has a range a real deployment can have, and a type it keeps.

Boundaries are tested below, at and above each limit; values that once overflowed sizing or made
SageMaker packing loop for minutes (issue 14) are refused at once, with their key path.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from components.config import MAX_REPLICAS, MAX_TOKENS, ConfigError, StackConfig
from components.offline import ROOT
from components.platforms import parse_config
from components.sagemaker.packing import instances_needed, plan_variants
from components.stackfile import read_stack_file

SHAPE = {"parameters": 7.2, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32,
         "kvHeads": 8, "vocabSize": 32000, "maxPositionEmbeddings": 32768}


def parse(config: dict[str, Any]) -> StackConfig:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return parse_config(raw, project="llm-hosting", stack="test")


def problems(config: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse(config)
    return err.value.problems


def with_model(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    config["llm-hosting:models"][0].update(changes)
    return config


@pytest.mark.parametrize(("key", "ok", "refused"), [
    ("maxReplicas", MAX_REPLICAS, MAX_REPLICAS + 1),
    ("minReplicas", MAX_REPLICAS, MAX_REPLICAS + 1),
])
def test_replicas_are_bounded(base_config, key, ok, refused):
    with_model(base_config, maxReplicas=MAX_REPLICAS, minReplicas=1)
    parse(with_model(base_config, **{key: ok}))
    assert problems(with_model(base_config, **{key: refused})) == (
        f"llm-hosting:models[0].{key}: Input should be less than or equal to {MAX_REPLICAS} "
        f"(got {refused})",)


def test_a_million_replicas_is_refused_at_once_and_in_prod(base_config):
    base_config["llm-hosting:environment"] = "prod"
    start = time.process_time()
    found = problems(with_model(base_config, minReplicas=1_000_000, maxReplicas=1_000_000))
    assert time.process_time() - start < 5  # generous: it used to run for minutes
    assert set(found) == {
        "llm-hosting:models[0].minReplicas: Input should be less than or equal to 1000 "
        "(got 1000000)",
        "llm-hosting:models[0].maxReplicas: Input should be less than or equal to 1000 "
        "(got 1000000)",
    }


def test_sagemaker_packing_work_does_not_grow_with_replicas(base_config):
    """The largest accepted stack packs in one step per model, as first-fit one copy at a time
    would (compared on a smaller count, where the naive count is cheap)."""
    base_config["llm-hosting:models"] = [
        {**base_config["llm-hosting:models"][0], "name": f"m{i}", "minReplicas": MAX_REPLICAS,
         "maxReplicas": MAX_REPLICAS} for i in range(3)]
    (variant,) = plan_variants(parse(base_config))
    copies_per_instance = variant.placements[0].copies_per_instance
    assert variant.max_instances == -(-3 * MAX_REPLICAS // copies_per_instance)


def _naive_first_fit(placements, instance, copies):
    from components.sagemaker.packing import usable_host_mib
    items = sorted([(p.gpus, p.min_memory_mib) for p in placements
                    for _ in range(p.min_copies if copies == "min" else p.max_copies)],
                   reverse=True)
    bins: list[list[int]] = []
    for gpus, memory in items:
        for free in bins:
            if free[0] >= gpus and free[1] >= memory:
                free[0] -= gpus
                free[1] -= memory
                break
        else:
            bins.append([instance.gpu_count - gpus, usable_host_mib(instance) - memory])
    return len(bins)


@pytest.mark.parametrize(("gpus", "counts"), [
    ((1, 2, 4), (5, 3, 2)), ((1, 1, 2), (7, 0, 9)), ((4, 2, 1), (1, 1, 13)),
])
def test_run_length_packing_equals_first_fit_decreasing(base_config, gpus, counts):
    models = []
    for i, (g, n) in enumerate(zip(gpus, counts, strict=True)):
        models.append({**base_config["llm-hosting:models"][0], "name": f"m{i}",
                       "gpusPerReplica": g, "instanceType": "g5.12xlarge", "minReplicas": n,
                       "maxReplicas": max(n, 1) + i})
    base_config["llm-hosting:models"] = models
    base_config["llm-hosting:sagemaker"] = {"endpointDeployment": "rolling"}
    (variant,) = plan_variants(parse(base_config))
    for copies in ("min", "max"):
        assert instances_needed(variant.placements, copies, variant.instance) == \
            _naive_first_fit(variant.placements, variant.instance, copies)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"gpusPerReplica": True}, "llm-hosting:models[0].gpusPerReplica: true is a boolean; this "
     "key takes `1` | `2` | `4` | `8`"),
    ({"maxReplicas": True}, "llm-hosting:models[0].maxReplicas: true is a boolean; this key "
     "takes int"),
    ({"maxReplicas": "4"}, "llm-hosting:models[0].maxReplicas: Input should be a valid integer "
     "(got '4')"),
    ({"maxReplicas": 2.5}, "llm-hosting:models[0].maxReplicas: Input should be a valid integer "
     "(got 2.5)"),
    ({"gpusPerReplica": "yes"}, "llm-hosting:models[0].gpusPerReplica: 'yes' is not accepted; "
     "use one of 1, 2, 4 or 8"),
    ({"maxTotalTokens": MAX_TOKENS + 1}, "llm-hosting:models[0].maxTotalTokens: Input should be "
     f"less than or equal to {MAX_TOKENS} (got {MAX_TOKENS + 1})"),
    ({"maxReplicas": 10**309}, "llm-hosting:models[0].maxReplicas: Input should be less than or "
     "equal to 1000 (got a number of more than 30 digits)"),
])
def test_booleans_strings_and_huge_numbers_are_not_numbers(base_config, changes, expected):
    assert expected in problems(with_model(base_config, **changes))


def test_values_from_the_stack_file_keep_their_type_end_to_end(tmp_path):
    """`gpusPerReplica: yes` is the string "yes" for the CLI (yaml.v3), so it is refused here
    too, instead of becoming 1 as a YAML 1.1 reader would make it."""
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("gpusPerReplica: 1",
                                                          "gpusPerReplica: yes")
    stack = read_stack_file(_write(tmp_path, text))
    with pytest.raises(ConfigError) as err:
        parse_config(stack.config, project="llm-hosting", stack="x")
    assert err.value.problems == ("llm-hosting:models[0].gpusPerReplica: 'yes' is not accepted; "
                                  "use one of 1, 2, 4 or 8",)


def _write(tmp_path, text: str):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("field", "value"), [
    ("parameters", 1e300), ("hiddenSize", 10**310), ("layers", 0), ("vocabSize", 2**21 + 1),
    ("maxPositionEmbeddings", MAX_TOKENS + 1), ("parameters", 10_000.5), ("headDim", 1025),
])
def test_shape_fields_are_finite_and_bounded(base_config, field, value):
    with_model(base_config, modelId="acme/custom-7b", shape={**SHAPE, field: value})
    found = problems(base_config)
    assert any(p.startswith(f"llm-hosting:models[0].shape.{field}: ") for p in found), found


def test_infinity_in_structured_config_is_a_config_error(base_config):
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base_config.items()}
    raw["llm-hosting:models"] = raw["llm-hosting:models"].replace('"maxReplicas": 2',
                                                                  '"maxReplicas": Infinity')
    with pytest.raises(ConfigError) as err:
        parse_config(raw, project="llm-hosting", stack="x")
    assert err.value.problems == (
        "llm-hosting:models: not valid structured config (Infinity is not a number JSON (or the "
        "Pulumi CLI) can carry; use a finite number)",)


def test_head_dim_is_derived_when_absent_and_required_when_it_cannot_be(base_config):
    with_model(base_config, modelId="acme/custom-7b", shape=dict(SHAPE))
    (model,) = parse(base_config).models
    assert model.shape.head_dim == 4096 // 32
    with_model(base_config, shape={**SHAPE, "hiddenSize": 4000, "attentionHeads": 48,
                                   "kvHeads": 8})
    assert problems(base_config) == (
        "llm-hosting:models[0].shape.headDim: required here: hiddenSize (4000) is not a multiple "
        "of attentionHeads (48), so it cannot be derived; copy `head_dim` from the model's "
        "config.json",)


@pytest.mark.parametrize(("changes", "key"), [
    ({"kvHeads": 12}, "kvHeads"), ({"kvHeads": 64}, "kvHeads"),
    ({"activeParameters": 8.0}, "activeParameters"), ({"parameters": 0.1}, "parameters"),
])
def test_shape_fields_must_agree_with_each_other(base_config, changes, key):
    with_model(base_config, modelId="acme/custom-7b", shape={**SHAPE, **changes})
    (problem,) = problems(base_config)
    assert problem.startswith(f"llm-hosting:models[0].shape.{key}: ")


def test_dev_example_takes_a_second_model_as_a_user_adds_it():
    """`endpointDeployment: rolling` needs one instance type; a second model that leaves
    `instanceType` out, as the example's first does, is sized onto a type both fit."""
    stack = read_stack_file(ROOT / "Pulumi.dev.yaml")
    models = json.loads(stack.config["llm-hosting:models"])
    alone = parse_config(stack.config, project="llm-hosting", stack="dev").models[0]
    models.append({**models[0], "name": "qwen-14b", "modelId": "Qwen/Qwen2.5-14B-Instruct"})
    config = dict(stack.config, **{"llm-hosting:models": json.dumps(models)})
    parsed = parse_config(config, project="llm-hosting", stack="dev")
    assert parsed.sagemaker.endpoint_deployment == "rolling"
    (variant,) = plan_variants(parsed)
    assert all(m.memory.fits for m in parsed.models)
    assert variant.instance.name != alone.instance.name  # the 7B alone takes a smaller type
    # ...and a pinned type wins when every model fits it
    models[1]["instanceType"] = "g6e.2xlarge"
    config["llm-hosting:models"] = json.dumps(models)
    parsed = parse_config(config, project="llm-hosting", stack="dev")
    assert {m.instance.name for m in parsed.models} == {"g6e.2xlarge"}


def test_blue_green_keeps_each_model_on_its_own_cheapest_type(base_config):
    models = [{**base_config["llm-hosting:models"][0], "modelId": "Qwen/Qwen2.5-7B-Instruct",
               "weightsUri": None},
              {**base_config["llm-hosting:models"][0], "name": "big",
               "modelId": "Qwen/Qwen2.5-14B-Instruct", "weightsUri": None}]
    base_config["llm-hosting:models"] = [{k: v for k, v in m.items() if v is not None}
                                         for m in models]
    assert len({m.instance.name for m in parse(base_config).models}) == 2


def test_a_decimal_set_with_pulumi_config_set_path_is_a_float(base_config):
    """`pulumi config set --path '...shape.parameters' 7.6` stores "7.6", a string (the CLI
    coerces only integers and booleans); integers stay strict."""
    with_model(base_config, modelId="acme/custom-7b", shape={**SHAPE, "parameters": "7.6"})
    base_config["llm-hosting:eks"] = {"instancePriceRatio": "1.5"}
    parsed = parse(base_config)
    assert parsed.models[0].shape.parameters_b == 7.6 and parsed.eks.instance_price_ratio == 1.5
    with_model(base_config, shape={**SHAPE, "parameters": "7.6B"})
    assert problems(base_config) == (
        "llm-hosting:models[0].shape.parameters: Input should be a valid number (got '7.6B')",)
    with_model(base_config, shape={**SHAPE, "parameters": "1e400"})
    assert problems(base_config) == (
        "llm-hosting:models[0].shape.parameters: Input should be a finite number (got inf)",)
