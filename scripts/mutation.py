"""Mutation run over the policy pack and the sizing model (not in CI: it takes an hour or more).

Each mutant is one small change to one expression of `policies/**.py` or `components/sizing.py`
(operators below). The suite that guards the file runs against it in a scratch copy of the
repository, fast in-process tests first and stopping at the first failure; a mutant is *killed*
when a test fails (or the run errors or times out), *survived* otherwise. The score is killed /
(mutants - known equivalent mutants). Survivors are printed with file, line and the change, so a
test can be written for each or the mutant listed in EQUIVALENT with the reason no test can
tell it apart.

    venv/bin/python scripts/mutation.py                          # everything, 2 workers
    venv/bin/python scripts/mutation.py policies/rules/iam.py    # one file
    venv/bin/python scripts/mutation.py --list                   # mutants only, no tests
    venv/bin/python scripts/mutation.py --only-survivors OUT.json # rerun last run's survivors
    venv/bin/python scripts/mutation.py --every 3 --offset 1     # a systematic 1-in-3 sample
    venv/bin/python scripts/mutation.py --resume OUT.jsonl       # continue a run cut short

Record the score in docs/policies.md.

Operators (one mutant per site and operator):
  CMP    comparison to its boundary/negated partner: < <=, > >=, == !=, in / not in, is / is not
  BOOL   `and` <-> `or`
  NOT    `not x` -> `x`
  ARITH  + <-> -, * <-> /, // -> /
  NUM    integer or float literal n -> n + 1 (0 -> 1, 1 -> 2, 0.9 -> 1.9, -1 -> 0)
  CONST  True <-> False
  CALL   any <-> all, min <-> max
  YIELD  `yield x` statement removed (a check stops reporting one violation)
  RETURN `return x` -> `return None` (x not None or False)
  FLOW   continue <-> break

Not mutated (exclusions), with the reason:
  - string literals: every message is pinned by an exact-message test, so a changed letter is
    killed by construction and says nothing about the logic; docstrings and comments likewise;
  - type annotations and `from __future__`, `TYPE_CHECKING` blocks, `__all__`: not executed;
  - JSON-schema bounds in rule configs (`minimum`, `maximum`, `exclusiveMinimum`, `minItems`,
    `minLength`): data the Pulumi CLI enforces on config files before the pack runs;
  - numbers that are elements of a module-level tuple/list/set literal (an enumeration of the
    values an AWS API accepts, such as CloudWatch's retention days): facts copied from a cited
    source, not logic (their use is mutated: membership tests, the minimum filter);
  - `policies/__main__.py`: it only assembles the pack (every protocol test imports it);
  - decorators (`@dataclass(frozen=True)`): no code assigns to a frozen field, so unfreezing
    changes nothing a test could see;
  - `return False` -> `return None`: both falsy where a predicate's result is tested (CONST
    mutates it to `return True`).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = sorted([*ROOT.glob("policies/*.py"), *ROOT.glob("policies/rules/*.py"),
                  ROOT / "components" / "sizing.py"])
SKIP_FILES = {"policies/__main__.py", "policies/__init__.py"}
SCHEMA_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems",
                 "maxItems", "minLength", "maxLength"}

POLICY_FAST = ["tests/policies/test_policy_boundaries.py",
               "tests/policies/test_policy_rule_edges.py",
               "tests/policies/test_policy_framework.py",
               "tests/policies/test_policy_cost_units.py", "tests/policies/test_policy_rules.py",
               "tests/policies/test_workload_edges.py", "tests/policies/test_policy_families.py"]
POLICY_SLOW = ["tests/policies/test_policy_families_protocol.py",
               "tests/policies/test_policy_fuzz.py::"
               "test_a_malformed_value_names_resource_property_and_value",
               "tests/policies/test_workload_rules.py", "tests/policies/test_startup_gate.py",
               "tests/policies/test_policy_docs.py", "tests/policies/test_policy_protocol.py"]
GATE_SLOW = ["tests/policies/test_policy_client.py", "tests/policies/test_policy_check.py",
             *POLICY_SLOW]
SIZING_FAST = ["tests/test_sizing.py", "tests/test_sizing_calibration.py",
               "tests/test_config_ranges.py", "tests/test_startup.py",
               "tests/policies/test_policy_rules.py",
               "tests/policies/test_policy_boundaries.py"]
SIZING_SLOW = ["tests/test_config.py", "tests/test_plan.py", "tests/test_stacks.py",
               "tests/test_eks_nodepool.py", "tests/test_capacity_demand.py",
               "tests/test_engine_args_graph.py",
               "tests/policies/test_policy_families_protocol.py",
               "tests/policies/test_policy_protocol.py"]


GATE_FAST = [
    *(f"tests/policies/test_policy_check.py::{t}" for t in (
        "test_the_table_lists_mandatory_rows_first_then_by_policy_and_resource",)),
    *(f"tests/policies/test_policy_client.py::{t}" for t in (
        "test_config_file_values_are_levels_or_objects",
        "test_references_reach_the_analyzer_as_ids_or_urns",
        "test_the_message_detail_drops_the_description_line")),
    *POLICY_FAST,
]


def suites(relpath: str) -> tuple[list[str], list[str]]:
    """(fast in-process tests, slower protocol tests) that guard a file."""
    if relpath == "components/sizing.py":
        return SIZING_FAST, SIZING_SLOW
    if relpath in ("policies/check.py", "policies/client.py"):
        return GATE_FAST, GATE_SLOW
    return POLICY_FAST, POLICY_SLOW


#: Mutants no test can tell apart from the original, keyed by (file, operator, original source
#: line stripped, change), with the reason. Reviewed by hand after each run.
_ONLY_TRUTHINESS = "the one caller tests the result's truthiness: [] and None are both false"
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("policies/rules/_capacity.py", "RETURN", "return []", "return x -> return None"):
        "max_count: " + _ONLY_TRUTHINESS + " (cost.price_capacity: `if not counts`)",
    ("policies/rules/storage.py", "NUM",
     'f"(permissions {preview_permissions(grant)}) to {uri.rsplit(\'/\', 1)[-1]}; "',
     "1 -> 2"):
        "the last path segment of a grantee URI is the same however many splits precede it",
    ("policies/rules/secrets.py", "NUM", 'kind = resource.type.rsplit(":", 1)[-1]', "1 -> 2"):
        "the last segment of a type token is the same however many splits precede it",
    ("policies/rules/cost.py", "NUM",
     'get(resource.props, "runtimeConfig", "copyCount"), 1.0, _COLD)', "1.0 -> 2.0"):
        "the default for an unset copyCount only has to pass the at-least-one check: 1 and 2 "
        "both do",
    ("policies/client.py", "NUM", "self.engine_server.stop(0)", "0 -> 1"):
        "the stand-in engine has no call in flight when it is stopped: a one-second grace "
        "period changes only how long stop() may wait",
    ("policies/rules/workloads.py", "NUM", 'return resource.type.rsplit(":", 1)[-1]', "1 -> 2"):
        "the last segment of a type token is the same however many splits precede it",
    ("policies/client.py", "NUM",
     "server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))", "1 -> 2"):
        "the stand-in engine's gRPC server answers the pack's log calls with one thread or two: "
        "nothing observable depends on the pool size",
    ("components/sizing.py", "NUM", "mid = (low + high + 1) // 2", "1 -> 2"):
        "an upper midpoint one higher is still at most `high` while low < high: the search "
        "probes other counts and returns the same largest one",
    ("components/sizing.py", "ARITH",
     "batch = max(1, min(math.floor(kv_memory / kv_per_sequence), memory.engine.max_num_seqs))",
     "/ -> *"):
        "max_num_seqs is chosen as full-length sequences that fit, so the cache always holds at "
        "least as many average-length ones and the min is max_num_seqs either way (checked on "
        "2,453 fitting placements: 0 differ)",
    ("policies/rules/cost.py", "RETURN", "return []", "return x -> return None"):
        "may_launch_unknown_gpus: " + _ONLY_TRUTHINESS + " (price_nodepool: `if unknown`)",
    ("policies/rules/transit.py", "NUM",
     'ports = [("HTTPS", 443)] if certificate else [("HTTP", 80)]', "443 -> 444"):
        "only HTTP ports are reported or compared; an HTTPS entry's port is never read",
}


@dataclass(frozen=True)
class Mutant:
    file: str
    line: int
    operator: str
    change: str
    source_line: str
    index: int
    """which mutation site of this operator in the file (stable order of the AST walk)"""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.file, self.operator, self.source_line, self.change)


_SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
             ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
             ast.FloorDiv: ast.Div}
_SWAP_CALL = {"any": "all", "all": "any", "min": "max", "max": "min"}
_OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
            ast.IsNot: "is not", ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
            ast.FloorDiv: "//"}


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside annotations, TYPE_CHECKING blocks, __all__ and schema bounds."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, (ast.Tuple, ast.List, ast.Set)):
            skip.update(id(e) for e in value.elts if isinstance(e, ast.Constant))
    for node in ast.walk(tree):
        if isinstance(node, (ast.arg, ast.AnnAssign)):
            mark(node.annotation)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for decorator in node.decorator_list:
                mark(decorator)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            mark(node)
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value in SCHEMA_BOUNDS:
                    mark(v)
    return skip


def sites(tree: ast.Module) -> Iterator[tuple[str, ast.AST, str]]:
    """(operator, node, change) for every mutation site, in a stable order."""
    skip = _skipped_nodes(tree)
    negated = {id(n.operand) for n in ast.walk(tree)
               if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _SWAP_CMP:
                    new = _SWAP_CMP[type(op)]
                    yield "CMP", node, f"{i}:{_OP_TEXT[type(op)]} -> {_OP_TEXT[new]}"
        elif isinstance(node, ast.BoolOp):
            yield "BOOL", node, "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield "NOT", node, "not x -> x"
        elif isinstance(node, ast.BinOp) and type(node.op) in _SWAP_BIN:
            new = _SWAP_BIN[type(node.op)]
            yield "ARITH", node, f"{_OP_TEXT[type(node.op)]} -> {_OP_TEXT[new]}"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and \
                isinstance(node.operand, ast.Constant) and \
                type(node.operand.value) in (int, float):
            value = -node.operand.value  # `-1` is one literal (an index from the end)
            yield "NUM", node, f"{value!r} -> {value + 1!r}"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if id(node) in negated:
                continue
            yield "NUM", node, f"{node.value!r} -> {node.value + 1!r}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield "CONST", node, f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in _SWAP_CALL:
            yield "CALL", node, f"{node.func.id} -> {_SWAP_CALL[node.func.id]}"
        elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Yield, ast.YieldFrom)):
            yield "YIELD", node, "yield removed"
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value in (None, False)):
            yield "RETURN", node, "return x -> return None"
        elif isinstance(node, (ast.Continue, ast.Break)):
            yield "FLOW", node, ("continue -> break" if isinstance(node, ast.Continue)
                                 else "break -> continue")


class _Apply(ast.NodeTransformer):
    def __init__(self, target: int, operator: str, change: str) -> None:
        self.target, self.operator, self.change = target, operator, change

    def visit(self, node: ast.AST) -> ast.AST:  # type: ignore[override]
        if id(node) != self.target:
            return self.generic_visit(node)
        node = copy.copy(node)
        match self.operator:
            case "CMP":
                index = int(self.change.split(":")[0])
                ops = list(node.ops)  # type: ignore[attr-defined]
                ops[index] = _SWAP_CMP[type(ops[index])]()
                node.ops = ops  # type: ignore[attr-defined]
            case "BOOL":
                node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore
            case "NOT":
                return node.operand  # type: ignore[attr-defined]
            case "ARITH":
                node.op = _SWAP_BIN[type(node.op)]()  # type: ignore[attr-defined]
            case "NUM":
                if isinstance(node, ast.UnaryOp):
                    return ast.Constant(-node.operand.value + 1)  # type: ignore[attr-defined]
                node.value = node.value + 1  # type: ignore[attr-defined]
            case "CONST":
                node.value = not node.value  # type: ignore[attr-defined]
            case "CALL":
                name = node.func.id  # type: ignore[attr-defined]
                node.func = ast.Name(_SWAP_CALL[name], ast.Load())  # type: ignore
            case "YIELD":
                return ast.Pass()
            case "RETURN":
                node.value = ast.Constant(None)  # type: ignore[attr-defined]
            case "FLOW":
                return ast.Break() if isinstance(node, ast.Continue) else ast.Continue()
        return node


def mutants(path: Path, root: Path = ROOT) -> list[Mutant]:
    """Mutation sites of one file, read under `root` (the scratch copy the run mutates)."""
    rel = path.relative_to(ROOT).as_posix()
    if rel in SKIP_FILES:
        return []
    source = (root / rel).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    counts: dict[str, int] = {}
    out = []
    for operator, node, change in sites(tree):
        index = counts.get(operator, 0)
        counts[operator] = index + 1
        line = getattr(node, "lineno", 0)
        out.append(Mutant(rel, line, operator, change, lines[line - 1].strip(), index))
    return out


def mutated_source(mutant: Mutant, source: str) -> str:
    """`source` (the file the mutant was enumerated from) with the mutant applied."""
    tree = ast.parse(source)
    found = [node for op, node, _ in sites(tree) if op == mutant.operator]
    node = found[mutant.index]
    new = _Apply(id(node), mutant.operator, mutant.change).visit(tree)
    return ast.unparse(ast.fix_missing_locations(new))


# ------------------------------------------------------------------------------------------
# running


def _scratch(root: Path) -> Path:
    """A copy of the tracked files (no venv, no caches) to mutate in place."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return root


