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
- Tool schemas go through ``sanitize_schema`` (Gemini's OpenAPI-subset ``Schema``); see there for
  exactly what is stripped or rewritten.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
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
    ToolSpec,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)

CONFIG_KEY = "geminiModelConfig"
DEFAULT_TIMEOUT_SECONDS = 120.0
SKIP_SIGNATURE = "skip_thought_signature_validator"
# The SDK base64-encodes (URL-safe) the bytes of a thought signature; these bytes encode to the
# placeholder text above.
SKIP_SIGNATURE_BYTES = base64.urlsafe_b64decode(SKIP_SIGNATURE)
RESERVED_CONFIG_PARAMS = frozenset(
    {"system_instruction", "systemInstruction", "tools", "automatic_function_calling"}
)

IMAGE_MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_.:\- ]{1,64}")

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
# Tool schemas
# --------------------------------------------------------------------------------------------

# Keys Gemini's Schema takes, in JSON Schema spelling (the SDK accepts these camelCase names).
KEPT_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "anyOf",
        "propertyOrdering",
    }
)
# The formats Gemini accepts, per type; any other format is dropped (and named in the description).
ALLOWED_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
MAX_REF_DEPTH = 8


def sanitize_schema(schema: Any) -> dict[str, Any]:
    """A JSON Schema rewritten into what Gemini's function ``parameters`` accept.

    - local ``$ref``s (``#/$defs/...``, ``#/definitions/...``) are inlined (a recursive reference
      stops after 8 levels as a plain ``{"type": "object"}``); ``$defs``/``definitions`` go;
    - ``"type": [T, "null"]`` becomes ``T`` with ``nullable: true`` (several types: ``anyOf``);
    - ``oneOf`` becomes ``anyOf``; ``allOf`` is merged into one schema; ``const`` becomes a
      one-value ``enum``; ``examples`` becomes ``example`` (the first);
    - ``format``s other than date-time/enum (strings), float/double (numbers) and int32/int64
      (integers) are dropped and named in the description;
    - a non-string ``enum`` is dropped and listed in the description (Gemini enums are strings);
    - ``required`` keeps only names that are in ``properties``;
    - every other keyword is dropped: ``additionalProperties``, ``$schema``, ``$id``, ``$comment``,
      ``patternProperties``, ``not``, ``if``/``then``/``else``, ``exclusiveMinimum``/
      ``exclusiveMaximum``, ``multipleOf``, ``uniqueItems``, ``prefixItems``, ``contains``,
      ``readOnly``/``writeOnly``, ``deprecated``, ...
    """
    if not isinstance(schema, dict):
        return {}
    definitions: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            definitions.update({f"#/{key}/{name}": value for name, value in schema[key].items()})
    return _sanitize(schema, definitions, 0)


def _resolve(schema: dict[str, Any], definitions: dict[str, Any], depth: int) -> tuple[dict[str, Any], int]:
    while isinstance(schema.get("$ref"), str):
        target = definitions.get(schema["$ref"])
        if not isinstance(target, dict) or depth >= MAX_REF_DEPTH:
            return {"type": "object"}, depth
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings}
        depth += 1
    return schema, depth


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    parts = [p for p in schema.get("allOf", []) if isinstance(p, dict)]
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _note(description: Any, note: str) -> str:
    return f"{description} ({note})" if isinstance(description, str) and description else f"({note})"


