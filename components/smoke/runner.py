"""Send N streamed requests per model at concurrency C and report them beside the plan's bounds.

The plan's bounds come from the same sizing the deploy used (`Model` objects parsed from the
stack file): the memory-bandwidth roofline on decode tokens/s per replica
(`sizing.decode_tokens_per_second_upper_bound`, an upper bound, never an expectation) and the
full-length sequences the KV cache admits per replica (`MemoryEstimate.max_concurrent_sequences`).
A measured rate above roofline x replicas means the sizing model understates the hardware; a
concurrency above the KV figure x replicas means requests queue, and TTFT includes the wait.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components.config import ConfigError, Model, StackConfig
from components.sizing import decode_tokens_per_second_upper_bound
from components.smoke.clients import Target, send_openai, send_sagemaker
from components.smoke.stats import Summary, Trace, summarize
from components.smoke.targets import OutputsError, read_outputs, targets

PASSED, FAILED, INVALID = 0, 1, 2
Send = Callable[[Target], Trace]


@dataclass(frozen=True)
class Bounds:
    """What the plan promises per replica, and the replicas the stack keeps running."""

    roofline_tokens_per_second: float
    kv_sequences: int
    replicas: int


def bounds(model: Model) -> Bounds:
    return Bounds(
        roofline_tokens_per_second=decode_tokens_per_second_upper_bound(model.request,
                                                                         model.instance),
        kv_sequences=model.memory.max_concurrent_sequences,
        replicas=max(model.spec.min_replicas, 1),
    )


def run_model(target: Target, send: Send, requests: int, concurrency: int) -> list[Trace]:
    """`requests` calls, at most `concurrency` in flight; traces in completion order."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency),
                            thread_name_prefix=f"smoke-{target.name}") as pool:
        return list(pool.map(lambda _: send(target), range(requests)))


def notes(summary: Summary, bound: Bounds, concurrency: int) -> list[str]:
    out = []
    ceiling = bound.roofline_tokens_per_second * bound.replicas
    if summary.tokens_per_second is not None and summary.tokens_per_second > ceiling:
        out.append(f"{summary.tokens_per_second:.0f} tok/s is above the roofline bound "
                   f"({ceiling:.0f} for {bound.replicas} replica(s)): the sizing model "
                   "understates this hardware")
    if concurrency > bound.kv_sequences * bound.replicas:
        out.append(f"concurrency {concurrency} exceeds the {bound.kv_sequences * bound.replicas}"
                   " full-length sequences the KV cache admits: requests may queue (TTFT grows)")
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(results: Sequence[dict[str, Any]]) -> str:
    header = ["model", "via", "requests", "errors", "TTFT p50/p95 ms", "ITL p50/p95 ms",
              "out tok/s", "per-seq tok/s p50", "roofline tok/s/replica <=",
              "conc. / KV seqs/replica"]
    rows = []
    for r in results:
        s, b = r["summary"], r["bounds"]
        rows.append([
            r["model"], r["via"], str(s["requests"]), str(s["errors"]),
            f"{_ms(s['ttft_p50'])} / {_ms(s['ttft_p95'])}",
            f"{_ms(s['itl_p50'])} / {_ms(s['itl_p95'])}",
            _rate(s["tokens_per_second"]), _rate(s["decode_rate_p50"]),
            f"{b['roofline_tokens_per_second']:.0f} x {b['replicas']}",
            f"{r['concurrency']} / {b['kv_sequences']}",
        ])
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [line.format(*header), line.format(*["-" * w for w in widths])]
    out += [line.format(*row).rstrip() for row in rows]
    for r in results:
        out += [f"  {r['model']}: {n}" for n in r["notes"]]
        out += [f"  {r['model']}: error x{count}: {message}"
                for message, count in r["error_samples"].items()]
    return "\n".join(out)


