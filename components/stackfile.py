"""Read a `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program.

The offline `plan` command and the tests use this to run a stack's real config without the CLI:
structured values become JSON strings, scalars become strings, and `secure:` values are kept only
as "this key is a secret" (their ciphertext cannot be read without the stack's secrets provider,
and nothing offline needs the token itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class StackFile:
    stack: str
    config: dict[str, str]
    secret_keys: tuple[str, ...]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_stack_file(path: Path) -> StackFile:
    doc = yaml.safe_load(path.read_text()) or {}
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (doc.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, (dict, list)):
            config[key] = json.dumps(value)
        else:
            config[key] = _scalar(value)
    return StackFile(stack=stack, config=config, secret_keys=tuple(secret_keys))


def stack_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")
