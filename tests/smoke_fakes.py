"""Loopback fakes the smoke test talks to: an OpenAI-compatible streaming server (as vLLM
streams) and a SageMaker runtime that checks SigV4 and answers in AWS's event-stream encoding.

No sleeps: chunks are written as fast as the socket takes them; the tests assert counts, never
timings.
"""

from __future__ import annotations

import binascii
import json
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.gateway_fakes import handler_class


def sse_chunks(model: str, tokens: int, usage: bool) -> list[bytes]:
    """What vLLM's OpenAI server streams: a role-only chunk, one chunk per token, a final
    chunk with finish_reason, a usage chunk when asked for, then [DONE]."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": f"tok{i} "}) for i in range(tokens)]
    out.append(chunk({}, "length"))
    if usage:
        out.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": 20, "completion_tokens": tokens,
                              "total_tokens": 20 + tokens}})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in out] + [b"data: [DONE]\n\n"]


@dataclass
class FakeOpenAI:
    """Answers POST <path> with `tokens` streamed tokens; every `fail_every`-th request (by
    arrival) gets a 503 instead. Records each request's JSON body."""

    path: str
    tokens: int
    fail_every: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return handler_class(self._handle)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        body = json.loads(req.rfile.read(int(req.headers["Content-Length"])))
        with self.lock:
            self.bodies.append(body)
            self.headers.append(dict(req.headers))
            n = len(self.bodies)
        if req.path != self.path:
            _reply(req, 404, b'{"detail": "Not Found"}')
        elif self.fail_every and n % self.fail_every == 0:
            _reply(req, 503, b'{"error": {"message": "no healthy upstream"}}')
        else:
            req.send_response(200)
            req.send_header("Content-Type", "text/event-stream")
            req.send_header("Connection", "close")
            req.end_headers()
            usage = bool(body.get("stream_options", {}).get("include_usage"))
            for piece in sse_chunks(body["model"], self.tokens, usage):
                req.wfile.write(piece)
                req.wfile.flush()
            req.close_connection = True


def _reply(req: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(payload)))
    req.send_header("Connection", "close")
    req.end_headers()
    req.wfile.write(payload)
    req.close_connection = True


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threading HTTP server on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ SageMaker runtime, SigV4


def event_message(payload: bytes, event_type: str = "PayloadPart") -> bytes:
    """One message of AWS's event-stream encoding (application/vnd.amazon.eventstream): prelude
    (total and headers length, CRC32), string headers, payload, message CRC32.
    https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html"""
    headers = b""
    for name, value in ((":message-type", "event"), (":event-type", event_type),
                        (":content-type", "application/octet-stream")):
        headers += (bytes([len(name)]) + name.encode() + b"\x07"
                    + struct.pack(">H", len(value)) + value.encode())
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


@dataclass
class FakeSageMakerRuntime:
    """POST /endpoints/<endpoint>/invocations-response-stream, signed with SigV4 by `secret`
    for service `sagemaker` in `region`, for inference component `component`: streams
    `tokens` OpenAI chunks as JSON lines split across PayloadPart events mid-line."""

    endpoint: str
    component: str
    tokens: int
    access_key: str = "testing"
    secret: str = "testing"
    region: str = "us-east-1"
    calls: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def signature_problem(self, method: str, url: str, headers: dict[str, str],
                          body: bytes) -> str | None:
        """Recompute the SigV4 signature over the headers the client says it signed."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "not SigV4"
        fields = dict(part.strip().split("=", 1) for part in auth[17:].split(","))
        scope = fields["Credential"].split("/")
        if scope[0] != self.access_key or scope[2:] != [self.region, "sagemaker", "aws4_request"]:
            return f"wrong credential scope {fields['Credential']}"
        signed = fields["SignedHeaders"].split(";")
        lower = {k.lower(): v for k, v in headers.items()}
        request = AWSRequest(method=method, url=url, data=body,
                             headers={h: lower[h] for h in signed})
        request.context["timestamp"] = lower["x-amz-date"]
        signer = SigV4Auth(Credentials(self.access_key, self.secret), "sagemaker", self.region)
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        if signer.signature(string_to_sign, request) != fields["Signature"]:
            return "signature mismatch"
        return None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return handler_class(self._handle)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers["Content-Length"]))
        headers = dict(req.headers)
        host = headers.get("Host", "")
        problem = self.signature_problem("POST", f"http://{host}{req.path}", headers,
                                         body)
        if req.path != f"/endpoints/{self.endpoint}/invocations-response-stream":
            problem = problem or f"unexpected path {req.path}"
        if headers.get("X-Amzn-SageMaker-Inference-Component") != self.component:
            problem = problem or "missing inference component header"
        with self.lock:
            if problem:
                self.refused.append(problem)
            else:
                self.calls.append(json.loads(body))
        if problem:
            payload = json.dumps({"message": problem}).encode()
            req.send_response(403)
            req.send_header("x-amzn-ErrorType", "InvalidSignatureException")
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(payload)))
            req.end_headers()
            req.wfile.write(payload)
            return
        lines = b"".join(
            json.dumps({"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]})
            .encode() + b"\n" for i in range(self.tokens))
        lines += json.dumps({"choices": [], "usage": {
            "completion_tokens": self.tokens}}).encode() + b"\n"
        parts = [lines[i:i + 37] for i in range(0, len(lines), 37)]  # splits mid-line
        stream = b"".join(event_message(p) for p in parts)
        req.send_response(200)
        req.send_header("Content-Type", "application/vnd.amazon.eventstream")
        req.send_header("X-Amzn-SageMaker-Content-Type", "application/jsonlines")
        req.send_header("Content-Length", str(len(stream)))
        req.end_headers()
        req.wfile.write(stream)
