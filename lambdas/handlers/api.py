"""The harness API: the AgentCore control-plane harness operations and InvokeHarness."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import dependencies
from handlers.http import account_of, json_response, parse_json_body, register_error_handlers
from handlers.observability import logger, tracer
from harness import contract
from harness.errors import HarnessError, InternalError
from harness.invocations import InvocationStream
from harness.wire import eventstream, sse

app = APIGatewayRestResolver()

# Leave API Gateway's integration timeout a margin to flush the buffered stream.
RESPONSE_MARGIN_MS = 2500


def _query(name: str) -> str | None:
    value: str | None = app.current_event.get_query_string_value(name)
    return value


def _definitions() -> Any:
    return dependencies.definitions(account_of(app.lambda_context))


@app.post("/harnesses")
def create_harness() -> Response[str]:
    record = _definitions().create(parse_json_body(app.current_event.decoded_body))
    return json_response(201, {"harness": record})


@app.get("/harnesses")
def list_harnesses() -> Response[str]:
    return json_response(200, _definitions().list(_query("maxResults"), _query("nextToken")))


@app.get("/harnesses/<harness_id>")
def get_harness(harness_id: str) -> Response[str]:
    return json_response(200, {"harness": _definitions().get(harness_id, _query("harnessVersion"))})


@app.patch("/harnesses/<harness_id>")
def update_harness(harness_id: str) -> Response[str]:
    body = parse_json_body(app.current_event.decoded_body)
    return json_response(200, {"harness": _definitions().update(harness_id, body)})


@app.delete("/harnesses/<harness_id>")
def delete_harness(harness_id: str) -> Response[str]:
    return json_response(200, {"harness": _definitions().delete(harness_id, _query("deleteManagedMemory"))})


@app.get("/harnesses/<harness_id>/versions")
def list_harness_versions(harness_id: str) -> Response[str]:
    return json_response(
        200, _definitions().list_versions(harness_id, _query("maxResults"), _query("nextToken"))
    )


def _invoke_params(event: Any) -> dict[str, Any]:
    """InvokeHarness's query string and header members that were sent, by member name."""
    locations = contract.location_members(contract.DATA_SERVICE, "InvokeHarness")
    params: dict[str, Any] = {}
    for member, (location, wire_name) in locations.items():
        if location == "header":
            value = event.headers.get(wire_name)
        else:
            value = event.get_query_string_value(wire_name)
        if value is not None:
            params[member] = value
    return params


def _caller(event: Any) -> str | None:
    """The IAM principal API Gateway authenticated (SigV4): who answered an approval."""
    identity = (event.raw_event.get("requestContext") or {}).get("identity") or {}
    caller = identity.get("userArn") or identity.get("caller")
    return str(caller) if caller else None


def _open_stream(event: Any, context: Any) -> InvocationStream:
    body = parse_json_body(event.decoded_body)
    return dependencies.invocations(account_of(context)).invoke(body, _invoke_params(event), _caller(event))


def _encoder(accept: str | None) -> tuple[str, Any]:
    if accept and sse.CONTENT_TYPE in accept:
        return sse.CONTENT_TYPE, sse.encode_sse
    return eventstream.CONTENT_TYPE, eventstream.encode_stream_item


register_error_handlers(app)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


def stream_invoke(event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], Iterator[bytes]]:
    """InvokeHarness, streamed: events are sent as the loop writes them instead of being buffered
    into one response (on AWS through runtime_api.streaming; locally by the runtime's server)."""
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    proxy_event = APIGatewayProxyEvent(event)
    try:
        stream = _open_stream(proxy_event, context)
    except Exception as error:
        known = error if isinstance(error, HarnessError) else None
        if known is None:
            logger.exception("unexpected error")
            known = InternalError("The request failed because of an internal error.")
        status, headers, body = known.to_response()
        return status, headers | {"Content-Type": "application/json"}, iter([json.dumps(body).encode()])
    content_type, encode = _encoder(proxy_event.headers.get("accept"))
    # The stream ends (partial_turn) before the function's time does; the loop goes on.
    deadline = time.monotonic() + max(
        1.0, (context.get_remaining_time_in_millis() - RESPONSE_MARGIN_MS) / 1000
    )
    return (
        200,
        {"Content-Type": content_type, "x-amzn-invocation-id": stream.invocation_id},
        (encode(item) for item in stream.events(deadline=deadline)),
    )
