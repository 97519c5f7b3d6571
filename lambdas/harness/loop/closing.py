"""AwaitClient, Finalize and RecordFailure: pause for the client, and end the turn (completed,
failed or interrupted) with its closing events, the session released and its audit record."""

from __future__ import annotations

from typing import Any

from harness import records
from harness.audit import AuditTrail, TurnOutcome
from harness.errors import STATES_TIMEOUT, describe_failure
from harness.hooks import hook_specs
from harness.loop.context import LoopContext, hook_payload, subject_of
from harness.loop.state import HOOK_STOPPED, Ids, LoopIds, LoopState

INTERRUPTED_MESSAGE = "The runtime restarted while this invocation was in progress."


def _closing_events(stop_reason: str) -> list[dict[str, Any]]:
    return [{"messageStart": {"role": "assistant"}}, {"messageStop": {"stopReason": stop_reason}}]


class Closing:
    def __init__(self, context: LoopContext, audit: AuditTrail) -> None:
        self._context = context
        self._memory = context.memory
        self._audit = audit

    # -- AwaitClient ------------------------------------------------------------------------------------

    def await_client(
        self, raw_ids: LoopIds, tool_use_ids: list[str], task_token: str, approvals: list[str] | None = None
    ) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        iteration, _, _ = self._context.find_tool_use(ids, invocation["turn"], tool_use_ids[0])
        position = records.pause_position(iteration)
        self._memory.invocations.update_invocation(
            ids.actor_id,
            ids.invocation_id,
            status=records.AWAITING_CLIENT,
            task_token=task_token,
            pending_tool_use_ids=tool_use_ids,
            fields={"pausePosition": position, "pendingApprovals": approvals or []},
        )
        # The caller's stream ends here; the messageStop(tool_use) before it names the pending calls.
        self._memory.events.put_event(
            ids.actor_id, ids.invocation_id, position, control="pause", expires_at=invocation["expiresAt"]
        )
        return {}

    # -- Finalize / RecordFailure -----------------------------------------------------------------------

    def finalize(self, raw_ids: LoopIds, loop: LoopState, deadline: float | None = None) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        # After a hook stopped the invocation, the hookEvent before these says which and why.
        events = _closing_events(HOOK_STOPPED) if loop["stopReason"] == HOOK_STOPPED else []
        outcome = TurnOutcome(
            records.COMPLETED, loop["stopReason"], loop["iteration"], loop["totalTokens"], failure=None
        )
        self._close(ids, invocation, outcome, events, deadline)
        return {}

    def record_failure(
        self, raw_ids: LoopIds, failure: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        described = describe_failure(failure)
        if described.error == STATES_TIMEOUT:
            events = _closing_events("timeout_exceeded")
            stop_reason = "timeout_exceeded"
        else:
            events = [{described.stream_event: {"message": described.message}}]
            stop_reason = "error"
        outcome = TurnOutcome(records.FAILED, stop_reason, None, None, failure=described.message)
        self._close(ids, invocation, outcome, events, deadline)
        return {}

    def interrupt(self, actor_id: str, invocation_id: str) -> None:
        """End an invocation whose execution no longer exists (for example after the local runtime
        restarted): the stream says ``interrupted``, the session is released, the audit log records it."""
        invocation = self._memory.invocations.get_invocation(actor_id, invocation_id)
        if invocation is None or invocation["status"] not in records.ACTIVE_STATUSES:
            return
        ids = Ids(
            invocation_id,
            actor_id,
            invocation["sessionId"],
            invocation["harnessId"],
            int(invocation["harnessVersion"]),
        )
        outcome = TurnOutcome(records.INTERRUPTED, "interrupted", None, None, failure=INTERRUPTED_MESSAGE)
        self._close(ids, invocation, outcome, _closing_events("interrupted"), None)

    def _close(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        outcome: TurnOutcome,
        events: list[dict[str, Any]],
        deadline: float | None,
    ) -> None:
        expires = invocation["expiresAt"]
        harness = self._context.harnesses.get(ids.harness_id, ids.harness_version) or {}
        hook_events: list[dict[str, Any]] = []
        self._context.run_hooks(
            hook_specs(harness.get("hooks") or []),
            "afterInvocation",
            hook_payload(ids, "afterInvocation", stop_reason=outcome.stop_reason),
            hook_events.append,
            deadline,
        )
        # Before the closing events: a client reads up to messageStop and may stop there.
        events = hook_events + events
        for n, event in enumerate(events):
            self._memory.events.put_event(
                ids.actor_id, ids.invocation_id, records.end_position(n), event=event, expires_at=expires
            )
        # Release the session before the audit write: a failing write is retried (and then
        # recorded by RecordFailure) without leaving the session claimed.
        self._memory.invocations.update_invocation(
            ids.actor_id, ids.invocation_id, status=outcome.status, fields={"stopReason": outcome.stop_reason}
        )
        self._memory.sessions.end_turn(ids.actor_id, ids.session_id, ids.invocation_id)
        # Every hook outcome of the turn, the closing ones (just written at the end positions) too.
        hook_events = [
            {k: v for k, v in event["hookEvent"].items() if k != "hookEventId"}
            for _, event, _ in self._memory.events.read_events(ids.actor_id, ids.invocation_id, None)
            if event and "hookEvent" in event
        ]
        tool_calls = self._memory.tool_calls
        catalog = tool_calls.get_catalog(ids.actor_id, ids.invocation_id) or {}
        self._audit.invocation_closed(
            subject_of(ids),
            invocation,
            outcome,
            tool_results=tool_calls.get_tool_results(ids.actor_id, ids.invocation_id).values(),
            hook_events=hook_events,
            approvals=tool_calls.get_approvals(ids.actor_id, ids.invocation_id),
            unavailable_servers=catalog.get("unavailable") or {},
        )
        self._memory.events.put_event(
            ids.actor_id, ids.invocation_id, records.END_CONTROL_POSITION, control="end", expires_at=expires
        )
