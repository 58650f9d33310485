"""How long `python -m components.preflight` takes for the example stacks, against moto's server.

    python scripts/bench_preflight.py [--runs 5] [--stacks dev,staging,prod]

Starts moto's server on loopback (tests/preflight_world.py: moto plus the Service Quotas values
moto lacks, sized so every quota passes), seeds what each example stack reads (its weights
buckets with a config and shards, the Spot service-linked role), then runs the command as a
subprocess per stack, as a user would, through AWS_ENDPOINT_URL. Prints wall-clock seconds per
run (interpreter start and imports included), the checks alone (`run()` in-process, the part
that talks to AWS), and the rows' statuses. moto has no EKS DescribeAddonVersions
and no /aws/service SSM parameters, so prod's four add-on rows come back `error` and its AMI row
`fail`: the timing still includes those calls.

A benchmark, not a test: figures depend on the machine and its load; docs/deploy.md records
them. Loopback calls take ~1-10 ms; against AWS each call is ~50-300 ms and the families run in
parallel threads, so expect a few seconds per stack there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.platforms import CAPACITY_DEMANDS  # noqa: E402
from components.preflight import Clients, load_config, run  # noqa: E402
from components.preflight.quotas import ON_DEMAND_QUOTAS, SPOT_QUOTAS, quota_class  # noqa: E402
from tests.preflight_world import moto_server, seed_spot_role, seed_weights  # noqa: E402


def quota_table(stacks: list[str]) -> dict[tuple[str, str], tuple[str, float]]:
    """Every quota the stacks read, at a value that passes (1,000 vCPUs or instances)."""
    table: dict[tuple[str, str], tuple[str, float]] = {}
    for i, stack in enumerate(stacks):
        config = load_config(stack, ROOT)
        for d in CAPACITY_DEMANDS[config.platform](config):
            if config.platform == "sagemaker":
                code = f"L-BENCH{i:02d}{len(table):02d}"
                table["sagemaker", code] = (f"{d.instance_type} for endpoint usage", 1000.0)
                continue
            cls = quota_class(d.instance_type, d.purchase)
            if cls is not None:
                q = (SPOT_QUOTAS if d.purchase == "spot" else ON_DEMAND_QUOTAS)[cls]
                table["ec2", q.code] = (q.name, 1000.0)
    return table


def seed(stacks: list[str], url: str) -> None:
    for stack in stacks:
        config = load_config(stack, ROOT)
        for model in config.models:
            uri = model.spec.weights_uri
            if uri:
                bucket, prefix = uri.removeprefix("s3://").rstrip("/").split("/", 1)
                seed_weights(bucket, prefix, endpoint_url=url)
        if any(m.spec.capacity == "spot" for m in config.models):
            try:
                seed_spot_role(endpoint_url=url)
            except Exception:  # already there from an earlier stack
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stacks", default="dev,staging,prod")
    args = parser.parse_args()
    stacks = args.stacks.split(",")
    with moto_server(quota_table(stacks)) as url:
        env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": url,
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
               "AWS_EC2_METADATA_DISABLED": "true"}
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        seed(stacks, url)
        print(f"preflight against moto's server ({url}), {args.runs} runs per stack; "
              f"load average {os.getloadavg()[0]:.2f}")
        for stack in stacks:
            times, statuses, code = [], Counter(), 0
            for _ in range(args.runs):
                start = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "components.preflight", "--stack", stack, "--json"],
                    cwd=ROOT, env=env, capture_output=True, text=True, check=False)
                times.append(time.perf_counter() - start)
                report = json.loads(done.stdout)
                statuses = Counter(c["status"] for c in report["checks"])
                code = done.returncode
            config = load_config(stack, ROOT)
            checks = []
            for _ in range(args.runs):  # the AWS calls alone, without interpreter start
                start = time.perf_counter()
                run(config, Clients(config.region))
                checks.append(time.perf_counter() - start)
            print(f"  {stack:<8} command median {statistics.median(times):5.2f} s (min "
                  f"{min(times):4.2f}, max {max(times):4.2f}); checks alone median "
                  f"{statistics.median(checks):4.2f} s; exit {code}: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
