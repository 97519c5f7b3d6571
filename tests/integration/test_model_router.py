"""The model router through the whole system: the real state machine, the real OpenAI provider and
SDK against fake OpenAI-compatible servers on 127.0.0.1, keys from the vault in the emulator.

Failover on 429 / 500 / a hang past the timeout, with the whole conversation (tool calls and
results included) reaching the fallback; no failover on 401; the circuit breaker; a session
that switches provider mid-way; tool support checked before a switch; truncation
(sliding window, summarization, context windows)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from harness import loop as loop_module
from harness import truncation
from harness.adapters.memory import memory_stores
from harness.providers import openai as openai_provider
from harness.providers import registry
from harness.providers.base import ModelEvent, ModelProvider, ModelRequest
from harness.providers.gemini import GeminiProvider
from harness.providers.openai import OpenAIProvider
from tests.unit.provider_servers import (
    CHAT_DONE,
    FakeServer,
    Reply,
    chat_chunk,
    chat_usage,
    gemini_chunk,
    openai_error,
)

from .support import (
    ACCOUNT_ID,
    LOCAL_MODEL,
    REGION,
    Api,
    clear_caches,
    inline_tool,
    new_session_id,
    tool_result_message,
    tool_use_id_of,
    unique_name,
)

PROVIDER_TIMEOUT_SECONDS = 1.0
VAULT_ARN_PREFIX = f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_ID}:token-vault/default"


@pytest.fixture()
def servers() -> Iterator[list[FakeServer]]:
    started = [FakeServer(), FakeServer()]
    yield started
    for server in started:
        server.close()


@pytest.fixture(autouse=True)
def fresh_router(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new AgentLoop (so new circuit breakers) per test, with a short OpenAI timeout."""

    def provider_for(model: dict[str, Any], vault: Any = None) -> ModelProvider:
        if "openAiModelConfig" in model:
            return OpenAIProvider(registry.key_lookup(model, vault), timeout=PROVIDER_TIMEOUT_SECONDS)
        return registry.provider_for(model, vault)

    monkeypatch.setattr(loop_module, "provider_for", provider_for)
    clear_caches()
    yield
    clear_caches()


def vault_key(
    aws: Any, deployment_env: dict[str, str], key: str, servers: list[FakeServer] | None = None
) -> str:
    """Store ``key`` in the vault as an operator would, allowed for these servers' apiBase; return
    the apiKeyArn that names it."""
    provider = f"openai-{uuid.uuid4().hex[:8]}"
    secret = {"apiKey": key, "apiBases": [f"{server.url}/v1" for server in servers or []]}
    aws.secretsmanager.create_secret(
        Name=f"{deployment_env['VAULT_SECRET_PREFIX']}default/{provider}", SecretString=json.dumps(secret)
    )
    return f"{VAULT_ARN_PREFIX}/apikeycredentialprovider/{provider}"


def openai_model(
    server: FakeServer, api_key_arn: str, model_id: str = "fake-model", **params: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {"modelId": model_id, "apiKeyArn": api_key_arn, "apiBase": f"{server.url}/v1"}
    if params:
        config["additionalParams"] = params
    return {"openAiModelConfig": config}


def text_reply(text: str) -> Reply:
    return Reply(
        chunks=[
            chat_chunk({"role": "assistant", "content": text}),
            chat_chunk({}, "stop"),
            chat_usage(7, 3),
            CHAT_DONE,
        ]
    )


def tool_call_reply(call_id: str, name: str, arguments: dict[str, Any]) -> Reply:
    call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    return Reply(
        chunks=[
            chat_chunk({"role": "assistant", "content": "Looking it up."}),
            chat_chunk({"tool_calls": [call]}),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(arguments)}}]}),
            chat_chunk({}, "tool_calls"),
            chat_usage(9, 4),
            CHAT_DONE,
        ]
    )


def text_of(items: list[dict[str, Any]]) -> str:
    return "".join(i["contentBlockDelta"]["delta"].get("text", "") for i in items if "contentBlockDelta" in i)


