"""Send one streamed chat completion and record its timestamps (`stats.Trace`).

Two wire formats, both OpenAI chat-completion chunks:
* OpenAI-compatible HTTP (vLLM and TGI on EKS/ECS, the gateway): `POST .../chat/completions`
  with `"stream": true`; Server-Sent Events, one `data: {chunk}` per line, `data: [DONE]` last.
  `stream_options.include_usage` asks for a final chunk with `usage` (vLLM, LiteLLM and TGI
  honour it), which gives the exact output token count.
  https://platform.openai.com/docs/api-reference/chat/streaming
* SageMaker runtime `InvokeEndpointWithResponseStream` with the inference component's name,
  signed with SigV4 by boto3; the container streams the same chunks inside `PayloadPart`
  events, as JSON lines (LMI) or SSE lines (TGI's Messages API), split anywhere.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointWithResponseStream.html

Only the standard library for HTTP (no client package to pin); a request never raises: every
failure becomes a `Trace` with `error` set, counted by the report.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.smoke.stats import Trace

Clock = Callable[[], float]
PROMPT = ("Explain in about 150 words why GPU memory bandwidth limits how fast a large "
          "language model generates tokens.")


@dataclass(frozen=True)
class Target:
    """Where one model is called. `kind` "openai": `url` is the full chat-completions URL and
    `model` the `model` field; "sagemaker": endpoint and inference component names."""

    name: str
    kind: str
    via: str
    url: str = ""
    model: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    endpoint_name: str = ""
    component_name: str = ""


def request_body(target: Target, max_tokens: int, ignore_eos: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if target.kind == "openai":
        body["model"] = target.model
    if ignore_eos:  # vLLM's extension: every request generates exactly max_tokens
        body["ignore_eos"] = True
    return body


class ChunkReader:
    """Turns streamed bytes into text-chunk timestamps and the final usage; accepts SSE
    (`data: ...`) and JSON lines, and lines split across reads or events."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.chunks: list[float] = []
        self.usage: int | None = None
        self.error: str | None = None
        self.done = False
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._line(line.strip())

    def close(self) -> None:
        if self._buffer.strip():
            self._line(self._buffer.strip())
        self._buffer = b""

    def _line(self, line: bytes) -> None:
        if not line or line.startswith(b":"):
            return
        if line.startswith(b"data:"):
            line = line[5:].strip()
        elif line.startswith((b"event:", b"id:", b"retry:")):
            return
        if line == b"[DONE]":
            self.done = True
            return
        now = self.clock()
        try:
            chunk = json.loads(line)
        except json.JSONDecodeError:
            self.error = f"not a JSON chunk: {line[:80]!r}"
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:  # vLLM/LiteLLM report mid-stream failures this way
            self.error = f"stream error: {json.dumps(chunk['error'])[:200]}"
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage = usage["completion_tokens"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content"):
                self.chunks.append(now)
                break

    def trace(self, start: float, end: float) -> Trace:
        error = self.error
        if error is None and not self.chunks:
            error = "the stream carried no output text"
        return Trace(start, tuple(self.chunks), end, self.usage, error)


def send_openai(target: Target, max_tokens: int, timeout: float, clock: Clock = time.perf_counter,
                ignore_eos: bool = False) -> Trace:
    url = urllib.parse.urlsplit(target.url)
    body = json.dumps(request_body(target, max_tokens, ignore_eos)).encode()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
               **target.headers}
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    reader = ChunkReader(clock)
    start = clock()
    conn = cls(url.hostname or "", url.port, timeout=timeout)
    try:
        path = url.path + (f"?{url.query}" if url.query else "")
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            text = response.read(300).decode(errors="replace").strip()
            return Trace(start, (), clock(), None, f"HTTP {response.status}: {text}")
        while True:
            line = response.readline()
            if not line:
                break
            reader.feed(line)
            if reader.done:
                break
        reader.close()
    except (OSError, http.client.HTTPException) as exc:
        return Trace(start, tuple(reader.chunks), clock(), reader.usage,
                     f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
    return reader.trace(start, clock())


def send_sagemaker(target: Target, runtime: Any, max_tokens: int,
                   clock: Clock = time.perf_counter, ignore_eos: bool = False) -> Trace:
    """`runtime`: a boto3 `sagemaker-runtime` client (thread-safe, made once per run)."""
    from botocore.exceptions import BotoCoreError, ClientError

    body = json.dumps(request_body(target, max_tokens, ignore_eos))
    reader = ChunkReader(clock)
    start = clock()
    try:
        response = runtime.invoke_endpoint_with_response_stream(
            EndpointName=target.endpoint_name, InferenceComponentName=target.component_name,
            ContentType="application/json", Accept="application/json", Body=body)
        events: Iterable[Mapping[str, Any]] = response["Body"]
        for event in events:
            if "PayloadPart" in event:
                reader.feed(event["PayloadPart"]["Bytes"])
            else:  # ModelStreamError / InternalStreamFailure
                kind, detail = next(iter(event.items()))
                reader.error = f"{kind}: {detail.get('Message', detail)}"
                break
        reader.close()
    except (BotoCoreError, ClientError) as exc:
        return Trace(start, tuple(reader.chunks), clock(), reader.usage,
                     f"{type(exc).__name__}: {exc}")
    return reader.trace(start, clock())
