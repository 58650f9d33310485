"""Wall-clock of `python -m policies.check` per example stack, as CI runs it (a fresh process).

Not a test: timing on a shared machine is noise in a test suite (tests never assert time). Run
it from the repository root and copy the figures into docs/policies.md:

    venv/bin/python scripts/bench_policy_check.py            # 3 runs per stack, then --all
    venv/bin/python scripts/bench_policy_check.py --runs 5

It prints the median and the slowest run per stack, the 1-minute load average before and after
(a busy machine explains a slow figure), and the CPU count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


def timed(args: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "policies.check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return time.perf_counter() - started, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per stack (default 3)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load_before:.2f}")
    worst_code = 0
    for name in STACKS:
        runs = [timed(["--stack", name]) for _ in range(args.runs)]
        seconds = [s for s, _ in runs]
        worst_code = max(worst_code, *(c for _, c in runs))
        print(f"--stack {name:8} median {statistics.median(seconds):5.2f} s, "
              f"slowest {max(seconds):5.2f} s, exit {runs[-1][1]}")
    seconds, code = timed(["--all"])
    print(f"--all            {seconds:5.2f} s for {len(STACKS)} stacks, exit {code}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return max(worst_code, code)


if __name__ == "__main__":
    sys.exit(main())
