"""Invocations while the loop is still running: a retried request re-attaches, a different request
on the same session is a ResourceConflict, and a buffered response that runs out of Lambda time
ends with ``partial_turn`` while the loop goes on."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

import handlers.api
from harness import invocations
from harness.invocations import InvocationStream
from harness.loop import AgentLoop
from local_runtime.lambda_dispatch import LocalLambdaContext

from .support import Api, execution_arn, new_session_id, unique_name, wait_for_execution

#: How long a test waits for what happens at once unless the code under test is broken.
PATIENCE_SECONDS = 60


class SkippingClock:
    """Monotonic time that passes only when the code under test sleeps, and at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ContextOnClock(LocalLambdaContext):
    """A Lambda context whose time runs on ``clock``."""

    clock: SkippingClock = field(default_factory=SkippingClock)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (self.clock() - self._started)) * 1000))


@pytest.fixture()
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold every CallModel step until the test opens the gate."""
    opened = threading.Event()
    entered = threading.Event()
    original = AgentLoop.call_model

    def held(self: AgentLoop, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        opened.wait(timeout=PATIENCE_SECONDS)
        return original(self, *args, **kwargs)

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
        assert gate.entered.wait(timeout=PATIENCE_SECONDS)  # type: ignore[attr-defined]
        retry = pool.submit(
            api.invoke, harness["harnessId"], "same words", session_id=session, actor_id=actor
        )

        conflict = api.invoke(harness["harnessId"], "other words", session_id=session, actor_id=actor)
        assert conflict.status == 400
        assert conflict.json["reason"] == "ResourceConflict"

        gate.set()
        first_response = first.result(timeout=PATIENCE_SECONDS)
        retry_response = retry.result(timeout=PATIENCE_SECONDS)
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
    # The function's time, the response's deadline and the stream's polling all run on one clock
    # that moves only as the stream waits for events: the model call is held (gate), so the stream
    # waits until the function's 5 s, less the response margin, are nearly up.
    clock = SkippingClock()
    short = ContextOnClock(function["name"], function["arn"], timeout_seconds=5, clock=clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handlers.api, "time", SimpleNamespace(monotonic=clock))
        patch.setattr(
            invocations,
            "InvocationStream",
            functools.partial(InvocationStream, clock=clock, sleep=clock.sleep),
        )
        response = api.invoke(harness["harnessId"], "slow", session_id=session, actor_id=actor, context=short)
    assert response.status == 200
    assert response.items()[-1] == {"messageStop": {"stopReason": "partial_turn"}}
    # The stream ended while the function still had time to send it, and the loop went on.
    assert short.get_remaining_time_in_millis() > 0
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    execution = execution_arn(names["state_machine_arn"], invocation_id)
    assert aws.stepfunctions.describe_execution(executionArn=execution)["status"] == "RUNNING"

    gate.set()
    described = wait_for_execution(aws.stepfunctions, execution, timeout=PATIENCE_SECONDS)
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
