"""The stack config contract: parsed once, validated once, then frozen.

Every other module receives a `StackConfig`; nothing else reads `pulumi.Config`. Parsing is kept
apart from Pulumi (`parse_stack_config` takes a plain mapping of `llm-hosting:<key>` strings, as the
engine hands them to the program) so the offline `plan` command, the policy pack and the unit tests
all run exactly the checks `pulumi up` runs.

Every problem is collected and reported together, each with its key path and the fix, because a
user who fixes one typo per `pulumi up` attempt loses an afternoon. Sizing (does the model fit the
GPU?) is part of validation for the same reason: the most expensive failure is a model that does
not fit, found after a ten-minute endpoint creation.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from components.facts import (
    GPU_INSTANCES,
    GpuInstance,
    ModelShape,
    bedrock,
    checkpoint_quantization,
    get_gpu_instance,
    get_model_shape,
    is_gated,
    is_vision_language,
    price_per_hour,
    quantized_variants,
)
from components.sizing import (
    LMI_VLLM_0_8_4,
    TGI,
    TP_DEGREES,
    VLLM_0_12,
    CostEstimate,
    EngineProfile,
    MemoryEstimate,
    SizingRequest,
    choose_placement,
    describe_nothing_fits,
    estimate_cost,
    estimate_memory,
    tensor_parallel_problem,
)

NAMESPACE = "llm-hosting"

Environment = Literal["dev", "staging", "prod"]
Platform = Literal["sagemaker", "eks", "ecs"]
Engine = Literal["vllm", "tgi"]
Quantization = Literal["none", "awq", "gptq", "fp8"]
Capacity = Literal["on-demand", "spot"]
NatGateways = Literal["single", "onePerAz"]
Pricing = Literal["ec2", "sagemaker"]

PLATFORM_PRICING: Mapping[str, Pricing] = {"sagemaker": "sagemaker", "eks": "ec2", "ecs": "ec2"}
"""Which price list a platform pays: SageMaker bills its own `ml.` hourly rates."""

RESERVED_TAG_KEYS = frozenset({"project", "stack", "environment", "managed-by"})

# Ranges a real deployment can have. Every number in the config has one, so nothing downstream
# (sizing, packing, the program) ever sees an overflow, a loop over a million replicas, or a
# price in the millions per hour: the value is refused here, with its key path.
MAX_REPLICAS = 1000
"""Replicas of one model: beyond the GPU quota AWS grants one account in one region."""
MAX_TOKENS = 2**24
"""Context tokens (16,777,216): above the longest context any open model publishes (10M)."""
MAX_PARAMETERS_B = 10_000.0
"""Billions of parameters (10T): above the largest open checkpoints (~2T)."""
MAX_WAKE_TIMEOUT_SECONDS = 3600
"""A held request sends no byte until its model answers, so the load balancer's idle timeout
must outlast the hold; an ALB allows at most 4000 s
(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout),
which leaves room for the time to first token after an hour's hold."""

BEDROCK_PREFIX = "bedrock:"
"""A fallback target outside the stack: `bedrock:<model id or ARN>`."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+?)/?$")
_TAG_KEY = re.compile(r"^[\w .:/=+@-]{1,128}$")
# S3's own pattern for an SSE-KMS key ARN (key ARN only: no key id, no alias):
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_SSEKMSEncryption.html
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-zA-Z0-9-]*:kms:([a-z0-9-]+):[0-9]{12}:key/[a-zA-Z0-9-]+$")
_KMS_ALIAS_ARN = re.compile(r"^arn:aws[a-zA-Z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:alias/")


class ConfigError(Exception):
    """All problems found in a stack's config; `str()` lists one per line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the stack config:\n"
            + "\n".join(f"  - {p}" for p in self.problems)
        )


