"""RunTool: run one server-side tool call (a Map iteration), exactly once, and stream its result."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import records
from harness.errors import LoopStateError, TransientStoreError
from harness.hooks import hook_specs
from harness.loop.context import LoopContext, hook_payload
from harness.loop.state import Ids, LoopIds, ToolRunResult
from harness.stores import Artifacts
from harness.tools.registry import SERVER_TYPES, ToolEntry

if TYPE_CHECKING:
    from harness.tools.dispatch import ToolDispatcher

TOOL_NOT_AVAILABLE = "Tool {name} is not available to this invocation; the call was refused and recorded."
# A tool result larger than this (as JSON) is kept whole in the artifact bucket, under the actor's
# prefix; the memory table, the stream and the model get its first MODEL_RESULT_CHARS characters.
OFFLOAD_THRESHOLD_BYTES = 32 * 1024
MODEL_RESULT_CHARS = 16_000
# Called after every server-run tool call: (tool type, tool name, status, latency in ms).
ToolCallRecorder = Callable[[str, str, str, int], None]


class ToolRun:
    def __init__(
        self,
        context: LoopContext,
        dispatcher: ToolDispatcher | None = None,
        artifacts: Artifacts | None = None,
        record_tool_call: ToolCallRecorder | None = None,
    ) -> None:
        self._context = context
        self._tool_calls = context.memory.tool_calls
        self._dispatcher = dispatcher
        self._artifacts = artifacts
        self._record_tool_call = record_tool_call

    def run_tool(
        self, raw_ids: LoopIds, tool_use_id: str, phase: int = 0, deadline: float | None = None
    ) -> ToolRunResult:
        """``deadline`` (``time.monotonic``) is when the calling function times out."""
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        config = self._context.config(ids, invocation)
        iteration, index, call = self._context.find_tool_use(ids, invocation["turn"], tool_use_id)
        expires = invocation["expiresAt"]
        emit = self._context.emitter(
            ids, invocation, lambda n: records.tool_event_position(iteration, index, n, phase)
        )
        entry = config.toolset.entry(call["name"])
        stored = self._tool_calls.get_tool_result(ids.actor_id, ids.invocation_id, tool_use_id)
        if stored is not None:
            # A retried step (or a client resend): the call ran already; its result stands.
            result = stored
        elif entry is None or entry.tool_type not in SERVER_TYPES:
            # Not in harness tools ∩ allowedTools (or a client tool reaching the server path): refuse.
            refused = {
                "toolUseId": tool_use_id,
                "status": "error",
                "content": [{"text": TOOL_NOT_AVAILABLE.format(name=call["name"])}],
                # Kept with the result (not in a shared list) so concurrent refusals cannot race.
                "refusedToolName": call["name"],
            }
            result = self._tool_calls.put_first_tool_result(ids.actor_id, ids.invocation_id, refused, expires)
        else:
            claim_seconds = config.timeout_seconds if deadline is None else deadline - time.monotonic()
            result = self._run_server_tool(ids, invocation, config, call, entry, deadline, claim_seconds)
        # From the stored result, so a retried step writes the same events at the same positions.
        for event in result.get("hookEvents", []):
            emit(event)
        emit({"messageStart": {"role": "user"}})
        emit(
            {
                "contentBlockStart": {
                    "contentBlockIndex": 0,
                    "start": {"toolResult": {"toolUseId": tool_use_id, "status": result["status"]}},
                }
            }
        )
        emit({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolResult": result["content"]}}})
        emit({"contentBlockStop": {"contentBlockIndex": 0}})
        emit({"messageStop": {"stopReason": "tool_result"}})
        return {"toolUseId": tool_use_id, "status": result["status"]}

    def _run_server_tool(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        config: records.EffectiveConfig,
        call: dict[str, Any],
        entry: ToolEntry,
        deadline: float | None,
        claim_seconds: float,
    ) -> dict[str, Any]:
        """Run the call once: an attempt claims it for as long as it may run (its function's time
        left), and the target gets the same idempotency key on every attempt, so a retried step
        neither runs it twice at once nor changes its result."""
        if self._dispatcher is None:
            raise LoopStateError("this function has no tool dispatcher")
        expires = invocation["expiresAt"]
        now = self._context.clock()
        if not self._tool_calls.claim_tool_call(
            ids.actor_id,
            ids.invocation_id,
            call["toolUseId"],
            now=now,
            until=now + claim_seconds,
            expires_at=expires,
        ):
            raise TransientStoreError(f"tool call {call['toolUseId']} is being run by another attempt")
        started = self._context.clock()
        outcome = self._dispatcher.call(entry, call["input"], f"{ids.invocation_id}:{call['toolUseId']}")
        result: dict[str, Any] = {
            "toolUseId": call["toolUseId"],
            "status": outcome.status,
            "content": outcome.content,
            "tool": entry.name,
            "latencyMs": int((self._context.clock() - started) * 1000),
        }
        if self._record_tool_call is not None:
            self._record_tool_call(entry.tool_type, entry.name, outcome.status, result["latencyMs"])
        tool_result = {"status": outcome.status, "content": outcome.content}
        hook_events: list[dict[str, Any]] = []
        withheld = self._context.run_hooks(
            hook_specs(config.hooks),
            "afterToolCall",
            hook_payload(ids, "afterToolCall", tool_use=call, tool_result=tool_result),
            hook_events.append,
            deadline,
        )
        if hook_events:
            # Kept with the result: the stream shows them before it, on every attempt.
            result["hookEvents"] = hook_events
        if withheld is not None:
            result |= {
                "status": "error",
                "content": [{"text": f"Hook {withheld.name} withheld this result: {withheld.reason}"}],
            }
        result = self._offload_if_large(ids, result)
        return self._tool_calls.put_first_tool_result(ids.actor_id, ids.invocation_id, result, expires)

    def _offload_if_large(self, ids: Ids, result: dict[str, Any]) -> dict[str, Any]:
        """Keep a large result whole under the actor's prefix in the artifact bucket (KMS) and give
        the model its beginning, with a marker saying what was cut."""
        whole = json.dumps(result["content"], separators=(",", ":"), ensure_ascii=False)
        size = len(whole.encode())
        if size <= OFFLOAD_THRESHOLD_BYTES or self._artifacts is None:
            return result
        key = self._artifacts.put(
            ids.actor_id,
            f"tool-results/{ids.invocation_id}/{result['toolUseId']}.json",
            whole.encode(),
            "application/json",
        )
        text = "\n".join(
            block["text"] if "text" in block else json.dumps(block.get("json"), ensure_ascii=False)
            for block in result["content"]
        )
        shown = text[:MODEL_RESULT_CHARS]
        marker = (
            f"\n[Result truncated: showing {len(shown)} of {len(text)} characters. The whole result "
            f"({size} bytes) is stored with this session as {result['toolUseId']}.]"
        )
        return result | {"content": [{"text": shown + marker}], "offloaded": {"key": key, "bytes": size}}