def _sanitize(schema: dict[str, Any], definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    schema, depth = _resolve(schema, definitions, depth)
    if "allOf" in schema:
        schema = _merge_all_of(schema)
        schema, depth = _resolve(schema, definitions, depth)
    out: dict[str, Any] = {}
    any_of = schema.get("anyOf", schema.get("oneOf"))
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if len(types) < len(kind):
            out["nullable"] = True
        if len(types) == 1:
            kind = types[0]
        else:
            kind = None
            if types and any_of is None:
                any_of = [{"type": t} for t in types]
    if isinstance(kind, str):
        out["type"] = kind
    for key, value in schema.items():
        if key not in KEPT_SCHEMA_KEYS or key in ("type", "anyOf", "properties", "items", "required"):
            continue
        out[key] = value
    if "const" in schema and "enum" not in schema:
        out["enum"] = [schema["const"]]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and "example" not in schema:
        out["example"] = examples[0]
    if "format" in out:
        allowed = ALLOWED_FORMATS.get(str(kind), frozenset())
        if out["format"] not in allowed:
            out["description"] = _note(out.get("description"), f"format: {out.pop('format')}")
    if "enum" in out:
        values = out["enum"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            out.pop("enum")
            listed = ", ".join(json.dumps(v) for v in values) if isinstance(values, list) else ""
            out["description"] = _note(out.get("description"), f"one of: {listed}")
    if isinstance(any_of, list):
        out["anyOf"] = [_sanitize(s, definitions, depth) for s in any_of if isinstance(s, dict)]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: _sanitize(s if isinstance(s, dict) else {}, definitions, depth)
            for name, s in schema["properties"].items()
        }
        if not out["properties"]:
            out.pop("properties")
    if isinstance(schema.get("items"), dict):
        out["items"] = _sanitize(schema["items"], definitions, depth)
    if isinstance(schema.get("required"), list):
        names = [n for n in schema["required"] if n in out.get("properties", {})]
        if names:
            out["required"] = names
    if isinstance(out.get("propertyOrdering"), list):
        out["propertyOrdering"] = [n for n in out["propertyOrdering"] if n in out.get("properties", {})]
    return out


def function_declarations(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
        parameters = sanitize_schema(tool.input_schema)
        # Gemini rejects an OBJECT schema with no properties: a tool without inputs declares none.
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations


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
                mime = IMAGE_MIME_TYPES.get(image.get("format", "png"), "image/" + image.get("format", "png"))
                data = _b64decode(image.get("source", {}).get("bytes", ""))
                parts.append({"inline_data": {"mime_type": mime, "data": data}})
            elif "document" in block:
                name = block["document"].get("name", "document")
                parts.append({"text": f"[document {name!r} left out: this model cannot read documents]"})
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
                    raw_id
                    if isinstance(raw_id, str) and TOOL_USE_ID.fullmatch(raw_id)
                    else generated_tool_use_id(f"history:{position}", index)
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
                fmt = {v: k for k, v in IMAGE_MIME_TYPES.items()}.get(mime, mime.partition("/")[2])
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


def _config(request: ModelRequest) -> dict[str, Any]:
    config = request.model_config.get(CONFIG_KEY)
    if not isinstance(config, dict) or not config.get("modelId"):
        raise ModelRequestError(f"{CONFIG_KEY}.modelId is required")
    return config


def to_gemini(request: ModelRequest) -> dict[str, Any]:
    """``model``, ``contents`` and ``config`` for ``generate_content_stream`` (SDK field names)."""
    config = _config(request)
    generation: dict[str, Any] = {"automatic_function_calling": {"disable": True}}
    if request.system:
        generation["system_instruction"] = {"parts": [{"text": text} for text in request.system]}
    if request.tools:
        generation["tools"] = [{"function_declarations": function_declarations(request.tools)}]
    for ours, theirs in (
        ("maxTokens", "max_output_tokens"),
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("topK", "top_k"),
    ):
        if ours in config:
            generation[theirs] = config[ours]
    params = config.get("additionalParams") or {}
    if not isinstance(params, dict):
        raise ModelRequestError(f"{CONFIG_KEY}.additionalParams must be an object")
    clash = sorted(set(params) & RESERVED_CONFIG_PARAMS)
    if clash:
        raise ModelRequestError(f"{CONFIG_KEY}.additionalParams may not set {', '.join(clash)}")
    generation.update(params)
    return {"model": config["modelId"], "contents": gemini_contents(request.messages), "config": generation}


# --------------------------------------------------------------------------------------------
# Stream
# --------------------------------------------------------------------------------------------


def generated_tool_use_id(seed: str, position: int) -> str:
    return "tooluse_" + hashlib.sha256(f"{seed}:{position}".encode()).hexdigest()[:24]


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
        if isinstance(raw_id, str) and TOOL_USE_ID.fullmatch(raw_id):
            tool_use_id = raw_id
        else:
            tool_use_id = generated_tool_use_id(self._seed, self._calls)
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


def _safe_word(value: Any, secrets: tuple[str, ...]) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not _SAFE_WORD.fullmatch(text) or any(s and s in text for s in secrets):
        return None
    return text


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
        kind = _safe_word(error.status, secrets)
        message = f"The gemini model call failed: HTTP {code}" + (f" ({kind})" if kind else "")
        if code in (408, 429) or code >= 500:
            return ModelUnavailableError(message)
        return ModelRequestError(message)
    if timeouts and isinstance(error, timeouts):
        return ModelUnavailableError("The gemini model call timed out")
    if isinstance(error, TimeoutError):
        return ModelUnavailableError("The gemini model call timed out")
    if (transport and isinstance(error, transport)) or isinstance(error, ConnectionError):
        return ModelUnavailableError("The gemini server could not be reached (connection error)")
    if isinstance(error, errors.UnknownApiResponseError):
        return ModelUnavailableError("The gemini server sent a response that could not be read")
    return ModelRequestError(f"The gemini model call failed ({type(error).__name__})")


MAX_CACHED_CLIENTS = 16
_CLIENTS: dict[tuple[str, str | None, float], Any] = {}


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
        # Clients outlive a provider instance (a warm Lambda reuses them), keyed by a digest of the
        # key, never the key itself.
        cache_key = (hashlib.sha256(key.encode()).hexdigest(), self._base_url, self._timeout)
        client = _CLIENTS.get(cache_key)
        if client is None:
            from google import genai
            from google.genai import types

            options = types.HttpOptions(base_url=self._base_url, timeout=int(self._timeout * 1000))
            client = genai.Client(api_key=key, vertexai=False, http_options=options)
            if len(_CLIENTS) >= MAX_CACHED_CLIENTS:
                _CLIENTS.clear()
            _CLIENTS[cache_key] = client
        return client

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config = _config(request)
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
        arn = config.get("apiKeyArn")
        if not arn:
            raise ModelRequestError(f"{CONFIG_KEY}.apiKeyArn is required")
        key = self._api_key_for(arn)
        if not key:
            raise ModelRequestError(f"the secret named by {CONFIG_KEY}.apiKeyArn is empty")
        digest = hashlib.sha256(json.dumps(body["contents"], sort_keys=True, default=str).encode())
        reader = GeminiStreamReader(digest.hexdigest()[:16])
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
