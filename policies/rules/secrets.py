"""`no-plaintext-secrets`: credentials never sit in a container's environment.

A Pulumi secret keeps a value out of the state file, but once it is an environment variable of an
ECS task definition, a SageMaker model or inference component, or a Kubernetes pod spec, the AWS
or Kubernetes API shows it to anyone allowed to describe the resource (DescribeTaskDefinition,
DescribeModel, `kubectl get deploy -o yaml`). The analyzer receives secrets already unwrapped, so
this rule judges the *place*, not the wrapping: a credential-named variable or a credential-shaped
value in an environment is a violation either way. The fix is a reference resolved at run time:
ECS `secrets` (Secrets Manager `valueFrom`), Kubernetes `valueFrom.secretKeyRef`, or no token at
all (weights staged in S3 via `weightsUri`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

from policies.rules._framework import Resource, Rule, get, is_map, items, parse_json

#: Name segments (split on `_`, `-`, `.`) that mark a credential. Matching whole segments keeps
#: MAX_TOTAL_TOKENS / MAX_INPUT_TOKENS (engine limits, not credentials) out.
_SECRET_SEGMENTS = frozenset({"TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "CREDENTIAL",
                              "CREDENTIALS"})
_KEY_QUALIFIERS = frozenset({"API", "ACCESS", "PRIVATE", "SECRET", "SIGNING", "ENCRYPTION"})
#: Value shapes of credentials whatever the variable is called: Hugging Face user access tokens
#: (https://huggingface.co/docs/hub/security-tokens) and AWS access key ids
#: (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
_SECRET_VALUES = re.compile(r"\b(hf_[A-Za-z0-9]{30,}|(AKIA|ASIA)[0-9A-Z]{16})\b")


def is_secret_name(name: str) -> bool:
    segments = [s for s in re.split(r"[_.\-]", name.upper()) if s]
    if any(s in _SECRET_SEGMENTS for s in segments):
        return True
    return any(a in _KEY_QUALIFIERS and b == "KEY" for a, b in pairwise(segments))


def _why(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if is_secret_name(name):
        return "is named like a credential"
    if _SECRET_VALUES.search(value):
        return "holds a value shaped like a credential"
    return None


def _env_map(env: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in env.items()] if is_map(env) else []


def check_task_definition(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    containers = parse_json(get(resource.props, "containerDefinitions"))
    for c in items(containers):
        for entry in items(get(c, "environment")):
            name = str(get(entry, "name", default=""))
            why = _why(name, get(entry, "value"))
            if why:
                yield (f"container {get(c, 'name', default='?')}: environment variable {name} "
                       f"{why}; DescribeTaskDefinition shows it in plain text: pass it through "
                       "the container's `secrets` (Secrets Manager valueFrom)")


def _sagemaker_env(where: str, env: Any, api: str) -> Iterable[str]:
    for name, value in _env_map(env):
        why = _why(name, value)
        if why:
            yield (f"{where}: environment variable {name} {why}; {api} shows it in plain text "
                   "to anyone allowed to describe it: stage the weights in S3 (weightsUri) "
                   "so no token is needed")


def check_sagemaker_model(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    yield from _sagemaker_env("primaryContainer", get(p, "primaryContainer", "environment"),
                              "DescribeModel")
    for i, c in enumerate(items(get(p, "containers"))):
        yield from _sagemaker_env(f"containers[{i}]", get(c, "environment"), "DescribeModel")


def check_inference_component(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    yield from _sagemaker_env("specification.container",
                              get(p, "specification", "container", "environment"),
                              "DescribeInferenceComponent")
    for i, spec in enumerate(items(get(p, "specifications"))):
        yield from _sagemaker_env(f"specifications[{i}].container",
                                  get(spec, "container", "environment"),
                                  "DescribeInferenceComponent")


def pod_spec(props: Mapping[str, Any], kind: str) -> Any:
    if kind == "Pod":
        return get(props, "spec")
    if kind == "CronJob":
        return get(props, "spec", "jobTemplate", "spec", "template", "spec")
    return get(props, "spec", "template", "spec")


def containers_of(spec: Any) -> list[tuple[str, Any]]:
    out = []
    for key in ("initContainers", "containers"):
        out += [(key, c) for c in items(get(spec, key))]
    return out


def check_pod_spec(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    kind = resource.type.rsplit(":", 1)[-1]
    for _, c in containers_of(pod_spec(resource.props, kind)):
        for entry in items(get(c, "env")):
            name = str(get(entry, "name", default=""))
            why = _why(name, get(entry, "value"))
            if why:
                yield (f"container {get(c, 'name', default='?')}: env {name} {why}; its value "
                       "is readable by anyone who can read the pod spec: use "
                       "valueFrom.secretKeyRef")


WORKLOAD_TYPES = tuple(
    f"kubernetes:{api}:{kind}"
    for api, kind in (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
                      ("apps/v1", "DaemonSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
                      ("core/v1", "Pod"))
)

NO_PLAINTEXT_SECRETS = Rule(
    name="no-plaintext-secrets",
    description=(
        "No token, key or password in an ECS container environment, a SageMaker model or "
        "inference-component environment, or a Kubernetes env value."
    ),
    checks={
        "aws:ecs/taskDefinition:TaskDefinition": check_task_definition,
        "aws:sagemaker/model:Model": check_sagemaker_model,
        "aws-native:sagemaker:InferenceComponent": check_inference_component,
        **dict.fromkeys(WORKLOAD_TYPES, check_pod_spec),
    },
)

RULES = [NO_PLAINTEXT_SECRETS]
