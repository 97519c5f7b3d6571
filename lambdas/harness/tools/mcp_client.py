"""A synchronous client for remote MCP servers over streamable HTTP (``remote_mcp`` tools and gateway
MCP targets), on the official ``mcp`` SDK.

Each call opens a connection, negotiates the protocol, does its one operation and closes: the
Lambda handlers that use it are synchronous and short-lived, so there is no session to keep.
``timeout`` bounds the whole of it (connect, negotiation, request, close).

Failures to reach or talk to the server raise ``McpError`` (``McpTimeoutError`` for the timeout);
a tool that ran and failed is a ``ToolOutcome`` with ``is_error`` set. Error messages name the
server's host and what failed, never the URL's query string or any header value.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from harness.errors import McpError, McpTimeoutError

if TYPE_CHECKING:
    # Imported inside the functions at run time: a cold start that calls no MCP tool must not pay for them.
    import httpx2
    from mcp import Client
    from mcp_types import CallToolResult

T = TypeVar("T")

# tools/list pages to follow before deciding the server's pagination never ends.
MAX_TOOL_LIST_PAGES = 100

# How the harness introduces itself in the MCP handshake.
CLIENT_NAME = "agent-harness"
CLIENT_VERSION = "1"


@dataclass(frozen=True)
class RemoteTool:
    name: str  # the server's tool name, verbatim
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    # Converse-shaped blocks: {"text": str} and/or {"json": <structuredContent>}.
    content: list[dict[str, Any]]
    is_error: bool


def list_tools(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    auth: httpx2.Auth | None = None,
    timeout: float,
) -> list[RemoteTool]:
    """Every tool the server lists, following tools/list pagination."""

    async def list_all(client: Client) -> list[RemoteTool]:
        tools: list[RemoteTool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_LIST_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(
                RemoteTool(tool.name, tool.description or "", dict(tool.input_schema)) for tool in page.tools
            )
            cursor = page.next_cursor
            if cursor is None:
                return tools
        raise _ProtocolViolation(f"tools/list was still paginating after {MAX_TOOL_LIST_PAGES} pages")

    return _run(lambda: _connected(url, headers, auth, timeout, "tools/list", list_all))


def call_tool(
    url: str,
    name: str,
    arguments: dict[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    auth: httpx2.Auth | None = None,
    timeout: float,
    meta: dict[str, Any] | None = None,
) -> ToolOutcome:
    """Call tool ``name``; ``meta`` travels as the request's ``_meta`` (e.g. an idempotency key)."""

    async def call(client: Client) -> ToolOutcome:
        # RequestParamsMeta is an open TypedDict: any JSON object is a valid _meta.
        result = await client.call_tool(name, arguments, meta=meta)  # type: ignore[arg-type]
        return ToolOutcome(converse_blocks(result), bool(result.is_error))

    return _run(lambda: _connected(url, headers, auth, timeout, f"tools/call {name}", call))


def converse_blocks(result: CallToolResult) -> list[dict[str, Any]]:
    """A tool result's content as Converse tool-result blocks; binary content is named, not inlined."""
    blocks: list[dict[str, Any]] = []
    for item in result.content:
        if item.type == "text":
            blocks.append({"text": item.text})
        elif item.type == "image" or item.type == "audio":
            blocks.append({"text": f"[{item.type} omitted: {item.mime_type}]"})
        elif item.type == "resource":
            resource = item.resource
            text = getattr(resource, "text", None)
            if isinstance(text, str):
                blocks.append({"text": text})
            else:
                kind = resource.mime_type or "binary"
                blocks.append({"text": f"[resource omitted: {resource.uri} ({kind})]"})
        elif item.type == "resource_link":
            blocks.append({"text": f"[resource link: {item.uri}]"})
    if result.structured_content is not None:
        # Servers also send structured content serialized as text (for older clients): the model
        # needs it once.
        blocks = [b for b in blocks if not _serializes(b.get("text"), result.structured_content)]
        blocks.append({"json": result.structured_content})
    return blocks


def _serializes(text: str | None, value: Any) -> bool:
    if text is None:
        return False
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


class _ProtocolViolation(Exception):
    """The server's replies are valid MCP messages but make no sense together."""


