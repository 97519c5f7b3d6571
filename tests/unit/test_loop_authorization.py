"""AuthorizeToolCalls against in-memory stores: where each tool call of a model turn goes (the server,
the client, a person), which calls are answered with an error before anything runs, and the
approval decisions audited before an approved call may run."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

import pytest

from harness import records
from harness.audit import approval_record_key
from harness.canonical import digest
from harness.ids import actor_digest
from harness.loop.state import LoopIds, LoopState
from tests.unit.loop_fakes import (
    ACTOR,
    APPROVER,
    CALLER,
    Fakes,
    ToolOutcome,
    inline_tool,
    lambda_hook,
    remote_mcp_tool,
    text_reply,
    tool_reply,
)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def _model_called(
    fakes: Fakes, *calls: tuple[str, str, dict[str, Any]], **harness: Any
) -> tuple[LoopIds, LoopState]:
    """A turn whose first model call made ``calls``: (tool-use id, tool name, input)."""
    ids = fakes.start(fakes.harness(**harness), "go")
    fakes.model.then(tool_reply(*calls))
    turn = fakes.steps.model_turn
    return ids, turn.call_model(ids, turn.load_context(ids))


def _authorize_events(fakes: Fakes, ids: LoopIds, phase: int) -> list[dict[str, Any]]:
    prefix = records.authorize_event_position(0, phase, 0)[:-4]
    return [event for position, event, _ in fakes.rows(ids) if position.startswith(prefix) and event]


def _held_for_approval(fakes: Fakes) -> tuple[LoopIds, LoopState, str]:
    """A server call an approval policy holds, paused for the client: (ids, loop, the tool's name)."""
    transfer = fakes.dispatcher.offer("bank", "transfer", {"type": "object"})
    fakes.dispatcher.approval_reasons[transfer] = "amount is over 1000"
    fakes.dispatcher.answers[transfer] = ToolOutcome([{"text": "transferred"}])
    ids, loop = _model_called(
        fakes, ("t1", transfer, {"amount": 5000, "iban": "NO9386011117947"}), tools=[remote_mcp_tool("bank")]
    )
    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)
    fakes.steps.closing.await_client(ids, batch["client"], "task-token-1", batch["approvals"])
    return ids, loop, transfer


@pytest.mark.parametrize("name", ["secret", "no_such_tool"], ids=["not-allowed", "not-configured"])
def test_a_call_outside_allowed_tools_goes_to_the_server_which_refuses_it(fakes: Fakes, name: str) -> None:
    ids, loop = _model_called(
        fakes,
        ("t1", name, {"city": "Oslo"}),
        tools=[inline_tool("lookup"), inline_tool("secret")],
        allowedTools=["lookup"],
    )

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert batch == {"server": ["t1"], "client": [], "approvals": [], "awaitClient": False, "phase": 0}
    # Nothing answered yet: RunTool refuses it and keeps the name for the audit record.
    assert fakes.results(ids) == {}


def test_input_that_does_not_match_the_tools_schema_is_answered_with_an_error(fakes: Fakes) -> None:
    ids, loop = _model_called(
        fakes,
        ("t1", "lookup", {"city": 5}),
        ("t2", "lookup", {"city": "Oslo"}),
        tools=[inline_tool("lookup")],
    )

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert batch == {"server": [], "client": ["t2"], "approvals": [], "awaitClient": True, "phase": 0}
    assert fakes.results(ids) == {
        "t1": {
            "toolUseId": "t1",
            "status": "error",
            "content": [
                {
                    "text": "The input for tool lookup does not match its schema at city: "
                    "5 is not of type 'string'"
                }
            ],
        }
    }


def test_inline_function_calls_go_to_the_client(fakes: Fakes) -> None:
    ids, loop = _model_called(
        fakes,
        ("t1", "lookup", {"city": "Oslo"}),
        ("t2", "lookup", {"city": "Rome"}),
        tools=[inline_tool("lookup")],
    )

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert batch == {"server": [], "client": ["t1", "t2"], "approvals": [], "awaitClient": True, "phase": 0}
    assert fakes.dispatcher.calls == []


