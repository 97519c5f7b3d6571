"""The steps of the agent loop. The state machine calls one step per Lambda task; each step
reads and writes conversation content in the memory table and returns only ids and counters
(``state``).

Every stored position is derived from the turn, the iteration and the tool index, so a step
that Step Functions retries overwrites what it wrote before instead of duplicating it.

One module per step family: ``model_turn`` (LoadContext, CallModel), ``authorization``
(AuthorizeToolCalls), ``tool_run`` (RunTool), ``closing`` (AwaitClient, Finalize, RecordFailure);
``AgentLoop`` puts them behind the one object the Lambda handlers call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.audit import AuditTrail
from harness.hooks import HookRunner
from harness.loop.authorization import ToolAuthorization
from harness.loop.closing import Closing
from harness.loop.context import LoopContext
from harness.loop.model_turn import FallbackRecorder, ModelTurn
from harness.loop.state import LoopIds, LoopState, ToolBatch, ToolRunResult
from harness.loop.tool_run import ToolCallRecorder, ToolRun
from harness.providers.registry import VaultLookup, provider_for
from harness.providers.router import Router
from harness.stores import Artifacts, HarnessVersions, MemoryStores, SealedRecords

if TYPE_CHECKING:
    from harness.tools.dispatch import ToolDispatcher


class AgentLoop:
    def __init__(
        self,
        harnesses: HarnessVersions,
        memory: MemoryStores,
        audit: SealedRecords,
        clock: Callable[[], float] = time.time,
        *,
        vault: VaultLookup | None = None,
        record_fallback: FallbackRecorder | None = None,
        dispatcher: ToolDispatcher | None = None,
        hooks: HookRunner | None = None,
        artifacts: Artifacts | None = None,
        record_tool_call: ToolCallRecorder | None = None,
        router: Router | None = None,
    ) -> None:
        context = LoopContext(harnesses, memory, hooks or HookRunner(), clock)
        trail = AuditTrail(audit, clock)
        # One router (and so one set of circuit breakers) per AgentLoop: per warm Lambda container.
        router = router or Router(lambda model: provider_for(model, vault))
        self._model_turn = ModelTurn(context, router, dispatcher, record_fallback)
        self._authorization = ToolAuthorization(context, trail, dispatcher)
        self._tool_run = ToolRun(context, dispatcher, artifacts, record_tool_call)
        self._closing = Closing(context, trail)

    def load_context(self, ids: LoopIds, deadline: float | None = None) -> LoopState:
        return self._model_turn.load_context(ids, deadline)

    def call_model(self, ids: LoopIds, loop: LoopState, deadline: float | None = None) -> LoopState:
        return self._model_turn.call_model(ids, loop, deadline)

    def authorize_tool_calls(self, ids: LoopIds, loop: LoopState, deadline: float | None = None) -> ToolBatch:
        return self._authorization.authorize_tool_calls(ids, loop, deadline)

    def run_tool(
        self, ids: LoopIds, tool_use_id: str, phase: int = 0, deadline: float | None = None
    ) -> ToolRunResult:
        return self._tool_run.run_tool(ids, tool_use_id, phase, deadline)

    def await_client(
        self, ids: LoopIds, tool_use_ids: list[str], task_token: str, approvals: list[str] | None = None
    ) -> dict[str, Any]:
        return self._closing.await_client(ids, tool_use_ids, task_token, approvals)

    def finalize(self, ids: LoopIds, loop: LoopState, deadline: float | None = None) -> dict[str, Any]:
        return self._closing.finalize(ids, loop, deadline)

    def record_failure(
        self, ids: LoopIds, failure: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        return self._closing.record_failure(ids, failure, deadline)

    def interrupt(self, actor_id: str, invocation_id: str) -> None:
        self._closing.interrupt(actor_id, invocation_id)


__all__ = ["AgentLoop", "LoopIds", "LoopState", "ToolBatch", "ToolRunResult"]
