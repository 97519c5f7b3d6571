"""The deterministic ``local`` provider: no network, reproducible replies, for offline use and tests.

Behaviour (documented in the README):
- the last user text ``/tool NAME {JSON}`` calls tool NAME with that JSON input; several such
  lines call several tools in one turn (in that order);
- a turn that ends with tool results is answered with text that contains those results;
- ``/history`` answers with the user texts of the request, one per line, oldest first (with the
  ``summarization`` truncation strategy, the summary text comes first);
- a summarization request (the harness's ``summarization`` strategy) is answered with the user
  texts of the summarized conversation joined by ``"; "``;
- any other text gets a short reply that quotes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from harness import truncation
from harness.providers.base import (
    ModelEvent,
    ModelRequest,
    Stop,
    TextDelta,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.tool_use_ids import hashed_tool_use_id

MODEL_ID_PREFIX = "local/"


def _texts(message: dict[str, Any]) -> list[str]:
    return [block["text"] for block in message.get("content", []) if "text" in block]


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(block).split()) for m in messages for block in m.get("content", []))


def _result_text(result: dict[str, Any]) -> str:
    parts = []
    for item in result.get("content", []):
        if "text" in item:
            parts.append(item["text"])
        elif "json" in item:
            parts.append(json.dumps(item["json"], sort_keys=True))
    return " ".join(parts)


class LocalProvider:
    name = "local"

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        last: dict[str, Any] = request.messages[-1] if request.messages else {"role": "user", "content": []}
        results = [block["toolResult"] for block in last.get("content", []) if "toolResult" in block]
        texts = _texts(last)
        command = texts[-1].strip() if texts else ""
        if results:
            names = self._tool_names(request.messages)
            reply = " ".join(
                f"Tool {names.get(r['toolUseId'], r['toolUseId'])} returned"
                f"{' an error' if r.get('status') == 'error' else ''}: {_result_text(r)}"
                for r in results
            )
            yield from self._text(reply, request)
        elif command.startswith(truncation.SUMMARIZATION_REQUEST):
            yield from self._text(self._summary(command), request)
        elif command.startswith("/tool "):
            yield from self._tool_call(command, request)
        elif command == "/history":
            history = [text for m in request.messages if m["role"] == "user" for text in _texts(m)]
            yield from self._text("\n".join(history), request)
        else:
            yield from self._text(f'You said: "{command}"', request)

    @staticmethod
    def _summary(command: str) -> str:
        prefix = "user: "
        return "; ".join(line[len(prefix) :] for line in command.splitlines() if line.startswith(prefix))

    @staticmethod
    def _tool_names(messages: list[dict[str, Any]]) -> dict[str, str]:
        return {
            block["toolUse"]["toolUseId"]: block["toolUse"]["name"]
            for m in messages
            for block in m.get("content", [])
            if "toolUse" in block
        }

    def _text(self, reply: str, request: ModelRequest) -> Iterator[ModelEvent]:
        # Several deltas, as a real model streams, so consumers are exercised on chunked text.
        words = reply.split(" ")
        for index, word in enumerate(words):
            yield TextDelta(word if index == 0 else " " + word)
        yield Stop("end_turn")
        yield Usage(input_tokens=_words(request.messages), output_tokens=len(words))

    def _tool_call(self, command: str, request: ModelRequest) -> Iterator[ModelEvent]:
        calls = []
        for line in command.splitlines():
            _, _, rest = line.strip().partition(" ")
            name, _, raw_input = rest.strip().partition(" ")
            try:
                tool_input = json.loads(raw_input) if raw_input.strip() else {}
            except json.JSONDecodeError:
                yield from self._text(f"I could not parse the input for tool {name} as JSON.", request)
                return
            calls.append((name, tool_input))
        for index, (name, tool_input) in enumerate(calls):
            tool_use_id = hashed_tool_use_id(f"{len(request.messages)}:{index}:{command}")
            yield ToolUseStart(tool_use_id=tool_use_id, name=name)
            yield ToolUseInputDelta(tool_use_id=tool_use_id, input_json=json.dumps(tool_input))
        yield Stop("tool_use")
        yield Usage(input_tokens=_words(request.messages), output_tokens=len(calls))
