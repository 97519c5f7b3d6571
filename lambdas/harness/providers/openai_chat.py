"""The OpenAI Chat Completions format (OpenAI, every OpenAI-compatible server, and LiteLLM).

Translation (pure functions, tested both ways): ``to_openai_chat`` / ``from_openai_chat``, canonical
(Converse-shaped) messages <-> Chat Completions ``messages``. System texts become one leading
``system`` message (joined by a blank line: several OpenAI-compatible chat templates accept only
one). ``toolUse`` blocks become the assistant's ``tool_calls`` (arguments as a JSON string); each
``toolResult`` becomes one ``role: tool`` message, placed right after the assistant turn as OpenAI
requires, ahead of the user's other content. What the format cannot carry: see ``openai_format``.

``ChatStreamReader`` turns the streamed chunks into model events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.providers.base import (
    ModelEvent,
    ModelRequest,
    ModelUnavailableError,
    Stop,
    TextDelta,
    ToolSpec,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.blocks import document_note
from harness.providers.config import additional_params, config_for, inference_settings
from harness.providers.openai_format import (
    CONFIG_KEY,
    StreamedCall,
    append_blocks,
    image_data_url,
    joined_text_parts,
    parse_arguments,
    result_from_text,
    result_text,
    tool_arguments,
    user_blocks,
    value_of,
)
from harness.providers.tool_use_ids import canonical_tool_use_id

# additionalParams may set any request field except these, which the provider owns.
RESERVED_CHAT_PARAMS = frozenset({"model", "messages", "stream"})

CHAT_FINISH_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "content_filtered",
}


def chat_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
        }
        for t in tools
    ]


def _user_content(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if "text" in block:
            parts.append({"type": "text", "text": block["text"]})
        elif "image" in block:
            parts.append({"type": "image_url", "image_url": {"url": image_data_url(block["image"])}})
        elif "document" in block:
            parts.append({"type": "text", "text": document_note(block)})
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])  # a plain string: what every compatible server accepts
    return parts


def _assistant_message(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    texts = [b["text"] for b in blocks if "text" in b]
    calls = [
        {
            "id": b["toolUse"]["toolUseId"],
            "type": "function",
            "function": {
                "name": b["toolUse"]["name"],
                "arguments": tool_arguments(b["toolUse"].get("input", {})),
            },
        }
        for b in blocks
        if "toolUse" in b
    ]
    if not texts and not calls:
        return None  # e.g. only reasoning: nothing this provider can take
    entry: dict[str, Any] = {"role": "assistant"}
    if len(texts) == 1:
        entry["content"] = texts[0]
    elif texts:
        entry["content"] = [{"type": "text", "text": t} for t in texts]
    # no texts: no content key (OpenAI allows it with tool_calls; some servers reject null)
    if calls:
        entry["tool_calls"] = calls
    return entry


def chat_messages(messages: list[dict[str, Any]], system: list[str]) -> list[dict[str, Any]]:
    """Canonical messages (and system texts) as Chat Completions ``messages``."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": "\n\n".join(system)})
    for message in messages:
        blocks = message.get("content", [])
        if message["role"] == "assistant":
            entry = _assistant_message(blocks)
            if entry is not None:
                out.append(entry)
            continue
        for block in blocks:
            if "toolResult" in block:
                result = block["toolResult"]
                out.append(
                    {"role": "tool", "tool_call_id": result["toolUseId"], "content": result_text(result)}
                )
        rest = [b for b in blocks if "text" in b or "image" in b or "document" in b]
        if rest:
            out.append({"role": "user", "content": _user_content(rest)})
    return out


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        blocks.append({"text": content})
    elif isinstance(content, list):
        blocks.extend({"text": p["text"]} for p in content if p.get("type") == "text")
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        use = {
            "toolUseId": call["id"],
            "name": function.get("name", ""),
            "input": parse_arguments(function.get("arguments")),
        }
        blocks.append({"toolUse": use})
    return blocks


