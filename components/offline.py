"""Run the Pulumi program offline and record the resource graph it registers.

Used by the `plan` command (what would `pulumi up` create?) and by the tests. The recorder
answers like AWS would for the few outputs the program reads (ids, ARNs, subnet lists), records
every resource's type, name, inputs, parent and provider, and every invoke, so a test asks
questions of the graph instead of the mock. Two pitfalls of the SDK's stock mocks
(`pulumi.runtime.mocks`) are handled here: resource references in inputs are replaced by their
URN before the stock monitor deserializes them on another event loop, and `Call` (component
methods) is forwarded to the mocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import ipaddress
import json
import math
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2, source_pb2

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: `__main__.py` and the `Pulumi.<stack>.yaml` files live here."""
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ACCOUNT = "123456789012"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""
    parent: str = ""
    provider: str = ""
    custom: bool = True
    protect: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    """URNs the resource waits for (`depends_on` and input dependencies)."""
    recorded: bool = True
    """False for what a remote component creates, listed by `plan` from the component's inputs
    (offline, a remote component registers as one resource)."""
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Per input property, the URNs its value was computed from (what the engine sends the
    policy pack's AnalyzeStack as `propertyDependencies`); only non-empty entries."""


@dataclass(frozen=True)
class Invoked:
    """One invoke (data source call) the program made, with the provider it named."""

    token: str
    args: dict[str, Any]
    provider: str
    """`<provider urn>::<id>`; empty when the invoke would use the default provider."""


@dataclass
class Graph:
    resources: list[Recorded]
    invokes: list[tuple[str, dict[str, Any]]]
    """(token, args) per invoke; `invoked` has the same calls with their provider."""
    exports: dict[str, Any]
    invoked: list[Invoked] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_} {name or ''}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, parent: Recorded) -> list[Recorded]:
        return [r for r in self.resources if r.parent == parent.urn]


def unwrap(value: Any) -> Any:
    """A recorded input with secrets unwrapped (only for asserting on content)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


@dataclass(frozen=True)
class ResourceRef:
    """An output that is itself a resource (pulumi_eks's `eksCluster`), in an `OUTPUTS` answer.

    The recorder registers it in the monitor under a URN of its own, so the program can read it
    back (`cluster.eks_cluster.name`) through the engine's `getResource`, as it would for a real
    remote component's child. It is not recorded as a resource the program registered.
    """

    type: str
    name: str
    state: dict[str, Any]


def _kubeconfig(cluster_name: str) -> dict[str, Any]:
    """A kubeconfig shaped like pulumi_eks's (exec credentials, no token in it)."""
    server = f"https://{cluster_name.upper()}.gr7.us-east-1.eks.amazonaws.com"
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "aws",
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server, "certificate-authority-data": "LS0tLS1CRUdJTg=="}}],
        "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
        "users": [{"name": "aws", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"],
        }}}],
    }


def _eks_cluster_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """pulumi_eks.Cluster: the kubeconfig, the EKS-created security group (with
    `skipDefaultSecurityGroups`) and `eksCluster`, the aws.eks.Cluster child, as a resource."""
    cluster_name = inputs.get("name") or f"{name}-eksCluster-0a1b2c3"
    sg = "sg-0eksclustermock"
    return {
        "kubeconfig": _kubeconfig(cluster_name),
        "kubeconfigJson": json.dumps(_kubeconfig(cluster_name)),
        "clusterSecurityGroupId": sg,
        "nodeSecurityGroupId": sg,
        "oidcProviderArn": "",
        "eksCluster": ResourceRef("aws:eks/cluster:Cluster", f"{name}-eksCluster", {
            "name": cluster_name,
            "arn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{cluster_name}",
            "endpoint": _kubeconfig(cluster_name)["clusters"][0]["cluster"]["server"],
            "version": inputs.get("version", ""),
            "vpcConfig": {"clusterSecurityGroupId": sg, "vpcId": inputs.get("vpcId", "")},
        }),
    }


