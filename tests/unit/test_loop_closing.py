"""AwaitClient, Finalize, RecordFailure and interrupt against in-memory stores: the pause, and how a
turn ends for the caller (closing stream events), for the session (released) and for the auditor
(one sealed record with names and outcomes, never content)."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

import pytest

from harness import records
from harness.audit import invocation_record_key
from harness.canonical import text_digest
from harness.errors import CLIENT_TIMEOUT_MESSAGE, INTERNAL_FAILURE_MESSAGE
from harness.ids import actor_digest
from harness.loop.closing import INTERRUPTED_MESSAGE
from harness.loop.state import LoopIds, LoopState
from tests.unit.loop_fakes import (
    ACTOR,
    CALLER,
    START,
    Fakes,
    ToolOutcome,
    inline_tool,
    lambda_hook,
    remote_mcp_tool,
    sns_hook,
    text_reply,
    tool_reply,
)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def _answered(fakes: Fakes, **harness: Any) -> tuple[LoopIds, LoopState]:
    """A turn the model answered with text."""
    ids = fakes.start(fakes.harness(**harness), "hi")
    fakes.model.then(text_reply("Hello.", (3, 2)))
    turn = fakes.steps.model_turn
    return ids, turn.call_model(ids, turn.load_context(ids))


def _paused(fakes: Fakes) -> tuple[LoopIds, LoopState]:
    """A turn paused for the client's answer to an inline call."""
    ids = fakes.start(fakes.harness(tools=[inline_tool("lookup")]), "go")
    fakes.model.then(tool_reply(("t1", "lookup", {"city": "Oslo"})))
    turn = fakes.steps.model_turn
    loop = turn.call_model(ids, turn.load_context(ids))
    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)
    fakes.steps.closing.await_client(ids, batch["client"], "task-token-1", batch["approvals"])
    return ids, loop


def _record(fakes: Fakes, ids: LoopIds) -> dict[str, Any]:
    return fakes.audit.record(invocation_record_key(ids["harnessId"], ids["invocationId"]))


def _end_rows(fakes: Fakes, ids: LoopIds) -> list[tuple[dict[str, Any] | None, str | None]]:
    return [(event, control) for position, event, control in fakes.rows(ids) if position.startswith("9999#")]


def _session_is_free(fakes: Fakes, ids: LoopIds) -> bool:
    session = fakes.sessions.get_session(ids["actorId"], ids["sessionId"])
    return session is not None and session["activeInvocationId"] is None


def _cause(error_type: str, message: str) -> str:
    """A Lambda error as Step Functions' Catch hands it on."""
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": ["  File ..."]})


# -- AwaitClient --------------------------------------------------------------------------------------------


def test_await_client_keeps_the_token_the_pending_calls_and_the_pause_position(fakes: Fakes) -> None:
    ids, _ = _paused(fakes)

    invocation = fakes.invocation(ids)
    assert invocation["status"] == records.AWAITING_CLIENT
    assert invocation["pendingToolUseIds"] == ["t1"]
    assert invocation["pausePosition"] == records.pause_position(0)
    assert invocation["pendingApprovals"] == []
    assert "taskToken" not in invocation
    # The caller's stream ends at the pause, after the messageStop that names the pending call.
    assert fakes.rows(ids)[-1] == (records.pause_position(0), None, "pause")
    assert {"messageStop": {"stopReason": "tool_use"}} in fakes.stream(ids)
    # The token resumes the execution once.
    take = fakes.invocations.take_task_token
    assert take(ids["actorId"], ids["invocationId"], records.AWAITING_CLIENT, ["t1"]) == "task-token-1"
    assert take(ids["actorId"], ids["invocationId"], records.AWAITING_CLIENT, ["t1"]) is None


def test_await_client_keeps_the_calls_held_for_approval(fakes: Fakes) -> None:
    transfer = fakes.dispatcher.offer("bank", "transfer", {"type": "object"})
    fakes.dispatcher.approval_reasons[transfer] = "amount is over 1000"
    ids = fakes.start(fakes.harness(tools=[remote_mcp_tool("bank")]), "go")
    fakes.model.then(tool_reply(("t1", transfer, {"amount": 5000})))
    loop = fakes.steps.model_turn.call_model(ids, fakes.steps.model_turn.load_context(ids))
    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    fakes.steps.closing.await_client(ids, batch["client"], "task-token-1", batch["approvals"])

    assert fakes.invocation(ids)["pendingApprovals"] == ["t1"]