def invocation(names: dict[str, str], actor: str, response: Any) -> dict[str, Any]:
    found = memory_stores(names["memory_table"]).invocations.get_invocation(
        actor, response.header("x-amzn-invocation-id")
    )
    assert found is not None
    return found


@pytest.fixture()
def env(api: Api) -> dict[str, str]:
    return api.deployment.environment()


# -- failover ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        openai_error(429, "rate_limit_error", "rate_limit_exceeded", "Slow down"),
        openai_error(500, "server_error", "internal", "Boom"),
        Reply(hang_seconds=PROVIDER_TIMEOUT_SECONDS * 4),
    ],
    ids=["throttled-429", "server-error-500", "timeout"],
)
def test_a_failing_model_fails_over_with_the_whole_conversation(
    api: Api,
    aws: Any,
    env: dict[str, str],
    names: dict[str, str],
    servers: list[FakeServer],
    failure: Reply,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary, fallback = servers
    arn = vault_key(aws, env, f"sk-{uuid.uuid4().hex}", servers)
    model = openai_model(primary, arn, fallbackModels=[openai_model(fallback, arn, "fallback-model")])
    harness = api.create_harness(model=model, tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()

    primary.push(tool_call_reply("call_1", "lookup", {"city": "Oslo"}))
    paused = api.invoke(harness["harnessId"], "Weather in Oslo?", session_id=session, actor_id=actor)
    assert tool_use_id_of(paused.items()) == "call_1"

    primary.push(failure)
    fallback.push(text_reply("It is cold in Oslo."))
    done = api.invoke(
        harness["harnessId"], tool_result_message("call_1", "-3C"), session_id=session, actor_id=actor
    )
    items = done.items()
    assert text_of(items) == "It is cold in Oslo."
    assert {"messageStop": {"stopReason": "end_turn"}} in items
    assert items[-1]["metadata"]["usage"]["totalTokens"] == 10  # the fallback's usage

    # The fallback saw the whole conversation, the tool call and its result included.
    (received,) = fallback.requests
    assert received.body["model"] == "fallback-model"
    assert "fallbackModels" not in json.dumps(received.body)
    messages = received.body["messages"]
    assert messages[0] == {"role": "user", "content": "Weather in Oslo?"}
    assert messages[1]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "-3C"}

    record = invocation(names, actor, done)
    assert record["modelSwitches"] == [
        {
            "iteration": 1,
            "from": "openai",
            "fromModelId": "fake-model",
            "to": "openai",
            "toModelId": "fallback-model",
            "reason": "unavailable",
        }
    ]
    (logged,) = [r for r in caplog.records if r.getMessage() == "model fallback"]
    assert (logged.from_provider, logged.to_provider, logged.reason) == ("openai", "openai", "unavailable")
    output = capsys.readouterr().out
    emf = [json.loads(line) for line in output.splitlines() if '"ModelFallback"' in line and "_aws" in line]
    assert emf and emf[0]["FromProvider"] == "openai" and emf[0]["ToProvider"] == "openai"
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "ModelFallback", "Unit": "Count"}]


