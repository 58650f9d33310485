"""EKS platform graph: cluster, node groups, add-ons, Karpenter and the device plugin, offline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.eks.iam import NODE_MANAGED_POLICIES
from components.eks.karpenter import INTERRUPTION_RULES
from components.facts.charts import (
    EKS_ADDON_VERSIONS,
    KARPENTER_VERSION,
    NVIDIA_DEVICE_PLUGIN_VERSION,
)
from components.offline import SECRET_SIG, Graph, Recorded, run_program, unwrap
from tests.conftest import crd_schema

MODELS = [
    {"name": "llama-70b", "modelId": "meta-llama/Llama-3.3-70B-Instruct", "quantization": "fp8",
     "maxInputTokens": 7168, "maxTotalTokens": 8192, "gpusPerReplica": 4, "minReplicas": 2,
     "maxReplicas": 4, "weightsUri": "s3://weights/llama-3.3-70b/"},
    {"name": "llama-8b", "modelId": "meta-llama/Llama-3.1-8B-Instruct", "minReplicas": 0,
     "maxReplicas": 3, "capacity": "spot", "weightsUri": "s3://weights/llama-3.1-8b/"},
]


def config(environment: str = "prod", **eks: Any) -> dict[str, Any]:
    # prod refuses scale to zero: the 8B model keeps one (spot) replica there
    models = MODELS if environment != "prod" else [MODELS[0], {**MODELS[1], "minReplicas": 1}]
    return {
        "aws:region": "us-east-1",
        "llm-hosting:environment": environment,
        "llm-hosting:platform": "eks",
        "llm-hosting:models": models,
        "llm-hosting:eks": eks,
    }


@pytest.fixture(scope="module")
def prod() -> Graph:
    return run_program(config(clusterAdminArns=["arn:aws:iam::123456789012:role/platform"]),
                       stack="prod")


@pytest.fixture(scope="module")
def bottlerocket() -> Graph:
    return run_program(config("dev", coldStart="bottlerocket-snapshot",
                              imageSnapshotId="snap-0123456789abcdef0",
                              publicAccessCidrs=["203.0.113.0/24"]), stack="dev")


def names(graph: Graph, urns: list[str]) -> set[str]:
    return {u.rsplit("::", 1)[-1] for u in urns}


def under(graph: Graph, root: Recorded) -> list[Recorded]:
    out, todo = [], [root]
    while todo:
        kids = graph.children_of(todo.pop())
        out += kids
        todo += kids
    return out


def test_cluster_is_private_logged_encrypted_and_api_authenticated(prod):
    cluster = prod.one("eks:index:Cluster")
    i = cluster.inputs
    assert i["name"] == "llm-hosting-prod" and i["version"] == "1.35"
    assert i["endpointPrivateAccess"] is True and i["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in i
    assert i["authenticationMode"] == "API"
    assert set(i["enabledClusterLogTypes"]) == {
        "api", "audit", "authenticator", "controllerManager", "scheduler"}
    key = prod.one("aws:kms/key:Key", "eks-cluster-secrets-key")
    assert i["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True and key.protect
    assert i["privateSubnetIds"] == ["subnet-private-0", "subnet-private-1", "subnet-private-2"]
    assert "publicSubnetIds" not in i
    assert i["skipDefaultNodeGroup"] is True and i["createOidcProvider"] is False
    assert cluster.protect and i["deletionProtection"] is True
    (entry,) = i["accessEntries"].values()
    assert entry["principalArn"] == "arn:aws:iam::123456789012:role/platform"
    assert entry["accessPolicies"]["cluster-admin"]["accessScope"] == {"type": "cluster"}


def test_core_addons_are_ours_alone_pulumi_eks_creates_none(prod):
    """pulumi-eks creates vpc-cni (VpcCniAddon unless `useDefaultVpcCni`), coredns and kube-proxy
    add-ons by default (pulumi-eks nodejs/eks/cluster/cluster.ts); with our pinned EksAddons a
    second `aws.eks.Addon` for the same name would fail with ResourceInUseException."""
    i = prod.one("eks:index:Cluster").inputs
    assert i["useDefaultVpcCni"] is True and "vpcCniOptions" not in i
    assert i["corednsAddonOptions"]["enabled"] is False
    assert i["kubeProxyAddonOptions"]["enabled"] is False
    assert {a.inputs["addonName"] for a in prod.of_type("aws:eks/addon:Addon")} >= {
        "vpc-cni", "coredns", "kube-proxy"}


def test_public_endpoint_only_with_an_allow_list(bottlerocket):
    i = bottlerocket.one("eks:index:Cluster").inputs
    assert i["endpointPublicAccess"] is True and i["endpointPrivateAccess"] is True
    assert i["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_control_plane_logs_have_retention_and_the_logs_key(prod):
    group = prod.one("aws:cloudwatch/logGroup:LogGroup", "eks-cluster-control-plane-logs")
    assert group.inputs["name"] == "/aws/eks/llm-hosting-prod/cluster"
    assert group.inputs["retentionInDays"] == 365
    assert group.inputs["kmsKeyId"] == prod.one("aws:kms/key:Key", "network-logs-key").outputs[
        "arn"]
    assert "eks-cluster-control-plane-logs" in names(prod, prod.one("eks:index:Cluster")
                                                    .dependencies)


def test_cluster_role_may_use_only_its_secrets_key(prod):
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy",
                                 "eks-cluster-role-secrets-key").inputs["policy"])
    (stmt,) = policy["Statement"]
    assert stmt["Resource"] == prod.one("aws:kms/key:Key", "eks-cluster-secrets-key").outputs[
        "arn"]
    assert "kms:*" not in stmt["Action"]


def test_kubernetes_provider_gets_the_kubeconfig_as_a_secret(prod):
    provider = prod.one("pulumi:providers:kubernetes", "eks-cluster-k8s")
    kubeconfig = provider.inputs["kubeconfig"]
    assert kubeconfig["4dabf18193072939515e22adb298388d"] == SECRET_SIG
    assert json.loads(unwrap(kubeconfig))["users"][0]["user"]["exec"]["command"] == "aws"
    for release in prod.of_type("kubernetes:helm.sh/v3:Release"):
        assert release.provider.startswith(provider.urn)


def test_karpenter_discovers_the_cluster_security_group_by_tag(prod):
    tag = prod.one("aws:ec2/tag:Tag", "eks-cluster-sg-discovery-tag").inputs
    assert tag["resourceId"] == prod.one("eks:index:Cluster").outputs["clusterSecurityGroupId"]
    assert (tag["key"], tag["value"]) == ("karpenter.sh/discovery", "llm-hosting-prod")


def test_system_node_group_is_on_demand_without_gpus(prod):
    ng = prod.one("aws:eks/nodeGroup:NodeGroup", "eks-nodes-system").inputs
    assert ng["capacityType"] == "ON_DEMAND" and ng["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng["labels"] == {"llm-hosting/node-role": "system"}
    assert "taints" not in ng
    assert ng["scalingConfig"]["minSize"] == 3 and ng["subnetIds"][0].startswith(
        "subnet-private")


def test_gpu_floor_sized_from_sizing_tainted_labelled_and_hardened(prod):
    ng = prod.one("aws:eks/nodeGroup:NodeGroup", "eks-nodes-gpu-llama-70b").inputs
    assert ng["instanceTypes"] == ["g6e.12xlarge"]  # the sized instance
    assert ng["amiType"] == "AL2023_x86_64_NVIDIA" and ng["capacityType"] == "ON_DEMAND"
    assert ng["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 2}
    assert ng["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert ng["labels"] == {"llm-hosting/model": "llama-70b", "llm-hosting/node-role": "gpu"}
    assert ng["tags"]["model"] == "llama-70b"
    lt = prod.one("aws:ec2/launchTemplate:LaunchTemplate", "eks-nodes-gpu-llama-70b-lt").inputs
    meta = lt["metadataOptions"]
    assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1
    (root,) = lt["blockDeviceMappings"]
    assert root["ebs"]["volumeSize"] >= 100 and root["ebs"]["encrypted"] == "true"
    assert root["ebs"]["volumeType"] == "gp3" and root["ebs"]["throughput"] == 1000
    spot = prod.one("aws:eks/nodeGroup:NodeGroup", "eks-nodes-gpu-llama-8b").inputs
    assert spot["capacityType"] == "SPOT" and spot["scalingConfig"]["minSize"] == 1


def test_no_gpu_floor_where_min_replicas_is_zero(bottlerocket):
    """Karpenter provides all of a scale-to-zero model's capacity (dev/staging only)."""
    groups = {r.name for r in bottlerocket.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups == {"eks-nodes-system", "eks-nodes-gpu-llama-70b"}


def _ints(d: dict[str, Any]) -> dict[str, Any]:
    """The recorder turns integers into floats and some booleans into "true"; the API does not."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        elif v in ("true", "false"):
            v = v == "true"
        out[k] = v
    return out


def create_nodegroup(inputs: dict[str, Any]) -> dict[str, Any]:
    """`eks:CreateNodegroup` as the provider sends it for a recorded `aws.eks.NodeGroup`."""
    i = inputs
    req = {"clusterName": i["clusterName"], "nodegroupName": "ng", "subnets": i["subnetIds"],
           "nodeRole": i["nodeRoleArn"], "amiType": i["amiType"],
           "capacityType": i["capacityType"], "instanceTypes": i["instanceTypes"],
           "scalingConfig": _ints(i["scalingConfig"]), "updateConfig": _ints(i["updateConfig"]),
           "launchTemplate": {"id": i["launchTemplate"]["id"],
                              "version": i["launchTemplate"]["version"]},
           "labels": i["labels"], "tags": i["tags"]}
    if "taints" in i:
        req["taints"] = i["taints"]
    return req


def create_launch_template(inputs: dict[str, Any]) -> dict[str, Any]:
    """`ec2:CreateLaunchTemplate` for a recorded `aws.ec2.LaunchTemplate` (the members we set)."""
    pascal = {"httpEndpoint": "HttpEndpoint", "httpTokens": "HttpTokens",
              "httpPutResponseHopLimit": "HttpPutResponseHopLimit",
              "instanceMetadataTags": "InstanceMetadataTags", "volumeSize": "VolumeSize",
              "volumeType": "VolumeType", "iops": "Iops", "throughput": "Throughput",
              "encrypted": "Encrypted", "snapshotId": "SnapshotId",
              "volumeInitializationRate": "VolumeInitializationRate",
              "deleteOnTermination": "DeleteOnTermination"}
    data: dict[str, Any] = {
        "MetadataOptions": {pascal[k]: v for k, v in _ints(inputs["metadataOptions"]).items()},
        "BlockDeviceMappings": [
            {"DeviceName": m["deviceName"],
             "Ebs": {pascal[k]: v for k, v in _ints(m["ebs"]).items()}}
            for m in inputs["blockDeviceMappings"]],
        "TagSpecifications": [
            {"ResourceType": t["resourceType"],
             "Tags": [{"Key": k, "Value": v} for k, v in t["tags"].items()]}
            for t in inputs["tagSpecifications"]],
    }
    if "userData" in inputs:
        data["UserData"] = inputs["userData"]
    return {"LaunchTemplateName": "lt", "LaunchTemplateData": data}


@pytest.mark.parametrize("stack", ["prod", "bottlerocket"])
def test_node_groups_and_launch_templates_are_requests_the_apis_accept(stack, request):
    """botocore's EKS and EC2 models: required members, types, ranges and enums (AMI type,
    capacity type, taint effect, IMDS tokens, gp3) — what CreateNodegroup would reject."""
    from tests.aws_api import request_problems
    graph = request.getfixturevalue(stack)
    groups = graph.of_type("aws:eks/nodeGroup:NodeGroup")
    templates = graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    # system + the 70B floor (+ the 8B spot floor in prod, where it cannot scale to zero)
    assert len(groups) == len(templates) == (3 if stack == "prod" else 2)
    for ng in groups:
        assert request_problems("eks", "CreateNodegroup", create_nodegroup(ng.inputs)) == [], \
            ng.name
    for lt in templates:
        assert request_problems("ec2", "CreateLaunchTemplate",
                                create_launch_template(lt.inputs)) == [], lt.name
    # the check has teeth: the AL2 GPU AMI type name is not an AL2023 one
    bad = create_nodegroup(groups[-1].inputs) | {"amiType": "AL2023_x86_64_GPU"}
    assert request_problems("eks", "CreateNodegroup", bad) == [
        "CreateNodegroup.amiType: 'AL2023_x86_64_GPU' is not one of AMITypes's values"]


def test_spot_floor_spreads_over_spot_pools_with_the_same_gpu_count():
    """One instance type on spot: a reclaim of that one pool takes the whole floor at once."""
    from components.config import EksConfig
    from components.eks.nodegroups import floor_instance_types
    from components.facts import GPU_INSTANCES
    from components.platforms import parse_config
    from components.sizing import estimate_memory

    spot = {**MODELS[1], "minReplicas": 2}
    raw = {**config(), "llm-hosting:models": json.dumps(
        [spot, {**spot, "name": "od", "capacity": "on-demand"}]),
        "llm-hosting:eks": "{}"}
    spot_model, od_model = parse_config(raw, project="llm-hosting", stack="prod").models
    types = floor_instance_types(spot_model, EksConfig())
    assert types[0] == spot_model.instance.name and len(set(types)) == len(types) >= 3
    for name in types:
        inst = GPU_INSTANCES[name]
        assert inst.gpu_count == spot_model.instance.gpu_count  # floor_nodes still holds
        assert estimate_memory(spot_model.request, inst).fits
    assert floor_instance_types(od_model, EksConfig()) == [od_model.instance.name]


def test_bottlerocket_floor_uses_the_nvidia_variant_and_the_image_snapshot(bottlerocket):
    ng = bottlerocket.one("aws:eks/nodeGroup:NodeGroup", "eks-nodes-gpu-llama-70b").inputs
    assert ng["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"
    lt = bottlerocket.one("aws:ec2/launchTemplate:LaunchTemplate",
                          "eks-nodes-gpu-llama-70b-lt").inputs
    data = lt["blockDeviceMappings"][1]["ebs"]
    assert data["snapshotId"] == "snap-0123456789abcdef0" and "encrypted" not in data
    assert "userData" not in lt


def test_core_addons_are_pinned_and_coredns_waits_for_system_nodes(prod):
    addons = {a.inputs["addonName"]: a for a in prod.of_type("aws:eks/addon:Addon")}
    assert {k: a.inputs["addonVersion"] for k, a in addons.items()} == \
        EKS_ADDON_VERSIONS["1.35"].by_addon_name()
    for addon in addons.values():
        assert addon.inputs["clusterName"] == "llm-hosting-prod"
        assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
    assert "eks-nodes-system" in names(prod, addons["coredns"].dependencies)


def test_karpenter_node_role_profile_and_access_entry(prod):
    role = prod.one("aws:iam/role:Role", "eks-karpenter-node-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = {a.inputs["policyArn"].rsplit("/", 1)[-1]
                for a in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.name.startswith("eks-karpenter-node-role-")}
    assert attached == set(NODE_MANAGED_POLICIES)
    profile = prod.one("aws:iam/instanceProfile:InstanceProfile",
                       "eks-karpenter-node-profile")
    assert profile.inputs["role"] == role.outputs["name"] == "eks-karpenter-node-role-0a1b2c3"
    entry = prod.one("aws:eks/accessEntry:AccessEntry", "eks-karpenter-node-access").inputs
    assert entry["type"] == "EC2_LINUX" and entry["principalArn"] == role.outputs["arn"]
    for nc in prod.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert nc.inputs["spec"]["instanceProfile"] == profile.inputs["name"]


def test_interruption_queue_and_the_five_eventbridge_rules(prod):
    queue = prod.one("aws:sqs/queue:Queue", "eks-karpenter-interruption")
    assert queue.inputs["messageRetentionSeconds"] == 300
    assert queue.inputs["sqsManagedSseEnabled"] is True
    rules = prod.of_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules) == \
        sorted(p["detail-type"][0] for p in INTERRUPTION_RULES.values())
    assert {r.name for r in rules} == {f"eks-karpenter-{k}" for k in INTERRUPTION_RULES}
    targets = prod.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == 5 and {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}
    policy = json.loads(prod.one("aws:sqs/queuePolicy:QueuePolicy",
                                 "eks-karpenter-interruption-policy").inputs["policy"])
    allow, deny = policy["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == sorted(
        r.outputs["arn"] for r in rules)
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}}


def test_karpenter_controller_identity_is_pod_identity_scoped_to_its_service_account(prod):
    assoc = prod.one("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                     "eks-karpenter-controller-identity").inputs
    assert (assoc["namespace"], assoc["serviceAccount"]) == ("kube-system", "karpenter")
    role = prod.one("aws:iam/role:Role", "eks-karpenter-controller-role")
    assert assoc["roleArn"] == role.outputs["arn"]
    cond = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]
    assert cond["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == "karpenter"
    assert cond["StringEquals"]["aws:RequestTag/eks-cluster-name"] == "llm-hosting-prod"
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy",
                                 "eks-karpenter-controller-policy").inputs["policy"])
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["AllowInterruptionQueueActions"]["Resource"] == \
        prod.one("aws:sqs/queue:Queue", "eks-karpenter-interruption").outputs["arn"]
    assert sids["AllowPassingInstanceRole"]["Resource"] == prod.one(
        "aws:iam/role:Role", "eks-karpenter-node-role").outputs["arn"]


def test_karpenter_charts_pinned_with_cluster_and_queue_on_system_nodes(prod):
    crd = prod.one("kubernetes:helm.sh/v3:Release", "eks-karpenter-crd").inputs
    ctl = prod.one("kubernetes:helm.sh/v3:Release", "eks-karpenter-controller")
    assert crd["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert crd["version"] == ctl.inputs["version"] == KARPENTER_VERSION
    assert ctl.inputs["skipCrds"] is True and ctl.inputs["namespace"] == "kube-system"
    values = ctl.inputs["values"]
    assert values["settings"] == {"clusterName": "llm-hosting-prod",
                                  "interruptionQueue": "llm-hosting-prod-karpenter"}
    assert values["nodeSelector"] == {"llm-hosting/node-role": "system"}
    assert {"name": "AWS_REGION", "value": "us-east-1"} in values["controller"]["env"]
    deps = names(prod, ctl.dependencies)
    assert {"eks-karpenter-crd", "eks-karpenter-controller-identity", "eks-nodes-system",
            "eks-addons-eks-pod-identity-agent"} <= deps


def test_one_node_class_and_pool_per_model_valid_against_the_crds(prod):
    import jsonschema
    for type_, file in (("kubernetes:karpenter.sh/v1:NodePool", "karpenter.sh_nodepools.yaml"),
                        ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
                         "karpenter.k8s.aws_ec2nodeclasses.yaml")):
        objects = prod.of_type(type_)
        assert sorted(o.inputs["metadata"]["name"] for o in objects) == [
            "llm-llama-70b", "llm-llama-8b"]
        for obj in objects:
            body = {k: obj.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}
            # the recorder turns integers into floats; the API server sees integers
            body = json.loads(json.dumps(body), parse_float=lambda f: int(float(f))
                              if float(f).is_integer() else float(f))
            jsonschema.Draft7Validator(crd_schema(file)).validate(body)
    pool = prod.one("kubernetes:karpenter.sh/v1:NodePool", "eks-karpenter-nodepool-llama-8b")
    assert "eks-karpenter-controller" in names(prod, pool.dependencies)
    assert prod.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
                    "eks-karpenter-nodeclass-llama-8b").inputs["spec"]["tags"]["model"] == \
        "llama-8b"


def test_device_plugin_runs_on_gpu_nodes_only_and_only_for_al2023(prod, bottlerocket):
    release = prod.one("kubernetes:helm.sh/v3:Release", "eks-device-plugin-release").inputs
    assert release["version"] == NVIDIA_DEVICE_PLUGIN_VERSION
    assert release["repositoryOpts"]["repo"] == "https://nvidia.github.io/k8s-device-plugin"
    values = release["values"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in \
        values["tolerations"]
    (term,) = values["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [
        {"key": "llm-hosting/node-role", "operator": "In", "values": ["gpu"]}]
    assert not bottlerocket.of_type("llm-hosting:eks:DevicePlugin")


def test_every_taggable_aws_resource_under_the_platform_is_tagged(prod):
    platform = prod.one("llm-hosting:eks:EksPlatform")
    untaggable = {"aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                  "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/eventTarget:EventTarget",
                  "aws:sqs/queuePolicy:QueuePolicy", "aws:ec2/tag:Tag",
                  "aws:sns/topicPolicy:TopicPolicy",
                  "aws:secretsmanager/secretVersion:SecretVersion"}
    checked = 0
    for r in under(prod, platform):
        if r.type.startswith("aws:") and r.type not in untaggable:
            assert r.inputs.get("tags", {}).get("project") == "llm-hosting", r.name
            assert r.inputs["tags"]["environment"] == "prod", r.name
            checked += 1
    assert checked > 15
    assert prod.one("eks:index:Cluster").inputs["tags"]["managed-by"] == "pulumi"


def test_exports_for_the_serving_layer(prod):
    e = prod.exports
    assert e["clusterName"] == "llm-hosting-prod"
    assert e["nodePools"] == {"llama-70b": "llm-llama-70b", "llama-8b": "llm-llama-8b"}
    assert e["nodeRoleArn"] == prod.one("aws:iam/role:Role", "eks-karpenter-node-role").outputs[
        "arn"]
    assert e["updateKubeconfig"].endswith("--name llm-hosting-prod")


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_eks_serves_vllm_only_and_refuses_tgi_before_any_resource(engine):
    """The serving layer (args, KEDA queries, dashboards, hardening) is vLLM's; a TGI model
    would silently run vLLM sized with TGI's accounting."""
    from components.config import ConfigError
    from components.platforms import parse_config

    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config().items()}
    models = json.loads(raw["llm-hosting:models"])
    models[1]["engine"] = engine
    raw["llm-hosting:models"] = json.dumps(models)
    if engine == "vllm":
        parsed = parse_config(raw, project="llm-hosting", stack="prod")
        assert parsed.models[1].spec.engine == engine
        return
    with pytest.raises(ConfigError) as err:
        parse_config(raw, project="llm-hosting", stack="prod")
    assert err.value.problems == (
        "llm-hosting:models[1].engine: the eks platform serves with vLLM only (its scaling, "
        "metrics and container hardening are built for vLLM); use engine 'vllm', or the ecs or "
        "sagemaker platform for TGI",
    )
