"""Which resource types each family of checks covers, in pulumi-aws and aws-native alike.

A check written for `aws:ec2/securityGroup:SecurityGroup` is blind to the same group declared
through `aws-native:ec2:SecurityGroup`, or as `aws:vpc/securityGroupIngressRule`. This table
names, per family, every type its rules must judge, and how to *discover* the types it should
cover in the installed providers: a module pattern plus a resource-name pattern or a top-level
input property. tests/policies/test_policy_families.py enumerates every type token of the
installed pulumi_aws and pulumi_aws_native packages and fails when a discovered type is neither
covered nor excluded here with a reason, when a listed type does not exist, or when a rule of the
family does not check every type of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from policies.rules import _capacity as cap
from policies.rules import (
    compute,
    cost,
    encryption,
    iam,
    logs,
    network,
    secrets,
    storage,
    transit,
    workloads,
)
from policies.rules._framework import ENDPOINT_CONFIGS

INFERENCE_COMPONENT = "aws-native:sagemaker:InferenceComponent"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


@dataclass(frozen=True)
class Discover:
    """Provider types a family should cover: module (regex, full match) and either a
    resource-name regex (search) or a top-level input property regex (full match)."""

    module: str
    name: str | None = None
    prop: str | None = None


@dataclass(frozen=True)
class Family:
    name: str
    rules: tuple[str, ...]
    types: frozenset[str]
    discover: tuple[Discover, ...] = ()
    excluded: Mapping[str, str] = field(default_factory=dict)
    """type -> why the family does not judge it"""


_SNAPSHOTS = ("images and snapshots copy their source's encryption; the program creates none, "
              "and volumes made from them are judged where they are declared")

FAMILIES: tuple[Family, ...] = (
    Family(
        name="gpu-capacity",
        rules=("gpu-instance-allowlist", "cost-ceiling"),
        types=frozenset((*cap.TEMPLATES, *cap.CAPACITY, cap.NODE_POOL)),
        discover=(Discover(r"ec2|autoscaling|eks|sagemaker",
                           prop=r"instanceTypes?|instanceFamily|productionVariants|"
                                r"launchTemplateConfigs|launchSpecifications|launchTemplateData|"
                                r"mixedInstancesPolicy|spotFleetRequestConfigData"),),
        excluded={
            cap.NOTEBOOK: "development notebooks: gpu-instance-allowlist judges their type, but "
                          "the facts catalog has no notebook prices for cost-ceiling",
            cap.NATIVE_NOTEBOOK: "as aws:sagemaker/notebookInstance",
            "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification":
                "an account default for burstable (T) families' CPU credits, no capacity",
        },
    ),
    Family(
        name="serving-fit",
        rules=("model-fits-gpu-memory",),
        types=frozenset((*cap.NAMES_INSTANCE_TYPES, cap.NODE_POOL, cap.NODE_CLASS,
                         INFERENCE_COMPONENT, *secrets.MODELS, *secrets.TASK_DEFINITIONS,
                         "aws:ecs/service:Service", "aws-native:ecs:Service",
                         "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")),
        discover=(Discover(r"sagemaker|ecs", name=r"^(Model|InferenceComponent|TaskDefinition|"
                                                  r"Service)$"),),
    ),
    Family(
        name="instance-metadata",
        rules=("imdsv2-required",),
        types=frozenset((*compute.METADATA_OPTIONS, compute.ACCOUNT_IMDS_DEFAULTS,
                         cap.NODE_CLASS, cap.EKS_CLUSTER)),
        discover=(Discover(r".*", prop=r"metadataOptions|launchTemplateData|httpTokens"),),
    ),
    Family(
        name="security-group-ingress",
        rules=("private-by-default",),
        types=frozenset(network.SECURITY_GROUPS),
        discover=(Discover(r"ec2|vpc", name=r"SecurityGroup"),),
        excluded={
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "outbound rules",
            "aws-native:ec2:SecurityGroupEgress": "outbound rules",
            "aws:ec2/securityGroupAssociation:SecurityGroupAssociation":
                "attaches a group to a VPC endpoint, adds no rule",
            "aws:vpc/securityGroupVpcAssociation:SecurityGroupVpcAssociation":
                "associates a group with a VPC, adds no rule",
            "aws-native:ec2:SecurityGroupVpcAssociation":
                "associates a group with a VPC, adds no rule",
            "aws:ec2/networkInterfaceSecurityGroupAttachment:"
            "NetworkInterfaceSecurityGroupAttachment": "attaches a group, adds no rule",
            "aws:ec2/vpcSecurityGroupRulesExclusive:VpcSecurityGroupRulesExclusive":
                "lists the rule ids a group keeps, adds no rule",
        },
    ),
    Family(
        name="load-balancer-scheme",
        rules=("private-by-default",),
        types=frozenset((*network.LOAD_BALANCERS, K8S_SERVICE, K8S_INGRESS)),
        discover=(Discover(r"lb|alb|elb|elasticloadbalancing|elasticloadbalancingv2",
                           name=r"^LoadBalancer$"),),
    ),
    Family(
        name="kubernetes-api-endpoint",
        rules=("private-by-default",),
        types=frozenset(("aws:eks/cluster:Cluster", "aws-native:eks:Cluster",
                         cap.EKS_CLUSTER)),
        discover=(Discover(r"eks", name=r"^Cluster$"),),
    ),
    Family(
        name="sagemaker-model-network",
        rules=("private-by-default",),
        types=frozenset(secrets.MODELS),
        discover=(Discover(r"sagemaker", name=r"^Model$"),),
    ),
    Family(
        name="public-ip",
        rules=("compute-no-public-ip",),
        types=frozenset(network.PUBLIC_IP_TYPES),
        discover=(Discover(r"ec2|autoscaling|ecs|eks",
                           prop=r"associatePublicIpAddress|assignPublicIp|mapPublicIpOnLaunch|"
                                r"networkInterfaces|launchTemplateData|networkConfiguration"),
                  Discover(r"ec2", name=r"^(Eip|EIP)(Association)?$")),
        excluded={
            "aws:ec2/subnet:Subnet": "a network, not compute: public subnets carry the NAT "
                                     "gateways (and public load balancers where allowed)",
            "aws:ec2/defaultSubnet:DefaultSubnet": "as aws:ec2/subnet",
            "aws-native:ec2:Subnet": "as aws:ec2/subnet",
            "aws:ec2/networkInterface:NetworkInterface": "an ENI gets a public IP only through "
                                                         "an Elastic IP, judged on the EIP",
            "aws-native:ec2:NetworkInterface": "as aws:ec2/networkInterface",
            "aws-native:ecs:ExpressGatewayService": "ECS Express Mode has no public-IP switch "
                                                    "(its tasks follow the subnets given); the "
                                                    "program does not use it",
        },
    ),
    Family(
        name="load-balancer-listeners",
        rules=("transit-listener-https",),
        types=frozenset((*transit.LOAD_BALANCERS, *transit.LISTENERS, *transit.LISTENER_RULES,
                         transit.INGRESS)),
        discover=(Discover(r"lb|alb|elasticloadbalancingv2",
                           name=r"^(LoadBalancer|Listener|ListenerRule)$"),),
    ),
    Family(
        name="classic-load-balancer",
        rules=("transit-no-classic-elb",),
        types=frozenset((*transit.CLASSIC, transit.K8S_SERVICE)),
        discover=(Discover(r"elb|elasticloadbalancing", name=r"^LoadBalancer$"),),
    ),
    Family(
        name="encryption-at-rest",
        rules=("encryption-at-rest",),
        types=frozenset(encryption.ENCRYPTION_AT_REST.checks),
        discover=(Discover(r"ec2|ebs|eks|logs|cloudwatch|efs|sqs|sns|secretsmanager|amp|aps|"
                           r"sagemaker|autoscaling",
                           prop=r"encrypted|kmsKeyId|kmsKeyArn|kmsMasterKeyId|encryptionConfig|"
                                r"sqsManagedSseEnabled|blockDeviceMappings|rootBlockDevice|"
                                r"ebsBlockDevices|launchTemplateData"),),
        excluded={
            **dict.fromkeys(encryption.SNS + encryption.SECRETS + encryption.AMP,
                            "always encrypted (an AWS-owned or AWS-managed key when none is "
                            "named): encryption-customer-managed-keys judges the key"),
            "aws:ebs/snapshot:Snapshot": _SNAPSHOTS,
            "aws:ebs/snapshotCopy:SnapshotCopy": _SNAPSHOTS,
            "aws:ebs/snapshotImport:SnapshotImport": _SNAPSHOTS,
            "aws:ec2/ami:Ami": _SNAPSHOTS,
            "aws:ec2/amiCopy:AmiCopy": _SNAPSHOTS,
            "aws:ec2/amiFromInstance:AmiFromInstance": _SNAPSHOTS,
            "aws:sagemaker/domain:Domain": "SageMaker Studio: not part of serving",
            "aws-native:sagemaker:Domain": "SageMaker Studio: not part of serving",
            "aws:sagemaker/notebookInstance:NotebookInstance": "development notebooks: not "
                                                               "part of serving",
            "aws-native:sagemaker:NotebookInstance": "development notebooks",
            "aws-native:sagemaker:PartnerApp": "SageMaker partner apps: not part of serving",
            "aws:cloudwatch/logAnomalyDetector:LogAnomalyDetector": "holds findings about a "
                                                                   "log group, not its events",
            "aws-native:logs:LogAnomalyDetector": "as aws:cloudwatch/logAnomalyDetector",
        },
    ),
    Family(
        name="customer-managed-keys",
        rules=("encryption-customer-managed-keys",),
        types=frozenset(encryption.KEY_PROPERTY),
        discover=(Discover(r"sns|sqs|secretsmanager|efs|amp|aps|cloudwatch|logs",
                           name=r"^(Topic|Queue|Secret|FileSystem|Workspace|LogGroup)$"),),
    ),
    Family(
        name="log-retention",
        rules=("logs-retention-required",),
        types=frozenset(logs.LOG_GROUPS),
        discover=(Discover(r"cloudwatch|logs", name=r"^LogGroup$"),),
    ),
    Family(
        name="iam-identity-policies",
        rules=("iam-policy-no-star-on-star", "iam-policy-no-notaction-allow"),
        types=frozenset((*iam.IDENTITY_DOCUMENTS, *iam.ATTACHMENTS)),
        discover=(Discover(r"iam", prop=r"policy|policyDocument|inlinePolicies|policies|"
                                        r"policyArns?|managedPolicyArns"),),
    ),
    Family(
        name="iam-trust",
        rules=("iam-role-trust-scoped", "iam-role-trust-confused-deputy"),
        types=frozenset(iam.TRUST_DOCUMENTS),
        discover=(Discover(r".*", prop=r"assumeRolePolicy|assumeRolePolicyDocument"),),
    ),
    Family(
        name="s3-public-access-block",
        rules=("s3-bucket-public-access-block",),
        types=frozenset(storage.PUBLIC_ACCESS_BLOCKS),
        discover=(Discover(r"s3|s3control",
                           prop=r"publicAccessBlockConfiguration|blockPublicAcls|"
                                r"blockPublicPolicy"),),
    ),
    Family(
        name="s3-acl",
        rules=("s3-bucket-no-public-acl",),
        types=frozenset(storage.ACL_TYPES),
        discover=(Discover(r"s3", prop=r"acl|grants?|accessControl|accessControlPolicy"),),
    ),
    Family(
        name="s3-policy",
        rules=("s3-bucket-no-public-policy",),
        types=frozenset(storage.POLICY_DOCUMENTS),
        discover=(Discover(r"s3|s3control", prop=r"policy|policyDocument"),
                  Discover(r"s3control", name=r"PolicyPolicy$|AccessPointPolicy$")),
        excluded={
            "aws-native:s3:Bucket": "takes no policy: aws-native declares it as "
                                    "aws-native:s3:BucketPolicy (judged)",
        },
    ),
    Family(
        name="s3-encryption",
        rules=("s3-bucket-encryption",),
        types=frozenset((*storage.BUCKETS, *storage.ENCRYPTION_CONFIGS)),
        discover=(Discover(r"s3", name=r"^(Bucket|BucketV2|DirectoryBucket)$|"
                                       r"ServerSideEncryption"),
                  Discover(r"s3", prop=r"bucketEncryption|serverSideEncryptionConfigurations?")),
        excluded={
            "aws:s3/directoryBucket:DirectoryBucket":
                "S3 Express One Zone: encrypts every object, sets its key through the same "
                "BucketServerSideEncryptionConfiguration (judged); the program uses none",
        },
    ),
    Family(
        name="container-secrets",
        rules=("no-plaintext-secrets",),
        types=frozenset(secrets.NO_PLAINTEXT_SECRETS.checks),
        discover=(Discover(r"ecs|sagemaker", name=r"^(TaskDefinition|Model|"
                                                  r"InferenceComponent)$"),),
    ),
    Family(
        name="workload-privileges",
        rules=("workloads-no-privileged-containers", "workloads-non-root"),
        types=frozenset((*secrets.WORKLOAD_TYPES, *secrets.TASK_DEFINITIONS)),
        discover=(Discover(r"ecs", name=r"^TaskDefinition$"),),
    ),
    Family(
        name="workload-privilege-escalation",
        rules=("workloads-no-privilege-escalation",),
        types=frozenset(secrets.WORKLOAD_TYPES),
    ),
    Family(
        name="serving-network-policy",
        rules=("workloads-serving-network-policy",),
        types=frozenset((*secrets.WORKLOAD_TYPES, workloads.NETWORK_POLICY)),
    ),
    Family(
        name="serving-start-up",
        rules=("llm-startup-timeouts",),
        types=frozenset((*ENDPOINT_CONFIGS, INFERENCE_COMPONENT, "aws:ecs/service:Service",
                         "aws-native:ecs:Service", *secrets.WORKLOAD_TYPES)),
        discover=(Discover(r"ecs", name=r"^Service$"),
                  Discover(r"sagemaker", name=r"^(EndpointConfig|EndpointConfiguration|"
                                              r"InferenceComponent)$")),
    ),
    Family(
        name="warm-capacity",
        rules=("warm-capacity-in-prod",),
        types=frozenset(cost.WARM_CAPACITY_IN_PROD.checks),
        discover=(Discover(r"autoscaling", name=r"^(Group|AutoScalingGroup)$"),
                  Discover(r"appautoscaling|applicationautoscaling",
                           name=r"^(Target|ScalableTarget)$")),
    ),
)
"""Every family, by name. `required-tags` is not here: it judges every taggable type, from the
lists generated from both providers (policies/rules/tags.py)."""

BY_FAMILY: Mapping[str, Family] = {f.name: f for f in FAMILIES}
