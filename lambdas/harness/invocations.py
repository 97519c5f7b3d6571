"""InvokeHarness: start a turn of the agent loop, or resume one paused on client tool uses, and
stream its events back.

The invocation id is the execution name: a retried request that finds its own invocation still
running re-attaches to that stream instead of starting the loop twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from harness import contract, records
from harness.approvals import decision_from_tool_result
from harness.canonical import digest
from harness.configuration_checks import (
    ToolPolicy,
    configuration_problems,
    raise_problems,
    tool_support_problems,
)
from harness.errors import (
    AccessDeniedError,
    FieldProblem,
    InternalError,
    ResourceConflictError,
    ResourceNotFoundError,
    ValidationError,
)
from harness.ids import Account, actor_digest, check_actor_id, harness_id_from_arn, new_invocation_id
from harness.loop.state import ExecutionInput, Ids, execution_input
from harness.stores import EventLog, Executions, HarnessVersions, MemoryStores, SessionRefusal
from harness.tools.registry import SERVER_TYPES

DATA = "bedrock-agentcore"
DEFAULT_ACTOR = "default"
# Request members this deployment implements; the rest of the contract is rejected by name.
_IMPLEMENTED_BODY = {"messages", "actorId", *records.OVERRIDES}
_SUPPORTED_BLOCKS = {"text", "toolUse", "toolResult"}
POLL_SECONDS = 0.05
LIVENESS_CHECK_SECONDS = 2.0
# An invocation younger than this may still be between claiming its session and starting its
# execution: it is not abandoned for lack of an execution.
START_GRACE_SECONDS = 30.0
EXECUTION_GONE = "The invocation stopped without finishing its stream; its execution is no longer running."
SESSION_OF_ANOTHER_ACTOR = "runtimeSessionId belongs to another actor; choose a new session id."
SESSION_OF_ANOTHER_HARNESS = (
    "runtimeSessionId is bound to another harness; start a new session for this harness."
)
TURN_IN_PROGRESS = (
    "This session has an invocation in progress; wait for it to finish or answer its pending tool uses."
)


def _foreign_servers(tools: list[dict[str, Any]] | None, harness: dict[str, Any]) -> list[FieldProblem]:
    """Tool servers an invocation names that the harness does not: an invocation may leave out or
    repeat the harness's remote_mcp and agentcore_gateway entries, never add or rename one (its
    allowedTools select tools by entry name, and a server entry reaches a URL or a gateway)."""
    own = [t for t in harness.get("tools") or [] if t.get("type") in SERVER_TYPES]
    problems = []
    for index, tool in enumerate(tools or []):
        if tool.get("type") in SERVER_TYPES and tool not in own:
            problems.append(
                FieldProblem(
                    f"tools[{index}]",
                    "an invocation may use only the harness's own remote_mcp and agentcore_gateway "
                    "entries, unchanged",
                )
            )
    return problems


def _check_messages(messages: list[dict[str, Any]]) -> None:
    problems: list[FieldProblem] = []
    if not messages:
        problems.append(FieldProblem("messages", "at least one message is required"))
    for m_index, message in enumerate(messages):
        if not message.get("content"):
            problems.append(
                FieldProblem(f"messages[{m_index}].content", "at least one content block is required")
            )
        for b_index, block in enumerate(message.get("content", [])):
            for kind in block:
                if kind not in _SUPPORTED_BLOCKS:
                    problems.append(
                        FieldProblem(
                            f"messages[{m_index}].content[{b_index}].{kind}",
                            f"{kind} blocks are not supported by this deployment yet",
                        )
                    )
    if messages and messages[-1].get("role") != "user":
        problems.append(
            FieldProblem(f"messages[{len(messages) - 1}].role", "the last message must be from the user")
        )
    if problems:
        raise ValidationError("The messages are not a valid conversation turn.", fields=problems)


def _refused(refusal: SessionRefusal) -> Exception:
    if refusal is SessionRefusal.OWNED_BY_ANOTHER_ACTOR:
        return AccessDeniedError(SESSION_OF_ANOTHER_ACTOR)
    if refusal is SessionRefusal.BOUND_TO_ANOTHER_HARNESS:
        return ValidationError(SESSION_OF_ANOTHER_HARNESS)
    return ResourceConflictError(TURN_IN_PROGRESS)


def _tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [block["toolResult"] for m in messages for block in m.get("content", []) if "toolResult" in block]


class InvocationStream:
    """Stream events of one invocation from a position on, until the loop ends or pauses."""

    def __init__(
        self,
        events: EventLog,
        actor_id: str,
        invocation_id: str,
        after: str | None,
        is_running: Callable[[], bool],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.invocation_id = invocation_id
        self._events = events
        self._actor_id = actor_id
        self._after = after
        self._is_running = is_running
        self._sleep = sleep
        self._clock = clock

    def events(self, deadline: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield stream events as the loop writes them.

        ``deadline`` (a ``time.monotonic`` value) bounds a buffered response such as a Lambda
        behind API Gateway: past it, the stream ends with ``partial_turn`` and the loop goes on.
        """
        quiet_since = self._clock()
        execution_gone = False
        while True:
            rows = self._events.read_events(self._actor_id, self.invocation_id, self._after)
            for position, event, control in rows:
                self._after = position
                if event is not None:
                    yield event
                if control in {"pause", "end"}:
                    return
            if execution_gone:
                # The execution ended without its closing events (it was stopped, or its last
                # step failed): say so instead of waiting forever.
                yield {"internalServerException": {"message": EXECUTION_GONE}}
                return
            now = self._clock()
            if rows:
                quiet_since = now
            elif now - quiet_since >= LIVENESS_CHECK_SECONDS:
                quiet_since = now
                execution_gone = not self._is_running()  # read once more before reporting it
                continue
            if deadline is not None and now >= deadline:
                yield {"messageStop": {"stopReason": "partial_turn"}}
                return
            self._sleep(POLL_SECONDS)