def _awsx_subnet_cidrs(vpc_cidr: str, azs: int, masks: list[int]) -> list[list[str]]:
    """awsx's `Auto` layout: the VPC split into 2^ceil(log2(azs)) equal AZ blocks, each AZ's
    specs allocated in order from its block's start, each aligned to its own size
    (pulumi-awsx awsx/ec2/subnetDistributorNew.ts `getSubnetSpecs`). [az][spec] -> CIDR."""
    vpc = ipaddress.ip_network(vpc_cidr)
    az_prefix = vpc.prefixlen + math.ceil(math.log2(azs)) if azs > 1 else vpc.prefixlen
    blocks = list(vpc.subnets(new_prefix=az_prefix))[:azs]
    layout = []
    for block in blocks:
        at, cidrs = int(block.network_address), []
        for mask in masks:
            size = 2 ** (32 - mask)
            at = -(-at // size) * size  # align up to the subnet's own size
            cidrs.append(str(ipaddress.ip_network((at, mask))))
            at += size
        layout.append(cidrs)
    return layout


def _vpc_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """awsx.ec2.Vpc: ids, `routeTables` as resources, one per subnet, named as awsx names them
    (`<vpc>-<spec>-<az>`, public before private in each AZ), and `subnets` as resources with
    their CIDR blocks in awsx's `Auto` layout (isolated ones listed in `isolatedSubnetIds`)."""
    azs = int(inputs.get("numberOfAvailabilityZones", 2))
    specs = inputs.get("subnetSpecs") or []
    tables = [
        ResourceRef("aws:ec2/routeTable:RouteTable", f"{name}-{kind}-{az}", {"vpcId": "vpc-0mock"})
        for az in range(1, azs + 1) for kind in ("public", "private")
    ]
    layout = _awsx_subnet_cidrs(inputs.get("cidrBlock", "10.0.0.0/16"), azs,
                                [int(s.get("cidrMask", 24)) for s in specs]) if specs else []
    subnets = [
        ResourceRef("aws:ec2/subnet:Subnet", f"{name}-{spec.get('name')}-{az + 1}",
                    {"cidrBlock": layout[az][i], "vpcId": "vpc-0mock"})
        for az in range(azs) for i, spec in enumerate(specs)
    ]
    isolated = [f"{name}-{spec.get('name')}-{az + 1}-id" for az in range(azs)
                for spec in specs if spec.get("type") == "Isolated"]
    return {
        "vpcId": "vpc-0mock",
        "privateSubnetIds": [f"subnet-private-{i}" for i in range(azs)],
        "publicSubnetIds": [f"subnet-public-{i}" for i in range(azs)],
        "isolatedSubnetIds": isolated,
        "routeTables": tables,
        "subnets": subnets,
    }


OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    # Remote components are opaque offline: answer with the outputs the program reads.
    "awsx:ec2:Vpc": _vpc_outputs,
    # ECS platform: names AWS derives from the resource (ALB DNS name, CloudWatch dimensions).
    "aws:lb/loadBalancer:LoadBalancer": lambda name, _: {
        "dnsName": f"internal-{name}-123456.us-east-1.elb.amazonaws.com",
    },
    "aws:ec2/launchTemplate:LaunchTemplate": lambda name, _: {"latestVersion": 1},
    # EKS platform: pulumi_eks's remote Cluster component (see _eks_cluster_outputs).
    "eks:index:Cluster": _eks_cluster_outputs,
    # Role names the provider generates when the program leaves them to autonaming.
    "aws:iam/role:Role": lambda name, inputs: {"name": inputs.get("name") or f"{name}-0a1b2c3"},
    # EKS serving (monitoring: amp): the workspace's query/remote-write endpoint.
    "aws:amp/workspace:Workspace": lambda name, _: {
        "prometheusEndpoint":
            f"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-{name}/",
    },
    # SageMaker platform: names the provider generates when the program leaves them to
    # autonaming (models and endpoint configs are immutable, so they are replaced
    # create-before-delete under a new name).
    "aws:sagemaker/model:Model": lambda name, inputs: {
        "name": inputs.get("name") or f"{name}-0a1b2c3",
    },
    "aws-native:sagemaker:EndpointConfig": lambda name, inputs: {
        "endpointConfigName": inputs.get("endpointConfigName") or f"{name}-0a1b2c3",
    },
}
"""Outputs AWS computes that the program reads back, per resource type (custom resources also
echo their inputs). One entry per type; platforms add theirs here."""


