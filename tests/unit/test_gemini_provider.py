"""The Gemini provider, driven through the official ``google-genai`` SDK against a real HTTP server
on 127.0.0.1 that speaks ``streamGenerateContent?alt=sse``, and its schema sanitiser."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from provider_servers import PNG, WEATHER_TOOL_TURNS, FakeServer, Reply, gemini_chunk, gemini_error

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
from harness.providers.gemini import SKIP_SIGNATURE, GeminiProvider, from_gemini, supports_tools, to_gemini
from harness.providers.gemini_schema import function_declarations, sanitize_schema
from harness.providers.tool_use_ids import is_tool_use_id

CANARY = "AIza-canary-7f3a9c1e5b2d4f60"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gemini-key"

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    input_schema={
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "city": {"type": "string", "format": "hostname"},
            "when": {"type": "string", "format": "date-time"},
            "units": {"$ref": "#/definitions/Units"},
        },
        "required": ["city", "ghost"],
        "additionalProperties": False,
        "definitions": {"Units": {"type": "string", "enum": ["c", "f"]}},
    },
)

HISTORY: list[dict[str, Any]] = [
    *WEATHER_TOOL_TURNS,
    {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "only thinking"}}}]},
    {
        "role": "user",
        "content": [{"text": "And this picture?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}],
    },
]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def request(**config: Any) -> ModelRequest:
    model = {"modelId": "gemini-fake", "apiKeyArn": ARN, **config}
    return ModelRequest(
        model_config={"geminiModelConfig": model},
        messages=HISTORY,
        system=["You are terse.", "Answer in English."],
        tools=[WEATHER],
    )


def provider(server: FakeServer, timeout: float = 5.0) -> GeminiProvider:
    return GeminiProvider(lambda arn: CANARY if arn == ARN else "wrong", base_url=server.url, timeout=timeout)


def arguments(events: list[Any]) -> dict[str, Any]:
    pieces: dict[str, str] = {}
    for event in events:
        if isinstance(event, ToolUseInputDelta):
            pieces[event.tool_use_id] = pieces.get(event.tool_use_id, "") + event.input_json
    return {tool_use_id: json.loads(text) for tool_use_id, text in pieces.items()}


def assert_safe(error: BaseException) -> None:
    rendered = "".join(traceback.format_exception(error))
    assert CANARY not in str(error)
    assert CANARY not in repr(error)
    assert CANARY not in rendered


def test_text_deltas_are_yielded_as_they_arrive(server: FakeServer) -> None:
    reply = server.push(
        Reply(
            chunks=[
                gemini_chunk([{"text": "Hel"}]),
                gemini_chunk([{"text": "thinking...", "thought": True}]),
                gemini_chunk([{"text": "lo, "}]),
                gemini_chunk([{"text": "world"}], "STOP", usage=(12, 4)),
            ],
            gate_after=3,
        )
    )
    events = []
    for event in provider(server).stream(request()):
        events.append(event)
        if isinstance(event, TextDelta) and event.text == "lo, ":
            reply.gate.set()
    assert not server.gate_opened_by_timeout
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo, ", "world"]  # no thought
    assert events[-2:] == [Stop("end_turn"), Usage(12, 4)]


def test_two_function_calls_ours_and_without_id(server: FakeServer) -> None:
    server.push(
        Reply(
            chunks=[
                gemini_chunk([{"text": "Looking."}]),
                gemini_chunk(
                    [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                        {"functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Bergen"}}},
                    ],
                    "STOP",
                    usage=(50, 8),
                ),
            ]
        )
    )
    events = list(provider(server).stream(request()))
    starts = [e for e in events if isinstance(e, ToolUseStart)]
    assert len(starts) == 2
    generated, given = starts
    assert is_tool_use_id(generated.tool_use_id) and generated.tool_use_id.startswith("tooluse_")
    assert given == ToolUseStart("fc-7", "get_weather")
    assert arguments(events) == {generated.tool_use_id: {"city": "Oslo"}, "fc-7": {"city": "Bergen"}}
    assert events[-2:] == [Stop("tool_use"), Usage(50, 8)]


def test_the_server_receives_the_translated_history(server: FakeServer) -> None:
    server.push(Reply(chunks=[gemini_chunk([{"text": "ok"}], "STOP")]))
    config = {"maxTokens": 300, "temperature": 0.1, "topP": 0.8, "topK": 20}
    list(provider(server).stream(request(**config)))
    (received,) = server.requests
    assert received.path.endswith("/models/gemini-fake:streamGenerateContent?alt=sse")
    assert received.headers["x-goog-api-key"] == CANARY
    body = received.body
    image = body["contents"][-1]["parts"][1]["inlineData"]
    # the SDK spells this one field in snake case; the REST API takes either spelling
    image["mimeType"] = image.pop("mime_type", image.get("mimeType"))
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}, {"text": "Answer in English."}]
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking both."},
                {
                    "functionCall": {"id": "tooluse_paris", "name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": SKIP_SIGNATURE,
                },
                {
                    "functionCall": {"id": "tooluse_rome", "name": "get_weather", "args": {"city": "Rome"}},
                    "thoughtSignature": SKIP_SIGNATURE,
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "tooluse_paris",
                        "name": "get_weather",
                        "response": {"output": [{"json": {"temp_c": 21, "sky": "clear"}}]},
                    }
                },
                {
                    "functionResponse": {
                        "id": "tooluse_rome",
                        "name": "get_weather",
                        "response": {"error": "station offline"},
                    }
                },
            ],
        },
        # the assistant turn of reasoning only is gone
        {
            "role": "user",
            "parts": [{"text": "And this picture?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}],
        },
    ]
    (declaration,) = body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert declaration["parameters"] == {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "description": "(format: hostname)"},
            "when": {"type": "STRING", "format": "date-time"},
            "units": {"type": "STRING", "enum": ["c", "f"]},
        },
        "required": ["city"],
    }
    assert body["generationConfig"] == {"maxOutputTokens": 300, "temperature": 0.1, "topP": 0.8, "topK": 20}


@pytest.mark.parametrize(
    ("finish", "stop"),
    [("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "content_filtered")],
)
def test_finish_reasons(server: FakeServer, finish: str, stop: str) -> None:
    server.push(Reply(chunks=[gemini_chunk([{"text": "x"}]), gemini_chunk([], finish, usage=(3, 1))]))
    events = list(provider(server).stream(request()))
    assert events[-2:] == [Stop(stop), Usage(3, 1)]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (gemini_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), ModelUnavailableError),
        (gemini_error(500, "INTERNAL", "Internal error"), ModelUnavailableError),
        (gemini_error(503, "UNAVAILABLE", "Overloaded"), ModelUnavailableError),
        (gemini_error(401, "UNAUTHENTICATED", f"API key {CANARY} not valid"), ModelRequestError),
        (gemini_error(400, "INVALID_ARGUMENT", "contents[2] is wrong"), ModelRequestError),
    ],
)
def test_http_errors_map_to_failover_or_not(
    server: FakeServer, reply: Reply, error: type[ModelCallError]
) -> None:
    server.push(reply)
    with pytest.raises(error) as caught:
        list(provider(server).stream(request()))
    assert f"HTTP {reply.status}" in str(caught.value)
    assert "contents[2]" not in str(caught.value)
    assert_safe(caught.value)
    assert server.requests[0].headers["x-goog-api-key"] == CANARY


def test_a_server_that_never_answers_times_out(server: FakeServer) -> None:
    server.push(Reply(hang_seconds=10))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="timed out") as caught:
        list(provider(server, timeout=0.5).stream(request()))
    assert time.monotonic() - started < 5
    assert_safe(caught.value)


def test_a_server_that_cannot_be_reached() -> None:
    closed = FakeServer()
    closed.close()
    with pytest.raises(ModelUnavailableError) as caught:
        list(provider(closed).stream(request()))
    assert_safe(caught.value)


def test_a_stream_cut_before_the_finish_is_unavailable(server: FakeServer) -> None:
    server.push(Reply(chunks=[gemini_chunk([{"text": "partial"}])]))
    with pytest.raises(ModelUnavailableError, match="ended before"):
        list(provider(server).stream(request()))


def test_the_key_is_fetched_inside_stream(server: FakeServer) -> None:
    calls: list[str] = []

    def key_for(arn: str) -> str:
        calls.append(arn)
        return CANARY

    server.push(Reply(chunks=[gemini_chunk([{"text": "hi"}], "STOP")]))
    stream = GeminiProvider(key_for, base_url=server.url).stream(request())
    assert calls == []
    events = list(stream)
    assert calls == [ARN]
    assert CANARY not in repr(events)


def test_additional_params(server: FakeServer) -> None:
    server.push(Reply(chunks=[gemini_chunk([{"text": "ok"}], "STOP")]))
    params = {"thinking_config": {"thinking_budget": 0}, "stopSequences": ["END"]}
    list(provider(server).stream(request(additionalParams=params)))
    config = server.requests[0].body["generationConfig"]
    # nested fields keep the spelling given (the REST API takes snake or camel case)
    assert config["thinkingConfig"] in ({"thinkingBudget": 0}, {"thinking_budget": 0})
    assert config["stopSequences"] == ["END"]
    with pytest.raises(ModelRequestError, match="unknown fields: not_a_field"):
        list(provider(server).stream(request(additionalParams={"not_a_field": 1})))
    with pytest.raises(ModelRequestError, match="tools"):
        list(provider(server).stream(request(additionalParams={"tools": []})))
    assert len(server.requests) == 1


def test_a_result_without_its_tool_use_is_rejected() -> None:
    orphan = [{"role": "user", "content": [{"toolResult": {"toolUseId": "nope", "content": []}}]}]
    with pytest.raises(ModelRequestError, match="no matching tool use"):
        to_gemini(ModelRequest(model_config={"geminiModelConfig": {"modelId": "g"}}, messages=orphan))


def test_translation_round_trips_the_fixture() -> None:
    body = to_gemini(request())
    back = from_gemini(body["contents"])
    assert back[1]["content"] == HISTORY[1]["content"][1:]  # reasoning dropped
    # with the reasoning-only turn gone, the two user turns around it read as one
    assert back[2] == {"role": "user", "content": HISTORY[2]["content"] + HISTORY[4]["content"]}
    assert len(back) == 3


# ----------------------------------------------------------------------------------------------
# Schema sanitising
# ----------------------------------------------------------------------------------------------


def test_sanitize_strips_what_gemini_rejects() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:x",
        "type": "object",
        "additionalProperties": {"type": "string"},
        "patternProperties": {"^x": {}},
        "properties": {
            "email": {"type": "string", "format": "email", "description": "Who"},
            "count": {"type": "integer", "format": "int32", "exclusiveMinimum": 0, "multipleOf": 2},
            "ratio": {"type": ["number", "null"], "format": "double"},
            "mode": {"const": "fast"},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 1},
            "choice": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "either": {"type": ["string", "integer"]},
            "nested": {
                "type": "object",
                "properties": {"deep": {"$ref": "#/$defs/Deep"}},
                "additionalProperties": False,
            },
            "both": {
                "allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"type": "object"}]
            },
        },
        "$defs": {"Deep": {"type": "boolean", "description": "deep flag", "examples": [True]}},
    }
    assert sanitize_schema(schema) == {
        "type": "object",
        "properties": {
            "email": {"type": "string", "description": "Who (format: email)"},
            "count": {"type": "integer", "format": "int32"},
            "ratio": {"type": "number", "format": "double", "nullable": True},
            "mode": {"enum": ["fast"]},
            "level": {"type": "integer", "description": "(one of: 1, 2, 3)"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "nested": {
                "type": "object",
                "properties": {"deep": {"type": "boolean", "description": "deep flag", "example": True}},
            },
            "both": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        },
    }


def test_recursive_refs_stop() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/definitions/Node"}},
        "definitions": {
            "Node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/Node"}}},
        },
    }
    sanitized = sanitize_schema(schema)
    depth, node = 0, sanitized["properties"]["node"]
    while "properties" in node:
        node, depth = node["properties"]["child"], depth + 1
    assert node == {"type": "object"}
    assert depth <= 8
    assert "$ref" not in json.dumps(sanitized)


def test_a_tool_without_inputs_declares_no_parameters() -> None:
    empty = ToolSpec("now", "The time", {"type": "object", "properties": {}, "additionalProperties": False})
    assert function_declarations([empty]) == [{"name": "now", "description": "The time"}]


def test_supports_tools() -> None:
    assert supports_tools({"modelId": "gemini-x"}) is True


def test_an_error_inside_the_stream(server: FakeServer) -> None:
    error = {"error": {"code": 503, "message": f"overloaded {CANARY}", "status": "UNAVAILABLE"}}
    chunks = [gemini_chunk([{"text": "Hel"}]), b"data: " + json.dumps(error).encode() + b"\r\n\r\n"]
    server.push(Reply(chunks=chunks))
    events = []
    with pytest.raises(ModelUnavailableError, match="UNAVAILABLE") as caught:
        events.extend(provider(server).stream(request()))
    assert events == [TextDelta("Hel")]
    assert_safe(caught.value)
