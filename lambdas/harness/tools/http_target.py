"""One call to an HTTP gateway target, under the target's policy.

The policy (a gateway target's configuration) bounds each attempt by ``timeoutSeconds``, retries
connection failures, timeouts, 429 and 5xx answers up to ``maxAttempts`` with full-jitter backoff
(a ``Retry-After`` of at most the longest delay is honoured; a longer one ends the call), keeps a
circuit breaker and, with ``ratePerSecond``, a token bucket per target. A 401 with credentials
that can be refreshed (OAuth2) is retried once with a fresh token. Other answers, 4xx included,
are the call's outcome: the model sees the error body and may correct its arguments.

Repeating a request must not repeat its effect. GET, HEAD, OPTIONS, PUT, DELETE and TRACE are
idempotent by definition; a POST or PATCH is repeated only when the call has an idempotency key
(sent as ``Idempotency-Key`` on every attempt, so the target runs it once), or when the request
surely did not reach the target (no connection, or 429). Redirects are never followed: they
would carry the target's credentials to another address.

What is raised (TargetUnavailable) and logged names the target and what happened: never a
credential, a URL (its query string may hold an API key) or a response body. Credential values
a target echoes in its response are redacted before the model sees it.
"""

from __future__ import annotations

import http.client
import json
import logging
import random as _random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from harness.errors import TargetUnavailable
from harness.resilience import CircuitBreaker, RateLimiter, backoff_delays
from harness.tools.openapi import PreparedRequest
from harness.tools.outbound_auth import OutboundAuth, OutboundAuthError

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "agent-harness-gateway"
REDACTED = "[redacted]"


@dataclass(frozen=True)
class TargetPolicy:
    timeout_seconds: float = 10.0
    max_attempts: int = 3
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 2.0
    rate_per_second: float | None = None
    burst: int = 1
    rate_wait_seconds: float = 1.0
    failure_threshold: int = 3
    reset_seconds: float = 30.0

    def __post_init__(self) -> None:
        _number(self.timeout_seconds, "timeoutSeconds", minimum=0.001, maximum=900)
        _integer(self.max_attempts, "maxAttempts", minimum=1, maximum=10)
        _number(self.base_delay_seconds, "baseDelaySeconds", minimum=0, maximum=60)
        _number(self.max_delay_seconds, "maxDelaySeconds", minimum=0, maximum=300)
        if self.rate_per_second is not None:
            _number(self.rate_per_second, "ratePerSecond", minimum=0.001, maximum=10_000)
        _integer(self.burst, "burst", minimum=1, maximum=10_000)
        _number(self.rate_wait_seconds, "rateWaitSeconds", minimum=0, maximum=300)
        _integer(self.failure_threshold, "circuitBreaker.failureThreshold", minimum=1, maximum=1000)
        _number(self.reset_seconds, "circuitBreaker.resetSeconds", minimum=0.001, maximum=86_400)

    @classmethod
    def of(cls, config: dict[str, Any]) -> TargetPolicy:
        """The policy in a target's configuration: ``timeoutSeconds``, ``maxAttempts``,
        ``baseDelaySeconds``, ``maxDelaySeconds``, ``ratePerSecond``, ``burst``, ``rateWaitSeconds``
        and ``circuitBreaker`` ``{failureThreshold, resetSeconds}``; other keys (the rest of the
        target) are not the policy's. ValueError names a bad value."""
        if not isinstance(config, dict):
            raise ValueError("the target configuration must be an object")
        breaker = config.get("circuitBreaker", {})
        if not isinstance(breaker, dict):
            raise ValueError("circuitBreaker must be an object")
        unknown = set(breaker) - {"failureThreshold", "resetSeconds"}
        if unknown:
            raise ValueError(f"circuitBreaker has unknown keys {', '.join(sorted(unknown))}")
        defaults = cls()
        return cls(
            timeout_seconds=config.get("timeoutSeconds", defaults.timeout_seconds),
            max_attempts=config.get("maxAttempts", defaults.max_attempts),
            base_delay_seconds=config.get("baseDelaySeconds", defaults.base_delay_seconds),
            max_delay_seconds=config.get("maxDelaySeconds", defaults.max_delay_seconds),
            rate_per_second=config.get("ratePerSecond", defaults.rate_per_second),
            burst=config.get("burst", defaults.burst),
            rate_wait_seconds=config.get("rateWaitSeconds", defaults.rate_wait_seconds),
            failure_threshold=breaker.get("failureThreshold", defaults.failure_threshold),
            reset_seconds=breaker.get("resetSeconds", defaults.reset_seconds),
        )


