"""Outbound credentials of a gateway target: an API key, OAuth2 client credentials, or SigV4.

Secrets come from the vault through an injected ``SecretLookup`` (vault secret name -> secret
string) and are read when a request is made, never when the configuration is parsed. They are
never logged, and errors name the secret or the endpoint, never a value.

An API key secret is the key as a plain string, or ``{"apiKey": "..."}``. OAuth2 client credentials
(their token client and cache) are ``oauth2_client``; which kind a target's ``auth`` configuration
describes is ``outbound_auth_config``. ``as_httpx_auth`` lends any of them to the MCP client.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from harness.errors import OutboundAuthError
from harness.quiet_logs import QuietWhile
from harness.tools.openapi import PreparedRequest

if TYPE_CHECKING:
    import httpx2

SecretLookup = Callable[[str], str]

# Headers left out of a SigV4 signature: hop-by-hop ones a proxy may change or drop.
_UNSIGNED_HEADERS = {"connection", "keep-alive", "proxy-authorization", "te", "upgrade", "transfer-encoding"}
_SIGV4_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")


class OutboundAuth(ABC):
    @abstractmethod
    def apply(self, request: PreparedRequest) -> PreparedRequest:
        """The request with this target's credentials (a new request; the argument is unchanged)."""

    def invalidate(self) -> bool:
        """Forget a cached credential after the target answered 401; True when a retry with a
        fresh one may succeed."""
        return False

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        """The credential values ``apply`` put into ``request``, for redacting from what a target
        echoes back."""
        return ()


# -- API key -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKeyAuth(OutboundAuth):
    secret_name: str
    location: str  # "header" or "query"
    parameter_name: str
    prefix: str = ""
    secrets: SecretLookup = field(kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.location not in ("header", "query"):
            raise ValueError("apiKey.location must be 'header' or 'query'")
        if not self.parameter_name:
            raise ValueError("apiKey.parameterName must not be empty")

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        value = self.prefix + _api_key(read_secret(self.secrets, self.secret_name))
        if self.location == "header":
            return with_headers(request, {self.parameter_name: value})
        scheme, netloc, path, query, fragment = urlsplit(request.url)
        pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != self.parameter_name]
        url = urlunsplit((scheme, netloc, path, urlencode([*pairs, (self.parameter_name, value)]), fragment))
        return PreparedRequest(request.method, url, dict(request.headers), request.body)

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        if self.location == "header":
            value = header_value(request.headers, self.parameter_name)
        else:
            values = [v for k, v in parse_qsl(urlsplit(request.url).query) if k == self.parameter_name]
            value = values[-1] if values else None
        if not value:
            return ()
        key = value[len(self.prefix) :] if self.prefix and value.startswith(self.prefix) else value
        # As sent in a query string too, in case the target echoes the URL it was called with.
        return tuple(dict.fromkeys(v for v in (key, quote_plus(key)) if v))


def _api_key(secret: str) -> str:
    try:
        document = json.loads(secret)
    except ValueError:
        return secret.strip()
    if isinstance(document, dict) and isinstance(document.get("apiKey"), str):
        return str(document["apiKey"]).strip()
    return secret.strip()


# -- SigV4 -----------------------------------------------------------------------------------------


_aws_credentials: Any = None
_aws_credentials_lock = threading.Lock()


# The canonical request (headers, session token included) never reaches botocore's DEBUG log.
_quiet_signing = QuietWhile("botocore.auth")


def _process_aws_credentials() -> Any:
    """This process's AWS credentials (the Lambda role's); botocore refreshes them as they expire."""
    global _aws_credentials
    with _aws_credentials_lock:
        if _aws_credentials is None:
            import boto3

            _aws_credentials = boto3.session.Session().get_credentials()
        return _aws_credentials


@dataclass(frozen=True)
class SigV4Auth(OutboundAuth):
    service: str
    region: str
    # botocore credentials (anything with get_frozen_credentials); None: the process's own.
    credentials: Any = field(default=None, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.service or not self.region:
            raise ValueError("sigv4 needs 'service' and 'region'")

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        from botocore.auth import SigV4Auth as BotocoreSigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self.credentials or _process_aws_credentials()
        if credentials is None:
            raise OutboundAuthError("no AWS credentials are available to sign the request")
        signed_headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _UNSIGNED_HEADERS and name.lower() not in _SIGV4_HEADERS
        }
        aws_request = AWSRequest(
            method=request.method, url=request.url, data=request.body or b"", headers=signed_headers
        )
        signer = BotocoreSigV4Auth(credentials.get_frozen_credentials(), self.service, self.region)
        with _quiet_signing:
            signer.add_auth(aws_request)
        added = {name: value for name, value in aws_request.headers.items() if name.lower() in _SIGV4_HEADERS}
        return with_headers(request, added)

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        token = header_value(request.headers, "X-Amz-Security-Token")
        return (token,) if token else ()


# -- httpx -------------------------------------------------------------------------------------------


def as_httpx_auth(auth: OutboundAuth) -> httpx2.Auth:
    """``auth`` as an ``httpx2.Auth`` (the HTTP client of the MCP SDK) for the MCP client.

    Each request gets the credentials ``apply`` gives a PreparedRequest of its method, URL,
    headers and body, so SigV4 signs the request exactly as httpx sends it. A 401 answer is
    retried once with a fresh credential when ``invalidate`` says one may help. In an async client
    the credentials are obtained on a worker thread: a token fetch blocks.
    """
    import httpx2

    class OutboundHttpxAuth(httpx2.Auth):
        def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
            request.read()
            _authorize(request, auth.apply(_prepared(request)))
            response = yield request
            if response.status_code == 401 and auth.invalidate():
                _authorize(request, auth.apply(_prepared(request)))
                yield request

        async def async_auth_flow(
            self, request: httpx2.Request
        ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
            import anyio.to_thread

            await request.aread()
            _authorize(request, await anyio.to_thread.run_sync(auth.apply, _prepared(request)))
            response = yield request
            if response.status_code == 401 and auth.invalidate():
                _authorize(request, await anyio.to_thread.run_sync(auth.apply, _prepared(request)))
                yield request

    def _prepared(request: httpx2.Request) -> PreparedRequest:
        headers = dict(request.headers.items())
        return PreparedRequest(request.method, str(request.url), headers, request.content or None)

    def _authorize(request: httpx2.Request, authorized: PreparedRequest) -> None:
        request.url = httpx2.URL(authorized.url)
        for name, value in authorized.headers.items():
            if request.headers.get(name) != value:
                request.headers[name] = value

    return OutboundHttpxAuth()


# -- helpers shared by every kind (OAuth2 in oauth2_client too) ------------------------------------


def read_secret(secrets: SecretLookup, name: str) -> str:
    try:
        value = secrets(name)
    except Exception as error:
        # Whatever the lookup raises, its message stays out: it might quote what it read.
        raise OutboundAuthError(
            f"the secret {name} could not be read from the vault ({type(error).__name__})"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise OutboundAuthError(f"the secret {name} is empty")
    return value


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def with_headers(request: PreparedRequest, added: Mapping[str, str]) -> PreparedRequest:
    """A copy of ``request`` whose headers are replaced (case-insensitively) by ``added``."""
    replaced = {name.lower() for name in added}
    headers = {name: value for name, value in request.headers.items() if name.lower() not in replaced}
    headers.update(added)
    return PreparedRequest(request.method, request.url, headers, request.body)
