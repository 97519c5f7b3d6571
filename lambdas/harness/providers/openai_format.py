"""What the two OpenAI formats (Chat Completions, ``openai_chat``; Responses, ``openai_responses``)
share: tool results as one string, images as data URLs, user content parts, and the bookkeeping of
a streamed tool call.

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
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.providers.base import ModelEvent, ToolUseInputDelta
from harness.providers.blocks import IMAGE_FORMATS, image_mime_type

CONFIG_KEY = "openAiModelConfig"
ERROR_PREFIX = "Error: "

DATA_URL_IMAGE_FORMATS = IMAGE_FORMATS | {"image/jpg": "jpeg"}

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


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
    data = image.get("source", {}).get("bytes", "")
    if isinstance(data, bytes | bytearray):
        data = base64.b64encode(data).decode("ascii")
    return f"data:{image_mime_type(image.get('format', 'png'))};base64,{data}"


def image_from_data_url(url: str) -> dict[str, Any] | None:
    match = _DATA_URL.fullmatch(url)
    if not match:
        return None
    mime = match["mime"].lower()
    return {
        "image": {
            "format": DATA_URL_IMAGE_FORMATS.get(mime, mime.partition("/")[2]),
            "source": {"bytes": match["data"]},
        }
    }


def tool_arguments(tool_input: Any) -> str:
    """A tool use's input as the JSON string both formats carry."""
    return json.dumps(tool_input, ensure_ascii=False)


def parse_arguments(arguments: str | None) -> Any:
    """A call's JSON arguments as the tool use's input (``{}`` when absent or not JSON)."""
    try:
        return json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return {}


def append_blocks(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks to the canonical history, merging with the previous message of the same role."""
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": list(blocks)})


def joined_text_parts(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    return "\n".join(p.get("text", "") for p in content if p.get("type") in ("text", "input_text"))


def user_blocks(content: Any) -> list[dict[str, Any]]:
    """A user message's content (a string, or Chat or Responses parts) as canonical blocks."""
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


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


@dataclass
class StreamedCall:
    """A tool call being streamed: argument pieces are held until the call has started."""

    id: str | None
    raw_id: str | None = None  # the server's id, when ours had to replace it
    name: str | None = None
    started: bool = False
    length: int = 0
    pending: list[str] = field(default_factory=list)

    def flush(self) -> Iterator[ModelEvent]:
        """The argument pieces held for a started call."""
        assert self.id is not None
        for piece in self.pending:
            self.length += len(piece)
            yield ToolUseInputDelta(tool_use_id=self.id, input_json=piece)
        self.pending.clear()


def value_of(obj: Any, name: str) -> Any:
    """An attribute of an SDK object, or a key of a dict (LiteLLM chunks can be either)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
