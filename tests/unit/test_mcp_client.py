"""The harness's MCP client against real MCP servers on 127.0.0.1: the demo advisor (the official
SDK's MCPServer), a low-level SDK server for pagination, stalls and media content, a socket that
never answers, and a published server from PyPI (mcp-server-time behind mcp-proxy)."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import ServerRequestContext

from harness.tools.mcp_client import (
    McpError,
    McpTimeoutError,
    RemoteTool,
    ToolOutcome,
    call_tool,
    list_tools,
)
from local_runtime.demo_mcp import AdvisorServer, BackgroundMcpServer, report_paragraph, serve
from tests.mcp_proxy import time_server_over_http

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
TOKEN = "vault-token-7f3a9c1e"  # what the vault would hand the client as a header value
TIMEOUT = 5.0
#: How long a test waits for a call that its own timeout should end far sooner.
PATIENCE_SECONDS = 30

T = TypeVar("T")


def returns_within(seconds: float, call: Callable[[], T]) -> T:
    """What ``call()`` returns or raises; a call still running after ``seconds`` fails the test
    instead of hanging it (it goes on, on a daemon thread)."""
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:
            outcome.append((False, error))
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    if not done.wait(seconds):
        pytest.fail(f"the call was still running after {seconds} s")
    ((returned, value),) = outcome
    if not returned:
        raise value
    result: T = value
    return result


@pytest.fixture(scope="module")
def advisor() -> Iterator[AdvisorServer]:
    with serve() as server:
        yield server


# --- the demo advisor -------------------------------------------------------------------------


def test_lists_the_servers_tools_with_their_descriptions_and_input_schemas(advisor: AdvisorServer) -> None:
    tools = {tool.name: tool for tool in list_tools(advisor.url, timeout=TIMEOUT)}

    assert set(tools) == {"fx_rate", "market_note", "long_report"}
    fx_rate = tools["fx_rate"]
    assert isinstance(fx_rate, RemoteTool)
    assert fx_rate.description == "Exchange rate: how many units of `quote` one unit of `base` buys."
    assert fx_rate.input_schema["type"] == "object"
    assert set(fx_rate.input_schema["properties"]) == {"base", "quote"}
    assert sorted(fx_rate.input_schema["required"]) == ["base", "quote"]
    assert tools["long_report"].input_schema["properties"]["paragraphs"]["type"] == "integer"


def test_a_structured_result_comes_back_as_one_json_block(advisor: AdvisorServer) -> None:
    outcome = call_tool(advisor.url, "fx_rate", {"base": "EUR", "quote": "USD"}, timeout=TIMEOUT)

    assert outcome.is_error is False
    # The server also sends the structure serialized as text; the model gets it once.
    assert outcome.content == [{"json": {"base": "EUR", "quote": "USD", "rate": 1.0842}}]


def test_a_text_result_comes_back_as_a_text_block(advisor: AdvisorServer) -> None:
    outcome = call_tool(advisor.url, "market_note", {"topic": "rates"}, timeout=TIMEOUT)

    assert outcome == ToolOutcome(
        [{"text": "Central banks are on hold; markets price two cuts over the next twelve months."}],
        is_error=False,
    )


def test_a_large_result_arrives_whole(advisor: AdvisorServer) -> None:
    outcome = call_tool(advisor.url, "long_report", {"paragraphs": 500}, timeout=TIMEOUT)

    [block] = outcome.content
    assert block["text"] == "\n\n".join(report_paragraph(number) for number in range(1, 501))
    assert len(block["text"]) > 150_000


def test_a_tool_error_is_an_outcome_not_an_exception(advisor: AdvisorServer) -> None:
    outcome = call_tool(advisor.url, "fx_rate", {"base": "EUR", "quote": "XXX"}, timeout=TIMEOUT)

    assert outcome.is_error is True
    assert any("No rate for EUR/XXX" in block.get("text", "") for block in outcome.content)


def test_meta_reaches_the_tool_as_the_requests_meta(advisor: AdvisorServer) -> None:
    key = "invocation-1/tool-use-7"
    before = advisor.calls["market_note"]

    call_tool(advisor.url, "market_note", {"topic": "fx"}, timeout=TIMEOUT, meta={"idempotencyKey": key})

    assert advisor.calls["market_note"] == before + 1
    assert advisor.meta_by_tool["market_note"][-1]["idempotencyKey"] == key


def test_repeated_calls_in_one_process_and_from_other_threads(advisor: AdvisorServer) -> None:
    before = advisor.calls["fx_rate"]
    results: list[ToolOutcome] = []

    def call_from_a_thread_without_an_event_loop() -> None:
        results.append(call_tool(advisor.url, "fx_rate", {"base": "USD", "quote": "JPY"}, timeout=TIMEOUT))

    for _ in range(3):
        call_from_a_thread_without_an_event_loop()
    workers = [threading.Thread(target=call_from_a_thread_without_an_event_loop) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert len(results) == 6
    assert all({"json": {"base": "USD", "quote": "JPY", "rate": 151.37}} in r.content for r in results)
    assert advisor.calls["fx_rate"] == before + 6


def test_works_when_called_from_inside_a_running_event_loop(advisor: AdvisorServer) -> None:
    async def caller_with_a_loop() -> list[RemoteTool]:
        return list_tools(advisor.url, timeout=TIMEOUT)

    assert len(asyncio.run(caller_with_a_loop())) == 3


# --- authentication ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_advisor() -> Iterator[AdvisorServer]:
    with serve(required_bearer=TOKEN) as server:
        yield server


def test_a_server_that_requires_a_bearer_token_accepts_the_header(guarded_advisor: AdvisorServer) -> None:
    tools = list_tools(guarded_advisor.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=TIMEOUT)

    assert len(tools) == 3


def test_auth_can_be_an_httpx_auth_flow(guarded_advisor: AdvisorServer) -> None:
    class VaultBearer(httpx2.Auth):
        def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
            request.headers["Authorization"] = f"Bearer {TOKEN}"
            yield request

    outcome = call_tool(
        guarded_advisor.url, "market_note", {"topic": "fx"}, auth=VaultBearer(), timeout=TIMEOUT
    )

    assert outcome.is_error is False


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong-token-0042"}])
def test_http_401_is_an_mcp_error_that_names_the_status_but_no_header_value(
    guarded_advisor: AdvisorServer, headers: dict[str, str] | None
) -> None:
    with pytest.raises(McpError) as raised:
        list_tools(guarded_advisor.url, headers=headers, timeout=TIMEOUT)

    message = str(raised.value)
    assert "401" in message
    assert "127.0.0.1" in message
    assert "wrong-token-0042" not in message
    assert TOKEN not in message
    assert not isinstance(raised.value, McpTimeoutError)


# --- unreachable and hanging servers ----------------------------------------------------------


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_server_fails_fast_without_leaking_the_query_string() -> None:
    url = f"http://127.0.0.1:{_unused_port()}/mcp?api_key=query-secret-99"

    with pytest.raises(McpError) as raised:
        call_tool(url, "fx_rate", {}, headers={"X-Api-Key": "header-secret-17"}, timeout=TIMEOUT)

    # Fast: the refused connection ends the call, not the timeout.
    assert not isinstance(raised.value, McpTimeoutError)
    message = str(raised.value)
    assert "could not connect" in message
    assert "127.0.0.1" in message
    assert "query-secret-99" not in message
    assert "header-secret-17" not in message


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A server that accepts connections and never answers (until the test ends)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept_forever() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:  # the listener was closed
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    listener.close()
    for connection in accepted:
        connection.close()


def test_a_server_that_never_answers_times_out_within_the_timeout(silent_socket: str) -> None:
    started = time.monotonic()

    with pytest.raises(McpTimeoutError) as raised:
        returns_within(PATIENCE_SECONDS, lambda: list_tools(silent_socket, timeout=1.0))

    # The server never answers: only the client's timeout can have ended the call, and not before
    # the timeout was up (a lower bound, which a busy machine cannot break).
    assert time.monotonic() - started >= 1.0
    assert "1s" in str(raised.value)


# --- a low-level SDK server: pagination, a stalling tool, media content ------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
PAGED_TOOLS = ["stall", "media", "alpha", "beta"]


def build_low_level_server(release: threading.Event) -> Server[Any]:
    """One tool per tools/list page; ``stall`` waits for ``release``; ``media`` returns non-text content."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        index = int(params.cursor) if params and params.cursor else 0
        tool = types.Tool(
            name=PAGED_TOOLS[index], description=f"tool {index}", input_schema={"type": "object"}
        )
        more = index + 1 < len(PAGED_TOOLS)
        return types.ListToolsResult(tools=[tool], next_cursor=str(index + 1) if more else None)

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name == "stall":
            while not release.is_set():
                await anyio.sleep(0.02)
            return types.CallToolResult(content=[types.TextContent(text="released")])
        return types.CallToolResult(
            content=[
                types.ImageContent(data=PNG, mime_type="image/png"),
                types.EmbeddedResource(resource=types.TextResourceContents(uri="memo://1", text="memo text")),
                types.EmbeddedResource(
                    resource=types.BlobResourceContents(uri="memo://2", blob=PNG, mime_type="application/pdf")
                ),
                types.ResourceLink(name="report", uri="https://reports.example/7"),
            ]
        )

    return Server("low-level", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


@pytest.fixture(scope="module")
def release() -> threading.Event:
    return threading.Event()


@pytest.fixture(scope="module")
def low_level_server(release: threading.Event) -> Iterator[BackgroundMcpServer]:
    app = build_low_level_server(release).streamable_http_app()
    with BackgroundMcpServer(app).start() as server:
        try:
            yield server
        finally:
            release.set()  # lets a stalled call finish so that the server can stop promptly


def test_follows_tools_list_pagination(low_level_server: BackgroundMcpServer) -> None:
    tools = list_tools(low_level_server.url, timeout=TIMEOUT)

    assert [tool.name for tool in tools] == PAGED_TOOLS
    assert tools[3] == RemoteTool("beta", "tool 3", {"type": "object"})


def test_the_timeout_bounds_a_call_that_the_server_never_finishes(
    low_level_server: BackgroundMcpServer, release: threading.Event
) -> None:
    started = time.monotonic()

    with pytest.raises(McpTimeoutError) as raised:
        returns_within(PATIENCE_SECONDS, lambda: call_tool(low_level_server.url, "stall", {}, timeout=1.0))

    # Nothing releases the tool before the module's tests end: the client's timeout ended the call,
    # and not before it was up (a lower bound, which a busy machine cannot break).
    assert not release.is_set()
    assert time.monotonic() - started >= 1.0
    assert "tools/call stall" in str(raised.value)


def test_media_content_becomes_text_blocks_that_name_it(low_level_server: BackgroundMcpServer) -> None:
    outcome = call_tool(low_level_server.url, "media", {}, timeout=TIMEOUT)

    assert outcome.content == [
        {"text": "[image omitted: image/png]"},
        {"text": "memo text"},
        {"text": "[resource omitted: memo://2 (application/pdf)]"},
        {"text": "[resource link: https://reports.example/7]"},
    ]


# --- a published MCP server from PyPI, behind mcp-proxy -----------------------------------------


@pytest.fixture(scope="module")
def time_server() -> Iterator[str]:
    with time_server_over_http() as url:
        yield url


def test_lists_the_tools_of_a_published_server(time_server: str) -> None:
    tools = {tool.name: tool for tool in list_tools(time_server, timeout=TIMEOUT)}

    assert set(tools) == {"get_current_time", "convert_time"}
    assert {"source_timezone", "time", "target_timezone"} <= set(
        tools["convert_time"].input_schema["properties"]
    )


def test_calls_a_published_servers_tool(time_server: str) -> None:
    arguments = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Kolkata"}

    outcome = call_tool(time_server, "convert_time", arguments, timeout=TIMEOUT)

    assert outcome.is_error is False
    [converted] = [block["json"] for block in outcome.content if "json" in block]
    assert converted["source"]["timezone"] == "UTC"
    assert converted["source"]["datetime"].endswith("T12:00:00+00:00")
    assert converted["target"]["timezone"] == "Asia/Kolkata"
    assert converted["target"]["datetime"].endswith("T17:30:00+05:30")
    assert converted["time_difference"] == "+5.5h"


def test_a_published_servers_tool_error_is_an_outcome(time_server: str) -> None:
    outcome = call_tool(time_server, "get_current_time", {"timezone": "Not/AZone"}, timeout=TIMEOUT)

    assert outcome.is_error is True


# --- cold start -------------------------------------------------------------------------------


def test_importing_the_client_imports_neither_the_sdk_nor_its_http_stack() -> None:
    sdks = ("mcp", "mcp_types", "httpx2", "anyio")
    code = (
        f"import sys; import harness.tools.mcp_client; print(sorted(m for m in {sdks!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=LAMBDAS, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
