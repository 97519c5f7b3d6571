"""Behaviour of harness.wire: our event-stream frames read by botocore, and the SSE encoding."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.config
import pytest
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from botocore.exceptions import EventStreamError
from hypothesis import given
from hypothesis import strategies as st

from harness import contract
from harness.wire import eventstream, sse

HARNESS_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/demo-abcdefghij"
SESSION_ID = "s" * 33

TURN: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "thinking"}}}},
    {
        "contentBlockStart": {
            "contentBlockIndex": 1,
            "start": {"toolUse": {"toolUseId": "t1", "name": "lookup"}},
        }
    },
    {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"q":"x"}'}}}},
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"text": "Hello, "}}},
    {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"text": "wörld ✓\n"}}},
    {"contentBlockStop": {"contentBlockIndex": 2}},
    {"messageStop": {"stopReason": "end_turn"}},
    {
        "metadata": {
            "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
            "metrics": {"latencyMs": 1234},
        }
    },
]


def decode(frames: bytes) -> list[EventStreamMessage]:
    buffer = EventStreamBuffer()
    buffer.add_data(frames)
    return list(buffer)


# --- frames ------------------------------------------------------------------------------------


def test_event_frame_decodes_with_botocore_to_the_same_headers_and_payload() -> None:
    (message,) = decode(eventstream.encode_event("messageStart", {"role": "assistant"}))

    assert message.headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"role":"assistant"}'


def test_exception_frame_decodes_with_exception_headers() -> None:
    (message,) = decode(
        eventstream.encode_exception("validationException", {"message": "bad", "reason": "x"})
    )

    assert message.headers == {
        ":exception-type": "validationException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert json.loads(message.payload) == {"message": "bad", "reason": "x"}


def test_frames_fed_one_byte_at_a_time_decode_in_order() -> None:
    frames = b"".join(eventstream.encode_stream_item(item) for item in TURN)
    buffer = EventStreamBuffer()
    decoded: list[EventStreamMessage] = []
    for index in range(len(frames)):
        buffer.add_data(frames[index : index + 1])
        decoded.extend(buffer)

    assert [m.headers[":event-type"] for m in decoded] == [next(iter(item)) for item in TURN]
    assert [json.loads(m.payload) for m in decoded] == [next(iter(item.values())) for item in TURN]


def test_non_ascii_text_is_sent_as_utf8_json() -> None:
    (message,) = decode(eventstream.encode_event("contentBlockDelta", {"delta": {"text": "wörld ✓"}}))
    assert message.payload == '{"delta":{"text":"wörld ✓"}}'.encode()


def test_stream_items_for_error_members_are_encoded_as_exceptions() -> None:
    for name in ("validationException", "internalServerException", "runtimeClientError"):
        (message,) = decode(eventstream.encode_stream_item({name: {"message": "boom"}}))
        assert message.headers[":message-type"] == "exception"
        assert message.headers[":exception-type"] == name

    (message,) = decode(eventstream.encode_stream_item({"messageStop": {"stopReason": "end_turn"}}))
    assert message.headers[":message-type"] == "event"


@pytest.mark.parametrize("item", [{}, {"messageStart": {}, "messageStop": {}}, {"notAnEvent": {}}])
def test_stream_item_must_be_one_known_event(item: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        eventstream.encode_stream_item(item)


def test_payload_that_is_not_json_is_refused_before_framing() -> None:
    with pytest.raises(ValueError):
        eventstream.encode_event("metadata", {"latency": float("nan")})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=10,
)


@given(event_type=st.text(min_size=1, max_size=40), payload=st.dictionaries(st.text(), _JSON, max_size=4))
def test_any_json_payload_round_trips_through_botocores_decoder(
    event_type: str, payload: dict[str, Any]
) -> None:
    (message,) = decode(eventstream.encode_event(event_type, payload))
    assert message.headers[":event-type"] == event_type
    assert json.loads(message.payload) == payload


# --- the real boto3 client against a local server ----------------------------------------------


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubInvokeServer:
    """Answers ``POST /harnesses/invoke`` with whatever frames the test sets, recording requests."""

    url: str = ""
    frames: bytes = b""
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
def stub_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubInvokeServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the client must reach 127.0.0.1 directly
    state = StubInvokeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            if urlsplit(self.path).path != "/harnesses/invoke":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", eventstream.CONTENT_TYPE)
            self.send_header("Content-Length", str(len(state.frames)))
            self.end_headers()
            # Two writes, split mid-frame, so the client's buffering is exercised too.
            middle = len(state.frames) // 2 + 3
            self.wfile.write(state.frames[:middle])
            self.wfile.flush()
            self.wfile.write(state.frames[middle:])

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def invoke(server: StubInvokeServer) -> Any:
    client = boto3.client(
        "bedrock-agentcore",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=botocore.config.Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )
    return client.invoke_harness(
        harnessArn=HARNESS_ARN,
        runtimeSessionId=SESSION_ID,
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )


def test_the_sample_turn_is_valid_against_the_stream_shapes() -> None:
    members = contract.service_model("bedrock-agentcore")["shapes"]["InvokeHarnessStreamOutput"]["members"]
    for item in TURN:
        ((name, payload),) = item.items()
        contract.validate("bedrock-agentcore", members[name]["shape"], payload, path=name)


def test_boto3_invoke_harness_reads_our_event_stream_exactly(stub_server: StubInvokeServer) -> None:
    stub_server.frames = b"".join(eventstream.encode_stream_item(item) for item in TURN)

    response = invoke(stub_server)
    events = list(response["stream"])

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert events == TURN


def test_blob_members_travel_as_base64_and_reach_the_client_as_bytes(stub_server: StubInvokeServer) -> None:
    redacted = base64.b64encode(b"\x00\x01opaque").decode()
    stub_server.frames = eventstream.encode_stream_item(
        {
            "contentBlockDelta": {
                "contentBlockIndex": 0,
                "delta": {"reasoningContent": {"redactedContent": redacted}},
            }
        }
    )

    (event,) = list(invoke(stub_server)["stream"])

    assert event["contentBlockDelta"]["delta"]["reasoningContent"]["redactedContent"] == b"\x00\x01opaque"


def test_in_stream_validation_exception_is_raised_by_the_boto3_iteration(
    stub_server: StubInvokeServer,
) -> None:
    stub_server.frames = eventstream.encode_stream_item(TURN[0]) + eventstream.encode_stream_item(
        {
            "validationException": {
                "message": "messages[0].content is too long",
                "reason": "FieldValidationFailed",
                "fieldList": [{"name": "messages[0].content", "message": "too long"}],
            }
        }
    )

    stream = iter(invoke(stub_server)["stream"])
    assert next(stream) == TURN[0]
    with pytest.raises(EventStreamError) as excinfo:
        next(stream)

    assert excinfo.value.response["Error"] == {
        "Code": "validationException",
        "Message": "messages[0].content is too long",
    }


def test_the_request_boto3_sends_passes_our_contract_validation(stub_server: StubInvokeServer) -> None:
    stub_server.frames = eventstream.encode_stream_item(TURN[0])
    list(invoke(stub_server)["stream"])

    (request,) = stub_server.requests
    query = {name: values[0] for name, values in parse_qs(urlsplit(request.path).query).items()}
    headers = {name.lower(): value for name, value in request.headers.items()}
    params: dict[str, object] = {}
    for member, (location, wire_name) in contract.location_members(
        "bedrock-agentcore", "InvokeHarness"
    ).items():
        source = query if location == "querystring" else headers
        key = wire_name if location == "querystring" else wire_name.lower()
        if key in source:
            params[member] = source[key]

    assert params == {"harnessArn": HARNESS_ARN, "runtimeSessionId": SESSION_ID}
    contract.validate_request("bedrock-agentcore", "InvokeHarness", json.loads(request.body), params)


# --- server-sent events ------------------------------------------------------------------------


def test_sse_frames_an_item_as_event_and_one_line_of_compact_json() -> None:
    encoded = sse.encode_sse({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "a\nb ✓"}}})
    assert (
        encoded
        == 'event: contentBlockDelta\ndata: {"contentBlockIndex":0,"delta":{"text":"a\\nb ✓"}}\n\n'.encode()
    )


@pytest.mark.parametrize("item", [{}, {"a": {}, "b": {}}, {"evil\ndata: x": {}}, {"": {}}])
def test_sse_refuses_items_that_would_not_frame_as_one_event(item: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sse.encode_sse(item)


def test_content_types_name_each_encoding() -> None:
    assert eventstream.CONTENT_TYPE == "application/vnd.amazon.eventstream"
    assert sse.CONTENT_TYPE == "text/event-stream"
