"""AuthorizeToolCalls: decide each tool call of a model turn before anything runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from harness import records
from harness.audit import AuditTrail
from harness.hooks import HookSpec, hook_specs
from harness.loop.context import Emit, LoopContext, hook_payload, subject_of
from harness.loop.state import Ids, LoopIds, LoopState, ToolBatch
from harness.tools.registry import CLIENT

if TYPE_CHECKING:
    from harness.tools.dispatch import ToolDispatcher


# Where AuthorizeToolCalls sends a call (a list of ``ToolBatch``).
Route = Literal["server", "client", "approvals"]


def approval_request(tool_use_id: str, reason: str) -> dict[str, Any]:
    """The stream's notice that a call waits for a person: a hookEvent without a decision, named
    ``approval``; the client answers with a toolResult carrying the decision."""
    return {
        "hookEvent": {
            "hookEventId": str(uuid.uuid4()),
            "name": "approval",
            "type": "before_tool_call",
            "reason": f"Approval required for {tool_use_id}: {reason}"[:1024],
        }
    }


class ToolAuthorization:
    def __init__(
        self, context: LoopContext, audit: AuditTrail, dispatcher: ToolDispatcher | None = None
    ) -> None:
        self._context = context
        self._tool_calls = context.memory.tool_calls
        self._audit = audit
        self._dispatcher = dispatcher

    def authorize_tool_calls(
        self, raw_ids: LoopIds, loop: LoopState, deadline: float | None = None
    ) -> ToolBatch:
        """Decide each unanswered tool call of the last model turn: refused (schema, hook, rejected
        approval: a tool error for the model), run by the server, answered by the client, or held
        for a person's approval. Runs again after the client answered (phase 1), when approved
        calls go to the server, each decision audited first."""
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        config = self._context.config(ids, invocation)
        iteration = int(loop["iteration"]) - 1
        phase = 1 if invocation.get("pausePosition") == records.pause_position(iteration) else 0
        calls = self._context.tool_uses(ids, invocation["turn"], iteration)
        answered = self._tool_calls.get_tool_results(ids.actor_id, ids.invocation_id)
        decisions = self._tool_calls.get_approvals(ids.actor_id, ids.invocation_id)
        emit = self._context.emitter(
            ids, invocation, lambda n: records.authorize_event_position(iteration, phase, n)
        )
        specs = hook_specs(config.hooks)
        batch: ToolBatch = {"server": [], "client": [], "approvals": [], "awaitClient": False, "phase": phase}

        if phase == 1:
            self._check_client_results(ids, invocation, config, specs, calls, answered, emit, deadline)
        for call in calls:
            if call["toolUseId"] in answered:
                continue
            route = self._decide(ids, invocation, config, specs, call, decisions, emit, deadline)
            if route is not None:
                batch[route].append(call["toolUseId"])
                if route == "approvals":
                    batch["client"].append(call["toolUseId"])
        batch["awaitClient"] = bool(batch["client"])
        return batch

    def _decide(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        config: records.EffectiveConfig,
        specs: Sequence[HookSpec],
        call: dict[str, Any],
        decisions: dict[str, dict[str, Any]],
        emit: Emit,
        deadline: float | None,
    ) -> Route | None:
        """Where one call goes: ``server``, ``client`` or ``approvals`` (held for a person, answered
        by the client); None when the harness answered it with an error."""
        tool_use_id, name = call["toolUseId"], call["name"]
        entry = config.toolset.entry(name)
        if entry is None:
            # Calls the invocation may not make go to the dispatcher, which refuses and records them.
            return "server"
        problem = config.toolset.input_problem(name, call["input"])
        if problem:
            # Arguments that fail the tool's schema go back to the model; the target never sees them.
            self._context.answer_with_error(ids, invocation, tool_use_id, problem)
            return None
        decision = decisions.get(tool_use_id)
        if decision is not None:
            self._audit.approval_decided(subject_of(ids), call, entry.name, decision)
            if decision["approved"]:
                return "server"
            message = (
                f"A person rejected this call of {name}: {decision['reason']}. "
                "Do not retry it without new instructions."
            )
            self._context.answer_with_error(ids, invocation, tool_use_id, message)
            return None
        refusal = self._context.run_hooks(
            specs,
            "beforeToolCall",
            hook_payload(ids, "beforeToolCall", tool_use=call),
            emit,
            deadline,
        )
        if refusal is not None:
            message = f"Hook {refusal.name} denied this call of {name}: {refusal.reason}"
            self._context.answer_with_error(ids, invocation, tool_use_id, message)
            return None
        if config.toolset.route(name) == CLIENT:
            return "client"
        reason = self._dispatcher.approval_reason(entry, call["input"]) if self._dispatcher else None
        if reason is not None:
            # Held like an inline function: the stream says why, the client posts the decision.
            emit(approval_request(tool_use_id, reason))
            return "approvals"
        return "server"

    def _check_client_results(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        config: records.EffectiveConfig,
        specs: Sequence[HookSpec],
        calls: list[dict[str, Any]],
        answered: dict[str, dict[str, Any]],
        emit: Emit,
        deadline: float | None,
    ) -> None:
        """afterToolCall hooks for the results the client posted (inline functions), as for the
        server's: a deny withholds the result from the model. Each result is checked once."""
        if not any(spec.hook_type == "afterToolCall" for spec in specs):
            return
        for call in calls:
            result = answered.get(call["toolUseId"])
            if result is None or "afterToolCall" in result or config.toolset.route(call["name"]) != CLIENT:
                continue
            tool_result = {"status": result.get("status", "success"), "content": result["content"]}
            withheld = self._context.run_hooks(
                specs,
                "afterToolCall",
                hook_payload(ids, "afterToolCall", tool_use=call, tool_result=tool_result),
                emit,
                deadline,
            )
            checked = result | {"afterToolCall": "checked"}
            if withheld is not None:
                text = f"Hook {withheld.name} withheld this result: {withheld.reason}"
                checked |= {"status": "error", "content": [{"text": text}]}
            self._tool_calls.put_tool_result(
                ids.actor_id, ids.invocation_id, checked, invocation["expiresAt"]
            )
            answered[call["toolUseId"]] = checked
