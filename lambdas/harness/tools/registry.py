"""Tool types, visibility (harness tools ∩ allowedTools) and call routing.

A tool is visible to the model only when it is a harness (or invocation) tool AND it matches the
harness-level allowedTools AND the invocation-level allowedTools; dispatch checks the same set
again, so a hallucinated or injected tool name is refused even if it reaches the dispatcher.

Server entries (``remote_mcp`` and ``agentcore_gateway``) offer several tools each. The model
sees them as ``<entry>__<tool>``; ``allowedTools`` selects them as ``<entry>`` or ``@<entry>``
(every tool of the entry) or ``@<entry>/<tool>`` (one tool; the tool part may be a glob).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.canonical import text_digest
from harness.providers.base import ToolSpec

CLIENT = "client"
SERVER = "server"

INLINE = "inline_function"
REMOTE_MCP = "remote_mcp"
GATEWAY = "agentcore_gateway"
BUILTIN_TYPES = frozenset({"agentcore_browser", "agentcore_code_interpreter"})
SERVER_TYPES = frozenset({REMOTE_MCP, GATEWAY})
# Tool types this deployment runs, and where their calls go.
_ROUTES = {INLINE: CLIENT, REMOTE_MCP: SERVER, GATEWAY: SERVER}
_CONFIG_MEMBER = {INLINE: "inlineFunction", REMOTE_MCP: "remoteMcp", GATEWAY: "agentCoreGateway"}

SEPARATOR = "__"
_MODEL_NAME_LIMIT = 64  # what Bedrock, OpenAI and Gemini accept, and the contract's HarnessToolName
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def model_tool_name(server: str, tool: str) -> str:
    """The name the model sees for ``tool`` of server entry ``server``: ``<server>__<tool>``, made
    of the characters every provider accepts, at most 64 long (a digest keeps long names unique)."""
    name = _UNSAFE.sub("_", f"{server}{SEPARATOR}{tool}")
    if len(name) <= _MODEL_NAME_LIMIT:
        return name
    digest = text_digest(name)[:8]
    return f"{name[: _MODEL_NAME_LIMIT - 9]}_{digest}"


def url_problem(url: str, allow_loopback: bool = True) -> str | None:
    """Tool servers are reached over TLS; plain HTTP only on the loopback interface, where that is
    allowed (the local runtime, and operators' gateway targets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.hostname in _LOOPBACK_HOSTS and not allow_loopback:
        # On AWS the loopback interface is the function's own sandbox (the Lambda Runtime API).
        return "may not name the loopback interface in this deployment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return None
    return "must be an https:// URL (http:// is accepted only for 127.0.0.1 or localhost)"


def unsupported_reason(
    tool: dict[str, Any], gateways: Collection[str] | None = None, allow_loopback: bool = True
) -> str | None:
    """Why this deployment cannot run ``tool`` as configured, or None. ``gateways`` are the gateway
    ARNs this deployment configures (None: do not check gateway ARNs); ``allow_loopback`` whether
    a remote_mcp URL may name 127.0.0.1 (only the local runtime allows it)."""
    tool_type = tool.get("type")
    if tool_type not in _ROUTES:
        return f"tool type {tool_type} is not supported by this deployment"
    if not tool.get("name"):
        return f"{tool_type} tools need a name"
    if SEPARATOR in tool["name"] and tool_type in SERVER_TYPES:
        return (
            f"{tool_type} tool names may not contain '{SEPARATOR}' (it separates the server from its tools)"
        )
    member = _CONFIG_MEMBER[tool_type]
    config = (tool.get("config") or {}).get(member)
    if config is None:
        return f"{tool_type} tools need config.{member}"
    if tool_type == REMOTE_MCP:
        problem = url_problem(config.get("url", ""), allow_loopback)
        if problem:
            return f"config.remoteMcp.url {problem}"
        if "awsIam" in (config.get("outboundAuth") or {}):
            # The functions' role would sign for whatever host and service a harness names.
            return (
                "config.remoteMcp.outboundAuth.awsIam is not supported: SigV4 is signed with this "
                "deployment's role, so it is offered only by gateway targets operators configure"
            )
    if tool_type == GATEWAY and gateways is not None and config.get("gatewayArn") not in gateways:
        known = ", ".join(sorted(gateways)) or "none"
        return f"config.agentCoreGateway.gatewayArn names no gateway of this deployment (configured: {known})"
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


def arguments_problem(name: str, schema: dict[str, Any], tool_input: dict[str, Any]) -> str | None:
    """Why a call's arguments do not match the tool's inputSchema (naming the field), or None."""
    try:
        errors = sorted(_validator(schema).iter_errors(tool_input), key=lambda e: list(e.absolute_path))
    except Exception:
        # A tool server's unusable schema (a bad pattern, a $ref nowhere) cannot judge the input:
        # the server validates it itself.
        return None
    if not errors:
        return None
    first = errors[0]
    field = ".".join(str(part) for part in first.absolute_path) or "(the input)"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"The input for tool {name} does not match its schema at {field}: {first.message}{more}"


@dataclass(frozen=True)
class CatalogTool:
    """A tool a server entry offered when the invocation started (its list is kept for the
    invocation, so the model, the authorizer and the dispatcher all see the same set)."""

    server: str  # the harness tool entry's name
    tool: str  # the tool's name on that server (a gateway's: "<target>__<operation>")
    description: str
    input_schema: dict[str, Any]

    @property
    def model_name(self) -> str:
        return model_tool_name(self.server, self.tool)

    def to_item(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "tool": self.tool,
            "description": self.description,
            "inputSchema": self.input_schema,
        }

    @classmethod
    def of_item(cls, item: dict[str, Any]) -> CatalogTool:
        return cls(item["server"], item["tool"], item.get("description", ""), item.get("inputSchema") or {})


# Server entry name -> the tools it offered.
Catalog = dict[str, list[CatalogTool]]


@dataclass(frozen=True)
class ToolEntry:
    """One tool the model may call."""

    name: str  # what the model sees and calls
    tool_type: str
    description: str
    input_schema: dict[str, Any]
    definition: dict[str, Any]  # the harness tools[] entry it comes from
    remote_name: str | None = None  # the tool's name on its server (server entries only)

    @property
    def server(self) -> str | None:
        return self.definition["name"] if self.tool_type in SERVER_TYPES else None


def _at_pattern_allows(pattern: str, server: str, tool: str) -> bool:
    body = pattern[1:]
    entry, _, tool_pattern = body.partition("/")
    if entry != server:
        return False
    return not tool_pattern or fnmatch.fnmatchcase(tool, tool_pattern)


def _allows(patterns: list[str] | None, entry: ToolEntry) -> bool:
    if patterns is None:
        return True
    for pattern in patterns:
        if pattern == "*" or pattern == entry.name:
            return True
        if pattern == "@builtin":
            if entry.tool_type in BUILTIN_TYPES:
                return True
            continue
        if pattern.startswith("@"):
            if entry.server is not None and _at_pattern_allows(
                pattern, entry.server, entry.remote_name or ""
            ):
                return True
            continue
        if entry.server is not None and pattern == entry.server:
            return True
        if "*" in pattern and fnmatch.fnmatchcase(entry.name, pattern):
            return True
    return False


def _may_allow_server(patterns: list[str] | None, server: str) -> bool:
    """Whether any tool of ``server`` could pass ``patterns`` (so that it is worth listing)."""
    if patterns is None:
        return True
    for pattern in patterns:
        if pattern in ("*", server) or (pattern.startswith("@") and pattern[1:].partition("/")[0] == server):
            return True
        if "*" in pattern and not pattern.startswith("@"):
            prefix = pattern.split("*", 1)[0]
            if f"{server}{SEPARATOR}".startswith(prefix) or prefix.startswith(f"{server}{SEPARATOR}"):
                return True
    return False


@dataclass(frozen=True)
class Toolset:
    """The tools one invocation may use, by the name the model calls them."""

    tools: dict[str, ToolEntry]
    # Server entries the allowedTools leave something of: the ones to list tools from.
    servers: tuple[dict[str, Any], ...] = ()

    @classmethod
    def for_invocation(
        cls,
        tools: list[dict[str, Any]],
        harness_allowed: list[str] | None,
        invocation_allowed: list[str] | None,
        catalog: Catalog | None = None,
    ) -> Toolset:
        # Invocation-level allowedTools can only narrow the harness-level set.
        entries: list[ToolEntry] = []
        servers = []
        for tool in tools:
            tool_type = tool.get("type")
            if tool_type == INLINE:
                config = tool.get("config", {}).get("inlineFunction", {})
                entries.append(
                    ToolEntry(
                        tool["name"],
                        INLINE,
                        config.get("description", tool["name"]),
                        config.get("inputSchema", {}),
                        tool,
                    )
                )
            elif tool_type in SERVER_TYPES:
                if _may_allow_server(harness_allowed, tool["name"]) and _may_allow_server(
                    invocation_allowed, tool["name"]
                ):
                    servers.append(tool)
                for offered in (catalog or {}).get(tool["name"], []):
                    entries.append(
                        ToolEntry(
                            offered.model_name,
                            tool_type,
                            offered.description or offered.tool,
                            offered.input_schema,
                            tool,
                            offered.tool,
                        )
                    )
        visible = {
            entry.name: entry
            for entry in entries
            if _allows(harness_allowed, entry) and _allows(invocation_allowed, entry)
        }
        return cls(visible, tuple(servers))

    @property
    def configured(self) -> int:
        """How many tools (inline) or tool servers this invocation may use."""
        return sum(1 for e in self.tools.values() if e.tool_type == INLINE) + len(self.servers)

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(e.name, e.description, e.input_schema) for e in self.tools.values()]

    def entry(self, name: str) -> ToolEntry | None:
        return self.tools.get(name)

    def input_problem(self, name: str, tool_input: dict[str, Any]) -> str | None:
        entry = self.tools.get(name)
        return arguments_problem(name, entry.input_schema, tool_input) if entry else None

    def route(self, name: str) -> str | None:
        """CLIENT or SERVER for an allowed tool, None for a tool this invocation may not call."""
        entry = self.tools.get(name)
        return _ROUTES.get(entry.tool_type) if entry else None