def _hex(name: str, n: int) -> str:
    """A stable id fragment per resource name (AWS ids are random; tests need them stable)."""
    return hashlib.sha256(name.encode()).hexdigest()[:n]


def _uuid(name: str) -> str:
    h = _hex(name, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _physical(name: str, inputs: Mapping[str, Any], key: str = "name") -> str:
    """The name AWS knows the resource by: the input, or Pulumi's autoname."""
    return str(inputs.get(key) or f"{name}-0a1b2c3")


def _iam_path(inputs: Mapping[str, Any]) -> str:
    return str(inputs.get("path") or "/").lstrip("/")


def _last(arn_or_name: Any) -> str:
    return str(arn_or_name or "").rsplit("/", 1)[-1]


def _elb_parent(arn: Any) -> str:
    """`app/<lb>/<id>[/<listener id>]` of an ELB ARN (what listener and rule ARNs extend)."""
    resource = str(arn or "").split(":", 5)[-1]
    return resource.split("/", 1)[1] if "/" in resource else f"app/unknown/{_hex(resource, 16)}"


ArnAnswer = Callable[[str, Mapping[str, Any], str, str], dict[str, str]]
"""(resource name, inputs, region, account) -> the ARN outputs of the resource (and `id` where
AWS's id is the ARN)."""

ARNS: dict[str, ArnAnswer] = {
    # Formats: AWS's Service Authorization Reference ("Resource types defined by <service>"),
    # which tests/iam_reference.py holds every policy Resource to.
    "aws:cloudwatch/logGroup:LogGroup": lambda n, i, r, a: {
        "arn": f"arn:aws:logs:{r}:{a}:log-group:{_physical(n, i)}"},
    "aws:cloudwatch/metricAlarm:MetricAlarm": lambda n, i, r, a: {
        "arn": f"arn:aws:cloudwatch:{r}:{a}:alarm:{_physical(n, i)}"},
    "aws:cloudwatch/dashboard:Dashboard": lambda n, i, r, a: {
        "dashboardArn": f"arn:aws:cloudwatch::{a}:dashboard/{_physical(n, i, 'dashboardName')}"},
    "aws:cloudwatch/eventRule:EventRule": lambda n, i, r, a: {
        "arn": f"arn:aws:events:{r}:{a}:rule/{_physical(n, i)}"},
    "aws:sqs/queue:Queue": lambda n, i, r, a: {
        "arn": f"arn:aws:sqs:{r}:{a}:{_physical(n, i)}",
        "url": f"https://sqs.{r}.amazonaws.com/{a}/{_physical(n, i)}"},
    "aws:sns/topic:Topic": lambda n, i, r, a: {
        "arn": f"arn:aws:sns:{r}:{a}:{_physical(n, i)}"},
    "aws:kms/key:Key": lambda n, i, r, a: {
        "arn": f"arn:aws:kms:{r}:{a}:key/{_uuid(n)}", "keyId": _uuid(n)},
    # A secret's id is its ARN; a version's `arn` is its secret's.
    "aws:secretsmanager/secret:Secret": lambda n, i, r, a: {
        "arn": (arn := f"arn:aws:secretsmanager:{r}:{a}:secret:"
                       f"{i.get('name') or str(i.get('namePrefix') or n) + '0a1b2c3'}-"
                       f"{_hex(n, 6)}"),
        "id": arn},
    "aws:secretsmanager/secretVersion:SecretVersion": lambda n, i, r, a: {
        "arn": str(i.get("secretId"))},
    # A parameter's ARN carries its name without the leading slash (`parameter/a/b`).
    "aws:ssm/parameter:Parameter": lambda n, i, r, a: {
        "arn": f"arn:aws:ssm:{r}:{a}:parameter/{str(_physical(n, i)).lstrip('/')}"},
    "aws:iam/role:Role": lambda n, i, r, a: {
        "arn": f"arn:aws:iam::{a}:role/{_iam_path(i)}{_physical(n, i)}"},
    "aws:iam/policy:Policy": lambda n, i, r, a: {
        "arn": f"arn:aws:iam::{a}:policy/{_iam_path(i)}{_physical(n, i)}"},
    "aws:iam/instanceProfile:InstanceProfile": lambda n, i, r, a: {
        "arn": f"arn:aws:iam::{a}:instance-profile/{_iam_path(i)}{_physical(n, i)}"},
    "aws:ec2/securityGroup:SecurityGroup": lambda n, i, r, a: {
        "arn": f"arn:aws:ec2:{r}:{a}:security-group/sg-{_hex(n, 17)}"},
    "aws:ec2/launchTemplate:LaunchTemplate": lambda n, i, r, a: {
        "arn": f"arn:aws:ec2:{r}:{a}:launch-template/lt-{_hex(n, 17)}"},
    "aws:ec2/flowLog:FlowLog": lambda n, i, r, a: {
        "arn": f"arn:aws:ec2:{r}:{a}:vpc-flow-log/fl-{_hex(n, 17)}"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda n, i, r, a: {
        "arn": f"arn:aws:ec2:{r}:{a}:vpc-endpoint/vpce-{_hex(n, 17)}"},
    "aws:autoscaling/group:Group": lambda n, i, r, a: {
        "arn": f"arn:aws:autoscaling:{r}:{a}:autoScalingGroup:{_uuid(n)}:"
               f"autoScalingGroupName/{_physical(n, i)}"},
    "aws:appautoscaling/target:Target": lambda n, i, r, a: {
        "arn": f"arn:aws:application-autoscaling:{r}:{a}:scalable-target/{_hex(n, 28)}"},
    "aws:appautoscaling/policy:Policy": lambda n, i, r, a: {
        "arn": f"arn:aws:autoscaling:{r}:{a}:scalingPolicy:{_uuid(n)}:resource/"
               f"{i.get('serviceNamespace', 'sagemaker')}/{i.get('resourceId', n)}:"
               f"policyName/{_physical(n, i)}"},
    "aws:ecs/cluster:Cluster": lambda n, i, r, a: {
        "arn": f"arn:aws:ecs:{r}:{a}:cluster/{_physical(n, i)}"},
    "aws:ecs/capacityProvider:CapacityProvider": lambda n, i, r, a: {
        "arn": f"arn:aws:ecs:{r}:{a}:capacity-provider/{_physical(n, i)}"},
    "aws:ecs/service:Service": lambda n, i, r, a: {
        "arn": f"arn:aws:ecs:{r}:{a}:service/{_last(i.get('cluster'))}/{_physical(n, i)}"},
    "aws:ecs/taskDefinition:TaskDefinition": lambda n, i, r, a: {
        "arn": f"arn:aws:ecs:{r}:{a}:task-definition/{i.get('family', n)}:1",
        "arnWithoutRevision": f"arn:aws:ecs:{r}:{a}:task-definition/{i.get('family', n)}"},
    "aws:eks/nodeGroup:NodeGroup": lambda n, i, r, a: {
        "arn": f"arn:aws:eks:{r}:{a}:nodegroup/{i.get('clusterName')}/"
               f"{_physical(n, i, 'nodeGroupName')}/{_uuid(n)}"},
    "aws:eks/addon:Addon": lambda n, i, r, a: {
        "arn": f"arn:aws:eks:{r}:{a}:addon/{i.get('clusterName')}/{i.get('addonName')}/"
               f"{_uuid(n)}"},
    "aws:eks/accessEntry:AccessEntry": lambda n, i, r, a: {
        "accessEntryArn": f"arn:aws:eks:{r}:{a}:access-entry/{i.get('clusterName')}/role/{a}/"
                          f"{_last(i.get('principalArn'))}/{_uuid(n)}"},
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": lambda n, i, r, a: {
        "associationArn": f"arn:aws:eks:{r}:{a}:podidentityassociation/{i.get('clusterName')}/"
                          f"a-{_hex(n, 17)}"},
    "aws:amp/workspace:Workspace": lambda n, i, r, a: {
        "arn": f"arn:aws:aps:{r}:{a}:workspace/ws-{n}"},
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace": lambda n, i, r, a: {
        "arn": f"arn:aws:aps:{r}:{a}:rulegroupsnamespace/{i.get('workspaceId')}/"
               f"{_physical(n, i)}"},
    "aws:lb/loadBalancer:LoadBalancer": lambda n, i, r, a: {
        "arn": f"arn:aws:elasticloadbalancing:{r}:{a}:loadbalancer/app/{_physical(n, i)}/"
               f"{_hex(n, 16)}",
        "arnSuffix": f"app/{_physical(n, i)}/{_hex(n, 16)}"},
    "aws:lb/targetGroup:TargetGroup": lambda n, i, r, a: {
        "arn": f"arn:aws:elasticloadbalancing:{r}:{a}:targetgroup/{_physical(n, i)}/"
               f"{_hex(n, 16)}",
        "arnSuffix": f"targetgroup/{_physical(n, i)}/{_hex(n, 16)}"},
    "aws:lb/listener:Listener": lambda n, i, r, a: {
        "arn": f"arn:aws:elasticloadbalancing:{r}:{a}:listener/"
               f"{_elb_parent(i.get('loadBalancerArn'))}/{_hex(n, 16)}"},
    "aws:lb/listenerRule:ListenerRule": lambda n, i, r, a: {
        "arn": f"arn:aws:elasticloadbalancing:{r}:{a}:listener-rule/"
               f"{_elb_parent(i.get('listenerArn'))}/{_hex(n, 16)}"},
    "aws:sagemaker/model:Model": lambda n, i, r, a: {
        "arn": f"arn:aws:sagemaker:{r}:{a}:model/{_physical(n, i).lower()}"},
    "aws:sagemaker/endpoint:Endpoint": lambda n, i, r, a: {
        "arn": f"arn:aws:sagemaker:{r}:{a}:endpoint/{_physical(n, i).lower()}"},
    "aws-native:sagemaker:EndpointConfig": lambda n, i, r, a: {
        "endpointConfigArn": f"arn:aws:sagemaker:{r}:{a}:endpoint-config/"
                             f"{_physical(n, i, 'endpointConfigName').lower()}"},
    "aws-native:sagemaker:InferenceComponent": lambda n, i, r, a: {
        "inferenceComponentArn": f"arn:aws:sagemaker:{r}:{a}:inference-component/"
                                 f"{_physical(n, i, 'inferenceComponentName').lower()}"},
}
"""Each resource type's ARN outputs in the format AWS gives them (partition `aws`, the region of
the resource's provider, this account), so a policy built from them is judged on real shapes.
Types not listed get `arn:aws:mock:...`, which matches no reference format: an IAM document
built from one is reported by the checker (tests/test_iam.py keeps this table complete)."""