# -- Finalize -----------------------------------------------------------------------------------------------


def test_finalize_ends_the_stream_releases_the_session_and_writes_the_invocation_record(fakes: Fakes) -> None:
    ids, loop = _answered(fakes)
    stream = fakes.stream(ids)
    fakes.clock.advance(7)

    assert fakes.steps.closing.finalize(ids, loop) == {}

    # The model's messageStop already closed the reply: only the end marker follows it.
    assert fakes.stream(ids) == stream
    assert fakes.rows(ids)[-1] == (records.END_CONTROL_POSITION, None, "end")
    invocation = fakes.invocation(ids)
    assert (invocation["status"], invocation["stopReason"]) == (records.COMPLETED, "end_turn")
    assert _session_is_free(fakes, ids)
    assert _record(fakes, ids) == {
        "kind": "invocation",
        "invocationId": ids["invocationId"],
        "harnessId": ids["harnessId"],
        "harnessVersion": 1,
        "actorDigest": actor_digest(ACTOR),
        "requestedBy": CALLER,
        "status": records.COMPLETED,
        "stopReason": "end_turn",
        "iterations": 1,
        "totalTokens": 5,
        "refusedToolCalls": [],
        "toolCalls": [],
        "hookEvents": [],
        "approvals": [],
        "unavailableToolServers": [],
        "modelSwitches": [],
        "failure": None,
        "startedAt": START,
        "endedAt": START + 7,
    }
    key = invocation_record_key(ids["harnessId"], ids["invocationId"])
    sealed = fakes.audit.read(key)
    assert sealed is not None and fakes.audit.verify(sealed)


def test_the_session_takes_its_next_turn_after_finalize(fakes: Fakes) -> None:
    ids, loop = _answered(fakes)
    fakes.steps.closing.finalize(ids, loop)

    harness = fakes.harnesses.get(ids["harnessId"])
    assert harness is not None
    following = fakes.start(harness, "again")

    assert fakes.invocation(following)["turn"] == 2


def test_the_invocation_record_names_tools_and_outcomes_but_never_their_content(fakes: Fakes) -> None:
    balance = fakes.dispatcher.offer("bank", "balance", {"type": "object"})
    fakes.dispatcher.answers[balance] = ToolOutcome([{"text": "SECRET-BALANCE-42"}])
    ids = fakes.start(fakes.harness(tools=[remote_mcp_tool("bank"), inline_tool("lookup")]), "go")
    fakes.model.then(
        tool_reply(
            ("t1", balance, {"account": "PERSONAL-ACCOUNT-123"}),
            ("t2", "exfiltrate_everything", {"to": "PERSONAL-ADDRESS"}),
            ("t3", "lookup", {"city": "PERSONAL-CITY"}),
        ),
        text_reply("Done."),
    )
    steps = fakes.steps
    loop = steps.model_turn.call_model(ids, steps.model_turn.load_context(ids))
    batch = steps.authorization.authorize_tool_calls(ids, loop)
    assert (batch["server"], batch["client"]) == (["t1", "t2"], ["t3"])
    for tool_use_id in batch["server"]:
        steps.tool_run.run_tool(ids, tool_use_id)
    steps.closing.await_client(ids, batch["client"], "task-token-1", batch["approvals"])
    fakes.resume(
        ids, results=[{"toolUseId": "t3", "status": "success", "content": [{"text": "CLIENT-ANSWER"}]}]
    )
    steps.authorization.authorize_tool_calls(ids, loop)
    loop = steps.model_turn.call_model(ids, loop)

    steps.closing.finalize(ids, loop)

    record = _record(fakes, ids)
    assert record["toolCalls"] == [
        {"toolUseId": "t1", "tool": balance, "status": "success", "latencyMs": 0, "offloaded": False}
    ]
    assert record["refusedToolCalls"] == [
        {"toolUseId": "t2", "nameDigest": text_digest("exfiltrate_everything")}
    ]
    written = json.dumps(record)
    for content in ("SECRET-BALANCE", "PERSONAL-", "CLIENT-ANSWER", "exfiltrate_everything", ACTOR):
        assert content not in written


