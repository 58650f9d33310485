"""Every threshold of the pack, one below, at and one above, each with the exact message.

Also the edges the issue names: IPv6 `::/0`, port ranges that span the one allowed port, a
missing flag vs an explicit `false`, empty tag values, init containers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import BASE_TAGS, P, run, run_stack, serving

from components.facts import GPU_INSTANCES
from components.tags import SHAPE_TAG

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
SG = "aws:ec2/securityGroup:SecurityGroup"
HOP = ("metadataOptions.httpPutResponseHopLimit is {}; at most 2 keeps pods from reaching the "
       "node's instance credentials")


# --------------------------------------------------------------------------------------------
# imdsv2-required: maxHopLimit 2


@pytest.mark.parametrize(("hops", "expected"), [(1, []), (2, []), (3, [HOP.format(3)])])
def test_hop_limit(hops, expected):
    props = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": hops}}
    assert run("imdsv2-required", LT, props) == expected


# --------------------------------------------------------------------------------------------
# gpu-instance-allowlist: maxGpusPerInstance against g6e.12xlarge's 4 GPUs


@pytest.mark.parametrize(("limit", "expected"), [
    (3, ["instanceType: g6e.12xlarge has 4 GPUs; this environment allows at most 3 per "
         "instance"]),
    (4, []),
    (5, []),
])
def test_gpus_per_instance(limit, expected):
    config = {"allowedFamilies": ["g6e"], "maxGpusPerInstance": limit}
    assert run("gpu-instance-allowlist", LT, {"instanceType": "g6e.12xlarge"}, config) == expected


# --------------------------------------------------------------------------------------------
# cost-ceiling: maxHourlyUsd against what an Auto Scaling group allows

PRICE = GPU_INSTANCES["g6e.xlarge"].ec2_usd_per_hour
TAGGED = [{"key": k, "value": v, "propagateAtLaunch": True}
          for k, v in serving(max_r=1).items()]


def _group(max_size: int) -> list[tuple[str, dict[str, Any]]]:
    return [(LT, {"instanceType": "g6e.xlarge"}),
            (ASG, {"maxSize": max_size, "tags": TAGGED})]


def _over(total: float, budget: float, groups: str) -> str:
    return (f"worst case is ${total:.2f}/hour, over this environment's budget of "
            f"${budget:.2f}/hour: capacity the resources allow ${total:.2f} ({groups}), serving "
            f"tags at max replicas ${PRICE:.2f} (llama-8b ${PRICE:.2f}); lower maxSize, "
            "NodePool limits or maxReplicas, or raise the budget in the policy config")


@pytest.mark.parametrize(("max_size", "over"), [(2, False), (3, False), (4, True)])
def test_group_max_size_against_the_budget(max_size, over):
    budget = 3 * PRICE
    found = run_stack("cost-ceiling", _group(max_size), {"maxHourlyUsd": budget},
                      deps={1: {"launchTemplate": [0]}})
    total = max_size * PRICE
    assert found == ([_over(total, budget, f"r1 ${total:.2f}")] if over else [])


@pytest.mark.parametrize(("delta", "over"), [(-0.01, True), (0.0, False), (0.01, False)])
def test_budget_one_cent_below_at_and_above_the_worst_case(delta, over):
    total = 3 * PRICE
    budget = round(total + delta, 2) if delta else total
    found = run_stack("cost-ceiling", _group(3), {"maxHourlyUsd": budget},
                      deps={1: {"launchTemplate": [0]}})
    assert found == ([_over(total, budget, f"r1 ${total:.2f}")] if over else [])


PER_GPU = max(g.ec2_usd_per_hour / g.gpu_count for g in GPU_INSTANCES.values()
              if g.family == "g6e" and g.gpu_count == 1)


@pytest.mark.parametrize(("gpus", "over"), [(3, False), (4, False), (5, True)])
def test_nodepool_gpu_limit_against_the_budget(gpus, over):
    pool = {"metadata": {"annotations": {f"{P}models": "m"}}, "spec": {
        "limits": {"nvidia.com/gpu": str(gpus)},
        "template": {"spec": {"requirements": [
            {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6e"]},
            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt",
             "values": ["2"]}]}}}}
    budget = 4 * PER_GPU
    found = run_stack("cost-ceiling", [("kubernetes:karpenter.sh/v1:NodePool", pool)],
                      {"maxHourlyUsd": budget})
    total = gpus * PER_GPU
    assert found == ([
        f"worst case is ${total:.2f}/hour, over this environment's budget of ${budget:.2f}/hour: "
        f"capacity the resources allow ${total:.2f} (r0 ${total:.2f}), serving tags at max "
        "replicas $0.00 (none); lower maxSize, NodePool limits or maxReplicas, or raise the "
        "budget in the policy config"] if over else [])


# --------------------------------------------------------------------------------------------
# logs-retention-required: minRetentionDays 30 and CloudWatch's accepted values

LG = "aws:cloudwatch/logGroup:LogGroup"


@pytest.mark.parametrize(("days", "expected"), [
    (None, "retentionInDays is unset: events are kept forever; set one of CloudWatch's values, "
           "at least 30 days"),
    (0, "retentionInDays is 0 (never expire): events are kept forever; set one of CloudWatch's "
        "values, at least 30 days"),
    (14, "retentionInDays is 14; this environment keeps logs at least 30 days"),
    (29, "retentionInDays is 29, which CloudWatch Logs does not accept; use one of 30, 60, 90, "
         "120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
    (30, None),
    (31, "retentionInDays is 31, which CloudWatch Logs does not accept; use one of 30, 60, 90, "
         "120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
    (60, None),
])
def test_log_retention(days, expected):
    props = {} if days is None else {"retentionInDays": days}
    assert run("logs-retention-required", LG, props, {"minRetentionDays": 30}) == (
        [expected] if expected else [])


# --------------------------------------------------------------------------------------------
# private-by-default: what counts as the internet, and the one port it may reach


def _ingress(cidr: str, low: Any = 443, high: Any = 443, protocol: str = "tcp",
             v6: bool = False) -> dict[str, Any]:
    key = "ipv6CidrBlocks" if v6 else "cidrBlocks"
    return {"ingress": [{"protocol": protocol, "fromPort": low, "toPort": high, key: [cidr]}]}


def _open(cidr: str, ports: str, protocol: str = "tcp") -> list[str]:
    return [f"ingress[0] admits {cidr} on {protocol} {ports}; only HTTPS (443 alone) to an "
            "allowed public load balancer may be open to the internet"]


@pytest.mark.parametrize(("cidr", "v6", "internet"), [
    ("10.0.0.0/7", False, True),     # one bit wider than /8, and reaches public space
    ("11.0.0.0/8", False, False),    # a /8: not "the internet" (a rule on it is a choice)
    ("11.0.0.0/9", False, False),
    ("0.0.0.0/0", False, True),
    ("128.0.0.0/1", False, True),    # half the internet dodges a literal 0.0.0.0/0 match
    ("::/0", True, True),
    ("2000::/15", True, True),
    ("2600::/16", True, False),
    ("fc00::/7", True, False),       # unique local addresses are private
])
def test_internet_cidrs_at_the_prefix_boundary(cidr, v6, internet):
    props = _ingress(cidr, 22, 22, v6=v6)
    assert run("private-by-default", SG, props) == (_open(cidr, "22-22") if internet else [])


@pytest.mark.parametrize(("low", "high", "allowed"), [
    (442, 442, False), (442, 443, False), (443, 443, True), (443, 444, False),
    (444, 444, False), (400, 500, False),
])
def test_port_ranges_that_span_the_allowed_port(low, high, allowed):
    props = _ingress("0.0.0.0/0", low, high)
    config = {"allowPublicLoadBalancers": True}
    assert run("private-by-default", SG, props, config) == (
        [] if allowed else _open("0.0.0.0/0", f"{low}-{high}"))


def test_all_protocols_open_every_port_and_ipv6_any():
    assert run("private-by-default", SG, _ingress("::/0", 0, 0, "-1", v6=True),
               {"allowPublicLoadBalancers": True}) == _open("::/0", "all ports", "-1")


# --------------------------------------------------------------------------------------------
# missing flag vs false vs true


@pytest.mark.parametrize(("props", "expected"), [
    ({}, ["encrypted is unset (EFS's default: not encrypted); file systems holding weights or "
          "caches must be encrypted"]),
    ({"encrypted": False}, ["encrypted is false; file systems holding weights or caches must "
                            "be encrypted"]),
    ({"encrypted": "true"}, []),
])
def test_efs_encryption_missing_vs_false(props, expected):
    assert run("encryption-at-rest", "aws:efs/fileSystem:FileSystem", props) == expected


@pytest.mark.parametrize(("props", "expected"), [
    ({}, []),  # SQS applies SSE-SQS to new queues unless told not to
    ({"sqsManagedSseEnabled": False}, [
        "sqsManagedSseEnabled is false and no kmsMasterKeyId: messages are stored unencrypted; "
        "set a KMS key (or SSE-SQS)"]),
    ({"sqsManagedSseEnabled": False, "kmsMasterKeyId": "arn:aws:kms:k"}, []),
])
def test_sqs_encryption_missing_vs_false(props, expected):
    assert run("encryption-at-rest", "aws:sqs/queue:Queue", props) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, ["blockPublicAcls is unset (off); turn on all four public access block settings"]),
    (False, ["blockPublicAcls is false; turn on all four public access block settings"]),
    (True, []),
])
def test_public_access_block_missing_vs_false(value, expected):
    props = {"bucket": "b", "blockPublicPolicy": True, "ignorePublicAcls": True,
             "restrictPublicBuckets": True}
    if value is not None:
        props["blockPublicAcls"] = value
    assert run("s3-bucket-public-access-block",
               "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", props) == expected


@pytest.mark.parametrize(("props", "expected"), [
    ({}, ["endpointPublicAccess is unset (default true) and publicAccessCidrs allows the whole "
          "internet; turn the public endpoint off or restrict it to your CIDRs"]),
    ({"endpointPublicAccess": False}, []),
    ({"endpointPublicAccess": True}, [
        "endpointPublicAccess is true and publicAccessCidrs allows the whole internet; turn the "
        "public endpoint off or restrict it to your CIDRs"]),
])
def test_eks_public_endpoint_missing_vs_false(props, expected):
    assert run("private-by-default", "eks:index:Cluster", props) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), ("false", []), (False, []),
    ("true", ["associatePublicIpAddress is true; compute runs in private subnets without public "
              "IPs"]),
])
def test_public_ip_flag_missing_vs_false(value, expected):
    props = {} if value is None else {"associatePublicIpAddress": value}
    assert run("compute-no-public-ip", "aws:ec2/instance:Instance", props) == expected


# --------------------------------------------------------------------------------------------
# empty tag values, serving-tag ranges


def test_empty_tag_values_are_missing_tags():
    tags = {**BASE_TAGS, "project": "", "stack": " "}
    assert run("required-tags", LT, {"tags": tags}) == ["missing tags: project"]


def test_empty_serving_tag_value_is_not_a_number():
    tags = {**serving(), f"{P}max-replicas": ""}
    assert run("model-fits-gpu-memory", LT, {"instanceType": "g6e.xlarge", "tags": tags}) == [
        "serving tag llm-hosting/max-replicas is not an integer: ''"]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("gpus-per-replica", "0", "serving tag llm-hosting/gpus-per-replica is '0', outside 1..64"),
    ("gpus-per-replica", "1", None),
    ("gpus-per-replica", "65", "serving tag llm-hosting/gpus-per-replica is '65', outside "
                               "1..64"),
    ("max-replicas", "100000", None),
    ("max-replicas", "100001", "serving tag llm-hosting/max-replicas is '100001', outside "
                               "0..100000"),
    ("max-replicas", "inf", "serving tag llm-hosting/max-replicas is not an integer: 'inf'"),
    ("min-replicas", "-1", "serving tag llm-hosting/min-replicas is '-1', outside 0..100000"),
    ("concurrency-target", "0", "serving tag llm-hosting/concurrency-target is '0', outside "
                                "1..100000"),
    ("concurrency-target", "1", None),
    ("max-input-tokens", "10000001", "serving tag llm-hosting/max-input-tokens is '10000001', "
                                     "outside 1..10000000"),
    ("max-total-tokens", "10000001", "serving tag llm-hosting/max-total-tokens is '10000001', "
                                     "outside 1..10000000"),
])
def test_serving_tag_ranges(key, value, expected):
    tags = {**serving(), f"{P}{key}": value}
    found = run("model-fits-gpu-memory", "aws:ecs/service:Service", {"tags": tags})
    if expected is None:
        assert not [m for m in found if "serving tag" in m]
    else:
        assert found == [expected]


SHAPE = "p=7.2 a=7.2 l=32 h=4096 ah=32 kv=8 hd=128 v=32000 ctx=32768 tied=0 dtype=bfloat16"


@pytest.mark.parametrize(("vocab", "expected"), [
    ("9999999", None), ("10000000", None),
    ("10000001", "serving tag llm-hosting/shape is malformed (v must be at most 10000000, not "
                 "'10000001')"),
])
def test_shape_tag_field_bound(vocab, expected):
    value = SHAPE.replace("v=32000", f"v={vocab}")
    tags = {**serving(model_id="acme/custom"), SHAPE_TAG: value}
    found = run("model-fits-gpu-memory", "aws:ecs/service:Service", {"tags": tags})
    malformed = [m for m in found if m.startswith("serving tag")]
    assert malformed == ([f"{expected}: {value!r}"] if expected else [])


# --------------------------------------------------------------------------------------------
# warm-capacity-in-prod and start-up thresholds


@pytest.mark.parametrize(("copies", "expected"), [
    (0, ["runtimeConfig.copyCount is 0; keep at least 1 so the first request after idle does "
         "not wait for a GPU and a model load"]),
    (1, []), (2, []),
])
def test_inference_component_copies(copies, expected):
    props = {"runtimeConfig": {"copyCount": copies}}
    assert run("warm-capacity-in-prod", "aws-native:sagemaker:InferenceComponent",
               props) == expected


@pytest.mark.parametrize(("grace", "expected"), [
    (599, ["healthCheckGracePeriodSeconds is 599 s; set it to at least 600 s so ECS does not "
           "replace tasks whose health checks fail while the model loads"]),
    (600, []), (601, []),
])
def test_ecs_grace_period_against_min_startup_seconds(grace, expected):
    props = {"loadBalancers": [{"containerPort": 8000}], "healthCheckGracePeriodSeconds": grace}
    assert run("llm-startup-timeouts", "aws:ecs/service:Service", props) == expected


# --------------------------------------------------------------------------------------------
# init containers, TLS passthrough ports, condition values


def test_init_container_environment_and_arguments():
    pod = {"spec": {"template": {"spec": {"initContainers": [
        {"name": "fetch", "env": [{"name": "HF_TOKEN", "value": "x"}],
         "command": ["sh", "-c", "HF_TOKEN=abcdefgh123 huggingface-cli download m"]}],
        "containers": [{"name": "vllm"}]}}}}
    assert run("no-plaintext-secrets", "kubernetes:batch/v1:Job", pod) == [
        "container fetch: env HF_TOKEN is named like a credential; its value is readable by "
        "anyone who can read the pod spec: use valueFrom.secretKeyRef",
        "container fetch: command: HF_TOKEN= assigns a literal credential; the pod spec shows "
        "arguments in plain text: pass it as a secret-backed environment variable and "
        "reference it",
    ]


@pytest.mark.parametrize(("port", "plain"), [(442, True), (443, False), (444, True)])
def test_network_listener_passthrough_only_on_443(port, plain):
    lb = ("aws:lb/loadBalancer:LoadBalancer", {"internal": False, "loadBalancerType": "network"})
    listener = ("aws:lb/listener:Listener", {"protocol": "TCP", "port": port,
                                             "defaultActions": [{"type": "forward"}]})
    found = run_stack("transit-listener-https", [lb, listener], {},
                      deps={1: {"loadBalancerArn": [0]}})
    assert found == ([
        f"TCP listener on port {port} of the internet-facing load balancer r0 serves plain "
        "text; this environment requires HTTPS on every listener: listen on HTTPS with an ACM "
        "certificate (or redirect to it)"] if plain else [])


@pytest.mark.parametrize(("value", "pinned"), [("*", False), ("arn:aws:iam::1:role/*", True)])
def test_a_wildcard_condition_value_pins_nothing(value, pinned):
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
        "Condition": {"ArnLike": {"aws:PrincipalArn": value}}}]}
    found = run("iam-role-trust-scoped", "aws:iam/role:Role",
                {"assumeRolePolicy": json.dumps(trust)})
    assert bool(found) is not pinned


# --------------------------------------------------------------------------------------------
# edges the mutation run found (scripts/mutation.py)

COLD = "keep at least 1 so the first request after idle does not wait for a GPU and a model load"


@pytest.mark.parametrize(("props", "expected"), [
    ({"serviceNamespace": "sagemaker"}, [f"minCapacity is 0; {COLD}"]),  # missing: 0
    ({"serviceNamespace": "ecs", "minCapacity": 1}, []),
    ({"serviceNamespace": "ecs", "minCapacity": "one"}, [
        'malformed input on r (aws:appautoscaling/target:Target): minCapacity is "one", not a '
        "finite number; the policy cannot judge it, fix the value"]),
    ({"serviceNamespace": "dynamodb", "minCapacity": 0}, []),
])
def test_scalable_target_minimum(props, expected):
    assert run("warm-capacity-in-prod", "aws:appautoscaling/target:Target", props) == expected


@pytest.mark.parametrize("kind", ["apps/v1:Deployment", "apps/v1:StatefulSet"])
@pytest.mark.parametrize(("replicas", "expected"), [
    (0, [f"spec.replicas is 0; {COLD}"]), (1, []), (None, [])])  # unset: Kubernetes runs 1
def test_gpu_workload_replicas(kind, replicas, expected):
    spec: dict[str, Any] = {"template": {"spec": {"containers": [
        {"name": "vllm", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    assert run("warm-capacity-in-prod", f"kubernetes:{kind}", {"spec": spec}) == expected


ALLOW_G6E = {"allowedFamilies": ["g6e"], "maxGpusPerInstance": 8}


def test_attribute_based_selection_is_refused_by_the_allowlist():
    props = {"instanceRequirements": {"vcpuCount": {"min": 4}, "memoryMib": {"min": 8}}}
    assert run("gpu-instance-allowlist", "aws:ec2/launchTemplate:LaunchTemplate", props,
               ALLOW_G6E) == [
        "instanceRequirements lets EC2 pick any instance type with matching attributes, GPU "
        "families outside this environment's allowlist included; name the instance types, or "
        "cap acceleratorCount.max at 0"]


def test_a_family_named_after_another_operator_is_still_read():
    requirements = [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "NotIn", "values": ["g5"]},
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["p3", "g6e"]}]
    pool = {"spec": {"template": {"spec": {"requirements": requirements}}}}
    assert run("gpu-instance-allowlist", "kubernetes:karpenter.sh/v1:NodePool", pool,
               ALLOW_G6E) == [
        "spec.template.spec.requirements let Karpenter launch p3; this environment allows the "
        "GPU families g6e with at most 8 GPUs per instance: constrain "
        "karpenter.k8s.aws/instance-family and karpenter.k8s.aws/instance-gpu-count"]


@pytest.mark.parametrize(("tokens", "flagged"), [
    ("optional", True), ("required", False), ("no-preference", False), (None, False)])
def test_account_metadata_defaults(tokens, flagged):
    props = {} if tokens is None else {"httpTokens": tokens}
    found = run("imdsv2-required", "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults",
                props)
    assert found == ([f"httpTokens is {tokens}; an account default must not allow IMDSv1 (set "
                      "'required')"] if flagged else [])


@pytest.mark.parametrize(("props", "flagged"), [
    ({"skipDefaultNodeGroup": True}, False), ({"skipDefaultNodeGroup": False}, True), ({}, True),
    ({"autoMode": {"enabled": True}}, False), ({"autoMode": {"enabled": False}}, True),
    ({"skipDefaultNodeGroup": True, "autoMode": {"enabled": False}}, False)])
def test_eks_component_default_node_group(props, flagged):
    found = run("imdsv2-required", "eks:index:Cluster", props)
    assert found == ([
        "skipDefaultNodeGroup is not true: the component's default node group uses a launch "
        "template this pack cannot inspect before `pulumi up`; use managed node groups with an "
        "explicit IMDSv2 launch template"] if flagged else [])


@pytest.mark.parametrize(("props", "flagged"), [
    ({"scalingConfig": {"maxSize": 1}}, True),
    ({"launchTemplate": {"id": "lt-1", "version": "1"}}, False)])
def test_a_node_group_without_a_launch_template_has_an_unknown_root_volume(props, flagged):
    assert run("encryption-at-rest", "aws:eks/nodeGroup:NodeGroup", props) == (
        ["no launchTemplate: the root volume's encryption is the account default; use a launch "
         "template with an encrypted EBS root volume"] if flagged else [])


@pytest.mark.parametrize(("key", "aws_managed"), [
    ("alias/aws/sns", True), ("arn:aws:kms:us-east-1:123456789012:alias/aws/sns", True),
    ("alias/aws-sns", False), ("alias/mine", False),
    ("arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d", False)])
def test_aws_managed_keys_by_alias_or_alias_arn(key, aws_managed):
    config = {"requireCustomerManagedKeys": True, "awsManagedKeyAllowed": []}
    found = run("encryption-customer-managed-keys", "aws:sns/topic:Topic",
                {"kmsMasterKeyId": key}, config)
    assert found == ([f"kmsMasterKeyId is {key} (AWS-managed); this environment requires a "
                      "customer-managed KMS key, or list the resource in awsManagedKeyAllowed "
                      "if it holds no model or user data"] if aws_managed else [])


@pytest.mark.parametrize(("days", "flagged"), [(1, False), (7, False)])
def test_retention_minimum_defaults_to_one_day(days, flagged):
    """Without minRetentionDays in the environment's config, any retention CloudWatch accepts
    passes: the schema default is 1."""
    found = run("logs-retention-required", "aws:cloudwatch/logGroup:LogGroup",
                {"retentionInDays": days})
    assert bool(found) is flagged


NATIVE_LB = "aws-native:elasticloadbalancingv2:LoadBalancer"


@pytest.mark.parametrize(("scheme", "shown"), [
    ("internal", None), ("internet-facing", "internet-facing"),
    (None, "unset (default internet-facing)")])
def test_native_load_balancer_scheme(scheme, shown):
    props = {} if scheme is None else {"scheme": scheme}
    config = {"allowPublicLoadBalancers": False, "requirePrivateClusterEndpoint": True}
    found = run("private-by-default", NATIVE_LB, props, config)
    assert found == ([] if shown is None else [
        f"scheme is {shown}: this environment allows only internal load balancers; set "
        "scheme=internal (or allowPublicLoadBalancers in the policy config)"])


@pytest.mark.parametrize(("props", "flagged"), [
    ({}, True), ({"vpcConfig": None}, True),
    ({"vpcConfig": {"subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}}, False)])
def test_sagemaker_model_outside_the_vpc(props, flagged):
    found = run("private-by-default", "aws:sagemaker/model:Model", props)
    assert found == ([
        "vpcConfig is unset: the model container runs outside this VPC with SageMaker's own "
        "internet access; give it the private subnets and a security group"] if flagged else [])


@pytest.mark.parametrize(("props", "expected"), [
    ({}, []), ({"runtimeConfig": {}}, []),  # unset: SageMaker runs one copy
    ({"runtimeConfig": {"copyCount": 0}}, [f"runtimeConfig.copyCount is 0; {COLD}"])])
def test_inference_component_copies_default_to_one(props, expected):
    assert run("warm-capacity-in-prod", "aws-native:sagemaker:InferenceComponent",
               props) == expected


@pytest.mark.parametrize(("scaling", "expected"), [
    ({"status": "ENABLED"}, [f"productionVariants[0].managedInstanceScaling.minInstanceCount "
                             f"is 0; {COLD}"]),
    ({"status": "ENABLED", "minInstanceCount": 1}, []),
    ({"status": "DISABLED"}, [])])
def test_managed_instance_scaling_minimum_defaults_to_zero(scaling, expected):
    props = {"productionVariants": [{"variantName": "v", "managedInstanceScaling": scaling}]}
    assert run("warm-capacity-in-prod", "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
               props) == expected


UNTAGGED = ("GPU capacity without serving tags (llm-hosting/*, or llm-hosting/models for shared "
            "capacity): the pack cannot check what it serves; tag it with "
            "components.tags.Naming.serving_tags")
G6E_FAMILY = {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6e"]}


@pytest.mark.parametrize(("type_", "props", "problem"), [
    ("kubernetes:karpenter.sh/v1:NodePool",
     {"spec": {"template": {"spec": {"requirements": [G6E_FAMILY]}}}},
     "spec.limits sets no nvidia.com/gpu, cpu or memory limit"),
    ("kubernetes:karpenter.sh/v1:NodePool",
     {"spec": {"limits": {"nvidia.com/gpu": 4}, "template": {"spec": {"requirements": [
         {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}}}},
     "spec.template.spec.requirements let Karpenter launch any GPU type"),
    ("kubernetes:karpenter.sh/v1:NodePool",
     {"spec": {"limits": {"nvidia.com/gpu": 4}, "template": {"spec": {"requirements": [
         {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["4"]}]}}}},
     "spec.template.spec.requirements let Karpenter launch any GPU type"),
    ("aws:autoscaling/group:Group",
     {"maxSize": 2, "mixedInstancesPolicy": {"launchTemplate": {"overrides": [
         {"instanceRequirements": {"vcpuCount": {"min": 4}}}]}}},
     "selects instance types by attributes"),
    ("aws:ec2/dedicatedHost:DedicatedHost", {"instanceType": "p5.48xlarge"},
     "p5.48xlarge on a DedicatedHost is billed at a rate the facts catalog does not hold"),
])
def test_gpu_capacity_that_cannot_be_priced_still_needs_serving_tags(type_, props, problem):
    found = run_stack("cost-ceiling", [(type_, props)], {"maxHourlyUsd": 1000})
    assert len(found) == 2
    assert found[0].startswith("cannot bound the cost of r0: ") and problem in found[0]
    assert found[1] == UNTAGGED


def test_a_model_tagged_below_a_dollar_an_hour_counts_its_own_price():
    tags = serving(model_id="meta-llama/Llama-3.2-1B-Instruct", instance="g4dn.xlarge", max_r=1)
    found = run_stack("cost-ceiling", [("aws:ecs/service:Service", {"tags": tags})],
                      {"maxHourlyUsd": 1e-9})
    price = GPU_INSTANCES["g4dn.xlarge"].ec2_usd_per_hour
    assert price < 1
    assert f"serving tags at max replicas ${price:.2f} (llama-8b ${price:.2f})" in found[0]
