"""Keeping requests within a model's context window without breaking the conversation.

The harness's ``truncation`` member chooses the strategy applied before every model call:

- ``none`` (the default): the whole history is sent;
- ``sliding_window``: only the last ``config.slidingWindow.messagesCount`` messages (40 if unset);
- ``summarization``: the last ``config.summarization.preserveRecentMessages`` messages (10 if
  unset) are sent as they are; everything before them is replaced, in the request only (never in
  storage), by a summary the same model writes (``summarized`` shapes the request; the loop makes
  and caches the summary).

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
from collections.abc import Callable
from typing import Any

from harness.errors import ContextWindowExceededError

NONE = "none"
SLIDING_WINDOW = "sliding_window"
SUMMARIZATION = "summarization"
DEFAULT = {"strategy": NONE}
DEFAULT_MESSAGES_COUNT = 40
DEFAULT_PRESERVE_RECENT = 10
DEFAULT_SUMMARY_RATIO = 0.3
DEFAULT_SUMMARIZATION_PROMPT = (
    "You summarize conversations between a user and an AI assistant. Keep the facts, decisions, "
    "open questions and tool results the assistant will need to continue; answer with the summary only."
)
SUMMARY_PREFIX = "Summary of the earlier conversation: "
# The first line of every summarization request (the local model recognises it).
SUMMARIZATION_REQUEST = "Summarize the following conversation."
CHARS_PER_TOKEN = 4
# Room left for the reply when the model configuration sets no maxTokens.
DEFAULT_REPLY_TOKENS = 4096

Messages = list[dict[str, Any]]
# The member of ``truncation.config`` each strategy reads.
_CONFIG_MEMBERS = {SLIDING_WINDOW: "slidingWindow", SUMMARIZATION: "summarization"}


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


def _summarization(truncation: dict[str, Any]) -> dict[str, Any]:
    return dict((truncation.get("config") or {}).get("summarization") or {})


def summary_split(messages: Messages, truncation: dict[str, Any]) -> int:
    """How many of the oldest messages a summary replaces: 0 unless the strategy is
    ``summarization`` and there are more than ``preserveRecentMessages`` messages. The split is a
    cut point (whole turns), moved forward as sliding_window does, but never into the current turn."""
    if truncation.get("strategy") != SUMMARIZATION:
        return 0
    preserve = int(_summarization(truncation).get("preserveRecentMessages", DEFAULT_PRESERVE_RECENT))
    if len(messages) <= preserve:
        return 0
    return len(messages) - len(_keep_from(messages, len(messages) - preserve))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _block_text(block: dict[str, Any]) -> str:
    if "text" in block:
        return str(block["text"])
    if "json" in block:
        return _json(block["json"])
    return _json(block)


def render(messages: Messages) -> str:
    """The conversation as plain text, one line per block; tool calls and results included."""
    names: dict[str, str] = {}
    lines = []
    for message in messages:
        role = message.get("role", "user")
        for block in message.get("content", []):
            if "text" in block:
                lines.append(f"{role}: {block['text']}")
            elif "toolUse" in block:
                call = block["toolUse"]
                names[call.get("toolUseId", "")] = call.get("name", "")
                lines.append(f"{role} called tool {call.get('name')} with {_json(call.get('input', {}))}")
            elif "toolResult" in block:
                result = block["toolResult"]
                name = names.get(result.get("toolUseId", ""), result.get("toolUseId"))
                error = " (error)" if result.get("status") == "error" else ""
                text = " ".join(_block_text(item) for item in result.get("content", []))
                lines.append(f"result of tool {name}{error}: {text}")
            else:
                lines.append(f"{role}: {_json(block)}")
    return "\n".join(lines)


def summarization_request(older: Messages, truncation: dict[str, Any]) -> tuple[str, str]:
    """(system prompt, user text) of the model call that summarizes ``older``."""
    config = _summarization(truncation)
    system = str(config.get("summarizationSystemPrompt") or DEFAULT_SUMMARIZATION_PROMPT)
    ratio = float(config.get("summaryRatio", DEFAULT_SUMMARY_RATIO))
    conversation = render(older)
    limit = max(1, int(len(conversation) * ratio))
    text = (
        f"{SUMMARIZATION_REQUEST} Answer in at most {limit} characters "
        f"({ratio:g} of its length).\n\n{conversation}"
    )
    return system, text


OMITTED_MARKER = (
    "[... the earliest part of the conversation is omitted: it does not fit the model's context ...]"
)


def fit_summarization_request(messages: Messages, budget_tokens: int, overhead_tokens: int = 0) -> Messages:
    """The summarization request (one user text: instruction, blank line, conversation) cut to
    ``budget_tokens``: the instruction stays, the conversation keeps its most recent part after a
    marker. Summaries are what make long sessions fit, so they must fit themselves."""
    if sum(estimate_tokens(m) for m in messages) + overhead_tokens <= budget_tokens:
        return messages
    (message,) = messages
    text = message["content"][0]["text"]
    instruction, _, conversation = text.partition("\n\n")
    # JSON escaping can double a character's size: budget characters at half the estimate's rate.
    room = (budget_tokens - overhead_tokens - estimate_tokens(instruction)) * CHARS_PER_TOKEN // 2 - len(
        OMITTED_MARKER
    )
    if room <= 0:
        raise ContextWindowExceededError("the model's context window cannot hold a summarization request")
    kept = conversation[-room:]
    return [message | {"content": [{"text": f"{instruction}\n\n{OMITTED_MARKER}\n{kept}"}]}]


def with_summary(summary: str, recent: Messages) -> Messages:
    """The request history: the summary as a user text, then ``recent``. When ``recent`` starts with
    a user message, the summary becomes its leading text block (no two user messages in a row)."""
    block = {"text": SUMMARY_PREFIX + summary}
    if recent and recent[0].get("role") == "user":
        first = recent[0] | {"content": [block, *recent[0].get("content", [])]}
        return [first, *recent[1:]]
    return [{"role": "user", "content": [block]}, *recent]


# Makes (or finds) the summary of ``older``; the index is that of the last message it covers.
Summarizer = Callable[[int, Messages], str]


def summarized(messages: Messages, truncation: dict[str, Any], summarize: Summarizer) -> Messages:
    """The history with everything before the split replaced by a summary (unchanged when there is
    nothing to summarize)."""
    split = summary_split(messages, truncation)
    if split <= 0:
        return messages
    return with_summary(summarize(split - 1, messages[:split]), messages[split:])


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
    for member in config:
        if member != _CONFIG_MEMBERS.get(str(strategy)):
            found.append((f"truncation.config.{member}", f"does not apply to strategy {strategy}"))
    count = (config.get("slidingWindow") or {}).get("messagesCount")
    if count is not None and count < 1:
        found.append(("truncation.config.slidingWindow.messagesCount", "must be at least 1"))
    summarization = config.get("summarization") or {}
    preserve = summarization.get("preserveRecentMessages")
    if preserve is not None and preserve < 1:
        found.append(("truncation.config.summarization.preserveRecentMessages", "must be at least 1"))
    ratio = summarization.get("summaryRatio")
    if ratio is not None and not 0 < ratio < 1:
        found.append(("truncation.config.summarization.summaryRatio", "must be between 0 and 1"))
    return found
