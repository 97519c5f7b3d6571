"""A Lambda runtime loop that streams InvokeHarness responses (API Gateway response streaming).

Lambda's managed Python runtime returns a handler's result only when it is complete; response
streaming needs the runtime to send the response as the loop produces it. This function's
``AWS_LAMBDA_EXEC_WRAPPER`` (``exec_wrappers/streaming-bootstrap``) starts this module instead of the managed
runtime's bootstrap: it speaks the Lambda Runtime API itself, one invocation at a time, and
answers each with a streamed HTTP integration response::

    POST /2018-06-01/runtime/invocation/<request id>/response
    Lambda-Runtime-Function-Response-Mode: streaming
    Content-Type: application/vnd.awslambda.http-integration-response
    Transfer-Encoding: chunked
    Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body

    {"statusCode": 200, "headers": {...}}<8 NUL bytes><the body, chunk by chunk>

An error before the first byte is reported through ``/error``; one in the middle of the stream
through the error trailers (the client sees the stream end). API Gateway invokes the function with
InvokeWithResponseStream and passes the chunks on as they arrive.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

RUNTIME_PATH = "/2018-06-01/runtime"
CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\x00" * 8

# (proxy event, context) -> (status, headers, body chunks)
StreamingHandler = Callable[[dict[str, Any], Any], tuple[int, dict[str, str], Iterator[bytes]]]


@dataclass
class RuntimeContext:
    """The attributes of the Lambda context object the handlers and Powertools read."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int
    function_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
    function_version: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", ""))
    memory_limit_in_mb: int = field(
        default_factory=lambda: int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0") or 0)
    )
    log_group_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""))
    log_stream_name: str = field(default_factory=lambda: os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""))
    #: Epoch seconds, the clock ``deadline_ms`` is on.
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(self.clock() * 1000))


class RuntimeApi:
    """The Runtime API at ``host:port`` (``AWS_LAMBDA_RUNTIME_API``); ``clock`` (epoch seconds) is
    what the invocations' contexts measure the time left against."""

    def __init__(self, address: str, *, clock: Callable[[], float] = time.time) -> None:
        host, _, port = address.partition(":")
        self._host = host
        self._port = int(port or 80)
        self._clock = clock

    def _connection(self) -> http.client.HTTPConnection:
        # No timeout: /next blocks until the next invocation arrives.
        return http.client.HTTPConnection(self._host, self._port)

    def next_invocation(self) -> tuple[dict[str, Any], RuntimeContext]:
        connection = self._connection()
        try:
            connection.request("GET", f"{RUNTIME_PATH}/invocation/next")
            response = connection.getresponse()
            body = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
        finally:
            connection.close()
        if "lambda-runtime-trace-id" in headers:
            os.environ["_X_AMZN_TRACE_ID"] = headers["lambda-runtime-trace-id"]
        context = RuntimeContext(
            aws_request_id=headers["lambda-runtime-aws-request-id"],
            invoked_function_arn=headers.get("lambda-runtime-invoked-function-arn", ""),
            deadline_ms=int(headers.get("lambda-runtime-deadline-ms", "0") or 0),
            clock=self._clock,
        )
        event: dict[str, Any] = json.loads(body) if body else {}
        return event, context

    def stream_response(
        self, request_id: str, status: int, headers: dict[str, str], chunks: Iterator[bytes]
    ) -> None:
        """Send the response while ``chunks`` produces it; a failure midway goes in the trailers."""
        connection = self._connection()
        try:
            connection.putrequest("POST", f"{RUNTIME_PATH}/invocation/{request_id}/response")
            connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
            connection.putheader("Content-Type", CONTENT_TYPE)
            connection.putheader("Transfer-Encoding", "chunked")
            connection.putheader(
                "Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
            )
            connection.endheaders()
            prelude = json.dumps({"statusCode": status, "headers": headers}).encode() + PRELUDE_DELIMITER
            _send_chunk(connection, prelude)
            trailers = b""
            try:
                for chunk in chunks:
                    if chunk:
                        _send_chunk(connection, chunk)
            except Exception as error:  # the stream is under way: only the trailers can say it failed
                _log_error(error)
                body = base64.b64encode(json.dumps(_error_body(error)).encode()).decode()
                trailers = (
                    "Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n"
                    f"Lambda-Runtime-Function-Error-Body: {body}\r\n"
                ).encode()
            connection.send(b"0\r\n" + trailers + b"\r\n")
            connection.getresponse().read()
        finally:
            connection.close()

    def report_error(self, request_id: str, error: BaseException) -> None:
        self._post(f"{RUNTIME_PATH}/invocation/{request_id}/error", _error_body(error))

    def report_init_error(self, error: BaseException) -> None:
        self._post(f"{RUNTIME_PATH}/init/error", _error_body(error))

    def _post(self, path: str, body: dict[str, Any]) -> None:
        connection = self._connection()
        try:
            connection.request(
                "POST",
                path,
                body=json.dumps(body).encode(),
                headers={"Lambda-Runtime-Function-Error-Type": body["errorType"]},
            )
            connection.getresponse().read()
        finally:
            connection.close()


def _send_chunk(connection: http.client.HTTPConnection, data: bytes) -> None:
    connection.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def _error_body(error: BaseException) -> dict[str, Any]:
    # The type only: a message may carry request data, and this body reaches Lambda's logs.
    return {
        "errorType": type(error).__name__,
        "errorMessage": "The invocation failed; see the function's log.",
    }


def _log_error(error: BaseException) -> None:
    print(
        json.dumps(
            {"level": "ERROR", "message": "streaming invocation failed", "errorType": type(error).__name__}
        ),
        file=sys.stderr,
        flush=True,
    )
    traceback.print_exception(error, file=sys.stderr)


def serve(api: RuntimeApi, handler: StreamingHandler, invocations: int | None = None) -> None:
    """Answer invocations until the sandbox stops (``invocations``: a number, for tests)."""
    served = 0
    while invocations is None or served < invocations:
        event, context = api.next_invocation()
        served += 1
        try:
            status, headers, chunks = handler(event, context)
        except Exception as error:
            _log_error(error)
            api.report_error(context.aws_request_id, error)
            continue
        api.stream_response(context.aws_request_id, status, headers, chunks)


def main() -> None:
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        from handlers.api import stream_invoke
    except Exception as error:
        _log_error(error)
        api.report_init_error(error)
        raise
    serve(api, stream_invoke)


def _streaming_invoke(event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], Iterator[bytes]]:
    from handlers.api import stream_invoke

    return stream_invoke(event, context)


# What the local runtime's server (and the integration tests' API) call for this function's route,
# streaming like API Gateway; they find it in the module of the function's configured handler.
STREAMING_ROUTES = {("POST", "/harnesses/invoke"): _streaming_invoke}


def handler(event: dict[str, Any], context: Any) -> Any:
    """The configured handler name; never called: the exec wrapper starts ``main`` instead."""
    raise RuntimeError("this function runs runtime_api.streaming.main through its exec wrapper")


if __name__ == "__main__":
    main()
