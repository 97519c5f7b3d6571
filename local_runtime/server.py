"""The HTTP front door of the local runtime: the template's API Gateway routes on 127.0.0.1.

Like API Gateway it checks IAM-signed requests are signed (it cannot verify signatures without
IAM, so it checks an AWS SigV4 Authorization header is present), enforces the template's required
request parameters, builds the REST proxy event and calls the route's Lambda handler in-process.
InvokeHarness streams: events are written to the connection as the loop produces them.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_runtime.lambda_dispatch import context_for, load_handler
from local_runtime.provision import Deployment, Route

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


def _error(status: int, error_type: str, message: str, **extra: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"message": message, **extra}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}, body


def _claimed_identity(headers: dict[str, str]) -> dict[str, str]:
    """The signer's access key id, marked unverified: without IAM the signature cannot be checked
    (API Gateway puts the verified principal in ``userArn`` and ``caller``)."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    match = re.search(r"Credential=([^/,\s]+)/", authorization)
    return {"caller": f"unverified:{match.group(1)}", "accessKey": match.group(1)} if match else {}


def _proxy_event(
    method: str,
    route: Route,
    path: str,
    path_params: dict[str, str],
    query: dict[str, list[str]],
    headers: dict[str, str],
    body: bytes,
) -> dict[str, Any]:
    text = body.decode("utf-8", errors="replace") if body else None
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        # API Gateway decodes path parameters; the path itself stays as sent.
        "pathParameters": {name: unquote(value) for name, value in path_params.items()} or None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "v1",
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "identity": {"sourceIp": "127.0.0.1", **_claimed_identity(headers)},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def make_server(deployment: Deployment, port: int, on_change: Callable[[], None]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agent-harness-local"

        def log_message(self, format: str, *args: Any) -> None:
            # One line per request, without query strings or bodies (they may carry personal data).
            print(
                f"{self.command} {urlsplit(self.path).path} -> {args[1] if len(args) > 1 else ''}", flush=True
            )

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def _handle(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_REQUEST_BYTES:
                self._send(
                    *_error(413, "ValidationException", "Request body is too large.", reason="CannotParse")
                )
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            try:
                result = self._dispatch(body)
            except Exception:  # the runtime's own fault: never a hang, never internals
                import traceback

                traceback.print_exc()
                result = _error(
                    500, "InternalServerException", "The local runtime failed to handle the request."
                )
            if isinstance(result[2], bytes):
                self._send(*result)  # type: ignore[arg-type]
            else:
                self._send_stream(*result)  # type: ignore[arg-type]
            if self.command != "GET":
                on_change()

        def _dispatch(self, body: bytes) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
            url = urlsplit(self.path)
            found = deployment.route_for(self.command, url.path)
            if found is None:
                return _error(404, "ResourceNotFoundException", f"No route for {self.command} {url.path}.")
            route, path_params = found
            headers = {name: value for name, value in self.headers.items()}
            lowered = {name.lower(): value for name, value in headers.items()}
            if route.authorization_type == "AWS_IAM" and not lowered.get("authorization", "").startswith(
                "AWS4-HMAC-SHA256"
            ):
                return _error(
                    403, "AccessDeniedException", "Missing Authentication Token: sign the request with SigV4."
                )
            query = parse_qs(url.query, keep_blank_values=True)
            missing = []
            for parameter in route.required_parameters:
                _, _, location, name = parameter.split(".", 3)
                present = name in query if location == "querystring" else name.lower() in lowered
                if not present:
                    missing.append(name)
            if missing:
                return _error(
                    400,
                    "ValidationException",
                    f"Missing required request parameters: [{', '.join(missing)}]",
                    reason="FieldValidationFailed",
                )
            function = deployment.functions[route.function_logical_id]
            event = _proxy_event(self.command, route, url.path, path_params, query, headers, body)
            handler_module = importlib.import_module(function["handler"].rpartition(".")[0])
            streaming = getattr(handler_module, "STREAMING_ROUTES", {}).get((self.command, route.path))
            if streaming:
                status, response_headers, chunks = streaming(event, context_for(function))
                return status, response_headers, chunks
            response = load_handler(function["handler"])(event, context_for(function))
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
            response_headers = dict(response.get("headers") or {})
            for name, values in (response.get("multiValueHeaders") or {}).items():
                response_headers[name] = ",".join(values)
            return int(response["statusCode"]), response_headers, data

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_stream(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in chunks:
                    if chunk:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away; the loop carries on regardless

    server = _QuietServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        # A client that hangs up mid-request is routine, not a fault worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="local-api", daemon=True)
    thread.start()
    return thread
