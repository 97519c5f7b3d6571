"""Circuit breaker, token-bucket rate limiter and backoff delays (harness.resilience)."""

from __future__ import annotations

import threading

import pytest

from harness import resilience
from harness.providers import router
from harness.resilience import CircuitBreaker, RateLimiter, backoff_delays
from tests.unit.bank_target import Clock

# -- circuit breaker ----------------------------------------------------------------------------------


def test_the_router_uses_the_breaker_of_this_module() -> None:
    assert router.CircuitBreaker is resilience.CircuitBreaker


def test_per_call_thresholds_override_the_breakers_own() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=clock)
    breaker.failed("bank", failure_threshold=1)
    assert breaker.state("bank", reset_seconds=5) == "open"
    assert not breaker.allow("bank", reset_seconds=5)
    clock.now += 5
    assert breaker.state("bank", reset_seconds=5) == "half_open"
    assert breaker.state("bank") == "open"  # its own 30 s have not passed
    assert breaker.allow("bank", reset_seconds=5)
    assert not breaker.allow("bank", reset_seconds=5)  # one trial at a time
    breaker.succeeded("bank")
    assert breaker.state("bank") == "closed"


def test_circuits_of_different_keys_are_independent() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=Clock())
    breaker.failed("a")
    assert not breaker.allow("a")
    assert breaker.allow("b")


def test_concurrent_callers_get_exactly_one_half_open_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=1, clock=clock)
    breaker.failed("k")
    clock.now += 1
    allowed: list[bool] = []
    threads = [threading.Thread(target=lambda: allowed.append(breaker.allow("k"))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1


# -- rate limiter ----------------------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_refuses_without_waiting() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=1, burst=3, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire("bank", 0) for _ in range(4)] == [True, True, True, False]
    assert clock.slept == []


def test_a_token_arrives_at_the_rate_and_acquire_waits_for_it() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=4, burst=1, clock=clock, sleep=clock.sleep)
    assert limiter.acquire("bank", 0)
    assert limiter.acquire("bank", 1.0)
    assert clock.slept == [pytest.approx(0.25)]
    clock.now += 0.25
    assert limiter.acquire("bank", 0)  # refilled while time passed


def test_acquire_gives_up_at_once_when_no_token_would_arrive_in_time() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=0.5, burst=1, clock=clock, sleep=clock.sleep)
    assert limiter.acquire("bank", 0)
    assert not limiter.acquire("bank", 1.0)  # the next token is 2 s away
    assert clock.slept == []
    assert limiter.acquire("bank", 2.0)


def test_buckets_are_per_key_and_take_the_rate_a_call_passes() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    assert limiter.acquire("a", 0, rate_per_second=10, burst=2)
    assert limiter.acquire("a", 0, rate_per_second=10, burst=2)
    assert not limiter.acquire("a", 0, rate_per_second=10, burst=2)
    assert limiter.acquire("b", 0, rate_per_second=10, burst=2)
    clock.now += 0.1
    assert limiter.acquire("a", 0, rate_per_second=10, burst=2)


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=100, burst=2, clock=clock, sleep=clock.sleep)
    clock.now += 3600
    assert [limiter.acquire("k", 0) for _ in range(3)] == [True, True, False]


def test_concurrent_acquires_never_exceed_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=0.001, burst=5, clock=clock, sleep=clock.sleep)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(limiter.acquire("k", 0))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 5


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_limiter_refuses_a_rate_or_burst_that_could_never_pass(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate_per_second=rate, burst=burst)


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_has_one_delay_between_each_two_attempts() -> None:
    assert backoff_delays(1, 0.2, 2.0) == []
    assert len(backoff_delays(4, 0.2, 2.0)) == 3


def test_backoff_is_full_jitter_up_to_an_exponential_capped_ceiling() -> None:
    assert backoff_delays(6, 0.5, 3.0, random=lambda: 1.0) == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_delays(6, 0.5, 3.0, random=lambda: 0.0) == [0.0] * 5
    assert backoff_delays(3, 0.5, 3.0, random=lambda: 0.5) == [0.25, 0.5]


def test_random_backoff_stays_within_its_bounds() -> None:
    for _ in range(50):
        delays = backoff_delays(5, 0.2, 1.0)
        assert all(0 <= d <= min(1.0, 0.2 * 2**n) for n, d in enumerate(delays))
