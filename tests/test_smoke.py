"""`components.smoke`: statistics on recorded traces (exact answers), the stream reader, and runs
against loopback fakes: OpenAI-compatible servers and a SageMaker runtime that checks SigV4."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.sizing import decode_tokens_per_second_upper_bound
from components.smoke.clients import ChunkReader, Target, send_sagemaker
from components.smoke.runner import bounds, main
from components.smoke.stats import Summary, Trace, decode_rate, gaps, percentile, summarize, ttft
from components.smoke.targets import OutputsError, chat_url, targets
from tests.preflight_world import session, stack_config
from tests.smoke_fakes import FakeOpenAI, FakeSageMakerRuntime, serve

# Recorded traces; times are binary fractions so sums and differences are exact.
FAST = Trace(start=0.0, chunks=(0.5, 0.625, 0.75, 1.0), end=1.0, usage_tokens=4)
SLOW = Trace(start=0.25, chunks=(1.25, 1.5, 1.75), end=2.0)              # no usage: 3 chunks
BATCHED = Trace(start=0.0, chunks=(0.25, 0.75), end=0.75, usage_tokens=9)  # 4-5 tokens a chunk
FAILED = Trace(start=0.5, chunks=(), end=0.75, error="HTTP 503: no healthy upstream")


def test_per_trace_figures():
    assert ttft(FAST) == 0.5
    assert gaps(FAST) == [0.125, 0.125, 0.25]
    assert decode_rate(FAST) == 6.0            # 3 tokens after the first, in 0.5 s
    assert ttft(SLOW) == 1.0
    assert decode_rate(SLOW) == 4.0            # 2 chunk-counted tokens in 0.5 s
    assert decode_rate(BATCHED) == 16.0        # usage says 9 tokens: 8 after the first in 0.5 s
    assert ttft(FAILED) is None
    assert decode_rate(Trace(0.0, (0.5,), 0.5, 1)) is None


def test_percentiles_interpolate_between_closest_ranks():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8, abs=1e-12)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_summary_of_a_run_with_one_failure():
    summary = summarize([FAST, SLOW, FAILED])
    assert summary == Summary(
        requests=3, errors=1, output_tokens=7,
        ttft_p50=0.75, ttft_p95=pytest.approx(0.975, abs=1e-12),
        itl_p50=0.25, itl_p95=0.25,            # pooled gaps: .125 .125 .25 .25 .25
        tokens_per_second=3.5,                 # 7 tokens over 0.0 .. 2.0 s
        decode_rate_p50=5.0, wall_seconds=2.0,
    )


def test_summary_of_only_failures_has_no_rates():
    summary = summarize([FAILED, FAILED])
    assert (summary.errors, summary.output_tokens, summary.ttft_p50,
            summary.tokens_per_second) == (2, 0, None, None)


# ---------------------------------------------------------------------------- stream reading


def test_sse_split_anywhere_counts_text_chunks_and_reads_usage():
    ticks = iter(range(1, 100))
    reader = ChunkReader(lambda: float(next(ticks)))
    stream = (b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
              b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
              b': keep-alive\n\n'
              b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
              b'data: {"choices":[],"usage":{"completion_tokens":2}}\n\n'
              b'data: [DONE]\n\n')
    for i in range(0, len(stream), 7):
        reader.feed(stream[i:i + 7])
    reader.close()
    trace = reader.trace(0.0, 9.0)
    assert trace.chunks == (2.0, 3.0)          # the role-only chunk is not output text
    assert (trace.usage_tokens, trace.error, reader.done) == (2, None, True)


def test_json_lines_and_mid_stream_errors():
    reader = ChunkReader(lambda: 1.0)
    reader.feed(b'{"choices":[{"delta":{"content":"a"}}]}\n{"error":{"message":"CUDA OOM"}}\n')
    assert reader.trace(0.0, 1.0).error == 'stream error: {"message": "CUDA OOM"}'
    empty = ChunkReader(lambda: 1.0)
    empty.feed(b"data: [DONE]\n")
    assert empty.trace(0.0, 1.0).error == "the stream carried no output text"


def test_chat_url_accepts_base_or_full_urls():
    assert chat_url("http://alb/llama-8b/v1") == "http://alb/llama-8b/v1/chat/completions"
    assert chat_url("http://localhost:8080/") == "http://localhost:8080/v1/chat/completions"
    full = "http://m.ns.svc.cluster.local:8000/v1/chat/completions"
    assert chat_url(full) == full


# --------------------------------------------------------------------- runs against the fakes


def ecs_two_models(tmp_path: Path) -> Any:
    model = {"modelId": "Qwen/Qwen2.5-7B-Instruct", "instanceType": "g6e.xlarge",
             "gpusPerReplica": 1, "maxInputTokens": 3072, "maxTotalTokens": 4096,
             "minReplicas": 1, "maxReplicas": 2}
    return stack_config(tmp_path, "staging", {
        "aws:region": "us-east-1", "llm-hosting:environment": "staging",
        "llm-hosting:platform": "ecs",
        "llm-hosting:models": [{"name": "qwen-a", **model}, {"name": "qwen-b", **model}]})


def test_smoke_against_two_fake_servers_counts_requests_tokens_and_errors(tmp_path, capsys):
    config = ecs_two_models(tmp_path)
    healthy = FakeOpenAI("/qwen-a/v1/chat/completions", tokens=5)
    flaky = FakeOpenAI("/qwen-b/v1/chat/completions", tokens=3, fail_every=4)
    with serve(healthy.handler()) as a, serve(flaky.handler()) as b:
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps({"platform": "ecs", "endpoints": {
            "qwen-a": f"{a}/qwen-a/v1", "qwen-b": f"{b}/qwen-b/v1"}}))
        code = main(["--stack", "staging", "--dir", str(tmp_path), "--outputs", str(outputs),
                     "--requests", "8", "--concurrency", "3", "--max-tokens", "5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1                                   # qwen-b lost 2 of 8 requests
    assert (len(healthy.bodies), len(flaky.bodies)) == (8, 8)
    assert {b["model"] for b in healthy.bodies} == {"Qwen/Qwen2.5-7B-Instruct"}
    assert all(b["stream"] and b["stream_options"] == {"include_usage": True}
               and b["max_tokens"] == 5 for b in healthy.bodies + flaky.bodies)
    a_run, b_run = report["models"]
    assert (a_run["model"], a_run["summary"]["requests"], a_run["summary"]["errors"],
            a_run["summary"]["output_tokens"]) == ("qwen-a", 8, 0, 40)
    assert (b_run["model"], b_run["summary"]["requests"], b_run["summary"]["errors"],
            b_run["summary"]["output_tokens"]) == ("qwen-b", 8, 2, 18)
    assert b_run["error_samples"] == {
        'HTTP 503: {"error": {"message": "no healthy upstream"}}': 2}
    model = config.models[0]
    assert a_run["bounds"] == {
        "roofline_tokens_per_second": decode_tokens_per_second_upper_bound(model.request,
                                                                           model.instance),
        "kv_sequences": model.memory.max_concurrent_sequences, "replicas": 1}


def test_all_answered_exits_0_and_prints_the_table(tmp_path, capsys):
    ecs_two_models(tmp_path)
    fake = FakeOpenAI("/v1/chat/completions", tokens=4)
    with serve(fake.handler()) as url:
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps({"endpoints": {}}))
        code = main(["--stack", "staging", "--dir", str(tmp_path), "--outputs", str(outputs),
                     "--requests", "2", "--concurrency", "2",
                     "--url", f"qwen-a={url}/v1", "--url", f"qwen-b={url}"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(fake.bodies) == 4
    assert out[2].split()[:2] == ["model", "via"]
    # No endpoints in the outputs: the override alone says where each model answers.
    assert [line.split()[:6] for line in out[4:6]] == [
        ["qwen-a", "engine", "via", "--url", "2", "0"],
        ["qwen-b", "engine", "via", "--url", "2", "0"]]


def test_missing_outputs_exit_2(tmp_path, capsys):
    ecs_two_models(tmp_path)
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}")
    assert main(["--stack", "staging", "--dir", str(tmp_path), "--outputs", str(outputs)]) == 2
    assert capsys.readouterr().err == (
        "smoke: outputs lack endpoints.qwen-a: is the stack deployed (`pulumi up`)?\n")


def test_kv_and_roofline_notes_compare_plan_and_reality(tmp_path):
    from components.smoke.runner import notes

    model = ecs_two_models(tmp_path).models[0]
    bound = bounds(model)
    over = Summary(8, 0, 100, 0.1, 0.1, 0.01, 0.01, bound.roofline_tokens_per_second * 2,
                   50.0, 1.0)
    assert notes(over, bound, bound.kv_sequences + 1) == [
        f"{over.tokens_per_second:.0f} tok/s is above the roofline bound "
        f"({bound.roofline_tokens_per_second:.0f} for 1 replica(s)): the sizing model "
        "understates this hardware",
        f"concurrency {bound.kv_sequences + 1} exceeds the {bound.kv_sequences} full-length "
        "sequences the KV cache admits: requests may queue (TTFT grows)"]
    assert notes(over.__class__(8, 0, 1, 0.1, 0.1, 0.01, 0.01, 1.0, 1.0, 1.0), bound,
                 bound.kv_sequences) == []


# ---------------------------------------------------------------------- gateway and SageMaker


def test_gateway_takes_every_model_with_the_key_from_secrets_manager(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_HOSTING_GATEWAY_KEY", raising=False)
    config = ecs_two_models(tmp_path)

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            assert SecretId == "arn:aws:secretsmanager:us-east-1:123456789012:secret:gw-Ab12Cd"
            return {"SecretString": "sk-master"}

    found = targets(config, {"gatewayUrl": "http://gw.internal", "gatewayKeySecretArn":
                             "arn:aws:secretsmanager:us-east-1:123456789012:secret:gw-Ab12Cd",
                             "endpoints": {}}, {}, secrets=Secrets)
    assert [(t.name, t.via, t.url, t.model, dict(t.headers)) for t in found] == [
        (name, "gateway", "http://gw.internal/v1/chat/completions", name,
         {"Authorization": "Bearer sk-master"}) for name in ("qwen-a", "qwen-b")]


def test_gateway_without_a_key_is_an_outputs_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_HOSTING_GATEWAY_KEY", raising=False)
    with pytest.raises(OutputsError, match="set LLM_HOSTING_GATEWAY_KEY"):
        targets(ecs_two_models(tmp_path), {"gatewayUrl": "http://gw"}, {})


def sagemaker_config(tmp_path: Path) -> Any:
    return stack_config(tmp_path, "dev", {
        "aws:region": "us-east-1", "llm-hosting:environment": "dev",
        "llm-hosting:platform": "sagemaker",
        "llm-hosting:models": [{"name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct",
                                "instanceType": "g5.2xlarge", "gpusPerReplica": 1,
                                "maxInputTokens": 3072, "maxTotalTokens": 4096}]})


def runtime_client(url: str, secret: str = "testing") -> Any:
    return session().client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
                            aws_access_key_id="testing", aws_secret_access_key=secret)


def test_sagemaker_runtime_path_signs_with_sigv4_and_reads_the_event_stream(tmp_path):
    config = sagemaker_config(tmp_path)
    (target,) = targets(config, {"endpointName": "llm-hosting-dev-endpoint",
                                 "inferenceComponentNames": {"qwen-7b": "llm-hosting-dev-qwen-7b"}},
                        {})
    assert (target.kind, target.endpoint_name, target.component_name) == (
        "sagemaker", "llm-hosting-dev-endpoint", "llm-hosting-dev-qwen-7b")
    fake = FakeSageMakerRuntime("llm-hosting-dev-endpoint", "llm-hosting-dev-qwen-7b", tokens=6)
    with serve(fake.handler()) as url:
        trace = send_sagemaker(target, runtime_client(url), max_tokens=6)
    assert fake.refused == []
    assert (len(trace.chunks), trace.usage_tokens, trace.error) == (6, 6, None)
    assert fake.calls[0]["stream"] is True and "model" not in fake.calls[0]


def test_sagemaker_fake_refuses_a_wrong_signature(tmp_path):
    fake = FakeSageMakerRuntime("ep", "ic", tokens=2)
    target = Target("m", "sagemaker", "sagemaker-runtime", endpoint_name="ep",
                    component_name="ic")
    with serve(fake.handler()) as url:
        trace = send_sagemaker(target, runtime_client(url, secret="not-the-secret"), 2)
    assert fake.refused == ["signature mismatch"]
    assert trace.error is not None and "InvalidSignatureException" in trace.error


def test_outputs_come_from_the_pulumi_cli(tmp_path, monkeypatch):
    """A stand-in `pulumi` on PATH records how it is called and prints outputs."""
    from components.smoke.targets import read_outputs

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv"
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$PWD $*" > {log}\n'
                      'echo \'{"endpoints": {"qwen-a": "http://alb/qwen-a/v1"}}\'\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert read_outputs("staging", tmp_path) == {"endpoints": {"qwen-a": "http://alb/qwen-a/v1"}}
    assert log.read_text().split() == [str(tmp_path), "stack", "output", "--json",
                                       "--show-secrets", "--stack", "staging"]
