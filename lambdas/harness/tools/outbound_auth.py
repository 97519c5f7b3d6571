"""Outbound credentials of a gateway target: an API key, OAuth2 client credentials, or SigV4.

Secrets come from the vault through an injected ``SecretLookup`` (vault secret name -> secret
string) and are read when a request is made, never when the configuration is parsed. They are
never logged, and errors name the secret or the endpoint, never a value.

Configuration (a target's ``auth``), exactly one member::

    {"apiKey": {"secret": "bank/api-key", "location": "header", "parameterName": "X-Api-Key", "prefix": ""}}
    {"oauth2": {"tokenUrl": "https://idp.example/oauth/token", "secret": "bank/oauth-client",
                "scopes": ["payments"], "audience": "https://bank.example"}}
    {"sigv4": {"service": "execute-api", "region": "eu-west-1"}}
    null, or {"none": {}}

An API key secret is the key as a plain string, or ``{"apiKey": "..."}``. An OAuth2 secret is
``{"clientId": "...", "clientSecret": "..."}``; the client authenticates to the token endpoint with
HTTP Basic (RFC 6749 2.3.1), and the token endpoint must be https (plain http only on loopback,
for local runs). Access tokens are cached in this process (a warm Lambda), shared by every
instance, per (token URL, client secret name, scopes, audience), until ``expires_in`` less a safety
margin.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
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

# A token is used until this long before it expires (at most half its lifetime), so that it does
# not expire between being read from the cache and reaching the target.
TOKEN_SAFETY_MARGIN_SECONDS = 60.0
# A token response without expires_in (it is optional) is cached this long.
DEFAULT_TOKEN_SECONDS = 300.0
TOKEN_TIMEOUT_SECONDS = 10.0
_MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
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
        value = self.prefix + _api_key(_read_secret(self.secrets, self.secret_name))
        if self.location == "header":
            return _with_headers(request, {self.parameter_name: value})
        scheme, netloc, path, query, fragment = urlsplit(request.url)
        pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != self.parameter_name]
        url = urlunsplit((scheme, netloc, path, urlencode([*pairs, (self.parameter_name, value)]), fragment))
        return PreparedRequest(request.method, url, dict(request.headers), request.body)

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        if self.location == "header":
            value = _header(request.headers, self.parameter_name)
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


# -- OAuth2 client credentials ----------------------------------------------------------------------


@dataclass
class _Token:
    value: str
    expires_at: float


_tokens: dict[tuple[str, str, tuple[str, ...], str | None], _Token] = {}
_fetching: dict[tuple[str, str, tuple[str, ...], str | None], threading.Lock] = {}
_tokens_lock = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached access token of this process (tests; a rotated client)."""
    with _tokens_lock:
        _tokens.clear()