INVOKES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda _: {
        "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDMOCK",
        "id": ACCOUNT,
    },
    "aws:index/getPartition:getPartition": lambda _: {
        "partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
    },
    "aws:index/getRegion:getRegion": lambda _: {
        "name": "us-east-1", "region": "us-east-1", "id": "us-east-1",
    },
    # SageMaker platform: the S3 prefix list its security group allows HTTPS to.
    "aws:ec2/getPrefixList:getPrefixList": lambda args: {
        "id": "pl-63a5400a", "prefixListId": "pl-63a5400a", "name": args.get("name"),
        "cidrBlocks": ["54.231.0.0/16"],
    },
    # Public SSM parameters, e.g. the ECS GPU-optimized AMI id.
    "aws:ssm/getParameter:getParameter": lambda args: {
        "name": args["name"], "type": "String", "value": "ami-0ecsgpu0123456789",
        "insecureValue": "ami-0ecsgpu0123456789", "version": 1, "id": args["name"],
        "arn": f"arn:aws:ssm:us-east-1::parameter{args['name']}",
    },
    # The gateway's master key: Secrets Manager's GetRandomPassword.
    "aws:secretsmanager/getRandomPassword:getRandomPassword": lambda args: {
        "randomPassword": "x" * int(args.get("passwordLength", 32)), "id": "random",
    },
    # EKS platform: pulumi_eks's Cluster.get_kubeconfig() method (a `Call`).
    "eks:index:Cluster/getKubeconfig": lambda args: {
        "result": json.dumps(_kubeconfig("llm-hosting-cluster")),
    },
}
"""Invoke answers by token; platforms add theirs here."""


