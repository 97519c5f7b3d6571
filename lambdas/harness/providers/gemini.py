"""Gemini (the Gemini Developer API) through the official ``google-genai`` SDK, streaming with
``client.models.generate_content_stream``.

The SDK is imported on first use, never when this module is imported.

Translation (pure functions, tested both ways): ``to_gemini`` / ``from_gemini``.

- Roles: ``user`` stays ``user``, ``assistant`` becomes ``model``. System texts become
  ``system_instruction`` (one part each).
- ``toolUse`` -> a ``function_call`` part carrying our ``toolUseId`` as its ``id`` (Gemini's ids are
  optional, so ours travel with the call and its response and come back unchanged). A call that
  Gemini returns without an id, or with one that is not ``[a-zA-Z0-9_-]{1,64}``, gets a
  deterministic ``tooluse_<hash>`` id.
- ``toolResult`` -> a ``function_response`` part with the ``name`` of the earlier ``toolUse`` (looked
  up by id) and ``response`` ``{"output": ...}``, or ``{"error": ...}`` for an error result (Gemini
  has no status field: the key is the status). The value is the text itself when the result is one
  text item, otherwise the list of content items as they are (``{"text"}`` / ``{"json"}``), so the
  round trip is exact. Images and documents inside a tool result become a short text note.
- ``reasoningContent`` is dropped: another provider's reasoning cannot be replayed, and Gemini's
  own thought signatures do not reach the canonical history (the event stream has no place for
  them). Every replayed ``function_call`` therefore carries Google's documented placeholder
  signature ``skip_thought_signature_validator``, without which Gemini 3 models reject a history
  with function calls they did not sign.
- Tool schemas go through ``gemini_schema.sanitize_schema`` (Gemini's OpenAPI-subset ``Schema``);
  see there for exactly what is stripped or rewritten.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from harness.providers.base import (
    ModelCallError,
    ModelEvent,
    ModelRequest,
    ModelRequestError,
    ModelUnavailableError,
    Stop,
    TextDelta,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.blocks import IMAGE_FORMATS, document_note, image_mime_type
from harness.providers.call_errors import safe_word, status_error
from harness.providers.client_cache import ClientCache
from harness.providers.config import additional_params, api_key, config_for, inference_settings
from harness.providers.gemini_schema import function_declarations
from harness.providers.tool_use_ids import generated_tool_use_id, is_tool_use_id, request_seed

CONFIG_KEY = "geminiModelConfig"
DEFAULT_TIMEOUT_SECONDS = 120.0
SKIP_SIGNATURE = "skip_thought_signature_validator"
# The SDK base64-encodes (URL-safe) the bytes of a thought signature; these bytes encode to the
# placeholder text above.
SKIP_SIGNATURE_BYTES = base64.urlsafe_b64decode(SKIP_SIGNATURE)
RESERVED_CONFIG_PARAMS = frozenset(
    {"system_instruction", "systemInstruction", "tools", "automatic_function_calling"}
)

# Statuses worth trying on another model (Gemini has no lock conflicts): timeout, throttling.
TRANSIENT_STATUSES = frozenset({408, 429})

FINISH_REASONS = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filtered",
    "RECITATION": "content_filtered",
    "BLOCKLIST": "content_filtered",
    "PROHIBITED_CONTENT": "content_filtered",
    "SPII": "content_filtered",
    "IMAGE_SAFETY": "content_filtered",
    "IMAGE_PROHIBITED_CONTENT": "content_filtered",
    "IMAGE_RECITATION": "content_filtered",
    "MALFORMED_FUNCTION_CALL": "malformed_tool_use",
    "UNEXPECTED_TOOL_CALL": "malformed_tool_use",
}


def supports_tools(config: dict[str, Any]) -> bool:
    """Every Gemini model this provider serves can take function declarations."""
    return True


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _b64decode(data: Any) -> bytes:
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise ModelRequestError("an image block's bytes are not valid base64") from None


def _result_value(result: dict[str, Any]) -> Any:
    items: list[dict[str, Any]] = []
    for item in result.get("content", []):
        if "text" in item:
            items.append({"text": item["text"]})
        elif "json" in item:
            items.append({"json": item["json"]})
        elif "image" in item:
            items.append({"text": "[an image was returned; it cannot be passed to this model]"})
        elif "document" in item:
            items.append({"text": "[a document was returned; it cannot be passed to this model]"})
    if len(items) == 1 and "text" in items[0]:
        return items[0]["text"]
    return items


def _result_content(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"text": value}]
    if isinstance(value, list) and all(
        isinstance(i, dict) and len(i) == 1 and (("text" in i and isinstance(i["text"], str)) or "json" in i)
        for i in value
    ):
        return [dict(i) for i in value]
    return [{"json": value}]


def gemini_contents(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages as Gemini ``contents`` (SDK field names)."""
    names = {
        b["toolUse"]["toolUseId"]: b["toolUse"]["name"]
        for m in messages
        for b in m.get("content", [])
        if "toolUse" in b
    }
    contents: list[dict[str, Any]] = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        for block in message.get("content", []):
            if "text" in block:
                parts.append({"text": block["text"]})
            elif "image" in block:
                image = block["image"]
                mime = image_mime_type(image.get("format", "png"))
                data = _b64decode(image.get("source", {}).get("bytes", ""))
                parts.append({"inline_data": {"mime_type": mime, "data": data}})
            elif "document" in block:
                parts.append({"text": document_note(block)})
            elif "toolUse" in block:
                use = block["toolUse"]
                call = {"id": use["toolUseId"], "name": use["name"], "args": use.get("input", {})}
                parts.append({"function_call": call, "thought_signature": SKIP_SIGNATURE_BYTES})
            elif "toolResult" in block:
                result = block["toolResult"]
                if result["toolUseId"] not in names:
                    raise ModelRequestError("a tool result has no matching tool use in the conversation")
                status = "error" if result.get("status") == "error" else "output"
                response = {
                    "id": result["toolUseId"],
                    "name": names[result["toolUseId"]],
                    "response": {status: _result_value(result)},
                }
                parts.append({"function_response": response})
        if parts:  # a message of reasoning only has nothing Gemini can take
            contents.append({"role": "model" if message["role"] == "assistant" else "user", "parts": parts})
    return contents


