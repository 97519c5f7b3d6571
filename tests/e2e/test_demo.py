"""The local demo as a user runs it: ``python -m local_runtime --demo`` in its own process, then the
demo session (a gateway OpenAPI target, an MCP server and an approval-gated transfer in one
session) through the AgentCore boto3 clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import RuntimeProcess, _free_port

from local_runtime import demo_session


@pytest.fixture(scope="module")
def demo_runtime(
    tmp_path_factory: pytest.TempPathFactory, start_lock: Path
) -> Iterator[tuple[RuntimeProcess, int]]:
    advisor_port = _free_port()
    process = RuntimeProcess(
        tmp_path_factory.mktemp("demo-state"),
        start_lock=start_lock,
        extra_args=(
            "--demo",
            "--demo-bank-port",
            str(_free_port()),
            "--demo-advisor-port",
            str(advisor_port),
        ),
    )
    process.start()
    try:
        yield process, advisor_port
    finally:
        process.stop()


def _uses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e["contentBlockStart"]["start"]["toolUse"]
        for e in events
        if "toolUse" in e.get("contentBlockStart", {}).get("start", {})
    ]


def _results(events: list[dict[str, Any]]) -> list[Any]:
    return [
        e["contentBlockDelta"]["delta"]["toolResult"]
        for e in events
        if "toolResult" in e.get("contentBlockDelta", {}).get("delta", {})
    ]


def _stops(events: list[dict[str, Any]]) -> list[str]:
    return [e["messageStop"]["stopReason"] for e in events if "messageStop" in e]


def test_the_demo_session_uses_an_openapi_target_an_mcp_server_and_an_approval(
    demo_runtime: tuple[RuntimeProcess, int],
) -> None:
    process, advisor_port = demo_runtime
    assert process.url is not None
    lines: list[str] = []
    outcome = demo_session.run(process.url, advisor_port, say=lines.append)
    turns = outcome["turns"]

    (fx,) = _uses(turns["fx"])
    assert fx["name"] == "advisor__fx_rate" and fx["type"] == "mcp_tool_use"
    assert any("json" in block and block["json"]["quote"] == "USD" for block in _results(turns["fx"])[0])

    (balance,) = _uses(turns["balance"])
    assert balance["name"] == "demo__bank__getBalance" and balance["serverName"] == "demo"
    assert _results(turns["balance"])[0][0]["json"]["accountId"] == "acc-002"

    held = turns["held"]
    assert _stops(held)[-1] == "tool_use"
    (notice,) = [e["hookEvent"] for e in held if "hookEvent" in e]
    assert notice["name"] == "approval" and "body.amount" in notice["reason"]

    approved = turns["approved"]
    (transfer,) = _results(approved)
    assert transfer[0]["json"]["status"] == "executed" and transfer[0]["json"]["amount"] == 12000
    assert _stops(approved)[-1] == "end_turn"
    # The session printed what a person reads, and no credential.
    printed = "\n".join(lines)
    assert "approval (before_tool_call): waiting for a decision" in printed
    assert "demo__bank__createTransfer" in printed
    assert "Bearer" not in printed and "X-Api-Key" not in json.dumps(outcome)
