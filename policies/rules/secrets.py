"""`no-plaintext-secrets`: credentials never sit where the API shows them in plain text.

A Pulumi secret keeps a value out of the state file, but once it is an environment variable, a
command-line argument or a ConfigMap entry of an ECS task definition, a SageMaker model or
inference component, or a Kubernetes workload, the AWS or Kubernetes API shows it to anyone
allowed to describe the resource (DescribeTaskDefinition, DescribeModel,
`kubectl get deploy -o yaml`, `kubectl get configmap`), and `ps` shows arguments on the host. The
analyzer receives secrets already unwrapped, so this rule judges the *place*, not the wrapping:

- environment values (ECS `environment`, SageMaker `environment`, Kubernetes `env[].value`)
  named like a credential or shaped like one;
- arguments (ECS `command`/`entryPoint`, Kubernetes `command`/`args` of every container, init
  containers included): a credential-shaped value, a credential-named flag with a literal value
  (`--hf-token=hf_...`, `--api-key abc`) or a credential-named assignment in a shell script;
- ConfigMaps (which `envFrom` and `configMapKeyRef` turn into environment variables): a
  credential-named key with a value, a credential-shaped value, or a credential-named
  `key: value` line inside an embedded file; and a credential-named env var read from a
  ConfigMap key.

References stay allowed: `$(VAR)`/`${VAR}`/`$VAR` expansions, `os.environ/VAR` (LiteLLM), file
paths, and empty values. The fix is a reference resolved at run time: ECS `secrets` (Secrets
Manager `valueFrom`), Kubernetes `valueFrom.secretKeyRef`/`envFrom.secretRef`, or no token at
all (weights staged in S3 via `weightsUri`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise
from typing import Any

from policies.rules._framework import (
    Malformed,
    Resource,
    Rule,
    get,
    is_map,
    items_at,
    json_at,
    map_at,
    path_of,
    string_at,
)

#: Name segments (split on `_`, `-`, `.`) that mark a credential. Matching whole segments keeps
#: MAX_TOTAL_TOKENS / MAX_INPUT_TOKENS (engine limits, not credentials) out.
_SECRET_SEGMENTS = frozenset({"TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "CREDENTIAL",
                              "CREDENTIALS"})
_KEY_QUALIFIERS = frozenset({"API", "ACCESS", "PRIVATE", "SECRET", "SIGNING", "ENCRYPTION",
                             "MASTER"})
#: Value shapes of credentials whatever the variable is called: Hugging Face user access tokens
#: (https://huggingface.co/docs/hub/security-tokens) and AWS access key ids
#: (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
_SECRET_VALUES = re.compile(r"\b(hf_[A-Za-z0-9]{30,}|(AKIA|ASIA)[0-9A-Z]{16})\b")
_REFERENCE = re.compile(r"^(\$\(|\$\{|\$[A-Za-z_]|os\.environ/|/|\{\{)")


def is_secret_name(name: str) -> bool:
    segments = [s for s in re.split(r"[_.\-\s]", name.upper()) if s]
    if any(s in _SECRET_SEGMENTS for s in segments):
        return True
    return any(a in _KEY_QUALIFIERS and b == "KEY" for a, b in pairwise(segments))


def is_reference(value: str) -> bool:
    value = value.strip().strip("\"'")
    return not value or bool(_REFERENCE.match(value))


def shaped_like_secret(value: str) -> bool:
    return bool(_SECRET_VALUES.search(value))


def _why(name: str, value: Any, where: str) -> str | None:
    """`where`: the value's property path, for a malformed scalar (a map or list knows its
    own)."""
    if value is None:
        return None
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise Malformed(path_of(value, where), value, "a string value")
    if not value:
        return None
    if is_secret_name(name):
        return "is named like a credential"
    if shaped_like_secret(value):
        return "holds a value shaped like a credential"
    return None


def _env_map(env: Any) -> list[tuple[str, Any]]:
    if env is None:
        return []
    if not is_map(env):
        raise Malformed(path_of(env), env, "a map of environment variables")
    return [(str(k), v) for k, v in env.items()]


# ------------------------------------------------------------------------------------------
# arguments


def argument_problems(args: list[Any]) -> Iterator[str]:
    """What is wrong with a command line (list of arguments), one message part per finding."""
    words: list[str] = []
    for arg in args:
        if not isinstance(arg, str):
            raise Malformed(path_of(arg, "argument"), arg, "a string argument")
        if shaped_like_secret(arg):
            yield "an argument holds a value shaped like a credential"
            continue
        if not any(c.isspace() for c in arg):
            words.append(arg)
            continue
        try:  # a shell script (sh -c "..."): its words, quotes resolved
            words += shlex.split(arg)
        except ValueError:
            words += arg.split()
    for word, following in pairwise([*words, ""]):
        if word.startswith("-"):
            flag, eq, value = word.lstrip("-").partition("=")
            if not eq:
                value = following if not following.startswith("-") else ""
            if flag and is_secret_name(flag) and value and not is_reference(value) \
                    and not is_secret_name(value):
                yield f"flag {word.split('=')[0]} is given a literal credential"
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            name, _, value = word.partition("=")
            if is_secret_name(name) and value and not is_reference(value):
                yield f"{name}= assigns a literal credential"


def _argument_messages(container: str, key: str, args: list[Any], api: str) -> Iterator[str]:
    for problem in dict.fromkeys(argument_problems(args)):
        yield (f"container {container}: {key}: {problem}; {api} shows arguments in plain text: "
               "pass it as a secret-backed environment variable and reference it")


# ------------------------------------------------------------------------------------------
# ECS


def _ecs_containers(resource: Resource) -> list[Any]:
    return items_at(json_at(resource.props, "containerDefinitions"))


def check_task_definition(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for c in _ecs_containers(resource):
        cname = string_at(c, "name") or "?"
        for entry in items_at(c, "environment"):
            name = string_at(entry, "name") or ""
            why = _why(name, get(entry, "value"), f"{path_of(entry, cname)}.value")
            if why:
                yield (f"container {cname}: environment variable {name} "
                       f"{why}; DescribeTaskDefinition shows it in plain text: pass it through "
                       "the container's `secrets` (Secrets Manager valueFrom)")
        for key in ("entryPoint", "command"):
            yield from _argument_messages(cname, key, items_at(c, key), "DescribeTaskDefinition")


# ------------------------------------------------------------------------------------------
# SageMaker


def _sagemaker_env(where: str, env: Any, api: str) -> Iterable[str]:
    for name, value in _env_map(env):
        why = _why(name, value, f"{path_of(env, where)}.{name}")
        if why:
            yield (f"{where}: environment variable {name} {why}; {api} shows it in plain text "
                   "to anyone allowed to describe it: stage the weights in S3 (weightsUri) "
                   "so no token is needed")


def check_sagemaker_model(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    yield from _sagemaker_env("primaryContainer", get(p, "primaryContainer", "environment"),
                              "DescribeModel")
    for i, c in enumerate(items_at(p, "containers")):
        yield from _sagemaker_env(f"containers[{i}]", get(c, "environment"), "DescribeModel")


def check_inference_component(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    p = resource.props
    yield from _sagemaker_env("specification.container",
                              get(p, "specification", "container", "environment"),
                              "DescribeInferenceComponent")
    for i, spec in enumerate(items_at(p, "specifications")):
        yield from _sagemaker_env(f"specifications[{i}].container",
                                  get(spec, "container", "environment"),
                                  "DescribeInferenceComponent")


# ------------------------------------------------------------------------------------------
# Kubernetes


def pod_spec(props: Mapping[str, Any], kind: str) -> Any:
    if kind == "Pod":
        return map_at(props, "spec")
    if kind == "CronJob":
        return map_at(props, "spec", "jobTemplate", "spec", "template", "spec")
    return map_at(props, "spec", "template", "spec")


def containers_of(spec: Any) -> list[tuple[str, Any]]:
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out += [(key, c) for c in items_at(spec, key)]
    return out


_POD_SPEC = "its value is readable by anyone who can read the pod spec"


def check_pod_spec(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    kind = resource.type.rsplit(":", 1)[-1]
    for _, c in containers_of(pod_spec(resource.props, kind)):
        cname = string_at(c, "name") or "?"
        for entry in items_at(c, "env"):
            name = string_at(entry, "name") or ""
            why = _why(name, get(entry, "value"), f"{path_of(entry, cname)}.value")
            if why:
                yield (f"container {cname}: env {name} {why}; {_POD_SPEC}: use "
                       "valueFrom.secretKeyRef")
            ref = get(entry, "valueFrom", "configMapKeyRef")
            if ref is not None and is_secret_name(name):
                cm = string_at(map_at(entry, "valueFrom", "configMapKeyRef"), "name") or "?"
                yield (f"container {cname}: env {name} is read from ConfigMap {cm}, which anyone "
                       "who can read ConfigMaps sees in plain text: use valueFrom.secretKeyRef")
        for key in ("command", "args"):
            yield from _argument_messages(cname, key, items_at(c, key), "the pod spec")


_FILE_LINE = re.compile(
    r"""^\s*(?:-\s+)?["']?([A-Za-z0-9_.\-]+)["']?\s*[:=]\s*["']?([^"'\s#,]+)""")
"""`key: value`, `- key: value` (a YAML list item), `"key": "value"`, `KEY=value` lines."""


def _embedded_problems(text: str) -> Iterator[str]:
    """Credential-named `key: value` / `key=value` lines of a file kept in a ConfigMap. The
    value must look like a secret (8+ characters, not a number, a boolean or a reference)."""
    for line in text.splitlines():
        match = _FILE_LINE.match(line)
        if not match:
            continue
        key, value = match.groups()
        if not is_secret_name(key) or is_reference(value) or len(value) < 8:
            continue
        if value.lower() in ("true", "false", "null", "none") or \
                re.fullmatch(r"[\d.]+", value):
            continue
        yield key


def check_config_map(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for section in ("data", "binaryData"):
        for key, value in _env_map(get(resource.props, section)):
            if value is None:
                continue
            if not isinstance(value, str):
                raise Malformed(f"{section}.{key}", value, "a string")
            if section == "data" and is_secret_name(key) and value and not is_reference(value):
                yield (f"{section}.{key} is named like a credential; a ConfigMap (and every "
                       "envFrom that reads it) shows it in plain text: use a Secret")
            elif shaped_like_secret(value):
                yield (f"{section}.{key} holds a value shaped like a credential; use a Secret")
            elif section == "data":
                for name in dict.fromkeys(_embedded_problems(value)):
                    yield (f"{section}.{key} sets {name} to a literal credential; mount it from "
                           "a Secret instead")


WORKLOAD_TYPES = tuple(
    f"kubernetes:{api}:{kind}"
    for api, kind in (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
                      ("apps/v1", "DaemonSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
                      ("core/v1", "Pod"))
)
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"

TASK_DEFINITIONS = ("aws:ecs/taskDefinition:TaskDefinition", "aws-native:ecs:TaskDefinition")
"""aws-native's twin takes `containerDefinitions` as a list, not a JSON string (same keys)."""
MODELS = ("aws:sagemaker/model:Model", "aws-native:sagemaker:Model")

NO_PLAINTEXT_SECRETS = Rule(
    name="no-plaintext-secrets",
    description=(
        "No token, key or password in a container environment, a command line or a ConfigMap "
        "(ECS, SageMaker, Kubernetes)."
    ),
    checks={
        **dict.fromkeys(TASK_DEFINITIONS, check_task_definition),
        **dict.fromkeys(MODELS, check_sagemaker_model),
        "aws-native:sagemaker:InferenceComponent": check_inference_component,
        **dict.fromkeys(WORKLOAD_TYPES, check_pod_spec),
        CONFIG_MAP: check_config_map,
    },
)

RULES = [NO_PLAINTEXT_SECRETS]