def test_the_invocation_record_names_the_tool_servers_that_could_not_be_listed(fakes: Fakes) -> None:
    fakes.dispatcher.unavailable["bank"] = "the MCP server of bank could not be listed: connection refused"
    ids, loop = _answered(fakes, tools=[remote_mcp_tool("bank")])

    fakes.steps.closing.finalize(ids, loop)

    assert _record(fakes, ids)["unavailableToolServers"] == ["bank"]


def test_finalize_after_a_hook_stopped_the_invocation_closes_the_reply_it_never_started(fakes: Fakes) -> None:
    arn = fakes.hooks.function("hours", {"decision": "deny", "reason": "outside business hours"})
    ids = fakes.start(fakes.harness(hooks=[lambda_hook("beforeInvocation", "hours", arn)]), "hi")
    loop = fakes.steps.model_turn.load_context(ids)

    fakes.steps.closing.finalize(ids, loop)

    assert fakes.stream(ids) == [
        {"hookEvent": ANY},
        {"messageStart": {"role": "assistant"}},
        {"messageStop": {"stopReason": "hook_stopped"}},
    ]
    record = _record(fakes, ids)
    assert record["stopReason"] == "hook_stopped"
    assert record["hookEvents"] == [
        {"name": "hours", "type": "before_invocation", "decision": "deny", "reason": "outside business hours"}
    ]


def test_an_after_invocation_hooks_event_comes_before_the_closing_events(fakes: Fakes) -> None:
    arn = fakes.hooks.function("hours", {"decision": "deny", "reason": "outside business hours"})
    hooks = [lambda_hook("beforeInvocation", "hours", arn), sns_hook("afterInvocation", "done")]
    ids = fakes.start(fakes.harness(hooks=hooks), "hi")
    loop = fakes.steps.model_turn.load_context(ids)

    fakes.steps.closing.finalize(ids, loop)

    assert _end_rows(fakes, ids) == [
        (
            {
                "hookEvent": {
                    "hookEventId": ANY,
                    "name": "done",
                    "type": "after_invocation",
                    "reason": "notified",
                }
            },
            None,
        ),
        ({"messageStart": {"role": "assistant"}}, None),
        ({"messageStop": {"stopReason": "hook_stopped"}}, None),
        (None, "end"),
    ]
    ((_, notification),) = fakes.hooks.notifications
    assert notification["stopReason"] == "hook_stopped"


def test_the_invocation_record_lists_each_hook_outcome_once(fakes: Fakes) -> None:
    arn = fakes.hooks.function("hours", {"decision": "deny", "reason": "outside business hours"})
    hooks = [lambda_hook("beforeInvocation", "hours", arn), sns_hook("afterInvocation", "done")]
    ids = fakes.start(fakes.harness(hooks=hooks), "hi")
    loop = fakes.steps.model_turn.load_context(ids)

    fakes.steps.closing.finalize(ids, loop)

    assert [event["name"] for event in _record(fakes, ids)["hookEvents"]] == ["hours", "done"]


def test_a_retried_finalize_writes_its_closing_events_once(fakes: Fakes) -> None:
    arn = fakes.hooks.function("hours", {"decision": "deny", "reason": "outside business hours"})
    ids = fakes.start(fakes.harness(hooks=[lambda_hook("beforeInvocation", "hours", arn)]), "hi")
    loop = fakes.steps.model_turn.load_context(ids)
    fakes.steps.closing.finalize(ids, loop)
    rows = fakes.rows(ids)

    fakes.steps.closing.finalize(ids, loop)

    assert fakes.rows(ids) == rows


