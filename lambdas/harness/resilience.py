"""Resilience primitives shared by the model router and the tool gateway: a circuit breaker and a
token-bucket rate limiter per key, and full-jitter backoff delays.

Both keyed objects live as long as the warm Lambda container (one per process): their state is
what the previous calls in this container observed, never shared across containers. Both are
thread-safe, since tool calls of one turn may run concurrently.

Circuit breaker. It opens after ``failure_threshold`` consecutive failures of a key and then
refuses calls without contacting it; after ``reset_seconds`` one trial call is let through
(half-open), and its success closes the circuit while its failure opens it again. The thresholds
are the breaker's own unless a call passes its key's (a gateway target's policy).
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    reset_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, _Circuit] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def state(self, key: str, reset_seconds: float | None = None) -> str:
        reset = self.reset_seconds if reset_seconds is None else reset_seconds
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.opened_at is None:
                return "closed"
            if circuit.trial or self.clock() - circuit.opened_at >= reset:
                return "half_open"
            return "open"

    def allow(self, key: str, reset_seconds: float | None = None) -> bool:
        """Whether a call may go to ``key`` now; in half-open state, only one trial call may."""
        reset = self.reset_seconds if reset_seconds is None else reset_seconds
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            if circuit.opened_at is None:
                return True
            if circuit.trial or self.clock() - circuit.opened_at < reset:
                return False
            circuit.trial = True
            return True

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._circuits[key] = _Circuit()

    def release(self, key: str) -> None:
        """End a trial call that said nothing about the provider's health (the circuit stays open)."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is not None:
                circuit.trial = False

    def failed(self, key: str, failure_threshold: int | None = None) -> None:
        threshold = self.failure_threshold if failure_threshold is None else failure_threshold
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            circuit.failures += 1
            if circuit.trial or circuit.failures >= threshold:
                circuit.opened_at = self.clock()
                circuit.trial = False


@dataclass
class _Bucket:
    tokens: float
    refilled_at: float
    rate_per_second: float
    burst: int


_TOKEN_EPSILON = 1e-9


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, then ``rate_per_second`` on average.

    A call may pass its key's own rate and burst (a gateway target's policy); a changed rate
    applies from that call on, keeping the tokens the bucket holds (up to the new burst).
    """

    def __init__(
        self,
        rate_per_second: float = 1.0,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_rate(rate_per_second, burst)
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(
        self,
        key: str,
        wait_up_to: float,
        *,
        rate_per_second: float | None = None,
        burst: int | None = None,
    ) -> bool:
        """Take one token of ``key``'s bucket, waiting up to ``wait_up_to`` seconds for one to
        arrive; False (and no token taken) when none would arrive in time."""
        rate = self.rate_per_second if rate_per_second is None else rate_per_second
        size = self.burst if burst is None else burst
        _check_rate(rate, size)
        deadline = self._clock() + max(0.0, wait_up_to)
        while True:
            with self._lock:
                now = self._clock()
                bucket = self._bucket(key, now, rate, size)
                # A bucket a rounding error short of a token has one: waiting for the last
                # 1e-16 of it could sleep for less than the clock's resolution, forever.
                if bucket.tokens >= 1.0 - _TOKEN_EPSILON:
                    bucket.tokens = max(0.0, bucket.tokens - 1.0)
                    return True
                wait = (1.0 - bucket.tokens) / rate
            # Give up at once rather than sleep through a wait that cannot end in time.
            if now + wait > deadline:
                return False
            self._sleep(wait)

    def _bucket(self, key: str, now: float, rate: float, size: int) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(size), now, rate, size)
            return bucket
        elapsed = max(0.0, now - bucket.refilled_at)
        bucket.tokens = min(float(bucket.burst), bucket.tokens + elapsed * bucket.rate_per_second)
        bucket.refilled_at = now
        if (bucket.rate_per_second, bucket.burst) != (rate, size):
            bucket.rate_per_second, bucket.burst = rate, size
            bucket.tokens = min(bucket.tokens, float(size))
        return bucket


def _check_rate(rate_per_second: float, burst: int) -> None:
    if not rate_per_second > 0:
        raise ValueError("rate_per_second must be greater than 0")
    if burst < 1:
        raise ValueError("burst must be at least 1")


def backoff_delays(
    max_attempts: int,
    base_seconds: float,
    cap_seconds: float,
    random: Callable[[], float] = _random.random,
) -> list[float]:
    """The waits before attempts 2..max_attempts: "full jitter", a uniform draw between 0 and
    ``min(cap, base * 2**n)``, so that clients retrying together do not retry in step."""
    return [random() * min(cap_seconds, base_seconds * 2**n) for n in range(max(0, max_attempts - 1))]
