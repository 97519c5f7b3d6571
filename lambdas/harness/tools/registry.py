"""Tool types, visibility (harness tools ∩ allowedTools) and call routing.

A tool is visible to the model only when it is a harness (or invocation) tool AND it matches the
harness-level allowedTools AND the invocation-level allowedTools; dispatch checks the same set
again, so a hallucinated or injected tool name is refused even if it reaches the dispatcher.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from harness.providers.base import ToolSpec

CLIENT = "client"
SERVER = "server"

# Tool types this deployment runs today, and where their calls go.
_ROUTES = {"inline_function": CLIENT}


def unsupported_reason(tool: dict[str, Any]) -> str | None:
    tool_type = tool.get("type")
    if tool_type not in _ROUTES:
        return f"tool type {tool_type} is not supported by this deployment yet"
    if not tool.get("name"):
        return "inline_function tools need a name"
    if tool_type == "inline_function" and "inlineFunction" not in (tool.get("config") or {}):
        return "inline_function tools need config.inlineFunction"
    return None


def _allows(patterns: list[str] | None, tool: dict[str, Any]) -> bool:
    if patterns is None:
        return True
    name = tool["name"]
    for pattern in patterns:
        if pattern == "*" or pattern == name:
            return True
        if pattern == "@builtin" and tool["type"] in {"agentcore_browser", "agentcore_code_interpreter"}:
            return True
        if "*" in pattern and not pattern.startswith("@") and fnmatch.fnmatchcase(name, pattern):
            return True
    return False


@dataclass(frozen=True)
class Toolset:
    """The tools one invocation may use."""

    tools: dict[str, dict[str, Any]]

    @classmethod
    def for_invocation(
        cls,
        tools: list[dict[str, Any]],
        harness_allowed: list[str] | None,
        invocation_allowed: list[str] | None,
    ) -> Toolset:
        # Invocation-level allowedTools can only narrow the harness-level set.
        visible = {
            tool["name"]: tool
            for tool in tools
            if _allows(harness_allowed, tool) and _allows(invocation_allowed, tool)
        }
        return cls(visible)

    def specs(self) -> list[ToolSpec]:
        specs = []
        for name, tool in self.tools.items():
            config = tool.get("config", {}).get("inlineFunction", {})
            specs.append(ToolSpec(name, config.get("description", name), config.get("inputSchema", {})))
        return specs

    def route(self, name: str) -> str | None:
        """CLIENT or SERVER for an allowed tool, None for a tool this invocation may not call."""
        tool = self.tools.get(name)
        return _ROUTES.get(tool["type"]) if tool else None
