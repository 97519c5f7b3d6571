"""When a step of the loop fails: the caller's stream ends with a clear error event, the session is
released, and a sealed audit record says what happened without any conversation content."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from typing import Any

import pytest

from handlers import dependencies
from harness.adapters.audit_log import AuditLog
from harness.ids import actor_digest
from harness.loop import AgentLoop

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

UNSERVED_BEDROCK_MODEL = {"bedrockModelConfig": {"modelId": "x"}}  # the emulator has no ConverseStream


def _audit_record(names: dict[str, str], harness_id: str, invocation_id: str) -> dict[str, Any]:
    audit = AuditLog(names["audit_bucket"], names["audit_mac_key_id"])
    deadline = time.monotonic() + 10
    while (sealed := audit.read(f"invocations/{harness_id}/{invocation_id}.json")) is None:
        assert time.monotonic() < deadline, "no audit record was written"
        time.sleep(0.05)
    assert audit.verify(sealed) is True
    record: dict[str, Any] = sealed["record"]
    return record


def test_a_failing_model_call_ends_the_stream_with_a_clear_error(
    api: Api, aws: Any, names: dict[str, str]
) -> None:
    harness = api.create_harness(model=UNSERVED_BEDROCK_MODEL)
    session, actor, secret = new_session_id(), unique_name(), f"zebra{uuid.uuid4().hex[:8]}"

    response = api.invoke(harness["harnessId"], f"secret {secret}", session_id=session, actor_id=actor)
    assert response.status == 200
    frames = response.events()
    kind, name, payload = frames[-1]
    assert (kind, name) == ("exception", "runtimeClientError")
    # moto serves no ConverseStream (HTTP 500): a failover-able error, with no fallback left.
    assert payload["message"].startswith("ModelUnavailableError: ")
    assert "Bedrock is unavailable" in payload["message"]
    assert secret not in json.dumps(frames)
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id

    # The execution went through RecordFailure and failed.
    arn = execution_arn(names["state_machine_arn"], invocation_id)
    described = wait_for_execution(aws.stepfunctions, arn)
    assert described["status"] == "FAILED"
    assert states_entered(history(aws.stepfunctions, arn)) == [
        "LoadContext",
        "InvocationAllowed",
        "CallModel",
        "RecordFailure",
        "InvocationFailed",
    ]

    record = _audit_record(names, harness["harnessId"], invocation_id)
    assert record["kind"] == "invocation"
    assert record["status"] == "FAILED"
    assert record["stopReason"] == "error"
    assert record["invocationId"] == invocation_id
    assert record["actorDigest"] == actor_digest(actor)
    assert record["failure"] == payload["message"]
    dumped = json.dumps(record)
    assert secret not in dumped
    assert actor not in dumped  # only the digest: audit records outlive erasable actor data

    # The session was released: the next turn is not a ResourceConflict.
    again = api.invoke(harness["harnessId"], "try again", session_id=session, actor_id=actor)
    assert again.status == 200, again.raw_body
    assert again.events()[-1][1] == "runtimeClientError"


def test_an_unexpected_step_error_is_reported_without_internals(
    api: Api, aws: Any, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: AgentLoop, *_: Any, **__: Any) -> Any:
        raise RuntimeError("KeyError in /var/task/harness/loop.py: table AgentHarness-MemoryTable")

    monkeypatch.setattr(AgentLoop, "call_model", explode)
    harness = api.create_harness()
    session, actor = new_session_id(), unique_name()
    response = api.invoke(harness["harnessId"], "hello", session_id=session, actor_id=actor)

    kind, name, payload = response.events()[-1]
    assert (kind, name) == ("exception", "internalServerException")
    assert "internal error" in payload["message"]
    for internal in ("KeyError", "/var/task", "MemoryTable", "RuntimeError"):
        assert internal not in payload["message"]
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    record = _audit_record(names, harness["harnessId"], invocation_id)
    assert record["status"] == "FAILED"
    assert "/var/task" not in json.dumps(record)

    monkeypatch.undo()
    assert api.invoke(harness["harnessId"], "better now", session_id=session, actor_id=actor).status == 200


def test_a_completed_turn_is_audited_too(api: Api, names: dict[str, str]) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup")])
    secret = f"zebra{uuid.uuid4().hex[:8]}"
    response = api.invoke(
        harness["harnessId"],
        f'/tool forbidden {{"q": "{secret}"}}',
        session_id=new_session_id(),
        actor_id=unique_name(),
    )
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    record = _audit_record(names, harness["harnessId"], invocation_id)
    assert record["status"] == "COMPLETED"
    assert record["stopReason"] == "end_turn"
    assert record["iterations"] == 2
    assert record["totalTokens"] > 0
    # Model-chosen tool names may carry user text: the locked record keeps only their digests.
    assert [call["nameDigest"] for call in record["refusedToolCalls"]] == [
        hashlib.sha256(b"forbidden").hexdigest()
    ]
    assert "forbidden" not in json.dumps(record)
    assert record["failure"] is None
    assert secret not in json.dumps(record)


def test_a_client_that_never_answers_times_out_and_releases_the_session(
    api: Api, aws: Any, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    impatient = dataclasses.replace(dependencies.settings(), client_response_timeout_seconds=1)
    monkeypatch.setattr(dependencies, "settings", lambda: impatient)
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(harness["harnessId"], "/tool lookup {}", session_id=session, actor_id=actor)
    invocation_id = paused.header("x-amzn-invocation-id")
    assert invocation_id
    arn = execution_arn(names["state_machine_arn"], invocation_id)

    described = wait_for_execution(aws.stepfunctions, arn, timeout=15)
    assert described["status"] == "FAILED"
    assert states_entered(history(aws.stepfunctions, arn))[-2:] == ["RecordFailure", "InvocationFailed"]
    record = _audit_record(names, harness["harnessId"], invocation_id)
    assert record["stopReason"] == "timeout_exceeded"
    assert record["failure"] == "The client did not answer the pending tool uses in time."

    # The late answer is refused; the session takes a new turn.
    late = api.invoke(
        harness["harnessId"],
        tool_result_message(tool_use_id_of(paused.items()), "too late"),
        session_id=session,
        actor_id=actor,
    )
    assert late.status == 400
    assert api.invoke(harness["harnessId"], "hello again", session_id=session, actor_id=actor).status == 200


def test_a_failure_while_closing_the_turn_does_not_leave_the_session_claimed(
    api: Api, aws: Any, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finalize and RecordFailure write the audit record before they mark the invocation finished and
    release the session. If that write fails (KMS or S3 throttling, a permissions slip), the execution
    ends with the invocation still RUNNING and the session still claimed by it: every later turn on
    the session must not be refused as ResourceConflict forever."""

    def audit_unavailable(self: AuditLog, key: str, record: dict[str, Any]) -> None:
        raise RuntimeError("ThrottlingException from KMS GenerateMac")

    harness = api.create_harness()
    session, actor = new_session_id(), unique_name()
    monkeypatch.setattr(AuditLog, "write", audit_unavailable)
    response = api.invoke(harness["harnessId"], "hello", session_id=session, actor_id=actor)
    assert response.status == 200
    kind, name, _ = response.events()[-1]
    assert (kind, name) == ("exception", "internalServerException")
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    assert (
        wait_for_execution(aws.stepfunctions, execution_arn(names["state_machine_arn"], invocation_id))[
            "status"
        ]
        == "FAILED"
    )
    monkeypatch.undo()

    next_turn = api.invoke(harness["harnessId"], "next", session_id=session, actor_id=actor)
    assert next_turn.status == 200, next_turn.json
