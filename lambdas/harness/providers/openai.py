"""OpenAI, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...) reached by ``apiBase``,
through the official ``openai`` SDK: Chat Completions by default, the Responses API with
``apiFormat: "responses"``.

The SDK is imported on first use, never when this module is imported: a cold start pays only for
the provider it calls (the LiteLLM provider imports this module for its translation).

Translation (pure functions, tested both ways):

- ``to_openai_chat`` / ``from_openai_chat``: canonical (Converse-shaped) messages <-> Chat
  Completions ``messages``. System texts become one leading ``system`` message (joined by a blank
  line: several OpenAI-compatible chat templates accept only one). ``toolUse`` blocks become the
  assistant's ``tool_calls`` (arguments as a JSON string); each ``toolResult`` becomes one
  ``role: tool`` message, placed right after the assistant turn as OpenAI requires, ahead of the
  user's other content.
- ``to_openai_responses`` / ``from_openai_responses``: the same history as Responses API input
  items (``message``, ``function_call``, ``function_call_output``), the system as ``instructions``.

What the OpenAI formats cannot carry, and so what a round trip normalises:

- a tool result's content is one string (a plain string is what every OpenAI-compatible server
  accepts): text items as they are, ``json`` items serialised, joined by newlines; it comes back as
  one text item (no item when empty);
- an ``error`` status is the prefix ``"Error: "`` on that string, so the model knows the call
  failed; a result whose string starts with that prefix comes back as an error;
- an assistant's texts are placed before its tool calls; a user's tool results before its texts;
- ``reasoningContent`` is dropped (another provider's reasoning cannot be replayed), and so are
  documents (a short text note says one was left out).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.providers.base import (
    ModelCallError,
    ModelEvent,
    ModelRequest,
    ModelRequestError,
    ModelUnavailableError,
    Stop,
    TextDelta,
    ToolSpec,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)

CONFIG_KEY = "openAiModelConfig"
CHAT_COMPLETIONS = "chat_completions"
RESPONSES = "responses"
ERROR_PREFIX = "Error: "
DEFAULT_TIMEOUT_SECONDS = 120.0

# additionalParams may set any request field except these, which the provider owns.
RESERVED_CHAT_PARAMS = frozenset({"model", "messages", "stream"})
RESERVED_RESPONSES_PARAMS = frozenset({"model", "input", "stream"})

CHAT_FINISH_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "content_filtered",
}

IMAGE_MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
IMAGE_FORMATS = {mime: fmt for fmt, mime in IMAGE_MIME_TYPES.items()} | {"image/jpg": "jpeg"}

# Statuses worth trying on another model: timeout, conflict (a lock), throttling, server errors.
TRANSIENT_STATUSES = frozenset({408, 409, 429})
# Error codes an in-stream error event carries when the failure is transient.
TRANSIENT_ERROR_CODES = frozenset(
    {"server_error", "rate_limit_exceeded", "server_is_overloaded", "slow_down", "insufficient_quota"}
)

_SAFE_WORD = re.compile(r"[A-Za-z0-9_.:\- ]{1,64}")
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


def supports_tools(config: dict[str, Any]) -> bool:
    """Every OpenAI chat or responses model this provider serves can take tool definitions."""
    return True


# --------------------------------------------------------------------------------------------
# Shared pieces (the LiteLLM provider uses them too)
# --------------------------------------------------------------------------------------------


def result_text(result: dict[str, Any]) -> str:
    """A tool result as the one string an OpenAI tool message carries (error status: prefixed)."""
    parts: list[str] = []
    for item in result.get("content", []):
        if "text" in item:
            parts.append(item["text"])
        elif "json" in item:
            parts.append(json.dumps(item["json"], ensure_ascii=False))
        elif "image" in item:
            parts.append("[an image was returned; this model cannot read images in tool results]")
        elif "document" in item:
            parts.append("[a document was returned; this model cannot read documents in tool results]")
    text = "\n".join(parts)
    return ERROR_PREFIX + text if result.get("status") == "error" else text


def result_from_text(tool_use_id: str, text: str) -> dict[str, Any]:
    """The canonical tool result an OpenAI tool message stands for (inverse of ``result_text``)."""
    status = "success"
    if text.startswith(ERROR_PREFIX):
        status, text = "error", text[len(ERROR_PREFIX) :]
    return {"toolUseId": tool_use_id, "content": [{"text": text}] if text else [], "status": status}


def image_data_url(image: dict[str, Any]) -> str:
    fmt = image.get("format", "png")
    data = image.get("source", {}).get("bytes", "")
    if isinstance(data, bytes | bytearray):
        data = base64.b64encode(data).decode("ascii")
    return f"data:{IMAGE_MIME_TYPES.get(fmt, 'image/' + fmt)};base64,{data}"


def image_from_data_url(url: str) -> dict[str, Any] | None:
    match = _DATA_URL.fullmatch(url)
    if not match:
        return None
    mime = match["mime"].lower()
    return {
        "image": {
            "format": IMAGE_FORMATS.get(mime, mime.partition("/")[2]),
            "source": {"bytes": match["data"]},
        }
    }


def _document_note(block: dict[str, Any]) -> str:
    name = block["document"].get("name", "document")
    return f"[document {name!r} left out: this model cannot read documents]"


def chat_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
        }
        for t in tools
    ]


def _chat_user_content(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if "text" in block:
            parts.append({"type": "text", "text": block["text"]})
        elif "image" in block:
            parts.append({"type": "image_url", "image_url": {"url": image_data_url(block["image"])}})
        elif "document" in block:
            parts.append({"type": "text", "text": _document_note(block)})
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])  # a plain string: what every compatible server accepts
    return parts


def chat_messages(messages: list[dict[str, Any]], system: list[str]) -> list[dict[str, Any]]:
    """Canonical messages (and system texts) as Chat Completions ``messages``."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": "\n\n".join(system)})
    for message in messages:
        blocks = message.get("content", [])
        if message["role"] == "assistant":
            texts = [b["text"] for b in blocks if "text" in b]
            calls = [
                {
                    "id": b["toolUse"]["toolUseId"],
                    "type": "function",
                    "function": {
                        "name": b["toolUse"]["name"],
                        "arguments": json.dumps(b["toolUse"].get("input", {}), ensure_ascii=False),
                    },
                }
                for b in blocks
                if "toolUse" in b
            ]
            if not texts and not calls:
                continue  # e.g. only reasoning: nothing this provider can take
            entry: dict[str, Any] = {"role": "assistant"}
            if len(texts) == 1:
                entry["content"] = texts[0]
            elif texts:
                entry["content"] = [{"type": "text", "text": t} for t in texts]
            # no texts: no content key (OpenAI allows it with tool_calls; some servers reject null)
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
        else:
            for block in blocks:
                if "toolResult" in block:
                    result = block["toolResult"]
                    out.append(
                        {"role": "tool", "tool_call_id": result["toolUseId"], "content": result_text(result)}
                    )
            rest = [b for b in blocks if "text" in b or "image" in b or "document" in b]
            if rest:
                out.append({"role": "user", "content": _chat_user_content(rest)})
    return out


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks to the canonical history, merging with the previous message of the same role."""
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": list(blocks)})


def _parse_arguments(arguments: str | None) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return {}


def from_openai_chat(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions ``messages`` as canonical messages (system messages are left out)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            blocks: list[dict[str, Any]] = []
            if isinstance(content, str):
                blocks.append({"text": content})
            elif isinstance(content, list):
                blocks.extend({"text": p["text"]} for p in content if p.get("type") == "text")
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                blocks.append(
                    {
                        "toolUse": {
                            "toolUseId": call["id"],
                            "name": function.get("name", ""),
                            "input": _parse_arguments(function.get("arguments")),
                        }
                    }
                )
            _append(out, "assistant", blocks)
        elif role == "tool":
            text = content if isinstance(content, str) else _joined_text_parts(content)
            _append(out, "user", [{"toolResult": result_from_text(message["tool_call_id"], text)}])
        elif role == "user":
            _append(out, "user", _user_blocks(content))
    return out


def _joined_text_parts(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    return "\n".join(p.get("text", "") for p in content if p.get("type") in ("text", "input_text"))


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            image = image_from_data_url(part["image_url"]["url"])
            if image:
                blocks.append(image)
        elif kind == "input_image":
            image = image_from_data_url(part.get("image_url", ""))
            if image:
                blocks.append(image)
    return blocks


def config_for(request: ModelRequest, key: str = CONFIG_KEY) -> dict[str, Any]:
    config = request.model_config.get(key)
    if not isinstance(config, dict) or not config.get("modelId"):
        raise ModelRequestError(f"{key}.modelId is required")
    return config


def additional_params(config: dict[str, Any], key: str, reserved: frozenset[str]) -> dict[str, Any]:
    params = config.get("additionalParams") or {}
    if not isinstance(params, dict):
        raise ModelRequestError(f"{key}.additionalParams must be an object")
    clash = sorted(set(params) & reserved)
    if clash:
        raise ModelRequestError(f"{key}.additionalParams may not set {', '.join(clash)}")
    return params


def to_openai_chat(request: ModelRequest) -> dict[str, Any]:
    """The Chat Completions request body (streaming) for a canonical request."""
    config = config_for(request)
    body: dict[str, Any] = {
        "model": config["modelId"],
        "messages": chat_messages(request.messages, request.system),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = chat_tools(request.tools)
    if "maxTokens" in config:
        # OpenAI's own newer models take only max_completion_tokens; compatible servers all know
        # max_tokens, not all know the newer name.
        body["max_tokens" if config.get("apiBase") else "max_completion_tokens"] = config["maxTokens"]
    if "temperature" in config:
        body["temperature"] = config["temperature"]
    if "topP" in config:
        body["top_p"] = config["topP"]
    body.update(additional_params(config, CONFIG_KEY, RESERVED_CHAT_PARAMS))
    return body


# --------------------------------------------------------------------------------------------
# Responses API translation
# --------------------------------------------------------------------------------------------


def responses_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages as Responses API input items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        blocks = message.get("content", [])
        if message["role"] == "assistant":
            texts = [b["text"] for b in blocks if "text" in b]
            if texts:
                items.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": t} for t in texts],
                    }
                )
            for block in blocks:
                if "toolUse" in block:
                    use = block["toolUse"]
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": use["toolUseId"],
                            "name": use["name"],
                            "arguments": json.dumps(use.get("input", {}), ensure_ascii=False),
                        }
                    )
        else:
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
                    url = image_data_url(block["image"])
                    parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
                elif "document" in block:
                    parts.append({"type": "input_text", "text": _document_note(block)})
            if parts:
                items.append({"type": "message", "role": "user", "content": parts})
    return items


def from_openai_responses(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses API input items as canonical messages (system/developer messages left out)."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                content = item.get("content")
                if isinstance(content, str):
                    _append(out, "assistant", [{"text": content}])
                else:
                    texts = [{"text": p["text"]} for p in content or [] if p.get("type") == "output_text"]
                    _append(out, "assistant", texts)
            elif role == "user":
                _append(out, "user", _user_blocks(item.get("content")))
        elif kind == "function_call":
            use = {
                "toolUseId": item["call_id"],
                "name": item["name"],
                "input": _parse_arguments(item.get("arguments")),
            }
            _append(out, "assistant", [{"toolUse": use}])
        elif kind == "function_call_output":
            output = item.get("output", "")
            text = output if isinstance(output, str) else _joined_text_parts(output)
            _append(out, "user", [{"toolResult": result_from_text(item["call_id"], text)}])
    return out


def to_openai_responses(request: ModelRequest) -> dict[str, Any]:
    """The Responses API request body (streaming, not stored) for a canonical request."""
    config = config_for(request)
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
    if "maxTokens" in config:
        body["max_output_tokens"] = config["maxTokens"]
    if "temperature" in config:
        body["temperature"] = config["temperature"]
    if "topP" in config:
        body["top_p"] = config["topP"]
    body.update(additional_params(config, CONFIG_KEY, RESERVED_RESPONSES_PARAMS))
    return body


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


def generated_tool_use_id(seed: str, position: int) -> str:
    """A deterministic id for a tool call the server sent without one."""
    return "tooluse_" + hashlib.sha256(f"{seed}:{position}".encode()).hexdigest()[:24]


TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def canonical_tool_use_id(raw: Any, seed: str, position: int) -> str:
    """The server's call id when it is a valid canonical id (``[a-zA-Z0-9_-]{1,64}``, what Bedrock
    accepts after a model switch); otherwise a deterministic one derived from it."""
    if isinstance(raw, str) and TOOL_USE_ID.fullmatch(raw):
        return raw
    return generated_tool_use_id(f"{seed}:{raw}", position)


def request_seed(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class _Call:
    id: str | None
    raw_id: str | None = None  # the server's id, when ours had to replace it
    name: str | None = None
    started: bool = False
    length: int = 0
    pending: list[str] = field(default_factory=list)


def _flush(call: _Call) -> Iterator[ModelEvent]:
    """The argument pieces held for a started call."""
    assert call.id is not None
    for piece in call.pending:
        call.length += len(piece)
        yield ToolUseInputDelta(tool_use_id=call.id, input_json=piece)
    call.pending.clear()


def _get(obj: Any, name: str) -> Any:
    """An attribute of an SDK object, or a key of a dict (LiteLLM chunks can be either)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


