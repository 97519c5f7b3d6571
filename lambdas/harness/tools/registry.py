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


def input_schema(tool: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = (tool.get("config") or {}).get("inlineFunction", {}).get("inputSchema") or {}
    return schema


def _validator(schema: dict[str, Any]) -> Any:
    # Imported on first use: most turns call no tool, and a cold start should not pay for it.
    from jsonschema.validators import validator_for

    return validator_for(schema)(schema)


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why a tool's inputSchema is not a usable JSON Schema, or None."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        return f"inputSchema is not a valid JSON Schema: {error.message}"
    return None


def input_problem(tool: dict[str, Any], tool_input: dict[str, Any]) -> str | None:
    """Why a call's arguments do not match the tool's inputSchema (naming the field), or None."""
    errors = sorted(
        _validator(input_schema(tool)).iter_errors(tool_input), key=lambda e: list(e.absolute_path)
    )
    if not errors:
        return None
    first = errors[0]
    field = ".".join(str(part) for part in first.absolute_path) or "(the input)"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"The input for tool {tool['name']} does not match its schema at {field}: {first.message}{more}"


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

    def input_problem(self, name: str, tool_input: dict[str, Any]) -> str | None:
        tool = self.tools.get(name)
        return input_problem(tool, tool_input) if tool else None

    def route(self, name: str) -> str | None:
        """CLIENT or SERVER for an allowed tool, None for a tool this invocation may not call."""
        tool = self.tools.get(name)
        return _ROUTES.get(tool["type"]) if tool else None
