"""The agent loop's state machine, as synthesized, run by the emulator's Step Functions interpreter:
the states a turn walks through, execution naming, and what the execution state may carry."""

from __future__ import annotations

import json
import uuid
from typing import Any

from .support import (
    Api,
    execution_arn,
    history,
    inline_tool,
    new_session_id,
    states_entered,
    tool_result_message,
    tool_use_id_of,
    unique_name,
    wait_for_execution,
)


def _marker() -> str:
    return f"zebra{uuid.uuid4().hex[:10]}"


def _assert_absent(events: list[dict[str, Any]], described: dict[str, Any], *secrets: str) -> None:
    dumped = json.dumps(events, default=str) + json.dumps(described, default=str)
    for secret in secrets:
        assert secret not in dumped, f"{secret!r} leaked into the execution's state or history"


def _ids_and_counters_only(document: str) -> None:
    """Execution inputs and outputs are ids, counters and routing lists: no conversation content."""
    state = json.loads(document)
    assert set(state) <= {"ids", "loop", "tools", "failure"}, state
    assert set(state["ids"]) == {
        "invocationId",
        "actorId",
        "sessionId",
        "harnessId",
        "harnessVersion",
        "clientResponseTimeoutSeconds",
    }
    if "loop" in state:
        assert set(state["loop"]) == {"iteration", "totalTokens", "deadline", "stopReason"}
    if "tools" in state:
        assert set(state["tools"]) == {"server", "client", "awaitClient"}


def test_a_plain_turn_runs_load_call_finalize(api: Api, aws: Any, names: dict[str, str]) -> None:
    harness = api.create_harness()
    secret = _marker()
    response = api.invoke(
        harness["harnessId"], f"my secret is {secret}", session_id=new_session_id(), actor_id=unique_name()
    )
    assert response.status == 200
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    arn = execution_arn(names["state_machine_arn"], invocation_id)

    described = wait_for_execution(aws.stepfunctions, arn)
    assert described["name"] == invocation_id
    assert described["stateMachineArn"] == names["state_machine_arn"]
    assert described["status"] == "SUCCEEDED"
    events = history(aws.stepfunctions, arn)
    assert states_entered(events) == [
        "LoadContext",
        "InvocationAllowed",
        "CallModel",
        "ModelWantsTools",
        "Finalize",
        "InvocationComplete",
    ]

    _ids_and_counters_only(described["input"])
    ids = json.loads(described["input"])["ids"]
    assert ids["invocationId"] == invocation_id
    assert ids["harnessId"] == harness["harnessId"]
    for event in events:
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            if key in event:
                _ids_and_counters_only(event[key].get("input") or event[key].get("output"))
    # The model's reply quotes the user's text: neither may reach the execution.
    _assert_absent(events, described, secret)


def test_an_inline_tool_pauses_in_await_client_and_resumes(api: Api, aws: Any, names: dict[str, str]) -> None:
    harness = api.create_harness(tools=[inline_tool("get_weather")])
    session, actor = new_session_id(), unique_name()
    city, answer = _marker(), _marker()
    paused = api.invoke(
        harness["harnessId"], f'/tool get_weather {{"city": "{city}"}}', session_id=session, actor_id=actor
    )
    invocation_id = paused.header("x-amzn-invocation-id")
    assert invocation_id
    arn = execution_arn(names["state_machine_arn"], invocation_id)

    described = aws.stepfunctions.describe_execution(executionArn=arn)
    assert described["status"] == "RUNNING"  # waiting for the client's task token
    assert states_entered(history(aws.stepfunctions, arn)) == [
        "LoadContext",
        "InvocationAllowed",
        "CallModel",
        "ModelWantsTools",
        "AuthorizeToolCalls",
        "RunTools",
        "ClientMustAnswer",
        "AwaitClient",
    ]

    resumed = api.invoke(
        harness["harnessId"],
        tool_result_message(tool_use_id_of(paused.items()), f"it is {answer}"),
        session_id=session,
        actor_id=actor,
    )
    assert resumed.status == 200
    described = wait_for_execution(aws.stepfunctions, arn)
    assert described["status"] == "SUCCEEDED"
    events = history(aws.stepfunctions, arn)
    # After the client's answer the calls are authorized again (approved calls would run now).
    assert states_entered(events)[8:] == [
        "AuthorizeToolCalls",
        "RunTools",
        "ClientMustAnswer",
        "CallModel",
        "ModelWantsTools",
        "Finalize",
        "InvocationComplete",
    ]
    authorized = next(
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in events
        if e.get("stateExitedEventDetails", {}).get("name") == "AuthorizeToolCalls"
    )
    assert authorized["tools"] == {
        "server": [],
        "client": [tool_use_id_of(paused.items())],
        "approvals": [],
        "awaitClient": True,
        "phase": 0,
    }
    _assert_absent(events, described, city, answer)


def test_a_refused_tool_call_runs_on_the_server_path(api: Api, aws: Any, names: dict[str, str]) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup")])
    response = api.invoke(
        harness["harnessId"], "/tool rm_rf {}", session_id=new_session_id(), actor_id=unique_name()
    )
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    arn = execution_arn(names["state_machine_arn"], invocation_id)
    assert wait_for_execution(aws.stepfunctions, arn)["status"] == "SUCCEEDED"
    assert states_entered(history(aws.stepfunctions, arn)) == [
        "LoadContext",
        "InvocationAllowed",
        "CallModel",
        "ModelWantsTools",
        "AuthorizeToolCalls",
        "RunTools",
        "RunTool",
        "ClientMustAnswer",
        "CallModel",
        "ModelWantsTools",
        "Finalize",
        "InvocationComplete",
    ]


def test_max_iterations_ends_the_loop_in_finalize(api: Api, aws: Any, names: dict[str, str]) -> None:
    """With maxIterations 1 the refused call's result would need a second model call: the limit
    message ends the turn instead."""
    harness = api.create_harness(tools=[inline_tool("lookup")], maxIterations=1)
    response = api.invoke(
        harness["harnessId"], "/tool nope {}", session_id=new_session_id(), actor_id=unique_name()
    )
    items = response.items()
    assert items[-1] == {"messageStop": {"stopReason": "max_iterations_exceeded"}}
    text = "".join(i["contentBlockDelta"]["delta"].get("text", "") for i in items if "contentBlockDelta" in i)
    assert "maxIterations" in text
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    arn = execution_arn(names["state_machine_arn"], invocation_id)
    assert wait_for_execution(aws.stepfunctions, arn)["status"] == "SUCCEEDED"
    assert states_entered(history(aws.stepfunctions, arn))[-2:] == ["Finalize", "InvocationComplete"]