class RecordingMocks(pmocks.Mocks):
    """Answers like AWS for what the program reads back; echoes inputs of custom resources."""

    def __init__(self, disabled_default_providers: frozenset[str] = frozenset()) -> None:
        self.resources: list[Recorded] = []
        self.invoked: list[Invoked] = []
        self.monitor: pmocks.MockMonitor | None = None  # set by RecordingMonitor
        self.disabled_default_providers = disabled_default_providers
        self.default_provider_errors: list[str] = []
        self.created_in_apply: list[str] = []
        self.provider_regions: dict[str, str] = {}
        """Provider URN -> its `region` input (the region of the ARNs it answers)."""

    @property
    def invokes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(i.token, i.args) for i in self.invoked]

    def check_provider(self, kind: str, token: str, provider: str) -> None:
        """What the engine does under `pulumi:disable-default-providers`: a resource or invoke
        of a disabled package that names no provider fails (the message is the engine's)."""
        package = token.split(":", 1)[0]
        disabled = self.disabled_default_providers
        if provider or package == "pulumi" or not ({"*", package} & disabled):
            return
        self.default_provider_errors.append(
            f"{kind}Default provider for '{package}' disabled. '{token}' must use an explicit "
            "provider."
        )

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str, dict]:
        rid = f"{args.name}-id"
        outputs: dict[str, Any] = dict(args.inputs) if args.custom else {}
        outputs.update(self._outputs_for(args.typ, args.name, args.inputs))
        outputs = {k: self._register_ref(v) for k, v in outputs.items()}
        if args.custom:
            arns = ARNS.get(args.typ)
            region = self._region(args.provider or "")
            if arns is not None:
                answer = arns(args.name, args.inputs, region, ACCOUNT)
                rid = answer.pop("id", rid)
                outputs.update(answer)
            outputs.setdefault("arn", f"arn:aws:mock:{region}:{ACCOUNT}:{args.name}")
        return rid, outputs

    def _region(self, provider: str) -> str:
        """The region of the provider a resource names (`<urn>::<id>`); us-east-1 otherwise."""
        return self.provider_regions.get(provider.rsplit("::", 1)[0], "us-east-1")

    def _outputs_for(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        answer = OUTPUTS.get(typ)
        return answer(name, inputs) if answer else {}

    def _register_ref(self, value: Any) -> Any:
        """Register a `ResourceRef` (or a list of them) with the monitor; answer with resource
        references."""
        if isinstance(value, list):
            return [self._register_ref(v) for v in value]
        if not isinstance(value, ResourceRef):
            return value
        assert self.monitor is not None, "ResourceRef answers need the RecordingMonitor"
        urn = self.monitor.make_urn("", value.type, value.name)
        rid = f"{value.name}-id"
        state = {"id": rid, "urn": urn, **value.state}
        self.monitor.resources[urn] = pmocks.MockMonitor.ResourceRegistration(urn, rid, state)
        return {rpc._special_sig_key: _RESOURCE_SIG, "urn": urn, "id": rid}

    def call(self, args: pmocks.MockCallArgs) -> dict:
        self.invoked.append(Invoked(args.token, dict(args.args), args.provider or ""))
        self.check_provider("Invoke: ", args.token, args.provider or "")
        answer = INVOKES.get(args.token)
        return answer(dict(args.args)) if answer else {}


def _strip_resource_refs(value: struct_pb2.Value) -> None:
    """Replace serialized resource references by their URN, in place."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        sig = fields.get(rpc._special_sig_key)
        if sig is not None and sig.string_value == _RESOURCE_SIG:
            value.string_value = fields["urn"].string_value
            return
        for v in fields.values():
            _strip_resource_refs(v)
    elif kind == "list_value":
        for v in value.list_value.values:
            _strip_resource_refs(v)


class RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks
        mocks.monitor = self

    def RegisterResource(self, request: Any) -> Any:
        """The stock monitor's RegisterResource, deserializing the inputs once (for the mocks
        and the record alike) and answering plain-JSON state without an event-loop round trip;
        the ECS stack with 50 models registers ~1,700 resources, so this is the hot path."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        if request.custom or request.remote:
            if not request.type.startswith("pulumi:providers:"):
                self.recorder.check_provider("", request.type, request.provider)
        for v in request.object.fields.values():
            _strip_resource_refs(v)
        pmocks._ensure_event_loop()  # deserializing assets and references needs one
        inputs = rpc.deserialize_properties(request.object)
        rid, state = self.recorder.new_resource(pmocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False,
            transforms=pmocks._resolve_callbacks(request.transforms),
        ))
        self.resources[urn] = pmocks.MockMonitor.ResourceRegistration(urn, rid, state)
        if request.type.startswith("pulumi:providers:") and inputs.get("region"):
            self.recorder.provider_regions[urn] = str(inputs["region"])
        self.recorder.resources.append(
            Recorded(
                type=request.type,
                name=request.name,
                inputs=_plain(inputs),
                urn=urn,
                parent=request.parent,
                provider=request.provider,
                custom=request.custom,
                protect=request.protect,
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns)
                                       for k, v in request.propertyDependencies.items()
                                       if v.urns},
                outputs=_plain(state),
            )
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=rid, object=_struct(state))

    def ReadResource(self, request: Any) -> Any:
        self.recorder.check_provider("", request.type, request.provider)
        return super().ReadResource(request)

    def Call(self, request: Any) -> Any:
        args = rpc.deserialize_properties(request.args)
        ret = self.recorder.call(pmocks.MockCallArgs(request.tok, args, request.provider))
        ret_proto = pmocks._sync_await(rpc.serialize_properties(ret, {}))
        return resource_pb2.CallResponse(**{"return": ret_proto})


