"""`python -m policies.check --stack NAME`: the policy pack over one stack, offline, as a CI gate.

No cloud and no Pulumi CLI: it reads `Pulumi.<stack>.yaml`, runs the program under the offline
runner (components/offline.py: the same mocks `plan` and the tests use), starts the pack the way
the CLI starts it (`python -m pulumi.policy`, policies/client.py) and sends it every resource
(`Analyze`, inputs with secrets wrapped as the engine wraps them) and the whole stack
(`AnalyzeStack`, with property dependencies), configured with the stack environment's
`policies/config.<environment>.json` (validated against the pack's schema, as the CLI does).

It prints one row per violation (policy, enforcement level, resource, message) and exits 1 when
any is mandatory, 0 otherwise, 2 when the stack file or its config is invalid. `--all` checks
every `Pulumi.*.yaml` of the project with one pack process and exits with the worst code.

Run it before `pulumi preview --policy-pack policies` in CI (docs/policies.md): it needs no
credentials, takes seconds (scripts/bench_policy_check.py), and fails a pull request before a
preview would. What only a real preview sees (children of remote components, values unknown
until `pulumi up`) is listed in docs/policies.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.config import ConfigError
from components.offline import ROOT, EngineCheckError, Graph, run_program
from components.stackfile import read_stack_file, stack_files
from policies.client import Analyzer, Diagnostic, Launched

OK, VIOLATION, INVALID = 0, 1, 2
PACK_CONFIGS = ROOT / "policies"


@dataclass
class Result:
    stack: str
    environment: str = ""
    code: int = OK
    diagnostics: list[Diagnostic] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """urn -> `name (type)` for the table"""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _record(path: Path) -> tuple[Graph, str]:
    stack = read_stack_file(path)
    graph = run_program(stack.config, stack=stack.stack, secret_keys=stack.secret_keys)
    return graph, stack.config.get("llm-hosting:environment", "")


def _invalid(name: str, problems: Sequence[str], started: float) -> Result:
    return Result(name, code=INVALID, problems=list(problems),
                  seconds=time.perf_counter() - started)


def check(path: Path, pack: Analyzer | Launched, policy_config: Path | None = None
          ) -> tuple[Result, Analyzer]:
    """The pack's verdict on one stack file. `pack` may still be starting (`Launched`): the
    program runs while it imports, and the handshake happens after."""
    started = time.perf_counter()
    name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    problems: list[str] = []
    graph: Graph | None = None
    try:
        graph, environment = _record(path)
    except ConfigError as err:
        problems = list(err.problems)
    except EngineCheckError as err:
        problems = list(err.problems)
    except (yaml.YAMLError, OSError, ValueError) as err:
        problems = [f"{path.name}: {err}"]
    analyzer = pack.connect() if isinstance(pack, Launched) else pack
    if graph is None:
        return _invalid(name, problems, started), analyzer
    config_file = policy_config or PACK_CONFIGS / f"config.{environment}.json"
    try:
        analyzer.configure(json.loads(config_file.read_text()))
    except (OSError, ValueError) as err:
        return _invalid(name, [f"policy config {config_file}: {err}"], started), analyzer
    resources = [r for r in graph.resources if r.type != "pulumi:pulumi:Stack"]
    found = analyzer.analyze(resources, graph.resources) + analyzer.analyze_stack(resources)
    result = Result(name, environment, diagnostics=found,
                    names={r.urn: f"{r.name} ({r.type})" for r in resources})
    result.code = VIOLATION if any(d.level == "mandatory" for d in found) else OK
    result.seconds = time.perf_counter() - started
    return result, analyzer


def table(result: Result) -> str:
    """Policy, level, resource, message: one violation per row, mandatory first."""
    rows = sorted(((d.policy, d.level, result.names.get(d.urn, "(stack)"),
                    d.detail or d.message) for d in result.diagnostics),
                  key=lambda r: (r[1] != "mandatory", r[0], r[2]))
    if not rows:
        return ""
    head = ("policy", "level", "resource", "message")
    widths = [max(len(r[i]) for r in (*rows, head)) for i in range(3)]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    return "\n".join(line.format(*r) for r in (head, *rows))


def summary(result: Result) -> str:
    if result.code == INVALID:
        return (f"{result.stack}: invalid, {len(result.problems)} problem(s) "
                f"({result.seconds:.1f} s)")
    levels = [d.level for d in result.diagnostics]
    return (f"{result.stack} ({result.environment}): {levels.count('mandatory')} mandatory, "
            f"{levels.count('advisory')} advisory violation(s) ({result.seconds:.1f} s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="every Pulumi.*.yaml of the project")
    parser.add_argument("--dir", type=Path, default=ROOT,
                        help="folder holding the stack files (default: this project)")
    parser.add_argument("--policy-config", type=Path,
                        help="policy config file (default: policies/config.<environment>.json)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    paths = stack_files(args.dir) if args.all else [args.dir / f"Pulumi.{args.stack}.yaml"]
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        parser.error(f"no {missing[0].name if missing else 'Pulumi.*.yaml'} in {args.dir}")

    pack: Analyzer | Launched = Analyzer.launch(stack=paths[0].name.split(".")[1])
    results: list[Result] = []
    analyzer: Analyzer | None = None
    try:
        for path in paths:
            result, analyzer = check(path, analyzer or pack, args.policy_config)
            results.append(result)
    finally:
        (analyzer or (pack.connect() if isinstance(pack, Launched) else pack)).stop()

    if args.json:
        print(json.dumps([{
            "stack": r.stack, "environment": r.environment, "code": r.code,
            "problems": r.problems, "seconds": round(r.seconds, 2),
            "violations": [{"policy": d.policy, "level": d.level,
                            "resource": r.names.get(d.urn, "(stack)"),
                            "message": d.detail or d.message} for d in r.diagnostics],
        } for r in results], indent=2))
    else:
        for r in results:
            if len(results) > 1 or r.code == INVALID:
                print(summary(r), file=sys.stderr if r.code == INVALID else sys.stdout)
            for problem in r.problems:
                print(f"  - {problem}", file=sys.stderr)
            rendered = table(r)
            if rendered:
                print(rendered)
        if len(results) == 1 and results[0].code != INVALID:
            print(summary(results[0]))
    return max(r.code for r in results)


if __name__ == "__main__":
    sys.exit(main())
