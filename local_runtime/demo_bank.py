"""A demo bank REST API on 127.0.0.1, for the local demo of the governed gateway and for its tests.

It serves the OpenAPI 3 document ``demo_bank.openapi.json`` (next to this file; the harness's
gateway configuration names that file) at ``GET /openapi.json``, with ``servers`` set to where it
listens, and its operations:

- ``listAccounts``    GET  /accounts[?currency=EUR]
- ``getBalance``      GET  /accounts/{accountId}/balance
- ``createTransfer``  POST /transfers  {fromAccount, toAccount, amount, currency, reference}

Credentials, as constructed: an API key (``X-Api-Key`` header, or ``api_key`` query parameter),
and/or OAuth2 client credentials (``POST /oauth/token``, client authentication by HTTP Basic,
tokens valid ``token_expires_in`` seconds), and/or SigV4 (the signature is verified with the
given access key pair, as API Gateway's IAM auth would). With none of them, it is open.

``POST /transfers`` honours ``Idempotency-Key``: a repeated key returns the first transfer
(``Idempotent-Replayed: true``) without transferring again; the same key with another body is
refused (422). ``executed_transfers`` counts the transfers actually made.

Faults for tests: ``fail_next(n, status, retry_after)`` answers the next n API requests with that
status (before doing anything); ``delay_next(n, seconds)`` does the work of the next n API
requests and only then waits before answering (an answer lost to a client timeout). Each call
replaces the faults of its kind still pending; ``fail_next(0)`` clears them. ``requests`` records
every request (``api_requests()`` those to the operations).
``revoke_tokens()`` invalidates every issued token.

``python -m local_runtime.demo_bank --port 8001`` runs it until interrupted, with credentials
from ``DEMO_BANK_API_KEY`` and/or ``DEMO_BANK_CLIENT_ID`` + ``DEMO_BANK_CLIENT_SECRET``
(``DEMO_BANK_TOKEN_EXPIRES_IN`` seconds, default 3600).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote_plus, urlsplit

DOCUMENT_PATH = Path(__file__).with_name("demo_bank.openapi.json")
DOCUMENT: dict[str, Any] = json.loads(DOCUMENT_PATH.read_text())

_OPENING_ACCOUNTS = {
    "acc-001": ("Everyday account", "EUR", Decimal("1250.00")),
    "acc-002": ("Savings account", "EUR", Decimal("60000.00")),
    "acc-003": ("Travel account", "GBP", Decimal("320.50")),
}
_BALANCE_PATH = re.compile(r"/accounts/(?P<account>[^/]+)/balance")
_SIGV4_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)
_CURRENCY = re.compile(r"[A-Z]{3}")


def openapi_document(url: str | None = None) -> dict[str, Any]:
    """The bank's OpenAPI document; with ``url``, its ``servers`` name that address."""
    document = copy.deepcopy(DOCUMENT)
    if url is not None:
        document["servers"] = [{"url": url}]
    return document


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    raw_query: str = ""
    received_at: float = field(default_factory=time.time)  # wall-clock time, as S3 and logs show it


@dataclass
class _Account:
    name: str
    currency: str
    balance: Decimal


@dataclass
class _Fault:
    status: int
    retry_after: float | None


@dataclass
class _Transfers:
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Idempotency-Key -> (the request body, the transfer it made)
    by_key: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)


