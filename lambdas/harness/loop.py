"""The steps of the agent loop. The state machine calls one step per Lambda task; each step
reads and writes conversation content in the memory table and returns only ids and counters.

Every stored position is derived from the turn, the iteration and the tool index, so a step
that Step Functions retries overwrites what it wrote before instead of duplicating it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from harness import records, truncation
from harness.errors import HarnessError, ResourceNotFoundError
from harness.hooks import HookRunner, HookSpec, denied, hook_specs
from harness.ids import actor_digest
from harness.providers.base import (
    ModelCallError,
    ModelEvent,
    ModelRequest,
    Stop,
    TextDelta,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.registry import VaultLookup, member, provider_for
from harness.providers.router import Router, Switch, context_window_tokens
from harness.tools.registry import CLIENT, REMOTE_MCP, SERVER_TYPES, ToolEntry

if TYPE_CHECKING:
    from harness.adapters.artifact_store import ArtifactStore
    from harness.adapters.audit_log import AuditLog
    from harness.adapters.harness_store import HarnessStore
    from harness.adapters.memory_store import MemoryStore
    from harness.tools.dispatch import ToolDispatcher

TOOL_NOT_AVAILABLE = "Tool {name} is not available to this invocation; the call was refused and recorded."
HOOK_STOPPED = "hook_stopped"
# A tool result larger than this (as JSON) is kept whole in the artifact bucket, under the actor's
# prefix; the memory table, the stream and the model get its first MODEL_RESULT_CHARS characters.
OFFLOAD_THRESHOLD_BYTES = 32 * 1024
MODEL_RESULT_CHARS = 16_000
# What the tool lists of one invocation may take in its memory-table item (DynamoDB: 400 KB).
CATALOG_BYTES = 300_000
# How long one attempt of a tool call holds its claim: the tool function's timeout.
TOOL_CLAIM_SECONDS = 300
LIMIT_MESSAGES = {
    "max_iterations_exceeded": "The invocation reached its maxIterations limit.",
    "max_tokens": "The invocation reached its maxTokens budget.",
    "timeout_exceeded": "The invocation reached its timeoutSeconds limit.",
}
CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"
CONTEXT_WINDOW_MESSAGE = (
    "The conversation's last turn does not fit the model's context window; nothing was sent to the model."
)
# Called on every switch to the next model of a fallback chain: (from provider, to provider, reason).
FallbackRecorder = Callable[[str, str, str], None]
# Called after every server-run tool call: (tool type, tool name, status, latency in ms).
ToolCallRecorder = Callable[[str, str, str, int], None]


class LoopStateError(Exception):
    """The stored state of an invocation contradicts the loop (an operator's problem: its message
    is logged, never shown to the caller)."""


class TransientStoreError(Exception):
    """A store was briefly unavailable; the state machine retries the step (Retry matches the name)."""


@dataclass(frozen=True)
class Ids:
    invocation_id: str
    actor_id: str
    session_id: str
    harness_id: str
    harness_version: int

    @classmethod
    def of(cls, ids: dict[str, Any]) -> Ids:
        return cls(
            invocation_id=ids["invocationId"],
            actor_id=ids["actorId"],
            session_id=ids["sessionId"],
            harness_id=ids["harnessId"],
            harness_version=int(ids["harnessVersion"]),
        )


class AgentLoop:
    def __init__(
        self,
        harnesses: HarnessStore,
        memory: MemoryStore,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
        *,
        vault: VaultLookup | None = None,
        record_fallback: FallbackRecorder | None = None,
        dispatcher: ToolDispatcher | None = None,
        hooks: HookRunner | None = None,
        artifacts: ArtifactStore | None = None,
        record_tool_call: ToolCallRecorder | None = None,
    ) -> None:
        self._record_tool_call = record_tool_call
        self._dispatcher = dispatcher
        self._hooks = hooks or HookRunner()
        self._artifacts = artifacts
        self._harnesses = harnesses
        self._memory = memory
        self._audit = audit
        self._clock = clock
        self._record_fallback = record_fallback
        # One router (and so one set of circuit breakers) per AgentLoop: per warm Lambda container.
        self._router = Router(lambda model: provider_for(model, vault))

    # -- LoadContext ------------------------------------------------------------------------------

    def load_context(self, raw_ids: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        """``deadline`` (``time.monotonic``, as in every step that runs hooks) is when the calling
        function times out; hooks get only the time left before it."""
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        harness = self._harness(ids)
        config = records.EffectiveConfig.of(harness, invocation.get("overrides", {}))
        for index, message in enumerate(invocation["input"]):
            self._memory.put_message(
                ids.actor_id,
                ids.session_id,
                records.input_position(invocation["turn"], index),
                message,
                invocation["expiresAt"],
            )
        if config.toolset.servers:
            self._list_server_tools(ids, invocation, config)
        stop_reason = "none"
        specs = hook_specs(config.hooks)
        if any(spec.hook_type == "beforeInvocation" for spec in specs):
            outcomes = self._hooks.run(
                specs, "beforeInvocation", self._hook_payload(ids, "beforeInvocation"), deadline
            )
            emit = _Emitter(self._memory, ids, invocation["expiresAt"], records.start_event_position)
            for outcome in outcomes:
                emit(outcome.stream_event())
            if denied(outcomes):
                stop_reason = HOOK_STOPPED
        return {
            "iteration": 0,
            "totalTokens": 0,
            "deadline": int(invocation["createdAt"]) + config.timeout_seconds,
            "stopReason": stop_reason,
        }

    def _list_server_tools(
        self, ids: Ids, invocation: dict[str, Any], config: records.EffectiveConfig
    ) -> None:
        """Ask each tool server what it offers, once per invocation: the model, the authorizer and
        the dispatcher then all work from the same list."""
        if self._dispatcher is None:
            raise LoopStateError("this function has no tool dispatcher but the harness names tool servers")
        catalog, problems = self._dispatcher.discover(config.toolset.servers)
        # The list is one item of the memory table (400 KB at most): servers whose tools do not
        # fit what is left are unavailable for this invocation, in the order the harness names them.
        items: list[dict[str, Any]] = []
        size = 0
        for server, tools in catalog.items():
            listed = [tool.to_item() for tool in tools]
            listed_size = len(json.dumps(listed, separators=(",", ":")))
            if size + listed_size > CATALOG_BYTES:
                problems[server] = f"its tool list ({listed_size} bytes) is too large for one invocation"
                continue
            items.extend(listed)
            size += listed_size
        self._memory.put_catalog(
            ids.actor_id,
            ids.invocation_id,
            {"tools": items, "unavailable": problems},
            invocation["expiresAt"],
        )

    # -- CallModel ---------------------------------------------------------------------------------

    def call_model(
        self, raw_ids: dict[str, Any], loop: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        """One model turn. ``deadline`` (``time.monotonic``) is when the calling function times out."""
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        config = self._config(ids, invocation)
        iteration = int(loop["iteration"])
        turn = invocation["turn"]
        expires = invocation["expiresAt"]
        emit = _Emitter(self._memory, ids, expires, lambda n: records.model_event_position(iteration, n))

        if iteration > 0:
            self._commit_tool_results(ids, invocation, iteration - 1)
        limit = self._limit_reached(config, loop)
        if limit:
            emit({"messageStart": {"role": "assistant"}})
            emit({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": LIMIT_MESSAGES[limit]}}})
            emit({"contentBlockStop": {"contentBlockIndex": 0}})
            emit({"messageStop": {"stopReason": limit}})
            return loop | {"stopReason": limit}

        stored = self._memory.list_messages_with_positions(ids.actor_id, ids.session_id)
        switches: list[Switch] = []
        summary_usage: list[Usage] = []
        summarize = self._summarizer(ids, config, [p for p, _ in stored], expires, switches, summary_usage)
        try:
            messages = truncation.summarized([m for _, m in stored], config.truncation, summarize)
        except BaseException:
            # A summary call that failed over (and then failed) still leaves its switches on record.
            self._record_switches(ids, invocation, iteration, switches)
            raise
        request = ModelRequest(
            model_config=config.model,
            messages=truncation.apply(messages, config.truncation),
            system=config.system,
            tools=config.toolset.specs(),
        )
        started = self._clock()
        earlier = [
            block["toolUse"]["toolUseId"]
            for position, message in stored
            # Earlier model calls of this turn (a retried step rewrites its own message).
            if position.startswith(f"{turn:06d}#it#")
            and position.endswith("#a")
            and position != records.assistant_position(turn, iteration)
            for block in message.get("content", [])
            if "toolUse" in block
        ]
        reply = _Reply(emit, _tool_use_kind(config), set(earlier))
        emit({"messageStart": {"role": "assistant"}})
        try:
            for event in self._router.stream(
                request, self._on_switch(switches), _window_fit(request), deadline=deadline
            ):
                reply.add(event)
        except truncation.ContextWindowExceededError:
            reply.add(TextDelta(CONTEXT_WINDOW_MESSAGE))
            reply.add(Stop(CONTEXT_WINDOW_EXCEEDED))
        finally:
            self._record_switches(ids, invocation, iteration, switches)
        content, malformed = reply.close()
        # The turn's usage includes the summary calls made for it (they count toward maxTokens too).
        usage = Usage(
            reply.usage.input_tokens + sum(u.input_tokens for u in summary_usage),
            reply.usage.output_tokens + sum(u.output_tokens for u in summary_usage),
        )
        emit({"messageStop": {"stopReason": reply.stop_reason}})
        emit(
            {
                "metadata": {
                    "usage": {
                        "inputTokens": usage.input_tokens,
                        "outputTokens": usage.output_tokens,
                        "totalTokens": usage.input_tokens + usage.output_tokens,
                    },
                    "metrics": {"latencyMs": int((self._clock() - started) * 1000)},
                }
            }
        )
        self._memory.put_message(
            ids.actor_id,
            ids.session_id,
            records.assistant_position(turn, iteration),
            {"role": "assistant", "content": content},
            expires,
        )
        for tool_use_id, problem in malformed.items():
            self._answer_with_error(ids, invocation, tool_use_id, problem)
        return {
            "iteration": iteration + 1,
            "totalTokens": int(loop["totalTokens"]) + usage.input_tokens + usage.output_tokens,
            "deadline": loop["deadline"],
            "stopReason": reply.stop_reason,
        }

    # -- AuthorizeToolCalls -------------------------------------------------------------------------

    def authorize_tool_calls(
        self, raw_ids: dict[str, Any], loop: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        """Decide each unanswered tool call of the last model turn: refused (schema, hook, rejected
        approval: a tool error for the model), run by the server, answered by the client, or held
        for a person's approval. Runs again after the client answered (phase 1), when approved
        calls go to the server, each decision audited first."""
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        config = self._config(ids, invocation)
        iteration = int(loop["iteration"]) - 1
        phase = 1 if invocation.get("pausePosition") == records.pause_position(iteration) else 0
        calls = self._tool_uses(ids, invocation["turn"], iteration)
        answered = self._memory.get_tool_results(ids.actor_id, ids.invocation_id)
        decisions = self._memory.get_approvals(ids.actor_id, ids.invocation_id)
        emit = _Emitter(
            self._memory,
            ids,
            invocation["expiresAt"],
            lambda n: records.authorize_event_position(iteration, phase, n),
        )
        specs = hook_specs(config.hooks)
        server: list[str] = []
        client: list[str] = []
        approvals: list[str] = []

        if phase == 1:
            self._check_client_results(ids, invocation, config, specs, calls, answered, emit, deadline)
        for call in calls:
            if call["toolUseId"] in answered:
                continue
            entry = config.toolset.entry(call["name"])
            if entry is None:
                # Calls the invocation may not make go to the dispatcher, which refuses and records them.
                server.append(call["toolUseId"])
                continue
            problem = config.toolset.input_problem(call["name"], call["input"])
            if problem:
                # Arguments that fail the tool's schema go back to the model; the target never sees them.
                self._answer_with_error(ids, invocation, call["toolUseId"], problem)
                continue
            decision = decisions.get(call["toolUseId"])
            if decision is not None:
                self._audit_approval(ids, invocation, call, entry, decision)
                if decision["approved"]:
                    server.append(call["toolUseId"])
                else:
                    self._answer_with_error(
                        ids,
                        invocation,
                        call["toolUseId"],
                        f"A person rejected this call of {call['name']}: {decision['reason']}. "
                        "Do not retry it without new instructions.",
                    )
                continue
            outcomes = self._hooks.run(
                specs, "beforeToolCall", self._hook_payload(ids, "beforeToolCall", tool_use=call), deadline
            )
            for outcome in outcomes:
                emit(outcome.stream_event())
            refusal = denied(outcomes)
            if refusal is not None:
                message = f"Hook {refusal.name} denied this call of {call['name']}: {refusal.reason}"
                self._answer_with_error(ids, invocation, call["toolUseId"], message)
                continue
            if config.toolset.route(call["name"]) == CLIENT:
                client.append(call["toolUseId"])
                continue
            reason = self._dispatcher.approval_reason(entry, call["input"]) if self._dispatcher else None
            if reason is not None:
                # Held like an inline function: the stream says why, the client posts the decision.
                emit(_approval_request(call["toolUseId"], reason))
                client.append(call["toolUseId"])
                approvals.append(call["toolUseId"])
                continue
            server.append(call["toolUseId"])
        return {
            "server": server,
            "client": client,
            "approvals": approvals,
            "awaitClient": bool(client),
            "phase": phase,
        }

    def _answer_with_error(
        self, ids: Ids, invocation: dict[str, Any], tool_use_id: str, message: str
    ) -> None:
        """Answer a tool call the harness does not run (malformed, refused, rejected) with an
        error for the model."""
        self._memory.put_tool_result(
            ids.actor_id,
            ids.invocation_id,
            {"toolUseId": tool_use_id, "status": "error", "content": [{"text": message}]},
            invocation["expiresAt"],
        )

    def _check_client_results(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        config: records.EffectiveConfig,
        specs: list[HookSpec],
        calls: list[dict[str, Any]],
        answered: dict[str, dict[str, Any]],
        emit: _Emitter,
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
            payload = self._hook_payload(ids, "afterToolCall", tool_use=call, tool_result=tool_result)
            outcomes = self._hooks.run(specs, "afterToolCall", payload, deadline)
            for outcome in outcomes:
                emit(outcome.stream_event())
            checked = result | {"afterToolCall": "checked"}
            withheld = denied(outcomes)
            if withheld is not None:
                text = f"Hook {withheld.name} withheld this result: {withheld.reason}"
                checked |= {"status": "error", "content": [{"text": text}]}
            self._memory.put_tool_result(ids.actor_id, ids.invocation_id, checked, invocation["expiresAt"])
            answered[call["toolUseId"]] = checked

    def _audit_approval(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        call: dict[str, Any],
        entry: ToolEntry,
        decision: dict[str, Any],
    ) -> None:
        """The decision, who made it and why, in the Object Lock bucket before the call can run."""
        record = {
            "kind": "approval",
            "invocationId": ids.invocation_id,
            "harnessId": ids.harness_id,
            "harnessVersion": ids.harness_version,
            "actorDigest": actor_digest(ids.actor_id),
            "toolUseId": call["toolUseId"],
            # Names of server tools come from the configuration; the input is personal data, so
            # only its digest is locked away (it proves which input was approved).
            "tool": entry.name,
            "inputDigest": hashlib.sha256(
                json.dumps(call["input"], sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest(),
            "decision": "approved" if decision["approved"] else "rejected",
            "reason": decision["reason"],
            "approver": decision["approver"],
            "requestedBy": decision.get("requestedBy"),
            "decidedAt": decision["decidedAt"],
        }
        key = f"approvals/{ids.harness_id}/{ids.invocation_id}/{call['toolUseId']}.json"
        try:
            self._audit.write(key, record)
        except (ClientError, BotoCoreError) as error:
            raise TransientStoreError("the approval could not be audited; the step is retried") from error

    # -- RunTool ---------------------------------------------------------------------------------------

    def run_tool(
        self, raw_ids: dict[str, Any], tool_use_id: str, phase: int = 0, deadline: float | None = None
    ) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        config = self._config(ids, invocation)
        iteration, index, call = self._find_tool_use(ids, invocation["turn"], tool_use_id)
        expires = invocation["expiresAt"]
        emit = _Emitter(
            self._memory, ids, expires, lambda n: records.tool_event_position(iteration, index, n, phase)
        )
        entry = config.toolset.entry(call["name"])
        stored = self._memory.get_tool_result(ids.actor_id, ids.invocation_id, tool_use_id)
        if stored is not None:
            # A retried step (or a client resend): the call ran already; its result stands.
            result = stored
        elif entry is None or entry.tool_type not in SERVER_TYPES:
            # Not in harness tools ∩ allowedTools (or a client tool reaching the server path): refuse.
            result = {
                "toolUseId": tool_use_id,
                "status": "error",
                "content": [{"text": TOOL_NOT_AVAILABLE.format(name=call["name"])}],
                # Kept with the result (not in a shared list) so concurrent refusals cannot race.
                "refusedToolName": call["name"],
            }
            result = self._memory.put_first_tool_result(ids.actor_id, ids.invocation_id, result, expires)
        else:
            result = self._run_server_tool(ids, invocation, config, call, entry, emit, deadline)
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
        emit: _Emitter,
        deadline: float | None,
    ) -> dict[str, Any]:
        """Run the call once: an attempt claims it first, and the target gets the same idempotency
        key on every attempt, so a retried step neither runs it twice at once nor changes its result."""
        if self._dispatcher is None:
            raise LoopStateError("this function has no tool dispatcher")
        expires = invocation["expiresAt"]
        now = self._clock()
        if not self._memory.claim_tool_call(
            ids.actor_id,
            ids.invocation_id,
            call["toolUseId"],
            now=now,
            until=now + TOOL_CLAIM_SECONDS,
            expires_at=expires,
        ):
            raise TransientStoreError(f"tool call {call['toolUseId']} is being run by another attempt")
        started = self._clock()
        outcome = self._dispatcher.call(entry, call["input"], f"{ids.invocation_id}:{call['toolUseId']}")
        result: dict[str, Any] = {
            "toolUseId": call["toolUseId"],
            "status": outcome.status,
            "content": outcome.content,
            "tool": entry.name,
            "latencyMs": int((self._clock() - started) * 1000),
        }
        if self._record_tool_call is not None:
            self._record_tool_call(entry.tool_type, entry.name, outcome.status, result["latencyMs"])
        specs = hook_specs(config.hooks)
        if any(spec.hook_type == "afterToolCall" for spec in specs):
            payload = self._hook_payload(
                ids,
                "afterToolCall",
                tool_use=call,
                tool_result={"status": outcome.status, "content": outcome.content},
            )
            outcomes = self._hooks.run(specs, "afterToolCall", payload, deadline)
            for hook_outcome in outcomes:
                emit(hook_outcome.stream_event())
            withheld = denied(outcomes)
            if withheld is not None:
                result |= {
                    "status": "error",
                    "content": [{"text": f"Hook {withheld.name} withheld this result: {withheld.reason}"}],
                }
        result = self._offload_if_large(ids, result)
        return self._memory.put_first_tool_result(ids.actor_id, ids.invocation_id, result, expires)

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

    # -- AwaitClient -------------------------------------------------------------------------------------

    def await_client(
        self,
        raw_ids: dict[str, Any],
        tool_use_ids: list[str],
        task_token: str,
        approvals: list[str] | None = None,
    ) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        iteration, _, _ = self._find_tool_use(ids, invocation["turn"], tool_use_ids[0])
        position = records.pause_position(iteration)
        self._memory.update_invocation(
            ids.actor_id,
            ids.invocation_id,
            status=records.AWAITING_CLIENT,
            task_token=task_token,
            pending_tool_use_ids=tool_use_ids,
            fields={"pausePosition": position, "pendingApprovals": approvals or []},
        )
        # The caller's stream ends here; the messageStop(tool_use) before it names the pending calls.
        self._memory.put_event(
            ids.actor_id, ids.invocation_id, position, control="pause", expires_at=invocation["expiresAt"]
        )
        return {}

    # -- Finalize / RecordFailure ------------------------------------------------------------------------

    def finalize(
        self, raw_ids: dict[str, Any], loop: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        events = []
        if loop["stopReason"] == HOOK_STOPPED:
            # The hookEvent before it says which hook stopped the invocation and why.
            events = [{"messageStart": {"role": "assistant"}}, {"messageStop": {"stopReason": HOOK_STOPPED}}]
        self._close(
            ids,
            invocation,
            records.COMPLETED,
            loop["stopReason"],
            events=events,
            loop=loop,
            deadline=deadline,
        )
        return {}

    def record_failure(
        self, raw_ids: dict[str, Any], failure: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        ids = Ids.of(raw_ids)
        invocation = self._invocation(ids)
        error, message = describe_failure(failure)
        if error == "States.Timeout":
            events = [
                {"messageStart": {"role": "assistant"}},
                {"messageStop": {"stopReason": "timeout_exceeded"}},
            ]
            stop_reason = "timeout_exceeded"
        else:
            model_failed = error in _error_names(ModelCallError)
            kind = "runtimeClientError" if model_failed else "internalServerException"
            events = [{kind: {"message": message}}]
            stop_reason = "error"
        self._close(
            ids, invocation, records.FAILED, stop_reason, events=events, failure=message, deadline=deadline
        )
        return {}

    def interrupt(self, actor_id: str, invocation_id: str) -> None:
        """End an invocation whose execution no longer exists (for example after the local runtime
        restarted): the stream says ``interrupted``, the session is released, the audit log records it."""
        invocation = self._memory.get_invocation(actor_id, invocation_id)
        if invocation is None or invocation["status"] not in records.ACTIVE_STATUSES:
            return
        ids = Ids(
            invocation_id,
            actor_id,
            invocation["sessionId"],
            invocation["harnessId"],
            int(invocation["harnessVersion"]),
        )
        events = [{"messageStart": {"role": "assistant"}}, {"messageStop": {"stopReason": "interrupted"}}]
        self._close(
            ids,
            invocation,
            records.INTERRUPTED,
            "interrupted",
            events=events,
            failure="The runtime restarted while this invocation was in progress.",
        )

    def _close(
        self,
        ids: Ids,
        invocation: dict[str, Any],
        status: str,
        stop_reason: str,
        *,
        events: list[dict[str, Any]],
        loop: dict[str, Any] | None = None,
        failure: str | None = None,
        deadline: float | None = None,
    ) -> None:
        expires = invocation["expiresAt"]
        specs = hook_specs(self._harness_or_none(ids).get("hooks") or [])
        if any(spec.hook_type == "afterInvocation" for spec in specs):
            outcomes = self._hooks.run(
                specs,
                "afterInvocation",
                self._hook_payload(ids, "afterInvocation", stop_reason=stop_reason),
                deadline,
            )
            # Before the closing events: a client reads up to messageStop and may stop there.
            events = [o.stream_event() for o in outcomes] + events
        for n, event in enumerate(events):
            self._memory.put_event(
                ids.actor_id, ids.invocation_id, records.end_position(n), event=event, expires_at=expires
            )
        # Release the session before the audit write: a failing write is retried (and then
        # recorded by RecordFailure) without leaving the session claimed.
        self._memory.update_invocation(
            ids.actor_id, ids.invocation_id, status=status, fields={"stopReason": stop_reason}
        )
        self._memory.end_turn(ids.actor_id, ids.session_id, ids.invocation_id)
        results = self._memory.get_tool_results(ids.actor_id, ids.invocation_id).values()
        refused = [
            # Model-chosen names may carry user text; the locked audit log keeps only digests.
            {
                "toolUseId": r["toolUseId"],
                "nameDigest": hashlib.sha256(r["refusedToolName"].encode()).hexdigest(),
            }
            for r in results
            if "refusedToolName" in r
        ]
        # Server-run calls: names from the configuration, outcome and latency, never content.
        tool_calls = [
            {
                "toolUseId": r["toolUseId"],
                "tool": r["tool"],
                "status": r["status"],
                "latencyMs": r.get("latencyMs"),
                "offloaded": "offloaded" in r,
            }
            for r in results
            if "tool" in r
        ]
        hook_events = [
            {k: v for k, v in event["hookEvent"].items() if k != "hookEventId"}
            for _, event, _ in self._memory.read_events(ids.actor_id, ids.invocation_id, None)
            if event and "hookEvent" in event
        ] + [e["hookEvent"] for e in events if "hookEvent" in e]
        record = {
            "kind": "invocation",
            "invocationId": ids.invocation_id,
            "harnessId": ids.harness_id,
            "harnessVersion": ids.harness_version,
            # A digest, not the actor id: audit records are locked for years, actor data is erasable.
            "actorDigest": actor_digest(ids.actor_id),
            # The IAM principal that started the turn (a caller of the API, not the actor).
            "requestedBy": invocation.get("requestedBy"),
            "status": status,
            "stopReason": stop_reason,
            "iterations": (loop or {}).get("iteration"),
            "totalTokens": (loop or {}).get("totalTokens"),
            "refusedToolCalls": sorted(refused, key=lambda r: r["toolUseId"]),
            "toolCalls": sorted(tool_calls, key=lambda r: r["toolUseId"]),
            "hookEvents": hook_events,
            "approvals": sorted(self._memory.get_approvals(ids.actor_id, ids.invocation_id)),
            "unavailableToolServers": sorted(
                (self._memory.get_catalog(ids.actor_id, ids.invocation_id) or {}).get("unavailable") or {}
            ),
            "modelSwitches": invocation.get("modelSwitches", []),
            "failure": failure,
            "startedAt": invocation["createdAt"],
            "endedAt": self._clock(),
        }
        try:
            self._audit.write(f"invocations/{ids.harness_id}/{ids.invocation_id}.json", record)
        except (ClientError, BotoCoreError) as error:
            raise TransientStoreError("the audit record could not be written; the step is retried") from error
        self._memory.put_event(
            ids.actor_id, ids.invocation_id, records.END_CONTROL_POSITION, control="end", expires_at=expires
        )

    # -- internals -------------------------------------------------------------------------------------

    def _invocation(self, ids: Ids) -> dict[str, Any]:
        invocation = self._memory.get_invocation(ids.actor_id, ids.invocation_id)
        if invocation is None:
            raise ResourceNotFoundError(f"invocation {ids.invocation_id} no longer exists (erased?)")
        return invocation

    def _config(self, ids: Ids, invocation: dict[str, Any]) -> records.EffectiveConfig:
        return records.EffectiveConfig.of(
            self._harness(ids),
            invocation.get("overrides", {}),
            self._memory.get_catalog(ids.actor_id, ids.invocation_id),
        )

    def _harness_or_none(self, ids: Ids) -> dict[str, Any]:
        return self._harnesses.get(ids.harness_id, ids.harness_version) or {}

    def _hook_payload(
        self,
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

    def _harness(self, ids: Ids) -> dict[str, Any]:
        harness = self._harnesses.get(ids.harness_id, ids.harness_version)
        if harness is None:
            raise ResourceNotFoundError(
                f"harness {ids.harness_id} version {ids.harness_version} no longer exists"
            )
        return harness

    def _limit_reached(self, config: records.EffectiveConfig, loop: dict[str, Any]) -> str | None:
        if self._clock() >= float(loop["deadline"]):
            return "timeout_exceeded"
        if int(loop["iteration"]) >= config.max_iterations:
            return "max_iterations_exceeded"
        if config.max_tokens is not None and int(loop["totalTokens"]) >= config.max_tokens:
            return "max_tokens"
        return None

    def _summarizer(
        self,
        ids: Ids,
        config: records.EffectiveConfig,
        positions: list[str],
        expires: int,
        switches: list[Switch],
        usage: list[Usage],
    ) -> truncation.Summarizer:
        """Summaries for the ``summarization`` strategy: read from the session's cache, or made once
        by the harness's own model configuration through the router (failover and vault apply).
        The summary call's events never reach the caller's stream."""

        def summarize(last: int, older: list[dict[str, Any]]) -> str:
            position = positions[last]
            cached = self._memory.get_summary(ids.actor_id, ids.session_id, position)
            if cached is not None:
                return cached
            system, text = truncation.summarization_request(older, config.truncation)
            request = ModelRequest(
                model_config=config.model,
                messages=[{"role": "user", "content": [{"text": text}]}],
                system=[system],
            )
            parts: list[str] = []
            fit = _summary_fit(request)
            for event in self._router.stream(request, self._on_switch(switches), fit):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Usage):
                    usage.append(event)
            summary = "".join(parts).strip()
            self._memory.put_summary(ids.actor_id, ids.session_id, position, summary, expires)
            return summary

        return summarize

    def _on_switch(self, switches: list[Switch]) -> Callable[[Switch], None]:
        def record(switch: Switch) -> None:
            switches.append(switch)
            if self._record_fallback is not None:
                self._record_fallback(switch.source["provider"], switch.target["provider"], switch.reason)

        return record

    def _record_switches(
        self, ids: Ids, invocation: dict[str, Any], iteration: int, switches: list[Switch]
    ) -> None:
        """Keep the fallback switches of this model call on the invocation (for its audit record).

        Keyed by iteration, so a retried step replaces what it recorded before."""
        if not switches:
            return
        entries = [
            {
                "iteration": iteration,
                "from": s.source["provider"],
                "fromModelId": s.source["modelId"],
                "to": s.target["provider"],
                "toModelId": s.target["modelId"],
                "reason": s.reason,
            }
            for s in switches
        ]
        earlier = [e for e in invocation.get("modelSwitches", []) if e["iteration"] != iteration]
        # Conditional on the status read at the start of the step: a concurrent change wins.
        self._memory.update_invocation(
            ids.actor_id,
            ids.invocation_id,
            status=invocation["status"],
            expected_status=invocation["status"],
            fields={"modelSwitches": earlier + entries},
        )

    def _assistant_message(self, ids: Ids, turn: int, iteration: int) -> dict[str, Any]:
        position = records.assistant_position(turn, iteration)
        for stored_position, message in self._memory.list_messages_with_positions(
            ids.actor_id, ids.session_id
        ):
            if stored_position == position:
                return message
        raise LoopStateError(f"assistant message of iteration {iteration} is missing")

    def _tool_uses(self, ids: Ids, turn: int, iteration: int) -> list[dict[str, Any]]:
        message = self._assistant_message(ids, turn, iteration)
        return [block["toolUse"] for block in message["content"] if "toolUse" in block]

    def _find_tool_use(self, ids: Ids, turn: int, tool_use_id: str) -> tuple[int, int, dict[str, Any]]:
        prefix = f"{turn:06d}#it#"
        for position, message in self._memory.list_messages_with_positions(ids.actor_id, ids.session_id):
            if not (position.startswith(prefix) and position.endswith("#a")):
                continue
            tool_uses = [block["toolUse"] for block in message["content"] if "toolUse" in block]
            for index, call in enumerate(tool_uses):
                if call["toolUseId"] == tool_use_id:
                    return int(position[len(prefix) : len(prefix) + 4]), index, call
        raise LoopStateError(f"tool use {tool_use_id} is not part of this invocation")

    def _commit_tool_results(self, ids: Ids, invocation: dict[str, Any], iteration: int) -> None:
        """Write the tool results of ``iteration`` as one user message, in the model's call order."""
        calls = self._tool_uses(ids, invocation["turn"], iteration)
        if not calls:
            return
        results = self._memory.get_tool_results(ids.actor_id, ids.invocation_id)
        missing = [c["toolUseId"] for c in calls if c["toolUseId"] not in results]
        if missing:
            raise LoopStateError(f"tool results missing for {', '.join(missing)}")
        content = [
            {
                "toolResult": {
                    "toolUseId": c["toolUseId"],
                    "content": results[c["toolUseId"]]["content"],
                    "status": results[c["toolUseId"]].get("status", "success"),
                }
            }
            for c in calls
        ]
        self._memory.put_message(
            ids.actor_id,
            ids.session_id,
            records.results_position(invocation["turn"], iteration),
            {"role": "user", "content": content},
            invocation["expiresAt"],
        )


