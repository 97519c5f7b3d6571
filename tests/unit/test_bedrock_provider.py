"""The Bedrock ConverseStream provider against a small HTTP server on 127.0.0.1 that answers with
AWS event-stream frames (written with the project's own encoder)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.config import Config

from harness.adapters import clients
from harness.providers import bedrock
from harness.providers.base import (
    ModelCallError,
    ModelRequest,
    ModelRequestError,
    ModelUnavailableError,
    Stop,
    TextDelta,
    ToolSpec,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.bedrock import BedrockProvider
from harness.providers.registry import provider_for
from harness.wire.eventstream import encode_event, encode_exception

SECRET = "my account number is 4242-4242"


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/vnd.amazon.eventstream"}
    )
    body: bytes = b""


@dataclass
class FakeBedrock:
    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def stream(self, *events: tuple[str, dict[str, Any]], tail: bytes = b"") -> None:
        self.replies.append(
            Reply(body=b"".join(encode_event(name, payload) for name, payload in events) + tail)
        )


@pytest.fixture()
def fake_bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    state: dict[str, FakeBedrock] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            fake = state["fake"]
            length = int(self.headers.get("Content-Length") or 0)
            fake.requests.append(
                {
                    "path": unquote(self.path),
                    "headers": dict(self.headers),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            reply = (
                fake.replies.pop(0)
                if fake.replies
                else Reply(500, {"Content-Type": "application/json"}, b"{}")
            )
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    state["fake"] = FakeBedrock(url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", raising=False)
    clients.client.cache_clear()
    try:
        yield state["fake"]
    finally:
        clients.client.cache_clear()
        server.shutdown()
        server.server_close()


def request(
    messages: list[dict[str, Any]] | None = None,
    tools: list[ToolSpec] | None = None,
    system: list[str] | None = None,
    **config: Any,
) -> ModelRequest:
    return ModelRequest(
        model_config={"bedrockModelConfig": {"modelId": "anthropic.claude-test", **config}},
        messages=messages or [{"role": "user", "content": [{"text": SECRET}]}],
        system=system or [],
        tools=tools or [],
    )


def test_the_registry_serves_bedrock_configs_with_this_provider() -> None:
    assert isinstance(provider_for({"bedrockModelConfig": {"modelId": "m"}}), BedrockProvider)


def test_text_deltas_stop_reason_and_usage(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.stream(
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "max_tokens"}),
        (
            "metadata",
            {"usage": {"inputTokens": 11, "outputTokens": 2, "totalTokens": 13}, "metrics": {"latencyMs": 5}},
        ),
    )
    events = list(BedrockProvider().stream(request(system=["Be brief."], maxTokens=50, temperature=0.2)))
    assert events == [TextDelta("Hel"), TextDelta("lo"), Stop("max_tokens"), Usage(11, 2)]

    sent = fake_bedrock.requests[0]
    assert sent["path"] == "/model/anthropic.claude-test/converse-stream"
    assert sent["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256")
    assert sent["body"]["messages"] == [{"role": "user", "content": [{"text": SECRET}]}]
    assert sent["body"]["system"] == [{"text": "Be brief."}]
    assert sent["body"]["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2}
    assert "toolConfig" not in sent["body"]


def test_tool_use_start_and_chunked_input(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.stream(
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu-1", "name": "lookup"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"ci'}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": 'ty": "Oslo"}'}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tu-2", "name": "clock"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}),
        ("contentBlockStop", {"contentBlockIndex": 2}),
        ("messageStop", {"stopReason": "tool_use"}),
        (
            "metadata",
            {"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}, "metrics": {"latencyMs": 5}},
        ),
    )
    tools = [ToolSpec("lookup", "Looks up", {"type": "object"}), ToolSpec("clock", "Tells time", {})]
    events = list(BedrockProvider().stream(request(tools=tools, additionalParams={"top_k": 5})))
    assert events == [
        TextDelta("Let me check."),
        ToolUseStart("tu-1", "lookup"),
        ToolUseInputDelta("tu-1", '{"ci'),
        ToolUseInputDelta("tu-1", 'ty": "Oslo"}'),
        ToolUseStart("tu-2", "clock"),
        ToolUseInputDelta("tu-2", "{}"),
        Stop("tool_use"),
        Usage(20, 9),
    ]
    body = fake_bedrock.requests[0]["body"]
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "lookup",
                    "description": "Looks up",
                    "inputSchema": {"json": {"type": "object"}},
                }
            },
            {"toolSpec": {"name": "clock", "description": "Tells time", "inputSchema": {"json": {}}}},
        ]
    }
    assert body["additionalModelRequestFields"] == {"top_k": 5}


def test_a_rejected_request_is_a_model_call_error_without_the_request(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.replies.append(
        Reply(
            400,
            {"Content-Type": "application/json", "x-amzn-ErrorType": "ValidationException"},
            json.dumps({"message": f"Malformed input: {SECRET}"}).encode(),
        )
    )
    with pytest.raises(ModelRequestError) as excinfo:  # another model would not fix it: no failover
        list(BedrockProvider().stream(request()))
    assert str(excinfo.value) == "Bedrock rejected the model call (ValidationException)"
    assert SECRET not in str(excinfo.value)
    assert len(fake_bedrock.requests) == 1  # a 4xx is not retried


def test_an_error_inside_the_stream_is_a_model_call_error(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.stream(
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "partial"}}),
        tail=encode_exception("modelStreamErrorException", {"message": f"model crashed on {SECRET}"}),
    )
    events: list[Any] = []
    with pytest.raises(ModelUnavailableError) as excinfo:
        events.extend(BedrockProvider().stream(request()))
    assert events == [TextDelta("partial")]
    assert "ModelStreamErrorException" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_an_unreachable_endpoint_is_a_model_call_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    monkeypatch.setattr(bedrock, "client", lambda service: unreachable)
    with pytest.raises(ModelUnavailableError) as excinfo:
        list(BedrockProvider().stream(request()))
    assert str(excinfo.value) == "Bedrock could not be reached (EndpointConnectionError)"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, "ThrottlingException"), (503, "ServiceUnavailableException"), (424, "ModelTimeoutException")],
)
def test_throttling_server_errors_and_model_timeouts_are_failover_able(
    fake_bedrock: FakeBedrock, status: int, error_type: str
) -> None:
    # botocore retries transient errors itself before the router fails over: answer every attempt.
    fake_bedrock.replies.extend(
        Reply(
            status,
            {"Content-Type": "application/json", "x-amzn-ErrorType": error_type},
            json.dumps({"message": f"busy: {SECRET}"}).encode(),
        )
        for _ in range(10)
    )
    with pytest.raises(ModelUnavailableError) as excinfo:
        list(BedrockProvider().stream(request()))
    assert error_type in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_tool_blocks_without_tools_fail_before_calling_bedrock(fake_bedrock: FakeBedrock) -> None:
    history = [
        {"role": "user", "content": [{"text": "weather?"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}]},
    ]
    with pytest.raises(ModelCallError) as excinfo:
        list(BedrockProvider().stream(request(messages=history)))
    assert "no tools are configured" in str(excinfo.value)
    assert fake_bedrock.requests == []


def test_tool_blocks_with_tools_are_sent(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.stream(("messageStop", {"stopReason": "end_turn"}))
    history = [
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}]},
    ]
    events = list(BedrockProvider().stream(request(messages=history, tools=[ToolSpec("lookup", "d", {})])))
    assert events == [Stop("end_turn")]
    assert fake_bedrock.requests[0]["body"]["messages"] == history


def test_an_empty_earlier_reply_is_sent_without_a_blank_text_block(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.stream(("messageStop", {"stopReason": "end_turn"}))
    history = [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": ""}]},
        {"role": "user", "content": [{"text": "again"}]},
    ]
    list(BedrockProvider().stream(request(messages=history)))
    sent = fake_bedrock.requests[0]["body"]["messages"]
    assert sent[1] == {"role": "assistant", "content": [{"text": "(empty reply)"}]}
    assert sent[0] == history[0] and sent[2] == history[2]
