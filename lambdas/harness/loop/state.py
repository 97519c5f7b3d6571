"""What travels between the state machine and the loop's steps: ids and counters, never content.

These types are the one definition of the execution's state. ``execution_input`` builds what an
execution starts with; each step reads its event and returns its result in these shapes; the ASL
(``stacks/agent_loop.asl.json``) selects the same names, and a test holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

# Stop reasons the state machine's Choice states branch on (the rest only reach the stream).
TOOL_USE = "tool_use"
HOOK_STOPPED = "hook_stopped"
NO_STOP = "none"


class LoopIds(TypedDict):
    """``$.ids``: who and what an execution runs, fixed for its lifetime."""

    invocationId: str
    actorId: str
    sessionId: str
    harnessId: str
    harnessVersion: int
    # AwaitClient's timeout (TimeoutSecondsPath).
    clientResponseTimeoutSeconds: int


class ExecutionInput(TypedDict):
    ids: LoopIds


class LoopState(TypedDict):
    """``$.loop``: the counters LoadContext sets and every CallModel advances."""

    iteration: int
    totalTokens: int
    # When the invocation's timeoutSeconds runs out (epoch seconds).
    deadline: float
    stopReason: str


class ToolBatch(TypedDict):
    """``$.tools``: AuthorizeToolCalls' split of a model turn's tool calls (tool-use ids)."""

    server: list[str]
    client: list[str]
    approvals: list[str]
    awaitClient: bool
    # 0 before a pause for the client, 1 after it (approved calls).
    phase: int


class ToolRunResult(TypedDict):
    toolUseId: str
    status: str


class StepEvent(TypedDict):
    ids: LoopIds


class ModelStepEvent(StepEvent):
    """CallModel, AuthorizeToolCalls and Finalize."""

    loop: LoopState


class RunToolEvent(StepEvent):
    toolUseId: str
    phase: int


class AwaitClientEvent(StepEvent):
    toolUseIds: list[str]
    approvals: list[str]
    taskToken: str


class RecordFailureEvent(StepEvent):
    # Step Functions' Catch output: {"Error": ..., "Cause": ...}.
    failure: dict[str, str]


@dataclass(frozen=True)
class Ids:
    """``LoopIds`` as the steps use them."""

    invocation_id: str
    actor_id: str
    session_id: str
    harness_id: str
    harness_version: int

    @classmethod
    def of(cls, ids: LoopIds) -> Ids:
        return cls(
            invocation_id=ids["invocationId"],
            actor_id=ids["actorId"],
            session_id=ids["sessionId"],
            harness_id=ids["harnessId"],
            harness_version=int(ids["harnessVersion"]),
        )


def execution_input(ids: Ids, client_response_timeout_seconds: int) -> ExecutionInput:
    return {
        "ids": {
            "invocationId": ids.invocation_id,
            "actorId": ids.actor_id,
            "sessionId": ids.session_id,
            "harnessId": ids.harness_id,
            "harnessVersion": ids.harness_version,
            "clientResponseTimeoutSeconds": client_response_timeout_seconds,
        }
    }