class _Strict(BaseModel):
    """camelCase keys, unknown keys rejected: a typo must never be silently ignored."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False,
        # The CLI passes structured config as JSON, so a number is a number: `"4"`, `4.5` for
        # an int, or `true` for a number are mistakes, not values to coerce; and JSON has no
        # infinity (`.inf` fails in the CLI itself).
        strict=True, allow_inf_nan=False,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_as_the_cli_stores_them(cls, value: Any, info: ValidationInfo) -> Any:
        """Booleans are never numbers (`gpusPerReplica: true` would pass `Literal[1, 2, 4, 8]`,
        True == 1 in Python). A decimal in a string is a float: `pulumi config set --path
        '...shape.parameters' 7.6` stores the string "7.6", because the CLI turns only
        integers and booleans into JSON types (pulumi/pulumi `config/object.go:coerce`)."""
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and not _accepts_bool(annotation):
            raise ValueError(f"{str(value).lower()} is a boolean; this key takes "
                             f"{_type_name(annotation).replace(chr(92), '')}")
        if isinstance(value, str) and _accepts(annotation, float) and _DECIMAL.match(value):
            return float(value)
        return value


class NetworkConfig(_Strict):
    cidr_block: str = Field(default="10.0.0.0/16", description="VPC range, private, /16 to /20")
    availability_zones: int | None = Field(
        default=None, ge=2, le=6, description="AZs to span (2-6); default 2 in dev, 3 otherwise"
    )
    nat_gateways: NatGateways | None = Field(
        default=None, description="`single` or `onePerAz`; default single in dev, else onePerAz"
    )


class ShapeConfig(_Strict):
    """Architecture of a model the facts catalog does not know (read it from its config.json).

    Upper bounds sit well above every published open model (Llama 3.1 405B: 126 layers, hidden
    16384, 128 heads; Gemma: head_dim 256, vocab 256k; Llama 4 Scout: 10M context).
    """

    parameters: float = Field(gt=0, le=MAX_PARAMETERS_B,
                              description="total parameters, in billions")
    active_parameters: float | None = Field(
        default=None, gt=0, le=MAX_PARAMETERS_B,
        description="MoE: parameters active per token, billions",
    )
    layers: int = Field(ge=1, le=1024, description="`num_hidden_layers`")
    hidden_size: int = Field(ge=1, le=131_072, description="`hidden_size`")
    attention_heads: int = Field(ge=1, le=1024, description="`num_attention_heads`")
    kv_heads: int = Field(ge=1, le=1024, description="`num_key_value_heads`")
    head_dim: int | None = Field(
        default=None, ge=1, le=1024,
        description="`head_dim`; derived as hiddenSize / attentionHeads when absent",
    )
    vocab_size: int = Field(ge=1, le=2**21, description="`vocab_size`")
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        default="bfloat16", description="`torch_dtype`"
    )
    max_position_embeddings: int = Field(ge=1, le=MAX_TOKENS,
                                         description="`max_position_embeddings`")
    tied_embeddings: bool = Field(default=False, description="`tie_word_embeddings`")
    intermediate_size: int | None = Field(
        default=None, ge=1, le=1_048_576,
        description="`intermediate_size` (MLP width; MoE: per expert); default 4 x hiddenSize",
    )
    experts_per_token: int = Field(
        default=1, ge=1, le=64, description="MoE: `num_experts_per_tok`; 1 for dense models"
    )
    quantization: Quantization = Field(
        default="none",
        description="the checkpoint's own format (`quantization_config.quant_method`): `none` "
        "for 16-bit weights, else `awq`, `gptq` or `fp8`",
    )

    @property
    def derived_head_dim(self) -> int:
        """`head_dim` as transformers derives it when config.json omits it."""
        return self.head_dim or self.hidden_size // self.attention_heads

    def to_shape(self) -> ModelShape:
        return ModelShape(
            parameters_b=self.parameters,
            active_parameters_b=self.active_parameters or self.parameters,
            layers=self.layers,
            hidden_size=self.hidden_size,
            attention_heads=self.attention_heads,
            kv_heads=self.kv_heads,
            head_dim=self.derived_head_dim,
            vocab_size=self.vocab_size,
            dtype=self.dtype,
            max_position_embeddings=self.max_position_embeddings,
            tied_embeddings=self.tied_embeddings,
            intermediate_size=self.intermediate_size or 4 * self.hidden_size,
            experts_per_token=self.experts_per_token,
        )


class ModelConfig(_Strict):
    name: str = Field(description="DNS-1123 label, unique; names endpoints and namespaces")
    model_id: str = Field(description="Hugging Face id, e.g. meta-llama/Meta-Llama-3-8B-Instruct")
    engine: Engine = Field(default="vllm", description="serving engine: `vllm` or `tgi`")
    quantization: Quantization = Field(
        default="none", description="`none`, `awq`, `gptq` or `fp8`"
    )
    max_input_tokens: int = Field(default=3072, ge=1, le=MAX_TOKENS,
                                  description="longest prompt accepted")
    max_total_tokens: int = Field(
        default=4096, ge=2, le=MAX_TOKENS,
        description="prompt + output per sequence; sizes the KV cache",
    )
    gpus_per_replica: Literal[1, 2, 4, 8] | None = Field(
        default=None,
        description="tensor-parallel GPUs per replica; omitted: the cheapest degree that fits",
        json_schema_extra={"defaultText": "chosen"},
    )
    instance_type: str | None = Field(
        default=None, description="EC2 name (g5.2xlarge); omitted: the cheapest that fits"
    )
    min_replicas: int = Field(
        default=1, ge=0, le=MAX_REPLICAS,
        description="replicas kept running; 0 (scale to zero) outside prod only",
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=MAX_REPLICAS,
        description="autoscaling ceiling; default minReplicas",
    )
    capacity: Capacity = Field(default="on-demand", description="`on-demand` or `spot`")
    weights_uri: str | None = Field(
        default=None, description="s3://bucket/prefix of pre-staged weights (recommended)"
    )
    weights_kms_key_arn: str | None = Field(
        default=None,
        description="KMS key of an SSE-KMS weights bucket; grants decrypt via S3 only",
    )
    concurrency_target: int = Field(
        default=4, ge=1, le=1024,
        description="full-length sequences per replica the KV cache must hold",
    )
    shape: ShapeConfig | None = Field(
        default=None, description="architecture, for a model the catalog does not know"
    )
    fallbacks: list[str] = Field(
        default_factory=list,
        description="ordered targets the gateway fails over to: another model's name or "
        "`bedrock:<model id or ARN>` (needs the gateway; context at least as long)",
    )

    @property
    def replicas_max(self) -> int:
        """`maxReplicas` defaults to `minReplicas` (at least 1): no surprise scale-out bill."""
        return self.max_replicas if self.max_replicas is not None else max(self.min_replicas, 1)


class SageMakerConfig(_Strict):
    """`llm-hosting:sagemaker`: options only the sagemaker platform reads (prod-safe defaults).

    Scale-to-zero is not a switch here: a model with `minReplicas: 0` scales to zero copies (and
    its instances to zero) with the wake-up alarm AWS documents; validation refuses it in prod.
    Cross-field checks live in `components.sagemaker.validation.sagemaker_problems`.
    """

    endpoint_deployment: Literal["blueGreen", "rolling"] = Field(
        default="blueGreen",
        description="endpoint update: `blueGreen` (canary, new fleet first) or `rolling` (one "
        "instance type only: AWS has no rolling updates for multi-variant endpoints, so models "
        "without instanceType share the cheapest type where all fit); both roll back on alarms",
    )
    max_instance_count: int | None = Field(
        default=None, ge=1, le=MAX_REPLICAS,
        description="instances per production variant at most; default: what maxReplicas need",
    )
    data_capture_percent: int = Field(
        default=0, ge=0, le=100,
        description="percent of requests/responses captured to S3; 0 (default) is off",
    )
    data_capture_s3_uri: str | None = Field(
        default=None, description="s3://bucket/prefix for data capture (required when on)"
    )
    alarm_topic_arn: str | None = Field(
        default=None, description="SNS topic ARN notified by the endpoint's alarms"
    )


class EksConfig(_Strict):
    """`llm-hosting:eks`: options only the eks platform reads (defaults are prod-safe).

    Defaults: a private-only API endpoint, SOCI parallel image pull on AL2023 GPU nodes, every
    instance type in the families whose per-replica price is within 2x of the sized choice (spot
    diversity without paying for p5 to serve an 8B model), and a Karpenter GPU ceiling of one
    replica above `maxReplicas` per model. See docs/eks.md.
    """

    kubernetes_version: Literal["1.35"] = Field(
        default="1.35",
        description="EKS Kubernetes minor; add-on and AMI pins follow it (facts/charts.py)",
    )
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed on the public API endpoint; empty (default): private only",
    )
    cluster_admin_arns: list[str] = Field(
        default_factory=list,
        description="IAM role/user ARNs granted cluster admin through EKS access entries",
    )
    cold_start: Literal["soci-parallel-pull", "bottlerocket-snapshot"] = Field(
        default="soci-parallel-pull",
        description="GPU node image pulls: AL2023 + SOCI, or Bottlerocket + image snapshot",
    )
    image_snapshot_id: str | None = Field(
        default=None,
        description="EBS snapshot holding the serving image (bottlerocket-snapshot only)",
    )
    gpu_root_volume_gib: int = Field(
        default=200, ge=100, le=16384,
        description="GPU node volume for images + model cache (>= 100 GiB)",
    )
    system_node_instance_types: list[str] = Field(
        default_factory=lambda: ["m7i.xlarge", "m6i.xlarge"],
        description="on-demand, non-GPU node group for CoreDNS, Karpenter, monitoring",
    )
    system_node_count: int = Field(
        default=3, ge=2, le=20, description="system nodes (>= 2: controllers run 2 replicas)"
    )
    instance_price_ratio: float = Field(
        default=2.0, ge=1.0, le=10.0,
        description="GPU families allowed if per-replica price <= ratio x the sized instance",
    )
    max_gpus_per_model: int | None = Field(
        default=None, ge=1, le=8 * (MAX_REPLICAS + 1),
        description="Karpenter GPU ceiling per model pool; default (maxReplicas+1) x GPUs",
    )
    monitoring: Literal["kube-prometheus-stack", "amp"] = Field(
        default="kube-prometheus-stack",
        description="metrics: in-cluster kube-prometheus-stack, or Amazon Managed Prometheus",
    )
    ingress: Literal["none", "internal-alb"] = Field(
        default="none",
        description="per-model entry: `none` (ClusterIP only) or `internal-alb` (VPC-only ALB)",
    )
    certificate_arn: str | None = Field(
        default=None,
        description="ACM certificate: the internal ALBs (models' and the gateway's) serve HTTPS "
        "on 443 only (prod's policy config requires it)",
    )


def _eks_problems(cfg: EksConfig, environment: str) -> list[str]:
    """Checks across `llm-hosting:eks` fields and the environment."""
    p = f"{NAMESPACE}:eks"
    problems: list[str] = []
    for i, cidr in enumerate(cfg.public_access_cidrs):
        try:
            net = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            problems.append(f"{p}.publicAccessCidrs[{i}]: {cidr!r} is not an IPv4 CIDR block "
                            f"({exc})")
            continue
        if net.prefixlen == 0 and environment == "prod":
            problems.append(f"{p}.publicAccessCidrs[{i}]: 0.0.0.0/0 opens the prod API server "
                            "to the internet; list your VPN/CI egress CIDRs, or leave it empty "
                            "for a private-only endpoint")
    for i, arn in enumerate(cfg.cluster_admin_arns):
        if not re.match(r"^arn:aws[\w-]*:(iam|sts)::\d{12}:(role|user|assumed-role)/\S+$", arn):
            problems.append(f"{p}.clusterAdminArns[{i}]: {arn!r} is not an IAM role or user ARN")
    snapshot = cfg.image_snapshot_id
    if cfg.cold_start == "bottlerocket-snapshot" and snapshot is None:
        problems.append(f"{p}.imageSnapshotId: coldStart 'bottlerocket-snapshot' needs the EBS "
                        "snapshot that holds the serving image (snap-...); build it with "
                        "bottlerocket-images-cache, or use coldStart 'soci-parallel-pull'")
    if snapshot is not None and cfg.cold_start != "bottlerocket-snapshot":
        problems.append(f"{p}.imageSnapshotId: only used with coldStart "
                        "'bottlerocket-snapshot'; remove it or switch coldStart")
    if snapshot is not None and not re.match(r"^snap-[0-9a-f]{8,17}$", snapshot):
        problems.append(f"{p}.imageSnapshotId: {snapshot!r} is not an EBS snapshot id "
                        "(snap-0123456789abcdef0)")
    certificate = cfg.certificate_arn
    if certificate is not None and cfg.ingress != "internal-alb":
        problems.append(f"{p}.certificateArn: only used with ingress 'internal-alb'; remove it "
                        "or set ingress")
    if certificate is not None and not _ACM_ARN.match(certificate):
        problems.append(f"{p}.certificateArn: {certificate!r} is not an ACM certificate ARN "
                        "(arn:aws:acm:<region>:<account>:certificate/<id>)")
    return problems


_ACM_ARN = re.compile(r"^arn:aws[\w-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")


def _gateway_problems(cfg: GatewayConfig, platform: str) -> list[str]:
    """Only the SageMaker platform gives the gateway an ALB of its own: on EKS it shares the
    models' Ingress settings, on ECS the models' ALB (which it calls over HTTP)."""
    p = f"{NAMESPACE}:gateway.certificateArn"
    certificate = cfg.certificate_arn
    if certificate is None:
        return []
    if platform == "eks":
        return [f"{p}: on eks the gateway's Ingress uses {NAMESPACE}:eks.certificateArn; move "
                "the certificate there"]
    if platform == "ecs":
        return [f"{p}: on ecs the gateway sits on the stack's ALB, which it calls over HTTP; "
                "remove it"]
    if not _ACM_ARN.match(certificate):
        return [f"{p}: {certificate!r} is not an ACM certificate ARN "
                "(arn:aws:acm:<region>:<account>:certificate/<id>)"]
    return []


class EcsSharedInstanceConfig(_Strict):
    """Several small models as containers of ONE task on ONE instance type (docs/ecs.md)."""

    name: str = Field(
        description="DNS-1123 label, not a model name; names the shared service and its hosts"
    )
    # Python name differs from the key so config_reference() does not expand it as `models[]`.
    model_names: list[str] = Field(
        alias="models",
        description="names of 2+ models from `models` (same capacity and replicas); list order "
        "sets engine ports 8000, 8001, ...",
    )
    instance_type: str | None = Field(
        default=None,
        description="EC2 type with GPUs for all of them; omitted: the cheapest where each fits",
    )


class EcsConfig(_Strict):
    """`llm-hosting:ecs`: options only the ecs platform reads (defaults are prod-safe).

    Defaults: a private (internal) load balancer reachable from the VPC only, one stopped
    pre-initialized instance per on-demand Auto Scaling group, and managed scaling that keeps no
    idle GPU instances running (target capacity 100%); the warm pool, not idle running capacity,
    absorbs scale-out latency. See docs/ecs.md.
    """

    warm_pool_size: int = Field(
        default=1, ge=0, le=20,
        description="stopped, pre-initialized GPU instances kept per on-demand group (EBS only)",
    )
    target_capacity: int = Field(
        default=100, ge=1, le=100,
        description="capacity provider target utilization %; below 100 keeps idle headroom",
    )
    load_balancer_scheme: Literal["internal", "internet-facing"] = Field(
        default="internal", description="`internal` or `internet-facing` (needs HTTPS + CIDRs)"
    )
    allowed_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the load balancer; empty: the VPC range only",
    )
    certificate_arn: str | None = Field(
        default=None, description="ACM certificate: serve HTTPS on 443 (required if public)"
    )
    root_volume_gib: int | None = Field(
        default=None, ge=60, le=16384,
        description="GPU instance root volume; default sized from image + weights per instance",
    )
    shared_instances: list[EcsSharedInstanceConfig] = Field(
        default_factory=list,
        description="groups of small models served as containers of one task on one instance; "
        "models not listed keep one service each",
    )
    listener_priorities: dict[str, Annotated[int, Field(ge=1, le=50000)]] = Field(
        default_factory=dict,
        description="model name -> ALB rule priority (1-50000) to pin; default: a hash of the "
        "name, the next free one on a clash (docs/ecs.md)",
    )


def _ecs_problems(cfg: EcsConfig) -> list[str]:
    """Checks across `llm-hosting:ecs` fields."""
    p = f"{NAMESPACE}:ecs"
    problems: list[str] = []
    for i, cidr in enumerate(cfg.allowed_cidrs):
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            problems.append(f"{p}.allowedCidrs[{i}]: {cidr!r} is not an IPv4 CIDR block ({exc})")
    if cfg.load_balancer_scheme == "internet-facing":
        if cfg.certificate_arn is None:
            problems.append(f"{p}.certificateArn: an internet-facing load balancer must serve "
                            "HTTPS; set an ACM certificate ARN or use loadBalancerScheme internal")
        if not cfg.allowed_cidrs or "0.0.0.0/0" in cfg.allowed_cidrs:
            problems.append(f"{p}.allowedCidrs: an internet-facing load balancer needs explicit "
                            "client CIDRs (not empty, not 0.0.0.0/0): the engines have no auth")
    if cfg.certificate_arn is not None and not cfg.certificate_arn.startswith("arn:aws"):
        problems.append(f"{p}.certificateArn: {cfg.certificate_arn!r} is not an ACM ARN")
    problems += _ecs_shared_problems(cfg.shared_instances, f"{p}.sharedInstances")
    return problems


def _ecs_shared_problems(groups: list[EcsSharedInstanceConfig], p: str) -> list[str]:
    """What `sharedInstances` gets wrong on its own; checks that need the sized models (unknown
    names, GPU sum, capacity, replicas) are `components.ecs.sharing.ecs_problems`."""
    problems: list[str] = []
    owner: dict[str, int] = {}
    first_named: dict[str, int] = {}
    for i, group in enumerate(groups):
        if not _DNS_LABEL.match(group.name) or len(group.name) > 40:
            problems.append(f"{p}[{i}].name: {group.name!r} must be a DNS-1123 label of at most "
                            "40 chars (it names the shared service and its hosts)")
        first = first_named.setdefault(group.name, i)
        if first < i:
            problems.append(f"{p}[{i}].name: {group.name!r} is also {p}[{first}]"
                            "; shared instance names must be unique")
        distinct = len(set(group.model_names))
        if distinct < 2:
            problems.append(f"{p}[{i}].models: lists {distinct} distinct model(s); a shared "
                            "instance needs at least 2 (a single model needs no group)")
        if distinct > 5:
            # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/register-multiple-targetgroups.html
            problems.append(f"{p}[{i}].models: lists {distinct} models; an ECS service "
                            "registers at most 5 ALB target groups (one per model)")
        listed: dict[str, int] = {}
        for j, model in enumerate(group.model_names):
            if listed.setdefault(model, j) < j:
                problems.append(f"{p}[{i}].models[{j}]: {model!r} is listed twice")
            elif model in owner and owner[model] != i:
                problems.append(f"{p}[{i}].models[{j}]: {model!r} is already in "
                                f"{p}[{owner[model]}] ({groups[owner[model]].name!r}); a model "
                                "runs on one shared instance at most")
            else:
                owner.setdefault(model, i)
    return problems


class CircuitBreakerConfig(_Strict):
    """Per backend and per gateway replica: after `failures` consecutive failures (5xx, 429,
    timeouts) the backend is skipped for `cooldownSeconds`, then one trial request decides."""

    failures: int = Field(
        default=3, ge=1, le=100,
        description="consecutive failures (5xx, 429, timeout) that open a backend's circuit",
    )
    cooldown_seconds: int = Field(
        default=10, ge=1, le=600,
        description="seconds an open backend is skipped before one trial request",
    )


class GatewayConfig(_Strict):
    """`llm-hosting:gateway`: one OpenAI-compatible endpoint in front of every model of the
    stack (LiteLLM proxy + our hooks: fallback, circuit breaker, requests held while a model
    wakes from zero). See docs/gateway.md."""

    enabled: bool | None = Field(
        default=None,
        description="OpenAI-compatible gateway in front of all models; default on in "
        "staging/prod (off in dev, and on ecs with a public or HTTPS load balancer)",
    )
    replicas: int = Field(
        default=2, ge=1, le=20,
        description="gateway replicas (circuit and hold state is per replica)",
    )
    wake_timeout_seconds: int | None = Field(
        default=None, ge=10, le=MAX_WAKE_TIMEOUT_SECONDS,
        description="longest a request is held while its model wakes, then 503 + Retry-After; "
        "default: the model's start-up estimate plus a margin",
    )
    circuit_breaker: CircuitBreakerConfig = Field(
        default=CircuitBreakerConfig(), description="per-backend circuit breaker"
    )
    certificate_arn: str | None = Field(
        default=None,
        description="sagemaker: ACM certificate for the gateway's internal ALB, which then "
        "serves HTTPS on 443 only (prod's policy config requires it); eks uses "
        "eks.certificateArn",
    )


class _RawStack(_Strict):
    environment: Environment = Field(description="`dev`, `staging` or `prod`")
    platform: Platform = Field(description="`sagemaker`, `eks` or `ecs`")
    network: NetworkConfig = Field(default=NetworkConfig(), description="the VPC")
    # Each model is validated on its own (see parse_stack_config), so one bad model hides nothing.
    models: list[Any] = Field(min_length=1, description="models to serve (at least one)")
    hf_token: str | None = Field(
        default=None, description="Hugging Face token, as a Pulumi secret; gated models only"
    )
    protection: Literal["auto", "off"] = Field(
        default="auto",
        description="`auto`: prod protects its KMS keys, log groups, clusters and services "
        "from deletion; `off` lifts every protection for a deliberate teardown (docs/deploy.md)",
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="merged into every taggable resource"
    )
    sagemaker: SageMakerConfig = Field(
        default=SageMakerConfig(), description="sagemaker platform options"
    )
    eks: EksConfig = Field(default=EksConfig(), description="eks platform options")
    ecs: EcsConfig = Field(default=EcsConfig(), description="ecs platform options")
    gateway: GatewayConfig = Field(
        default=GatewayConfig(), description="OpenAI-compatible gateway (docs/gateway.md)"
    )


@dataclass(frozen=True)
class Network:
    cidr_block: str
    availability_zones: int
    nat_gateways: NatGateways


@dataclass(frozen=True)
class Model:
    """One configured model with the sizing decision that validation already made.

    ``gpus_per_replica`` is the resolved tensor-parallel degree: ``spec.gpus_per_replica`` when
    set, else the one sizing chose. Everything downstream (platforms, tags, the policy pack)
    reads this field, never the spec's. ``memory.engine`` holds the engine settings the fit
    assumed; the platforms pass exactly those.
    """

    spec: ModelConfig
    shape: ModelShape
    request: SizingRequest
    instance: GpuInstance
    memory: MemoryEstimate
    cost: CostEstimate
    gpus_per_replica: int
    #: The weight format the checkpoint holds (`none`: 16-bit), from the catalog or `shape`.
    checkpoint_quantization: Quantization = "none"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def engine_quantization(self) -> str | None:
        """The engine's quantization flag: only for on-the-fly FP8 of 16-bit weights; a
        pre-quantized checkpoint is detected from its own `quantization_config`."""
        if self.spec.quantization == "fp8" and self.checkpoint_quantization == "none":
            return "fp8"
        return None

    @property
    def gpus_chosen(self) -> bool:
        """True when sizing chose the GPU count (``gpusPerReplica`` omitted)."""
        return self.spec.gpus_per_replica is None


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    region: str
    environment: Environment
    platform: Platform
    network: Network
    models: tuple[Model, ...]
    tags: Mapping[str, str]
    sagemaker: SageMakerConfig = field(default_factory=SageMakerConfig)
    eks: EksConfig = field(default_factory=EksConfig)
    ecs: EcsConfig = field(default_factory=EcsConfig)
    hf_token: Any = None  # a pulumi.Output secret (or None); never a plain str after parsing
    protection: Literal["auto", "off"] = "auto"
    gateway: GatewayConfig = field(default_factory=GatewayConfig)

    @property
    def pricing(self) -> Pricing:
        return PLATFORM_PRICING[self.platform]

    @property
    def gateway_enabled(self) -> bool:
        """`gateway.enabled`, or its default (`gateway_enabled`)."""
        return gateway_enabled(self.gateway, self.environment, self.platform, self.ecs)


# --------------------------------------------------------------------------------------------
# documentation


def _type_name(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = getattr(annotation, "__origin__", None)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if origin in (list, dict):
        return "list" if origin is list else "map"
    if args and len(args) == 1:
        return _type_name(args[0])
    if args:
        return " \\| ".join(_type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation))


def config_reference() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every config key: the README's table is checked
    against this, so docs and validation cannot drift apart."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{info.alias or name}"
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            default = ("required" if info.is_required()
                       else str(extra["defaultText"]) if "defaultText" in extra
                       else _default_text(info.get_default(call_default_factory=True)))
            kind = _type_name(info.annotation) + _range_text(info.metadata)
            rows.append((key, kind, default, info.description or ""))
            nested = [a for a in (info.annotation, *get_args(info.annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
            if nested:
                walk(nested[0], f"{key}.")
            if name == "models":
                walk(ModelConfig, f"{key}[].")

    walk(_RawStack, f"{NAMESPACE}:")
    return rows


def _range_text(metadata: Iterable[Any]) -> str:
    """` 1..1000` from a field's bounds, so the README states every number's range."""
    names = {"Ge": "ge", "Gt": "gt", "Le": "le", "Lt": "lt"}  # annotated_types bounds
    bounds = {type(m).__name__: getattr(m, names[type(m).__name__]) for m in metadata
              if type(m).__name__ in names}
    if not bounds:
        return ""

    def num(x: Any) -> str:
        return f"{x:,}" if isinstance(x, int) else f"{x:g}"

    low = (num(bounds["Ge"]) if "Ge" in bounds else
           f">{num(bounds['Gt'])}" if "Gt" in bounds else "")
    high = (num(bounds["Le"]) if "Le" in bounds else
            f"<{num(bounds['Lt'])}" if "Lt" in bounds else "")
    return f" {low}..{high}" if low and high else f" {'>=' if 'Ge' in bounds else ''}{low}{high}"


def _accepts_bool(annotation: Any) -> bool:
    return annotation is Any or _accepts(annotation, bool)


def _accepts(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_accepts(a, kind) for a in get_args(annotation) if not isinstance(a, (int, str)))


_DECIMAL = re.compile(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?$")


def _default_text(default: Any) -> str:
    if default is None or isinstance(default, BaseModel) or default in ({}, []):
        return "-"
    return f"`{default}`"


def config_reference_markdown() -> str:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{k}` | {t} | {d} | {m} |" for k, t, d, m in config_reference()]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# parsing


_OBJECT_KEYS = {"network", "models", "tags", "sagemaker", "eks", "ecs", "gateway"}


def _key(loc: Iterable[str | int]) -> str:
    out = NAMESPACE + ":"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if i else "") + part
    return out


def _format_pydantic(
    err: ValidationError, root: type[BaseModel], prefix: tuple[str | int, ...] = ()
) -> list[str]:
    problems = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = _key([*prefix, *loc])
        if e["type"] == "extra_forbidden":
            problems.append(f"{path}: unknown key; {_accepted_keys(root, loc)}")
        elif e["type"] == "missing":
            problems.append(f"{path}: required key is missing; set it with `pulumi config set "
                            f"--path '{path}' <value>`")
        elif e["type"] == "literal_error":
            expected = e.get("ctx", {}).get("expected", "")
            problems.append(f"{path}: {_shown(e['input'])} is not accepted; use one of "
                            f"{expected}")
        elif e["type"] == "value_error":
            problems.append(f"{path}: {e['ctx']['error']}")
        else:
            problems.append(f"{path}: {e['msg']} (got {_shown(e['input'])})")
    return problems


def _shown(value: Any, limit: int = 60) -> str:
    """A value as a problem quotes it: a 310-digit number is not worth 310 characters."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a number of more than 30 digits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def _accepted_keys(model: type[BaseModel], loc: list[str | int]) -> str:
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        ann = getattr(field, "annotation", None) if field else None
        args = getattr(ann, "__args__", ()) or ()
        nested = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return "check the spelling"
        model = nested[0]
    keys = sorted(f.alias or n for n, f in model.model_fields.items())
    return "accepted keys: " + ", ".join(keys)


