"""The "advisor": a real MCP server (the official SDK's ``MCPServer`` over streamable HTTP) for the
local demo and for the tests of the harness's MCP client.

Tools:

- ``fx_rate(base, quote)``: structured JSON ``{"base", "quote", "rate"}`` from a fixed table; an
  unknown pair is a tool error (``isError: true``), not a protocol error.
- ``market_note(topic)``: a short text note.
- ``long_report(paragraphs)``: a large text, to exercise large-result handling.

``serve()`` runs it on a background thread and returns a handle that counts the calls per tool and
keeps the ``_meta`` each call carried, so tests can check what reached the server.
``python -m local_runtime.demo_mcp --port 8002`` runs it in the foreground.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import os
import socket
import threading
import time
from collections import Counter, defaultdict
from types import TracebackType
from typing import Any, Self, TypedDict

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

# Mid-market rates, fixed so that demo runs and tests are reproducible.
FX_RATES: dict[tuple[str, str], float] = {
    ("EUR", "USD"): 1.0842,
    ("GBP", "USD"): 1.2718,
    ("USD", "JPY"): 151.37,
    ("USD", "CHF"): 0.8823,
    ("EUR", "GBP"): 0.8525,
}

MARKET_NOTES: dict[str, str] = {
    "rates": "Central banks are on hold; markets price two cuts over the next twelve months.",
    "equities": "Large caps lead on earnings breadth; small caps lag on refinancing costs.",
    "fx": "The dollar trades in a narrow range ahead of the payrolls release.",
}

MAX_REPORT_PARAGRAPHS = 10_000


class FxQuote(TypedDict):
    base: str
    quote: str
    rate: float


def report_paragraph(number: int) -> str:
    """One deterministic paragraph of ``long_report`` (about 400 characters)."""
    return (
        f"Paragraph {number}. "
        + "Liquidity conditions remained orderly across the session, with spreads inside their "
        "thirty-day averages and no sign of stress in funding markets. Positioning data show "
        "real-money accounts adding duration while leveraged funds trimmed their shorts. "
        "Volatility sellers returned after the auction, and implied volatility drifted lower "
        "into the close. No action is recommended."
    )


def build_advisor(calls: Counter[str], meta_by_tool: dict[str, list[dict[str, Any]]]) -> MCPServer:
    """The advisor server: each tool call is counted in ``calls``, its ``_meta`` kept in ``meta_by_tool``."""
    # MCPServer's constructor calls logging.basicConfig; this server runs inside other processes
    # (the tests, the local runtime), whose logging configuration is theirs to make.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    advisor = MCPServer("advisor", instructions="Market data and notes for the demo.", log_level="WARNING")
    root.handlers[:] = handlers
    root.setLevel(level)

    recording = threading.Lock()  # concurrent calls may run their tools on worker threads

    def record(tool: str, ctx: Context) -> None:
        with recording:
            calls[tool] += 1
            meta_by_tool[tool].append(dict(ctx.request_context.meta or {}))

    @advisor.tool(description="Exchange rate: how many units of `quote` one unit of `base` buys.")
    def fx_rate(base: str, quote: str, ctx: Context) -> FxQuote:
        record("fx_rate", ctx)
        pair = (base.upper(), quote.upper())
        if pair not in FX_RATES:
            raise ToolError(f"No rate for {pair[0]}/{pair[1]}")
        return {"base": pair[0], "quote": pair[1], "rate": FX_RATES[pair]}

    # Plain text results: without structured_output=False the SDK would also send the text as JSON.
    @advisor.tool(
        description="A short market note on a topic (rates, equities or fx).", structured_output=False
    )
    def market_note(topic: str, ctx: Context) -> str:
        record("market_note", ctx)
        return MARKET_NOTES.get(topic.lower(), f"No note on {topic} today.")

    @advisor.tool(
        description="A long market report with the given number of paragraphs.", structured_output=False
    )
    def long_report(paragraphs: int, ctx: Context) -> str:
        record("long_report", ctx)
        if not 1 <= paragraphs <= MAX_REPORT_PARAGRAPHS:
            raise ToolError(f"paragraphs must be between 1 and {MAX_REPORT_PARAGRAPHS}")
        return "\n\n".join(report_paragraph(number) for number in range(1, paragraphs + 1))

    return advisor


class _RequireBearer:
    """ASGI wrapper that answers HTTP 401 unless the request carries ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            presented = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(presented, self._expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self._app(scope, receive, send)


class BackgroundMcpServer:
    """An MCP server's streamable HTTP app served by uvicorn on a background thread.

    ``url`` is the MCP endpoint (``/mcp``); ``stop()`` (or leaving the ``with`` block) shuts it down.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/mcp") -> None:
        # Bound here rather than by uvicorn so that port 0 yields a known port before serving starts.
        self._socket = socket.create_server((host, port))
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}{path}"
        # log_config=None leaves the process's logging configuration alone (tests, the local runtime).
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="mcp-server", daemon=True
        )

    def start(self, wait_seconds: float = 10.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + wait_seconds
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the MCP server stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the MCP server did not start in time")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class AdvisorServer(BackgroundMcpServer):
    """The running advisor; ``calls`` counts the calls per tool, ``meta_by_tool`` keeps their ``_meta``."""

    def __init__(self, host: str, port: int, required_bearer: str | None) -> None:
        self.calls: Counter[str] = Counter()
        self.meta_by_tool: dict[str, list[dict[str, Any]]] = defaultdict(list)
        app: Any = build_advisor(self.calls, self.meta_by_tool).streamable_http_app(host=host)
        if required_bearer is not None:
            app = _RequireBearer(app, required_bearer)
        super().__init__(app, host, port)


def serve(host: str = "127.0.0.1", port: int = 0, *, required_bearer: str | None = None) -> AdvisorServer:
    """Start the advisor over streamable HTTP on a background thread (port 0: any free port).

    With ``required_bearer``, requests without ``Authorization: Bearer <required_bearer>`` get HTTP 401.
    """
    return AdvisorServer(host, port, required_bearer).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime.demo_mcp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8002, help="port (default 8002)")
    parser.add_argument(
        "--bearer-env",
        metavar="ENV_VAR",
        help="require `Authorization: Bearer <value of ENV_VAR>` on every request (never printed)",
    )
    args = parser.parse_args(argv)
    bearer = None
    if args.bearer_env:
        bearer = os.environ.get(args.bearer_env)
        if not bearer:
            parser.error(f"environment variable {args.bearer_env} is not set")
    with serve(args.host, args.port, required_bearer=bearer) as server:
        print(f"advisor MCP server on {server.url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
