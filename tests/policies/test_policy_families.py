"""The family table (policies/rules/families.py) against the installed providers.

Every resource type token of the installed pulumi_aws and pulumi_aws_native packages is read
from their generated code (each resource class registers with `super().__init__('<token>', ...)`
and copies its inputs into `__props__`), with its top-level input properties. A family's
discovery patterns pick the types it should cover; each must be covered or excluded with a
reason. A provider upgrade that adds a type (or an aws-native twin of a covered aws type) fails
here until the table and the checks follow.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pulumi_aws
import pulumi_aws_native
import pytest

from policies.rules import BY_NAME, RULES
from policies.rules.families import BY_FAMILY, FAMILIES, Family

_TOKEN = re.compile(r"super\(\w+, __self__\)\.__init__\(\s*'((?:aws|aws-native):[^']+)'")
_PROP = re.compile(r'__props__\.__dict__\["(\w+)"\] = (\w+)\n')


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@cache
def provider_types() -> dict[str, frozenset[str]]:
    """token -> top-level input properties (camelCase), for both AWS providers."""
    out: dict[str, frozenset[str]] = {}
    for package in (pulumi_aws, pulumi_aws_native):
        for path in Path(package.__file__).parent.rglob("*.py"):
            if path.name.startswith("_"):
                continue
            text = path.read_text()
            match = _TOKEN.search(text)
            if match:
                out[match.group(1)] = frozenset(_camel(a) for a, b in _PROP.findall(text)
                                                if a == b)
    return out


def module_of(token: str) -> str:
    return token.split(":")[1].split("/")[0]


def name_of(token: str) -> str:
    return token.rsplit(":", 1)[1]


def discovered(family: Family) -> set[str]:
    found = set()
    for token, props in provider_types().items():
        for d in family.discover:
            if not re.fullmatch(d.module, module_of(token)):
                continue
            if d.name is not None and re.search(d.name, name_of(token)):
                found.add(token)
            if d.prop is not None and any(re.fullmatch(d.prop, p) for p in props):
                found.add(token)
    return found


def test_the_scan_reads_both_providers():
    types = provider_types()
    assert "aws:ec2/securityGroup:SecurityGroup" in types
    assert "aws-native:ec2:SecurityGroupIngress" in types
    assert {"cidrIp", "cidrIpv6", "fromPort", "toPort", "ipProtocol"} <= \
        types["aws-native:ec2:SecurityGroupIngress"]
    assert sum(t.startswith("aws-native:") for t in types) > 1000
    assert sum(t.startswith("aws:") for t in types) > 1000


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_types_exist_in_the_installed_providers(family):
    provider = {t for t in family.types | set(family.excluded)
                if t.startswith(("aws:", "aws-native:"))}
    assert sorted(provider - set(provider_types())) == []
    assert not family.types & set(family.excluded)
    assert all(reason for reason in family.excluded.values())


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_type_a_family_should_cover_is_covered_or_excluded(family):
    missing = discovered(family) - family.types - set(family.excluded)
    assert sorted(missing) == [], (
        f"{family.name}: add these types to its checks and to policies/rules/families.py, or "
        "exclude them there with a reason")


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_rule_of_a_family_checks_every_type_of_it(family):
    for name in family.rules:
        assert sorted(family.types - BY_NAME[name].types) == [], name


#: aws modules whose aws-native twin lives under another module name.
_MODULES = {"lb": "elasticloadbalancingv2", "alb": "elasticloadbalancingv2",
            "elb": "elasticloadbalancing", "cloudwatch": "logs", "amp": "aps", "ebs": "ec2",
            "vpc": "ec2", "appautoscaling": "applicationautoscaling"}
#: Twins whose resource names differ between the providers.
_TWINS = {
    "aws:autoscaling/group:Group": "aws-native:autoscaling:AutoScalingGroup",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        "aws-native:sagemaker:EndpointConfig",
    "aws:ec2/fleet:Fleet": "aws-native:ec2:Ec2Fleet",
    "aws:ec2/spotFleetRequest:SpotFleetRequest": "aws-native:ec2:SpotFleet",
    "aws:ec2/dedicatedHost:DedicatedHost": "aws-native:ec2:Host",
    "aws:iam/policy:Policy": "aws-native:iam:ManagedPolicy",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        "aws-native:ec2:SecurityGroupIngress",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "aws-native:ec2:SecurityGroupIngress",
    "aws:appautoscaling/target:Target": "aws-native:applicationautoscaling:ScalableTarget",
    "aws:ec2/launchConfiguration:LaunchConfiguration":
        "aws-native:autoscaling:LaunchConfiguration",
    "aws:s3/bucketV2:BucketV2": "aws-native:s3:Bucket",
    "aws:ecs/taskSet:TaskSet": "aws-native:ecs:TaskSet",
}


def twin(token: str) -> str | None:
    """The aws-native type declaring the same AWS resource as a pulumi-aws type, if any."""
    if token in _TWINS:
        return _TWINS[token]
    module = module_of(token)
    target = _MODULES.get(module, module)
    name = name_of(token).lower()
    for candidate in provider_types():
        if candidate.startswith(f"aws-native:{target}:") and name_of(candidate).lower() == name:
            return candidate
    return None


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_aws_type_of_a_family_has_its_aws_native_twin(family):
    missing = []
    for token in sorted(t for t in family.types if t.startswith("aws:")):
        native = twin(token)
        if native is not None and native not in family.types | set(family.excluded):
            missing.append(f"{token} -> {native}")
    assert missing == []


def test_twins_are_found_for_the_types_the_issue_names():
    assert twin("aws:ec2/securityGroup:SecurityGroup") == "aws-native:ec2:SecurityGroup"
    assert twin("aws:ec2/launchTemplate:LaunchTemplate") == "aws-native:ec2:LaunchTemplate"
    assert twin("aws:lb/listener:Listener") == "aws-native:elasticloadbalancingv2:Listener"
    assert twin("aws:cloudwatch/logGroup:LogGroup") == "aws-native:logs:LogGroup"
    assert twin("aws:eks/nodeGroup:NodeGroup") == "aws-native:eks:Nodegroup"


def test_every_rule_but_required_tags_belongs_to_a_family():
    in_families = {name for f in FAMILIES for name in f.rules}
    assert {r.name for r in RULES} - in_families == {"required-tags"}
    assert in_families <= set(BY_NAME)
    assert len(BY_FAMILY) == len(FAMILIES)