def _plain(value: Any) -> Any:
    """A JSON-shaped copy for the record: secrets stay wrapped the way the engine sends them,
    anything else (assets) becomes its `str`."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _struct(state: dict[str, Any]) -> struct_pb2.Struct:
    """`state` as the engine's Struct; plain JSON directly, anything else through the SDK."""
    struct = struct_pb2.Struct()
    try:
        struct.update(state)
    except (TypeError, ValueError):
        return pmocks._sync_await(rpc.serialize_properties(state, {}))
    return struct


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "dev",
    secret_keys: tuple[str, ...] = (),
    program: Path | Callable[[], object] = ROOT / "__main__.py",
    mocks: RecordingMocks | None = None,
) -> Graph:
    """Run `__main__.py` offline with `config` (`llm-hosting:<key>` -> value) and record it.

    Structured values may be given as Python objects; they are JSON-encoded like the engine does.
    `program` is the stack's `__main__.py` or a callable that registers one component.
    Raises whatever the program raises (e.g. `ConfigError`) before any resource registers.
    """
    mocks = mocks or RecordingMocks()
    mocks.disabled_default_providers = _disabled_default_providers(config)
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project="llm-hosting", stack=stack, preview=False, monitor=monitor
    )
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        list(secret_keys),
    )
    loop = asyncio.get_event_loop()
    with _watch_applies(mocks.created_in_apply), _without_source_positions():
        if callable(program):
            program()
        else:
            runpy.run_path(str(program), run_name="__main__")
        loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
    problems = mocks.default_provider_errors + [
        f"{what} is created inside an Output.apply callback: `pulumi preview` cannot show it"
        for what in mocks.created_in_apply
    ]
    if problems:
        raise EngineCheckError(problems)
    root = settings.get_root_resource()
    exports = {}
    if root is not None:
        for key, value in getattr(root, "outputs", {}).items():
            exports[key] = loop.run_until_complete(_resolve(value))
    return Graph(resources=mocks.resources, invokes=mocks.invokes, exports=exports,
                 invoked=list(mocks.invoked))


