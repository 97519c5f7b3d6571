"""OAuth2 client credentials (RFC 6749 4.4) for a gateway target: the token client and its cache.

The client secret is ``{"clientId": "...", "clientSecret": "..."}`` in the vault; the client
authenticates to the token endpoint with HTTP Basic (RFC 6749 2.3.1), and the token endpoint must
be https (plain http only on loopback, for local runs). Access tokens are cached in this process (a
warm Lambda), shared by every instance, per (token URL, client secret name, scopes, audience), until
``expires_in`` less a safety margin.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

from harness.errors import OutboundAuthError
from harness.tools.openapi import PreparedRequest
from harness.tools.outbound_auth import OutboundAuth, SecretLookup, header_value, read_secret, with_headers

# A token is used until this long before it expires (at most half its lifetime), so that it does
# not expire between being read from the cache and reaching the target.
TOKEN_SAFETY_MARGIN_SECONDS = 60.0
# A token response without expires_in (it is optional) is cached this long.
DEFAULT_TOKEN_SECONDS = 300.0
TOKEN_TIMEOUT_SECONDS = 10.0
_MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

ClientKey = tuple[str, str, tuple[str, ...], str | None]
"""Whose token: (token URL, client secret name, scopes, audience)."""


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Access tokens by client until they expire, fetched once per client at a time."""

    def __init__(self) -> None:
        self._tokens: dict[ClientKey, _Token] = {}
        self._fetching: dict[ClientKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def token(self, key: ClientKey, clock: Callable[[], float], fetch: Callable[[], _Token]) -> str:
        """The cached access token of ``key``, or a new one from ``fetch`` when it has expired."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and clock() < cached.expires_at:
                return cached.value
            fetching = self._fetching.setdefault(key, threading.Lock())
        # One fetch per client at a time: concurrent calls wait for it rather than each fetch.
        with fetching:
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and clock() < cached.expires_at:
                    return cached.value
            token = fetch()
            with self._lock:
                self._tokens[key] = token
            return token.value

    def forget(self, key: ClientKey) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        """Forget every cached access token (a rotated client)."""
        with self._lock:
            self._tokens.clear()


TOKEN_CACHE: Final = TokenCache()
"""This process's access tokens, shared by every ``OAuth2ClientCredentials``."""


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
    def _cache_key(self) -> ClientKey:
        return (self.token_url, self.secret_name, self.scopes, self.audience)

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        return with_headers(request, {"Authorization": f"Bearer {self.access_token()}"})

    def access_token(self) -> str:
        """The cached access token, or a new one from the token endpoint when it has expired."""
        return TOKEN_CACHE.token(self._cache_key, self.clock, self._fetch)

    def invalidate(self) -> bool:
        TOKEN_CACHE.forget(self._cache_key)
        return True

    def secrets_in(self, request: PreparedRequest) -> tuple[str, ...]:
        value = header_value(request.headers, "Authorization") or ""
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
        secret = read_secret(self.secrets, self.secret_name)
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


def _safe_url(url: str) -> str:
    """A URL as errors may show it: scheme, host and path; no credentials or query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
