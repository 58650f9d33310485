"""Compute rules: which GPU instances may run, whether the model fits them, and IMDSv2.

Instance types appear in five places across the three platforms; every rule here looks at all of
them: launch templates (ECS), Auto Scaling overrides (ECS Spot), SageMaker production variants,
EKS managed node groups (and `pulumi_eks` components' own inputs), and Karpenter NodePool
requirements, which are evaluated against the facts catalog to find every type the pool can
launch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.rules import _capacity as cap
from policies.rules import _catalog as catalog
from policies.rules._framework import (
    Resource,
    Rule,
    boolean_at,
    family_of,
    is_gpu_family,
    map_at,
    number_at,
    serving_tags,
    string_at,
    strip_ml,
)
from policies.rules.secrets import MODELS, TASK_DEFINITIONS

LAUNCH_TEMPLATE = cap.LAUNCH_TEMPLATE
INSTANCE = cap.INSTANCE
ASG = cap.ASG
NODE_GROUP = cap.NODE_GROUP
EKS_CLUSTER = cap.EKS_CLUSTER
EKS_MANAGED_NODE_GROUP = cap.EKS_MANAGED_NODE_GROUP
EKS_NODE_GROUP = cap.EKS_NODE_GROUP
EKS_NODE_GROUP_V2 = cap.EKS_NODE_GROUP_V2
NODE_POOL = cap.NODE_POOL
NODE_CLASS = cap.NODE_CLASS
INFERENCE_COMPONENT = "aws-native:sagemaker:InferenceComponent"


def instance_types(resource: Resource) -> list[tuple[str, str]]:
    """(where, instance type) for every instance type a resource's inputs name."""
    found, _ = cap.instance_types(resource)
    return [(c.where, c.instance_type) for c in found]


# ------------------------------------------------------------------------------------------
# gpu-instance-allowlist


def _allowed(family: str, config: Mapping[str, Any]) -> bool:
    allowed = list(config["allowedFamilies"])
    return "*" in allowed or family in allowed


def _allowed_text(config: Mapping[str, Any]) -> str:
    allowed = list(config["allowedFamilies"])
    return "any" if "*" in allowed else ", ".join(allowed)


def _type_problem(where: str, instance_type: str, config: Mapping[str, Any]) -> str | None:
    family = family_of(instance_type)
    if not is_gpu_family(family):
        return None  # system/CPU capacity is not what this allowlist governs
    if not _allowed(family, config):
        return (f"{where}: {instance_type} is a {family} instance; this environment allows the "
                f"GPU families {_allowed_text(config)}")
    gpu = catalog.instance(instance_type)
    limit = int(config["maxGpusPerInstance"])
    if gpu is not None and gpu.gpu_count > limit:
        return (f"{where}: {instance_type} has {gpu.gpu_count} GPUs; this environment allows at "
                f"most {limit} per instance")
    return None


