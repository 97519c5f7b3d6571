"""The LiteLLM provider: one translation shared with the OpenAI provider, the not-installed path,
and (where ``litellm`` is installed, an optional extra) a real ``litellm.completion`` stream from a
fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from provider_servers import CHAT_DONE, FakeServer, Reply, chat_chunk, chat_usage, openai_error

from harness.providers import litellm as litellm_provider
from harness.providers import openai_chat
from harness.providers.base import (
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
from harness.providers.litellm import NOT_INSTALLED, LiteLLMProvider, supports_tools, to_litellm

CANARY = "sk-canary-litellm-7f3a9c1e5b2d"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:litellm-key"

TOOL = ToolSpec(
    "get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}}
)
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": [{"text": "Weather in Oslo?"}]},
    {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}}
        ],
    },
    {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "down"}], "status": "error"}}
        ],
    },
]


def request(**config: Any) -> ModelRequest:
    return ModelRequest(
        model_config={"liteLlmModelConfig": {"modelId": "openai/fake-model", **config}},
        messages=HISTORY,
        system=["Be brief."],
        tools=[TOOL],
    )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def without_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # makes ``import litellm`` raise ImportError


def test_the_translation_is_the_openai_one() -> None:
    assert litellm_provider.chat_request is openai_chat.chat_request
    assert litellm_provider.ChatStreamReader is openai_chat.ChatStreamReader
    kwargs = to_litellm(request(apiBase="http://127.0.0.1:9/v1", maxTokens=10, additionalParams={"seed": 3}))
    assert kwargs["messages"] == openai_chat.chat_messages(HISTORY, ["Be brief."])
    assert kwargs["messages"][-1] == {"role": "tool", "tool_call_id": "tooluse_1", "content": "Error: down"}
    assert kwargs["tools"] == openai_chat.chat_tools([TOOL])
    assert kwargs["api_base"] == "http://127.0.0.1:9/v1"
    assert (kwargs["max_tokens"], kwargs["seed"], kwargs["stream"]) == (10, 3, True)
    assert "api_key" not in kwargs


def test_not_installed_is_a_request_error(without_litellm: None) -> None:
    calls: list[str] = []
    provider = LiteLLMProvider(lambda arn: calls.append(arn) or CANARY)
    with pytest.raises(ModelRequestError) as caught:
        list(provider.stream(request(apiKeyArn=ARN)))
    assert str(caught.value) == NOT_INSTALLED == "litellm is not installed: pip install litellm"
    assert calls == []  # the key is not even fetched


def test_supports_tools_without_litellm_is_true(without_litellm: None) -> None:
    assert supports_tools({"modelId": "some/model"}) is True
    assert supports_tools({"modelId": "local/deterministic"}) is True


def test_reserved_params_are_rejected() -> None:
    with pytest.raises(ModelRequestError, match="api_key"):
        to_litellm(request(additionalParams={"api_key": "x"}))


# ----------------------------------------------------------------------------------------------
# With litellm installed (an optional extra: skipped where it is not)
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def litellm() -> Any:
    return pytest.importorskip("litellm")


def test_streams_through_litellm(litellm: Any, server: FakeServer) -> None:
    reply = server.push(
        Reply(
            chunks=[
                chat_chunk({"role": "assistant", "content": "On "}),
                chat_chunk({"content": "it."}),
                chat_chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"ci'},
                            }
                        ]
                    }
                ),
                chat_chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                            }
                        ]
                    }
                ),
                chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
                chat_chunk({}, "tool_calls"),
                chat_usage(20, 6),
                CHAT_DONE,
            ],
            gate_after=2,
        )
    )
    provider = LiteLLMProvider(lambda arn: CANARY, timeout=5)
    events = []
    for event in provider.stream(request(apiKeyArn=ARN, apiBase=f"{server.url}/v1")):
        events.append(event)
        if isinstance(event, TextDelta) and event.text == "it.":
            reply.gate.set()
    assert not server.gate_opened_by_timeout
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["On ", "it."]
    assert [e for e in events if isinstance(e, ToolUseStart)] == [
        ToolUseStart("call_1", "get_weather"),
        ToolUseStart("call_2", "get_weather"),
    ]
    pieces: dict[str, str] = {}
    for event in events:
        if isinstance(event, ToolUseInputDelta):
            pieces[event.tool_use_id] = pieces.get(event.tool_use_id, "") + event.input_json
    assert {k: json.loads(v) for k, v in pieces.items()} == {
        "call_1": {"city": "Oslo"},
        "call_2": {"city": "Rome"},
    }
    assert events[-2:] == [Stop("tool_use"), Usage(20, 6)]
    (received,) = server.requests
    assert received.headers["authorization"] == f"Bearer {CANARY}"
    assert received.body["messages"] == openai_chat.chat_messages(HISTORY, ["Be brief."])


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, ModelUnavailableError), (500, ModelUnavailableError), (401, ModelRequestError)],
)
def test_litellm_errors(litellm: Any, server: FakeServer, status: int, error: type[Exception]) -> None:
    server.push(openai_error(status, "some_error", "some_code", f"key {CANARY} rejected"))
    provider = LiteLLMProvider(lambda arn: CANARY, timeout=5)
    with pytest.raises(error) as caught:
        list(provider.stream(request(apiKeyArn=ARN, apiBase=f"{server.url}/v1")))
    rendered = "".join(traceback.format_exception(caught.value))
    assert CANARY not in rendered
    assert f"HTTP {status}" in str(caught.value)


def test_litellm_timeout(litellm: Any, server: FakeServer) -> None:
    server.push(Reply(hang_seconds=10))
    provider = LiteLLMProvider(lambda arn: CANARY, timeout=0.5)
    with pytest.raises(ModelUnavailableError) as caught:
        list(provider.stream(request(apiKeyArn=ARN, apiBase=f"{server.url}/v1")))
    assert CANARY not in "".join(traceback.format_exception(caught.value))


def test_supports_tools_asks_litellm(litellm: Any) -> None:
    assert supports_tools({"modelId": "gpt-4o"}) is True
    assert supports_tools({"modelId": "deepseek/deepseek-reasoner"}) is False
    assert supports_tools({"modelId": "openai/some-unmapped-local-model"}) is True
