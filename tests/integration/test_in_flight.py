"""Invocations while the loop is still running: a retried request re-attaches, a different request
on the same session is a ResourceConflict, and a buffered response that runs out of Lambda time
ends with ``partial_turn`` while the loop goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from harness.loop import AgentLoop
from local_runtime.lambda_dispatch import LocalLambdaContext

from .support import Api, execution_arn, new_session_id, unique_name, wait_for_execution


@pytest.fixture()
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold every CallModel step until the test opens the gate."""
    opened = threading.Event()
    entered = threading.Event()
    original = AgentLoop.call_model

    def held(self: AgentLoop, ids: dict[str, Any], loop: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        entered.set()
        opened.wait(timeout=20)
        return original(self, ids, loop, **kwargs)

    monkeypatch.setattr(AgentLoop, "call_model", held)
    opened.entered = entered  # type: ignore[attr-defined]
    yield opened
    opened.set()


def test_a_retry_reattaches_and_a_different_request_conflicts(api: Api, gate: threading.Event) -> None:
    harness = api.create_harness()
    session, actor = new_session_id(), unique_name()
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(
            api.invoke, harness["harnessId"], "same words", session_id=session, actor_id=actor
        )
        assert gate.entered.wait(timeout=10)  # type: ignore[attr-defined]
        retry = pool.submit(
            api.invoke, harness["harnessId"], "same words", session_id=session, actor_id=actor
        )

        conflict = api.invoke(harness["harnessId"], "other words", session_id=session, actor_id=actor)
        assert conflict.status == 400
        assert conflict.json["reason"] == "ResourceConflict"

        gate.set()
        first_response, retry_response = first.result(timeout=30), retry.result(timeout=30)
    assert first_response.status == retry_response.status == 200
    assert first_response.header("x-amzn-invocation-id") == retry_response.header("x-amzn-invocation-id")
    assert first_response.items() == retry_response.items()
    assert first_response.items()[-2] == {"messageStop": {"stopReason": "end_turn"}}


def test_a_response_stream_out_of_time_ends_with_partial_turn(
    api: Api, aws: Any, names: dict[str, str], gate: threading.Event
) -> None:
    harness = api.create_harness()
    session, actor = new_session_id(), unique_name()
    function = api.invoke_function()
    # 5 s left, less the response margin: the handler stops reading after about 2.5 seconds
    # (the rest is room for starting the turn on a busy machine).
    short = LocalLambdaContext(function["name"], function["arn"], timeout_seconds=5)
    started = time.monotonic()
    response = api.invoke(harness["harnessId"], "slow", session_id=session, actor_id=actor, context=short)
    assert time.monotonic() - started < 4.9
    assert response.status == 200
    assert response.items()[-1] == {"messageStop": {"stopReason": "partial_turn"}}

    gate.set()
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    described = wait_for_execution(
        aws.stepfunctions, execution_arn(names["state_machine_arn"], invocation_id)
    )
    assert described["status"] == "SUCCEEDED"
    # The loop finished on its own; the session takes the next turn.
    assert api.invoke(harness["harnessId"], "/history", session_id=session, actor_id=actor).status == 200


class _SandboxKilled(BaseException):
    """What the API function sees when Lambda ends it (timeout, out of memory): nothing runs after."""


def test_a_retry_after_the_api_function_died_before_starting_the_loop_runs_the_turn(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API function claims the session (begin_turn) and then starts the execution. If it dies in
    between, the invocation stays RUNNING with no execution behind it. The client's retry of the same
    request re-attaches to that invocation; since StartExecution is idempotent by name, the retry can
    (and must) make sure the loop runs. Otherwise the retry only learns that the execution is gone,
    and the session stays claimed: every later turn is a ResourceConflict until the records expire."""
    from harness.adapters.workflow import Workflow

    harness = api.create_harness()
    session, actor = new_session_id(), unique_name()
    original = Workflow.start

    def killed(self: Workflow, invocation_id: str, execution_input: dict[str, Any]) -> None:
        raise _SandboxKilled()

    monkeypatch.setattr(Workflow, "start", killed)
    with pytest.raises(_SandboxKilled):
        api.invoke(harness["harnessId"], "hello", session_id=session, actor_id=actor)
    monkeypatch.setattr(Workflow, "start", original)

    retry = api.invoke(harness["harnessId"], "hello", session_id=session, actor_id=actor)
    assert retry.status == 200
    items = retry.items()
    next_turn = api.invoke(harness["harnessId"], "next", session_id=session, actor_id=actor)
    assert {"messageStop": {"stopReason": "end_turn"}} in items, (
        f"the turn never ran: {items}; the next turn answers {next_turn.status} "
        f"{next_turn.json if next_turn.status != 200 else ''}"
    )
    assert next_turn.status == 200
