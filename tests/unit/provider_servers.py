"""Fake model servers for the provider tests: a real HTTP server on 127.0.0.1 that records each
request and answers with a scripted reply, streamed chunk by chunk the way the providers' public
wire formats stream (Server-Sent Events).

- OpenAI Chat Completions: ``data: {chat.completion.chunk}`` events ending with ``data: [DONE]``.
- OpenAI Responses: ``event: <type>`` + ``data: {event}`` pairs.
- Gemini ``streamGenerateContent?alt=sse``: ``data: {GenerateContentResponse}`` events.

A reply can hold back its later chunks until the test opens a gate (to prove that a provider
yields each delta as it arrives), or hang before answering (to exercise client timeouts).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    chunks: list[bytes] = field(default_factory=list)
    content_type: str = "text/event-stream"
    gate_after: int | None = None  # hold the chunks after this many until ``gate`` is set
    gate: threading.Event = field(default_factory=threading.Event)
    hang_seconds: float = 0.0  # wait this long before answering at all


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.sent_at: list[float] = []
        self.gate_opened_by_timeout = False
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                server.requests.append(
                    Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                reply = server.replies.pop(0) if server.replies else Reply(status=500, chunks=[b"{}"])
                if reply.hang_seconds:
                    server._stop.wait(reply.hang_seconds)
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Connection", "close")
                if reply.status != 200 or reply.content_type == "application/json":
                    payload = b"".join(reply.chunks)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for index, chunk in enumerate(reply.chunks):
                    held = reply.gate_after is not None and index == reply.gate_after
                    if held and not reply.gate.wait(5):
                        server.gate_opened_by_timeout = True
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                    server.sent_at.append(time.monotonic())
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def push(self, reply: Reply) -> Reply:
        self.replies.append(reply)
        return reply

    def close(self) -> None:
        self._stop.set()
        for reply in self.replies:
            reply.gate.set()
        self._server.shutdown()
        self._server.server_close()


# ----------------------------------------------------------------------------------------------
# OpenAI Chat Completions
# ----------------------------------------------------------------------------------------------


def sse_data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chat_chunk(
    delta: dict[str, Any] | None = None, finish_reason: str | None = None, usage: dict[str, int] | None = None
) -> bytes:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return sse_data(chunk)


CHAT_DONE = b"data: [DONE]\n\n"


def chat_usage(prompt: int, completion: int) -> bytes:
    return chat_chunk(
        None,
        usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    )


def openai_error(status: int, kind: str, code: str, message: str) -> Reply:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Reply(status=status, chunks=[json.dumps(body).encode()], content_type="application/json")


# ----------------------------------------------------------------------------------------------
# OpenAI Responses
# ----------------------------------------------------------------------------------------------


class ResponsesScript:
    """Builds a Responses API event stream with increasing sequence numbers."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self._sequence = 0

    def event(self, kind: str, **fields: Any) -> ResponsesScript:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        self.chunks.append(f"event: {kind}\n".encode() + sse_data(payload))
        return self

    @staticmethod
    def response(
        status: str, output: list[dict[str, Any]], usage: tuple[int, int] | None = None, **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "resp_fake",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": status,
            "model": "fake-model",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            **extra,
        }
        if usage is not None:
            body["usage"] = {
                "input_tokens": usage[0],
                "output_tokens": usage[1],
                "total_tokens": sum(usage),
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            }
        return body


# ----------------------------------------------------------------------------------------------
# Gemini
# ----------------------------------------------------------------------------------------------


def gemini_chunk(
    parts: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or []}, "index": 0}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": "fake-gemini"}
    if usage is not None:
        payload["usageMetadata"] = {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage),
        }
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


def gemini_error(status: int, name: str, message: str) -> Reply:
    body = {"error": {"code": status, "message": message, "status": name}}
    return Reply(status=status, chunks=[json.dumps(body).encode()], content_type="application/json")


PNG = "iVBORw0KGgo="  # base64 of the PNG signature: enough to check a data URL

# A canonical turn every provider test translates: a question, two parallel tool calls (with
# reasoning before them), and their results (one JSON success, one error).
WEATHER_TOOL_TURNS: list[dict[str, Any]] = [
    {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
    {
        "role": "assistant",
        "content": [
            {"reasoningContent": {"reasoningText": {"text": "two lookups", "signature": "sig"}}},
            {"text": "Checking both."},
            {"toolUse": {"toolUseId": "tooluse_paris", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "tooluse_rome", "name": "get_weather", "input": {"city": "Rome"}}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "tooluse_paris",
                    "content": [{"json": {"temp_c": 21, "sky": "clear"}}],
                    "status": "success",
                }
            },
            {
                "toolResult": {
                    "toolUseId": "tooluse_rome",
                    "content": [{"text": "station offline"}],
                    "status": "error",
                }
            },
        ],
    },
]

# What a toolUseId may look like in the AgentCore contract (HarnessToolUseId).