def _decode(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Turn the engine's `llm-hosting:<key>` strings into one JSON-shaped dict."""
    data: dict[str, Any] = {}
    problems: list[str] = []
    prefix = NAMESPACE + ":"
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key in _OBJECT_KEYS and isinstance(value, str):
            try:
                value = json.loads(value, parse_constant=_no_constant, parse_float=_finite,
                                   parse_int=_bounded_int)
            except json.JSONDecodeError as exc:
                problems.append(f"{full_key}: not valid structured config ({exc.msg}); set it with "
                                f"`pulumi config set --path '{full_key}...'`")
                continue
            except ValueError as exc:
                problems.append(f"{full_key}: not valid structured config ({exc})")
                continue
        data[key] = value
    return data, problems


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON (or the Pulumi CLI) can carry; use a finite "
                     "number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{_shown(text)} is too large for a number; use a finite number")
    return value


def _bounded_int(text: str) -> int:
    """Python refuses to parse integers past 4,300 digits (a ValueError, not a JSON error); a
    number that long only needs its sign and size for the range check that refuses it."""
    if len(text.lstrip("-")) <= 30:
        return int(text)
    return -_HUGE if text.startswith("-") else _HUGE


_HUGE = 10**40


def parse_stack_config(
    raw: Mapping[str, Any],
    *,
    project: str,
    stack: str,
    secret_keys: Iterable[str] = (),
    platform_checks: Mapping[str, Callable[[StackConfig], list[str]]] | None = None,
    hf_token_secret: Any = None,
) -> StackConfig:
    """Validate the raw config map; raise `ConfigError` listing every problem at once.

    `raw` maps `llm-hosting:<key>` (and `aws:region`) to the strings the engine passes.
    `hf_token_secret` is the secret Output that stands for the token (built by the caller from
    `pulumi.Config.get_secret`), so the token never exists here as a plain string.
    `platform_checks` maps a platform name to its own check of the sized config; callers that
    validate as `pulumi up` does pass every platform's (`components.platforms.parse_config`).
    """
    data, problems = _decode(raw)
    region = raw.get("aws:region")
    if not region:
        problems.append(
            "aws:region: required; set it with `pulumi config set aws:region us-east-1`"
        )

    parsed: _RawStack | None = None
    try:
        parsed = _RawStack.model_validate(data)
    except ValidationError as err:
        undecodable = {p.split(":", 2)[1] for p in problems if ": not valid structured" in p}
        problems.extend(p for p in _format_pydantic(err, _RawStack)
                        if p.split(":", 2)[1] not in undecodable)
    # Models are validated one by one, so a bad platform or one bad model hides nothing else.
    platform = _valid(data.get("platform"), Platform)

    if data.get("hfToken") is not None and f"{NAMESPACE}:hfToken" not in set(secret_keys):
        problems.append(
            f"{NAMESPACE}:hfToken: is stored in plaintext; remove it with `pulumi config rm "
            f"{NAMESPACE}:hfToken` and set it again with `pulumi config set --secret "
            f"{NAMESPACE}:hfToken <token>`"
        )

    network: Network | None = None
    if parsed is not None:
        network, net_problems = _network(parsed)
        problems += net_problems
        problems += _tag_problems(parsed.tags)
        problems += _eks_problems(parsed.eks, parsed.environment)
        problems += _ecs_problems(parsed.ecs)
        problems += _gateway_problems(parsed.gateway, parsed.platform)
    models: list[Model] = []
    specs: list[ModelConfig] = []
    indexed: dict[int, ModelConfig] = {}
    raw_models = data.get("models") if isinstance(data.get("models"), list) else []
    for i, raw_model in enumerate(raw_models):
        try:
            spec = ModelConfig.model_validate(raw_model)
        except ValidationError as err:
            problems.extend(_format_pydantic(err, ModelConfig, ("models", i)))
            problems.extend(_token_problems(i, raw_model, data))  # still worth saying now
            continue
        specs.append(spec)
        indexed[i] = spec
        model, model_problems = _model(i, spec, platform)
        problems += model_problems + _token_problems(i, raw_model, data)
        problems += _weights_key_problems(i, spec, region)
        problems += _scale_to_zero_problems(i, spec, data.get("environment"))
        if model is not None:
            models.append(model)
    names = [m.name for m in specs]
    counts = Counter(names)
    for dup in sorted(n for n, count in counts.items() if count > 1):
        where = ", ".join(f"models[{i}]" for i, n in enumerate(names) if n == dup)
        problems.append(f"{NAMESPACE}:models: name {dup!r} is used by {where}; model names "
                        "must be unique")
    if parsed is not None:
        problems += _fallback_problems(indexed, gateway_enabled(
            parsed.gateway, parsed.environment, parsed.platform, parsed.ecs), region)

    if problems:
        raise ConfigError(problems)
    assert parsed is not None and network is not None
    if _one_instance_type(parsed):
        models = _on_one_instance_type(models, PLATFORM_PRICING[parsed.platform])
    config = StackConfig(
        project=project,
        stack=stack,
        region=str(region),
        environment=parsed.environment,
        platform=parsed.platform,
        network=network,
        models=tuple(models),
        tags=dict(parsed.tags),
        sagemaker=parsed.sagemaker,
        eks=parsed.eks,
        ecs=parsed.ecs,
        hf_token=hf_token_secret if parsed.hf_token is not None else None,
        protection=parsed.protection,
        gateway=parsed.gateway,
    )
    # Checks only one platform can make (packing onto an endpoint, shared instances) need the
    # sized models, so they run last; they still run before any resource registers. Each
    # platform registers its own (components/platforms.py), so this module names none.
    check = (platform_checks or {}).get(config.platform)
    problems = list(check(config)) if check is not None else []
    if problems:
        raise ConfigError(problems)
    return config


