"""`python -m components.plan --stack dev`: what `pulumi up` would build, and what it would cost.

The first thing a newcomer runs, before any AWS account or Pulumi CLI is involved: it reads the
stack's `Pulumi.<stack>.yaml` as the Pulumi CLI reads it, validates it exactly as `pulumi up`
does, runs the real program offline under the recording mocks, and prints the resources per
component; per model the instance, GPU memory needed vs available, concurrency and GPU cost;
the fixed costs beside them (NAT gateways, endpoints, control plane, load balancers) and the
total; and warnings for placeholders still in the file.

  --stack NAME     one stack, in full            --all   every Pulumi.*.yaml, one line each
  --compare        the models on every platform  --json  the same as one JSON document

Exit codes: 0 plan printed (warnings do not fail it); 2 a stack file is invalid or `pulumi up`
would refuse the program (each problem is printed, all at once).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from components.config import NAMESPACE, ConfigError, StackConfig
from components.config import Platform as PlatformName
from components.costs import VPC_TYPE, FixedCost, fixed_costs
from components.facts.fixed_costs import FIXED_PRICES_AS_OF, HOURS_PER_MONTH
from components.facts.gpus import PRICES_AS_OF
from components.gateway.config import gateway_cost
from components.offline import (
    ROOT,
    EngineCheckError,
    Graph,
    Recorded,
    read_disabled_default_providers,
    run_program,
)
from components.report import model_summaries
from components.stackfile import (
    StackFile,
    placeholder_warnings,
    read_stack_file,
    stack_files,
)

PLATFORM_NAMES: tuple[str, ...] = get_args(PlatformName)
INVALID = 2
WIDTH = 100
"""`--compare` and `--all` fit a terminal this wide."""


def _parse(stack: StackFile, platform: str | None = None) -> StackConfig:
    from components.platforms import parse_config

    raw = dict(stack.config)
    if platform is not None:
        raw[f"{NAMESPACE}:platform"] = platform
    return parse_config(
        raw, project="llm-hosting", stack=stack.stack, secret_keys=stack.secret_keys
    )


def _engine_problems(stack: StackFile) -> list[str]:
    """What the engine refuses in the stack file regardless of the program."""
    return read_disabled_default_providers(stack.config)[1]


# ------------------------------------------------------------------------- the resource tree


def awsx_vpc_children(vpc: Recorded) -> list[Recorded]:
    """What the awsx VPC component creates, which offline runs never see (a remote component
    registers as one resource): the VPC, its internet gateway, per AZ a subnet, route table,
    association and default route per subnet spec, and the NAT gateways with their Elastic IPs.
    Names and parents follow pulumi-awsx `awsx/ec2/vpc.ts` (`<vpc>-<spec>-<az>`, NAT gateways
    and EIPs `<vpc>-<az>` under their public subnet)."""
    name, inputs = vpc.name, vpc.inputs
    azs = int(inputs.get("numberOfAvailabilityZones") or 2)
    strategy = (inputs.get("natGateways") or {}).get("strategy", "OnePerAz")
    specs = sorted(inputs.get("subnetSpecs") or [], key=lambda s: s.get("type") != "Public")

    def child(kind: str, child_name: str, parent: Recorded) -> Recorded:
        stack, project, qualified_type, _ = parent.urn.split("::", 3)
        urn = f"{stack}::{project}::{qualified_type}${kind}::{child_name}"
        return Recorded(type=kind, name=child_name, inputs={}, parent=parent.urn, urn=urn,
                        recorded=False)

    inner = child("aws:ec2/vpc:Vpc", name, vpc)
    out = [inner, child("aws:ec2/internetGateway:InternetGateway", name, inner)]
    nats = 0
    for az in range(1, azs + 1):
        for spec in specs:
            subnet_name = f"{name}-{str(spec.get('name', '')).lower()}-{az}"
            subnet = child("aws:ec2/subnet:Subnet", subnet_name, inner)
            table = child("aws:ec2/routeTable:RouteTable", subnet_name, subnet)
            out += [subnet, table,
                    child("aws:ec2/routeTableAssociation:RouteTableAssociation", subnet_name,
                          table),
                    child("aws:ec2/route:Route", subnet_name, table)]
            if spec.get("type") == "Public" and strategy != "None" and (
                    strategy == "OnePerAz" or nats == 0):
                nats += 1
                out += [child("aws:ec2/eip:Eip", f"{name}-{az}", subnet),
                        child("aws:ec2/natGateway:NatGateway", f"{name}-{az}", subnet)]
    return out


def plan_resources(graph: Graph) -> list[Recorded]:
    """The recorded resources plus what remote components create that offline runs can list."""
    out: list[Recorded] = []
    for r in graph.resources:
        out.append(r)
        if r.type == VPC_TYPE:
            out += awsx_vpc_children(r)
    return out


def resource_tree(resources: Graph | list[Recorded]) -> list[tuple[int, Recorded]]:
    """(depth, resource) in parent-before-children order: components read as they nest."""
    items = resources.resources if isinstance(resources, Graph) else resources
    urns = {r.urn for r in items}
    children: dict[str, list[Recorded]] = {}
    for r in items:
        children.setdefault(r.parent if r.parent in urns else "", []).append(r)
    ordered: list[tuple[int, Recorded]] = []

    def walk(parent: str, depth: int) -> None:
        # Components first, then their leaf resources by type, so each level reads like a list.
        for r in sorted(children.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            ordered.append((depth, r))
            walk(r.urn, depth + 1)

    walk("", 0)
    return ordered


# ---------------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    code: int
    doc: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    graph: Graph | None = None
    warnings: list[str] = field(default_factory=list)
    costs: list[FixedCost] = field(default_factory=list)


def _raw_platform(stack: StackFile | None) -> str:
    """The platform as the file says, for a plan whose config is invalid ("" if unset)."""
    return (stack.config.get(f"{NAMESPACE}:platform") or "") if stack else ""


def build_plan(stack_name: str, root: Path = ROOT) -> Plan:
    doc: dict[str, Any] = {"stack": stack_name, "platform": "", "resources": [], "models": []}
    try:
        stack = read_stack_file(root / f"Pulumi.{stack_name}.yaml")
    except ConfigError as err:  # StackFileError: a file the CLI would not load
        return Plan(INVALID, doc, list(err.problems))
    doc["platform"] = _raw_platform(stack)
    warnings = [*stack.warnings, *placeholder_warnings(stack)]
    problems: list[str] = []
    config: StackConfig | None = None
    try:
        config = _parse(stack)
    except ConfigError as err:
        problems += err.problems
    problems += _engine_problems(stack)
    if config is None or problems:
        return Plan(INVALID, doc, problems, warnings=warnings)
    doc["platform"] = config.platform
    doc["models"] = model_summaries(config)
    gateway = gateway_cost(config)
    if gateway is not None:
        doc["gateway"] = gateway
    try:
        graph = run_program(stack.config, stack=stack_name, secret_keys=stack.secret_keys,
                            program=ROOT / "__main__.py")
    except EngineCheckError as err:  # e.g. `pulumi:disable-default-providers: ["*"]`
        return Plan(INVALID, doc, list(err.problems), warnings=warnings)
    except Exception as exc:  # the program refused what validation let through
        # `pulumi up` would stop at the same point; say so in one line, never a traceback. A
        # message here that is not about your config is a bug of ours: please report it.
        return Plan(INVALID, doc, [f"pulumi up would stop: the program raised "
                                   f"{type(exc).__name__}: {exc}"], warnings=warnings)
    resources = plan_resources(graph)
    doc["resources"] = [
        {"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent,
         "recorded": r.recorded}
        for r in resources
    ]
    costs = fixed_costs(graph)
    doc["fixedCosts"] = [
        {"item": c.item, "count": c.count, "usdPerUnitHour": _round(c.usd_per_unit_hour, 6),
         "usdPerHour": _round(c.usd_per_hour, 4), "per": c.per, "source": c.source}
        for c in costs
    ]
    doc["totals"] = _totals(doc["models"], costs)
    doc["pricesAsOf"] = {"gpu": PRICES_AS_OF, "fixed": FIXED_PRICES_AS_OF}
    return Plan(0, doc, graph=graph, warnings=warnings, costs=costs)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _totals(models: list[dict[str, Any]], costs: list[FixedCost]) -> dict[str, float]:
    gpu_min = sum(m["hourlyUsdMin"] for m in models)
    gpu_max = sum(m["hourlyUsdMax"] for m in models)
    fixed = sum(c.usd_per_hour or 0.0 for c in costs)
    return {
        "gpuHourlyUsdMin": round(gpu_min, 4), "gpuHourlyUsdMax": round(gpu_max, 4),
        "fixedHourlyUsd": round(fixed, 4),
        "hourlyUsdMin": round(gpu_min + fixed, 4), "hourlyUsdMax": round(gpu_max + fixed, 4),
        "monthlyUsdMin": round((gpu_min + fixed) * HOURS_PER_MONTH, 2),
    }


def compare(stack_name: str, root: Path = ROOT) -> dict[str, Any]:
    """The stack's models priced on every platform (sizing only; no program run)."""
    stack = read_stack_file(root / f"Pulumi.{stack_name}.yaml")
    own = _raw_platform(stack)
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
    return "\n".join(x.rstrip() for x in out)


