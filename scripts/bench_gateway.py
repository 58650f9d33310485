"""What the gateway adds to a request: latency (p50/p99) and throughput, on loopback.

Starts a zero-latency OpenAI-compatible fake (uvicorn, its own process), then the real gateway
(the LiteLLM proxy at the pinned version, with the config the program generates and our hooks),
and sends the same chat completion directly to the fake and through the gateway from keep-alive
clients. Added latency = gateway percentile - direct percentile; throughput = requests per
second through the gateway at the given concurrency. Also reports how long the proxy took to
start, and the proxy's CPU time per request: on a shared or busy machine wall-clock latency
mostly measures waiting for a core, while CPU time per request is what one request costs the
gateway on an idle core (a floor on what it adds). `--without-hooks` runs the same proxy without
our callbacks, to show their share. A benchmark, not a test: the numbers depend on the machine
(record them with its description and load in docs/gateway.md).

    python scripts/bench_gateway.py [--requests 2000] [--concurrency 8] [--without-hooks] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from components.gateway import config as gw
from components.platforms import parse_config

MASTER_KEY = "sk-bench"
BODY = {"model": "bench", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fake(port: int) -> None:
    """An ASGI app that answers every request at once with the same completion."""
    import uvicorn

    async def app(scope: dict[str, Any], receive: Callable[..., Any],
                  send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": ANSWER})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_for(url: str, limit: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    start = time.monotonic()
    while True:
        try:
            httpx.get(url, timeout=2)
            return time.monotonic() - start
        except httpx.HTTPError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() - start > limit:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.1)


def run(url: str, requests: int, concurrency: int, headers: dict[str, str]
        ) -> tuple[list[float], float]:
    """Latencies (s) of `requests` calls from `concurrency` keep-alive clients, and the
    wall-clock time they took together."""
    per_client = [requests // concurrency + (i < requests % concurrency)
                  for i in range(concurrency)]

    def client(n: int) -> list[float]:
        out = []
        with httpx.Client(headers=headers, timeout=30) as c:
            for _ in range(n):
                t = time.perf_counter()
                r = c.post(url, json=BODY)
                out.append(time.perf_counter() - t)
                r.raise_for_status()
        return out

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        latencies = [x for part in pool.map(client, per_client) for x in part]
    return latencies, time.perf_counter() - start


def pct(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(
        values)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_config(fake_url: str, metrics_port: int, hooks: bool = True) -> str:
    raw = {"aws:region": "us-east-1", "llm-hosting:environment": "staging",
           "llm-hosting:platform": "eks", "llm-hosting:models": json.dumps([
               {"name": "bench", "modelId": "Qwen/Qwen2.5-7B-Instruct"}])}
    plan = gw.gateway_plan(parse_config(raw, project="llm-hosting", stack="bench"))
    backend = gw.openai_backend(plan.route("bench"), f"{fake_url}/v1")
    config = gw.litellm_config(plan, {"bench": backend}, metrics_port=metrics_port)
    if not hooks:
        del config["litellm_settings"]["callbacks"]
    return gw.render(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--without-hooks", action="store_true",
                        help="the same proxy without our callbacks (to see their share)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    fake_port, proxy_port, metrics_port = free_port(), free_port(), free_port()
    fake = multiprocessing.get_context("spawn").Process(target=_fake, args=(fake_port,),
                                                        daemon=True)
    fake.start()
    fake_url = f"http://127.0.0.1:{fake_port}"
    wait_for(f"{fake_url}/health", 30)

    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    config = gateway_config(fake_url, metrics_port, hooks=not args.without_hooks)
    for name, text in gw.bundle(config).items():
        (folder / name).write_text(text)
    proxy_args = gw.proxy_args(str(folder))
    proxy_args[proxy_args.index("--host") + 1] = "127.0.0.1"
    proxy_args[proxy_args.index("--port") + 1] = str(proxy_port)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", gw.MASTER_KEY_ENV: MASTER_KEY,
           "LITELLM_LOG": "ERROR"}
    log = (folder / "proxy.log").open("w")
    proxy = subprocess.Popen([str(Path(sys.executable).with_name("litellm")), *proxy_args],
                             env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        startup = wait_for(f"http://127.0.0.1:{proxy_port}{gw.HEALTH_PATH}", 180, proxy)
        gateway_url = f"http://127.0.0.1:{proxy_port}/v1/chat/completions"
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        run(gateway_url, args.warmup, args.concurrency, auth)
        run(f"{fake_url}/v1/chat/completions", args.warmup, args.concurrency, {})
        direct, direct_wall = run(f"{fake_url}/v1/chat/completions", args.requests,
                                  args.concurrency, {})
        via, via_wall = run(gateway_url, args.requests, args.concurrency, auth)
        serial_n = max(200, args.requests // 10)
        cpu_before = cpu_seconds(proxy.pid)
        serial, _ = run(gateway_url, serial_n, 1, auth)
        cpu_per_request = (cpu_seconds(proxy.pid) - cpu_before) / serial_n
        serial_direct, _ = run(f"{fake_url}/v1/chat/completions", max(200, args.requests // 10),
                               1, {})
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        fake.terminate()
        log.close()

    ms = 1000
    result = {
        "hooks": not args.without_hooks,
        "proxyStartSeconds": round(startup, 1),
        "proxyCpuMsPerRequest": round(cpu_per_request * ms, 2),
        "requests": args.requests, "concurrency": args.concurrency,
        "addedMsP50": round((pct(via, 50) - pct(direct, 50)) * ms, 2),
        "addedMsP99": round((pct(via, 99) - pct(direct, 99)) * ms, 2),
        "addedMsP50Serial": round((pct(serial, 50) - pct(serial_direct, 50)) * ms, 2),
        "addedMsP99Serial": round((pct(serial, 99) - pct(serial_direct, 99)) * ms, 2),
        "gatewayMsP50": round(pct(via, 50) * ms, 2),
        "gatewayMsP99": round(pct(via, 99) * ms, 2),
        "directMsP50": round(pct(direct, 50) * ms, 2),
        "directMsP99": round(pct(direct, 99) * ms, 2),
        "gatewayRequestsPerSecond": round(args.requests / via_wall, 1),
        "directRequestsPerSecond": round(args.requests / direct_wall, 1),
        "cpus": os.cpu_count(),
        "loadAverage1m": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"proxy started in {result['proxyStartSeconds']} s "
              f"({'with' if result['hooks'] else 'without'} our hooks; "
              f"load average {result['loadAverage1m']:.1f} on {result['cpus']} CPUs)")
        print(f"proxy CPU per request: {result['proxyCpuMsPerRequest']} ms")
        print(f"one client at a time: +{result['addedMsP50Serial']} ms p50, "
              f"+{result['addedMsP99Serial']} ms p99")
        print(f"{args.concurrency} clients: +{result['addedMsP50']} ms p50, "
              f"+{result['addedMsP99']} ms p99 (gateway {result['gatewayMsP50']} / "
              f"{result['gatewayMsP99']} ms, direct {result['directMsP50']} / "
              f"{result['directMsP99']} ms)")
        print(f"throughput: {result['gatewayRequestsPerSecond']} req/s through the gateway, "
              f"{result['directRequestsPerSecond']} req/s direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
