"""Where each model of a deployed stack answers, from the stack's outputs.

The stack's entry point, in this order:
* the gateway (`gatewayUrl`, OpenAI-compatible, master key in Secrets Manager at
  `gatewayKeySecretArn`) when the stack has one: every model through it, by model name;
* SageMaker: the runtime API with the endpoint and each model's inference component
  (`endpointName`, `inferenceComponentNames`), IAM-authenticated, reachable from anywhere;
* ECS: each model's path on the internal ALB (`endpoints`: `http://<alb>/<model>/v1`);
* EKS: each model's Service (`endpoints`: the in-cluster chat-completions URL).
ECS, EKS and the gateway are private (VPC-only) by default; `--url MODEL=URL` points a model at
a tunnel or port-forward instead (docs/deploy.md, "Smoke test and benchmark").
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.config import StackConfig
from components.smoke.clients import Target

GATEWAY_KEY_VARIABLE = "LLM_HOSTING_GATEWAY_KEY"


class OutputsError(Exception):
    """The stack's outputs cannot be read or lack what the smoke test needs."""


def read_outputs(stack: str, root: Path, outputs_file: Path | None = None) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets` (the gateway key ARN is not secret, but
    kubeconfig-like outputs are), or a JSON file with the same content."""
    if outputs_file is not None:
        return dict(json.loads(outputs_file.read_text()))
    try:
        done = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
            cwd=root, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise OutputsError("the Pulumi CLI is not on PATH; install it, or pass --outputs FILE "
                           "(`pulumi stack output --json > FILE` where it is)") from exc
    if done.returncode != 0:
        raise OutputsError(f"`pulumi stack output --stack {stack}` failed: "
                           f"{done.stderr.strip()[:500]}")
    return dict(json.loads(done.stdout or "{}"))


def chat_url(url: str) -> str:
    """`.../v1` or `.../v1/chat/completions` -> the chat-completions URL."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


def gateway_model_name(model_name: str) -> str:
    """The name the gateway routes a model by: the stack's model name."""
    return model_name


def gateway_key(outputs: Mapping[str, Any], secrets: Any) -> str:
    """The gateway's master key: LLM_HOSTING_GATEWAY_KEY, else Secrets Manager."""
    if os.environ.get(GATEWAY_KEY_VARIABLE):
        return os.environ[GATEWAY_KEY_VARIABLE]
    arn = outputs.get("gatewayKeySecretArn")
    if not arn:
        raise OutputsError(f"the gateway needs its key: set {GATEWAY_KEY_VARIABLE}, or export "
                           "gatewayKeySecretArn from the stack")
    if secrets is None:
        raise OutputsError(f"reading the gateway key needs Secrets Manager; set "
                           f"{GATEWAY_KEY_VARIABLE} instead")
    value = str(secrets().get_secret_value(SecretId=arn)["SecretString"])
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    if isinstance(parsed, dict):
        for key in ("key", "masterKey", "master_key", "LITELLM_MASTER_KEY"):
            if key in parsed:
                return str(parsed[key])
    return value


def _entry(config: StackConfig, outputs: Mapping[str, Any], name: str, model_id: str,
           gateway_headers: Mapping[str, str]) -> Target:
    gateway = outputs.get("gatewayUrl")
    if gateway:
        return Target(name, "openai", "gateway", url=chat_url(str(gateway)),
                      model=gateway_model_name(name), headers=dict(gateway_headers))
    if config.platform == "sagemaker":
        components = outputs.get("inferenceComponentNames") or {}
        if "endpointName" not in outputs or name not in components:
            raise OutputsError(f"outputs lack endpointName / inferenceComponentNames.{name}: "
                               "is the stack deployed (`pulumi up`)?")
        return Target(name, "sagemaker", "sagemaker-runtime",
                      endpoint_name=str(outputs["endpointName"]),
                      component_name=str(components[name]), model=model_id)
    endpoints = outputs.get("endpoints") or {}
    if name not in endpoints:
        raise OutputsError(f"outputs lack endpoints.{name}: is the stack deployed (`pulumi up`)?")
    return Target(name, "openai", f"{config.platform} endpoint",
                  url=chat_url(str(endpoints[name])), model=model_id)


def targets(config: StackConfig, outputs: Mapping[str, Any], overrides: Mapping[str, str],
            secrets: Any = None) -> list[Target]:
    """One target per model of the config, through the stack's entry point. An override URL (a
    tunnel or port-forward to that entry point) replaces only where the request goes; a
    SageMaker model overridden is called as the OpenAI server inside its container would be.
    `secrets`: a callable returning a Secrets Manager client (gateway key only)."""
    headers: dict[str, str] = {}
    if outputs.get("gatewayUrl"):
        headers = {"Authorization": f"Bearer {gateway_key(outputs, secrets)}"}
    found: list[Target] = []
    for model in config.models:
        override = overrides.get(model.name)
        try:
            target = _entry(config, outputs, model.name, model.spec.model_id, headers)
        except OutputsError:
            if override is None:
                raise
            target = Target(model.name, "openai", "engine", model=model.spec.model_id)
        if override is not None:
            target = Target(model.name, "openai", f"{target.via} via --url",
                            url=chat_url(override), model=target.model, headers=target.headers)
        found.append(target)
    return found
