"""Run every preflight family for one stack and print the table.

Order: credentials alone first (nothing else can work without them), then region and AZs (the
offerings check reads the AZs), then the families in parallel threads: each is a handful of
read-only calls that mostly wait on the network, so the example stacks finish in seconds.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from components.config import NAMESPACE, ConfigError, StackConfig
from components.preflight import account, bedrock, eks, iam, offerings, quotas, weights
from components.preflight.checks import BLOCKING, Check, Clients, Context
from components.stackfile import read_stack_file

PASSED, BLOCKED, INVALID = 0, 1, 2

Family = Callable[[Context], list[Check]]
FAMILIES: tuple[Family, ...] = (offerings.check, quotas.check, iam.check, weights.check,
                                eks.check, bedrock.check)
"""Independent of each other; run concurrently after the account checks."""


def load_config(stack: str, root: Path) -> StackConfig:
    """The stack's config exactly as `plan` and `pulumi up` validate it (`ConfigError` if not)."""
    from components.platforms import parse_config

    stack_file = read_stack_file(root / f"Pulumi.{stack}.yaml")
    return parse_config(dict(stack_file.config), project="llm-hosting", stack=stack_file.stack,
                        secret_keys=stack_file.secret_keys)


def _family_rows(family: Family, ctx: Context) -> list[Check]:
    """A bug in one family (an AWS answer shaped unlike its API model) must not hide the others:
    it becomes an `error` row naming the family."""
    try:
        return family(ctx)
    except Exception as exc:  # reported as a row; the run goes on
        module = family.__module__.rsplit(".", 1)[-1]
        return [Check(f"{module} checks", "error", f"preflight raised {type(exc).__name__}: "
                      f"{exc}", "a preflight bug: please report it with this row")]


def run(config: StackConfig, clients: Clients, workers: int = 6) -> list[Check]:
    ctx = Context(config=config, clients=clients)
    rows = account.identity(ctx)
    if any(r.status in BLOCKING for r in rows):
        return rows
    rows += account.region(ctx)
    rows += account.availability_zones(ctx)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preflight") as pool:
        for found in pool.map(lambda family: _family_rows(family, ctx), FAMILIES):
            rows += found
    return rows


def exit_code(rows: Sequence[Check]) -> int:
    return BLOCKED if any(r.status in BLOCKING for r in rows) else PASSED


WIDTHS = (34, 6, 58, 48)
HEADER = ("check", "status", "detail", "how to fix")


def render(rows: Sequence[Check], widths: Sequence[int] = WIDTHS) -> str:
    """An aligned table; long cells wrap at spaces inside their column (never inside a word,
    so a command or ARN stays copyable)."""
    def cells(values: Sequence[str]) -> list[str]:
        wrapped = [textwrap.wrap(v, w, break_on_hyphens=False) or [""]
                   for v, w in zip(values, widths, strict=True)]
        height = max(len(c) for c in wrapped)
        return ["  ".join(f"{(c[i] if i < len(c) else ''):<{w}}"
                          for c, w in zip(wrapped, widths, strict=True)).rstrip()
                for i in range(height)]

    lines = [*cells(HEADER), "  ".join("-" * w for w in widths)]
    for r in rows:
        lines += cells((r.check, r.status.upper() if r.status != "pass" else "ok", r.detail,
                        r.fix))
    return "\n".join(lines)


def summary(rows: Sequence[Check]) -> str:
    counts = {s: sum(r.status == s for r in rows) for s in ("pass", "warn", "fail", "error")}
    verdict = ("ready for `pulumi up`" if exit_code(rows) == PASSED
               else "fix the FAIL/ERROR rows before `pulumi up`")
    return (f"{counts['pass']} passed, {counts['warn']} warning(s), {counts['fail']} failed, "
            f"{counts['error']} could not be checked: {verdict}")


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    import argparse

    from components.offline import ROOT

    parser = argparse.ArgumentParser(
        prog="python -m components.preflight",
        description="Read-only AWS checks before `pulumi up`: credentials, instance type "
        "offerings per AZ, GPU quotas, the Spot service-linked role, S3 weights and their KMS "
        "key, EKS add-on and AMI pins, Bedrock fallbacks. Exit 0: all passed (warnings "
        "allowed); 1: a check failed or could not be made; 2: the stack config is invalid.",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--dir", type=Path, default=ROOT,
                        help="folder holding Pulumi.<stack>.yaml (default: this project)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    path = args.dir / f"Pulumi.{args.stack}.yaml"
    if not path.is_file():
        print(f"no Pulumi.{args.stack}.yaml in {args.dir}", file=sys.stderr)
        return INVALID
    try:
        config = load_config(args.stack, args.dir)
    except ConfigError as err:
        print(f"{len(err.problems)} problem(s) in {path.name} (run `python -m components.plan "
              f"--stack {args.stack}` after fixing):", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in err.problems), file=sys.stderr)
        return INVALID
    rows = run(config, clients or Clients(config.region))
    code = exit_code(rows)
    if args.json:
        print(json.dumps({"stack": args.stack, "region": config.region, "exitCode": code,
                          "checks": [asdict(r) for r in rows]}, indent=2))
    else:
        print(f"preflight {NAMESPACE} stack {args.stack} ({config.platform}, {config.region})\n")
        print(render(rows))
        print("\n" + summary(rows))
    return code