class ChatStreamReader:
    """Chat Completions stream chunks (OpenAI SDK or LiteLLM) as model events, as they arrive.

    Tool-call deltas are keyed by ``index``: the first chunk of a call carries its id and name,
    later ones only argument pieces. A server that sends no id gets a deterministic one; one that
    reuses index 0 for several calls (distinct ids) is told apart by id."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._calls: list[_Call] = []
        self._by_index: dict[Any, _Call] = {}
        self._finish: str | None = None
        self._usage: tuple[int, int] | None = None

    def feed(self, chunk: Any) -> Iterator[ModelEvent]:
        usage = _get(chunk, "usage")
        if usage is not None:
            self._usage = (int(_get(usage, "prompt_tokens") or 0), int(_get(usage, "completion_tokens") or 0))
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta")
            if delta is not None:
                for name in ("content", "refusal"):
                    text = _get(delta, name)
                    if isinstance(text, str) and text:
                        yield TextDelta(text)
                for call in _get(delta, "tool_calls") or []:
                    yield from self._tool_call(call)
            finish = _get(choice, "finish_reason")
            if finish:
                self._finish = str(finish)

    def _tool_call(self, delta: Any) -> Iterator[ModelEvent]:
        index, call_id = _get(delta, "index"), _get(delta, "id")
        call = self._by_index.get(index)
        if call is None or (call_id and call.id and call_id not in (call.id, call.raw_id)):
            call = _Call(id=call_id or None)
            self._calls.append(call)
            self._by_index[index] = call
        elif call_id and not call.id:
            call.id = call_id
        function = _get(delta, "function")
        name = _get(function, "name") if function is not None else None
        arguments = _get(function, "arguments") if function is not None else None
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
            yield from _flush(call)

    def finish(self) -> Iterator[ModelEvent]:
        """The closing events: any call still unstarted, ``{}`` for calls without arguments,
        then ``Stop`` and ``Usage``."""
        for position, call in enumerate(self._calls, start=1):
            if not call.started:
                call.id = canonical_tool_use_id(call.id, self._seed, position)
                call.started = True
                yield ToolUseStart(tool_use_id=call.id, name=call.name or "")
                yield from _flush(call)
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


class ResponsesStreamReader:
    """Responses API stream events as model events, as they arrive."""

    def __init__(self, seed: str, label: str, secrets: tuple[str, ...] = ()) -> None:
        self._seed = seed
        self._label = label
        self._secrets = secrets
        self._calls: dict[str, _Call] = {}  # by item id (or output index)
        self._done = False
        self._reason = "end_turn"
        self._usage = (0, 0)

    def _key(self, item_id: Any, output_index: Any) -> str:
        if item_id and str(item_id) in self._calls:
            return str(item_id)
        return f"#{output_index}"

    def _start(self, item: Any, output_index: Any) -> Iterator[ModelEvent]:
        call_id = canonical_tool_use_id(_get(item, "call_id"), self._seed, len(self._calls) + 1)
        call = _Call(id=call_id, name=_get(item, "name") or "", started=True)
        self._calls[f"#{output_index}"] = call
        if _get(item, "id"):
            self._calls[str(_get(item, "id"))] = call
        yield ToolUseStart(tool_use_id=call_id, name=call.name or "")
        arguments = _get(item, "arguments")
        if arguments:
            call.pending.append(arguments)
            yield from _flush(call)

    def feed(self, event: Any) -> Iterator[ModelEvent]:
        kind = _get(event, "type")
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            delta = _get(event, "delta")
            if delta:
                yield TextDelta(delta)
        elif kind == "response.output_item.added":
            item = _get(event, "item")
            if _get(item, "type") == "function_call":
                yield from self._start(item, _get(event, "output_index"))
        elif kind == "response.function_call_arguments.delta":
            call = self._calls.get(self._key(_get(event, "item_id"), _get(event, "output_index")))
            delta = _get(event, "delta")
            if call is not None and delta:
                call.pending.append(delta)
                yield from _flush(call)
        elif kind in ("response.function_call_arguments.done", "response.output_item.done"):
            item = _get(event, "item")
            if kind == "response.output_item.done" and _get(item, "type") != "function_call":
                return
            key = self._key(_get(event, "item_id") or _get(item, "id"), _get(event, "output_index"))
            call = self._calls.get(key)
            if call is None and item is not None:
                yield from self._start(item, _get(event, "output_index"))
            elif call is not None and call.length == 0:
                arguments = _get(event, "arguments") if item is None else _get(item, "arguments")
                if arguments:
                    call.pending.append(arguments)
                    yield from _flush(call)
        elif kind in ("response.completed", "response.incomplete"):
            self._complete(_get(event, "response"), kind)
        elif kind == "response.failed":
            error = _get(_get(event, "response"), "error")
            raise _stream_error(self._label, _get(error, "code"), self._secrets)
        elif kind == "error":
            raise _stream_error(self._label, _get(event, "code"), self._secrets)

    def _complete(self, response: Any, kind: str) -> None:
        self._done = True
        usage = _get(response, "usage")
        if usage is not None:
            self._usage = (int(_get(usage, "input_tokens") or 0), int(_get(usage, "output_tokens") or 0))
        status = _get(response, "status")
        if kind == "response.incomplete" or status == "incomplete":
            why = _get(_get(response, "incomplete_details"), "reason")
            self._reason = {"max_output_tokens": "max_tokens", "content_filter": "content_filtered"}.get(
                str(why), "max_tokens"
            )
        elif self._calls or any(_get(i, "type") == "function_call" for i in _get(response, "output") or []):
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


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def safe_word(value: Any, secrets: tuple[str, ...] = ()) -> str | None:
    """A short identifier from a provider's error body (its type or code), or None: never free
    text, never anything that contains a secret."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not _SAFE_WORD.fullmatch(text) or any(s and s in text for s in secrets):
        return None
    return text