def _scale_to_zero_problems(i: int, spec: ModelConfig, environment: Any) -> list[str]:
    """`minReplicas: 0` is for dev/staging on every platform (docs/deploy.md): a prod model at
    zero replicas answers its first request after idle only once a GPU instance has launched,
    pulled the image and loaded the weights - minutes, past any client timeout."""
    if spec.min_replicas != 0 or environment != "prod":
        return []
    return [f"{NAMESPACE}:models[{i}].minReplicas: 0 scales {spec.name} to zero, and the first "
            "request after idle waits minutes for a GPU instance, the image and the weights; "
            "use at least 1 in prod (scale to zero is for dev and staging)"]


def gateway_enabled(gateway: GatewayConfig, environment: str, platform: str | None,
                    ecs: EcsConfig) -> bool:
    """The gateway is on by default where clients should not see a model waking or failing
    over (staging, prod); dev calls its models directly unless `gateway.enabled` says so. An ECS
    stack whose ALB is internet-facing or HTTPS defaults it off: the gateway reaches the models
    through that ALB from inside the VPC over HTTP (components/ecs/gateway.py), so turning it on
    there is a config error that says so."""
    if gateway.enabled is not None:
        return gateway.enabled
    if platform == "ecs" and (ecs.load_balancer_scheme == "internet-facing"
                              or ecs.certificate_arn is not None):
        return False
    return environment != "dev"