PRELOAD = ("pytest", "hypothesis", "grpc", "google.protobuf.json_format", "pydantic", "yaml",
           "jsonschema", "boto3", "botocore", "moto", "pulumi", "pulumi.runtime", "pulumi_policy",
           "pulumi_aws", "pulumi_aws_native", "pulumi_awsx", "pulumi_eks", "pulumi_kubernetes",
           "kubernetes_validate", "policy_sentry")
"""Third-party modules the tests import, loaded once per worker before it forks a test run per
mutant (an interpreter start plus these imports is most of a small test run). No project
module is loaded before the fork: each child imports the mutated code fresh."""


def _worker(conn: Any, copy_root: str, timeout: int) -> None:
    """Long-lived worker: preload, then fork one pytest run per request in the scratch copy."""
    import importlib
    import signal

    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    if os.environ.get("LLM_HOSTING_GRAPH_CACHE") is None:
        os.environ["LLM_HOSTING_GRAPH_CACHE"] = os.path.join(copy_root, ".graphs")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    os.chdir(copy_root)
    import pytest

    while True:
        request = conn.recv()
        if request is None:
            return
        tests, fresh_graphs = request
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # the test run and every process it starts (the pack) in one group
            if fresh_graphs:
                os.environ.pop("LLM_HOSTING_GRAPH_CACHE", None)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            signal.alarm(timeout)
            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
            os._exit(int(code))
        _, status = os.waitpid(pid, 0)
        try:  # a run killed by its timeout leaves the pack process it started
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        conn.send(os.waitstatus_to_exitcode(status))


