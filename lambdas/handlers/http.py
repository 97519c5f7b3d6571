"""Request parsing and error shaping shared by the API handlers (rest-json, as AgentCore speaks it)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from handlers.observability import logger
from harness.errors import (
    CannotParseError,
    HarnessError,
    InternalError,
    PayloadTooLargeError,
    ResourceNotFoundError,
)
from harness.ids import Account

JSON = "application/json"
MAX_BODY_BYTES = 1024 * 1024


def parse_json_body(raw: str | None, required: bool = True) -> dict[str, Any]:
    if raw is None or raw == "":
        if required:
            raise CannotParseError("The request body must be a JSON object.")
        return {}
    if len(raw.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(MAX_BODY_BYTES)
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as error:
        raise CannotParseError(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise CannotParseError("The request body must be a JSON object.")
    return body


def error_response(error: HarnessError) -> Response[str]:
    status, headers, body = error.to_response()
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=headers)


def json_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body))


def account_of(context: Any) -> Account:
    return Account.from_function_arn(context.invoked_function_arn)


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Shape every error as AgentCore does; unexpected ones never show their internals."""

    @app.exception_handler(HarnessError)
    def handle_harness_error(error: HarnessError) -> Response[str]:
        logger.info("request rejected", extra={"error_type": error.error_type})
        return error_response(error)

    @app.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        return error_response(ResourceNotFoundError("No such operation: check the method and path."))

    @app.exception_handler(Exception)
    def handle_unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return error_response(InternalError("The request failed because of an internal error."))