def from_openai_chat(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions ``messages`` as canonical messages (system messages are left out)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            append_blocks(out, "assistant", _assistant_blocks(message))
        elif role == "tool":
            text = content if isinstance(content, str) else joined_text_parts(content)
            append_blocks(out, "user", [{"toolResult": result_from_text(message["tool_call_id"], text)}])
        elif role == "user":
            append_blocks(out, "user", user_blocks(content))
    return out


def chat_request(model: str, request: ModelRequest) -> dict[str, Any]:
    """The fields of a streaming Chat Completions request every server takes alike: the model, the
    messages and the tools (OpenAI and LiteLLM add their own)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(request.messages, request.system),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = chat_tools(request.tools)
    return body


def to_openai_chat(request: ModelRequest) -> dict[str, Any]:
    """The Chat Completions request body (streaming) for a canonical request."""
    config = config_for(request, CONFIG_KEY)
    body = chat_request(config["modelId"], request)
    # OpenAI's own newer models take only max_completion_tokens; compatible servers all know
    # max_tokens, not all know the newer name.
    max_tokens = "max_tokens" if config.get("apiBase") else "max_completion_tokens"
    body.update(
        inference_settings(config, {"maxTokens": max_tokens, "temperature": "temperature", "topP": "top_p"})
    )
    body.update(additional_params(config, CONFIG_KEY, RESERVED_CHAT_PARAMS))
    return body


class ChatStreamReader:
    """Chat Completions stream chunks (OpenAI SDK or LiteLLM) as model events, as they arrive.

    Tool-call deltas are keyed by ``index``: the first chunk of a call carries its id and name,
    later ones only argument pieces. A server that sends no id gets a deterministic one; one that
    reuses index 0 for several calls (distinct ids) is told apart by id."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._calls: list[StreamedCall] = []
        self._by_index: dict[Any, StreamedCall] = {}
        self._finish: str | None = None
        self._usage: tuple[int, int] | None = None

    def feed(self, chunk: Any) -> Iterator[ModelEvent]:
        usage = value_of(chunk, "usage")
        if usage is not None:
            self._usage = (
                int(value_of(usage, "prompt_tokens") or 0),
                int(value_of(usage, "completion_tokens") or 0),
            )
        for choice in value_of(chunk, "choices") or []:
            delta = value_of(choice, "delta")
            if delta is not None:
                for name in ("content", "refusal"):
                    text = value_of(delta, name)
                    if isinstance(text, str) and text:
                        yield TextDelta(text)
                for call in value_of(delta, "tool_calls") or []:
                    yield from self._tool_call(call)
            finish = value_of(choice, "finish_reason")
            if finish:
                self._finish = str(finish)

    def _tool_call(self, delta: Any) -> Iterator[ModelEvent]:
        index, call_id = value_of(delta, "index"), value_of(delta, "id")
        call = self._by_index.get(index)
        if call is None or (call_id and call.id and call_id not in (call.id, call.raw_id)):
            call = StreamedCall(id=call_id or None)
            self._calls.append(call)
            self._by_index[index] = call
        elif call_id and not call.id:
            call.id = call_id
        function = value_of(delta, "function")
        name = value_of(function, "name") if function is not None else None
        arguments = value_of(function, "arguments") if function is not None else None
        if name and not call.name:
            call.name = name
        if arguments:
            call.pending.append(arguments)
        if not call.started and call.name:
            call.raw_id = call.id
            call.id = canonical_tool_use_id(call.id, self._seed, len(self._calls))
            call.started = True
            yield ToolUseStart(tool_use_id=call.id, name=call.name)
        if call.started:
            yield from call.flush()

    def finish(self) -> Iterator[ModelEvent]:
        """The closing events: any call still unstarted, ``{}`` for calls without arguments,
        then ``Stop`` and ``Usage``."""
        for position, call in enumerate(self._calls, start=1):
            if not call.started:
                call.id = canonical_tool_use_id(call.id, self._seed, position)
                call.started = True
                yield ToolUseStart(tool_use_id=call.id, name=call.name or "")
                yield from call.flush()
            if call.length == 0:
                assert call.id is not None
                yield ToolUseInputDelta(tool_use_id=call.id, input_json="{}")
        if self._finish is None:
            raise ModelUnavailableError("the model's stream ended before it finished its reply")
        reason = CHAT_FINISH_REASONS.get(self._finish, "end_turn")
        if self._calls and reason == "end_turn":
            reason = "tool_use"  # some compatible servers say "stop" after tool calls
        yield Stop(reason)
        input_tokens, output_tokens = self._usage or (0, 0)
        yield Usage(input_tokens=input_tokens, output_tokens=output_tokens)