def _fallback_problems(specs: Mapping[int, ModelConfig], gateway_on: bool,
                       region: str | None) -> list[str]:
    """`models[].fallbacks`: targets exist, are well formed, take prompts at least as long as
    their source, and form no cycle; all of it needs the gateway."""
    problems: list[str] = []
    by_name = {spec.name: (i, spec) for i, spec in specs.items()}
    edges: dict[str, list[str]] = {}
    for i, spec in specs.items():
        if not spec.fallbacks:
            continue
        p = f"{NAMESPACE}:models[{i}].fallbacks"
        if not gateway_on:
            problems.append(f"{p}: fallbacks are served by the gateway, which is off; set "
                            f"`{NAMESPACE}:gateway.enabled` to true or remove the fallbacks")
        seen: set[str] = set()
        for j, target in enumerate(spec.fallbacks):
            where = f"{p}[{j}]"
            if target in seen:
                problems.append(f"{where}: {target!r} is listed twice")
                continue
            seen.add(target)
            if target.startswith(BEDROCK_PREFIX):
                problems += _bedrock_target_problems(where, target, spec, region)
            elif target == spec.name:
                problems.append(f"{where}: a model cannot fall back to itself")
            elif target not in by_name:
                names = ", ".join(sorted(n for n in by_name if n != spec.name)) or "none"
                problems.append(f"{where}: {target!r} is not a model of this stack (models: "
                                f"{names}); use a model name or bedrock:<model id or ARN>")
            else:
                edges.setdefault(spec.name, []).append(target)
                other = by_name[target][1]
                if other.max_total_tokens < spec.max_total_tokens:
                    problems.append(
                        f"{where}: {target} takes {other.max_total_tokens} tokens "
                        f"(maxTotalTokens) but {spec.name} accepts {spec.max_total_tokens}; a "
                        "fallback must take every request its source accepts, so pick a model "
                        "with a context at least as long")
    problems += _cycle_problems(edges, by_name)
    return problems


