"""The OpenAI provider, driven through the official ``openai`` SDK against a real HTTP server on
127.0.0.1 that speaks the Chat Completions and Responses streaming wire formats."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from provider_servers import (
    CHAT_DONE,
    PNG,
    WEATHER_TOOL_TURNS,
    FakeServer,
    Reply,
    ResponsesScript,
    chat_chunk,
    chat_usage,
    openai_error,
)

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
from harness.providers.openai import OpenAIProvider, supports_tools
from harness.providers.openai_chat import from_openai_chat, to_openai_chat
from harness.providers.openai_responses import from_openai_responses, to_openai_responses
from harness.providers.tool_use_ids import is_tool_use_id

CANARY = "sk-canary-7f3a9c1e5b2d4f60"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-key"
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

HISTORY: list[dict[str, Any]] = [
    *WEATHER_TOOL_TURNS,
    {"role": "assistant", "content": [{"text": "Paris: 21C, clear. Rome: no data."}]},
    {
        "role": "user",
        "content": [
            {"text": "And this picture?"},
            {"image": {"format": "png", "source": {"bytes": PNG}}},
        ],
    },
]

EXPECTED_CHAT_MESSAGES = [
    {"role": "system", "content": "You are terse.\n\nAnswer in English."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            {
                "id": "tooluse_paris",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "tooluse_rome",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "tooluse_paris", "content": '{"temp_c": 21, "sky": "clear"}'},
    {"role": "tool", "tool_call_id": "tooluse_rome", "content": "Error: station offline"},
    {"role": "assistant", "content": "Paris: 21C, clear. Rome: no data."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "And this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    },
]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def request(server: FakeServer, **config: Any) -> ModelRequest:
    model = {"modelId": "fake-model", "apiKeyArn": ARN, "apiBase": f"{server.url}/v1", **config}
    return ModelRequest(
        model_config={"openAiModelConfig": model},
        messages=HISTORY,
        system=["You are terse.", "Answer in English."],
        tools=[WEATHER],
    )


def provider(timeout: float = 5.0) -> OpenAIProvider:
    return OpenAIProvider(lambda arn: CANARY if arn == ARN else "wrong", timeout=timeout)


def arguments(events: list[Any]) -> dict[str, Any]:
    """Tool inputs assembled per call id, as the loop does."""
    pieces: dict[str, str] = {}
    for event in events:
        if isinstance(event, ToolUseInputDelta):
            pieces[event.tool_use_id] = pieces.get(event.tool_use_id, "") + event.input_json
    return {tool_use_id: json.loads(text) for tool_use_id, text in pieces.items()}


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_safe(error: BaseException) -> None:
    """The key appears nowhere a caller or a log could see it."""
    rendered = "".join(traceback.format_exception(error))
    assert CANARY not in str(error)
    assert CANARY not in repr(error)
    assert CANARY not in rendered
    assert "canary" not in rendered.lower()


# ----------------------------------------------------------------------------------------------
# Chat Completions
# ----------------------------------------------------------------------------------------------


def test_text_deltas_are_yielded_as_they_arrive(server: FakeServer) -> None:
    reply = server.push(
        Reply(
            chunks=[
                chat_chunk({"role": "assistant", "content": "Hel"}),
                chat_chunk({"content": "lo, "}),
                chat_chunk({"content": "world"}),
                chat_chunk({}, "stop"),
                chat_usage(11, 3),
                CHAT_DONE,
            ],
            gate_after=2,  # the server holds the rest until the test has seen the first deltas
        )
    )
    events = []
    stream = provider().stream(request(server))
    for event in stream:
        events.append(event)
        if len([e for e in events if isinstance(e, TextDelta)]) == 2:
            assert not reply.gate.is_set()
            reply.gate.set()
    assert not server.gate_opened_by_timeout
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo, ", "world"]
    assert events[-2:] == [Stop("end_turn"), Usage(input_tokens=11, output_tokens=3)]


def test_two_tool_calls_with_chunked_arguments(server: FakeServer) -> None:
    server.push(
        Reply(
            chunks=[
                chat_chunk({"role": "assistant", "content": "Let me look."}),
                chat_chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_A",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ]
                    }
                ),
                chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
                chat_chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "call_B",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city":'},
                            }
                        ]
                    }
                ),
                chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
                chat_chunk({"tool_calls": [{"index": 1, "function": {"arguments": ' "Bergen"}'}}]}),
                chat_chunk({}, "tool_calls"),
                chat_usage(40, 12),
                CHAT_DONE,
            ]
        )
    )
    events = list(provider().stream(request(server)))
    starts = [e for e in events if isinstance(e, ToolUseStart)]
    assert starts == [ToolUseStart("call_A", "get_weather"), ToolUseStart("call_B", "get_weather")]
    assert len([e for e in events if isinstance(e, ToolUseInputDelta)]) == 4
    assert arguments(events) == {"call_A": {"city": "Oslo"}, "call_B": {"city": "Bergen"}}
    assert text_of(events) == "Let me look."
    assert events[-2:] == [Stop("tool_use"), Usage(40, 12)]
    # every delta of a call comes after that call's start
    first_start = {e.tool_use_id: events.index(e) for e in starts}
    assert all(
        events.index(e) > first_start[e.tool_use_id] for e in events if isinstance(e, ToolUseInputDelta)
    )


def test_the_server_receives_the_translated_history(server: FakeServer) -> None:
    server.push(Reply(chunks=[chat_chunk({"content": "ok"}, "stop"), CHAT_DONE]))
    config = {"maxTokens": 256, "temperature": 0.2, "topP": 0.9, "additionalParams": {"seed": 7}}
    list(provider().stream(request(server, **config)))
    (received,) = server.requests
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {CANARY}"
    body = received.body
    assert body["messages"] == EXPECTED_CHAT_MESSAGES
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER.input_schema,
            },
        }
    ]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "fake-model"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (256, 0.2, 0.9, 7)
    assert "max_completion_tokens" not in body


def test_openai_itself_gets_max_completion_tokens() -> None:
    config = {"modelId": "gpt-x", "apiKeyArn": ARN, "maxTokens": 99}
    body = to_openai_chat(ModelRequest(model_config={"openAiModelConfig": config}, messages=HISTORY))
    assert body["max_completion_tokens"] == 99
    assert "max_tokens" not in body
    assert "tools" not in body


@pytest.mark.parametrize(
    ("finish_reason", "stop"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "content_filtered")],
)
def test_finish_reasons(server: FakeServer, finish_reason: str, stop: str) -> None:
    server.push(Reply(chunks=[chat_chunk({"content": "x"}), chat_chunk({}, finish_reason), CHAT_DONE]))
    events = list(provider().stream(request(server)))
    assert events[-2:] == [Stop(stop), Usage(0, 0)]  # this server sent no usage


def test_a_compatible_server_without_call_ids_or_arguments(server: FakeServer) -> None:
    # Some servers send whole calls without ids, say "stop" after them, and send "" for no input.
    call = {"index": 0, "type": "function", "function": {"name": "list_files", "arguments": ""}}
    server.push(Reply(chunks=[chat_chunk({"tool_calls": [call]}), chat_chunk({}, "stop"), CHAT_DONE]))
    events = list(provider().stream(request(server)))
    (start,) = [e for e in events if isinstance(e, ToolUseStart)]
    assert is_tool_use_id(start.tool_use_id)
    assert arguments(events) == {start.tool_use_id: {}}
    assert events[-2] == Stop("tool_use")
    server.push(Reply(chunks=[chat_chunk({"tool_calls": [call]}), chat_chunk({}, "stop"), CHAT_DONE]))
    again = [e for e in provider().stream(request(server)) if isinstance(e, ToolUseStart)]
    assert again == [start]  # deterministic for the same request


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (openai_error(429, "rate_limit_error", "rate_limit_exceeded", "Slow down"), ModelUnavailableError),
        (openai_error(500, "server_error", "internal", "Boom"), ModelUnavailableError),
        (openai_error(503, "server_error", "overloaded", "Busy"), ModelUnavailableError),
        (
            openai_error(401, "invalid_request_error", "invalid_api_key", f"Incorrect API key {CANARY}"),
            ModelRequestError,
        ),
        (openai_error(400, "invalid_request_error", "bad", "messages[3] is wrong"), ModelRequestError),
    ],
)
def test_http_errors_map_to_failover_or_not(
    server: FakeServer, reply: Reply, error: type[ModelCallError]
) -> None:
    server.push(reply)
    with pytest.raises(error) as caught:
        list(provider().stream(request(server)))
    assert f"HTTP {reply.status}" in str(caught.value)
    assert "messages[3]" not in str(caught.value)  # the provider's free text is not repeated
    assert_safe(caught.value)
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY}"


def test_a_server_that_never_answers_times_out(server: FakeServer) -> None:
    server.push(Reply(hang_seconds=10))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="timed out") as caught:
        list(provider(timeout=0.5).stream(request(server)))
    assert time.monotonic() - started < 5
    assert_safe(caught.value)


def test_a_server_that_cannot_be_reached() -> None:
    closed = FakeServer()
    url = closed.url
    closed.close()
    config = {"modelId": "m", "apiKeyArn": ARN, "apiBase": f"{url}/v1"}
    with pytest.raises(ModelUnavailableError) as caught:
        list(provider().stream(ModelRequest(model_config={"openAiModelConfig": config}, messages=HISTORY)))
    assert_safe(caught.value)


def test_a_stream_cut_before_the_finish_is_unavailable(server: FakeServer) -> None:
    server.push(Reply(chunks=[chat_chunk({"content": "partial"})]))
    with pytest.raises(ModelUnavailableError, match="ended before"):
        list(provider().stream(request(server)))


def test_the_key_is_fetched_inside_stream_and_never_yielded(server: FakeServer) -> None:
    calls: list[str] = []

    def key_for(arn: str) -> str:
        calls.append(arn)
        return CANARY

    server.push(Reply(chunks=[chat_chunk({"content": "hi"}, "stop"), CHAT_DONE]))
    stream = OpenAIProvider(key_for).stream(request(server))
    assert calls == []
    events = list(stream)
    assert calls == [ARN]
    assert CANARY not in repr(events)


def test_configuration_errors_are_request_errors(server: FakeServer) -> None:
    with pytest.raises(ModelRequestError, match="stream"):
        list(provider().stream(request(server, additionalParams={"stream": False})))
    with pytest.raises(ModelRequestError, match="apiFormat"):
        list(provider().stream(request(server, apiFormat="completions")))
    no_key = {"modelId": "m"}
    with pytest.raises(ModelRequestError, match="apiKeyArn"):
        list(provider().stream(ModelRequest(model_config={"openAiModelConfig": no_key}, messages=HISTORY)))
    assert server.requests == []


def test_chat_translation_round_trips_the_fixture() -> None:
    back = from_openai_chat(EXPECTED_CHAT_MESSAGES)
    assert back[1]["content"] == [
        {"text": "Checking both."},
        {"toolUse": {"toolUseId": "tooluse_paris", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "tooluse_rome", "name": "get_weather", "input": {"city": "Rome"}}},
    ]
    assert back[2]["content"][1] == {
        "toolResult": {
            "toolUseId": "tooluse_rome",
            "content": [{"text": "station offline"}],
            "status": "error",
        }
    }
    assert back[4] == HISTORY[4]


def test_supports_tools() -> None:
    assert supports_tools({"modelId": "gpt-x"}) is True


# ----------------------------------------------------------------------------------------------
# Responses API
# ----------------------------------------------------------------------------------------------


def responses_request(server: FakeServer, **config: Any) -> ModelRequest:
    return request(server, apiFormat="responses", **config)


def function_call_item(item_id: str, call_id: str, arguments: str = "") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": "get_weather",
        "arguments": arguments,
    }


def test_responses_stream_text_and_two_chunked_function_calls(server: FakeServer) -> None:
    message = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    script = (
        ResponsesScript()
        .event("response.created", response=ResponsesScript.response("in_progress", []))
        .event("response.output_item.added", output_index=0, item=message)
        .event(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta="Look",
            logprobs=[],
        )
        .event(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta="ing up.",
            logprobs=[],
        )
        .event("response.output_item.added", output_index=1, item=function_call_item("fc_1", "call_X"))
        .event("response.function_call_arguments.delta", item_id="fc_1", output_index=1, delta='{"city"')
        .event("response.output_item.added", output_index=2, item=function_call_item("fc_2", "call_Y"))
        .event(
            "response.function_call_arguments.delta", item_id="fc_2", output_index=2, delta='{"city": "Nice"}'
        )
        .event("response.function_call_arguments.delta", item_id="fc_1", output_index=1, delta=': "Lyon"}')
        .event(
            "response.function_call_arguments.done",
            item_id="fc_1",
            output_index=1,
            arguments='{"city": "Lyon"}',
        )
        .event(
            "response.completed",
            response=ResponsesScript.response(
                "completed",
                [
                    function_call_item("fc_1", "call_X", '{"city": "Lyon"}'),
                    function_call_item("fc_2", "call_Y", '{"city": "Nice"}'),
                ],
                usage=(30, 9),
            ),
        )
    )
    reply = server.push(Reply(chunks=script.chunks, gate_after=4))
    events = []
    for event in provider().stream(responses_request(server)):
        events.append(event)
        if isinstance(event, TextDelta) and event.text == "Look":
            reply.gate.set()  # the first delta arrived while the server held the rest
    assert not server.gate_opened_by_timeout
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Look", "ing up."]
    assert [e for e in events if isinstance(e, ToolUseStart)] == [
        ToolUseStart("call_X", "get_weather"),
        ToolUseStart("call_Y", "get_weather"),
    ]
    assert arguments(events) == {"call_X": {"city": "Lyon"}, "call_Y": {"city": "Nice"}}
    assert events[-2:] == [Stop("tool_use"), Usage(30, 9)]


def test_responses_request_body(server: FakeServer) -> None:
    script = ResponsesScript().event(
        "response.completed", response=ResponsesScript.response("completed", [], usage=(1, 1))
    )
    server.push(Reply(chunks=script.chunks))
    list(provider().stream(responses_request(server, maxTokens=64, temperature=0.5)))
    (received,) = server.requests
    assert received.path == "/v1/responses"
    assert received.headers["authorization"] == f"Bearer {CANARY}"
    body = received.body
    assert body["instructions"] == "You are terse.\n\nAnswer in English."
    assert body["store"] is False
    assert body["stream"] is True
    assert (body["max_output_tokens"], body["temperature"]) == (64, 0.5)
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER.input_schema,
            "strict": False,
        }
    ]
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking both."}],
        },
        {
            "type": "function_call",
            "call_id": "tooluse_paris",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {
            "type": "function_call",
            "call_id": "tooluse_rome",
            "name": "get_weather",
            "arguments": '{"city": "Rome"}',
        },
        {
            "type": "function_call_output",
            "call_id": "tooluse_paris",
            "output": '{"temp_c": 21, "sky": "clear"}',
        },
        {"type": "function_call_output", "call_id": "tooluse_rome", "output": "Error: station offline"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Paris: 21C, clear. Rome: no data."}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "And this picture?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
            ],
        },
    ]
    assert from_openai_responses(body["input"])[1:4] == from_openai_chat(EXPECTED_CHAT_MESSAGES)[1:4]


def test_responses_incomplete_at_max_output_tokens(server: FakeServer) -> None:
    script = (
        ResponsesScript()
        .event(
            "response.output_text.delta",
            item_id="m",
            output_index=0,
            content_index=0,
            delta="Lo",
            logprobs=[],
        )
        .event(
            "response.incomplete",
            response=ResponsesScript.response(
                "incomplete", [], usage=(5, 64), incomplete_details={"reason": "max_output_tokens"}
            ),
        )
    )
    server.push(Reply(chunks=script.chunks))
    events = list(provider().stream(responses_request(server)))
    assert events == [TextDelta("Lo"), Stop("max_tokens"), Usage(5, 64)]
    assert to_openai_responses(responses_request(server))["model"] == "fake-model"


@pytest.mark.parametrize(
    ("code", "error"), [("server_error", ModelUnavailableError), ("invalid_prompt", ModelRequestError)]
)
def test_responses_failed_event(server: FakeServer, code: str, error: type[ModelCallError]) -> None:
    failed = ResponsesScript.response("failed", [], error={"code": code, "message": f"bad {CANARY}"})
    server.push(Reply(chunks=ResponsesScript().event("response.failed", response=failed).chunks))
    with pytest.raises(error, match=code) as caught:
        list(provider().stream(responses_request(server)))
    assert_safe(caught.value)


def test_responses_http_errors(server: FakeServer) -> None:
    server.push(openai_error(429, "rate_limit_error", "rate_limit_exceeded", CANARY))
    with pytest.raises(ModelUnavailableError, match="HTTP 429") as caught:
        list(provider().stream(responses_request(server)))
    assert_safe(caught.value)
    server.push(openai_error(401, "invalid_request_error", "invalid_api_key", CANARY))
    with pytest.raises(ModelRequestError, match="HTTP 401") as caught_again:
        list(provider().stream(responses_request(server)))
    assert_safe(caught_again.value)


def test_an_error_inside_the_stream(server: FakeServer) -> None:
    error = {"error": {"message": f"overloaded {CANARY}", "type": "server_error"}}
    server.push(
        Reply(chunks=[chat_chunk({"content": "Hel"}), b"data: " + json.dumps(error).encode() + b"\n\n"])
    )
    events = []
    with pytest.raises(ModelUnavailableError, match="during streaming") as caught:
        events.extend(provider().stream(request(server)))
    assert events == [TextDelta("Hel")]
    assert_safe(caught.value)


def test_a_call_id_that_is_not_a_valid_tool_use_id_is_replaced(server: FakeServer) -> None:
    call = {
        "index": 0,
        "id": "call 1/x",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    server.push(Reply(chunks=[chat_chunk({"tool_calls": [call]}), chat_chunk({}, "tool_calls"), CHAT_DONE]))
    events = list(provider().stream(request(server)))
    (start,) = [e for e in events if isinstance(e, ToolUseStart)]
    assert start.tool_use_id.startswith("tooluse_") and is_tool_use_id(start.tool_use_id)
    assert arguments(events) == {start.tool_use_id: {}}
