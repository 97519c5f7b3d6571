"""Keeping requests within a model's context window without breaking the conversation.

The harness's ``truncation`` member chooses the strategy applied before every model call:

- ``none`` (the default): the whole history is sent;
- ``sliding_window``: only the last ``config.slidingWindow.messagesCount`` messages (40 if unset).

Whatever the strategy, a request whose estimated size exceeds the model's context window is cut
further, oldest turns first; if even the last turn does not fit, the turn ends with the stop
reason ``model_context_window_exceeded``.

Every cut is made between complete turns: the first message kept is a user message that carries
no tool result, and no tool call is ever separated from its result. When no such point exists
within the limit, more is kept rather than less: the current turn is never cut.

Pure functions over canonical (Converse-shaped) messages: nothing here reads or writes a store.
"""

from __future__ import annotations

import json
from typing import Any

NONE = "none"
SLIDING_WINDOW = "sliding_window"
SUMMARIZATION = "summarization"
DEFAULT = {"strategy": NONE}
DEFAULT_MESSAGES_COUNT = 40
CHARS_PER_TOKEN = 4
# Room left for the reply when the model configuration sets no maxTokens.
DEFAULT_REPLY_TOKENS = 4096

Messages = list[dict[str, Any]]
# The member of ``truncation.config`` each strategy reads.
_CONFIG_MEMBERS = {SLIDING_WINDOW: "slidingWindow", SUMMARIZATION: "summarization"}


class ContextWindowExceededError(Exception):
    """Even the last turn of the conversation does not fit the model's context window."""


def _tool_pairs(messages: Messages) -> list[tuple[int, int]]:
    """(index of the toolUse, index of its toolResult) for every answered tool call."""
    used_at: dict[str, int] = {}
    pairs = []
    for index, message in enumerate(messages):
        for block in message.get("content", []):
            if "toolUse" in block:
                used_at[block["toolUse"]["toolUseId"]] = index
            elif "toolResult" in block and block["toolResult"].get("toolUseId") in used_at:
                pairs.append((used_at[block["toolResult"]["toolUseId"]], index))
    return pairs


def cut_points(messages: Messages) -> list[int]:
    """Indices where the history may start: user messages without tool results, with no tool
    call before the index whose result comes at or after it."""
    pairs = _tool_pairs(messages)
    points = []
    for index, message in enumerate(messages):
        if message.get("role") != "user":
            continue
        if any("toolResult" in block for block in message.get("content", [])):
            continue
        if any(used < index <= answered for used, answered in pairs):
            continue
        points.append(index)
    return points


def _keep_from(messages: Messages, earliest: int) -> Messages:
    """The history from the first cut point at or after ``earliest`` (or from the last cut point
    before it, when there is none after: the current turn stays whole)."""
    points = cut_points(messages)
    if not points or earliest <= 0:
        return messages
    later = [p for p in points if p >= earliest]
    start = later[0] if later else points[-1]
    return messages[start:]


def sliding_window(messages: Messages, messages_count: int) -> Messages:
    return _keep_from(messages, len(messages) - messages_count)


def apply(messages: Messages, truncation: dict[str, Any]) -> Messages:
    """The history after the harness's truncation strategy (``none`` returns it unchanged)."""
    if truncation.get("strategy") == SLIDING_WINDOW:
        window = (truncation.get("config") or {}).get("slidingWindow") or {}
        return sliding_window(messages, int(window.get("messagesCount", DEFAULT_MESSAGES_COUNT)))
    return messages


def estimate_tokens(value: Any) -> int:
    """A cheap, provider-independent size estimate: JSON characters / 4."""
    return -(-len(json.dumps(value, separators=(",", ":"), default=str)) // CHARS_PER_TOKEN)


def fit(messages: Messages, budget_tokens: int, overhead_tokens: int = 0) -> Messages:
    """The longest suffix of whole turns whose estimate fits ``budget_tokens`` (after a fixed
    ``overhead_tokens`` for system prompt and tool definitions)."""
    available = budget_tokens - overhead_tokens
    sizes = [estimate_tokens(message) for message in messages]
    if sum(sizes) <= available:
        return messages
    points = cut_points(messages)
    for start in points:
        if start > 0 and sum(sizes[start:]) <= available:
            return messages[start:]
    last_turn = sum(sizes[points[-1] :]) if points else sum(sizes)
    raise ContextWindowExceededError(
        f"the last turn needs about {last_turn} tokens; the model's context window leaves {available}"
    )


def problems(truncation: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for what this deployment cannot do with a truncation configuration."""
    strategy = truncation.get("strategy")
    config = truncation.get("config") or {}
    found: list[tuple[str, str]] = []
    if strategy == SUMMARIZATION:
        found.append(
            (
                "truncation.strategy",
                "summarization is not supported by this deployment yet; use sliding_window or none",
            )
        )
    for member in config:
        if member != _CONFIG_MEMBERS.get(str(strategy)):
            found.append((f"truncation.config.{member}", f"does not apply to strategy {strategy}"))
    count = (config.get("slidingWindow") or {}).get("messagesCount")
    if count is not None and count < 1:
        found.append(("truncation.config.slidingWindow.messagesCount", "must be at least 1"))
    return found