_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _tool_use_kind(config: records.EffectiveConfig) -> Callable[[str], dict[str, str]]:
    def describe(name: str) -> dict[str, str]:
        entry = config.toolset.entry(name)
        if entry is None or entry.server is None:
            return {}
        kind = "mcp_tool_use" if entry.tool_type == REMOTE_MCP else "server_tool_use"
        return {"type": kind, "serverName": entry.server}

    return describe


def _approval_request(tool_use_id: str, reason: str) -> dict[str, Any]:
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


def _prompt_budget(model: dict[str, Any]) -> int:
    """The tokens a request to ``model`` may take: its context window less room for the reply."""
    _, config = member(model)
    return context_window_tokens(model) - int(config.get("maxTokens") or truncation.DEFAULT_REPLY_TOKENS)


def _summary_fit(
    request: ModelRequest,
) -> Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]:
    """Cuts a summarization request to a model's context window (see ``fit_summarization_request``)."""
    overhead = truncation.estimate_tokens(request.system)

    def fit(messages: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
        return truncation.fit_summarization_request(messages, _prompt_budget(model), overhead)

    return fit


def _window_fit(
    request: ModelRequest,
) -> Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]:
    """Cuts the history to a model's context window, leaving room for the system prompt, the tool
    definitions and the reply."""
    overhead = truncation.estimate_tokens(request.system) + truncation.estimate_tokens(
        [dataclasses.asdict(spec) for spec in request.tools]
    )

    def fit(messages: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
        return truncation.fit(messages, _prompt_budget(model), overhead)

    return fit


class _Reply:
    """The assistant message of one model call, built from the provider's events as they stream:
    each event is forwarded to the caller's stream at once."""

    def __init__(
        self,
        emit: _Emitter,
        describe: Callable[[str], dict[str, str]] = lambda _: {},
        taken_ids: set[str] | None = None,
    ) -> None:
        self._emit = emit
        # Tool-use ids are unique within a turn: results, approvals and dispatch are keyed by them.
        # A provider that repeats one (or sends one the contract does not allow) gets a fresh id.
        self._taken = set(taken_ids or ())
        self._renamed: dict[str, str] = {}
        # The stream's type and serverName of a tool use (server tools), by tool name.
        self._describe = describe
        self._content: list[dict[str, Any]] = []
        self._tool_inputs: dict[str, list[str]] = {}
        self._block_open = False
        self.stop_reason = "end_turn"
        self.usage = Usage(0, 0)

    def add(self, event: ModelEvent) -> None:
        if isinstance(event, TextDelta):
            if not self._content or "text" not in self._content[-1]:
                self._open_block({"text": ""})
            self._content[-1]["text"] += event.text
            self._delta({"text": event.text})
        elif isinstance(event, ToolUseStart):
            tool_use_id = event.tool_use_id
            if tool_use_id in self._taken or not _TOOL_USE_ID.fullmatch(tool_use_id):
                tool_use_id = f"tooluse_{uuid.uuid4().hex[:24]}"
            self._taken.add(tool_use_id)
            self._renamed[event.tool_use_id] = tool_use_id
            self._open_block({"toolUse": {"toolUseId": tool_use_id, "name": event.name, "input": {}}})
            self._tool_inputs[tool_use_id] = []
            self._emit(
                {
                    "contentBlockStart": {
                        "contentBlockIndex": len(self._content) - 1,
                        "start": {
                            "toolUse": {"toolUseId": tool_use_id, "name": event.name}
                            | self._describe(event.name)
                        },
                    }
                }
            )
        elif isinstance(event, ToolUseInputDelta):
            # Arguments may arrive in chunks: assemble per call id, parse once at the end.
            self._tool_inputs[self._renamed.get(event.tool_use_id, event.tool_use_id)].append(
                event.input_json
            )
            self._delta({"toolUse": {"input": event.input_json}})
        elif isinstance(event, Stop):
            self.stop_reason = event.reason
        elif isinstance(event, Usage):
            self.usage = event

    def close(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The message content, and a problem per tool call whose arguments are not a JSON object."""
        if self._block_open:
            self._emit({"contentBlockStop": {"contentBlockIndex": len(self._content) - 1}})
            self._block_open = False
        malformed: dict[str, str] = {}
        for block in self._content:
            call = block.get("toolUse")
            if not call:
                continue
            raw = "".join(self._tool_inputs.get(call["toolUseId"], [])) or "{}"
            try:
                # NaN and Infinity are not JSON: they would slip past numeric schemas and policies.
                parsed = json.loads(raw, parse_constant=_reject_constant)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                call["input"] = parsed
            else:
                malformed[call["toolUseId"]] = (
                    f"The arguments for tool {call['name']} were not a JSON object."
                )
        return self._content or [{"text": ""}], malformed

    def _open_block(self, block: dict[str, Any]) -> None:
        if self._block_open:
            self._emit({"contentBlockStop": {"contentBlockIndex": len(self._content) - 1}})
        self._content.append(block)
        self._block_open = True

    def _delta(self, delta: dict[str, Any]) -> None:
        self._emit({"contentBlockDelta": {"contentBlockIndex": len(self._content) - 1, "delta": delta}})


class _Emitter:
    """Writes stream events at consecutive positions of one step."""

    def __init__(
        self, memory: MemoryStore, ids: Ids, expires_at: int, position: Callable[[int], str]
    ) -> None:
        self._memory = memory
        self._ids = ids
        self._expires_at = expires_at
        self._position = position
        self._n = 0

    def __call__(self, event: dict[str, Any]) -> None:
        self._memory.put_event(
            self._ids.actor_id,
            self._ids.invocation_id,
            self._position(self._n),
            event=event,
            expires_at=self._expires_at,
        )
        self._n += 1


# Errors whose messages were written for callers; anything else is reported without internals.
def _error_names(cls: type[Exception]) -> set[str]:
    return {cls.__name__}.union(*(_error_names(sub) for sub in cls.__subclasses__()))


_CALLER_SAFE_ERRORS = _error_names(ModelCallError) | _error_names(HarnessError)


def describe_failure(failure: dict[str, Any]) -> tuple[str, str]:
    """The error name and a caller-safe message for a Step Functions Catch payload."""
    error = str(failure.get("Error", "States.Runtime"))
    if error == "States.Timeout":
        return error, "The client did not answer the pending tool uses in time."
    cause = failure.get("Cause") or ""
    try:
        detail = json.loads(cause)
    except (TypeError, json.JSONDecodeError):
        detail = {}
    if error in _CALLER_SAFE_ERRORS and isinstance(detail, dict) and detail.get("errorMessage"):
        return error, f"{error}: {detail['errorMessage']}"
    return (
        error,
        "The invocation failed because of an internal error; the operator can find it by invocation id.",
    )