def test_a_denying_before_tool_call_hook_answers_the_call_with_an_error(fakes: Fakes) -> None:
    def guard(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["toolUse"]["input"]["city"] == "Oslo":
            return {"decision": "deny", "reason": "no lookups of Oslo"}
        return {"decision": "allow"}

    arn = fakes.hooks.function("guard", guard)
    ids, loop = _model_called(
        fakes,
        ("t1", "lookup", {"city": "Oslo"}),
        ("t2", "lookup", {"city": "Rome"}),
        tools=[inline_tool("lookup")],
        hooks=[lambda_hook("beforeToolCall", "guard", arn)],
    )

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert batch["client"] == ["t2"]
    assert fakes.results(ids)["t1"] == {
        "toolUseId": "t1",
        "status": "error",
        "content": [{"text": "Hook guard denied this call of lookup: no lookups of Oslo"}],
    }
    assert [
        (e["hookEvent"]["type"], e["hookEvent"]["decision"]) for e in _authorize_events(fakes, ids, 0)
    ] == [
        ("before_tool_call", "deny"),
        ("before_tool_call", "allow"),
    ]
    assert [payload["toolUse"] for _, payload in fakes.hooks.received] == [
        {"toolUseId": "t1", "name": "lookup", "input": {"city": "Oslo"}},
        {"toolUseId": "t2", "name": "lookup", "input": {"city": "Rome"}},
    ]


def test_an_approval_policy_holds_a_server_call_for_a_person(fakes: Fakes) -> None:
    transfer = fakes.dispatcher.offer("bank", "transfer", {"type": "object"})
    fakes.dispatcher.approval_reasons[transfer] = "amount is over 1000"
    ids, loop = _model_called(fakes, ("t1", transfer, {"amount": 5000}), tools=[remote_mcp_tool("bank")])

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert batch == {"server": [], "client": ["t1"], "approvals": ["t1"], "awaitClient": True, "phase": 0}
    assert _authorize_events(fakes, ids, 0) == [
        {
            "hookEvent": {
                "hookEventId": ANY,
                "name": "approval",
                "type": "before_tool_call",
                "reason": "Approval required for t1: amount is over 1000",
            }
        }
    ]
    assert fakes.dispatcher.calls == []
    assert fakes.audit.sealed == {}


def test_an_approved_call_goes_to_the_server_after_its_decision_is_audited(fakes: Fakes) -> None:
    ids, loop, transfer = _held_for_approval(fakes)
    pause = fakes.invocation(ids)["pausePosition"]
    fakes.clock.advance(30)
    assert fakes.resume(ids, decisions={"t1": (True, "confirmed with the customer")}) == "task-token-1"

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)
    fakes.steps.tool_run.run_tool(ids, "t1", batch["phase"])

    assert batch == {"server": ["t1"], "client": [], "approvals": [], "awaitClient": False, "phase": 1}
    key = approval_record_key(ids["harnessId"], ids["invocationId"], "t1")
    assert fakes.journal == [f"audit {key}", f"call {transfer}"]
    record = fakes.audit.record(key)
    assert record == {
        "kind": "approval",
        "invocationId": ids["invocationId"],
        "harnessId": ids["harnessId"],
        "harnessVersion": 1,
        "actorDigest": actor_digest(ACTOR),
        "toolUseId": "t1",
        "tool": transfer,
        "inputDigest": digest({"amount": 5000, "iban": "NO9386011117947"}),
        "decision": "approved",
        "reason": "confirmed with the customer",
        "approver": APPROVER,
        "requestedBy": CALLER,
        "decidedAt": fakes.clock(),
    }
    assert "NO9386011117947" not in json.dumps(record)
    # A resumed stream reads after the pause: it starts with the approved call's result.
    resumed = [
        event for _, event, _ in fakes.events.read_events(ids["actorId"], ids["invocationId"], pause) if event
    ]
    assert resumed[0] == {"messageStart": {"role": "user"}}
    assert {
        "contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolResult": [{"text": "transferred"}]}}
    } in resumed


def test_a_rejected_call_is_answered_with_an_error_and_never_runs(fakes: Fakes) -> None:
    ids, loop, transfer = _held_for_approval(fakes)
    fakes.resume(ids, decisions={"t1": (False, "the customer did not ask for this")})

    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert batch == {"server": [], "client": [], "approvals": [], "awaitClient": False, "phase": 1}
    assert fakes.results(ids)["t1"] == {
        "toolUseId": "t1",
        "status": "error",
        "content": [
            {
                "text": f"A person rejected this call of {transfer}: the customer did not ask for this. "
                "Do not retry it without new instructions."
            }
        ],
    }
    key = approval_record_key(ids["harnessId"], ids["invocationId"], "t1")
    assert fakes.audit.record(key)["decision"] == "rejected"
    assert fakes.dispatcher.calls == []


def test_an_after_tool_call_hook_withholds_a_client_result_from_the_model(fakes: Fakes) -> None:
    def dlp(payload: dict[str, Any]) -> dict[str, Any]:
        if "IBAN" in json.dumps(payload["toolResult"]["content"]):
            return {"decision": "deny", "reason": "contains an account number"}
        return {"decision": "allow"}

    arn = fakes.hooks.function("dlp", dlp)
    ids, loop = _model_called(
        fakes,
        ("t1", "lookup", {"city": "Oslo"}),
        tools=[inline_tool("lookup")],
        hooks=[lambda_hook("afterToolCall", "dlp", arn)],
    )
    batch = fakes.steps.authorization.authorize_tool_calls(ids, loop)
    fakes.steps.closing.await_client(ids, batch["client"], "task-token-1", batch["approvals"])
    fakes.resume(
        ids, results=[{"toolUseId": "t1", "status": "success", "content": [{"text": "IBAN NO93 8601"}]}]
    )

    after = fakes.steps.authorization.authorize_tool_calls(ids, loop)

    assert after == {"server": [], "client": [], "approvals": [], "awaitClient": False, "phase": 1}
    result = fakes.results(ids)["t1"]
    assert (result["status"], result["content"]) == (
        "error",
        [{"text": "Hook dlp withheld this result: contains an account number"}],
    )
    assert [e["hookEvent"]["decision"] for e in _authorize_events(fakes, ids, 1)] == ["deny"]
    # The model's next request carries the withheld notice, not the client's text.
    fakes.model.then(text_reply("The lookup was withheld."))
    fakes.steps.model_turn.call_model(ids, loop)
    assert "IBAN" not in json.dumps(fakes.model.requests[-1].messages)