def check_allowlist(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    found, by_attributes = cap.instance_types(resource)
    for choice in found:
        problem = _type_problem(choice.where, choice.instance_type, config)
        if problem:
            yield problem
    for where in by_attributes:
        yield (f"{where} lets EC2 pick any instance type with matching attributes, GPU "
               "families outside this environment's allowlist included; name the instance "
               "types, or cap acceleratorCount.max at 0")


def _named_outside_catalog(requirements: Iterable[Mapping[str, Any]],
                           config: Mapping[str, Any]) -> list[str]:
    """GPU families/types a requirement names with `In` that the catalog does not list (p3,
    g4ad...): the catalog walk cannot see them, yet Karpenter would launch them."""
    known = {g.family for g in catalog.GPU_INSTANCES.values()}
    named = []
    for r in requirements:
        key, op, values = catalog.requirement(r)
        if op != "In":
            continue
        if key == "karpenter.k8s.aws/instance-family":
            named += [(v, v) for v in values]
        elif key == "node.kubernetes.io/instance-type":
            named += [(v, family_of(v)) for v in values]
    return [name for name, family in named
            if is_gpu_family(family) and family not in known and not _allowed(family, config)]


def check_nodepool_allowlist(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    limit = int(config["maxGpusPerInstance"])
    requirements = catalog.nodepool_requirements(resource.props)
    launchable = catalog.launchable(requirements)
    outside = [g.name for g in launchable
               if not _allowed(g.family, config) or g.gpu_count > limit]
    outside += _named_outside_catalog(requirements, config)
    if outside:
        yield (f"spec.template.spec.requirements let Karpenter launch {', '.join(outside)}; "
               f"this environment allows the GPU families {_allowed_text(config)} with at most "
               f"{limit} GPUs per instance: constrain karpenter.k8s.aws/instance-family and "
               "karpenter.k8s.aws/instance-gpu-count")


GPU_INSTANCE_ALLOWLIST = Rule(
    name="gpu-instance-allowlist",
    description="GPU instance types are limited to the families this environment allows.",
    checks={
        **dict.fromkeys(cap.NAMES_INSTANCE_TYPES, check_allowlist),
        NODE_POOL: check_nodepool_allowlist,
    },
    config={
        "allowedFamilies": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^(\*|[a-z][a-z0-9-]*)$"},
            "minItems": 1,
            "default": ["*"],
            "description": "GPU instance families allowed (e.g. g5, g6e); '*' allows every one",
        },
        "maxGpusPerInstance": {
            "type": "integer",
            "minimum": 1,
            "default": 8,
            "description": "largest GPU count per instance allowed",
        },
    },
)


# ------------------------------------------------------------------------------------------
# model-fits-gpu-memory


def check_fits(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    serving = catalog.serving_from_tags(serving_tags(resource.props))
    if serving is None:
        return
    if isinstance(serving, str):
        yield serving
        return
    if resource.type == NODE_POOL:
        yield from _nodepool_fit(resource, serving)
        return
    # The resource's own instance types are the truth; the tag is the fallback (inference
    # components and Deployments do not name an instance type).
    types = [(w, t) for w, t in instance_types(resource) if is_gpu_family(family_of(t))]
    if not types:
        types = [(f"tag {catalog.P}instance-type", serving.instance_type)]
    for where, instance_type in types:
        problem = catalog.fit_problem(serving, strip_ml(instance_type))
        if problem:
            yield f"{where}: {problem}"


def _nodepool_fit(resource: Resource, serving: catalog.Serving) -> Iterable[str]:
    if serving.shape is None:  # nothing to size with: say so once, not per instance type
        yield f"metadata.annotations: {catalog.fit_problem(serving, serving.instance_type)}"
        return
    launchable = catalog.launchable(catalog.nodepool_requirements(resource.props))
    too_small = [g.name for g in launchable if catalog.fit_problem(serving, g.name)]
    if too_small:
        yield (f"spec.template.spec.requirements let Karpenter launch {', '.join(too_small)}, "
               f"where {serving.model} ({serving.model_id}, quantization "
               f"{serving.quantization}, {serving.gpus_per_replica} GPU(s) per replica) does not "
               "fit; constrain karpenter.k8s.aws/instance-gpu-memory and instance-gpu-count")


MODEL_FITS_GPU_MEMORY = Rule(
    name="model-fits-gpu-memory",
    description=(
        "Every serving resource fits its model, KV cache for the concurrency target and runtime "
        "overhead in GPU memory (components/sizing.py)."
    ),
    checks=dict.fromkeys(
        (*cap.NAMES_INSTANCE_TYPES, NODE_POOL, NODE_CLASS, INFERENCE_COMPONENT,
         *MODELS, *TASK_DEFINITIONS, "aws:ecs/service:Service", "aws-native:ecs:Service",
         "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"),
        check_fits,
    ),
)


# ------------------------------------------------------------------------------------------
# imdsv2-required


#: type -> path of its metadata options. A launch template or instance without them gets the
#: account/AMI default, which is httpTokens=optional unless changed: IMDSv1 stays reachable, so
#: the setting must be explicit.
#: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html
METADATA_OPTIONS = {
    LAUNCH_TEMPLATE: ("metadataOptions",),
    INSTANCE: ("metadataOptions",),
    cap.SPOT_INSTANCE_REQUEST: ("metadataOptions",),
    cap.LAUNCH_CONFIGURATION: ("metadataOptions",),
    cap.NATIVE_LAUNCH_TEMPLATE: ("launchTemplateData", "metadataOptions"),
    cap.NATIVE_INSTANCE: ("metadataOptions",),
    cap.NATIVE_LAUNCH_CONFIGURATION: ("metadataOptions",),
}
ACCOUNT_IMDS_DEFAULTS = "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults"


def check_launch_template_imds(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    path = METADATA_OPTIONS[resource.type]
    where = ".".join(path)
    options = map_at(resource.props, *path)
    tokens = string_at(options, "httpTokens")
    if tokens != "required":
        yield (f"{where}.httpTokens is {tokens or 'unset'}; set it to 'required' so instance "
               "credentials are only reachable with IMDSv2 session tokens")
    yield from _hop_limit(options, "httpPutResponseHopLimit", f"{where}.httpPutResponseHopLimit",
                          config)


def check_account_imds_defaults(resource: Resource, config: Mapping[str, Any]
                                ) -> Iterable[str]:
    tokens = string_at(resource.props, "httpTokens")
    if tokens not in (None, "required", "no-preference"):
        yield (f"httpTokens is {tokens}; an account default must not allow IMDSv1 (set "
               "'required')")
    yield from _hop_limit(resource.props, "httpPutResponseHopLimit", "httpPutResponseHopLimit",
                          config)


def check_node_class_imds(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # Karpenter's EC2NodeClass defaults metadataOptions.httpTokens to "required" (CRD default),
    # so only an explicit other value is a violation.
    # https://karpenter.sh/docs/concepts/nodeclasses/#specmetadataoptions
    options = map_at(resource.props, "spec", "metadataOptions")
    tokens = string_at(options, "httpTokens")
    if tokens is not None and tokens != "required":
        yield (f"spec.metadataOptions.httpTokens is {tokens}; set it to 'required' so node "
               "credentials are only reachable with IMDSv2 session tokens")
    yield from _hop_limit(options, "httpPutResponseHopLimit",
                          "spec.metadataOptions.httpPutResponseHopLimit", config)


def _hop_limit(holder: Any, key: str, where: str, config: Mapping[str, Any]) -> Iterable[str]:
    limit = int(config["maxHopLimit"])
    value = number_at(holder, key)
    if value is not None and value > limit:
        yield (f"{where} is {value:g}; at most {limit} keeps pods from reaching the node's "
               "instance credentials")


def check_eks_cluster_imds(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    # pulumi_eks builds its own launch template for the default node group; offline it is
    # opaque, so the component must simply not create one (skipDefaultNodeGroup).
    if boolean_at(resource.props, "skipDefaultNodeGroup") is not True and \
            not boolean_at(resource.props, "autoMode", "enabled"):
        yield ("skipDefaultNodeGroup is not true: the component's default node group uses a "
               "launch template this pack cannot inspect before `pulumi up`; use managed node "
               "groups with an explicit IMDSv2 launch template")


IMDSV2_REQUIRED = Rule(
    name="imdsv2-required",
    description="Launch templates, instances and Karpenter EC2NodeClasses require IMDSv2 "
                "session tokens.",
    checks={
        **dict.fromkeys(METADATA_OPTIONS, check_launch_template_imds),
        ACCOUNT_IMDS_DEFAULTS: check_account_imds_defaults,
        NODE_CLASS: check_node_class_imds,
        EKS_CLUSTER: check_eks_cluster_imds,
    },
    config={
        "maxHopLimit": {
            "type": "integer",
            "minimum": 1,
            "maximum": 64,
            "default": 2,
            "description": "highest httpPutResponseHopLimit allowed (2 lets one container hop)",
        },
    },
)

RULES = [GPU_INSTANCE_ALLOWLIST, MODEL_FITS_GPU_MEMORY, IMDSV2_REQUIRED]
