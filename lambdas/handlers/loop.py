"""The agent loop's Lambda tasks. Each returns ids and counters only; errors propagate as typed
exceptions whose names the state machine's Retry/Catch clauses match."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.dependencies import agent_loop
from handlers.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def load_context(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"])
    return agent_loop().load_context(event["ids"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def call_model(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"])
    return agent_loop().call_model(event["ids"], event["loop"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def authorize_tool_calls(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"])
    return agent_loop().authorize_tool_calls(event["ids"], event["loop"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def await_client(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"])
    return agent_loop().await_client(event["ids"], event["toolUseIds"], event["taskToken"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def finalize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"])
    return agent_loop().finalize(event["ids"], event["loop"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def record_failure(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(invocation_id=event["ids"]["invocationId"])
    logger.warning("invocation failed", extra={"error": event["failure"].get("Error")})
    return agent_loop().record_failure(event["ids"], event["failure"])
