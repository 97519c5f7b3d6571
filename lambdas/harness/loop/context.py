"""What every step of the loop shares: its stores, the invocation and harness it runs, the stream it
writes to, hooks, and the tool calls of the current turn."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import records
from harness.audit import Subject
from harness.errors import LoopStateError, ResourceNotFoundError
from harness.hooks import HookOutcome, HookRunner, HookSpec, denied
from harness.loop.state import Ids
from harness.stores import EventLog, HarnessVersions, MemoryStores

# Writes one stream event (the emitter of a step, or a list being assembled).
Emit = Callable[[dict[str, Any]], None]


class Emitter:
    """Writes stream events at consecutive positions of one step: a retried step rewrites the
    same positions instead of duplicating its events."""

    def __init__(self, events: EventLog, ids: Ids, expires_at: int, position: Callable[[int], str]) -> None:
        self._events = events
        self._ids = ids
        self._expires_at = expires_at
        self._position = position
        self._n = 0

    def __call__(self, event: dict[str, Any]) -> None:
        self._events.put_event(
            self._ids.actor_id,
            self._ids.invocation_id,
            self._position(self._n),
            event=event,
            expires_at=self._expires_at,
        )
        self._n += 1


def hook_payload(
    ids: Ids,
    hook_type: str,
    *,
    tool_use: dict[str, Any] | None = None,
    tool_result: dict[str, Any] | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """What a hook function receives: ids and the call it guards, never the actor id."""
    payload: dict[str, Any] = {
        "hookType": hook_type,
        "harnessId": ids.harness_id,
        "harnessVersion": ids.harness_version,
        "invocationId": ids.invocation_id,
        "sessionId": ids.session_id,
    }
    if tool_use is not None:
        payload["toolUse"] = {k: tool_use[k] for k in ("toolUseId", "name", "input")}
    if tool_result is not None:
        payload["toolResult"] = tool_result
    if stop_reason is not None:
        payload["stopReason"] = stop_reason
    return payload


def subject_of(ids: Ids) -> Subject:
    """Whom the audit records of this invocation are about."""
    return Subject(ids.invocation_id, ids.harness_id, ids.harness_version, ids.actor_id)


@dataclass
class LoopContext:
    """The stores and services the steps share (one per warm Lambda container)."""

    harnesses: HarnessVersions
    memory: MemoryStores
    hooks: HookRunner = field(default_factory=HookRunner)
    clock: Callable[[], float] = time.time

    # -- the invocation and its harness ---------------------------------------------------------------

    def invocation(self, ids: Ids) -> dict[str, Any]:
        invocation = self.memory.invocations.get_invocation(ids.actor_id, ids.invocation_id)
        if invocation is None:
            raise ResourceNotFoundError(f"invocation {ids.invocation_id} no longer exists (erased?)")
        return invocation

    def harness(self, ids: Ids) -> dict[str, Any]:
        harness = self.harnesses.get(ids.harness_id, ids.harness_version)
        if harness is None:
            raise ResourceNotFoundError(
                f"harness {ids.harness_id} version {ids.harness_version} no longer exists"
            )
        return harness

    def config(self, ids: Ids, invocation: dict[str, Any]) -> records.EffectiveConfig:
        """The harness version with the invocation's overrides, and what its tool servers offered."""
        return records.EffectiveConfig.of(
            self.harness(ids),
            invocation.get("overrides", {}),
            self.memory.tool_calls.get_catalog(ids.actor_id, ids.invocation_id),
        )

    def emitter(self, ids: Ids, invocation: dict[str, Any], position: Callable[[int], str]) -> Emitter:
        return Emitter(self.memory.events, ids, invocation["expiresAt"], position)

    # -- hooks ------------------------------------------------------------------------------------------

    def run_hooks(
        self,
        specs: Sequence[HookSpec],
        hook_type: str,
        payload: dict[str, Any],
        emit: Emit,
        deadline: float | None,
    ) -> HookOutcome | None:
        """Run the hooks of ``hook_type``, put each outcome on the stream, and return the one that
        denied (if any)."""
        if not any(spec.hook_type == hook_type for spec in specs):
            return None
        outcomes = self.hooks.run(specs, hook_type, payload, deadline)
        for outcome in outcomes:
            emit(outcome.stream_event())
        return denied(outcomes)

    # -- tool calls of the turn ------------------------------------------------------------------------

    def answer_with_error(self, ids: Ids, invocation: dict[str, Any], tool_use_id: str, message: str) -> None:
        """Answer a tool call the harness does not run (malformed, refused, rejected) with an
        error for the model."""
        self.memory.tool_calls.put_tool_result(
            ids.actor_id,
            ids.invocation_id,
            {"toolUseId": tool_use_id, "status": "error", "content": [{"text": message}]},
            invocation["expiresAt"],
        )

    def tool_uses(self, ids: Ids, turn: int, iteration: int) -> list[dict[str, Any]]:
        """The tool calls of one model call of the turn, in the model's order."""
        position = records.assistant_position(turn, iteration)
        for stored, message in self.memory.conversations.list_messages_with_positions(
            ids.actor_id, ids.session_id
        ):
            if stored == position:
                return [block["toolUse"] for block in message["content"] if "toolUse" in block]
        raise LoopStateError(f"assistant message of iteration {iteration} is missing")

    def find_tool_use(self, ids: Ids, turn: int, tool_use_id: str) -> tuple[int, int, dict[str, Any]]:
        """(iteration, index within that model call, the call) of one tool call of the turn."""
        for position, message in self.memory.conversations.list_messages_with_positions(
            ids.actor_id, ids.session_id
        ):
            iteration = records.assistant_iteration(turn, position)
            if iteration is None:
                continue
            tool_uses = [block["toolUse"] for block in message["content"] if "toolUse" in block]
            for index, call in enumerate(tool_uses):
                if call["toolUseId"] == tool_use_id:
                    return iteration, index, call
        raise LoopStateError(f"tool use {tool_use_id} is not part of this invocation")
