"""The agent loop with a scripted model in place of the provider: tool-call shapes the deterministic
model never produces (chunked or malformed arguments, several calls in one turn, other stop reasons)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness import loop as loop_module
from harness.providers.base import (
    ModelEvent,
    ModelRequest,
    Stop,
    TextDelta,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)

from .support import Api, inline_tool, new_session_id, tool_result_message, unique_name


class ScriptedModel:
    name = "scripted"

    def __init__(self, *replies: list[ModelEvent]) -> None:
        self.replies = list(replies)
        self.requests: list[ModelRequest] = []

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        self.requests.append(request)
        yield from self.replies.pop(0)


@pytest.fixture()
def script(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(*replies: list[ModelEvent]) -> ScriptedModel:
        model = ScriptedModel(*replies)
        monkeypatch.setattr(loop_module, "provider_for", lambda _config, _vault=None: model)
        return model

    return install


def _text(items: list[dict[str, Any]]) -> str:
    return "".join(i["contentBlockDelta"]["delta"].get("text", "") for i in items if "contentBlockDelta" in i)


def _last_results(request: ModelRequest) -> list[dict[str, Any]]:
    return [block["toolResult"] for block in request.messages[-1]["content"] if "toolResult" in block]


def test_chunked_tool_arguments_are_assembled(api: Api, script: Any) -> None:
    model = script(
        [
            TextDelta("Checking."),
            ToolUseStart("t1", "lookup"),
            ToolUseInputDelta("t1", '{"ci'),
            ToolUseInputDelta("t1", 'ty": "Oslo"}'),
            Stop("tool_use"),
            Usage(3, 4),
        ],
        [TextDelta("Done."), Stop("end_turn"), Usage(5, 1)],
    )
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(harness["harnessId"], "go", session_id=session, actor_id=actor)
    items = paused.items()
    assert items[:2] == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Checking."}}},
    ]
    assert {"contentBlockStop": {"contentBlockIndex": 0}} in items
    assert {
        "contentBlockStart": {
            "contentBlockIndex": 1,
            "start": {"toolUse": {"toolUseId": "t1", "name": "lookup"}},
        }
    } in items
    assert [i for i in items if "toolUse" in json.dumps(i.get("contentBlockDelta", {}))] == [
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"ci'}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": 'ty": "Oslo"}'}}}},
    ]
    assert items[-1]["metadata"]["usage"] == {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}

    resumed = api.invoke(
        harness["harnessId"], tool_result_message("t1", "cold"), session_id=session, actor_id=actor
    )
    assert _text(resumed.items()) == "Done."
    second = model.requests[1]
    assistant = second.messages[-2]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"city": "Oslo"}}},
        ],
    }
    assert _last_results(second) == [{"toolUseId": "t1", "content": [{"text": "cold"}], "status": "success"}]


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", '"text"'], ids=["truncated", "array", "string"])
def test_arguments_that_are_not_a_json_object_get_an_error_result(
    api: Api, script: Any, arguments: str
) -> None:
    model = script(
        [ToolUseStart("t1", "lookup"), ToolUseInputDelta("t1", arguments), Stop("tool_use"), Usage(1, 1)],
        [TextDelta("Sorry."), Stop("end_turn"), Usage(1, 1)],
    )
    harness = api.create_harness(tools=[inline_tool("lookup")])
    response = api.invoke(harness["harnessId"], "go", session_id=new_session_id(), actor_id=unique_name())
    # Nothing is sent to the client to answer: the loop answered the malformed call itself.
    assert response.items()[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert _text(response.items()) == "Sorry."
    results = _last_results(model.requests[1])
    assert results == [
        {
            "toolUseId": "t1",
            "status": "error",
            "content": [{"text": "The arguments for tool lookup were not a JSON object."}],
        }
    ]
    assert model.requests[1].messages[-2]["content"][0]["toolUse"]["input"] == {}


def test_a_client_call_and_a_refused_call_in_one_turn(api: Api, script: Any) -> None:
    model = script(
        [
            ToolUseStart("t-refused", "format_disk"),
            ToolUseInputDelta("t-refused", "{}"),
            ToolUseStart("t-client", "lookup"),
            ToolUseInputDelta("t-client", "{}"),
            Stop("tool_use"),
            Usage(1, 1),
        ],
        [TextDelta("Both answered."), Stop("end_turn"), Usage(1, 1)],
    )
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(harness["harnessId"], "go", session_id=session, actor_id=actor)
    items = paused.items()
    # The refused call's error result is streamed before the pause; only the client call is pending.
    refused = [i for i in items if "toolResult" in json.dumps(i.get("contentBlockStart", {}))]
    assert refused == [
        {
            "contentBlockStart": {
                "contentBlockIndex": 0,
                "start": {"toolResult": {"toolUseId": "t-refused", "status": "error"}},
            }
        }
    ]

    # Answering the refused call as if it were pending is not allowed; answering the client one is.
    wrong = api.invoke(
        harness["harnessId"], tool_result_message("t-refused", "x"), session_id=session, actor_id=actor
    )
    assert wrong.status == 400
    resumed = api.invoke(
        harness["harnessId"], tool_result_message("t-client", "ok"), session_id=session, actor_id=actor
    )
    assert _text(resumed.items()) == "Both answered."
    results = _last_results(model.requests[1])
    assert [r["toolUseId"] for r in results] == ["t-refused", "t-client"]  # the model's call order
    assert results[0]["status"] == "error" and "not available" in results[0]["content"][0]["text"]
    assert results[1] == {"toolUseId": "t-client", "content": [{"text": "ok"}], "status": "success"}


def test_the_model_sees_only_the_tools_the_invocation_may_use(api: Api, script: Any) -> None:
    model = script([TextDelta("hi"), Stop("end_turn"), Usage(1, 1)])
    harness = api.create_harness(
        tools=[inline_tool("lookup"), inline_tool("look_away"), inline_tool("erase")], allowedTools=["look*"]
    )
    api.invoke(
        harness["harnessId"],
        "go",
        session_id=new_session_id(),
        actor_id=unique_name(),
        extra={"allowedTools": ["lookup", "erase"], "systemPrompt": [{"text": "Be terse."}]},
    )
    request = model.requests[0]
    assert [spec.name for spec in request.tools] == ["lookup"]
    assert request.system == ["Be terse."]


@pytest.mark.parametrize(
    "reason", ["max_tokens", "guardrail_intervened", "content_filtered", "stop_sequence"]
)
def test_other_stop_reasons_end_the_turn(api: Api, script: Any, reason: str) -> None:
    script([TextDelta("cut"), Stop(reason), Usage(1, 1)])
    harness = api.create_harness()
    response = api.invoke(harness["harnessId"], "go", session_id=new_session_id(), actor_id=unique_name())
    assert response.items()[-2] == {"messageStop": {"stopReason": reason}}


def test_a_token_budget_stops_the_loop(api: Api, script: Any) -> None:
    script(
        [ToolUseStart("t1", "nope"), ToolUseInputDelta("t1", "{}"), Stop("tool_use"), Usage(40, 20)],
    )
    harness = api.create_harness(tools=[inline_tool("lookup")], maxTokens=50)
    response = api.invoke(harness["harnessId"], "go", session_id=new_session_id(), actor_id=unique_name())
    items = response.items()
    assert items[-1] == {"messageStop": {"stopReason": "max_tokens"}}
    assert "maxTokens" in _text(items)


def _tool_use_ids(items: list[dict[str, Any]]) -> list[str]:
    return [
        i["contentBlockStart"]["start"]["toolUse"]["toolUseId"]
        for i in items
        if "toolUse" in i.get("contentBlockStart", {}).get("start", {})
    ]


def test_a_repeated_or_invalid_tool_use_id_gets_a_fresh_one(api: Api, script: Any) -> None:
    """Results, approvals and dispatch are keyed by toolUseId: a provider that repeats an id (in
    one reply or from an earlier call of the turn) must not make two calls one."""
    model = script(
        [
            ToolUseStart("dup", "lookup"),
            ToolUseInputDelta("dup", '{"city": "Oslo"}'),
            ToolUseStart("dup", "lookup"),
            ToolUseInputDelta("dup", '{"city": "Rome"}'),
            ToolUseStart("not a valid id!", "lookup"),
            ToolUseInputDelta("not a valid id!", '{"city": "Bern"}'),
            Stop("tool_use"),
        ],
        [ToolUseStart("dup", "lookup"), ToolUseInputDelta("dup", '{"city": "Kyiv"}'), Stop("tool_use")],
        [TextDelta("Done."), Stop("end_turn")],
    )
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(harness["harnessId"], "go", session_id=session, actor_id=actor)
    first = _tool_use_ids(paused.items())
    assert first[0] == "dup" and len(set(first)) == 3
    assert all(len(i) <= 64 and i.replace("_", "").replace("-", "").isalnum() for i in first)
    answers = [{"toolResult": {"toolUseId": i, "content": [{"text": f"r{n}"}]}} for n, i in enumerate(first)]
    again = api.invoke(
        harness["harnessId"], [{"role": "user", "content": answers}], session_id=session, actor_id=actor
    )
    # The second call reused "dup": it got another id, and the first call's result stands.
    (second,) = _tool_use_ids(again.items())
    assert second not in first
    inputs = [b["toolUse"]["input"] for b in model.requests[1].messages[-2]["content"] if "toolUse" in b]
    assert inputs == [{"city": "Oslo"}, {"city": "Rome"}, {"city": "Bern"}]


def test_nan_arguments_are_malformed_not_a_number(api: Api, script: Any) -> None:
    script(
        [ToolUseStart("t1", "lookup"), ToolUseInputDelta("t1", '{"amount": NaN}'), Stop("tool_use")],
        [TextDelta("ok"), Stop("end_turn")],
    )
    harness = api.create_harness(tools=[inline_tool("lookup")])
    response = api.invoke(harness["harnessId"], "go", session_id=new_session_id(), actor_id=unique_name())
    items = response.items()
    # No pause for the client: the call was answered with an error for the model.
    assert items[-2] == {"messageStop": {"stopReason": "end_turn"}}
