"""The OpenAI Responses API format (``apiFormat: "responses"``).

Translation (pure functions, tested both ways): ``to_openai_responses`` / ``from_openai_responses``,
the canonical history as Responses API input items (``message``, ``function_call``,
``function_call_output``), the system as ``instructions``. What the format cannot carry: see
``openai_format``.

``ResponsesStreamReader`` turns the streamed events into model events.
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
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.blocks import document_note
from harness.providers.config import additional_params, config_for, inference_settings
from harness.providers.openai_errors import stream_error
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
RESERVED_RESPONSES_PARAMS = frozenset({"model", "input", "stream"})

INCOMPLETE_REASONS = {"max_output_tokens": "max_tokens", "content_filter": "content_filtered"}


def _assistant_items(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    texts = [b["text"] for b in blocks if "text" in b]
    if texts:
        content = [{"type": "output_text", "text": t} for t in texts]
        items.append({"type": "message", "role": "assistant", "content": content})
    for block in blocks:
        if "toolUse" in block:
            use = block["toolUse"]
            items.append(
                {
                    "type": "function_call",
                    "call_id": use["toolUseId"],
                    "name": use["name"],
                    "arguments": tool_arguments(use.get("input", {})),
                }
            )
    return items


def _user_items(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for block in blocks:
        if "toolResult" in block:
            result = block["toolResult"]
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": result["toolUseId"],
                    "output": result_text(result),
                }
            )
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if "text" in block:
            parts.append({"type": "input_text", "text": block["text"]})
        elif "image" in block:
            parts.append(
                {"type": "input_image", "image_url": image_data_url(block["image"]), "detail": "auto"}
            )
        elif "document" in block:
            parts.append({"type": "input_text", "text": document_note(block)})
    if parts:
        items.append({"type": "message", "role": "user", "content": parts})
    return items


def responses_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages as Responses API input items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        blocks = message.get("content", [])
        if message["role"] == "assistant":
            items.extend(_assistant_items(blocks))
        else:
            items.extend(_user_items(blocks))
    return items


def _message_blocks(out: list[dict[str, Any]], item: dict[str, Any]) -> None:
    role = item.get("role")
    if role == "assistant":
        content = item.get("content")
        if isinstance(content, str):
            append_blocks(out, "assistant", [{"text": content}])
        else:
            texts = [{"text": p["text"]} for p in content or [] if p.get("type") == "output_text"]
            append_blocks(out, "assistant", texts)
    elif role == "user":
        append_blocks(out, "user", user_blocks(item.get("content")))


def from_openai_responses(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses API input items as canonical messages (system/developer messages left out)."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            _message_blocks(out, item)
        elif kind == "function_call":
            use = {
                "toolUseId": item["call_id"],
                "name": item["name"],
                "input": parse_arguments(item.get("arguments")),
            }
            append_blocks(out, "assistant", [{"toolUse": use}])
        elif kind == "function_call_output":
            output = item.get("output", "")
            text = output if isinstance(output, str) else joined_text_parts(output)
            append_blocks(out, "user", [{"toolResult": result_from_text(item["call_id"], text)}])
    return out


def to_openai_responses(request: ModelRequest) -> dict[str, Any]:
    """The Responses API request body (streaming, not stored) for a canonical request."""
    config = config_for(request, CONFIG_KEY)
    body: dict[str, Any] = {
        "model": config["modelId"],
        "input": responses_input(request.messages),
        "stream": True,
        # The harness keeps the history itself; nothing needs storing at OpenAI (override with
        # additionalParams {"store": true}).
        "store": False,
    }
    if request.system:
        body["instructions"] = "\n\n".join(request.system)
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
                # Strict mode would reject ordinary schemas (it wants additionalProperties: false
                # and every property required everywhere).
                "strict": False,
            }
            for t in request.tools
        ]
    names = {"maxTokens": "max_output_tokens", "temperature": "temperature", "topP": "top_p"}
    body.update(inference_settings(config, names))
    body.update(additional_params(config, CONFIG_KEY, RESERVED_RESPONSES_PARAMS))
    return body


class ResponsesStreamReader:
    """Responses API stream events as model events, as they arrive."""

    def __init__(self, seed: str, label: str, secrets: tuple[str, ...] = ()) -> None:
        self._seed = seed
        self._label = label
        self._secrets = secrets
        self._calls: dict[str, StreamedCall] = {}  # by item id (or output index)
        self._done = False
        self._reason = "end_turn"
        self._usage = (0, 0)

    def _key(self, item_id: Any, output_index: Any) -> str:
        if item_id and str(item_id) in self._calls:
            return str(item_id)
        return f"#{output_index}"

    def _start(self, item: Any, output_index: Any) -> Iterator[ModelEvent]:
        call_id = canonical_tool_use_id(value_of(item, "call_id"), self._seed, len(self._calls) + 1)
        call = StreamedCall(id=call_id, name=value_of(item, "name") or "", started=True)
        self._calls[f"#{output_index}"] = call
        if value_of(item, "id"):
            self._calls[str(value_of(item, "id"))] = call
        yield ToolUseStart(tool_use_id=call_id, name=call.name or "")
        arguments = value_of(item, "arguments")
        if arguments:
            call.pending.append(arguments)
            yield from call.flush()

    def feed(self, event: Any) -> Iterator[ModelEvent]:
        kind = value_of(event, "type")
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            delta = value_of(event, "delta")
            if delta:
                yield TextDelta(delta)
        elif kind == "response.output_item.added":
            item = value_of(event, "item")
            if value_of(item, "type") == "function_call":
                yield from self._start(item, value_of(event, "output_index"))
        elif kind == "response.function_call_arguments.delta":
            call = self._calls.get(self._key(value_of(event, "item_id"), value_of(event, "output_index")))
            delta = value_of(event, "delta")
            if call is not None and delta:
                call.pending.append(delta)
                yield from call.flush()
        elif kind in ("response.function_call_arguments.done", "response.output_item.done"):
            yield from self._call_done(event, kind)
        elif kind in ("response.completed", "response.incomplete"):
            self._complete(value_of(event, "response"), kind)
        elif kind == "response.failed":
            error = value_of(value_of(event, "response"), "error")
            raise stream_error(self._label, value_of(error, "code"), self._secrets)
        elif kind == "error":
            raise stream_error(self._label, value_of(event, "code"), self._secrets)

    def _call_done(self, event: Any, kind: str) -> Iterator[ModelEvent]:
        item = value_of(event, "item")
        if kind == "response.output_item.done" and value_of(item, "type") != "function_call":
            return
        key = self._key(value_of(event, "item_id") or value_of(item, "id"), value_of(event, "output_index"))
        call = self._calls.get(key)
        if call is None and item is not None:
            yield from self._start(item, value_of(event, "output_index"))
        elif call is not None and call.length == 0:
            arguments = value_of(event, "arguments") if item is None else value_of(item, "arguments")
            if arguments:
                call.pending.append(arguments)
                yield from call.flush()

    def _complete(self, response: Any, kind: str) -> None:
        self._done = True
        usage = value_of(response, "usage")
        if usage is not None:
            self._usage = (
                int(value_of(usage, "input_tokens") or 0),
                int(value_of(usage, "output_tokens") or 0),
            )
        status = value_of(response, "status")
        if kind == "response.incomplete" or status == "incomplete":
            why = value_of(value_of(response, "incomplete_details"), "reason")
            self._reason = INCOMPLETE_REASONS.get(str(why), "max_tokens")
        elif self._calls or any(
            value_of(i, "type") == "function_call" for i in value_of(response, "output") or []
        ):
            self._reason = "tool_use"

    def finish(self) -> Iterator[ModelEvent]:
        seen: set[int] = set()
        for call in self._calls.values():
            if id(call) in seen:
                continue
            seen.add(id(call))
            if call.length == 0:
                assert call.id is not None
                yield ToolUseInputDelta(tool_use_id=call.id, input_json="{}")
        if not self._done:
            raise ModelUnavailableError("the model's stream ended before it finished its reply")
        yield Stop(self._reason)
        yield Usage(input_tokens=self._usage[0], output_tokens=self._usage[1])
