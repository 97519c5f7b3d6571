"""LoadContext and CallModel: start the turn, then each model call with its budgets, summaries,
context-window fit, failover and the stream of its reply."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import records, truncation
from harness.errors import ContextWindowExceededError, LoopStateError
from harness.hooks import hook_specs
from harness.loop.context import LoopContext, hook_payload
from harness.loop.reply import Reply
from harness.loop.state import HOOK_STOPPED, NO_STOP, Ids, LoopIds, LoopState
from harness.providers.base import ModelRequest, Stop, TextDelta, Usage
from harness.providers.registry import member
from harness.providers.router import Router, Switch, context_window_tokens
from harness.tools.registry import REMOTE_MCP

if TYPE_CHECKING:
    from harness.tools.dispatch import ToolDispatcher

LIMIT_MESSAGES = {
    "max_iterations_exceeded": "The invocation reached its maxIterations limit.",
    "max_tokens": "The invocation reached its maxTokens budget.",
    "timeout_exceeded": "The invocation reached its timeoutSeconds limit.",
}
CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"
CONTEXT_WINDOW_MESSAGE = (
    "The conversation's last turn does not fit the model's context window; nothing was sent to the model."
)
# What the tool lists of one invocation may take in its memory-table item (DynamoDB: 400 KB).
CATALOG_BYTES = 300_000
# Called on every switch to the next model of a fallback chain: (from provider, to provider, reason).
FallbackRecorder = Callable[[str, str, str], None]
# Cuts a list of messages to one model's context window.
Fit = Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]


class ModelTurn:
    def __init__(
        self,
        context: LoopContext,
        router: Router,
        dispatcher: ToolDispatcher | None = None,
        record_fallback: FallbackRecorder | None = None,
    ) -> None:
        self._context = context
        self._memory = context.memory
        self._router = router
        self._dispatcher = dispatcher
        self._record_fallback = record_fallback

    # -- LoadContext ------------------------------------------------------------------------------------

    def load_context(self, raw_ids: LoopIds, deadline: float | None = None) -> LoopState:
        """Store the turn's input, list the tool servers' tools and run beforeInvocation hooks.
        ``deadline`` (``time.monotonic``, as in every step that runs hooks) is when the calling
        function times out; hooks get only the time left before it."""
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        config = records.EffectiveConfig.of(self._context.harness(ids), invocation.get("overrides", {}))
        for index, message in enumerate(invocation["input"]):
            self._memory.conversations.put_message(
                ids.actor_id,
                ids.session_id,
                records.input_position(invocation["turn"], index),
                message,
                invocation["expiresAt"],
            )
        if config.toolset.servers:
            self._list_server_tools(ids, invocation, config)
        denial = self._context.run_hooks(
            hook_specs(config.hooks),
            "beforeInvocation",
            hook_payload(ids, "beforeInvocation"),
            self._context.emitter(ids, invocation, records.start_event_position),
            deadline,
        )
        return {
            "iteration": 0,
            "totalTokens": 0,
            "deadline": int(invocation["createdAt"]) + config.timeout_seconds,
            "stopReason": HOOK_STOPPED if denial else NO_STOP,
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
        self._memory.tool_calls.put_catalog(
            ids.actor_id,
            ids.invocation_id,
            {"tools": items, "unavailable": problems},
            invocation["expiresAt"],
        )

    # -- CallModel --------------------------------------------------------------------------------------

    def call_model(self, raw_ids: LoopIds, loop: LoopState, deadline: float | None = None) -> LoopState:
        """One model turn. ``deadline`` (``time.monotonic``) is when the calling function times out."""
        ids = Ids.of(raw_ids)
        invocation = self._context.invocation(ids)
        config = self._context.config(ids, invocation)
        iteration = int(loop["iteration"])
        turn = invocation["turn"]
        expires = invocation["expiresAt"]
        emit = self._context.emitter(ids, invocation, lambda n: records.model_event_position(iteration, n))

        if iteration > 0:
            self._commit_tool_results(ids, invocation, iteration - 1)
        limit = self._limit_reached(config, loop)
        if limit:
            emit({"messageStart": {"role": "assistant"}})
            emit({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": LIMIT_MESSAGES[limit]}}})
            emit({"contentBlockStop": {"contentBlockIndex": 0}})
            emit({"messageStop": {"stopReason": limit}})
            return loop | {"stopReason": limit}

        stored = self._memory.conversations.list_messages_with_positions(ids.actor_id, ids.session_id)
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
        started = self._context.clock()
        # Tool-use ids of earlier model calls of this turn (a retried step rewrites its own message).
        earlier = {
            block["toolUse"]["toolUseId"]
            for position, message in stored
            if records.assistant_iteration(turn, position) not in (None, iteration)
            for block in message.get("content", [])
            if "toolUse" in block
        }
        reply = Reply(emit, _tool_use_kind(config), earlier)
        emit({"messageStart": {"role": "assistant"}})
        try:
            for event in self._router.stream(
                request, self._on_switch(switches), _window_fit(request), deadline=deadline
            ):
                reply.add(event)
        except ContextWindowExceededError:
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
                    "metrics": {"latencyMs": int((self._context.clock() - started) * 1000)},
                }
            }
        )
        self._memory.conversations.put_message(
            ids.actor_id,
            ids.session_id,
            records.assistant_position(turn, iteration),
            {"role": "assistant", "content": content},
            expires,
        )
        for tool_use_id, problem in malformed.items():
            self._context.answer_with_error(ids, invocation, tool_use_id, problem)
        return {
            "iteration": iteration + 1,
            "totalTokens": int(loop["totalTokens"]) + usage.input_tokens + usage.output_tokens,
            "deadline": loop["deadline"],
            "stopReason": reply.stop_reason,
        }

    def _limit_reached(self, config: records.EffectiveConfig, loop: LoopState) -> str | None:
        if self._context.clock() >= float(loop["deadline"]):
            return "timeout_exceeded"
        if int(loop["iteration"]) >= config.max_iterations:
            return "max_iterations_exceeded"
        if config.max_tokens is not None and int(loop["totalTokens"]) >= config.max_tokens:
            return "max_tokens"
        return None

    def _commit_tool_results(self, ids: Ids, invocation: dict[str, Any], iteration: int) -> None:
        """Write the tool results of ``iteration`` as one user message, in the model's call order."""
        calls = self._context.tool_uses(ids, invocation["turn"], iteration)
        if not calls:
            return
        results = self._memory.tool_calls.get_tool_results(ids.actor_id, ids.invocation_id)
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
        self._memory.conversations.put_message(
            ids.actor_id,
            ids.session_id,
            records.results_position(invocation["turn"], iteration),
            {"role": "user", "content": content},
            invocation["expiresAt"],
        )

    # -- summaries and failover -------------------------------------------------------------------------

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
        conversations = self._memory.conversations

        def summarize(last: int, older: list[dict[str, Any]]) -> str:
            position = positions[last]
            cached = conversations.get_summary(ids.actor_id, ids.session_id, position)
            if cached is not None:
                return cached
            system, text = truncation.summarization_request(older, config.truncation)
            request = ModelRequest(
                model_config=config.model,
                messages=[{"role": "user", "content": [{"text": text}]}],
                system=[system],
            )
            parts: list[str] = []
            for event in self._router.stream(request, self._on_switch(switches), _summary_fit(request)):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Usage):
                    usage.append(event)
            summary = "".join(parts).strip()
            conversations.put_summary(ids.actor_id, ids.session_id, position, summary, expires)
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
        self._memory.invocations.update_invocation(
            ids.actor_id,
            ids.invocation_id,
            status=invocation["status"],
            expected_status=invocation["status"],
            fields={"modelSwitches": earlier + entries},
        )