# -- RecordFailure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "event"),
    [
        (
            {
                "Error": "ModelRequestError",
                "Cause": _cause("ModelRequestError", "the model rejected the tool schema"),
            },
            {"runtimeClientError": {"message": "ModelRequestError: the model rejected the tool schema"}},
        ),
        (
            {
                "Error": "ModelUnavailableError",
                "Cause": _cause("ModelUnavailableError", "no model is available"),
            },
            {"runtimeClientError": {"message": "ModelUnavailableError: no model is available"}},
        ),
        (
            {"Error": "KeyError", "Cause": _cause("KeyError", "'card-4111-1111'")},
            {"internalServerException": {"message": INTERNAL_FAILURE_MESSAGE}},
        ),
        (
            {"Error": "LoopStateError", "Cause": _cause("LoopStateError", "tool results missing for t1")},
            {"internalServerException": {"message": INTERNAL_FAILURE_MESSAGE}},
        ),
    ],
    ids=["model-request", "model-unavailable", "unknown", "loop-state"],
)
def test_record_failure_tells_the_caller_what_failed_and_releases_the_session(
    fakes: Fakes, failure: dict[str, str], event: dict[str, Any]
) -> None:
    ids, _ = _answered(fakes)

    assert fakes.steps.closing.record_failure(ids, failure) == {}

    assert _end_rows(fakes, ids) == [(event, None), (None, "end")]
    invocation = fakes.invocation(ids)
    assert (invocation["status"], invocation["stopReason"]) == (records.FAILED, "error")
    assert _session_is_free(fakes, ids)
    record = _record(fakes, ids)
    message = next(iter(event.values()))["message"]
    assert (record["status"], record["stopReason"], record["failure"]) == (records.FAILED, "error", message)
    assert (record["iterations"], record["totalTokens"]) == (None, None)


def test_a_client_that_never_answered_ends_the_turn_with_timeout_exceeded(fakes: Fakes) -> None:
    ids, _ = _paused(fakes)

    fakes.steps.closing.record_failure(ids, {"Error": "States.Timeout", "Cause": ""})

    assert _end_rows(fakes, ids) == [
        ({"messageStart": {"role": "assistant"}}, None),
        ({"messageStop": {"stopReason": "timeout_exceeded"}}, None),
        (None, "end"),
    ]
    invocation = fakes.invocation(ids)
    assert (invocation["status"], invocation["stopReason"]) == (records.FAILED, "timeout_exceeded")
    assert _record(fakes, ids)["failure"] == CLIENT_TIMEOUT_MESSAGE
    assert _session_is_free(fakes, ids)
    # A late answer finds no pause to resume.
    assert fakes.resume(ids, results=[{"toolUseId": "t1", "content": [{"text": "late"}]}]) is None


# -- interrupt ----------------------------------------------------------------------------------------------


def test_interrupt_ends_an_active_invocation_as_interrupted(fakes: Fakes) -> None:
    ids, _ = _paused(fakes)

    fakes.steps.closing.interrupt(ids["actorId"], ids["invocationId"])

    assert _end_rows(fakes, ids) == [
        ({"messageStart": {"role": "assistant"}}, None),
        ({"messageStop": {"stopReason": "interrupted"}}, None),
        (None, "end"),
    ]
    invocation = fakes.invocation(ids)
    assert (invocation["status"], invocation["stopReason"]) == (records.INTERRUPTED, "interrupted")
    assert _session_is_free(fakes, ids)
    record = _record(fakes, ids)
    assert (record["status"], record["failure"]) == (records.INTERRUPTED, INTERRUPTED_MESSAGE)
    assert list(fakes.invocations.active_invocations()) == []


def test_interrupt_leaves_a_finished_invocation_as_it_ended(fakes: Fakes) -> None:
    ids, loop = _answered(fakes)
    fakes.steps.closing.finalize(ids, loop)
    rows, record = fakes.rows(ids), _record(fakes, ids)
    fakes.clock.advance(60)

    fakes.steps.closing.interrupt(ids["actorId"], ids["invocationId"])

    assert fakes.rows(ids) == rows
    assert _record(fakes, ids) == record
    assert fakes.invocation(ids)["status"] == records.COMPLETED


def test_interrupt_of_an_unknown_invocation_does_nothing(fakes: Fakes) -> None:
    fakes.steps.closing.interrupt(ACTOR, "no-such-invocation")

    assert fakes.audit.sealed == {}