def _number(value: Any, name: str, *, minimum: float, maximum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
        raise ValueError(f"{name} must be a number from {minimum:g} to {maximum:g}")


def _integer(value: Any, name: str, *, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer from {minimum} to {maximum}")


@dataclass(frozen=True)
class HttpOutcome:
    status: int
    content: list[dict[str, Any]]  # Converse content blocks: {"json": ...} or {"text": ...}

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _TargetFailed(Exception):
    """The target itself failed (counts against its circuit)."""


class _NotSent(Exception):
    """No connection: the request never reached the target."""


class _Interrupted(Exception):
    """The exchange failed after the request may have reached the target."""


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Message
    body: bytes
    cut: bool


class TargetCaller:
    """Calls to HTTP targets; one per warm process, so that circuits and rate limits outlive a call.
    ``clock`` and ``sleep`` time the attempts, the waits between them, the circuits and the rate limits."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep)

    def call(
        self,
        target: str,
        request: PreparedRequest,
        policy: TargetPolicy,
        auth: OutboundAuth | None,
        idempotency_key: str | None,
    ) -> HttpOutcome:
        """The target's answer to ``request``, after as many attempts as ``policy`` allows (see the
        module's docstring), inside the target's circuit."""
        with self._circuit(target, policy):
            request = _with_call_headers(request, idempotency_key)
            repeatable = request.method.upper() in _IDEMPOTENT_METHODS or idempotency_key is not None
            delays = backoff_delays(
                policy.max_attempts, policy.base_delay_seconds, policy.max_delay_seconds, self._random
            )
            attempt, refreshed = 0, False
            while True:
                attempt += 1
                self._take_rate_token(target, policy)
                sent = _authorized(target, request, auth)
                retry_after: float | None = None
                try:
                    response = _exchange(sent, policy.timeout_seconds, self._clock)
                except _NotSent as error:
                    problem, retryable = str(error), True
                except _Interrupted as error:
                    problem, retryable = str(error), repeatable
                else:
                    if response.status == 401 and auth is not None and not refreshed and auth.invalidate():
                        # A token revoked or expired early: one more try with a fresh one.
                        logger.info(
                            "target answered 401; retrying with fresh credentials", extra={"target": target}
                        )
                        attempt, refreshed = attempt - 1, True
                        continue
                    if response.status != 429 and response.status < 500:
                        secrets = auth.secrets_in(sent) if auth is not None else ()
                        return HttpOutcome(response.status, _content(response, secrets))
                    problem = f"HTTP {response.status}"
                    retryable = response.status == 429 or repeatable
                    retry_after = _retry_after_seconds(response.headers)
                if not retryable:
                    raise _TargetFailed(
                        f"{problem}; not retried, since a {request.method} without an idempotency key "
                        "might take effect twice"
                    )
                if attempt >= policy.max_attempts:
                    raise _TargetFailed(f"{problem} after {attempt} attempt{'s' if attempt > 1 else ''}")
                delay = delays[attempt - 1]
                if retry_after is not None:
                    if retry_after > policy.max_delay_seconds:
                        raise _TargetFailed(f"{problem}; the target asked to retry after {retry_after:g} s")
                    delay = retry_after
                logger.warning(
                    "target attempt failed; retrying",
                    extra={"target": target, "attempt": attempt, "problem": problem, "delaySeconds": delay},
                )
                self._sleep(delay)

    @contextmanager
    def _circuit(self, target: str, policy: TargetPolicy) -> Iterator[None]:
        """Runs the block only while the target's circuit is closed, and tells the circuit how the
        call ended: a failure of the target (``_TargetFailed``) counts against it."""
        if not self.breaker.allow(target, policy.reset_seconds):
            raise TargetUnavailable(
                f"target {target}: not called, its circuit is open after repeated failures "
                f"(calls resume within {policy.reset_seconds:g} s)"
            )
        try:
            yield
        except _TargetFailed as failure:
            self.breaker.failed(target, policy.failure_threshold)
            raise TargetUnavailable(f"target {target}: {failure}") from None
        except BaseException:
            self.breaker.release(target)  # no answer that says anything about the target's health
            raise
        self.breaker.succeeded(target)

    def _take_rate_token(self, target: str, policy: TargetPolicy) -> None:
        if policy.rate_per_second is None:
            return
        if not self.limiter.acquire(
            target, policy.rate_wait_seconds, rate_per_second=policy.rate_per_second, burst=policy.burst
        ):
            raise TargetUnavailable(
                f"target {target}: rate limit reached ({policy.rate_per_second:g} requests per second); "
                "not called"
            )


def _with_call_headers(request: PreparedRequest, idempotency_key: str | None) -> PreparedRequest:
    headers = dict(request.headers)
    if not any(name.lower() == "user-agent" for name in headers):
        headers["User-Agent"] = USER_AGENT
    if idempotency_key is not None:
        # The call's key, never one the model put in a header parameter.
        headers = {name: value for name, value in headers.items() if name.lower() != "idempotency-key"}
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return PreparedRequest(request.method.upper(), request.url, headers, request.body)


def _authorized(target: str, request: PreparedRequest, auth: OutboundAuth | None) -> PreparedRequest:
    if auth is None:
        return request
    try:
        return auth.apply(request)
    except OutboundAuthError as error:
        raise TargetUnavailable(f"target {target}: its credentials could not be obtained: {error}") from None


def _exchange(request: PreparedRequest, timeout: float, clock: Callable[[], float]) -> _Response:
    """One HTTP exchange, all of it (connecting, sending, the whole body) within ``timeout`` by
    ``clock``; each socket operation also waits at most what is left of it."""
    parts = urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _NotSent("the target URL is not an http(s) URL")
    for name, value in request.headers.items():
        if "\r" in value or "\n" in value:
            # Checked here: http.client's own error would quote the value, which may be a credential.
            raise ValueError(f"header {name} must not contain line breaks")
    deadline = clock() + timeout
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            connection.connect()
        except TimeoutError:
            raise _NotSent(f"no connection within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise _NotSent("connection refused") from None
        except OSError as error:
            raise _NotSent(f"could not connect ({type(error).__name__})") from None
        sock = connection.sock
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request(request.method, target, body=request.body, headers=request.headers)
            _limit(sock, deadline, clock)
            response = connection.getresponse()
            body = bytearray()
            while len(body) <= MAX_RESPONSE_BYTES:
                _limit(sock, deadline, clock)
                chunk = response.read(min(_READ_CHUNK_BYTES, MAX_RESPONSE_BYTES + 1 - len(body)))
                if not chunk:
                    break
                body += chunk
        except TimeoutError:
            raise _Interrupted(f"no complete answer within {timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            raise _Interrupted(f"the connection failed ({type(error).__name__})") from None
    finally:
        connection.close()
    cut = len(body) > MAX_RESPONSE_BYTES
    return _Response(response.status, response.msg, bytes(body[:MAX_RESPONSE_BYTES]), cut)


def _limit(sock: socket.socket | None, deadline: float, clock: Callable[[], float]) -> None:
    """Let the next socket operation wait only for what is left of the attempt's time."""
    remaining = deadline - clock()
    if remaining <= 0:
        raise TimeoutError
    if sock is not None:
        sock.settimeout(remaining)


def _retry_after_seconds(headers: Message) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nothing: the backoff delay applies
    return seconds if seconds >= 0 else None


def _content(response: _Response, secrets: tuple[str, ...]) -> list[dict[str, Any]]:
    """The response body as Converse content blocks: JSON as ``{"json"}``, anything else as text."""
    content_type = response.headers.get_content_type()
    charset = response.headers.get_content_charset() or "utf-8"
    try:
        text = response.body.decode(charset, errors="replace")
    except LookupError:
        text = response.body.decode("utf-8", errors="replace")
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    if response.cut:
        limit = f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MB"
        return [{"text": text}, {"text": f"[The response was cut: only its first {limit} are shown.]"}]
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return [{"json": json.loads(text)}]
        except ValueError:
            pass
    if not text.strip():
        # Converse refuses empty text blocks.
        return [{"text": f"(HTTP {response.status}, no content)"}]
    return [{"text": text}]
