"""Loopback backends for the gateway tests: an OpenAI-compatible engine that can be told to fail,
stall or answer 503 for a while, and a SageMaker Runtime that checks AWS's wire format.

Both are `http.server` threads on 127.0.0.1 with an ephemeral port; nothing leaves the host.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TEST_ACCESS_KEY = "AKIDLLMHOSTINGTEST"
TEST_SECRET_KEY = "llm-hosting-loopback-secret"
TEST_REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def completion(text: str, model: str = "fake") -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def chunks(words: list[str], model: str = "fake") -> Iterator[bytes]:
    for i, word in enumerate(words):
        delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
        yield (b"data: " + json.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }).encode() + b"\n\n")
    yield b"data: [DONE]\n\n"


def handler_class(handle: Callable[[BaseHTTPRequestHandler], None]
                  ) -> type[BaseHTTPRequestHandler]:
    """A quiet HTTP/1.1 request handler that passes every GET and POST to `handle` (the
    gateway's and the smoke test's fakes)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            handle(self)

        def do_GET(self) -> None:
            handle(self)

        def log_message(self, *args: Any) -> None:
            return

    return Handler


class _Server:
    """A threaded HTTP server on 127.0.0.1 whose handler calls `self.handle(request)`."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class(self.handle))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.lock = threading.Lock()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def send_json(req: BaseHTTPRequestHandler, status: int, body: Any,
                  headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(data)


class FakeEngine(_Server):
    """`POST /v1/chat/completions` answering as `name`, or failing as told:

    * `fail()`: 500 on every request;
    * `unavailable_for(seconds)`: 503 until then (an ALB with no healthy target), then answers;
    * `stall(seconds)`: waits that long before answering (a hung backend);
    * `heal()`: answers again.
    `hits` counts the chat requests that reached it (probes included).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self._fail = False
        self._until = 0.0
        self._stall = 0.0
        super().__init__()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail(self) -> None:
        self._fail, self._until = True, 0.0

    def unavailable_for(self, seconds: float) -> None:
        self._fail, self._until = False, time.monotonic() + seconds

    def stall(self, seconds: float) -> None:
        self._stall = seconds

    def heal(self) -> None:
        self._fail, self._until, self._stall = False, 0.0, 0.0

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        if req.command == "GET":
            self.send_json(req, 200, {"object": "list", "data": [{"id": self.name}]})
            return
        length = int(req.headers.get("Content-Length") or 0)
        body = json.loads(req.rfile.read(length) or b"{}")
        with self.lock:
            self.hits += 1
        if self._stall:
            time.sleep(self._stall)
        if self._fail:
            self.send_json(req, 500, {"error": {"message": f"{self.name} is broken"}})
            return
        if time.monotonic() < self._until:
            self.send_json(req, 503, {"error": {"message": f"{self.name}: no healthy target"}})
            return
        if body.get("stream"):
            req.send_response(200)
            req.send_header("Content-Type", "text/event-stream")
            req.send_header("Transfer-Encoding", "chunked")
            req.end_headers()
            for part in chunks(["streamed ", "by ", self.name]):
                req.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                req.wfile.flush()
            req.wfile.write(b"0\r\n\r\n")
            return
        self.send_json(req, 200, completion(self.name, str(body.get("model"))))


class FakeSageMakerRuntime(_Server):
    """`POST /endpoints/<endpoint>/invocations` as SageMaker Runtime takes it from the gateway.

    Accepts a request only if it carries a SigV4 `Authorization` header for service
    `sagemaker`, signed with the test credentials, whose signature botocore recomputes to the
    same value over the received method, path, signed headers and body; and if the
    `X-Amzn-SageMaker-Inference-Component` header names the expected component. Anything else
    gets SageMaker's 4xx error shape. `accepted` / `rejected` record what arrived.
    """

    def __init__(self, endpoint: str, component: str, answer: str) -> None:
        self.endpoint, self.component, self.answer = endpoint, component, answer
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        super().__init__()

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/endpoints/{self.endpoint}/invocations"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length)
        problem = self._check(req, raw)
        if problem is not None:
            with self.lock:
                self.rejected.append(problem)
            self.send_json(req, 403, {"message": problem},
                           {"x-amzn-ErrorType": "InvalidSignatureException"})
            return
        with self.lock:
            self.accepted.append(json.loads(raw))
        self.send_json(req, 200, completion(self.answer))

    def _check(self, req: BaseHTTPRequestHandler, raw: bytes) -> str | None:
        if urlsplit(req.path).path != f"/endpoints/{self.endpoint}/invocations":
            return f"wrong path {req.path}"
        if req.headers.get("X-Amzn-SageMaker-Inference-Component") != self.component:
            return "missing or wrong X-Amzn-SageMaker-Inference-Component header"
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "not SigV4"
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):]
                      .split(","))
        scope = fields["Credential"].split("/")
        if scope[0] != TEST_ACCESS_KEY or scope[2:] != [TEST_REGION, "sagemaker",
                                                         "aws4_request"]:
            return f"wrong credential scope {fields['Credential']}"
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return f"host and x-amz-date must be signed: {signed}"
        headers = {h: req.headers[h] for h in signed if req.headers.get(h) is not None}
        request = AWSRequest(method=req.command, url=f"http://{req.headers['host']}{req.path}",
                             data=raw, headers=headers)
        request.context["timestamp"] = req.headers["x-amz-date"]
        signer = SigV4Auth(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "sagemaker",
                           TEST_REGION)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if expected != fields["Signature"]:
            return "signature does not match"
        return None
