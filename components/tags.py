"""Names and tags for every resource, from one place.

Cost reports, IAM conditions and the policy pack all key on the same tag set, so it is built once
here: `project`, `stack`, `environment`, `managed-by=pulumi`, the user's `tags`, and `model` on
resources that serve one model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.facts import ModelShape, get_model_shape

if TYPE_CHECKING:
    from components.config import Model

SERVING_TAG_PREFIX = "llm-hosting/"
"""Prefix of the tags that describe what a serving resource runs (read by the policy pack)."""

SHAPE_TAG = f"{SERVING_TAG_PREFIX}shape"
"""Serving tag with the architecture of a model the facts catalog does not know (`shape:`)."""

SHAPE_TAG_FIELDS: Mapping[str, str] = {
    "p": "parameters_b", "a": "active_parameters_b", "l": "layers", "h": "hidden_size",
    "ah": "attention_heads", "kv": "kv_heads", "hd": "head_dim", "v": "vocab_size",
    "ctx": "max_position_embeddings", "tied": "tied_embeddings", "dtype": "dtype",
    "i": "intermediate_size", "k": "experts_per_token",
}
"""Short key in the `llm-hosting/shape` value -> `ModelShape` field; the pack parses with it."""


def shape_tag_value(shape: ModelShape) -> str:
    """`p=7.2 a=7.2 l=32 ... tied=0 dtype=bfloat16`: one AWS tag value (<= 256 characters).

    Space-separated because SageMaker, ECS, ELB and CloudWatch Logs tag values only allow
    letters, digits, spaces and `_ . : / = + - @` (TagValue pattern in their API models): a
    comma would make CreateModel/CreateService reject the request.
    """

    def text(value: object) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        return repr(value) if isinstance(value, float) else str(value)

    return " ".join(f"{k}={text(getattr(shape, f))}" for k, f in SHAPE_TAG_FIELDS.items())


@dataclass(frozen=True)
class Naming:
    project: str
    stack: str
    environment: str
    user_tags: Mapping[str, str] = field(default_factory=dict)
    protection: str = "auto"
    """`llm-hosting:protection`: `auto` protects prod, `off` lifts it for a teardown."""

    @property
    def protect(self) -> bool:
        """Whether stateful resources (KMS keys, log groups, clusters, services, metric
        history) get Pulumi's `protect` and AWS deletion protection: in prod, unless the stack
        sets `protection: off` to be torn down on purpose (docs/deploy.md#tear-down)."""
        return self.environment == "prod" and self.protection != "off"

    @property
    def prefix(self) -> str:
        """`<project>-<stack>`: unique per stack in one account, short enough for AWS limits."""
        return f"{self.project}-{self.stack}"

    def physical(self, *parts: str, max_len: int = 63) -> str:
        """A physical name for resources AWS needs named (endpoints, clusters, queues).

        Truncated from the left part so the distinguishing suffix survives length limits such
        as SageMaker's 63 characters.
        """
        suffix = "-".join(parts)
        name = f"{self.prefix}-{suffix}" if suffix else self.prefix
        if len(name) <= max_len:
            return name
        keep = max_len - len(suffix) - 1
        return f"{self.prefix[:max(keep, 1)]}-{suffix}"[:max_len]

    @property
    def cluster_name(self) -> str:
        """The name EKS/ECS clusters get and Karpenter discovery tags carry."""
        return self.physical()

    def tags(self, model: str | None = None, **extra: str) -> dict[str, str]:
        """The full tag set; `model` is added on resources that serve exactly one model."""
        tags = {
            **self.user_tags,
            "project": self.project,
            "stack": self.stack,
            "environment": self.environment,
            "managed-by": "pulumi",
        }
        if model is not None:
            tags["model"] = model
        tags.update(extra)
        return tags

    def serving_tags(self, model: Model, platform: str) -> dict[str, str]:
        """Tags for resources that run a model (endpoint configs, launch templates, node groups):
        the project's tag set plus `model` and the `serving_descriptor`."""
        return self.tags(model=model.name, **serving_descriptor(model, platform))


def startup_descriptor(model: Model) -> dict[str, str]:
    """`llm-hosting/weights` (`s3` or `hub`) and `llm-hosting/checkpoint` (the stored weight
    format): the inputs of the start-up model (components/startup.py) the serving descriptor
    lacks, so the pack's `llm-startup-timeouts` estimates what the program estimated. Set only
    on the resources that rule reads (inference components, ECS services, Deployments): a new
    tag on launch templates or EC2NodeClasses would roll every GPU node for nothing."""
    p = SERVING_TAG_PREFIX
    return {f"{p}weights": "s3" if model.spec.weights_uri else "hub",
            f"{p}checkpoint": model.checkpoint_quantization}


def serving_descriptor(model: Model, platform: str) -> dict[str, str]:
    """The `llm-hosting/*` keys that describe what a resource serves.

    They carry enough of the sizing request for the policy pack to recompute the fit and the
    worst-case cost from the shared facts module, without access to the stack config. A model
    sized with a shape the catalog does not give (a custom `shape:`) also carries it in
    `llm-hosting/shape`, so the pack sizes what the program sized. AWS resources get them as
    tags (`Naming.serving_tags`); Kubernetes objects as annotations, because model ids hold a
    `/` that label values may not.
    """
    spec = model.spec
    p = SERVING_TAG_PREFIX
    shape: dict[str, str] = {}
    if model.shape != get_model_shape(spec.model_id):
        shape[SHAPE_TAG] = shape_tag_value(model.shape)
    return {
        f"{p}platform": platform,
        f"{p}model-id": spec.model_id,
        f"{p}instance-type": model.instance.name,
        f"{p}quantization": spec.quantization,
        f"{p}engine": spec.engine,
        f"{p}gpus-per-replica": str(model.gpus_per_replica),
        f"{p}max-input-tokens": str(spec.max_input_tokens),
        f"{p}max-total-tokens": str(spec.max_total_tokens),
        f"{p}concurrency-target": str(spec.concurrency_target),
        f"{p}min-replicas": str(spec.min_replicas),
        f"{p}max-replicas": str(spec.replicas_max),
        **shape,
    }