def _tool_use_kind(config: records.EffectiveConfig) -> Callable[[str], dict[str, str]]:
    """The stream's ``type`` and ``serverName`` of a server tool's tool use, by tool name."""

    def describe(name: str) -> dict[str, str]:
        entry = config.toolset.entry(name)
        if entry is None or entry.server is None:
            return {}
        kind = "mcp_tool_use" if entry.tool_type == REMOTE_MCP else "server_tool_use"
        return {"type": kind, "serverName": entry.server}

    return describe


def _prompt_budget(model: dict[str, Any]) -> int:
    """The tokens a request to ``model`` may take: its context window less room for the reply."""
    _, config = member(model)
    return context_window_tokens(model) - int(config.get("maxTokens") or truncation.DEFAULT_REPLY_TOKENS)


def _summary_fit(request: ModelRequest) -> Fit:
    """Cuts a summarization request to a model's context window (see ``fit_summarization_request``)."""
    overhead = truncation.estimate_tokens(request.system)

    def fit(messages: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
        return truncation.fit_summarization_request(messages, _prompt_budget(model), overhead)

    return fit


def _window_fit(request: ModelRequest) -> Fit:
    """Cuts the history to a model's context window, leaving room for the system prompt, the tool
    definitions and the reply."""
    overhead = truncation.estimate_tokens(request.system) + truncation.estimate_tokens(
        [dataclasses.asdict(spec) for spec in request.tools]
    )

    def fit(messages: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
        return truncation.fit(messages, _prompt_budget(model), overhead)

    return fit