def _run(main: Callable[[], Awaitable[T]]) -> T:
    """``main()`` awaited to its end, from synchronous code."""
    import asyncio

    import anyio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(main)
    # A caller already inside an event loop (an async test, a notebook) cannot start another on its
    # own thread, so this one runs on a short-lived thread of its own.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-client") as pool:
        return pool.submit(anyio.run, main).result()


async def _connected(
    url: str,
    headers: Mapping[str, str] | None,
    auth: httpx2.Auth | None,
    timeout: float,
    action: str,
    operation: Callable[[Client], Awaitable[T]],
) -> T:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp_types import Implementation

    # The SDK turns an HTTP error status into a generic JSON-RPC error; the status of the latest
    # POST (the request that failed: they run one after another) is kept to say what the server
    # answered. Only the latest: a legacy server answers the protocol probe with 400, and the
    # connection goes on to succeed.
    latest_post_status: list[int] = []

    async def note_post_status(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            latest_post_status[:] = [response.status_code]

    try:
        http = httpx2.AsyncClient(
            headers=dict(headers or {}),
            auth=auth,
            timeout=httpx2.Timeout(timeout),
            event_hooks={"response": [note_post_status]},
        )
        client = Client(
            streamable_http_client(url, http_client=http),
            client_info=Implementation(name=CLIENT_NAME, version=CLIENT_VERSION),
            # One operation per connection: a response cache would never be read.
            cache=None,
        )
        with anyio.fail_after(timeout):
            async with http, client:
                return await operation(client)
    except Exception as error:
        problem = _describe(error, latest_post_status, timeout)
        message = _redact(f"MCP server {_host(url)}: {action} failed: {problem}", url, headers)
        failure = McpTimeoutError if _is_timeout(error) else McpError
        # Not chained: the underlying exceptions' text is not redacted and would reach the logs.
        raise failure(message) from None


def _innermost(error: BaseException) -> BaseException:
    """The first real failure inside the SDK's (possibly nested) task-group exception groups.

    A group can also hold the cancellations of the tasks that the failure stopped; those say nothing.
    """
    pending = [error]
    leaves: list[BaseException] = []
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending[:0] = list(current.exceptions)
        else:
            leaves.append(current)
    failures = [leaf for leaf in leaves if isinstance(leaf, Exception)]
    return (failures or leaves or [error])[0]


def _is_timeout(error: BaseException) -> bool:
    import httpx2

    return isinstance(_innermost(error), TimeoutError | httpx2.TimeoutException)


def _describe(error: BaseException, latest_post_status: list[int], timeout: float) -> str:
    import httpx2
    from mcp.shared.exceptions import MCPError
    from pydantic import ValidationError

    cause = _innermost(error)
    if _is_timeout(cause):
        return f"no answer within {timeout:g}s"
    if isinstance(cause, httpx2.ConnectError):
        return f"could not connect ({cause})"
    if isinstance(cause, httpx2.HTTPError):
        return f"HTTP transport error: {type(cause).__name__}: {cause}"
    if isinstance(cause, MCPError):
        detail = f"error {cause.code}: {cause.message}"
        if latest_post_status and latest_post_status[0] >= 400:
            return f"the server answered HTTP {latest_post_status[0]} ({detail})"
        return f"the server returned {detail}"
    if isinstance(cause, ValidationError):
        return "the server's reply is not a valid MCP message"
    if isinstance(cause, _ProtocolViolation | RuntimeError):
        # The SDK raises RuntimeError for protocol-level mismatches (versions, output schemas).
        return f"protocol error: {cause}"
    return f"unexpected {type(cause).__name__}: {cause}"


def _host(url: str) -> str:
    # hostname and port, never userinfo, path or query string.
    try:
        parts = urlsplit(url)
        host = parts.hostname or "(no host)"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "(malformed URL)"


def _redact(message: str, url: str, headers: Mapping[str, str] | None) -> str:
    """Blank out anything secret a server or library may have echoed into an error's text."""
    secrets = [value for value in (headers or {}).values() if value]
    # The credential alone, as in "Bearer <token>", can be echoed without its scheme.
    secrets += [value.split()[-1] for value in secrets if len(value.split()) > 1]
    try:
        parts = urlsplit(url)
        secrets += [piece for piece in (parts.query, parts.password, parts.username) if piece]
    except ValueError:
        secrets.append(url)
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "[redacted]")
    return message
