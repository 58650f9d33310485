"""Unit tests per policy: a compliant input passes, changing one property gives the exact message.

Each case goes through the real `ResourceValidationPolicy`/`StackValidationPolicy` objects with
properties wrapped in pulumi-policy's own proxy, as the analyzer hands them to a policy.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import BASE_TAGS, P, run, run_stack, serving

from components.facts import MODEL_SHAPES
from components.tags import SHAPE_TAG, shape_tag_value
from policies.rules import BY_NAME, RULES
from policies.rules._catalog import shape_from_tag
from policies.rules.secrets import is_secret_name
from policies.rules.tags import TAGGABLE_FILE, scan_taggable

ROOT = Path(__file__).resolve().parents[2]


def test_every_policy_has_a_unique_kebab_name_and_one_sentence_description():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) == 27
    for rule in RULES:
        assert rule.name == rule.name.lower() and " " not in rule.name
        assert rule.description.endswith(".") and rule.description.count(". ") == 0


# --------------------------------------------------------------------------------------------
# gpu-instance-allowlist

LT = "aws:ec2/launchTemplate:LaunchTemplate"
DEV_ALLOW = {"allowedFamilies": ["g4dn", "g5", "g6", "g6e"], "maxGpusPerInstance": 4}


def test_allowlist_launch_template():
    assert run("gpu-instance-allowlist", LT, {"instanceType": "g6e.xlarge"}, DEV_ALLOW) == []
    assert run("gpu-instance-allowlist", LT, {"instanceType": "p5.48xlarge"}, DEV_ALLOW) == [
        "instanceType: p5.48xlarge is a p5 instance; this environment allows the GPU families "
        "g4dn, g5, g6, g6e"
    ]
    assert run("gpu-instance-allowlist", LT, {"instanceType": "g6e.48xlarge"}, DEV_ALLOW) == [
        "instanceType: g6e.48xlarge has 8 GPUs; this environment allows at most 4 per instance"
    ]
    # CPU capacity (system node groups) is not governed by the GPU allowlist.
    assert run("gpu-instance-allowlist", LT, {"instanceType": "m7i.large"}, DEV_ALLOW) == []
    # Default config: every family.
    assert run("gpu-instance-allowlist", LT, {"instanceType": "p5.48xlarge"}) == []


def test_allowlist_sagemaker_variant_asg_override_and_node_group():
    config = {"productionVariants": [{"variantName": "v", "instanceType": "ml.p4d.24xlarge"}]}
    assert run("gpu-instance-allowlist",
               "aws:sagemaker/endpointConfiguration:EndpointConfiguration", config, DEV_ALLOW) == [
        "productionVariants[0].instanceType: ml.p4d.24xlarge is a p4d instance; this environment "
        "allows the GPU families g4dn, g5, g6, g6e"
    ]
    asg = {"mixedInstancesPolicy": {"launchTemplate": {"overrides": [
        {"instanceType": "g6e.xlarge"}, {"instanceType": "p5.4xlarge"}]}}}
    assert run("gpu-instance-allowlist", "aws:autoscaling/group:Group", asg, DEV_ALLOW) == [
        "mixedInstancesPolicy.launchTemplate.overrides[1].instanceType: p5.4xlarge is a p5 "
        "instance; this environment allows the GPU families g4dn, g5, g6, g6e"
    ]
    ng = {"instanceTypes": ["g5.2xlarge", "p4de.24xlarge"]}
    assert run("gpu-instance-allowlist", "aws:eks/nodeGroup:NodeGroup", ng, DEV_ALLOW) == [
        "instanceTypes[1]: p4de.24xlarge is a p4de instance; this environment allows the GPU "
        "families g4dn, g5, g6, g6e"
    ]


NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


def nodepool(*requirements: dict[str, Any], annotations: dict[str, str] | None = None
             ) -> dict[str, Any]:
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "gpu", "annotations": annotations or {}},
            "spec": {"template": {"spec": {"requirements": list(requirements)}}}}


def test_allowlist_nodepool_evaluates_requirements_over_the_catalog():
    small = nodepool({"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                      "values": ["g6e"]},
                     {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt",
                      "values": ["2"]})
    assert run("gpu-instance-allowlist", NODE_POOL, small, DEV_ALLOW) == []
    by_memory = nodepool({"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gt",
                          "values": ["80000"]})
    assert run("gpu-instance-allowlist", NODE_POOL, by_memory, DEV_ALLOW) == [
        "spec.template.spec.requirements let Karpenter launch p5.4xlarge, p4de.24xlarge, "
        "p5.48xlarge, p5en.48xlarge; this environment allows the GPU families g4dn, g5, g6, g6e "
        "with at most 4 GPUs per instance: constrain karpenter.k8s.aws/instance-family and "
        "karpenter.k8s.aws/instance-gpu-count"
    ]
    # Families the facts catalog does not list are still judged by name.
    old = nodepool({"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                    "values": ["g6e", "p3"]},
                   {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt",
                    "values": ["2"]})
    assert run("gpu-instance-allowlist", NODE_POOL, old, DEV_ALLOW) == [
        "spec.template.spec.requirements let Karpenter launch p3; this environment allows the "
        "GPU families g4dn, g5, g6, g6e with at most 4 GPUs per instance: constrain "
        "karpenter.k8s.aws/instance-family and karpenter.k8s.aws/instance-gpu-count"
    ]
    by_type = nodepool({"key": "node.kubernetes.io/instance-type", "operator": "In",
                        "values": ["g4ad.xlarge", "m7i.large"]})
    assert run("gpu-instance-allowlist", NODE_POOL, by_type, DEV_ALLOW)[0].startswith(
        "spec.template.spec.requirements let Karpenter launch g4ad.xlarge; ")


# --------------------------------------------------------------------------------------------
# model-fits-gpu-memory


def test_fits_from_the_resource_instance_type_and_serving_tags():
    ok = {"instanceType": "g6e.xlarge", "tags": serving()}
    assert run("model-fits-gpu-memory", LT, ok) == []
    seventy = {"instanceType": "g5.xlarge",
               "tags": serving(model_id="meta-llama/Llama-3.1-70B-Instruct", instance="g5.xlarge",
                               model="llama-70b")}
    assert run("model-fits-gpu-memory", LT, seventy) == [
        "instanceType: llama-70b (meta-llama/Llama-3.1-70B-Instruct, quantization none, 1 GPU(s) "
        "per replica, 4 x 8192 tokens) needs 142.3 GiB per GPU but g5.xlarge offers 19.2 GiB "
        "usable per GPU"
    ]
    # No serving tags: not a serving resource, nothing to check.
    assert run("model-fits-gpu-memory", LT, {"instanceType": "g5.xlarge"}) == []


def test_fits_falls_back_to_the_instance_tag_and_flags_incomplete_tags():
    ic = "aws-native:sagemaker:InferenceComponent"
    tags = serving(model_id="meta-llama/Llama-3.1-70B-Instruct", instance="g5.2xlarge",
                   platform="sagemaker", model="llama-70b")
    tag_list = [{"key": k, "value": v} for k, v in tags.items()]
    assert run("model-fits-gpu-memory", ic, {"tags": tag_list}) == [
        "tag llm-hosting/instance-type: llama-70b (meta-llama/Llama-3.1-70B-Instruct, "
        "quantization none, 1 GPU(s) per replica, 4 x 8192 tokens) needs 142.8 GiB per GPU but "
        "g5.2xlarge offers 19.6 GiB usable per GPU"
    ]
    partial = {"tags": {f"{P}model-id": "Qwen/Qwen2.5-7B-Instruct"}}
    assert run("model-fits-gpu-memory", ic, partial) == [
        "serving tags incomplete: missing llm-hosting/instance-type, llm-hosting/quantization, "
        "llm-hosting/gpus-per-replica, llm-hosting/max-input-tokens, "
        "llm-hosting/max-total-tokens, llm-hosting/concurrency-target, "
        "llm-hosting/min-replicas, llm-hosting/max-replicas"
    ]


def test_fits_nodepool_lists_launchable_instances_that_are_too_small():
    annotations = serving(model_id="meta-llama/Llama-3.1-70B-Instruct", quantization="fp8",
                          gpus=4, instance="g6e.12xlarge", model="llama-70b", platform="eks")
    pool = nodepool({"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "In",
                     "values": ["4"]}, annotations=annotations)
    assert run("model-fits-gpu-memory", NODE_POOL, pool) == [
        "spec.template.spec.requirements let Karpenter launch g4dn.12xlarge, g6.12xlarge, "
        "g5.12xlarge, g6.24xlarge, g5.24xlarge, where llama-70b "
        "(meta-llama/Llama-3.1-70B-Instruct, quantization fp8, 4 GPU(s) per replica) does not "
        "fit; constrain karpenter.k8s.aws/instance-gpu-memory and instance-gpu-count"
    ]
    pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gt", "values": ["40000"]})
    assert run("model-fits-gpu-memory", NODE_POOL, pool) == []


# --------------------------------------------------------------------------------------------
# imdsv2-required

NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def test_imdsv2_launch_template():
    good = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}}
    assert run("imdsv2-required", LT, good) == []
    assert run("imdsv2-required", LT, {"metadataOptions": {"httpTokens": "optional"}}) == [
        "metadataOptions.httpTokens is optional; set it to 'required' so instance credentials "
        "are only reachable with IMDSv2 session tokens"
    ]
    assert run("imdsv2-required", LT, {}) == [
        "metadataOptions.httpTokens is unset; set it to 'required' so instance credentials are "
        "only reachable with IMDSv2 session tokens"
    ]
    hop = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 3}}
    assert run("imdsv2-required", LT, hop) == [
        "metadataOptions.httpPutResponseHopLimit is 3; at most 2 keeps pods from reaching the "
        "node's instance credentials"
    ]


def test_imdsv2_node_class_default_is_required_but_optional_is_not():
    assert run("imdsv2-required", NODE_CLASS, {"spec": {}}) == []
    bad = {"spec": {"metadataOptions": {"httpTokens": "optional"}}}
    assert run("imdsv2-required", NODE_CLASS, bad) == [
        "spec.metadataOptions.httpTokens is optional; set it to 'required' so node credentials "
        "are only reachable with IMDSv2 session tokens"
    ]


# --------------------------------------------------------------------------------------------
# no-plaintext-secrets

TASK = "aws:ecs/taskDefinition:TaskDefinition"


def test_secret_names_skip_engine_token_limits():
    assert is_secret_name("HF_TOKEN") and is_secret_name("HUGGING_FACE_HUB_TOKEN")
    assert is_secret_name("AWS_SECRET_ACCESS_KEY") and is_secret_name("OPENAI_API_KEY")
    assert not is_secret_name("MAX_TOTAL_TOKENS") and not is_secret_name("MAX_INPUT_TOKENS")
    assert not is_secret_name("HF_MODEL_ID") and not is_secret_name("CACHE_KEY_PREFIX")


def test_ecs_environment_vs_secrets():
    container = {"name": "engine", "environment": [{"name": "MAX_TOTAL_TOKENS", "value": "8192"}],
                 "secrets": [{"name": "HF_TOKEN", "valueFrom": "arn:aws:secretsmanager:x"}]}
    ok = {"containerDefinitions": json.dumps([container])}
    assert run("no-plaintext-secrets", TASK, ok) == []
    leak = copy.deepcopy(container)
    leak["environment"].append({"name": "HF_TOKEN", "value": "hf_abc"})
    assert run("no-plaintext-secrets", TASK, {"containerDefinitions": json.dumps([leak])}) == [
        "container engine: environment variable HF_TOKEN is named like a credential; "
        "DescribeTaskDefinition shows it in plain text: pass it through the container's "
        "`secrets` (Secrets Manager valueFrom)"
    ]


def test_sagemaker_inference_component_environment():
    ic = "aws-native:sagemaker:InferenceComponent"
    spec = {"specification": {"container": {"environment": {"HF_MODEL_ID": "/opt/ml/model"}}}}
    assert run("no-plaintext-secrets", ic, spec) == []
    spec["specification"]["container"]["environment"]["MODEL_ACCESS"] = "hf_" + "a" * 34
    assert run("no-plaintext-secrets", ic, spec) == [
        "specification.container: environment variable MODEL_ACCESS holds a value shaped like a "
        "credential; DescribeInferenceComponent shows it in plain text to anyone allowed to "
        "describe it: stage the weights in S3 (weightsUri) so no token is needed"
    ]


def test_kubernetes_env_value_vs_secret_ref():
    deploy = "kubernetes:apps/v1:Deployment"
    ref = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    props = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "env": [ref]}]}}}}
    assert run("no-plaintext-secrets", deploy, props) == []
    props["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "HUGGING_FACE_HUB_TOKEN", "value": "hf_x"})
    assert run("no-plaintext-secrets", deploy, props) == [
        "container vllm: env HUGGING_FACE_HUB_TOKEN is named like a credential; its value is "
        "readable by anyone who can read the pod spec: use valueFrom.secretKeyRef"
    ]


# --------------------------------------------------------------------------------------------
# encryption-at-rest


def test_encryption_launch_template_ebs_string_booleans():
    good = {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]}
    assert run("encryption-at-rest", LT, good) == []
    bad = {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]}
    assert run("encryption-at-rest", LT, bad) == [
        "blockDeviceMappings[0] (/dev/xvda): ebs.encrypted is not true"
    ]


def test_encryption_endpoint_eks_and_log_group():
    ec = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    ebs_backed = {"productionVariants": [{"instanceType": "ml.m5.xlarge"}]}
    assert run("encryption-at-rest", ec, {**ebs_backed, "kmsKeyArn": "arn:aws:kms:k"}) == []
    assert run("encryption-at-rest", ec, ebs_backed) == [
        "kmsKeyArn is unset; encrypt the endpoint's ML storage volumes with a KMS key"
    ]
    # GPU types with NVMe instance storage: hardware-encrypted, and SageMaker rejects a key.
    nvme = {"productionVariants": [{"instanceType": "ml.g6.xlarge"}]}
    assert run("encryption-at-rest", ec, nvme) == []
    assert run("encryption-at-rest", ec, {**nvme, "kmsKeyArn": "arn:aws:kms:k"}) == [
        "kmsKeyArn is set but ml.g6.xlarge use(s) NVMe instance storage, which is "
        "hardware-encrypted; SageMaker rejects a KMS key for these types: remove it"
    ]
    assert run("encryption-at-rest", "eks:index:Cluster", {"encryptionConfigKeyArn": "k"}) == []
    assert run("encryption-at-rest", "eks:index:Cluster", {}) == [
        "encryptionConfigKeyArn is unset; envelope-encrypt Kubernetes secrets with a KMS key"
    ]
    lg = "aws:cloudwatch/logGroup:LogGroup"
    assert run("encryption-at-rest", lg, {"kmsKeyId": "arn:aws:kms:k"}) == []
    assert run("encryption-at-rest", lg, {"retentionInDays": 30}) == [
        "kmsKeyId is unset; encrypt the log group with a KMS key"
    ]


# --------------------------------------------------------------------------------------------
# private-by-default


def test_private_eks_endpoint():
    cluster = {"endpointPrivateAccess": True, "endpointPublicAccess": False}
    assert run("private-by-default", "eks:index:Cluster", cluster) == []
    restricted = {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
    assert run("private-by-default", "eks:index:Cluster", restricted) == []
    assert run("private-by-default", "eks:index:Cluster", {}) == [
        "endpointPublicAccess is unset (default true) and publicAccessCidrs allows the whole "
        "internet; turn the public endpoint off or restrict it to your CIDRs"
    ]
    assert run("private-by-default", "eks:index:Cluster", {},
               {"requirePrivateClusterEndpoint": False}) == []


def test_private_load_balancer_and_security_group():
    lb = "aws:lb/loadBalancer:LoadBalancer"
    assert run("private-by-default", lb, {"internal": True}) == []
    assert run("private-by-default", lb, {"internal": False}) == [
        "internal is not true: this environment allows only internal load balancers; set "
        "internal=true (or allowPublicLoadBalancers in the policy config)"
    ]
    sg = "aws:ec2/securityGroup:SecurityGroup"
    https = {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                          "cidrBlocks": ["0.0.0.0/0"]}]}
    assert run("private-by-default", sg, https, {"allowPublicLoadBalancers": True}) == []
    assert run("private-by-default", sg, https) == [
        "ingress[0] admits 0.0.0.0/0 on tcp 443-443; only HTTPS (443 alone) to an allowed public "
        "load balancer may be open to the internet"
    ]
    vpc_only = {"ingress": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8080,
                             "cidrBlocks": ["10.0.0.0/16"]}]}
    assert run("private-by-default", sg, vpc_only) == []


def test_compute_has_no_public_ip():
    svc = "aws:ecs/service:Service"
    rule = "compute-no-public-ip"
    assert run(rule, svc, {"networkConfiguration": {"assignPublicIp": False}}) == []
    assert run(rule, svc, {"networkConfiguration": {"assignPublicIp": True}}) == [
        "networkConfiguration.assignPublicIp is true; compute runs in private subnets without "
        "public IPs"
    ]
    lt = {"networkInterfaces": [{"associatePublicIpAddress": "true"}]}
    assert run(rule, LT, lt) == [
        "networkInterfaces[0].associatePublicIpAddress is true; compute runs in private subnets "
        "without public IPs"
    ]


# --------------------------------------------------------------------------------------------
# required-tags


def test_required_tags_on_taggable_types_only():
    assert run("required-tags", LT, {"tags": BASE_TAGS}) == []
    assert run("required-tags", LT, {"tags": {"project": "llm-hosting"}}) == [
        "missing tags: stack, environment, managed-by"
    ]
    asg_tags = [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in BASE_TAGS.items()]
    assert run("required-tags", "aws:autoscaling/group:Group", {"tags": asg_tags}) == []
    # RolePolicy takes no tags.
    assert run("required-tags", "aws:iam/rolePolicy:RolePolicy", {"policy": "{}"}) == []
    assert run("required-tags", "aws-native:sagemaker:InferenceComponent", {"tags": []}) == [
        "missing tags: project, stack, environment, managed-by"
    ]


def test_taggable_type_list_matches_the_installed_pulumi_aws():
    import pulumi_aws

    scanned = scan_taggable(Path(pulumi_aws.__file__).parent)
    assert TAGGABLE_FILE.read_text().split() == scanned, (
        "regenerate policies/rules/aws_taggable_types.txt with scan_taggable()")


# --------------------------------------------------------------------------------------------
# llm-startup-timeouts


def test_startup_inference_component_scales_with_model_size():
    ic = "aws-native:sagemaker:InferenceComponent"
    params = {"containerStartupHealthCheckTimeoutInSeconds": 600,
              "modelDataDownloadTimeoutInSeconds": 600}
    tags8 = [{"key": k, "value": v} for k, v in serving(platform="sagemaker").items()]
    ok = {"specification": {"startupParameters": params}, "tags": tags8}
    assert run("llm-startup-timeouts", ic, ok) == []
    tags70 = [{"key": k, "value": v} for k, v in serving(
        model_id="meta-llama/Llama-3.1-70B-Instruct", gpus=4, instance="g6e.12xlarge",
        platform="sagemaker").items()]
    big = {"specification": {"startupParameters": params}, "tags": tags70}
    # No start-up tags (an older release): the slowest source for each window. The Hub is the
    # slow container start (141 GB at 200 MB/s + 421 s load + 180 s warm-up, x1.5), S3 the slow
    # model-data copy (141 GB at 85 MB/s, x1.5).
    assert run("llm-startup-timeouts", ic, big) == [
        "specification.startupParameters.containerStartupHealthCheckTimeoutInSeconds is 600 s; "
        "set it to at least 1962 s so the model can load before the first health check counts",
        "specification.startupParameters.modelDataDownloadTimeoutInSeconds is 600 s; set it to "
        "at least 2492 s so SageMaker can copy the model data to the instance",
    ]
    # Tagged with its source, each window is that source's; never above the API's 3,600 s.
    s3 = big | {"tags": [*tags70, {"key": f"{P}weights", "value": "s3"},
                         {"key": f"{P}engine", "value": "vllm"}]}
    s3["specification"] = {"startupParameters": {
        "containerStartupHealthCheckTimeoutInSeconds": 903,
        "modelDataDownloadTimeoutInSeconds": 2491}}
    assert run("llm-startup-timeouts", ic, s3) == [
        "specification.startupParameters.modelDataDownloadTimeoutInSeconds is 2491 s; set it to "
        "at least 2492 s so SageMaker can copy the model data to the instance"]
    tags405 = [{"key": k, "value": v} for k, v in serving(
        model_id="meta-llama/Llama-3.1-405B-Instruct", quantization="fp8", gpus=8,
        instance="p5.48xlarge", platform="sagemaker").items()]
    capped = {"specification": {"startupParameters": {
        "containerStartupHealthCheckTimeoutInSeconds": 3600,
        "modelDataDownloadTimeoutInSeconds": 3600}}, "tags": tags405}
    assert run("llm-startup-timeouts", ic, capped) == []


def test_startup_ecs_grace_period_covers_load_balancer_and_container_checks():
    svc = "aws:ecs/service:Service"
    behind_lb = {"loadBalancers": [{"containerName": "engine", "containerPort": 8000}]}
    assert run("llm-startup-timeouts", svc, {**behind_lb,
                                             "healthCheckGracePeriodSeconds": 900}) == []
    assert run("llm-startup-timeouts", svc, {**behind_lb,
                                             "healthCheckGracePeriodSeconds": 120}) == [
        "healthCheckGracePeriodSeconds is 120 s; set it to at least 600 s so ECS does not "
        "replace tasks whose health checks fail while the model loads"
    ]
    # A serving service without a load balancer still has container health checks to cover.
    assert run("llm-startup-timeouts", svc, {"tags": serving()}) == [
        "healthCheckGracePeriodSeconds is unset; set it to at least 600 s so ECS does not "
        "replace tasks whose health checks fail while the model loads"
    ]
    # Neither: nothing replaces the task on a failing check.
    assert run("llm-startup-timeouts", svc, {"tags": BASE_TAGS}) == []


def test_startup_ecs_grace_period_skips_a_fargate_service_that_serves_no_model():
    # The gateway: behind a load balancer with a short grace period, on Fargate (no GPU).
    svc = "aws:ecs/service:Service"
    gateway = {"loadBalancers": [{"containerName": "gateway", "containerPort": 4000}],
               "healthCheckGracePeriodSeconds": 60, "launchType": "FARGATE", "tags": BASE_TAGS}
    assert run("llm-startup-timeouts", svc, gateway) == []
    assert run("llm-startup-timeouts", svc, {**gateway, "launchType": "EC2"}) == [
        "healthCheckGracePeriodSeconds is 60 s; set it to at least 600 s so ECS does not "
        "replace tasks whose health checks fail while the model loads"
    ]
    # Serving tags on Fargate still count: the rule judges what it runs, not where.
    assert run("llm-startup-timeouts", svc, {**gateway, "tags": serving()}) != []


def test_startup_kubernetes_probes_on_gpu_containers():
    deploy = "kubernetes:apps/v1:Deployment"
    container = {"name": "vllm", "resources": {"limits": {"nvidia.com/gpu": "1"}},
                 "startupProbe": {"httpGet": {"path": "/health", "port": 8000},
                                  "periodSeconds": 10, "failureThreshold": 90},
                 "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}}}
    props = {"spec": {"template": {"spec": {"containers": [container]}}}}
    assert run("llm-startup-timeouts", deploy, props) == []
    del container["startupProbe"]
    assert run("llm-startup-timeouts", deploy, props) == [
        "container vllm: livenessProbe restarts it after 30 s (initialDelaySeconds + "
        "periodSeconds x failureThreshold); the model needs 600 s: give it a startupProbe that "
        "covers the load"
    ]


# --------------------------------------------------------------------------------------------
# cost-ceiling (stack policy)


def test_cost_ceiling_dedupes_models_and_sums_worst_case():
    """Serving tags alone (no capacity resource): one figure per model however many resources
    carry its tags, summed."""
    seventy = serving(model_id="meta-llama/Llama-3.3-70B-Instruct", quantization="fp8", gpus=4,
                      instance="g6e.12xlarge", model="llama-70b", platform="eks", min_r=2, max_r=4,
                      inp=7168)
    eight = serving(platform="eks", max_r=6, min_r=2)
    resources = [(LT, {"tags": seventy}), ("aws:ecs/service:Service", {"tags": [
        {"key": k, "value": v} for k, v in seventy.items()]}), (LT, {"tags": eight})]
    assert run_stack("cost-ceiling", resources, {"maxHourlyUsd": 150}) == []
    assert run_stack("cost-ceiling", resources, {"maxHourlyUsd": 50}) == [
        "worst case is $53.14/hour, over this environment's budget of $50.00/hour: capacity the "
        "resources allow $0.00 (none), serving tags at max replicas $53.14 (llama-70b $41.97, "
        "llama-8b $11.17); lower maxSize, NodePool limits or maxReplicas, or raise the budget in "
        "the policy config"
    ]


def test_cost_ceiling_uses_sagemaker_prices_for_sagemaker():
    tags = serving(model_id="Qwen/Qwen2.5-7B-Instruct", instance="g6.xlarge", platform="sagemaker",
                   model="qwen-7b", max_r=2, inp=3072, total=4096)
    ic = ("aws-native:sagemaker:InferenceComponent",
          {"tags": [{"key": k, "value": v} for k, v in tags.items()]})
    assert run_stack("cost-ceiling", [ic], {"maxHourlyUsd": 2.0}) == [
        "worst case is $2.25/hour, over this environment's budget of $2.00/hour: capacity the "
        "resources allow $0.00 (none), serving tags at max replicas $2.25 (qwen-7b $2.25); lower "
        "maxSize, NodePool limits or maxReplicas, or raise the budget in the policy config"
    ]


# --------------------------------------------------------------------------------------------
# warm-capacity-in-prod


def test_warm_pool_on_on_demand_gpu_groups_only():
    asg = "aws:autoscaling/group:Group"
    tags = [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in serving().items()]
    assert run("warm-capacity-in-prod", asg, {"tags": tags, "warmPool": {"poolState": "Stopped"}}
               ) == []
    assert run("warm-capacity-in-prod", asg, {"tags": tags}) == [
        "on-demand GPU group has no warmPool; a scale-out would pay instance boot and image pull "
        "again (add a Stopped warm pool)"
    ]
    spot = {"tags": tags, "mixedInstancesPolicy": {"launchTemplate": {}}}
    assert run("warm-capacity-in-prod", asg, spot) == []
    assert run("warm-capacity-in-prod", asg, {"tags": [{"key": "project", "value": "x"}]}) == []


def test_at_least_one_replica():
    ic = "aws-native:sagemaker:InferenceComponent"
    assert run("warm-capacity-in-prod", ic, {"runtimeConfig": {"copyCount": 1}}) == []
    assert run("warm-capacity-in-prod", ic, {"runtimeConfig": {"copyCount": 0}}) == [
        "runtimeConfig.copyCount is 0; keep at least 1 so the first request after idle does not "
        "wait for a GPU and a model load"
    ]
    target = "aws:appautoscaling/target:Target"
    assert run("warm-capacity-in-prod", target,
               {"serviceNamespace": "sagemaker", "minCapacity": 0}) == [
        "minCapacity is 0; keep at least 1 so the first request after idle does not wait for a "
        "GPU and a model load"
    ]
    assert run("warm-capacity-in-prod", target,
               {"serviceNamespace": "sagemaker", "minCapacity": 1}) == []


# --------------------------------------------------------------------------------------------
# config files


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_config_file_sets_enforcement_per_environment(env):
    config = json.loads((ROOT / "policies" / f"config.{env}.json").read_text())
    assert config["all"] == ("advisory" if env == "dev" else "mandatory")
    assert set(config) - {"all"} <= set(BY_NAME)


# --------------------------------------------------------------------------------------------
# custom model shapes (`llm-hosting/shape`, components/tags.py)

CUSTOM_7B = "p=7.2 a=7.2 l=32 h=4096 ah=32 kv=8 hd=128 v=32000 ctx=32768 tied=0 dtype=bfloat16"


@pytest.mark.parametrize("model_id", sorted(MODEL_SHAPES))
def test_shape_tag_round_trips_every_catalog_shape(model_id):
    shape = MODEL_SHAPES[model_id]
    assert shape_from_tag(shape_tag_value(shape)) == shape


@pytest.mark.parametrize(("value", "problem"), [
    ("p=7.2 l=32", "missing a, h, ah, kv, hd, v, ctx, tied, dtype"),
    (CUSTOM_7B.replace("l=32", "l=32.5"), "l must be a positive integer, not '32.5'"),
    (CUSTOM_7B.replace("p=7.2", "p=-1"), "p must be a positive number, not '-1'"),
    (CUSTOM_7B.replace("tied=0", "tied=no"), "tied must be 0 or 1, not 'no'"),
    (CUSTOM_7B.replace("bfloat16", "int4"),
     "dtype 'int4' is not one of bfloat16, float16, float32"),
    (CUSTOM_7B.replace(" ", ","), f"unexpected {CUSTOM_7B.replace(' ', ',')!r}"),
])
def test_malformed_shape_tag_is_a_violation_not_a_guess(value, problem):
    tags = {**serving(model_id="acme/custom-7b"), SHAPE_TAG: value}
    assert run("model-fits-gpu-memory", LT, {"instanceType": "g6e.xlarge", "tags": tags}) == [
        f"serving tag {SHAPE_TAG} is malformed ({problem}): {value!r}"
    ]


def test_custom_model_is_sized_from_its_shape_tag():
    custom = serving(model_id="acme/custom-7b", model="custom")
    props = {"instanceType": "g6e.xlarge", "tags": {**custom, SHAPE_TAG: CUSTOM_7B}}
    assert run("model-fits-gpu-memory", LT, props) == []
    # Without the tag the pack cannot size it: a violation, not a silent pass.
    assert run("model-fits-gpu-memory", LT, {"instanceType": "g6e.xlarge", "tags": custom}) == [
        "instanceType: model acme/custom-7b is not in the facts catalog "
        "(components/facts/models.py) and carries no llm-hosting/shape tag; its GPU memory "
        "cannot be verified"
    ]
    # The tag, not the catalog or the model id, decides: a 70B-sized shape does not fit.
    big = CUSTOM_7B.replace("p=7.2 a=7.2", "p=70.6 a=70.6")
    assert run("model-fits-gpu-memory", LT,
               {"instanceType": "g6e.xlarge", "tags": {**custom, SHAPE_TAG: big}}) == [
        "instanceType: custom (acme/custom-7b, quantization none, 1 GPU(s) per replica, 4 x 8192 "
        "tokens) needs 136.1 GiB per GPU but g6e.xlarge offers 40.0 GiB usable per GPU"
    ]


def test_custom_model_cost_and_startup_use_the_shape_tag():
    custom = serving(model_id="acme/custom-7b", model="custom", max_r=2)
    tagged = {**custom, SHAPE_TAG: CUSTOM_7B}
    assert run_stack("cost-ceiling", [(LT, {"tags": custom})], {"maxHourlyUsd": 100}) == [
        "cannot cost custom (acme/custom-7b on g6e.xlarge) is not in the facts catalog; add it "
        "to components/facts"
    ]
    assert run_stack("cost-ceiling", [(LT, {"tags": tagged})], {"maxHourlyUsd": 1}) == [
        "worst case is $3.72/hour, over this environment's budget of $1.00/hour: capacity the "
        "resources allow $0.00 (none), serving tags at max replicas $3.72 (custom $3.72); lower "
        "maxSize, NodePool limits or maxReplicas, or raise the budget in the policy config"
    ]
    big = {**custom, SHAPE_TAG: CUSTOM_7B.replace("p=7.2 a=7.2", "p=140 a=140"),
           f"{P}gpus-per-replica": "8"}
    svc = {"healthCheckGracePeriodSeconds": 600, "tags": big}
    assert run("llm-startup-timeouts", "aws:ecs/service:Service", svc) == [
        "healthCheckGracePeriodSeconds is 600 s; set it to at least 3624 s so ECS does not "
        "replace tasks whose health checks fail while the model loads"
    ]


# --------------------------------------------------------------------------------------------
# aws-native EndpointConfig (inference-component mode: execution role, variants without a model)

NATIVE_EC = "aws-native:sagemaker:EndpointConfig"


def test_aws_native_endpoint_config_gets_the_same_checks():
    variant = {"variantName": "g6e-xlarge", "instanceType": "ml.g6e.xlarge",
               "containerStartupHealthCheckTimeoutInSeconds": 600,
               "modelDataDownloadTimeoutInSeconds": 600,
               "managedInstanceScaling": {"status": "ENABLED", "minInstanceCount": 1,
                                          "maxInstanceCount": 2}}
    props = {"productionVariants": [variant], "tags": [{"key": k, "value": v}
                                                       for k, v in BASE_TAGS.items()]}
    for rule in ("gpu-instance-allowlist", "encryption-at-rest", "llm-startup-timeouts",
                 "warm-capacity-in-prod", "required-tags"):
        assert run(rule, NATIVE_EC, props, DEV_ALLOW if "allowlist" in rule else None) == []
    bad = copy.deepcopy(props)
    bad["productionVariants"][0].update(
        instanceType="ml.p5.48xlarge", containerStartupHealthCheckTimeoutInSeconds=60,
        managedInstanceScaling={"status": "ENABLED", "minInstanceCount": 0})
    bad["tags"] = []
    assert run("gpu-instance-allowlist", NATIVE_EC, bad, DEV_ALLOW) == [
        "productionVariants[0].instanceType: ml.p5.48xlarge is a p5 instance; this environment "
        "allows the GPU families g4dn, g5, g6, g6e"
    ]
    assert run("llm-startup-timeouts", NATIVE_EC, bad) == [
        "productionVariants[0].containerStartupHealthCheckTimeoutInSeconds is 60 s; set it to at "
        "least 600 s so the model can load before the first health check counts"
    ]
    assert run("warm-capacity-in-prod", NATIVE_EC, bad) == [
        "productionVariants[0].managedInstanceScaling.minInstanceCount is 0; keep at least 1 so "
        "the first request after idle does not wait for a GPU and a model load"
    ]
    assert run("required-tags", NATIVE_EC, bad) == [
        "missing tags: project, stack, environment, managed-by"
    ]
    # aws-native names the ML storage volume key kmsKeyId; NVMe types must not set it.
    assert run("encryption-at-rest", NATIVE_EC, {**props, "kmsKeyId": "arn:aws:kms:k"}) == [
        "kmsKeyId is set but ml.g6e.xlarge use(s) NVMe instance storage, which is "
        "hardware-encrypted; SageMaker rejects a KMS key for these types: remove it"
    ]
    ebs = {"productionVariants": [{"instanceType": "ml.m5.xlarge"}]}
    assert run("encryption-at-rest", NATIVE_EC, ebs) == [
        "kmsKeyId is unset; encrypt the endpoint's ML storage volumes with a KMS key"
    ]
