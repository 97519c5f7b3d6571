"""A Lambda hook never outlives the step that runs it: its timeout is cut to the time left."""

from __future__ import annotations

import io
import time
from typing import Any

from harness.hooks import HookRunner, HookSpec

ARN = "arn:aws:lambda:us-east-1:123456789012:function:harness-hook-slow"
PAYLOAD = {
    "harnessId": "h-0123456789",
    "harnessVersion": 1,
    "invocationId": "inv",
    "sessionId": "session",
    "toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {}},
}


def test_a_lambda_hook_gets_no_more_time_than_its_step_has_left() -> None:
    timeouts: list[int] = []

    def invoke(arn: str, payload: bytes, timeout: int) -> dict[str, Any]:
        timeouts.append(timeout)
        return {"Payload": io.BytesIO(b'{"decision": "allow"}')}

    runner = HookRunner(invoke_lambda=invoke)
    spec = HookSpec("slow", "beforeToolCall", "lambda", ARN, timeout_seconds=900)
    now = time.monotonic()
    (allowed,) = runner.run([spec], "beforeToolCall", PAYLOAD, deadline=now + 60)
    assert allowed.decision == "allow" and 50 <= timeouts[-1] <= 55
    (unbounded,) = runner.run([spec], "beforeToolCall", PAYLOAD)
    assert unbounded.decision == "allow" and timeouts[-1] == 900
    # No time left: the hook is not started and its failureMode (deny for a before-hook) applies.
    (late,) = runner.run([spec], "beforeToolCall", PAYLOAD, deadline=time.monotonic() + 3)
    assert late.decision == "deny" and "NoTimeLeft" in (late.reason or "")
    assert len(timeouts) == 2
