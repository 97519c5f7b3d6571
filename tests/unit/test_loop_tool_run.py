"""RunTool against in-memory stores: a server-side call runs exactly once, its result is stored and
streamed, a call the invocation may not make is refused, large results are offloaded, and an
afterToolCall hook can withhold what the tool answered."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

import pytest

from harness import records
from harness.errors import TransientStoreError
from harness.loop.state import LoopIds
from harness.loop.tool_run import MODEL_RESULT_CHARS, TOOL_NOT_AVAILABLE
from tests.unit.loop_fakes import (
    ACTOR,
    Fakes,
    ToolOutcome,
    inline_tool,
    lambda_hook,
    remote_mcp_tool,
    tool_reply,
)

ACCOUNT = {"account": "A-1"}


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def _authorized(fakes: Fakes, *calls: tuple[str, str, dict[str, Any]], **harness: Any) -> LoopIds:
    """A turn whose first model call made ``calls``, authorized: the server calls wait for RunTool."""
    ids = fakes.start(fakes.harness(**harness), "go")
    fakes.model.then(tool_reply(*calls))
    turn = fakes.steps.model_turn
    loop = turn.call_model(ids, turn.load_context(ids))
    fakes.steps.authorization.authorize_tool_calls(ids, loop)
    return ids


def _server_call(
    fakes: Fakes, answer: ToolOutcome, hooks: list[dict[str, Any]] | None = None
) -> tuple[LoopIds, str]:
    """One call of the bank server's ``balance`` tool, authorized: (ids, the tool's model name)."""
    balance = fakes.dispatcher.offer("bank", "balance", {"type": "object"})
    fakes.dispatcher.answers[balance] = answer
    ids = _authorized(fakes, ("t1", balance, ACCOUNT), tools=[remote_mcp_tool("bank")], hooks=hooks or [])
    return ids, balance


def _tool_events(fakes: Fakes, ids: LoopIds, index: int = 0) -> list[dict[str, Any]]:
    prefix = records.tool_event_position(0, index, 0)[:-2]
    return [event for position, event, _ in fakes.rows(ids) if position.startswith(prefix) and event]


def _result_events(tool_use_id: str, status: str, content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"messageStart": {"role": "user"}},
        {
            "contentBlockStart": {
                "contentBlockIndex": 0,
                "start": {"toolResult": {"toolUseId": tool_use_id, "status": status}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolResult": content}}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "tool_result"}},
    ]


def test_a_server_call_runs_once_and_its_result_is_stored_and_streamed(fakes: Fakes) -> None:
    ids, balance = _server_call(fakes, ToolOutcome([{"text": "balance 42"}]))
    fakes.dispatcher.takes = 0.5

    ran = fakes.steps.tool_run.run_tool(ids, "t1")

    assert ran == {"toolUseId": "t1", "status": "success"}
    assert fakes.dispatcher.calls == [(balance, ACCOUNT, f"{ids['invocationId']}:t1")]
    assert fakes.result(ids, "t1") == {
        "toolUseId": "t1",
        "status": "success",
        "content": [{"text": "balance 42"}],
        "tool": balance,
        "latencyMs": 500,
    }
    assert _tool_events(fakes, ids) == _result_events("t1", "success", [{"text": "balance 42"}])
    # The model's call was streamed as a call of the server's tool.
    (start,) = [event for event in fakes.stream(ids) if "contentBlockStart" in event][:1]
    assert start["contentBlockStart"]["start"]["toolUse"] == {
        "toolUseId": "t1",
        "name": balance,
        "type": "mcp_tool_use",
        "serverName": "bank",
    }


def test_a_second_attempt_while_the_first_holds_the_claim_waits_and_the_call_runs_once(fakes: Fakes) -> None:
    attempts: list[dict[str, Any]] = []

    def flaky(arguments: dict[str, Any]) -> ToolOutcome:
        attempts.append(arguments)
        if len(attempts) == 1:
            raise RuntimeError("the function running this attempt was cut off")
        return ToolOutcome([{"text": "42"}])

    ids, balance = _server_call(fakes, ToolOutcome([]))
    fakes.dispatcher.answers[balance] = flaky
    with pytest.raises(RuntimeError):
        fakes.steps.tool_run.run_tool(ids, "t1")

    # The first attempt's claim lasts as long as it may run (the invocation's timeoutSeconds here).
    with pytest.raises(TransientStoreError):
        fakes.steps.tool_run.run_tool(ids, "t1")
    assert len(fakes.dispatcher.calls) == 1

    fakes.clock.advance(901)
    ran = fakes.steps.tool_run.run_tool(ids, "t1")

    assert ran == {"toolUseId": "t1", "status": "success"}
    # Every attempt gives the target the same idempotency key.
    assert [key for _, _, key in fakes.dispatcher.calls] == [f"{ids['invocationId']}:t1"] * 2


def test_a_step_retried_after_it_succeeded_returns_the_stored_result_without_running_the_tool_again(
    fakes: Fakes,
) -> None:
    ids, _ = _server_call(fakes, ToolOutcome([{"text": "balance 42"}]))
    first = fakes.steps.tool_run.run_tool(ids, "t1")
    stream = fakes.stream(ids)

    again = fakes.steps.tool_run.run_tool(ids, "t1")

    assert again == first
    assert len(fakes.dispatcher.calls) == 1
    assert fakes.stream(ids) == stream


@pytest.mark.parametrize("name", ["wire_money", "lookup"], ids=["not-configured", "client-tool"])
def test_a_tool_not_available_to_the_server_is_refused_and_its_name_kept(fakes: Fakes, name: str) -> None:
    ids = _authorized(fakes, ("t1", name, {"city": "Oslo"}), tools=[inline_tool("lookup")])

    ran = fakes.steps.tool_run.run_tool(ids, "t1")

    refusal = [{"text": TOOL_NOT_AVAILABLE.format(name=name)}]
    assert ran == {"toolUseId": "t1", "status": "error"}
    assert fakes.result(ids, "t1") == {
        "toolUseId": "t1",
        "status": "error",
        "content": refusal,
        "refusedToolName": name,
    }
    assert fakes.dispatcher.calls == []
    assert _tool_events(fakes, ids) == _result_events("t1", "error", refusal)


def test_a_large_result_is_kept_whole_in_the_artifacts_and_the_model_gets_its_beginning(fakes: Fakes) -> None:
    text = "A" * MODEL_RESULT_CHARS + "B" * 24_000
    ids, _ = _server_call(fakes, ToolOutcome([{"text": text}]))

    fakes.steps.tool_run.run_tool(ids, "t1")

    whole = json.dumps([{"text": text}], separators=(",", ":")).encode()
    key = f"actors/{ACTOR}/tool-results/{ids['invocationId']}/t1.json"
    assert fakes.artifacts.objects == {key: (whole, "application/json")}
    marker = (
        f"\n[Result truncated: showing {MODEL_RESULT_CHARS} of {len(text)} characters. "
        f"The whole result ({len(whole)} bytes) is stored with this session as t1.]"
    )
    shown = [{"text": "A" * MODEL_RESULT_CHARS + marker}]
    stored = fakes.result(ids, "t1")
    assert stored is not None
    assert stored["content"] == shown
    assert stored["offloaded"] == {"key": key, "bytes": len(whole)}
    assert _tool_events(fakes, ids) == _result_events("t1", "success", shown)


def test_a_small_result_is_not_offloaded(fakes: Fakes) -> None:
    ids, _ = _server_call(fakes, ToolOutcome([{"text": "balance 42"}]))

    fakes.steps.tool_run.run_tool(ids, "t1")

    assert fakes.artifacts.objects == {}


def test_an_after_tool_call_deny_withholds_the_result_from_the_stream_and_the_model(fakes: Fakes) -> None:
    arn = fakes.hooks.function("dlp", {"decision": "deny", "reason": "contains a card number"})
    ids, _ = _server_call(
        fakes,
        ToolOutcome([{"text": "card 4111 1111 1111 1111"}]),
        hooks=[lambda_hook("afterToolCall", "dlp", arn)],
    )

    ran = fakes.steps.tool_run.run_tool(ids, "t1")

    withheld = [{"text": "Hook dlp withheld this result: contains a card number"}]
    assert ran == {"toolUseId": "t1", "status": "error"}
    stored = fakes.result(ids, "t1")
    assert stored is not None
    assert (stored["status"], stored["content"]) == ("error", withheld)
    assert _tool_events(fakes, ids) == [
        {
            "hookEvent": {
                "hookEventId": ANY,
                "name": "dlp",
                "type": "after_tool_call",
                "decision": "deny",
                "reason": "contains a card number",
            }
        },
        *_result_events("t1", "error", withheld),
    ]
    assert "4111" not in json.dumps(fakes.stream(ids))
    assert "4111" not in json.dumps(fakes.results(ids))
    # The hook itself saw what it judged.
    ((_, payload),) = fakes.hooks.received
    assert payload["toolResult"] == {"status": "success", "content": [{"text": "card 4111 1111 1111 1111"}]}


@pytest.mark.parametrize("first_attempt", ["throttled", "succeeded"])
def test_a_step_retried_after_an_after_tool_call_hook_keeps_the_hook_event_and_streams_the_result_once(
    fakes: Fakes, first_attempt: str
) -> None:
    arn = fakes.hooks.function("dlp", {"decision": "allow"})
    ids, _ = _server_call(
        fakes, ToolOutcome([{"text": "balance 42"}]), hooks=[lambda_hook("afterToolCall", "dlp", arn)]
    )
    if first_attempt == "throttled":
        # The result is stored, then the table throttles the stream: Step Functions retries the step.
        fakes.events.fail_once(lambda _position, event, _control: event == {"messageStart": {"role": "user"}})
        with pytest.raises(TransientStoreError):
            fakes.steps.tool_run.run_tool(ids, "t1")
    else:
        # The step succeeded but Lambda reported a service error: Step Functions retries it.
        fakes.steps.tool_run.run_tool(ids, "t1")

    fakes.steps.tool_run.run_tool(ids, "t1")

    assert [next(iter(event)) for event in _tool_events(fakes, ids)] == [
        "hookEvent",
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
    ]