class EngineCheckError(Exception):
    """What a real `pulumi up` would reject although the SDK's mocks let it through: a resource
    or invoke that relies on a disabled default provider, or a resource created in `.apply()`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


DISABLE_DEFAULT_PROVIDERS = "pulumi:disable-default-providers"


def _disabled_default_providers(config: Mapping[str, Any]) -> frozenset[str]:
    """The packages whose default provider the engine refuses; `EngineCheckError` for a value
    the engine cannot read."""
    disabled, problems = read_disabled_default_providers(config)
    if problems:
        raise EngineCheckError(problems)
    return disabled


def read_disabled_default_providers(
    config: Mapping[str, Any],
) -> tuple[frozenset[str], list[str]]:
    """`pulumi:disable-default-providers` as the engine reads it (pulumi/pulumi
    `pkg/resource/deploy/default_providers.go:shouldDenyRequest`): a JSON list of package
    names, each trimmed, `*` for all; an empty string or JSON `null` disables nothing. Anything
    else fails every `pulumi up` at the first default-provider request; here it is a problem
    with the fix."""
    value = config.get(DISABLE_DEFAULT_PROVIDERS)
    if value is None or value == "":
        return frozenset(), []
    if not isinstance(value, str):
        value = json.dumps(value)
    fix = (f"{DISABLE_DEFAULT_PROVIDERS}: {value!r} is not a list of package names; write it "
           "as a YAML list, e.g. [aws, aws-native, kubernetes]")
    try:
        names = json.loads(value)
    except ValueError:
        return frozenset(), [fix]
    if names is None:
        return frozenset(), []
    if not isinstance(names, list):
        return frozenset(), [fix]
    problems = [f"{DISABLE_DEFAULT_PROVIDERS}[{i}]: {name!r} must be a string (a package name)"
                for i, name in enumerate(names) if not isinstance(name, str)]
    return frozenset(n.strip() for n in names if isinstance(n, str)), problems


@contextlib.contextmanager
def _without_source_positions() -> Iterator[None]:
    """Skip the stack walk the SDK makes for every resource (about 10% of a large plan): it
    only feeds the engine's source positions for diagnostics, which nothing offline shows."""
    original = runtime_resource._get_stack_trace
    runtime_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = original


