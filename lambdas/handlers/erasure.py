"""Right to erasure: DELETE /actors/{actorId} and GET /actors/{actorId}/erasures/{erasureId}."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.dependencies import erasure
from handlers.http import json_response, register_error_handlers
from handlers.observability import logger, tracer

app = APIGatewayRestResolver()


# Path parameters arrive percent-encoded in the proxy event's path (alice%40example.com).
@app.delete("/actors/<actor_id>")
def erase_actor(actor_id: str) -> Response[str]:
    return json_response(200, {"erasure": erasure().erase(unquote(actor_id))})


@app.get("/actors/<actor_id>/erasures/<erasure_id>")
def get_erasure(actor_id: str, erasure_id: str) -> Response[str]:
    return json_response(200, {"erasure": erasure().receipt(unquote(actor_id), unquote(erasure_id))})


register_error_handlers(app)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
