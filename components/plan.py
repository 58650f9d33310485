"""`python -m components.plan --stack dev`: what `pulumi up` would build, and what it would cost.

The first thing a newcomer runs, before any AWS account or Pulumi CLI is involved: it reads the
stack's `Pulumi.<stack>.yaml`, validates it exactly as `pulumi up` does, runs the real program
offline under the recording mocks, and prints the resources per component plus, per model, the
instance, GPU memory needed vs available, concurrency, and cost.

Exit codes: 0 plan printed; 2 the config is invalid or `pulumi up` would refuse the program
(each problem is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from components.config import NAMESPACE, ConfigError, StackConfig
from components.config import Platform as PlatformName
from components.offline import ROOT, EngineCheckError, Graph, Recorded, run_program
from components.report import model_summaries
from components.stackfile import StackFile, read_stack_file

PLATFORM_NAMES: tuple[str, ...] = get_args(PlatformName)
INVALID = 2


def _parse(stack: StackFile, platform: str | None = None) -> StackConfig:
    from components.platforms import parse_config

    raw = dict(stack.config)
    if platform is not None:
        raw[f"{NAMESPACE}:platform"] = platform
    return parse_config(
        raw, project="llm-hosting", stack=stack.stack, secret_keys=stack.secret_keys
    )


def resource_tree(graph: Graph) -> list[tuple[int, Recorded]]:
    """(depth, resource) in parent-before-children order: components read as they nest."""
    urns = {r.urn for r in graph.resources}
    children: dict[str, list[Recorded]] = {}
    for r in graph.resources:
        children.setdefault(r.parent if r.parent in urns else "", []).append(r)
    ordered: list[tuple[int, Recorded]] = []

    def walk(parent: str, depth: int) -> None:
        # Components first, then their leaf resources by type, so each level reads like a list.
        for r in sorted(children.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            ordered.append((depth, r))
            walk(r.urn, depth + 1)

    walk("", 0)
    return ordered


@dataclass
class Plan:
    code: int
    doc: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    graph: Graph | None = None


def build_plan(stack_name: str, root: Path = ROOT) -> Plan:
    stack = read_stack_file(root / f"Pulumi.{stack_name}.yaml")
    doc: dict[str, Any] = {"stack": stack_name, "platform": None, "resources": [], "models": []}
    try:
        config = _parse(stack)
    except ConfigError as err:
        return Plan(INVALID, doc, list(err.problems))
    doc["platform"] = config.platform
    doc["models"] = model_summaries(config)
    try:
        graph = run_program(stack.config, stack=stack_name, secret_keys=stack.secret_keys,
                            program=ROOT / "__main__.py")
    except EngineCheckError as err:  # e.g. `pulumi:disable-default-providers: ["*"]`
        return Plan(INVALID, doc, list(err.problems))
    doc["resources"] = [{"type": r.type, "name": r.name} for r in graph.resources]
    return Plan(0, doc, graph=graph)


def compare(stack_name: str, root: Path = ROOT) -> dict[str, Any]:
    """The stack's models priced on every platform (sizing only; no program run)."""
    stack = read_stack_file(root / f"Pulumi.{stack_name}.yaml")
    own = stack.config.get(f"{NAMESPACE}:platform")
    out: dict[str, Any] = {"stack": stack_name, "platform": own, "platforms": {}}
    for platform in PLATFORM_NAMES:
        try:
            out["platforms"][platform] = {"models": model_summaries(_parse(stack, platform))}
        except ConfigError as err:
            out["platforms"][platform] = {"problems": list(err.problems)}
    return out


# ---------------------------------------------------------------------------------- rendering


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [line.format(*header), line.format(*["-" * w for w in widths])]
    out += [line.format(*[str(c) for c in row]) for row in rows]
    return "\n".join(out)