def test_a_failover_to_another_provider_translates_the_conversation(
    api: Api,
    aws: Any,
    env: dict[str, str],
    names: dict[str, str],
    servers: list[FakeServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenAI throttles after a tool call; Gemini (through the google-genai SDK) continues the turn."""
    openai_server, gemini_server = servers
    routed = loop_module.provider_for

    def provider_for(model: dict[str, Any], vault: Any = None) -> ModelProvider:
        if "geminiModelConfig" in model:  # the contract has no apiBase for Gemini: aim the SDK here
            lookup = registry.key_lookup(model, vault)
            return GeminiProvider(lookup, base_url=gemini_server.url, timeout=PROVIDER_TIMEOUT_SECONDS)
        return routed(model, vault)

    monkeypatch.setattr(loop_module, "provider_for", provider_for)
    openai_key, gemini_key = f"sk-{uuid.uuid4().hex}", f"gk-{uuid.uuid4().hex}"
    gemini = {"geminiModelConfig": {"modelId": "gemini-fake", "apiKeyArn": vault_key(aws, env, gemini_key)}}
    model = openai_model(openai_server, vault_key(aws, env, openai_key, servers), fallbackModels=[gemini])
    harness = api.create_harness(model=model, tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()

    openai_server.push(tool_call_reply("call_1", "lookup", {"city": "Oslo"}))
    paused = api.invoke(harness["harnessId"], "Weather in Oslo?", session_id=session, actor_id=actor)
    openai_server.push(openai_error(429, "rate_limit_error", "rate_limit_exceeded", "Slow down"))
    gemini_server.push(Reply(chunks=[gemini_chunk([{"text": "Cold in Oslo."}], "STOP", usage=(11, 4))]))
    done = api.invoke(
        harness["harnessId"],
        tool_result_message(tool_use_id_of(paused.items()), "-3C"),
        session_id=session,
        actor_id=actor,
    )
    assert text_of(done.items()) == "Cold in Oslo."

    (received,) = gemini_server.requests
    assert received.headers["x-goog-api-key"] == gemini_key
    contents = received.body["contents"]
    assert contents[0] == {"role": "user", "parts": [{"text": "Weather in Oslo?"}]}
    call = next(p["functionCall"] for p in contents[1]["parts"] if "functionCall" in p)
    assert (call["id"], call["name"], call["args"]) == ("call_1", "lookup", {"city": "Oslo"})
    (response,) = contents[2]["parts"]
    assert response["functionResponse"]["id"] == "call_1"
    assert "-3C" in json.dumps(response["functionResponse"]["response"])
    assert [(s["from"], s["to"]) for s in invocation(names, actor, done)["modelSwitches"]] == [
        ("openai", "gemini")
    ]


def test_an_authentication_error_does_not_fail_over(
    api: Api, aws: Any, env: dict[str, str], names: dict[str, str], servers: list[FakeServer]
) -> None:
    primary, fallback = servers
    arn = vault_key(aws, env, f"sk-{uuid.uuid4().hex}", servers)
    model = openai_model(primary, arn, fallbackModels=[openai_model(fallback, arn)])
    harness = api.create_harness(model=model)
    actor = unique_name()
    primary.push(openai_error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key"))

    response = api.invoke(harness["harnessId"], "hello", session_id=new_session_id(), actor_id=actor)
    kind, name, payload = response.events()[-1]
    assert (kind, name) == ("exception", "runtimeClientError")
    assert "401" in payload["message"]
    assert fallback.requests == []
    assert "modelSwitches" not in invocation(names, actor, response)


def test_when_every_model_is_unavailable_the_invocation_ends_with_a_clear_error(
    api: Api, aws: Any, env: dict[str, str], names: dict[str, str], servers: list[FakeServer]
) -> None:
    primary, fallback = servers
    arn = vault_key(aws, env, f"sk-{uuid.uuid4().hex}", servers)
    harness = api.create_harness(
        model=openai_model(primary, arn, fallbackModels=[openai_model(fallback, arn)])
    )
    primary.push(openai_error(503, "server_error", "overloaded", "Busy"))
    fallback.push(openai_error(429, "rate_limit_error", "rate_limit_exceeded", "Slow down"))
    actor = unique_name()

    response = api.invoke(harness["harnessId"], "hello", session_id=new_session_id(), actor_id=actor)
    kind, name, payload = response.events()[-1]
    assert (kind, name) == ("exception", "runtimeClientError")
    assert payload["message"].startswith("ModelUnavailableError: no model in the fallback chain is available")
    assert [s["reason"] for s in invocation(names, actor, response)["modelSwitches"]] == ["unavailable"]


def test_the_circuit_opens_after_three_failures_and_the_provider_is_not_contacted(
    api: Api, aws: Any, env: dict[str, str], servers: list[FakeServer]
) -> None:
    primary, _ = servers
    arn = vault_key(aws, env, f"sk-{uuid.uuid4().hex}", servers)
    fallback = dict(LOCAL_MODEL)
    harness = api.create_harness(model=openai_model(primary, arn, fallbackModels=[fallback]))
    for attempt in range(4):
        primary.push(openai_error(500, "server_error", "internal", "Boom"))
        response = api.invoke(
            harness["harnessId"], f"attempt {attempt}", session_id=new_session_id(), actor_id=unique_name()
        )
        assert text_of(response.items()) == f'You said: "attempt {attempt}"'  # the local fallback
    assert len(primary.requests) == 3  # the fourth call skipped the open circuit


# -- switching provider mid-session -----------------------------------------------------------------


def test_a_session_switches_provider_with_its_tool_history_intact(
    api: Api, aws: Any, env: dict[str, str], servers: list[FakeServer]
) -> None:
    server, _ = servers
    arn = vault_key(aws, env, f"sk-{uuid.uuid4().hex}", servers)
    harness = api.create_harness(model=LOCAL_MODEL, tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()

    # Turn 1 on the local model: a tool call, answered by the client.
    paused = api.invoke(
        harness["harnessId"], '/tool lookup {"city": "Oslo"}', session_id=session, actor_id=actor
    )
    call_id = tool_use_id_of(paused.items())
    answered = api.invoke(
        harness["harnessId"], tool_result_message(call_id, "-3C"), session_id=session, actor_id=actor
    )
    assert "Tool lookup returned: -3C" in text_of(answered.items())

    # Turn 2 on OpenAI (an invocation override): it receives the whole history, translated.
    server.push(text_reply("Still cold."))
    switched = api.invoke(
        harness["harnessId"],
        "And tomorrow?",
        session_id=session,
        actor_id=actor,
        extra={"model": openai_model(server, arn)},
    )
    assert text_of(switched.items()) == "Still cold."
    (received,) = server.requests
    messages = received.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[1]["tool_calls"][0]["id"] == call_id
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert messages[2] == {"role": "tool", "tool_call_id": call_id, "content": "-3C"}
    assert messages[3]["content"].startswith("Tool lookup returned")
    assert messages[4] == {"role": "user", "content": "And tomorrow?"}
    assert received.body["tools"][0]["function"]["name"] == "lookup"

    # Turn 3 back on the local model: OpenAI's reply is part of the history.
    back = api.invoke(harness["harnessId"], "/history", session_id=session, actor_id=actor)
    assert text_of(back.items()) == '/tool lookup {"city": "Oslo"}\nAnd tomorrow?\n/history'


def test_a_model_that_cannot_take_tools_is_rejected_before_the_switch(
    api: Api, aws: Any, env: dict[str, str], servers: list[FakeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = servers
    arn = vault_key(aws, env, f"sk-{uuid.uuid4().hex}", servers)
    monkeypatch.setattr(openai_provider, "supports_tools", lambda config: config["modelId"] != "no-tools")
    harness = api.create_harness(model=LOCAL_MODEL, tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    api.invoke(harness["harnessId"], "hello", session_id=session, actor_id=actor)

    rejected = api.invoke(
        harness["harnessId"],
        "hello again",
        session_id=session,
        actor_id=actor,
        extra={"model": openai_model(server, arn, "no-tools")},
    )
    assert rejected.status == 400
    assert rejected.header("x-amzn-ErrorType") == "ValidationException"
    assert [p["name"] for p in rejected.json["fieldList"]] == ["model.openAiModelConfig"]
    assert "does not support tools" in rejected.json["fieldList"][0]["message"]
    assert server.requests == []

    # Without visible tools the same model is fine.
    server.push(text_reply("ok"))
    allowed = api.invoke(
        harness["harnessId"],
        "hello again",
        session_id=session,
        actor_id=actor,
        extra={"model": openai_model(server, arn, "no-tools"), "allowedTools": []},
    )
    assert text_of(allowed.items()) == "ok"

    # CreateHarness checks the fallback models too.
    chain = {
        "liteLlmModelConfig": {
            "modelId": "local/deterministic",
            "additionalParams": {"fallbackModels": [openai_model(server, arn, "no-tools")]},
        }
    }
    created = api.call(
        "POST",
        "/harnesses",
        body={
            "harnessName": unique_name(),
            "executionRoleArn": harness["executionRoleArn"],
            "model": chain,
            "tools": [inline_tool("lookup")],
        },
    )
    assert created.status == 400
    assert [p["name"] for p in created.json["fieldList"]] == [
        "model.liteLlmModelConfig.additionalParams.fallbackModels[0]"
    ]

    # So does UpdateHarness, against the tools the harness already has; nothing changes.
    path = f"/harnesses/{harness['harnessId']}"
    updated = api.call("PATCH", path, body={"model": openai_model(server, arn, "no-tools")})
    assert updated.status == 400
    assert [p["name"] for p in updated.json["fieldList"]] == ["model.openAiModelConfig"]
    assert api.call("GET", path).json["harness"]["harnessVersion"] == harness["harnessVersion"]


# -- truncation and context windows ---------------------------------------------------------------


def test_truncation_is_stored_returned_and_updated(api: Api) -> None:
    window = {"strategy": "sliding_window", "config": {"slidingWindow": {"messagesCount": 3}}}
    harness = api.create_harness(truncation=window)
    assert harness["truncation"] == window
    fetched = api.call("GET", f"/harnesses/{harness['harnessId']}")
    assert fetched.json["harness"]["truncation"] == window
    assert api.create_harness()["truncation"] == {"strategy": "none"}
    updated = api.call(
        "PATCH", f"/harnesses/{harness['harnessId']}", body={"truncation": {"strategy": "none"}}
    )
    assert updated.json["harness"]["truncation"] == {"strategy": "none"}


def test_summarization_replaces_older_turns_in_the_request_and_is_erased_with_the_actor(
    api: Api, aws: Any, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = "Summarize briefly."
    summarize = {
        "strategy": "summarization",
        "config": {"summarization": {"preserveRecentMessages": 1, "summarizationSystemPrompt": prompt}},
    }
    summary_calls: list[ModelRequest] = []
    routed = loop_module.provider_for

    class Counting:
        def __init__(self, provider: ModelProvider) -> None:
            self.name = provider.name
            self._provider = provider

        def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
            if request.system == [prompt]:
                summary_calls.append(request)
            return self._provider.stream(request)

    def provider_for(model: dict[str, Any], vault: Any = None) -> ModelProvider:
        return Counting(routed(model, vault))

    monkeypatch.setattr(loop_module, "provider_for", provider_for)
    harness = api.create_harness(truncation=summarize, tools=[inline_tool("lookup")])
    assert harness["truncation"] == summarize
    session, actor = new_session_id(), unique_name()

    first = api.invoke(harness["harnessId"], "first", session_id=session, actor_id=actor)
    assert text_of(first.items()) == 'You said: "first"'
    assert summary_calls == []
    second = api.invoke(harness["harnessId"], "second", session_id=session, actor_id=actor).items()
    # The request was [summary of "first" + "second"]; the caller sees only the reply to it.
    assert text_of(second) == 'You said: "second"'
    assert sum("messageStart" in item for item in second) == 1
    assert len(summary_calls) == 1
    # A turn with two model calls (a tool call, then its result) summarizes the same range once.
    paused = api.invoke(harness["harnessId"], "/tool lookup {}", session_id=session, actor_id=actor)
    call_id = tool_use_id_of(paused.items())
    answered = api.invoke(
        harness["harnessId"], tool_result_message(call_id, "-3C"), session_id=session, actor_id=actor
    )
    assert text_of(answered.items()) == "Tool lookup returned: -3C"
    assert len(summary_calls) == 2
    history = api.invoke(harness["harnessId"], "/history", session_id=session, actor_id=actor).items()
    assert text_of(history) == (
        "Summary of the earlier conversation: first; second; /tool lookup {}\n/history"
    )
    assert sum("messageStart" in item for item in history) == 1
    assert len(summary_calls) == 3

    table = names["memory_table"]
    prefix = f"session#{session}#summary#"
    items = aws.dynamodb.query(
        TableName=table,
        KeyConditionExpression="actorId = :a AND begins_with(sk, :p)",
        ExpressionAttributeValues={":a": {"S": actor}, ":p": {"S": prefix}},
        ConsistentRead=True,
    )["Items"]
    assert [item["summary"]["S"] for item in items] == [
        "first",
        "first; second",
        "first; second; /tool lookup {}",
    ]
    assert all("expiresAt" in item for item in items)
    memory = memory_stores(table)
    messages = memory.conversations.list_messages_with_positions(actor, session)
    assert [item["sk"]["S"][len(prefix) :] for item in items] == [messages[i][0] for i in (1, 3, 7)]
    assert messages[0][1] == {"role": "user", "content": [{"text": "first"}]}, "storage is not summarized"

    erased = api.erase(actor)
    assert erased.status == 200, erased.raw_body
    assert erased.json["erasure"]["deleted"]["summaries"] == 3
    remaining = aws.dynamodb.query(
        TableName=table,
        KeyConditionExpression="actorId = :a",
        ExpressionAttributeValues={":a": {"S": actor}},
        ConsistentRead=True,
    )
    assert remaining["Items"] == []


def test_a_sliding_window_limits_what_the_model_sees(api: Api) -> None:
    window = {"strategy": "sliding_window", "config": {"slidingWindow": {"messagesCount": 3}}}
    harness = api.create_harness(truncation=window)
    session, actor = new_session_id(), unique_name()
    for text in ("first", "second"):
        api.invoke(harness["harnessId"], text, session_id=session, actor_id=actor)
    response = api.invoke(harness["harnessId"], "/history", session_id=session, actor_id=actor)
    assert text_of(response.items()) == "second\n/history"


def test_a_turn_larger_than_the_context_window_ends_with_a_clear_stop_reason(api: Api) -> None:
    small = {
        "liteLlmModelConfig": {
            "modelId": "local/small",
            "maxTokens": 10,
            "additionalParams": {"contextWindowTokens": 200},
        }
    }
    harness = api.create_harness(model=small)
    session, actor = new_session_id(), unique_name()

    first = api.invoke(harness["harnessId"], "short", session_id=session, actor_id=actor)
    assert text_of(first.items()) == 'You said: "short"'
    large = api.invoke(harness["harnessId"], "x" * 2000, session_id=session, actor_id=actor)
    items = large.items()
    assert {"messageStop": {"stopReason": "model_context_window_exceeded"}} in items
    assert "context window" in text_of(items)
    # Older turns are dropped to fit: the session goes on.
    after = api.invoke(harness["harnessId"], "/history", session_id=session, actor_id=actor)
    assert text_of(after.items()) == "/history"


def test_a_summary_request_is_cut_to_the_window_and_its_tokens_are_in_the_turns_usage(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = "Summarize."
    small = {
        "liteLlmModelConfig": {
            "modelId": "local/small",
            "maxTokens": 50,
            "additionalParams": {"contextWindowTokens": 400},
        }
    }
    summarize = {
        "strategy": "summarization",
        "config": {"summarization": {"preserveRecentMessages": 1, "summarizationSystemPrompt": prompt}},
    }
    summary_requests: list[ModelRequest] = []
    routed = loop_module.provider_for

    class Recording:
        def __init__(self, provider: ModelProvider) -> None:
            self.name = provider.name
            self._provider = provider

        def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
            if request.system == [prompt]:
                summary_requests.append(request)
            return self._provider.stream(request)

    monkeypatch.setattr(
        loop_module, "provider_for", lambda model, vault=None: Recording(routed(model, vault))
    )
    harness = api.create_harness(model=small, truncation=summarize)
    session, actor = new_session_id(), unique_name()
    for n in range(4):
        api.invoke(harness["harnessId"], f"turn {n} " + "y" * 300, session_id=session, actor_id=actor)
    last = api.invoke(harness["harnessId"], "latest", session_id=session, actor_id=actor).items()
    assert text_of(last) == 'You said: "latest"'
    request = summary_requests[-1]
    text = request.messages[0]["content"][0]["text"]
    # The summarized conversation no longer fits whole: its oldest part gave way, the newest stays.
    assert "earliest part of the conversation is omitted" in text
    assert "turn 3" in text and "turn 0" not in text
    assert (
        truncation.estimate_tokens(request.messages) + truncation.estimate_tokens(request.system) <= 400 - 50
    )
    # The turn's metadata counts the summary call's tokens as well as the reply's.
    (metadata,) = [item["metadata"] for item in last if "metadata" in item]
    words = len(json.dumps(request.messages[0]["content"][0]).split())
    assert metadata["usage"]["inputTokens"] >= words
