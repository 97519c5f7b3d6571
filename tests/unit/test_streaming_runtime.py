"""The streaming runtime loop against a Lambda Runtime API served on 127.0.0.1: the response goes out
chunk by chunk while the handler is still producing it, in the HTTP integration response format
API Gateway streams from (JSON prelude, eight NUL bytes, body); failures are reported."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime_api.streaming import PRELUDE_DELIMITER, RuntimeApi, serve

#: Epoch seconds on the runtime's clock in these tests, and the deadline the fake API hands out.
NOW = 1_700_000_000.0
DEADLINE_MS = int(NOW * 1000) + 60_000
#: How long a test waits for something that happens at once unless the runtime is broken.
PATIENCE_SECONDS = 30


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class FakeRuntimeApi:
    """The Runtime API as Lambda serves it to a runtime: /next hands out queued events.
    ``arrived(chunk)`` is an event set once a streamed response has brought that chunk."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = list(events)
        self.posted: list[Posted] = []
        self._awaited: dict[bytes, threading.Event] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                event = fake.events.pop(0)
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", f"req-{len(fake.events)}")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(DEADLINE_MS))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:eu-west-1:123456789012:function:AgentHarness-InvokeStream",
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                posted = Posted(self.path, {k.lower(): v for k, v in self.headers.items()})
                if posted.headers.get("transfer-encoding") == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            break
                        chunk = self.rfile.read(size)
                        posted.chunks.append(chunk)
                        fake.arrived(chunk).set()
                        self.rfile.readline()
                    while (line := self.rfile.readline().strip()) != b"":
                        name, _, value = line.decode().partition(": ")
                        posted.trailers[name.lower()] = value
                else:
                    posted.body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.posted.append(posted)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def arrived(self, chunk: bytes) -> threading.Event:
        return self._awaited.setdefault(chunk, threading.Event())

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()


def test_the_response_streams_while_the_handler_is_still_producing_it() -> None:
    runtime = FakeRuntimeApi([{"httpMethod": "POST", "path": "/harnesses/invoke"}])
    first_event_arrived = runtime.arrived(b"event 0\n")
    happenings: list[str] = []
    seen: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], Iterator[bytes]]:
        seen.append((event, context.aws_request_id, context.get_remaining_time_in_millis()))

        def body() -> Iterator[bytes]:
            yield b"event 0\n"
            # The handler goes on only once Lambda has the first event: a runtime that buffered the
            # response until the handler finished would leave it waiting here in vain.
            if first_event_arrived.wait(PATIENCE_SECONDS):
                happenings.append("Lambda had the first event")
            yield b"event 1\n"
            yield b"event 2\n"
            happenings.append("the handler finished")

        return 200, {"Content-Type": "application/vnd.amazon.eventstream"}, body()

    try:
        serve(RuntimeApi(runtime.address, clock=lambda: NOW), handler, invocations=1)
    finally:
        runtime.close()
    ((event, request_id, remaining),) = seen
    assert event["path"] == "/harnesses/invoke" and request_id == "req-0" and remaining == 60_000
    (posted,) = runtime.posted
    assert posted.path == "/2018-06-01/runtime/invocation/req-0/response"
    assert posted.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert posted.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    data = b"".join(posted.chunks)
    prelude, _, body = data.partition(PRELUDE_DELIMITER)
    assert json.loads(prelude) == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/vnd.amazon.eventstream"},
    }
    assert body == b"event 0\nevent 1\nevent 2\n"
    # The first event reached Lambda before the handler finished: it was not buffered.
    assert happenings == ["Lambda had the first event", "the handler finished"]
    assert posted.trailers == {}


def test_a_failure_midway_is_reported_in_the_trailers_and_one_before_through_error() -> None:
    runtime = FakeRuntimeApi([{"n": 1}, {"n": 2}])
    secret = "postgres://user:hunter2@db"

    def handler(event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], Iterator[bytes]]:
        if event["n"] == 2:
            raise ValueError(secret)

        def body() -> Iterator[bytes]:
            yield b"partial"
            raise ConnectionError(secret)

        return 200, {}, body()

    try:
        serve(RuntimeApi(runtime.address), handler, invocations=2)
    finally:
        runtime.close()
    streamed, failed = runtime.posted
    assert streamed.trailers["lambda-runtime-function-error-type"] == "Runtime.StreamError"
    detail = json.loads(base64.b64decode(streamed.trailers["lambda-runtime-function-error-body"]))
    assert detail["errorType"] == "ConnectionError"
    assert failed.path == "/2018-06-01/runtime/invocation/req-0/error"
    assert json.loads(failed.body)["errorType"] == "ValueError"
    assert secret not in json.dumps([streamed.trailers, failed.body.decode()])
