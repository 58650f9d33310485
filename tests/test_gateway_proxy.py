"""The real gateway process (LiteLLM proxy + our hooks) with the config the program generates,
its backends rewritten to loopback fakes (tests/gateway_fakes.py).

The proxy starts once for the module (~10 s). Each test owns its models, so they do not share
circuit or hold state. Windows (cooldown, probe interval, wait bound, how long a backend answers
503) are parameters below, kept short so the module runs in seconds; assertions are on what
clients and backends saw, never on how long anything took.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.gateway import config as gw
from components.platforms import parse_config
from tests.gateway_fakes import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    FakeEngine,
    FakeSageMakerRuntime,
    free_port,
)

FAILURES = 3
COOLDOWN_SECONDS = 3
PROBE_INTERVAL_SECONDS = 0.3
WAIT_BOUND_SECONDS = 3
UNAVAILABLE_SECONDS = 1.5
"""Shorter than the wait bound: held requests must all be answered."""
STARTUP_LIMIT_SECONDS = 90
MASTER_KEY = "sk-llm-hosting-test"
ENDPOINT, COMPONENT = "llm-hosting-test-endpoint", "llm-hosting-test-sm"

MODELS = {
    # name: (minReplicas, fallbacks)
    "down": (1, ["rescue"]),
    "rescue": (1, []),
    "flaky": (1, ["spare"]),
    "spare": (1, []),
    "sleepy": (0, []),
    "asleep": (1, []),
    "streamer": (1, []),
    "sm": (1, []),
}


def stack_config() -> Any:
    models = [{"name": name, "modelId": "Qwen/Qwen2.5-7B-Instruct", "minReplicas": mn,
               "maxReplicas": 2, "fallbacks": fb} for name, (mn, fb) in MODELS.items()]
    raw = {
        "aws:region": TEST_REGION,
        "llm-hosting:environment": "staging",
        "llm-hosting:platform": "eks",
        "llm-hosting:models": json.dumps(models),
        "llm-hosting:gateway": json.dumps({"circuitBreaker": {
            "failures": FAILURES, "cooldownSeconds": COOLDOWN_SECONDS}}),
    }
    return parse_config(raw, project="llm-hosting", stack="test")


@dataclass
class Gateway:
    url: str
    metrics_url: str
    engines: dict[str, FakeEngine]
    sagemaker: FakeSageMakerRuntime

    def chat(self, model: str, *, stream: bool = False) -> tuple[int, dict[str, str], str]:
        body = json.dumps({"model": model, "stream": stream, "max_tokens": 8,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions", data=body, method="POST",
            headers={"Authorization": f"Bearer {MASTER_KEY}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode()

    def answer(self, model: str) -> str:
        status, _, body = self.chat(model)
        assert status == 200, body
        return str(json.loads(body)["choices"][0]["message"]["content"])

    def metric(self, name: str, **labels: str) -> float:
        text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            if line.startswith(f"{name}{{{want}}} "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    engines = {name: FakeEngine(name) for name in MODELS if name not in ("down", "sm")}
    sagemaker = FakeSageMakerRuntime(ENDPOINT, COMPONENT, answer="sm")
    plan = gw.gateway_plan(stack_config())
    plan = dataclasses.replace(plan, routes=tuple(
        dataclasses.replace(r, wait_bound_seconds=WAIT_BOUND_SECONDS, retry_after_seconds=7)
        for r in plan.routes))
    backends: dict[str, dict[str, Any]] = {
        name: gw.openai_backend(plan.route(name), engine.api_base)
        for name, engine in engines.items()}
    backends["down"] = gw.openai_backend(plan.route("down"),
                                         f"http://127.0.0.1:{free_port()}/v1")
    backends["sm"] = {**gw.sagemaker_backend(ENDPOINT, COMPONENT, TEST_REGION),
                      "sagemaker_base_url": sagemaker.base_url()}
    metrics_port = free_port()
    config = gw.litellm_config(plan, backends, metrics_port=metrics_port)
    config[gw.SETTINGS_KEY]["probe"]["interval_seconds"] = PROBE_INTERVAL_SECONDS

    folder = tmp_path_factory.mktemp("gateway")
    for filename, text in gw.bundle(gw.render(config)).items():
        (folder / filename).write_text(text)
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           gw.MASTER_KEY_ENV: MASTER_KEY, "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY, "AWS_REGION": TEST_REGION,
           "AWS_DEFAULT_REGION": TEST_REGION, "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    args = gw.proxy_args(str(folder))
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    logfile = (folder / "proxy.log").open("w")
    proxy = subprocess.Popen([str(Path(sys.executable).with_name("litellm")), *args],
                             cwd=folder, env=env, stdout=logfile, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while True:
        try:
            urllib.request.urlopen(f"{url}{gw.HEALTH_PATH}", timeout=2)
            break
        except OSError:
            if proxy.poll() is not None or time.monotonic() > deadline:
                proxy.kill()
                pytest.fail("gateway did not start:\n"
                            + (folder / "proxy.log").read_text()[-4000:])
            time.sleep(0.2)
    try:
        yield Gateway(url, f"http://127.0.0.1:{metrics_port}/metrics", engines, sagemaker)
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proxy.kill()
        logfile.close()
        for engine in engines.values():
            engine.close()
        sagemaker.close()


def parallel(calls: int, fn: Any) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(calls) as pool:
        return list(pool.map(lambda _: fn(), range(calls)))


def test_primary_down_every_request_is_answered_by_the_fallback(gateway: Gateway) -> None:
    answers = [gateway.answer("down") for _ in range(6)]
    assert answers == ["rescue"] * 6
    assert gateway.metric("llm_gateway_fallbacks_total", model="down") == 6
    assert gateway.metric("llm_gateway_requests_total", model="down") == 6


def test_circuit_opens_after_n_failures_skips_the_backend_then_tries_it_again(
        gateway: Gateway) -> None:
    flaky = gateway.engines["flaky"]
    flaky.fail()
    assert [gateway.answer("flaky") for _ in range(FAILURES)] == ["spare"] * FAILURES
    assert flaky.hits == FAILURES
    assert gateway.metric("llm_gateway_circuit_state", backend="flaky") == 1  # open

    # Open: requests go straight to the fallback; the broken backend sees none of them.
    assert [gateway.answer("flaky") for _ in range(3)] == ["spare"] * 3
    assert flaky.hits == FAILURES

    # After the cooldown one trial request reaches it; healthy again, it serves from then on.
    flaky.heal()
    answers: list[str] = []
    for _ in range(int(COOLDOWN_SECONDS / 0.25) * 4):
        answers.append(gateway.answer("flaky"))
        if answers[-1] == "flaky":
            break
        time.sleep(0.25)
    assert answers[-1] == "flaky" and set(answers[:-1]) <= {"spare"}
    assert flaky.hits == FAILURES + 1
    assert gateway.answer("flaky") == "flaky"
    assert gateway.metric("llm_gateway_circuit_state", backend="flaky") == 0  # closed


def test_backend_answering_503_for_a_while_every_held_request_succeeds(gateway: Gateway) -> None:
    sleepy = gateway.engines["sleepy"]
    sleepy.unavailable_for(UNAVAILABLE_SECONDS)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(gateway.chat, "sleepy") for _ in range(6)]
        waiting_seen = 0.0
        for _ in range(40):  # the waiting-requests gauge autoscalers read, while they wait
            waiting_seen = max(waiting_seen,
                               gateway.metric("llm_gateway_requests_waiting", model="sleepy"))
            if waiting_seen or all(f.done() for f in futures):
                break
            time.sleep(0.05)
        results = [f.result() for f in futures]
    assert [status for status, _, _ in results] == [200] * 6
    assert {json.loads(body)["choices"][0]["message"]["content"] for _, _, body in results} == {
        "sleepy"}
    assert waiting_seen >= 1
    assert gateway.metric("llm_gateway_hold_timeouts_total", model="sleepy") == 0
    assert gateway.metric("llm_gateway_hold_seconds_count", model="sleepy") >= 1


def test_past_the_wait_bound_the_client_gets_503_with_retry_after(gateway: Gateway) -> None:
    gateway.engines["asleep"].unavailable_for(600)
    results = parallel(3, lambda: gateway.chat("asleep"))
    assert [status for status, _, _ in results] == [503] * 3
    assert {headers.get("retry-after") or headers.get("Retry-After")
            for _, headers, _ in results} == {"7"}
    assert gateway.metric("llm_gateway_hold_timeouts_total", model="asleep") == 3


def test_streaming_passes_through(gateway: Gateway) -> None:
    status, headers, body = gateway.chat("streamer", stream=True)
    assert status == 200
    assert headers.get("content-type", headers.get("Content-Type", "")).startswith(
        "text/event-stream")
    events = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]]
    assert len([p for p in pieces if p]) >= 3
    assert "".join(pieces) == "streamed by streamer"


def test_sagemaker_backend_gets_a_sigv4_signed_request_for_its_inference_component(
        gateway: Gateway) -> None:
    assert gateway.answer("sm") == "sm"
    assert gateway.sagemaker.rejected == []
    (sent,) = gateway.sagemaker.accepted
    assert sent["messages"] == [{"role": "user", "content": "hello"}]
