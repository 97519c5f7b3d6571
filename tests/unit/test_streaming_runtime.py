"""The streaming runtime loop against a Lambda Runtime API served on 127.0.0.1: the response goes out
chunk by chunk while the handler is still producing it, in the HTTP integration response format
API Gateway streams from (JSON prelude, eight NUL bytes, body); failures are reported."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from handlers.streaming_runtime import PRELUDE_DELIMITER, RuntimeApi, serve


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class FakeRuntimeApi:
    """The Runtime API as Lambda serves it to a runtime: /next hands out queued events."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = list(events)
        self.posted: list[Posted] = []
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
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
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
                        posted.chunks.append((time.monotonic(), self.rfile.read(size)))
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

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()


def test_the_response_streams_while_the_handler_is_still_producing_it() -> None:
    runtime = FakeRuntimeApi([{"httpMethod": "POST", "path": "/harnesses/invoke"}])
    finished: list[float] = []
    seen: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], Iterator[bytes]]:
        seen.append((event, context.aws_request_id, context.get_remaining_time_in_millis()))

        def body() -> Iterator[bytes]:
            for n in range(3):
                yield f"event {n}\n".encode()
                time.sleep(0.3)
            finished.append(time.monotonic())

        return 200, {"Content-Type": "application/vnd.amazon.eventstream"}, body()

    try:
        serve(RuntimeApi(runtime.address), handler, invocations=1)
    finally:
        runtime.close()
    ((event, request_id, remaining),) = seen
    assert event["path"] == "/harnesses/invoke" and request_id == "req-0" and 50_000 < remaining <= 60_000
    (posted,) = runtime.posted
    assert posted.path == "/2018-06-01/runtime/invocation/req-0/response"
    assert posted.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert posted.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    data = b"".join(chunk for _, chunk in posted.chunks)
    prelude, _, body = data.partition(PRELUDE_DELIMITER)
    assert json.loads(prelude) == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/vnd.amazon.eventstream"},
    }
    assert body == b"event 0\nevent 1\nevent 2\n"
    # The first event reached Lambda well before the handler finished: it was not buffered.
    first_event_at = next(at for at, chunk in posted.chunks if chunk == b"event 0\n")
    assert finished[0] - first_event_at > 0.5
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