class Worker:
    def __init__(self, copy_root: Path, timeout: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.root = copy_root
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, str(copy_root), timeout),
                                   daemon=True)
        self.process.start()

    def pytest(self, tests: list[str], fresh_graphs: bool) -> str:
        self.conn.send((tests, fresh_graphs))
        code = self.conn.recv()
        if code == 0:
            return "survived"
        if code == 5:  # no tests ran: the selection is wrong, not the mutant killed
            return "error (no tests collected)"
        if code < 0:
            return "killed (timeout)" if code == -14 else f"killed (signal {-code})"
        return "killed"

    def stop(self) -> None:
        self.conn.send(None)
        self.process.join(10)


def run_one(mutant: Mutant, worker: Worker, stages: str = "both") -> dict[str, object]:
    target = worker.root / mutant.file
    original = target.read_text()
    started = time.perf_counter()
    # The program itself reads sizing.py: its example graphs must be recorded afresh.
    fresh = mutant.file == "components/sizing.py"
    try:
        target.write_text(mutated_source(mutant, original))
        fast, slow = suites(mutant.file)
        verdict = "survived"
        if stages in ("both", "fast"):
            verdict = worker.pytest(fast, fresh)
        if verdict == "survived" and stages in ("both", "slow"):
            verdict = worker.pytest(slow, fresh)
    finally:
        target.write_text(original)
    return {**asdict(mutant), "verdict": verdict,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="files to mutate (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600, help="per test stage, seconds")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) /
                        "llm-hosting-mutation.json", help="results file (JSON)")
    parser.add_argument("--only-survivors", type=Path,
                        help="rerun only the mutants that survived in this results file")
    parser.add_argument("--stages", choices=("both", "fast", "slow"), default="both",
                        help="fast: only the in-process suites (a survivor there may still die "
                             "in the slow ones: the score is a lower bound); slow: only the "
                             "protocol suites (with --only-survivors of a fast run)")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="a systematic sample: every K-th mutant of each file, in the stable "
                             "order (with --offset); the score is then an estimate")
    parser.add_argument("--offset", type=int, default=0, help="first mutant of the sample")
    parser.add_argument("--resume", type=Path, metavar="FILE.jsonl",
                        help="skip mutants already judged in this log (a run writes one line "
                             "per mutant to OUT with .jsonl as it goes)")
    args = parser.parse_args()
    files = [f.resolve() for f in args.files] or TARGETS
    workdir = Path(tempfile.mkdtemp(prefix="llm-hosting-mutation-"))
    roots = [_scratch(workdir / f"w{i}") for i in range(args.workers)]
    # Mutants come from the scratch copies, so edits to the checkout during a run change nothing.
    todo = [m for f in files for m in mutants(f, roots[0])]
    if args.only_survivors:
        previous = json.loads(args.only_survivors.read_text())
        # By text, not position: tests and fixes written since then move lines.
        keep = {(r["file"], r["operator"], r["source_line"], r["change"])
                for r in previous["results"] if r["verdict"] == "survived"}
        todo = [m for m in todo if m.key in keep]
    if args.every > 1:
        by_file: dict[str, list[Mutant]] = {}
        for m in todo:
            by_file.setdefault(m.file, []).append(m)
        todo = [m for ms in by_file.values() for m in ms[args.offset % args.every::args.every]]
    done_before: list[dict[str, object]] = []
    if args.resume and args.resume.exists():
        done_before = [json.loads(line) for line in args.resume.read_text().splitlines() if line]
        judged = {(r["file"], r["operator"], r["source_line"], r["change"]) for r in done_before}
        todo = [m for m in todo if m.key not in judged]
    equivalent = [m for m in todo if m.key in EQUIVALENT]
    todo = [m for m in todo if m.key not in EQUIVALENT]
    if args.list:
        for m in todo:
            print(f"{m.file}:{m.line} {m.operator} {m.change}   | {m.source_line}")
        print(f"{len(todo)} mutants, {len(equivalent)} known equivalent")
        shutil.rmtree(workdir, ignore_errors=True)
        return 0

    workers = [Worker(root, int(args.timeout)) for root in roots]
    print(f"{len(todo)} mutants ({len(equivalent)} known equivalent excluded), "
          f"{args.workers} workers, scratch {workdir}", flush=True)
    # The unmutated code must pass every suite used, or every mutant would count as killed.
    for fast, slow in {tuple(map(tuple, suites(m.file))) for m in todo}:
        for tests in {"both": (fast, slow), "fast": (fast,), "slow": (slow,)}[args.stages]:
            if workers[0].pytest(list(tests), fresh_graphs=False) != "survived":
                print(f"the unmutated code fails {' '.join(tests)}: fix the tests first")
                return 2
    results: list[dict[str, object]] = list(done_before)
    log = args.out.with_suffix(".jsonl")
    free = list(workers)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        pending: dict[concurrent.futures.Future, Worker] = {}
        queue = list(todo)
        while queue or pending:
            while queue and free:
                worker = free.pop()
                pending[pool.submit(run_one, queue.pop(0), worker, args.stages)] = worker
            done, _ = concurrent.futures.wait(pending, return_when="FIRST_COMPLETED")
            for future in done:
                free.append(pending.pop(future))
                result = future.result()
                results.append(result)
                with log.open("a") as handle:  # a run cut short keeps what it judged
                    handle.write(json.dumps(result) + "\n")
                if result["verdict"] != "killed":
                    print(f"  {result['verdict']:9} {result['file']}:{result['line']} "
                          f"{result['operator']} {result['change']}  | {result['source_line']}",
                          flush=True)
            if len(results) % 25 == 0 and done:
                elapsed = time.perf_counter() - started
                print(f"  ... {len(results)}/{len(todo)} in {elapsed / 60:.0f} min", flush=True)
    for worker in workers:
        worker.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    by_file: dict[str, list[dict[str, object]]] = {}
    for r in results:
        by_file.setdefault(str(r["file"]), []).append(r)
    print("\nfile                                   mutants  killed  survived  score")
    for name in sorted(by_file):
        rs = by_file[name]
        killed = sum(str(r["verdict"]).startswith("killed") for r in rs)
        print(f"{name:38} {len(rs):7} {killed:7} {len(rs) - killed:9}  "
              f"{killed / len(rs):6.1%}")
    killed = sum(str(r["verdict"]).startswith("killed") for r in results)
    score = killed / len(results) if results else 1.0
    print(f"{'total':38} {len(results):7} {killed:7} {len(results) - killed:9}  {score:6.1%}"
          f"   ({len(equivalent)} known equivalent not counted)")
    args.out.write_text(json.dumps({"score": score, "killed": killed, "mutants": len(results),
                                    "equivalent": len(equivalent), "results": results},
                                   indent=1))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
