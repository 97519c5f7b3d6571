"""The agent loop's Lambda tasks. Each returns ids and counters only; errors propagate as typed
exceptions whose names the state machine's Retry/Catch clauses match."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.dependencies import agent_loop
from handlers.observability import logger, tracer
from harness.loop import AgentLoop

Step = Callable[[Any, LambdaContext], Any]


def loop_step(call: Callable[[AgentLoop, Any, LambdaContext], Any]) -> Step:
    """A Lambda handler for one state of the loop, logged and traced with the invocation id.
    Its event is one of ``harness.loop.state``'s step events."""

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: LambdaContext) -> Any:
        logger.append_keys(invocation_id=event["ids"]["invocationId"])
        return call(agent_loop(), event, context)

    return handler


def function_deadline(context: LambdaContext) -> float:
    """When this function times out, on the ``time.monotonic`` clock."""
    return time.monotonic() + context.get_remaining_time_in_millis() / 1000


load_context = loop_step(
    lambda loop, event, context: loop.load_context(event["ids"], function_deadline(context))
)
call_model = loop_step(
    lambda loop, event, context: loop.call_model(event["ids"], event["loop"], function_deadline(context))
)
authorize_tool_calls = loop_step(
    lambda loop, event, context: loop.authorize_tool_calls(
        event["ids"], event["loop"], function_deadline(context)
    )
)
await_client = loop_step(
    lambda loop, event, _: loop.await_client(
        event["ids"], event["toolUseIds"], event["taskToken"], event.get("approvals") or []
    )
)
finalize = loop_step(
    lambda loop, event, context: loop.finalize(event["ids"], event["loop"], function_deadline(context))
)
record_failure = loop_step(
    lambda loop, event, context: loop.record_failure(
        event["ids"], event["failure"], function_deadline(context)
    )
)