@dataclass(frozen=True)
class OAuth2ClientCredentials(OutboundAuth):
    token_url: str
    secret_name: str
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    secrets: SecretLookup = field(kw_only=True, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, kw_only=True, repr=False, compare=False)
    timeout_seconds: float = field(default=TOKEN_TIMEOUT_SECONDS, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", tuple(self.scopes))
        problem = _token_url_problem(self.token_url)
        if problem:
            raise ValueError(f"oauth2.tokenUrl {problem}")

    @property
    def _cache_key(self) -> tuple[str, str, tuple[str, ...], str | None]:
        return (self.token_url, self.secret_name, self.scopes, self.audience)

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        return _with_headers(request, {"Authorization": f"Bearer {self.access_token()}"})

    def access_token(self) -> str:
        """The cached access token, or a new one from the token endpoint when it has expired."""
        key = self._cache_key
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached is not None and self.clock() < cached.expires_at:
                return cached.value
            fetching = _fetching.setdefault(key, threading.Lock())
        # One fetch per client at a time: concurrent calls wait for it rather than each fetch.
        with fetching:
            with _tokens_lock:
                cached = _tokens.get(key)
                if cached is not None and self.clock() < cached.expires_at:
                    return cached.value
            token = self._fetch()
            with _tokens_lock:
                _tokens[key] = token
            return token.value

    def invalidate(self) -> bool:
        with _tokens_lock:
            _tokens.pop(self._cache_key, None)
        return True

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        value = _header(request.headers, "Authorization") or ""
        scheme, _, token = value.partition(" ")
        return (token,) if scheme.lower() == "bearer" and token else ()

    def _fetch(self) -> _Token:
        client_id, client_secret = self._client()
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience:
            form["audience"] = self.audience
        basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()).decode()
        headers = {
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        endpoint = _safe_url(self.token_url)
        started = self.clock()
        try:
            status, body = _post(self.token_url, urlencode(form).encode(), headers, self.timeout_seconds)
        except TimeoutError:
            raise OutboundAuthError(f"the token endpoint {endpoint} did not answer in time") from None
        except (OSError, http.client.HTTPException) as error:
            raise OutboundAuthError(
                f"the token endpoint {endpoint} could not be reached ({type(error).__name__})"
            ) from None
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if status != 200:
            code = document.get("error") if isinstance(document, dict) else None
            detail = f" ({code})" if isinstance(code, str) and code.replace("_", "").isalpha() else ""
            raise OutboundAuthError(f"the token endpoint {endpoint} answered HTTP {status}{detail}")
        token = document.get("access_token") if isinstance(document, dict) else None
        token_type = document.get("token_type", "Bearer") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token or str(token_type).lower() != "bearer":
            raise OutboundAuthError(f"the token endpoint {endpoint} returned no bearer access_token")
        lifetime = document.get("expires_in") if isinstance(document, dict) else None
        seconds = DEFAULT_TOKEN_SECONDS
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
            seconds = float(lifetime)
        return _Token(token, started + seconds - min(TOKEN_SAFETY_MARGIN_SECONDS, seconds / 2))

    def _client(self) -> tuple[str, str]:
        secret = _read_secret(self.secrets, self.secret_name)
        try:
            document = json.loads(secret)
        except ValueError:
            document = None
        client = document if isinstance(document, dict) else {}
        client_id, client_secret = client.get("clientId"), client.get("clientSecret")
        if isinstance(client_id, str) and isinstance(client_secret, str) and client_id and client_secret:
            return client_id, client_secret
        raise OutboundAuthError(f"the secret {self.secret_name} must be JSON with clientId and clientSecret")


def _token_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL"
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        return "must be https (a client secret is never sent in the clear; http is for 127.0.0.1 only)"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """One POST, without following redirects (they would carry the client's credentials on)."""
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(_MAX_TOKEN_RESPONSE_BYTES)
    finally:
        connection.close()


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
        return _with_headers(request, added)

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        token = _header(request.headers, "X-Amz-Security-Token")
        return (token,) if token else ()


# -- configuration -----------------------------------------------------------------------------------


_CONFIG_KEYS = {
    "apiKey": {"secret", "location", "parameterName", "prefix"},
    "oauth2": {"tokenUrl", "secret", "scopes", "audience"},
    "sigv4": {"service", "region"},
    "none": set(),
}


def auth_from_config(config: dict[str, Any] | None, secrets: SecretLookup) -> OutboundAuth | None:
    """The outbound auth a target's ``auth`` configuration describes (None: no credentials).
    ValueError names what is wrong; no secret is read here."""
    if config is None:
        return None
    if not isinstance(config, dict) or len(config) != 1 or next(iter(config)) not in _CONFIG_KEYS:
        raise ValueError(f"auth must be null or an object with exactly one of {', '.join(_CONFIG_KEYS)}")
    kind, body = next(iter(config.items()))
    if not isinstance(body, dict):
        raise ValueError(f"auth.{kind} must be an object")
    unknown = set(body) - _CONFIG_KEYS[kind]
    if unknown:
        raise ValueError(f"auth.{kind} has unknown keys {', '.join(sorted(unknown))}")
    if kind == "none":
        return None
    if kind == "apiKey":
        return ApiKeyAuth(
            _text(body, "secret", kind),
            _text(body, "location", kind, "header"),
            _text(body, "parameterName", kind),
            _text(body, "prefix", kind, ""),
            secrets=secrets,
        )
    if kind == "oauth2":
        scopes = body.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
            raise ValueError("auth.oauth2.scopes must be a list of scope names (no spaces)")
        audience = body.get("audience")
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise ValueError("auth.oauth2.audience must be a non-empty string")
        try:
            return OAuth2ClientCredentials(
                _text(body, "tokenUrl", kind),
                _text(body, "secret", kind),
                tuple(scopes),
                audience,
                secrets=secrets,
            )
        except ValueError as error:
            raise ValueError(f"auth.{error}") from None
    return SigV4Auth(_text(body, "service", kind), _text(body, "region", kind))


def _text(body: dict[str, Any], key: str, kind: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise ValueError(f"auth.{kind}.{key} must be a non-empty string")
    if key == "location" and value not in ("header", "query"):
        raise ValueError(f"auth.{kind}.location must be 'header' or 'query'")
    return value


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


# -- helpers shared by the kinds above ---------------------------------------------------------------


def _read_secret(secrets: SecretLookup, name: str) -> str:
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


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _with_headers(request: PreparedRequest, added: Mapping[str, str]) -> PreparedRequest:
    """A copy of ``request`` whose headers are replaced (case-insensitively) by ``added``."""
    replaced = {name.lower() for name in added}
    headers = {name: value for name, value in request.headers.items() if name.lower() not in replaced}
    headers.update(added)
    return PreparedRequest(request.method, request.url, headers, request.body)


def _safe_url(url: str) -> str:
    """A URL as errors may show it: scheme, host and path; no credentials or query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
