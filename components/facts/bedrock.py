"""Amazon Bedrock models the gateway may fall back to: id forms, and context lengths we know.

Only what validation needs: whether a `bedrock:<target>` is well formed, and, for the models
listed here, their context window, so a fallback never goes to a model that cannot take the
prompts its source accepts. A well-formed id not listed here is accepted (Bedrock adds models
every month); its context cannot be checked offline, which docs/gateway.md says.

Id and ARN forms follow the `modelId` pattern of bedrock-runtime's Converse operation in
botocore's service model (ConversationalModelId): a foundation-model id `<provider>.<model>`
with an optional `:<version>` suffix, optionally behind a cross-Region inference-profile prefix,
or the ARN of a foundation model, custom model, imported model, provisioned model, custom model
deployment, or (application) inference profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

GEO_PREFIXES: tuple[str, ...] = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")
"""Cross-Region inference-profile prefixes (`us.anthropic...`).
https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html"""

MODEL_ID = re.compile(
    r"^(?:(?P<geo>" + "|".join(re.escape(g) for g in GEO_PREFIXES) + r")\.)?"
    r"(?P<base>[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}(?:[.:][a-z0-9-]{1,63}){0,3})$"
)
MODEL_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):bedrock:(?P<region>[a-z0-9-]{1,20}):"
    r"(?P<account>[0-9]{12})?:(?P<kind>foundation-model|custom-model|imported-model|"
    r"provisioned-model|custom-model-deployment|inference-profile|"
    r"application-inference-profile)/(?P<resource>[a-zA-Z0-9.:/-]{1,200})$"
)

CONTEXT_TOKENS: Mapping[str, int] = MappingProxyType({
    # Anthropic Claude on Bedrock: 200k context.
    # https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
    "anthropic.claude-3-haiku-20240307-v1:0": 200_000,
    "anthropic.claude-3-5-haiku-20241022-v1:0": 200_000,
    "anthropic.claude-3-5-sonnet-20241022-v2:0": 200_000,
    "anthropic.claude-3-7-sonnet-20250219-v1:0": 200_000,
    # Meta Llama: 3.0 has an 8k context, 3.1+ 128k (model cards).
    # https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html
    "meta.llama3-8b-instruct-v1:0": 8_192,
    "meta.llama3-70b-instruct-v1:0": 8_192,
    "meta.llama3-1-8b-instruct-v1:0": 128_000,
    "meta.llama3-1-70b-instruct-v1:0": 128_000,
    "meta.llama3-3-70b-instruct-v1:0": 128_000,
    # Amazon Nova. https://docs.aws.amazon.com/nova/latest/userguide/what-is-nova.html
    "amazon.nova-micro-v1:0": 128_000,
    "amazon.nova-lite-v1:0": 300_000,
    "amazon.nova-pro-v1:0": 300_000,
    # Mistral. https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-mistral.html
    "mistral.mistral-7b-instruct-v0:2": 32_768,
    "mistral.mistral-large-2407-v1:0": 128_000,
})
"""Context window (tokens) per foundation-model id, checked 2026-11-30 against the pages cited."""


def context_tokens(model_id: str) -> int | None:
    """The context window of a Bedrock model id (geo prefix ignored), None when unknown."""
    match = MODEL_ID.match(model_id)
    return CONTEXT_TOKENS.get(match.group("base")) if match else None
