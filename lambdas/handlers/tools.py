"""Tool dispatch: run one tool call of a model turn (a Map iteration of the agent loop)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.dependencies import agent_loop
from handlers.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def run_tool(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"], tool_use_id=event["toolUseId"])
    return agent_loop().run_tool(event["ids"], event["toolUseId"])