def from_gemini(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gemini ``contents`` (SDK field names) as canonical messages; thoughts are left out."""
    out: list[dict[str, Any]] = []
    for position, content in enumerate(contents):
        role = "assistant" if content.get("role") == "model" else "user"
        blocks: list[dict[str, Any]] = []
        for index, part in enumerate(content.get("parts") or []):
            if part.get("function_call"):
                call = part["function_call"]
                raw_id = call.get("id")
                tool_use_id = (
                    raw_id if is_tool_use_id(raw_id) else generated_tool_use_id(f"history:{position}", index)
                )
                blocks.append(
                    {
                        "toolUse": {
                            "toolUseId": tool_use_id,
                            "name": call.get("name", ""),
                            "input": call.get("args") or {},
                        }
                    }
                )
            elif part.get("function_response"):
                response = part["function_response"]
                body = response.get("response") or {}
                if "error" in body:
                    status, content_items = "error", _result_content(body["error"])
                elif "output" in body:
                    status, content_items = "success", _result_content(body["output"])
                else:
                    status, content_items = "success", [{"json": body}]
                blocks.append(
                    {
                        "toolResult": {
                            "toolUseId": response.get("id", ""),
                            "content": content_items,
                            "status": status,
                        }
                    }
                )
            elif part.get("inline_data"):
                blob = part["inline_data"]
                mime = str(blob.get("mime_type", "image/png"))
                fmt = IMAGE_FORMATS.get(mime, mime.partition("/")[2])
                data = blob.get("data", b"")
                encoded = base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else data
                blocks.append({"image": {"format": fmt, "source": {"bytes": encoded}}})
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                blocks.append({"text": part["text"]})
        if blocks:
            if out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": role, "content": blocks})
    return out


def to_gemini(request: ModelRequest) -> dict[str, Any]:
    """``model``, ``contents`` and ``config`` for ``generate_content_stream`` (SDK field names)."""
    config = config_for(request, CONFIG_KEY)
    generation: dict[str, Any] = {"automatic_function_calling": {"disable": True}}
    if request.system:
        generation["system_instruction"] = {"parts": [{"text": text} for text in request.system]}
    if request.tools:
        generation["tools"] = [{"function_declarations": function_declarations(request.tools)}]
    names = {"maxTokens": "max_output_tokens", "temperature": "temperature", "topP": "top_p", "topK": "top_k"}
    generation.update(inference_settings(config, names))
    generation.update(additional_params(config, CONFIG_KEY, RESERVED_CONFIG_PARAMS))
    return {"model": config["modelId"], "contents": gemini_contents(request.messages), "config": generation}


# --------------------------------------------------------------------------------------------
# Stream
# --------------------------------------------------------------------------------------------


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


class GeminiStreamReader:
    """``GenerateContentResponse`` chunks as model events, as they arrive. Gemini sends each
    function call whole, so a call is one ``ToolUseStart`` and one ``ToolUseInputDelta``."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._calls = 0
        self._finish: str | None = None
        self._blocked = False
        self._usage = (0, 0)

    def feed(self, chunk: Any) -> Iterator[ModelEvent]:
        feedback = getattr(chunk, "prompt_feedback", None)
        if feedback is not None and getattr(feedback, "block_reason", None):
            self._blocked = True
        usage = getattr(chunk, "usage_metadata", None)
        if usage is not None:
            output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
            self._usage = (usage.prompt_token_count or 0, output)
        for candidate in (getattr(chunk, "candidates", None) or [])[:1]:
            content = candidate.content
            for part in (content.parts if content is not None else None) or []:
                if part.function_call is not None:
                    yield from self._call(part.function_call)
                elif part.text and not part.thought:
                    yield TextDelta(part.text)
            if candidate.finish_reason is not None:
                self._finish = _enum_name(candidate.finish_reason)

    def _call(self, call: Any) -> Iterator[ModelEvent]:
        self._calls += 1
        raw_id = call.id
        tool_use_id = raw_id if is_tool_use_id(raw_id) else generated_tool_use_id(self._seed, self._calls)
        yield ToolUseStart(tool_use_id=tool_use_id, name=call.name or "")
        yield ToolUseInputDelta(tool_use_id=tool_use_id, input_json=json.dumps(call.args or {}))

    def finish(self) -> Iterator[ModelEvent]:
        if self._finish is None and not self._blocked:
            raise ModelUnavailableError("the model's stream ended before it finished its reply")
        if self._finish is None:
            reason = "content_filtered"  # the prompt itself was blocked
        else:
            reason = FINISH_REASONS.get(self._finish, "end_turn")
            if reason == "end_turn" and self._calls:
                reason = "tool_use"
        yield Stop(reason)
        yield Usage(input_tokens=self._usage[0], output_tokens=self._usage[1])


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, other transport errors) of whichever HTTP library the SDK loaded."""
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None:
            timeouts.append(module.TimeoutException)
            transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


def gemini_error(error: Exception, secrets: tuple[str, ...]) -> ModelCallError:
    """A google-genai (or transport) exception as a caller-safe ModelCallError."""
    from google.genai import errors

    timeouts, transport = _transport_errors()
    if isinstance(error, errors.APIError):
        code = error.code if isinstance(error.code, int) else 0
        return status_error("gemini", code, safe_word(error.status, secrets), TRANSIENT_STATUSES)
    if timeouts and isinstance(error, timeouts):
        return ModelUnavailableError("The gemini model call timed out")
    if isinstance(error, TimeoutError):
        return ModelUnavailableError("The gemini model call timed out")
    if (transport and isinstance(error, transport)) or isinstance(error, ConnectionError):
        return ModelUnavailableError("The gemini server could not be reached (connection error)")
    if isinstance(error, errors.UnknownApiResponseError):
        return ModelUnavailableError("The gemini server sent a response that could not be read")
    return ModelRequestError(f"The gemini model call failed ({type(error).__name__})")


_CLIENTS = ClientCache()


class GeminiProvider:
    """Streams a canonical request from Gemini.

    ``api_key_for`` maps ``apiKeyArn`` to the key (the vault); it is called inside ``stream``.
    ``base_url`` points the SDK at another endpoint speaking the Gemini REST API (a private
    gateway, or a test server); None means Google's. ``timeout`` (seconds) bounds each HTTP wait.
    The SDK does not retry: throttling and server errors reach the router's failover at once."""

    name = "gemini"

    def __init__(
        self,
        api_key_for: Callable[[str], str],
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._api_key_for = api_key_for
        self._base_url = base_url
        self._timeout = timeout

    def _client(self, key: str) -> Any:
        def build() -> Any:
            from google import genai
            from google.genai import types

            options = types.HttpOptions(base_url=self._base_url, timeout=int(self._timeout * 1000))
            return genai.Client(api_key=key, vertexai=False, http_options=options)

        return _CLIENTS.get(key, (self._base_url, self._timeout), build)

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config = config_for(request, CONFIG_KEY)
        body = to_gemini(request)
        try:
            from google.genai import types  # on first use only: cold starts pay for what they call
        except ImportError:
            raise ModelRequestError(
                "the google-genai package is not installed: pip install google-genai"
            ) from None
        unknown = sorted(set(body["config"]) - _config_fields(types))
        if unknown:
            raise ModelRequestError(f"{CONFIG_KEY}.additionalParams has unknown fields: {', '.join(unknown)}")
        key = api_key(self._api_key_for, config, CONFIG_KEY)
        reader = GeminiStreamReader(request_seed(body["contents"]))
        secrets = (key,)
        try:
            stream = self._client(key).models.generate_content_stream(
                model=body["model"], contents=body["contents"], config=body["config"]
            )
            try:
                for chunk in stream:
                    yield from reader.feed(chunk)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except ModelCallError:
            raise
        except Exception as error:  # the SDK raises its own, pydantic's and the transport's errors
            if type(error).__name__ == "ValidationError":
                raise ModelRequestError("the request is not valid for gemini (generation config)") from None
            raise gemini_error(error, secrets) from None
        yield from reader.finish()


def _config_fields(types: Any) -> set[str]:
    fields = types.GenerateContentConfig.model_fields
    names = set(fields)
    names.update(f.alias for f in fields.values() if f.alias)
    return names