class DemoBank:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_expires_in: int = 3600,
        sigv4_credentials: tuple[str, str] | None = None,
        port: int = 0,
    ) -> None:
        if (client_id is None) != (client_secret is None):
            raise ValueError("client_id and client_secret go together")
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_expires_in = token_expires_in
        self.sigv4_credentials = sigv4_credentials
        self.requests: list[Received] = []
        self.token_requests: list[dict[str, str]] = []
        self.executed_transfers = 0
        self._accounts = {key: _Account(*value) for key, value in _OPENING_ACCOUNTS.items()}
        self._transfers = _Transfers()
        self._tokens: dict[str, float] = {}
        self._faults: list[_Fault] = []
        self._delays: list[float] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        # A short poll interval: stop() returns within it (tests start and stop many banks).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="demo-bank", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def tokens_issued(self) -> int:
        return len(self.token_requests)

    def start(self) -> DemoBank:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoBank:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- faults and state for tests -----------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next ``count`` API requests with ``status``; replaces the failures still
        pending (``fail_next(0)`` clears them)."""
        with self._lock:
            self._faults = [_Fault(status, retry_after) for _ in range(count)]

    def delay_next(self, count: int, seconds: float) -> None:
        """Answer the next ``count`` API requests ``seconds`` late, after doing their work; replaces
        the delays still pending (``delay_next(0, 0)`` clears them)."""
        with self._lock:
            self._delays = [seconds for _ in range(count)]

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def balance(self, account_id: str) -> Decimal:
        with self._lock:
            return self._accounts[account_id].balance

    def api_requests(self) -> list[Received]:
        """The requests to the API's operations (not to /openapi.json or /oauth/token)."""
        return [r for r in self.requests if r.path not in ("/openapi.json", "/oauth/token")]

    # -- handling --------------------------------------------------------------------------------

    def handle(self, received: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, extra headers) of one request, and the delay before answering."""
        with self._lock:
            self.requests.append(received)
        if received.path == "/openapi.json" and received.method == "GET":
            return 200, openapi_document(self.url), {}
        if received.path == "/oauth/token":
            return self._token(received)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return fault.status, {"error": f"injected failure (HTTP {fault.status})"}, headers
        if not self._authorized(received):
            return 401, {"error": "missing or invalid credentials"}, {"WWW-Authenticate": "Bearer"}
        return self._operation(received)

    def delay_before_answering(self, received: Received) -> None:
        if received.path in ("/openapi.json", "/oauth/token"):
            return
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            self._stopping.wait(delay)

    def _token(self, received: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        if received.method != "POST":
            return 405, {"error": "method not allowed"}, {}
        if self.client_id is None or self.client_secret is None:
            return 404, {"error": "this bank issues no tokens"}, {}
        form = dict(parse_qsl(received.body.decode("utf-8", errors="replace")))
        with self._lock:
            self.token_requests.append(form)
        if not self._basic_client_matches(received.headers.get("authorization", "")):
            return 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="demo-bank"'}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, {}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_expires_in
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_expires_in}
        if form.get("scope"):
            body["scope"] = form["scope"]
        return 200, body, {"Cache-Control": "no-store"}

    def _basic_client_matches(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            return False
        client_id, _, client_secret = decoded.partition(":")
        return hmac.compare_digest(unquote_plus(client_id), self.client_id or "") and hmac.compare_digest(
            unquote_plus(client_secret), self.client_secret or ""
        )

    def _authorized(self, received: Received) -> bool:
        if self.api_key is None and self.client_id is None and self.sigv4_credentials is None:
            return True
        if self.api_key is not None:
            offered = received.headers.get("x-api-key") or (received.query.get("api_key") or [""])[0]
            if offered and hmac.compare_digest(offered, self.api_key):
                return True
        if self.client_id is not None:
            scheme, _, token = received.headers.get("authorization", "").partition(" ")
            with self._lock:
                expires_at = self._tokens.get(token)
            if scheme.lower() == "bearer" and expires_at is not None and time.monotonic() < expires_at:
                return True
        return self.sigv4_credentials is not None and self._sigv4_valid(received)

    def _sigv4_valid(self, received: Received) -> bool:
        """Recomputes the request's SigV4 signature, as API Gateway's IAM authorization does."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        assert self.sigv4_credentials is not None
        match = _SIGV4_AUTHORIZATION.fullmatch(received.headers.get("authorization", ""))
        amz_date = received.headers.get("x-amz-date", "")
        access_key, secret_key = self.sigv4_credentials
        if match is None or match["key"] != access_key or not amz_date.startswith(match["date"]):
            return False
        signed = match["headers"].split(";")
        if "host" not in signed or any(name not in received.headers for name in signed):
            return False
        query = f"?{received.raw_query}" if received.raw_query else ""
        url = f"http://{received.headers['host']}{received.path}{query}"
        request = AWSRequest(
            method=received.method,
            url=url,
            data=received.body,
            headers={name: received.headers[name] for name in signed},
        )
        request.context["timestamp"] = amz_date
        token = received.headers.get("x-amz-security-token")
        signer = SigV4Auth(Credentials(access_key, secret_key, token), match["service"], match["region"])
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        return hmac.compare_digest(expected, match["signature"])

    def _operation(self, received: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        if received.path == "/accounts":
            if received.method != "GET":
                return 405, {"error": "method not allowed"}, {}
            currencies = received.query.get("currency")
            currency = currencies[0] if currencies else None
            with self._lock:
                accounts = [
                    {"accountId": key, "name": account.name, "currency": account.currency}
                    for key, account in self._accounts.items()
                    if currency is None or account.currency == currency
                ]
            return 200, {"accounts": accounts}, {}
        balance = _BALANCE_PATH.fullmatch(received.path)
        if balance is not None:
            if received.method != "GET":
                return 405, {"error": "method not allowed"}, {}
            with self._lock:
                account = self._accounts.get(balance["account"])
                if account is None:
                    return 404, {"error": f"no account {balance['account']}"}, {}
                return (
                    200,
                    {
                        "accountId": balance["account"],
                        "balance": float(account.balance),
                        "currency": account.currency,
                    },
                    {},
                )
        if received.path == "/transfers":
            if received.method != "POST":
                return 405, {"error": "method not allowed"}, {}
            return self._transfer(received)
        return 404, {"error": "not found"}, {}

    def _transfer(self, received: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            request = json.loads(received.body)
        except ValueError:
            return 400, {"error": "the body must be JSON"}, {}
        problem = _transfer_problem(request)
        if problem:
            return 400, {"error": problem}, {}
        key = received.headers.get("idempotency-key")
        with self._lock:
            if key is not None and key in self._transfers.by_key:
                first_request, transfer = self._transfers.by_key[key]
                if first_request != request:
                    return 422, {"error": "this Idempotency-Key was used for another request"}, {}
                return 201, transfer, {"Idempotent-Replayed": "true"}
            source = self._accounts.get(request["fromAccount"])
            destination = self._accounts.get(request["toAccount"])
            if source is None or destination is None:
                return 404, {"error": "no such account"}, {}
            amount = Decimal(str(request["amount"]))
            if request["currency"] != source.currency or source.currency != destination.currency:
                return 422, {"error": "the currency must be that of both accounts"}, {}
            if source.balance < amount:
                return 422, {"error": "insufficient funds"}, {}
            source.balance -= amount
            destination.balance += amount
            self.executed_transfers += 1
            transfer = {
                "transferId": f"tr-{self.executed_transfers:06d}",
                "status": "executed",
                "fromAccount": request["fromAccount"],
                "toAccount": request["toAccount"],
                "amount": float(amount),
                "currency": request["currency"],
                "reference": request.get("reference"),
            }
            self._transfers.by_id[transfer["transferId"]] = transfer
            if key is not None:
                self._transfers.by_key[key] = (request, transfer)
        return 201, transfer, {}


def _transfer_problem(request: Any) -> str | None:
    if not isinstance(request, dict):
        return "the body must be a JSON object"
    for name in ("fromAccount", "toAccount", "currency"):
        if not isinstance(request.get(name), str) or not request[name]:
            return f"{name} is required"
    if request["fromAccount"] == request["toAccount"]:
        return "fromAccount and toAccount must differ"
    if not _CURRENCY.fullmatch(request["currency"]):
        return "currency must be an ISO 4217 code such as EUR"
    amount = request.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return "amount must be a number"
    try:
        exact = Decimal(str(amount))
    except InvalidOperation:
        return "amount must be a number"
    if exact <= 0 or exact != exact.quantize(Decimal("0.01")):
        return "amount must be positive, with at most two decimals"
    reference = request.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 140):
        return "reference must be a string of at most 140 characters"
    unknown = set(request) - {"fromAccount", "toAccount", "amount", "currency", "reference"}
    if unknown:
        return f"unknown fields: {', '.join(sorted(unknown))}"
    return None


def _handler(bank: DemoBank) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "DemoBank/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests and the demo print what matters themselves

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            received = Received(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                raw_query=parts.query,
            )
            status, document, headers = bank.handle(received)
            bank.delay_before_answering(received)
            payload = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up waiting (a timeout test)

    return Handler


def serve(
    api_key: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    port: int = 0,
    *,
    token_expires_in: int = 3600,
    sigv4_credentials: tuple[str, str] | None = None,
) -> DemoBank:
    """A running demo bank on 127.0.0.1 (port 0: any free port); stop it, or use it in ``with``."""
    return DemoBank(
        api_key=api_key,
        client_id=client_id,
        client_secret=client_secret,
        token_expires_in=token_expires_in,
        sigv4_credentials=sigv4_credentials,
        port=port,
    ).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_runtime.demo_bank", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (default 8001)")
    args = parser.parse_args(argv)
    api_key = os.environ.get("DEMO_BANK_API_KEY") or None
    client_id = os.environ.get("DEMO_BANK_CLIENT_ID") or None
    client_secret = os.environ.get("DEMO_BANK_CLIENT_SECRET") or None
    if api_key is None and (client_id is None or client_secret is None):
        print(
            "set DEMO_BANK_API_KEY, or DEMO_BANK_CLIENT_ID and DEMO_BANK_CLIENT_SECRET (or all three)",
            file=sys.stderr,
        )
        return 2
    bank = serve(
        api_key,
        client_id if client_secret else None,
        client_secret if client_id else None,
        args.port,
        token_expires_in=int(os.environ.get("DEMO_BANK_TOKEN_EXPIRES_IN") or 3600),
    )
    print(f"demo bank on {bank.url} (OpenAPI document at {bank.url}/openapi.json); Ctrl-C stops it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        bank.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