def _cycle_problems(edges: Mapping[str, list[str]],
                    by_name: Mapping[str, tuple[int, ModelConfig]]) -> list[str]:
    """One problem per distinct cycle among stack models (a -> b -> a), found by DFS."""
    problems: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in edges.get(node, []):
            if nxt in path:
                cycle = [*path[path.index(nxt):], nxt]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    first = cycle[0]
                    problems.append(
                        f"{NAMESPACE}:models[{by_name[first][0]}].fallbacks: "
                        f"{' -> '.join(cycle)} is a cycle; a request would bounce between these "
                        "models, so remove one of the links")
            else:
                visit(nxt, [*path, nxt])

    for start in sorted(edges):
        visit(start, [start])
    return problems


def _bedrock_target_problems(where: str, target: str, spec: ModelConfig,
                             region: str | None) -> list[str]:
    ref = target[len(BEDROCK_PREFIX):]
    arn = bedrock.MODEL_ARN.match(ref)
    if arn is not None:
        if region and arn.group("region") != region:
            return [f"{where}: the ARN is in {arn.group('region')} but the gateway calls "
                    f"Bedrock in the stack's region ({region}); use a model or profile there"]
        return []
    if bedrock.MODEL_ID.match(ref) is None:
        return [f"{where}: {ref!r} is not a Bedrock model id or ARN; use e.g. "
                "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0, "
                "bedrock:us.meta.llama3-1-70b-instruct-v1:0 or bedrock:arn:aws:bedrock:"
                "<region>:<account>:provisioned-model/<id>"]
    context = bedrock.context_tokens(ref)
    if context is not None and context < spec.max_total_tokens:
        return [f"{where}: {ref} has a {context}-token context but {spec.name} accepts "
                f"{spec.max_total_tokens} (maxTotalTokens); pick a model with a context at "
                "least as long"]
    return []


def _token_problems(i: int, raw_model: Any, data: Mapping[str, Any]) -> list[str]:
    """A gated catalog model needs S3 weights or a token; read from the raw entry, so the
    problem is reported even when other fields of the same model are wrong."""
    if not isinstance(raw_model, Mapping):
        return []
    model_id = raw_model.get("modelId")
    if (not isinstance(model_id, str) or raw_model.get("weightsUri") is not None
            or data.get("hfToken") is not None or not is_gated(model_id)):
        return []
    return [
        f"{NAMESPACE}:models[{i}].modelId: {model_id} is gated on the Hugging Face Hub; set "
        f"weightsUri to pre-staged S3 weights (recommended) or `pulumi config set --secret "
        f"{NAMESPACE}:hfToken hf_...`"
    ]


def _network(parsed: _RawStack) -> tuple[Network | None, list[str]]:
    cfg = parsed.network
    path = f"{NAMESPACE}:network.cidrBlock"
    try:
        net = ipaddress.IPv4Network(cfg.cidr_block, strict=True)
    except ValueError as exc:
        return None, [f"{path}: {cfg.cidr_block!r} is not an IPv4 CIDR block ({exc}); "
                      "use e.g. 10.0.0.0/16"]
    problems = []
    if not net.is_private:
        problems.append(f"{path}: {cfg.cidr_block} is not a private (RFC 1918) range; "
                        "use e.g. 10.0.0.0/16")
    if not 16 <= net.prefixlen <= 20:
        problems.append(f"{path}: prefix /{net.prefixlen} is outside /16../20; GPU pods and "
                        "endpoints need room, use a /16 to /20")
    dev = parsed.environment == "dev"
    return Network(
        cidr_block=str(net),
        availability_zones=cfg.availability_zones or (2 if dev else 3),
        nat_gateways=cfg.nat_gateways or ("single" if dev else "onePerAz"),
    ), problems


def _tag_problems(tags: Mapping[str, str]) -> list[str]:
    problems = []
    for key, value in tags.items():
        path = f"{NAMESPACE}:tags.{key}"
        if key in RESERVED_TAG_KEYS:
            problems.append(f"{path}: '{key}' is set by llm-hosting itself; choose another key")
        elif key.lower().startswith("aws:") or not _TAG_KEY.match(key):
            problems.append(f"{path}: not a valid AWS tag key (1-128 chars, no 'aws:' prefix)")
        if len(value) > 256:
            problems.append(f"{path}: value is {len(value)} chars; AWS allows at most 256")
    return problems


def _valid(value: Any, kind: Any) -> Any:
    return value if value in get_args(kind) else None


def _weights_uri_problems(path: str, uri: str) -> list[str]:
    """`weightsUri` is one exact prefix: every platform grants `s3:GetObject` on
    `<bucket>/<prefix>/*` and lists `<prefix>/*` only. A wildcard or a `${...}` policy variable
    in the prefix would be IAM syntax in that grant (`s3://b/*` reads `b/*/*`: the whole bucket),
    and a bucket without a prefix is no weights location."""
    match = _S3_URI.match(uri)
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    if match is None and re.fullmatch(r"s3://[^/\s]+/?", uri):
        return [f"{path}: {uri!r} names a whole bucket; give the prefix the weights were staged "
                f"under, e.g. s3://{bucket}/<org>/<model>/ (the role may read that prefix only)"]
    if match is None:
        return [f"{path}: {uri!r} must be s3://<bucket>/<prefix> of pre-staged weights"]
    prefix = match.group(2)
    if any(c in prefix for c in "*?") or "${" in prefix:
        return [f"{path}: {uri!r} has a wildcard or IAM policy variable in its prefix: the read "
                f"grant on '{bucket}/{prefix}/*' would reach other prefixes (s3://<bucket>/* "
                f"reads the whole bucket); give the exact prefix, e.g. "
                f"s3://{bucket}/<org>/<model>/"]
    if "//" in f"/{prefix}/" or any(part in (".", "..") for part in prefix.split("/")):
        return [f"{path}: {uri!r} has an empty or relative ('.', '..') path segment; give the "
                f"prefix exactly as the weights were staged, e.g. s3://{bucket}/<org>/<model>/"]
    return []


