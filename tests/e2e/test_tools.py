"""Tools: inline functions pause the loop for the client; allowedTools and limits are enforced."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from e2e_support import Turn, create_harness, inline_tool, invoke, new_session_id, say, tool_result

pytestmark = pytest.mark.e2e

APPROVE = '/tool approve {"amount": 5}'


@pytest.fixture(scope="module")
def approve_harness(control: Any) -> dict[str, Any]:
    return create_harness(control, tools=[inline_tool("approve")], allowedTools=["approve"])


def _pause(data: Any, harness: dict[str, Any], session: str, command: str = APPROVE) -> dict[str, Any]:
    turn = say(data, harness["arn"], session, command)
    assert turn.stop_reason == "tool_use", turn.events
    (tool_use,) = turn.tool_uses
    return tool_use


def _resume(
    data: Any, harness: dict[str, Any], session: str, tool_use_id: str, text: str = "approved"
) -> Turn:
    return invoke(
        data, harness["arn"], session, [{"role": "user", "content": [tool_result(tool_use_id, text)]}]
    )


def _assert_validation_error(error: ClientError) -> None:
    assert error.response["Error"]["Code"] == "ValidationException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.response["Error"]["Message"]


def _history(data: Any, harness: dict[str, Any], session: str) -> str:
    return say(data, harness["arn"], session, "/history").text


def test_an_inline_tool_call_pauses_the_stream_and_a_tool_result_resumes_it(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    session = new_session_id()
    turn = say(data, approve_harness["arn"], session, APPROVE)

    assert turn.names[-2:] == ["messageStop", "metadata"]
    assert turn.stop_reason == "tool_use"
    assert "contentBlockStart" in turn.names
    (tool_use,) = turn.tool_uses
    assert tool_use["name"] == "approve"
    assert tool_use["toolUseId"]
    assert tool_use["input"] == {"amount": 5}

    resumed = _resume(data, approve_harness, session, tool_use["toolUseId"])

    assert resumed.stop_reason == "end_turn"
    assert "approved" in resumed.text
    assert resumed.text == "Tool approve returned: approved"
    # The session is free again and remembers the whole exchange.
    assert _history(data, approve_harness, session) == f"{APPROVE}\n/history"


def test_a_resume_may_repeat_the_assistant_tool_use_first(data: Any, approve_harness: dict[str, Any]) -> None:
    session = new_session_id()
    tool_use = _pause(data, approve_harness, session)

    resumed = invoke(
        data,
        approve_harness["arn"],
        session,
        [
            {"role": "assistant", "content": [{"toolUse": tool_use}]},
            {"role": "user", "content": [tool_result(tool_use["toolUseId"], "approved")]},
        ],
    )

    assert resumed.stop_reason == "end_turn"
    assert resumed.text == "Tool approve returned: approved"


def test_answering_the_same_tool_use_twice_is_a_validation_error(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    session = new_session_id()
    tool_use = _pause(data, approve_harness, session)
    assert _resume(data, approve_harness, session, tool_use["toolUseId"]).stop_reason == "end_turn"

    with pytest.raises(ClientError) as again:
        _resume(data, approve_harness, session, tool_use["toolUseId"], "approved twice")
    _assert_validation_error(again.value)
    assert tool_use["toolUseId"] in again.value.response["Error"]["Message"]
    # Nothing of the rejected answer reached the conversation.
    assert "approved twice" not in _history(data, approve_harness, session)


def test_a_tool_result_for_an_unknown_tool_use_is_a_validation_error(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    session = new_session_id()
    with pytest.raises(ClientError) as unknown:
        _resume(data, approve_harness, session, "tooluse_madeup0000000000000000")
    _assert_validation_error(unknown.value)
    assert "tooluse_madeup0000000000000000" in unknown.value.response["Error"]["Message"]
    # The rejected request did not start the session: a first real turn has an empty past.
    assert _history(data, approve_harness, session) == "/history"


def test_a_new_text_message_while_tool_uses_are_pending_is_a_validation_error(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    session = new_session_id()
    tool_use = _pause(data, approve_harness, session)

    with pytest.raises(ClientError) as pending:
        say(data, approve_harness["arn"], session, "never mind")
    _assert_validation_error(pending.value)
    message = pending.value.response["Error"]["Message"]
    assert "waiting for results of tool uses" in message
    assert tool_use["toolUseId"] in message

    # Still paused on the same call: answering it works and the rejected text was never stored.
    assert _resume(data, approve_harness, session, tool_use["toolUseId"]).stop_reason == "end_turn"
    assert _history(data, approve_harness, session) == f"{APPROVE}\n/history"


def test_a_call_to_a_tool_that_is_not_a_harness_tool_is_refused_without_pausing(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    turn = say(data, approve_harness["arn"], new_session_id(), '/tool transfer {"amount": 1}')

    assert "tool_use" in turn.stop_reasons  # the model asked for it...
    assert turn.stop_reason == "end_turn"  # ...but the turn did not pause for the client
    assert turn.text.startswith("Tool transfer returned an error:")
    assert "not available" in turn.text


def test_invocation_allowed_tools_narrow_the_harness_tools(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    turn = say(data, approve_harness["arn"], new_session_id(), "/tool approve {}", allowedTools=["other"])

    assert turn.stop_reason == "end_turn"
    assert turn.text.startswith("Tool approve returned an error:")
    assert "Tool approve is not available to this invocation" in turn.text


def test_max_iterations_ends_the_turn_when_the_model_needs_another_call(control: Any, data: Any) -> None:
    harness = create_harness(control, maxIterations=1)

    turn = say(data, harness["arn"], new_session_id(), "/tool transfer {}")

    assert turn.names[-1] in {"messageStop", "metadata"}
    assert turn.stop_reason == "max_iterations_exceeded"
    assert "maxIterations" in turn.text


def test_an_error_tool_result_reaches_the_model_as_an_error(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    session = new_session_id()
    tool_use = _pause(data, approve_harness, session)

    resumed = invoke(
        data,
        approve_harness["arn"],
        session,
        [{"role": "user", "content": [tool_result(tool_use["toolUseId"], "denied by policy", "error")]}],
    )

    assert resumed.stop_reason == "end_turn"
    assert resumed.text == "Tool approve returned an error: denied by policy"


def test_a_json_tool_result_reaches_the_model(data: Any, approve_harness: dict[str, Any]) -> None:
    session = new_session_id()
    tool_use = _pause(data, approve_harness, session)

    resumed = invoke(
        data,
        approve_harness["arn"],
        session,
        [
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": tool_use["toolUseId"],
                            "content": [{"json": {"approved": True}}],
                        }
                    }
                ],
            }
        ],
    )

    assert resumed.text == 'Tool approve returned: {"approved": true}'


def test_a_resume_that_carries_more_than_tool_results_is_a_validation_error(
    data: Any, approve_harness: dict[str, Any]
) -> None:
    session = new_session_id()
    tool_use = _pause(data, approve_harness, session)

    with pytest.raises(ClientError) as mixed:
        invoke(
            data,
            approve_harness["arn"],
            session,
            [{"role": "user", "content": [tool_result(tool_use["toolUseId"], "ok"), {"text": "and more"}]}],
        )
    _assert_validation_error(mixed.value)
    with pytest.raises(ClientError) as changed:
        invoke(
            data,
            approve_harness["arn"],
            session,
            [{"role": "user", "content": [tool_result(tool_use["toolUseId"], "ok")]}],
            maxIterations=3,
        )
    _assert_validation_error(changed.value)
    # Neither attempt used up the pause: the plain answer still works.
    assert (
        _resume(data, approve_harness, session, tool_use["toolUseId"]).text
        == "Tool approve returned: approved"
    )


def test_an_empty_allowed_tools_list_on_create_allows_no_tools(control: Any, data: Any) -> None:
    """allowedTools=[] is a valid list that allows nothing, as UpdateHarness and InvokeHarness treat it."""
    harness = create_harness(control, tools=[inline_tool("approve")], allowedTools=[])

    assert harness["allowedTools"] == []
    turn = say(data, harness["arn"], new_session_id(), "/tool approve {}")
    assert turn.stop_reason == "end_turn", "the call was let through to the client instead of being refused"
    assert "Tool approve is not available to this invocation" in turn.text


def test_an_empty_allowed_tools_list_on_update_allows_no_tools(control: Any, data: Any) -> None:
    harness = create_harness(control, tools=[inline_tool("approve")])
    updated = control.update_harness(harnessId=harness["harnessId"], allowedTools=[])["harness"]

    assert updated["allowedTools"] == []
    turn = say(data, harness["arn"], new_session_id(), "/tool approve {}")
    assert turn.stop_reason == "end_turn"
    assert "Tool approve is not available to this invocation" in turn.text