class Invocations:
    def __init__(
        self,
        harnesses: HarnessVersions,
        memory: MemoryStores,
        workflow: Executions,
        account: Account,
        client_response_timeout_seconds: int,
        clock: Callable[[], float] = time.time,
        tool_policy: ToolPolicy | None = None,
    ) -> None:
        self._tool_policy = tool_policy or ToolPolicy()
        self._harnesses = harnesses
        self._memory = memory
        self._workflow = workflow
        self._account = account
        self._client_timeout = client_response_timeout_seconds
        self._clock = clock

    def invoke(
        self, body: dict[str, Any], params: dict[str, Any], caller: str | None = None
    ) -> InvocationStream:
        """``caller`` is the authenticated principal of the request (API Gateway's identity): it is
        recorded as the approver when the request answers a pending approval."""
        contract.validate_request(DATA, "InvokeHarness", body, params)
        unsupported = [
            FieldProblem(name, f"{name} is not supported by this deployment yet")
            for name in body
            if name not in _IMPLEMENTED_BODY
        ]
        if params.get("qualifier"):
            unsupported.append(
                FieldProblem("qualifier", "harness endpoints are not supported by this deployment yet")
            )
        overrides = {name: body[name] for name in records.OVERRIDES if name in body}
        raise_problems(unsupported + configuration_problems(overrides, self._tool_policy))
        messages = body["messages"]
        _check_messages(messages)
        actor_id = check_actor_id(body.get("actorId") or params.get("runtimeUserId") or DEFAULT_ACTOR)
        session_id = params["runtimeSessionId"]
        harness_id = harness_id_from_arn(params["harnessArn"], self._account)
        harness = self._harnesses.get(harness_id)
        if harness is None:
            raise ResourceNotFoundError(f"No harness {harness_id} exists.")
        raise_problems(_foreign_servers(overrides.get("tools"), harness))
        # Before any switch of model: every model of the chain must support the visible tools.
        raise_problems(tool_support_problems(overrides, base=harness))

        owner = self._memory.sessions.session_owner_digest(session_id)
        if owner is not None and owner != actor_digest(actor_id):
            raise AccessDeniedError(SESSION_OF_ANOTHER_ACTOR)
        session = self._memory.sessions.get_session(actor_id, session_id)
        if session and session.get("harnessId") not in (None, harness_id):
            raise ValidationError(SESSION_OF_ANOTHER_HARNESS)
        if session and session.get("activeInvocationId"):
            active = self._memory.invocations.get_invocation(actor_id, session["activeInvocationId"])
            if active and active["status"] in records.ACTIVE_STATUSES:
                stream = self._continue(actor_id, active, body, caller)
                if stream is not None:
                    return stream
            else:
                # A finished invocation that did not release the session (its last step failed).
                self._memory.sessions.end_turn(actor_id, session_id, session["activeInvocationId"])
        if _tool_results(messages):
            ids = ", ".join(r["toolUseId"] for r in _tool_results(messages))
            raise ValidationError(
                f"No pending tool use in this session matches toolUseId {ids}: "
                "it is unknown or already answered.",
                fields=[FieldProblem("messages", f"unknown or already-answered toolUseId {ids}")],
            )
        return self._start(actor_id, session_id, harness, body, params, caller)

    def _continue(
        self, actor_id: str, active: dict[str, Any], body: dict[str, Any], caller: str | None
    ) -> InvocationStream | None:
        """Resume, re-attach to, or settle the invocation in progress; None when the session is free."""
        invocation_id = active["invocationId"]
        execution = self._workflow.status(invocation_id)
        same_request = active["status"] == records.RUNNING and active.get("inputDigest") == digest(
            body["messages"]
        )
        if execution is None and same_request:
            # The request that created it failed before starting the loop: this retry starts it.
            self._workflow.start(invocation_id, self._execution_input(actor_id, active))
            return self._stream(actor_id, invocation_id, after=None)
        starting = execution is None and self._clock() - float(active["createdAt"]) < START_GRACE_SECONDS
        if execution != "RUNNING" and not starting:
            self._abandon(actor_id, active)
            return None
        if active["status"] == records.AWAITING_CLIENT:
            return self._resume(actor_id, active, body, caller)
        if same_request:
            return self._stream(actor_id, invocation_id, after=None)
        raise ResourceConflictError("This session has an invocation in progress; wait for it to finish.")

    def _abandon(self, actor_id: str, invocation: dict[str, Any]) -> None:
        """End an invocation whose execution is gone, so it cannot hold its session forever."""
        invocation_id = invocation["invocationId"]
        if not self._memory.invocations.update_invocation(
            actor_id, invocation_id, status=records.FAILED, expected_status=invocation["status"]
        ):
            return
        self._memory.events.put_event(
            actor_id,
            invocation_id,
            records.end_position(0),
            event={"internalServerException": {"message": EXECUTION_GONE}},
            expires_at=invocation["expiresAt"],
        )
        self._memory.events.put_event(
            actor_id,
            invocation_id,
            records.END_CONTROL_POSITION,
            control="end",
            expires_at=invocation["expiresAt"],
        )
        self._memory.sessions.end_turn(actor_id, invocation["sessionId"], invocation_id)

    def _execution_input(self, actor_id: str, invocation: dict[str, Any]) -> ExecutionInput:
        # Ids and counters only: the execution never carries conversation content.
        ids = Ids(
            invocation["invocationId"],
            actor_id,
            invocation["sessionId"],
            invocation["harnessId"],
            invocation["harnessVersion"],
        )
        return execution_input(ids, self._client_timeout)

    def _start(
        self,
        actor_id: str,
        session_id: str,
        harness: dict[str, Any],
        body: dict[str, Any],
        params: dict[str, Any],
        caller: str | None,
    ) -> InvocationStream:
        now = int(self._clock())
        expiry_days = int(harness["memory"]["managedMemoryConfiguration"]["eventExpiryDuration"])
        expires_at = now + expiry_days * 86400
        invocation_id = new_invocation_id()
        overrides = {name: body[name] for name in records.OVERRIDES if name in body}
        invocation = {
            "invocationId": invocation_id,
            "sessionId": session_id,
            "harnessId": harness["harnessId"],
            "harnessVersion": harness["harnessVersion"],
            "status": records.RUNNING,
            "createdAt": now,
            "expiresAt": expires_at,
            "input": body["messages"],
            "inputDigest": digest(body["messages"]),
            "overrides": overrides,
            "traceId": params.get("traceId"),
            # Who started the turn: the one principal that may not approve its tool calls.
            "requestedBy": caller,
        }
        turn = self._memory.sessions.begin_turn(
            actor_id=actor_id,
            actor_digest=actor_digest(actor_id),
            session_id=session_id,
            harness_id=harness["harnessId"],
            invocation=invocation | {"turn": 0},
            expires_at=expires_at,
        )
        if isinstance(turn, SessionRefusal):
            raise _refused(turn)
        self._memory.invocations.update_invocation(
            actor_id, invocation_id, status=records.RUNNING, fields={"turn": turn}
        )
        try:
            self._workflow.start(invocation_id, self._execution_input(actor_id, invocation))
        except Exception as error:
            self._memory.invocations.update_invocation(actor_id, invocation_id, status=records.FAILED)
            self._memory.sessions.end_turn(actor_id, session_id, invocation_id)
            raise InternalError(
                "The agent loop could not be started; nothing was run. Retry the request."
            ) from error
        return self._stream(actor_id, invocation_id, after=None)

    def _stream(self, actor_id: str, invocation_id: str, after: str | None) -> InvocationStream:
        return InvocationStream(
            self._memory.events,
            actor_id,
            invocation_id,
            after,
            is_running=lambda: self._workflow.is_running(invocation_id),
        )

    def _resume(
        self, actor_id: str, invocation: dict[str, Any], body: dict[str, Any], caller: str | None
    ) -> InvocationStream:
        pending = list(invocation.get("pendingToolUseIds", []))
        approvals = set(invocation.get("pendingApprovals", []))
        messages = body["messages"]
        overrides = {name: body[name] for name in records.OVERRIDES if name in body}
        if overrides and overrides != invocation.get("overrides", {}):
            raise ValidationError(
                "A resume must not change the invocation's configuration: "
                + ", ".join(sorted(overrides))
                + " differ from the paused invocation."
            )
        problems: list[FieldProblem] = []
        for m_index, message in enumerate(messages):
            for b_index, block in enumerate(message["content"]):
                path = f"messages[{m_index}].content[{b_index}]"
                if message["role"] == "assistant":
                    # Clients may repeat the assistant's toolUse message before their results.
                    call = block.get("toolUse")
                    if not call or call["toolUseId"] not in pending:
                        problems.append(FieldProblem(path, "only the pending toolUse blocks may be repeated"))
                elif "toolResult" not in block:
                    problems.append(FieldProblem(path, "a resume carries only toolResult blocks"))
        answered = [r["toolUseId"] for r in _tool_results(messages)]
        unknown = sorted(set(answered) - set(pending))
        missing = [tool_use_id for tool_use_id in pending if tool_use_id not in answered]
        if unknown:
            problems.append(
                FieldProblem("messages", f"unknown or already-answered toolUseId {', '.join(unknown)}")
            )
        if missing:
            problems.append(
                FieldProblem("messages", f"missing toolResult for pending toolUseId {', '.join(missing)}")
            )
        if len(answered) != len(set(answered)):
            problems.append(FieldProblem("messages", "each pending toolUseId must be answered once"))
        decisions = {}
        for result in _tool_results(messages):
            if result["toolUseId"] in approvals:
                try:
                    decisions[result["toolUseId"]] = decision_from_tool_result(result)
                except ValueError as error:
                    problems.append(FieldProblem("messages", f"approval of {result['toolUseId']}: {error}"))
        if decisions and self._tool_policy.separate_approver:
            requester = invocation.get("requestedBy")
            if caller is None or caller == requester:
                raise AccessDeniedError(
                    "Approvals need a second principal: the caller that started this turn (or an "
                    "unauthenticated caller) cannot approve or reject its tool calls."
                )
        if problems:
            raise ValidationError(
                f"This session is waiting for results of tool uses {', '.join(pending)}; "
                + "; ".join(p.message for p in problems),
                fields=problems,
            )
        token = self._memory.invocations.take_task_token(
            actor_id, invocation["invocationId"], records.AWAITING_CLIENT, pending
        )
        if token is None:
            raise ValidationError(
                "These tool uses were already answered.",
                fields=[FieldProblem("messages", f"already-answered toolUseId {', '.join(answered)}")],
            )
        for result in _tool_results(messages):
            decision = decisions.get(result["toolUseId"])
            if decision is not None:
                # The approved call runs after the loop resumes; the decision is audited before it.
                self._memory.tool_calls.put_approval(
                    actor_id,
                    invocation["invocationId"],
                    {
                        "toolUseId": result["toolUseId"],
                        "approved": decision.approved,
                        "reason": decision.reason,
                        "approver": caller or "unauthenticated caller",
                        "requestedBy": invocation.get("requestedBy"),
                        "decidedAt": self._clock(),
                    },
                    invocation["expiresAt"],
                )
                continue
            stored = {
                "toolUseId": result["toolUseId"],
                "content": result["content"],
                "status": result.get("status", "success"),
            }
            self._memory.tool_calls.put_tool_result(
                actor_id, invocation["invocationId"], stored, invocation["expiresAt"]
            )
        self._workflow.resume(token, {"answered": answered})
        return self._stream(actor_id, invocation["invocationId"], after=invocation.get("pausePosition"))