def smoke(config: StackConfig, found: Sequence[Target], send: Send, requests: int,
          concurrency: int) -> list[dict[str, Any]]:
    by_name = {m.name: m for m in config.models}
    in_flight = min(concurrency, requests)  # never more at once than requests sent
    results = []
    for target in found:
        traces = run_model(target, send, requests, concurrency)
        summary = summarize(traces)
        bound = bounds(by_name[target.name])
        errors: dict[str, int] = {}
        for t in traces:
            if not t.ok:
                message = (t.error or "no output")[:160]
                errors[message] = errors.get(message, 0) + 1
        results.append({"model": target.name, "via": target.via, "concurrency": in_flight,
                        "summary": asdict(summary), "bounds": asdict(bound),
                        "notes": notes(summary, bound, in_flight), "error_samples": errors})
    return results


def sender(config: StackConfig, max_tokens: int, timeout: float, ignore_eos: bool,
           session: Any = None) -> Send:
    """One function for both wire formats; the SageMaker runtime client is made once."""
    import boto3
    from botocore.config import Config

    session = session or boto3.session.Session()
    runtime: list[Any] = []

    def send(target: Target) -> Trace:
        if target.kind == "sagemaker":
            return send_sagemaker(target, runtime[0], max_tokens, ignore_eos=ignore_eos)
        return send_openai(target, max_tokens, timeout, ignore_eos=ignore_eos)

    runtime.append(session.client(
        "sagemaker-runtime", region_name=config.region,
        config=Config(read_timeout=timeout, connect_timeout=10, retries={"max_attempts": 1})))
    return send


def parse_overrides(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for value in values:
        model, sep, url = value.partition("=")
        if not sep or not url:
            raise ValueError(f"--url takes MODEL=URL, got {value!r}")
        out[model] = url
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from components.offline import ROOT
    from components.preflight.runner import load_config

    parser = argparse.ArgumentParser(
        prog="python -m components.smoke",
        description="After `pulumi up`: streamed chat completions to every model through the "
        "stack's entry point; per model errors, TTFT, inter-token latency and output tokens/s "
        "beside the plan's bounds. Exit 0: every request answered; 1: any failed; 2: invalid "
        "stack or outputs.")
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--dir", type=Path, default=ROOT, help="folder holding the stack file")
    parser.add_argument("--outputs", type=Path,
                        help="stack outputs as JSON (`pulumi stack output --json`); default: "
                        "ask the Pulumi CLI")
    parser.add_argument("--requests", type=int, default=8, help="requests per model (8)")
    parser.add_argument("--concurrency", type=int, default=4, help="in flight per model (4)")
    parser.add_argument("--max-tokens", type=int, default=256, help="output tokens asked (256)")
    parser.add_argument("--ignore-eos", action="store_true",
                        help="vLLM: generate exactly --max-tokens (steadier throughput figures)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument("--url", action="append", default=[], metavar="MODEL=URL",
                        help="send MODEL's requests to URL (a tunnel or port-forward to the "
                        "stack's entry point); repeatable")
    parser.add_argument("--models", help="comma-separated model names (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    try:
        config = load_config(args.stack, args.dir)
        overrides = parse_overrides(args.url)
        outputs = read_outputs(args.stack, args.dir, args.outputs)
        import boto3

        session = boto3.session.Session()
        found = targets(config, outputs, overrides,
                        secrets=lambda: session.client("secretsmanager",
                                                       region_name=config.region))
    except (ConfigError, OutputsError, ValueError, OSError) as err:
        problems = err.problems if isinstance(err, ConfigError) else (str(err),)
        print("\n".join(f"smoke: {p}" for p in problems), file=sys.stderr)
        return INVALID
    if args.models:
        wanted = set(args.models.split(","))
        found = [t for t in found if t.name in wanted]
    send = sender(config, args.max_tokens, args.timeout, args.ignore_eos, session)
    started = time.time()
    results = smoke(config, found, send, args.requests, args.concurrency)
    failed = any(r["summary"]["errors"] for r in results)
    if args.json:
        print(json.dumps({"stack": args.stack, "startedAt": started, "requests": args.requests,
                          "maxTokens": args.max_tokens, "models": results}, indent=2))
    else:
        print(f"smoke {args.stack} ({config.platform}): {args.requests} request(s) per model, "
              f"concurrency {args.concurrency}, max_tokens {args.max_tokens}\n")
        print(render(results))
    return FAILED if failed else PASSED
