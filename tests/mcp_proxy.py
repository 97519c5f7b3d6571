"""A published MCP server from PyPI, reached over streamable HTTP, for tests of the harness's MCP client.

``mcp-server-time`` (a requirements-dev.txt pin) is a stdio server; ``mcp-proxy`` spawns it and
serves it over streamable HTTP at ``/mcp``. The proxy requires ``mcp<2`` while the harness pins
``mcp==2.3.0``, so it lives in a venv of its own that ``make`` builds at ``.build/mcp-proxy``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MCP_PROXY = REPO_ROOT / ".build" / "mcp-proxy" / "bin" / "mcp-proxy"
START_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(status_url: str) -> bool:
    try:
        with urllib.request.urlopen(status_url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def time_server_over_http() -> Iterator[str]:
    """Run ``mcp-server-time`` (UTC) behind ``mcp-proxy`` on 127.0.0.1; yields its MCP endpoint URL."""
    if not MCP_PROXY.exists():
        pytest.fail(
            f"{MCP_PROXY.relative_to(REPO_ROOT)} is missing: run `make test` (it installs mcp-proxy "
            "into its own venv, since mcp-proxy needs mcp<2)",
            pytrace=False,
        )
    port = _free_port()
    # Everything after `--` is the stdio server's command line: this test environment's Python,
    # which has mcp-server-time installed.
    command = [
        str(MCP_PROXY),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--",
        sys.executable,
        "-m",
        "mcp_server_time",
        "--local-timezone",
        "UTC",
    ]
    with tempfile.TemporaryFile() as log:
        proxy = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            # The proxy starts the stdio server and completes its handshake before it listens,
            # so the first answer from /status means the whole chain is up.
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _answers(f"http://127.0.0.1:{port}/status"):
                if proxy.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-4000:]
                    pytest.fail(f"mcp-proxy did not start (command {command}):\n{output}", pytrace=False)
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proxy.terminate()
            try:
                proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
