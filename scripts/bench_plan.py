"""How long `python -m components.plan` takes for a stack with many models.

Speed is measured here, not asserted in the test suite: a busy CI machine would make a timed
test flaky. The stack is the dev example (SageMaker) with its model repeated N times, or the
staging (ECS) / prod (EKS) example likewise; each run reads, validates, runs the program offline
and renders, as `plan --stack` does. Figures are in docs/deploy.md (section "How fast plan is").

  python scripts/bench_plan.py                      # 50 models on each platform, 3 runs each
  python scripts/bench_plan.py --models 10 50 100 --runs 5 --platform sagemaker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from components import plan  # noqa: E402

EXAMPLE = {"sagemaker": "dev", "ecs": "staging", "eks": "prod"}


def many_models_stack(folder: Path, platform_name: str, count: int) -> str:
    """The platform's example stack with its first model repeated `count` times."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{EXAMPLE[platform_name]}.yaml").read_text())
    base = doc["config"]["llm-hosting:models"][-1]
    doc["config"]["llm-hosting:models"] = [dict(base, name=f"m{i}") for i in range(count)]
    if platform_name == "sagemaker":  # one instance type for all: one production variant
        doc["config"]["llm-hosting:sagemaker"] = {"endpointDeployment": "rolling"}
    name = f"bench-{platform_name}-{count}"
    (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))
    return name


def measure(folder: Path, name: str, runs: int) -> dict[str, float | int]:
    times = []
    resources = 0
    for _ in range(runs):
        start = time.perf_counter()
        built = plan.build_plan(name, folder)
        plan.render(built)
        times.append(time.perf_counter() - start)
        if built.code != 0:
            raise SystemExit(f"{name}: plan failed: {built.problems[:3]}")
        resources = len(built.doc["resources"])
    return {"resources": resources, "median_s": round(statistics.median(times), 2),
            "min_s": round(min(times), 2), "max_s": round(max(times), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/bench_plan.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[50],
                        help="model counts to measure (default: 50)")
    parser.add_argument("--platform", choices=sorted(EXAMPLE), nargs="+",
                        default=sorted(EXAMPLE), help="platforms (default: all three)")
    parser.add_argument("--runs", type=int, default=3, help="runs per stack (default: 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for platform_name in args.platform:
            for count in args.models:
                name = many_models_stack(folder, platform_name, count)
                results.append({"platform": platform_name, "models": count,
                                **measure(folder, name, args.runs)})
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(),
               "load1": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
        return 0
    print(f"python {machine['python']}, {machine['cpus']} CPUs, load {machine['load1']}")
    print("platform   models  resources  median s  min s  max s")
    for r in results:
        print(f"{r['platform']:<10} {r['models']:>6}  {r['resources']:>9}  {r['median_s']:>8}"
              f"  {r['min_s']:>5}  {r['max_s']:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
