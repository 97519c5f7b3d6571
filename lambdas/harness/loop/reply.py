"""One model call's reply, assembled from the provider's events as they stream: each event goes to
the caller's stream at once, and the finished message is what the session stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from harness.loop.context import Emit
from harness.providers.base import ModelEvent, Stop, TextDelta, ToolUseInputDelta, ToolUseStart, Usage
from harness.providers.tool_use_ids import is_tool_use_id, new_tool_use_id

# The stream's extra fields of a tool use by tool name (type and serverName of server tools).
DescribeToolUse = Callable[[str], dict[str, str]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class Reply:
    def __init__(
        self,
        emit: Emit,
        describe: DescribeToolUse = lambda _: {},
        taken_ids: set[str] | None = None,
    ) -> None:
        self._emit = emit
        # Tool-use ids are unique within a turn: results, approvals and dispatch are keyed by them.
        # A provider that repeats one (or sends one the contract does not allow) gets a fresh id.
        self._taken = set(taken_ids or ())
        self._renamed: dict[str, str] = {}
        self._describe = describe
        self._content: list[dict[str, Any]] = []
        self._tool_inputs: dict[str, list[str]] = {}
        self._block_open = False
        self.stop_reason = "end_turn"
        self.usage = Usage(0, 0)

    def add(self, event: ModelEvent) -> None:
        if isinstance(event, TextDelta):
            if not self._content or "text" not in self._content[-1]:
                self._open_block({"text": ""})
            self._content[-1]["text"] += event.text
            self._delta({"text": event.text})
        elif isinstance(event, ToolUseStart):
            self._start_tool_use(event)
        elif isinstance(event, ToolUseInputDelta):
            # Arguments may arrive in chunks: assemble per call id, parse once at the end.
            self._tool_inputs[self._renamed.get(event.tool_use_id, event.tool_use_id)].append(
                event.input_json
            )
            self._delta({"toolUse": {"input": event.input_json}})
        elif isinstance(event, Stop):
            self.stop_reason = event.reason
        elif isinstance(event, Usage):
            self.usage = event

    def close(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The message content, and a problem per tool call whose arguments are not a JSON object."""
        if self._block_open:
            self._emit({"contentBlockStop": {"contentBlockIndex": len(self._content) - 1}})
            self._block_open = False
        malformed: dict[str, str] = {}
        for block in self._content:
            call = block.get("toolUse")
            if not call:
                continue
            raw = "".join(self._tool_inputs.get(call["toolUseId"], [])) or "{}"
            try:
                # NaN and Infinity are not JSON: they would slip past numeric schemas and policies.
                parsed = json.loads(raw, parse_constant=_reject_constant)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                call["input"] = parsed
            else:
                malformed[call["toolUseId"]] = (
                    f"The arguments for tool {call['name']} were not a JSON object."
                )
        return self._content or [{"text": ""}], malformed

    def _start_tool_use(self, event: ToolUseStart) -> None:
        tool_use_id = event.tool_use_id
        if tool_use_id in self._taken or not is_tool_use_id(tool_use_id):
            tool_use_id = new_tool_use_id()
        self._taken.add(tool_use_id)
        self._renamed[event.tool_use_id] = tool_use_id
        self._open_block({"toolUse": {"toolUseId": tool_use_id, "name": event.name, "input": {}}})
        self._tool_inputs[tool_use_id] = []
        start = {"toolUseId": tool_use_id, "name": event.name} | self._describe(event.name)
        self._emit(
            {"contentBlockStart": {"contentBlockIndex": len(self._content) - 1, "start": {"toolUse": start}}}
        )

    def _open_block(self, block: dict[str, Any]) -> None:
        if self._block_open:
            self._emit({"contentBlockStop": {"contentBlockIndex": len(self._content) - 1}})
        self._content.append(block)
        self._block_open = True

    def _delta(self, delta: dict[str, Any]) -> None:
        self._emit({"contentBlockDelta": {"contentBlockIndex": len(self._content) - 1, "delta": delta}})
