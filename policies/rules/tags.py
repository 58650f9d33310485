"""`required-tags`: the project's tag set on every taggable AWS resource, set in its inputs.

The AWS provider's `default_tags` cover most resources at apply time, but not ASG instance
propagation, Karpenter-launched nodes or aws-native tag lists, and they are invisible in a
resource's inputs; the house rule is to tag explicitly, and this rule holds the program to it.

Which AWS types take tags is read from the installed pulumi-aws and pulumi-aws-native SDKs by
`scan_taggable` and kept in `aws_taggable_types.txt` and `aws_native_taggable_types.txt` (a test
fails when an installed provider disagrees), so the pack needs no provider package at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from policies.rules._framework import Resource, Rule, tags_of

TAGGABLE_FILE = Path(__file__).with_name("aws_taggable_types.txt")
NATIVE_TAGGABLE_FILE = Path(__file__).with_name("aws_native_taggable_types.txt")

#: Taggable types outside the AWS providers that the platforms use: the remote components apply
#: their `tags` to every child they create.
OTHER_TAGGABLE = ("eks:index:Cluster", "awsx:ec2:Vpc")

_TOKEN = re.compile(r"super\(\w+, __self__\).__init__\(\s*'(aws(?:-native)?:[^']+)'")


def scan_taggable(pulumi_aws_dir: Path) -> list[str]:
    """Resource type tokens whose constructor accepts `tags`, from the SDK's generated code
    (pulumi_aws or pulumi_aws_native)."""
    found = set()
    for path in pulumi_aws_dir.rglob("*.py"):
        if path.name.startswith("_"):
            continue
        text = path.read_text()
        match = _TOKEN.search(text)
        if match and '__props__.__dict__["tags"] = tags' in text:
            found.add(match.group(1))
    return sorted(found)


@cache
def taggable_types() -> frozenset[str]:
    lines = TAGGABLE_FILE.read_text().split() + NATIVE_TAGGABLE_FILE.read_text().split()
    return frozenset(lines) | frozenset(OTHER_TAGGABLE)


def check_tags(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    if resource.type not in taggable_types():
        return
    tags = tags_of(resource.props)
    missing = [k for k in config["requiredTags"] if not tags.get(k)]
    if missing:
        yield f"missing tags: {', '.join(missing)}"


REQUIRED_TAGS = Rule(
    name="required-tags",
    description="Every taggable AWS resource sets the project's tag set in its own inputs.",
    fallback=check_tags,
    config={
        "requiredTags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": ["project", "stack", "environment", "managed-by"],
            "description": "tag keys every taggable resource must set (components/tags.py)",
        },
    },
)

RULES = [REQUIRED_TAGS]
