"""One session with the demo harness (start the runtime with ``--demo`` first).

``python -m local_runtime.demo_session`` creates the demo harness with the AgentCore boto3 clients
and runs four turns in one session, with the offline model's ``/tool`` commands:

1. the advisor's ``fx_rate`` (remote MCP, bearer token from the vault);
2. the bank's ``getBalance`` (gateway OpenAPI target, API key from the vault);
3. the bank's ``createTransfer`` of 12,000: the approval policy holds it, the stream says why;
4. the approval, with a reason, signed by a second principal (access key ``approver``): it is
   written to the audit bucket, then the transfer runs.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import botocore.config

from local_runtime.demo import ADVISOR_PORT, GATEWAY, harness_body
from local_runtime.demo import advisor_url as advisor_url_for

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # the emulator's account
TRANSFER = {
    "fromAccount": "acc-002",
    "toAccount": "acc-001",
    "amount": 12000,
    "currency": "EUR",
    "reference": "demo",
}


def clients(url: str, access_key: str = "local") -> tuple[Any, Any]:
    kw: dict[str, Any] = {
        "region_name": REGION,
        "endpoint_url": url,
        # The local runtime checks that requests are signed (any key signs) and takes the key id
        # as the caller: an approval must come from another one than the turn's.
        "aws_access_key_id": access_key,
        "aws_secret_access_key": "local",
        "config": botocore.config.Config(retries={"max_attempts": 1}, read_timeout=120),
    }
    return boto3.client("bedrock-agentcore-control", **kw), boto3.client("bedrock-agentcore", **kw)


def _events(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in response["stream"]]


def describe(events: list[dict[str, Any]]) -> list[str]:
    """The turn as lines a person reads: tool calls, results, hook events, text, stop reason."""
    lines: list[str] = []
    text = ""
    for event in events:
        start = event.get("contentBlockStart", {}).get("start", {})
        delta = event.get("contentBlockDelta", {}).get("delta", {})
        if "toolUse" in start:
            use = start["toolUse"]
            where = f" on {use['serverName']}" if "serverName" in use else ""
            lines.append(f"  model calls {use['name']}{where} ({use['toolUseId']})")
        elif "toolResult" in start:
            lines.append(f"  tool result: {start['toolResult'].get('status', 'success')}")
        elif "toolResult" in delta:
            lines.append("    " + json.dumps(delta["toolResult"])[:200])
        elif "text" in delta:
            text += delta["text"]
        elif "hookEvent" in event:
            hook = event["hookEvent"]
            decision = hook.get("decision", "waiting for a decision")
            lines.append(f"  {hook['name']} ({hook['type']}): {decision} - {hook.get('reason', '')}")
        elif "messageStop" in event:
            if text:
                lines.append(f"  model says: {text}")
                text = ""
            lines.append(f"  stop: {event['messageStop']['stopReason']}")
    return lines


def run(url: str, advisor_port: int = ADVISOR_PORT, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo session; returns what happened (for the end-to-end test)."""
    control, data = clients(url)
    _, approver = clients(url, access_key="approver")
    name = f"demo_{uuid.uuid4().hex[:8]}"
    harness = control.create_harness(**harness_body(name, advisor_url_for(advisor_port), REGION, ACCOUNT_ID))
    harness_arn = harness["harness"]["arn"]
    session = f"demo-session-{uuid.uuid4()}"
    say(f"Harness {harness_arn}, session {session}")

    def turn(title: str, messages: list[dict[str, Any]], client: Any = data) -> list[dict[str, Any]]:
        say(title)
        events = _events(
            client.invoke_harness(harnessArn=harness_arn, runtimeSessionId=session, messages=messages)
        )
        for line in describe(events):
            say(line)
        return events

    def user(text: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"text": text}]}]

    fx = turn(
        "1. Exchange rate (advisor, remote MCP):",
        user('/tool advisor__fx_rate {"base": "EUR", "quote": "USD"}'),
    )
    balance = turn(
        "2. Balance (bank, gateway OpenAPI target):",
        user(f'/tool {GATEWAY}__bank__getBalance {{"accountId": "acc-002"}}'),
    )
    held = turn(
        "3. Transfer of 12,000 (held for approval):",
        user(f"/tool {GATEWAY}__bank__createTransfer " + json.dumps({"body": TRANSFER})),
    )
    pending = [
        e["contentBlockStart"]["start"]["toolUse"]["toolUseId"]
        for e in held
        if "toolUse" in e.get("contentBlockStart", {}).get("start", {})
    ]
    answer = {
        "toolUseId": pending[-1],
        "status": "success",
        "content": [{"json": {"decision": "approve", "reason": "Confirmed with the customer by phone"}}],
    }
    approved = turn(
        "4. Approval by a second principal (audited before the transfer runs):",
        [{"role": "user", "content": [{"toolResult": answer}]}],
        approver,
    )
    return {
        "harnessArn": harness_arn,
        "sessionId": session,
        "turns": {"fx": fx, "balance": balance, "held": held, "approved": approved},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime.demo_session", description=__doc__)
    parser.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the local runtime (default port 8000)"
    )
    parser.add_argument(
        "--advisor-port", type=int, default=ADVISOR_PORT, help="the advisor's port (default 8002)"
    )
    args = parser.parse_args(argv)
    run(args.url, args.advisor_port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