def _weights_key_problems(i: int, spec: ModelConfig, region: str | None) -> list[str]:
    """`weightsKmsKeyArn` must be a key ARN (IAM grants a key only by its key ARN: an alias ARN
    in `Resource` names the alias, not the key,
    https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html), only with
    `weightsUri`, and in the stack's region: SSE-KMS uses a key in the bucket's region and the
    weights bucket is read in-region (S3 gateway endpoint). `region` is None when unset."""
    key = spec.weights_kms_key_arn
    if key is None:
        return []
    path = f"{NAMESPACE}:models[{i}].weightsKmsKeyArn"
    problems = []
    if spec.weights_uri is None:
        problems.append(f"{path}: set without weightsUri; the key only decrypts S3 weights, so "
                        "set weightsUri or remove weightsKmsKeyArn")
    match = _KMS_KEY_ARN.match(key)
    if match is None:
        what = ("is an alias ARN; IAM policies grant kms:Decrypt only on a key ARN, not through "
                "an alias" if _KMS_ALIAS_ARN.match(key) else "is not a KMS key ARN")
        problems.append(f"{path}: {key!r} {what}; use arn:<partition>:kms:<region>:<account>:"
                        "key/<key-id> (`aws kms describe-key --key-id <id or alias> --query "
                        "KeyMetadata.Arn`)")
    elif region and match.group(1) != region:
        problems.append(f"{path}: the key is in {match.group(1)} but the stack is in {region}; "
                        "an SSE-KMS bucket's key is in the bucket's region and the weights "
                        "bucket must be in the stack's region")
    return problems


def engine_profile(platform: str | None, engine: Engine) -> EngineProfile:
    """The memory accounting of the engine that will serve: TGI; on SageMaker the vLLM inside
    the pinned LMI image (0.8.4, components/facts/images.py); vLLM 0.12.0 on EKS and ECS."""
    if engine == "tgi":
        return TGI
    return LMI_VLLM_0_8_4 if platform == "sagemaker" else VLLM_0_12


def _model(i: int, spec: ModelConfig, platform: Platform | None) -> tuple[Model | None, list[str]]:
    """Check one model and size it; `platform` is None when the platform key itself is bad."""
    pricing = PLATFORM_PRICING.get(platform or "", "ec2")
    p = f"{NAMESPACE}:models[{i}]"
    problems: list[str] = []
    if not _DNS_LABEL.match(spec.name) or len(spec.name) > 40:
        problems.append(f"{p}.name: {spec.name!r} must be a DNS-1123 label of at most 40 chars "
                        "(lowercase letters, digits, '-'; it names endpoints and namespaces)")
    if not _HF_ID.match(spec.model_id):
        problems.append(f"{p}.modelId: {spec.model_id!r} is not a Hugging Face id; use "
                        "<org>/<model>, e.g. meta-llama/Meta-Llama-3-8B-Instruct")
    if spec.max_total_tokens <= spec.max_input_tokens:
        problems.append(f"{p}.maxTotalTokens: {spec.max_total_tokens} must be greater than "
                        f"maxInputTokens ({spec.max_input_tokens}); it counts prompt + output")
    if spec.min_replicas > spec.replicas_max:
        problems.append(f"{p}.minReplicas: {spec.min_replicas} is greater than maxReplicas "
                        f"({spec.replicas_max}); raise maxReplicas or lower minReplicas")
    if spec.weights_uri is not None:
        problems += _weights_uri_problems(f"{p}.weightsUri", spec.weights_uri)
    if spec.capacity == "spot" and platform == "sagemaker":
        problems.append(f"{p}.capacity: SageMaker real-time endpoints have no Spot capacity; "
                        "use 'on-demand' or the eks/ecs platform")
    if is_vision_language(spec.model_id):
        # vLLM profiles the vision encoder with a full image batch on every tensor-parallel rank
        # (components/facts/models.py); sizing the text tower alone would under-size it.
        problems.append(f"{p}.modelId: {spec.model_id} is a vision-language model; vLLM "
                        "profiles its vision encoder unsplit on every GPU (15.7 GiB of "
                        "activations for InternVL3-78B) and llm-hosting sizes text models "
                        "only; serve a text-only model")
        return None, problems

    catalog_shape = get_model_shape(spec.model_id)
    if spec.shape is not None:
        problems += _shape_problems(f"{p}.shape", spec.shape)
        if problems:
            return None, problems
        shape = spec.shape.to_shape()
    elif catalog_shape is not None:
        shape = catalog_shape
    else:
        problems.append(f"{p}.modelId: {spec.model_id!r} is not in the model catalog; add "
                        f"'{p}.shape' (parameters, layers, hiddenSize, attentionHeads, kvHeads, "
                        "vocabSize, maxPositionEmbeddings, and headDim if it is not hiddenSize "
                        "/ attentionHeads) from its config.json")
        return None, problems
    problems += _checkpoint_problems(p, spec)
    if spec.max_total_tokens > shape.max_position_embeddings:
        problems.append(f"{p}.maxTotalTokens: {spec.max_total_tokens} exceeds the model's context "
                        f"length ({shape.max_position_embeddings})")
    if spec.gpus_per_replica is not None:
        tp_problem = tensor_parallel_problem(shape, spec.gpus_per_replica)
        if tp_problem:
            problems.append(f"{p}.gpusPerReplica: {tp_problem}; tensor parallelism needs it to")
    if problems:
        return None, problems  # sizing a model whose basic fields are wrong only adds noise

    request = SizingRequest(
        shape=shape,
        quantization=spec.quantization,
        gpus_per_replica=spec.gpus_per_replica or 1,
        max_input_tokens=spec.max_input_tokens,
        max_total_tokens=spec.max_total_tokens,
        concurrency_target=spec.concurrency_target,
        engine=engine_profile(platform, spec.engine),
    )
    placed = _placement(p, spec, request, pricing, problems)
    if placed is None or problems:
        return None, problems
    request, instance = placed
    memory = estimate_memory(request, instance)
    cost = estimate_cost(request, instance, pricing, spec.min_replicas, spec.replicas_max)
    held = (spec.shape.quantization if spec.shape is not None
            else checkpoint_quantization(spec.model_id)) or "none"
    model = Model(spec=spec, shape=shape, request=request, instance=instance, memory=memory,
                  cost=cost, gpus_per_replica=request.gpus_per_replica,
                  checkpoint_quantization=held)
    return model, problems


def _checkpoint_problems(p: str, spec: ModelConfig) -> list[str]:
    """`quantization` must match the checkpoint: vLLM refuses `--quantization awq`/`gptq` on
    16-bit weights (the checkpoint's `quantization_config` must name the method), and a
    pre-quantized checkpoint is loaded in its own format whatever is asked. `fp8` on 16-bit
    weights is vLLM's dynamic FP8 and stays allowed."""
    held = (spec.shape.quantization if spec.shape is not None
            else checkpoint_quantization(spec.model_id))
    want = spec.quantization
    if held is None or held == want or (want == "fp8" and held == "none"):
        return []
    path = f"{p}.quantization"
    if held == "none":
        variants = quantized_variants(spec.model_id, want)
        fix = (f"set modelId to {' or '.join(variants)}" if variants else
               f"set modelId to a pre-quantized {want.upper()} checkpoint (a repository the "
               f"catalog does not know also needs `shape` with `quantization: {want}`)")
        return [f"{path}: {want!r} needs a checkpoint quantized with {want.upper()}, but "
                f"{spec.model_id} holds 16-bit weights and vLLM refuses `--quantization {want}` "
                f"on them; {fix}, or use quantization 'fp8' (dynamic FP8 of these weights) or "
                "'none'"]
    return [f"{path}: {spec.model_id} is a pre-quantized {held.upper()} checkpoint and is "
            f"loaded as {held} whatever is asked; set quantization to {held!r}"]