_IN_APPLY: contextvars.ContextVar[bool] = contextvars.ContextVar("in_apply", default=False)


@contextlib.contextmanager
def _watch_applies(found: list[str]) -> Iterator[None]:
    """Note every resource constructed while an `Output.apply` callback runs.

    Resources made there exist only once the output resolves: `pulumi preview` never shows
    them, and their count can change between runs. Rehydrated references (`opts.urn`, how
    a remote component's child outputs arrive) are reads, not creations.
    """
    original_apply, original_init = pulumi.Output.apply, pulumi.Resource.__init__

    def apply(self: pulumi.Output, func: Callable[[Any], Any],
              run_with_unknowns: bool = False) -> pulumi.Output:
        def guarded(value: Any) -> Any:
            token = _IN_APPLY.set(True)
            try:
                return func(value)
            finally:
                _IN_APPLY.reset(token)

        return original_apply(self, guarded, run_with_unknowns)

    def init(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        opts = kwargs.get("opts", args[2] if len(args) > 2 else None)
        if _IN_APPLY.get() and not (opts is not None and opts.urn):
            found.append(f"{t} {name!r}")
        original_init(self, t, name, *args, **kwargs)

    pulumi.Output.apply, pulumi.Resource.__init__ = apply, init  # type: ignore[method-assign]
    try:
        yield
    finally:
        pulumi.Output.apply, pulumi.Resource.__init__ = (  # type: ignore[method-assign]
            original_apply, original_init)


async def _resolve(value: Any) -> Any:
    out = pulumi.Output.from_input(value)
    return await out.future()
