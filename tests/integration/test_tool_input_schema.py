"""Arguments that fail a tool's inputSchema go back to the model as a tool error naming the
field; they never reach the tool's target (for an inline function: the client)."""

from __future__ import annotations

from typing import Any

from .support import Api, new_session_id, unique_name

APPROVE = {
    "type": "inline_function",
    "name": "approve",
    "config": {
        "inlineFunction": {
            "description": "ask a human to approve a payment",
            "inputSchema": {
                "type": "object",
                "properties": {"amount": {"type": "number"}},
                "required": ["amount"],
            },
        }
    },
}


def _text(items: list[dict[str, Any]]) -> str:
    return "".join(
        item["contentBlockDelta"]["delta"].get("text", "") for item in items if "contentBlockDelta" in item
    )


def _stop_reasons(items: list[dict[str, Any]]) -> list[str]:
    return [item["messageStop"]["stopReason"] for item in items if "messageStop" in item]


def test_arguments_that_fail_the_schema_are_a_tool_error_and_never_reach_the_client(api: Api) -> None:
    harness = api.create_harness(tools=[APPROVE])
    session, actor = new_session_id(), unique_name()

    bad = api.invoke(
        harness["harnessId"], '/tool approve {"amount": "ten"}', session_id=session, actor_id=actor
    )
    items = bad.items()
    # No pause for the client: the turn went straight back to the model with the error.
    assert _stop_reasons(items)[0] == "tool_use"
    assert _stop_reasons(items)[-1] == "end_turn"
    assert "Tool approve returned an error" in _text(items)
    assert "at amount" in _text(items) and "'ten' is not of type 'number'" in _text(items)

    good = api.invoke(
        harness["harnessId"], '/tool approve {"amount": 10}', session_id=session, actor_id=actor
    )
    assert _stop_reasons(good.items())[-1] == "tool_use"  # a valid call pauses for the client


def test_a_harness_whose_tool_schema_is_not_json_schema_is_rejected_by_field(api: Api) -> None:
    broken = APPROVE | {"config": {"inlineFunction": {"description": "d", "inputSchema": {"type": "objekt"}}}}
    response = api.call(
        "POST",
        "/harnesses",
        body={
            "harnessName": unique_name(),
            "executionRoleArn": "arn:aws:iam::123456789012:role/x",
            "tools": [broken],
        },
    )
    assert response.status == 400
    assert response.header("x-amzn-ErrorType") == "ValidationException"
    assert [f["name"] for f in response.json["fieldList"]] == ["tools[0].config.inlineFunction.inputSchema"]