def _money(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"${x:,.{digits}f}"


def render_models(models: list[dict[str, Any]]) -> str:
    header = ["model", "instance", "GPUs", "GiB need/avail per GPU", "fits", "max seqs",
              "$/h min", "$/h max", "$/month min", "$/1k tok >="]
    rows = [
        [
            m["name"], m["instanceType"],
            f"{m['gpusPerReplica']} (chosen)" if m.get("gpusChosen") else m["gpusPerReplica"],
            f"{m['memoryRequiredGiB']:.1f} / {m['memoryAvailableGiB']:.1f}",
            "yes" if m["fits"] else "NO", m["maxConcurrentSequences"],
            _money(m["hourlyUsdMin"]), _money(m["hourlyUsdMax"]), _money(m["monthlyUsdMin"], 0),
            _money(m["usdPer1kTokensLowerBound"], 5),
        ]
        for m in models
    ]
    return _table(rows, header)


def render_compare(result: dict[str, Any]) -> str:
    """One row per model, each platform's instance and price side by side; a platform whose
    validation fails shows `-` and its problems below the table."""
    platforms = result["platforms"]
    by_platform = {p: {m["name"]: m for m in body.get("models", [])}
                   for p, body in platforms.items()}
    names = list(dict.fromkeys(n for models in by_platform.values() for n in models))
    header = ["model"]
    for platform in platforms:
        header += [f"{platform} instance", "$/h min", "$/month min", "$/1k tok >="]
    rows = []
    for name in names:
        row = [name]
        for platform in platforms:
            m = by_platform[platform].get(name)
            row += (["-"] * 4 if m is None else [
                m["instanceType"], _money(m["hourlyUsdMin"]), _money(m["monthlyUsdMin"], 0),
                _money(m["usdPer1kTokensLowerBound"], 5)])
        rows.append(row)
    parts = [f"stack {result['stack']}: the same models priced on each platform (GPU "
             "instances, on-demand us-east-1; no cluster, NAT or endpoint charges)",
             _table(rows, header)]
    for platform, body in platforms.items():
        if "problems" in body:
            parts.append(f"{platform} does not accept this config:")
            parts += [f"  - {p}" for p in body["problems"]]
    return "\n".join(parts)


def render(plan: Plan) -> str:
    doc, graph = plan.doc, plan.graph
    parts = [f"stack {doc['stack']}  platform {doc['platform']}", ""]
    if graph is not None:
        parts.append(f"pulumi up would create {len(graph.resources)} resources:")
        parts += [f"  {'  ' * depth}{r.type}  {r.name}" for depth, r in resource_tree(graph)]
        parts.append("")
    parts.append("Models (sizing and GPU instance cost, on-demand us-east-1; cluster, NAT and "
                 "endpoint charges not included):")
    parts.append(render_models(doc["models"]))
    parts.append("")
    parts.append("$/1k tok >= is a lower bound on cost per 1k output tokens: it assumes the "
                 "memory-bandwidth roofline (an upper bound on decode throughput) with as many "
                 "average-length sequences as the KV cache holds.")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--dir", type=Path, default=ROOT,
                        help="folder holding Pulumi.<stack>.yaml (default: this project)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--compare", action="store_true",
                        help="price the stack's models on all three platforms side by side")
    args = parser.parse_args(argv)
    if not (args.dir / f"Pulumi.{args.stack}.yaml").is_file():
        parser.error(f"no Pulumi.{args.stack}.yaml in {args.dir}")

    if args.compare:
        result = compare(args.stack, args.dir)
        print(json.dumps(result, indent=2) if args.json else render_compare(result))
        # The comparison is informative, but a stack its own platform refuses still fails CI.
        own = result["platforms"].get(result["platform"], {})
        return 0 if "models" in own else INVALID

    plan = build_plan(args.stack, args.dir)
    if args.json:
        doc = dict(plan.doc, problems=plan.problems) if plan.problems else plan.doc
        print(json.dumps(doc, indent=2))
        return plan.code
    if plan.code == INVALID:
        print(f"{len(plan.problems)} problem(s) in Pulumi.{args.stack}.yaml:", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in plan.problems), file=sys.stderr)
        return plan.code
    print(render(plan))
    if plan.problems:
        print("\n" + "\n".join(plan.problems), file=sys.stderr)
    return plan.code


if __name__ == "__main__":
    sys.exit(main())
