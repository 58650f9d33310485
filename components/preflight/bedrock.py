"""The gateway's Bedrock fallbacks: each model offered in the stack's region and usable by the
account (model access granted, agreement accepted), or each inference profile active.

Calls: `bedrock:GetFoundationModel` (the model exists in the region, its lifecycle, whether it
takes on-demand calls at all) and `bedrock:GetFoundationModelAvailability` (authorization,
entitlement, agreement and region availability for this account), or
`bedrock:GetInferenceProfile` for a cross-region profile id (`us.`, `eu.`, ...) or ARN.
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GetFoundationModel.html
https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html
"""

from __future__ import annotations

from typing import Any

from components.config import BEDROCK_PREFIX, StackConfig
from components.facts import bedrock as ids
from components.preflight.checks import AWS_ERRORS, Check, Context, aws_error, error_code


def bedrock_fallbacks(config: StackConfig) -> list[tuple[str, str]]:
    """(model name, Bedrock model id or ARN) for every `bedrock:` entry of models[].fallbacks
    (validated by config: well formed, in the stack's region, gateway on)."""
    return [(model.name, target.removeprefix(BEDROCK_PREFIX)) for model in config.models
            for target in model.spec.fallbacks if target.startswith(BEDROCK_PREFIX)]


def _kind(target: str) -> tuple[str, str]:
    """('foundation-model' | 'inference-profile' | <other ARN resource type>, identifier), read
    with the id and ARN forms config validation accepts (components/facts/bedrock.py)."""
    arn = ids.MODEL_ARN.match(target)
    if arn is not None:
        kind = arn.group("kind")
        if kind == "foundation-model":
            return kind, arn.group("resource")
        return ("inference-profile" if kind.endswith("inference-profile") else kind), target
    match = ids.MODEL_ID.match(target)
    geo = match.group("geo") if match else None
    return ("inference-profile" if geo else "foundation-model"), target


def _access_problems(availability: dict[str, Any]) -> list[str]:
    problems = []
    if availability.get("authorizationStatus") != "AUTHORIZED":
        problems.append("not authorized for this account")
    if availability.get("entitlementAvailability") != "AVAILABLE":
        problems.append("model access not granted")
    if availability.get("regionAvailability") != "AVAILABLE":
        problems.append("not available in the region")
    agreement = availability.get("agreementAvailability", {}).get("status")
    if agreement not in (None, "AVAILABLE"):
        problems.append(f"end-user agreement {agreement.lower()}")
    return problems


def _foundation(ctx: Context, name: str, model_id: str) -> Check:
    bedrock, region = ctx.clients("bedrock"), ctx.config.region
    access_fix = (f"grant model access in the Bedrock console ({region}, Model access) and "
                  "accept the provider's terms")
    try:
        details = bedrock.get_foundation_model(modelIdentifier=model_id)["modelDetails"]
    except AWS_ERRORS as exc:
        if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
            return Check(name, "fail", f"{model_id} is not a Bedrock model in {region}",
                         f"`aws bedrock list-foundation-models --region {region} --query "
                         "'modelSummaries[].modelId'`; or use a cross-region inference profile")
        return aws_error(name, "bedrock:GetFoundationModel", exc, "bedrock:GetFoundationModel")
    if "ON_DEMAND" not in details.get("inferenceTypesSupported", ["ON_DEMAND"]):
        return Check(name, "fail", f"{model_id} takes no on-demand calls in {region} (only "
                     f"{', '.join(details.get('inferenceTypesSupported', []))})",
                     f"use its inference profile (e.g. bedrock:us.{model_id}) instead")
    try:
        availability = bedrock.get_foundation_model_availability(modelId=model_id)
    except AWS_ERRORS as exc:
        return aws_error(name, "bedrock:GetFoundationModelAvailability", exc,
                         "bedrock:GetFoundationModelAvailability")
    problems = _access_problems(availability)
    if problems:
        return Check(name, "fail", f"{model_id}: {'; '.join(problems)}", access_fix)
    lifecycle = details.get("modelLifecycle", {}).get("status", "ACTIVE")
    if lifecycle != "ACTIVE":
        return Check(name, "warn", f"{model_id} is {lifecycle} in {region}: AWS retires it",
                     "move the fallback to an ACTIVE model")
    return Check(name, "pass", f"{model_id} is enabled in {region}")


def _profile(ctx: Context, name: str, profile: str) -> Check:
    try:
        found = ctx.clients("bedrock").get_inference_profile(inferenceProfileIdentifier=profile)
    except AWS_ERRORS as exc:
        if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
            return Check(name, "fail", f"{profile} is not an inference profile in "
                         f"{ctx.config.region}", "`aws bedrock list-inference-profiles`")
        return aws_error(name, "bedrock:GetInferenceProfile", exc, "bedrock:GetInferenceProfile")
    if found.get("status") != "ACTIVE":
        return Check(name, "fail", f"{profile} is {found.get('status')}", "use an active profile")
    return Check(name, "pass", f"{profile} is an active inference profile over "
                 f"{len(found.get('models', []))} model(s)")


def check(ctx: Context) -> list[Check]:
    rows = []
    for model, target in bedrock_fallbacks(ctx.config):
        name = f"bedrock {model} -> {target}"
        kind, ident = _kind(target)
        if kind == "foundation-model":
            rows.append(_foundation(ctx, name, ident))
        elif kind == "inference-profile":
            rows.append(_profile(ctx, name, ident))
        else:
            rows.append(Check(name, "warn", f"a {kind} ARN: preflight checks foundation models "
                              "and inference profiles only", "check it by hand in the console"))
    return rows