def error_type(body: Any, secrets: tuple[str, ...] = ()) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for name in ("type", "code", "status"):
                word = safe_word(inner.get(name), secrets)
                if word:
                    return word
    return None


def status_error(label: str, status: int, kind: str | None) -> ModelCallError:
    """The error for an HTTP status from a provider: transient ones fail over."""
    message = f"The {label} model call failed: HTTP {status}" + (f" ({kind})" if kind else "")
    if status in TRANSIENT_STATUSES or status >= 500:
        return ModelUnavailableError(message)
    return ModelRequestError(message)


def _stream_error(label: str, code: Any, secrets: tuple[str, ...]) -> ModelCallError:
    word = safe_word(code, secrets)
    message = f"The {label} model call failed during streaming" + (f" ({word})" if word else "")
    if word is None or word in TRANSIENT_ERROR_CODES:
        return ModelUnavailableError(message)
    return ModelRequestError(message)


def openai_error(error: Exception, label: str, secrets: tuple[str, ...]) -> ModelCallError:
    """An ``openai`` SDK exception as a caller-safe ModelCallError (no key, no payload)."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return ModelUnavailableError(f"The {label} model call timed out")
    if isinstance(error, openai.APIConnectionError):
        return ModelUnavailableError(f"The {label} server could not be reached (connection error)")
    if isinstance(error, openai.APIStatusError):
        return status_error(label, error.status_code, error_type(error.body, secrets))
    if isinstance(error, openai.APIResponseValidationError):
        return ModelUnavailableError(f"The {label} server sent a response that could not be read")
    if isinstance(error, openai.APIError):  # an error event inside the stream
        return _stream_error(label, error_type(error.body, secrets), secrets)
    return ModelRequestError(f"The {label} model call failed ({type(error).__name__})")


def api_key(api_key_for: Callable[[str], str] | None, config: dict[str, Any], key: str) -> str:
    arn = config.get("apiKeyArn")
    if not arn or api_key_for is None:
        raise ModelRequestError(f"{key}.apiKeyArn is required")
    secret = api_key_for(arn)
    if not secret:
        raise ModelRequestError(f"the secret named by {key}.apiKeyArn is empty")
    return secret


# --------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------


MAX_CACHED_CLIENTS = 16
_CLIENTS: dict[tuple[str, str | None, float, int], Any] = {}


class OpenAIProvider:
    """Streams a canonical request from OpenAI or an OpenAI-compatible server.

    ``api_key_for`` maps ``apiKeyArn`` to the key (the vault); it is called inside ``stream``.
    ``timeout`` (seconds) bounds connecting and each wait for the next chunk; ``max_retries`` is the
    SDK's own retry count, 0 by default so that throttling and server errors reach the router's
    failover at once."""

    name = "openai"

    def __init__(
        self,
        api_key_for: Callable[[str], str],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = 0,
    ) -> None:
        self._api_key_for = api_key_for
        self._timeout = timeout
        self._max_retries = max_retries

    def _client(self, key: str, base_url: str | None) -> Any:
        # Clients (and their connection pools) outlive a provider instance: a warm Lambda reuses
        # them. Keyed by a digest of the key, never the key itself.
        cache_key = (hashlib.sha256(key.encode()).hexdigest(), base_url, self._timeout, self._max_retries)
        client = _CLIENTS.get(cache_key)
        if client is None:
            import openai

            client = openai.OpenAI(
                api_key=key, base_url=base_url, timeout=self._timeout, max_retries=self._max_retries
            )
            if len(_CLIENTS) >= MAX_CACHED_CLIENTS:
                _CLIENTS.clear()
            _CLIENTS[cache_key] = client
        return client

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config = config_for(request)
        api_format = config.get("apiFormat", CHAT_COMPLETIONS)
        if api_format not in (CHAT_COMPLETIONS, RESPONSES):
            raise ModelRequestError(f"{CONFIG_KEY}.apiFormat {api_format!r} is not supported")
        body = to_openai_chat(request) if api_format == CHAT_COMPLETIONS else to_openai_responses(request)
        try:
            import openai  # on first use only: cold starts pay for the provider they call
        except ImportError:
            raise ModelRequestError("the openai package is not installed: pip install openai") from None
        key = api_key(self._api_key_for, config, CONFIG_KEY)
        base_url = config.get("apiBase") or None
        label = "openai" if base_url is None else "OpenAI-compatible"
        secrets = (key,)
        seed = request_seed(body.get("messages", body.get("input")))
        try:
            client = self._client(key, base_url)
            if api_format == CHAT_COMPLETIONS:
                reader: ChatStreamReader | ResponsesStreamReader = ChatStreamReader(seed)
                call = client.chat.completions.create
                first = {"model": body["model"], "messages": body["messages"]}
            else:
                reader = ResponsesStreamReader(seed, label, secrets)
                call = client.responses.create
                first = {"model": body["model"], "input": body["input"]}
            extra = {k: v for k, v in body.items() if k not in first and k != "stream"}
            stream = call(**first, stream=True, extra_body=extra)
            try:
                for chunk in stream:
                    yield from reader.feed(chunk)
            finally:
                stream.close()
            yield from reader.finish()
        except openai.OpenAIError as error:
            raise openai_error(error, label, secrets) from None