def _money(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"${x:,.{digits}f}"


def render_models(models: list[dict[str, Any]], with_total: bool = True) -> str:
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
    if with_total and len(models) > 1:
        rows.append(["total", "", "", "", "", "",
                     _money(sum(m["hourlyUsdMin"] for m in models)),
                     _money(sum(m["hourlyUsdMax"] for m in models)),
                     _money(sum(m["monthlyUsdMin"] for m in models), 0), ""])
    return _table(rows, header)


def render_costs(costs: list[FixedCost], totals: dict[str, float]) -> str:
    rows = [[c.item, c.count, _money(c.usd_per_unit_hour, 4), _money(c.usd_per_hour, 3),
             _money(None if c.usd_per_hour is None else c.usd_per_hour * HOURS_PER_MONTH, 0)]
            for c in costs]
    rows.append(["total fixed", "", "", _money(totals["fixedHourlyUsd"], 3),
                 _money(totals["fixedHourlyUsd"] * HOURS_PER_MONTH, 0)])
    return _table(rows, ["fixed cost", "count", "$/unit-h", "$/h", "$/month"])


def _problem_groups(platforms: dict[str, Any]) -> list[tuple[list[str], str]]:
    """Each distinct problem once, with the platforms that report it (in platform order)."""
    groups: dict[str, list[str]] = {}
    for platform, body in platforms.items():
        for problem in body.get("problems", []):
            groups.setdefault(problem, []).append(platform)
    return [(names, problem) for problem, names in groups.items()]


def render_compare(result: dict[str, Any]) -> str:
    """One row per model and platform (fits 100 columns); a platform whose validation fails
    shows `-` and each distinct problem is listed once below, with the platforms it stops."""
    platforms = result["platforms"]
    by_platform = {p: {m["name"]: m for m in body.get("models", [])}
                   for p, body in platforms.items()}
    names = list(dict.fromkeys(n for models in by_platform.values() for n in models))
    rows = []
    for name in names:
        for i, platform in enumerate(platforms):
            m = by_platform[platform].get(name)
            rows.append([name if i == 0 else "", platform] + (["-"] * 4 if m is None else [
                m["instanceType"], _money(m["hourlyUsdMin"]), _money(m["monthlyUsdMin"], 0),
                _money(m["usdPer1kTokensLowerBound"], 5)]))
    parts = [f"stack {result['stack']}: the same models priced on each platform",
             f"(GPU instances, on-demand us-east-1 as of {PRICES_AS_OF}; SageMaker bills them",
             "as ml.<instance>; fixed costs not included)",
             _table(rows, ["model", "platform", "instance", "$/h min", "$/month min",
                           "$/1k tok >="])]
    groups = _problem_groups(platforms)
    if groups:
        parts.append("")
        parts.append("refused:")
        everyone = len(platforms)
        for names_, problem in groups:
            who = "every platform" if len(names_) == everyone else ", ".join(names_)
            parts.append(textwrap.fill(f"[{who}] {problem}", WIDTH, initial_indent="  - ",
                                       subsequent_indent="    ", break_long_words=False,
                                       break_on_hyphens=False))
    return "\n".join(parts)


def render(plan: Plan) -> str:
    doc, graph = plan.doc, plan.graph
    parts = [f"stack {doc['stack']}  platform {doc['platform']}", ""]
    if graph is not None:
        resources = plan_resources(graph)
        inside = sum(1 for r in resources if not r.recorded)
        parts.append(f"pulumi up would create {len(resources)} resources ({inside} of them "
                     "inside the awsx VPC, listed from its inputs):")
        parts += [f"  {'  ' * depth}{r.type}  {r.name}" for depth, r in resource_tree(resources)]
        parts.append("")
    parts.append(f"Models (sizing and GPU instance cost, on-demand us-east-1 as of {PRICES_AS_OF}"
                 "; instance in the form models[].instanceType takes):")
    parts.append(render_models(doc["models"]))
    parts.append("")
    parts.append("$/1k tok >= is a lower bound on cost per 1k output tokens: it assumes the "
                 "memory-bandwidth roofline (an upper bound on decode throughput) with as many "
                 "average-length sequences as the KV cache holds.")
    if "totals" in doc:
        totals = doc["totals"]
        parts += ["", f"Fixed costs (billed whether or not a model serves; on-demand us-east-1 "
                  f"as of {FIXED_PRICES_AS_OF}, components/facts/fixed_costs.py):",
                  render_costs(plan.costs, totals)]
        parts.append("not included: GB through NAT gateways and endpoints, load balancer "
                     "capacity units, logs, metrics, storage. Price sources:")
        parts += [f"  {source}" for source in sorted({c.source for c in plan.costs})]
        parts += ["", f"Total at minReplicas: {_money(totals['hourlyUsdMin'])}/h, "
                  f"{_money(totals['monthlyUsdMin'], 0)}/month (GPU "
                  f"{_money(totals['gpuHourlyUsdMin'])}/h + fixed "
                  f"{_money(totals['fixedHourlyUsd'])}/h); at maxReplicas: "
                  f"{_money(totals['hourlyUsdMax'])}/h."]
    if "gateway" in doc:
        parts += ["", render_gateway(doc["gateway"])]
    if plan.warnings:
        parts += ["", f"{len(plan.warnings)} warning(s): fix before `pulumi up`:"]
        parts += [f"  - {w}" for w in plan.warnings]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ --all


def summary_line(name: str, plan: Plan) -> str:
    """One line per stack for `--all`: status, platform, models, monthly cost, warnings."""
    doc = plan.doc
    label = f"Pulumi.{name}.yaml"
    if plan.code == INVALID:
        first = plan.problems[0].split("\n")[0] if plan.problems else ""
        more = f" (+{len(plan.problems) - 1} more)" if len(plan.problems) > 1 else ""
        return _fit(f"{label}  INVALID  {first}{more}")
    totals = doc.get("totals", {})
    warned = f"  {len(plan.warnings)} warning(s)" if plan.warnings else ""
    return _fit(f"{label}  ok  {doc['platform']}  {len(doc['models'])} model(s)  "
                f"{_money(totals.get('monthlyUsdMin'), 0)}/month at minReplicas{warned}")


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[:WIDTH - 3] + "..."


def plan_all(root: Path) -> tuple[int, list[tuple[str, Plan]]]:
    results = []
    for path in stack_files(root):
        name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        results.append((name, build_plan(name, root)))
    code = INVALID if any(p.code == INVALID for _, p in results) else 0
    return code, results


def _doc(plan: Plan) -> dict[str, Any]:
    doc = dict(plan.doc)
    if plan.warnings:
        doc["warnings"] = plan.warnings
    if plan.problems:
        doc["problems"] = plan.problems
    return doc


def render_gateway(g: dict[str, Any]) -> str:
    """One paragraph: where the gateway runs, its size, and what it adds per hour and month."""
    size = (f"{g['task']['vcpu']:g} vCPU / {g['task']['memoryMiB']} MiB per task"
            if "task" in g else
            f"requests {g['podRequests']['cpu']} CPU / {g['podRequests']['memory']} per pod")
    return (f"Gateway (docs/gateway.md): {g['replicas']} replicas on {g['runsOn']}, {size}; "
            f"{_money(g['hourlyUsd'], 4)}/h, {_money(g['monthlyUsd'], 0)}/month at the replica "
            f"floor ({g['note']}; prices as of {g['pricesAsOf']}, us-east-1).")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true",
                       help="validate every Pulumi.*.yaml in --dir: one summary line each, "
                       "exit 2 if any is invalid")
    parser.add_argument("--dir", type=Path, default=ROOT,
                        help="folder holding the stack files (default: this project)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--compare", action="store_true",
                        help="price the stack's models on all three platforms side by side")
    args = parser.parse_args(argv)

    if args.all:
        if args.compare:
            parser.error("--compare takes one --stack")
        code, results = plan_all(args.dir)
        if not results:
            parser.error(f"no Pulumi.<stack>.yaml in {args.dir}")
        if args.json:
            print(json.dumps({"stacks": [_doc(p) for _, p in results]}, indent=2))
        else:
            print("\n".join(summary_line(name, p) for name, p in results))
            if code == INVALID:
                print("\nevery problem of a stack: python -m components.plan --stack <name>")
        return code

    if not (args.dir / f"Pulumi.{args.stack}.yaml").is_file():
        parser.error(f"no Pulumi.{args.stack}.yaml in {args.dir}")

    if args.compare:
        try:
            result = compare(args.stack, args.dir)
        except ConfigError as err:  # a file the CLI would not load
            return _print_problems(args.stack, list(err.problems))
        print(json.dumps(result, indent=2) if args.json else render_compare(result))
        # The comparison is informative, but a stack its own platform refuses still fails CI.
        own = result["platforms"].get(result["platform"], {})
        return 0 if "models" in own else INVALID

    plan = build_plan(args.stack, args.dir)
    if args.json:
        print(json.dumps(_doc(plan), indent=2))
        return plan.code
    if plan.code == INVALID:
        return _print_problems(args.stack, plan.problems, plan.warnings)
    print(render(plan))
    return plan.code


def _print_problems(stack: str, problems: list[str], warnings: Sequence[str] = ()) -> int:
    print(f"{len(problems)} problem(s) in Pulumi.{stack}.yaml:", file=sys.stderr)
    print("\n".join(f"  - {p}" for p in problems), file=sys.stderr)
    if warnings:
        print(f"{len(warnings)} warning(s):", file=sys.stderr)
        print("\n".join(f"  - {w}" for w in warnings), file=sys.stderr)
    return INVALID


if __name__ == "__main__":
    sys.exit(main())