def _shape_problems(p: str, shape: ShapeConfig) -> list[str]:
    """What a config.json cannot say: checks across the shape's own fields."""
    problems = []
    if shape.head_dim is None and shape.hidden_size % shape.attention_heads:
        problems.append(f"{p}.headDim: required here: hiddenSize ({shape.hidden_size}) is not a "
                        f"multiple of attentionHeads ({shape.attention_heads}), so it cannot be "
                        "derived; copy `head_dim` from the model's config.json")
    if shape.kv_heads > shape.attention_heads or shape.attention_heads % shape.kv_heads:
        problems.append(f"{p}.kvHeads: {shape.kv_heads} must divide attentionHeads "
                        f"({shape.attention_heads}): each KV head serves a whole group of query "
                        "heads (`num_key_value_heads` in config.json)")
    if shape.active_parameters is not None and shape.active_parameters > shape.parameters:
        problems.append(f"{p}.activeParameters: {shape.active_parameters} exceeds parameters "
                        f"({shape.parameters}); both are in billions")
    embeddings_b = (shape.vocab_size * shape.hidden_size
                    * (1 if shape.tied_embeddings else 2)) / 1e9
    if embeddings_b >= shape.parameters:
        problems.append(f"{p}.parameters: {shape.parameters} billion is less than the embeddings "
                        f"alone ({embeddings_b:.3g} billion from vocabSize x hiddenSize); give "
                        "the total parameter count in billions (7.6 for a 7.6B model)")
    return problems


def _one_instance_type(parsed: _RawStack) -> bool:
    """Whether the stack's update strategy needs every model on one instance type: a SageMaker
    endpoint updated `rolling` (AWS has no rolling deployment for an endpoint with several
    production variants, and each instance type is one variant)."""
    return parsed.platform == "sagemaker" and parsed.sagemaker.endpoint_deployment == "rolling"


def _on_one_instance_type(models: list[Model], pricing: Pricing) -> list[Model]:
    """Size the models that leave `instanceType` out onto one instance type, so adding a model
    to a `rolling` stack works as a user would write it: the type the others pin if there is
    one, else the catalog type where every model fits at the lowest total hourly cost (each at
    its fewest GPUs that fit there, unless `gpusPerReplica` pins them). When none fits them all
    (or pinned types differ), nothing changes and the platform's check reports the conflict."""
    if len({m.instance.name for m in models}) <= 1:
        return models
    pinned = {m.spec.instance_type for m in models if m.spec.instance_type is not None}
    if len(pinned) > 1:
        return models
    best: tuple[float, float, str] | None = None
    fits: dict[str, list[SizingRequest]] = {}
    for name in sorted(pinned or GPU_INSTANCES):
        instance = GPU_INSTANCES.get(name)
        price = price_per_hour(instance, pricing) if instance is not None else None
        if instance is None or price is None:
            continue
        requests = [_request_on(m, instance) for m in models]
        if any(r is None for r in requests):
            continue
        fits[name] = [r for r in requests if r is not None]
        total = sum(estimate_cost(r, instance, pricing, m.spec.min_replicas,
                                  m.spec.replicas_max).hourly_usd_min
                    for m, r in zip(models, fits[name], strict=True))
        best = min(best, (total, price, name)) if best is not None else (total, price, name)
    if best is None:
        return models
    instance = GPU_INSTANCES[best[2]]
    return [m if m.instance == instance else dataclasses.replace(
        m, request=r, instance=instance, gpus_per_replica=r.gpus_per_replica,
        memory=estimate_memory(r, instance),
        cost=estimate_cost(r, instance, pricing, m.spec.min_replicas, m.spec.replicas_max))
        for m, r in zip(models, fits[best[2]], strict=True)]


def _request_on(model: Model, instance: GpuInstance) -> SizingRequest | None:
    """The model's sizing request at its fewest GPUs that fit `instance`, or None."""
    if model.instance == instance:
        return model.request
    pinned = model.spec.gpus_per_replica
    for degree in (pinned,) if pinned is not None else TP_DEGREES:
        if degree > instance.gpu_count or tensor_parallel_problem(model.shape, degree):
            continue
        request = model.request.with_tp(degree)
        if estimate_memory(request, instance).fits:
            return request
    return None


def _placement(
    p: str, spec: ModelConfig, request: SizingRequest, pricing: Pricing, problems: list[str]
) -> tuple[SizingRequest, GpuInstance] | None:
    """The instance and the tensor-parallel degree: both given, one given, or both chosen
    (cheapest instance over every degree vLLM can shard the model over; ties: fewer GPUs)."""
    path = f"{p}.instanceType"
    tp = spec.gpus_per_replica
    degrees = (tp,) if tp is not None else TP_DEGREES
    if spec.instance_type is None:
        placement = choose_placement(request, pricing, degrees)
        if placement is None:
            at = (f"with {tp} GPU(s) per replica" if tp is not None
                  else "at any tensor-parallel degree (1, 2, 4, 8)")
            problems.append(f"{path}: {spec.name} fits no GPU instance {at}; "
                            f"{describe_nothing_fits(request, pricing, degrees if tp else None)}; "
                            "quantize, or lower maxTotalTokens / concurrencyTarget")
            return None
        return request.with_tp(placement.gpus_per_replica), placement.instance
    name = spec.instance_type
    cheapest = choose_placement(request, pricing, degrees)
    hint = (f"the cheapest that fits is {cheapest.instance.name}"
            + (f" with gpusPerReplica {cheapest.gpus_per_replica}"
               if tp is None and cheapest.gpus_per_replica > 1 else "")
            if cheapest else "no catalog instance fits; raise gpusPerReplica, quantize, or "
            "lower maxTotalTokens / concurrencyTarget")
    if name.startswith("ml."):
        problems.append(f"{path}: give the EC2 name ({name[3:]}); the sagemaker platform adds "
                        "'ml.' itself")
        return None
    instance = get_gpu_instance(name)
    if instance is None:
        families = ", ".join(sorted({i.family for i in GPU_INSTANCES.values()}))
        problems.append(f"{path}: {name!r} is not a GPU instance type in the catalog; use a size "
                        f"of {families}, or omit it to let sizing choose ({hint})")
        return None
    if pricing == "sagemaker" and not instance.offered_on_sagemaker:
        problems.append(f"{path}: SageMaker does not offer ml.{name}; {hint}")
        return None
    if tp is not None and instance.gpu_count < tp:
        problems.append(f"{path}: {name} has {instance.gpu_count} GPU(s) but gpusPerReplica is "
                        f"{tp}; {hint}")
        return None
    tried = [d for d in degrees if d <= instance.gpu_count
             and tensor_parallel_problem(request.shape, d) is None]
    estimates = [(d, estimate_memory(request.with_tp(d), instance)) for d in tried]
    fitting = [d for d, m in estimates if m.fits]
    if fitting:
        return request.with_tp(fitting[0]), instance
    what = f"{spec.name} ({spec.model_id}, quantization {spec.quantization})"
    if len(estimates) == 1:
        memory = estimates[0][1]
        problems.append(f"{path}: {what} needs {memory.required_gib_per_gpu:.1f} GiB per GPU but "
                        f"{name} offers {memory.available_gib_per_gpu:.1f} GiB usable per GPU; "
                        f"{hint}")
        return None
    needs = "; ".join(f"at {d} GPU(s) it needs {m.required_gib_per_gpu:.1f} GiB per GPU, "
                      f"{name} offers {m.available_gib_per_gpu:.1f} usable"
                      for d, m in estimates) or f"{name} cannot host any valid degree"
    problems.append(f"{path}: {what} does not fit {name}: {needs}; {hint}")
    return None


def load(platform_checks: Mapping[str, Callable[[StackConfig], list[str]]]) -> StackConfig:
    """Read this stack's config from the Pulumi engine: the one place `pulumi.Config` is used."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = [k for k in raw if runtime_config.is_config_secret(k)]
    secret_keys += runtime_config.get_config_secret_keys_env()
    return parse_stack_config(
        raw,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        secret_keys=secret_keys,
        platform_checks=platform_checks,
        hf_token_secret=pulumi.Config(NAMESPACE).get_secret("hfToken"),
    )
