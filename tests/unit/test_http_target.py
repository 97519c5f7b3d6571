"""Calls to an HTTP gateway target under its policy, against the real demo bank on 127.0.0.1
(harness.tools.http_target): retries, timeouts, circuit breaker, rate limit, idempotency, auth."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.resilience import CircuitBreaker
from harness.tools.http_target import (
    MAX_RESPONSE_BYTES,
    HttpOutcome,
    TargetCaller,
    TargetPolicy,
    TargetUnavailable,
)
from harness.tools.oauth2_client import OAuth2ClientCredentials
from harness.tools.openapi import PreparedRequest, operations, prepare
from harness.tools.outbound_auth import ApiKeyAuth, SigV4Auth
from local_runtime.demo_bank import DemoBank, Received, openapi_document, serve
from tests.unit.bank_target import API_KEY, CLIENT_ID, CLIENT_SECRET, Clock, lookup

OPERATIONS = {op.tool_name: op for op in operations(openapi_document())}
TRANSFER = {
    "fromAccount": "acc-001",
    "toAccount": "acc-002",
    "amount": 100,
    "currency": "EUR",
    "reference": "rent",
}
# A real answer has all the time a busy machine may need; a late one is late by the caller's clock
# (see late_answers), and the waits between attempts pass on that clock too.
FAST = TargetPolicy(timeout_seconds=30.0, base_delay_seconds=0.01, max_delay_seconds=0.05)
#: How long a test waits for something that happens at once unless the code under test is broken.
PATIENCE_SECONDS = 30


API_KEY_AUTH = ApiKeyAuth("bank/api-key", "header", "X-Api-Key", secrets=lookup)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def caller(clock: Clock) -> TargetCaller:
    return TargetCaller(clock=clock, sleep=clock.sleep)


class BankAnswers:
    """Steers the bank's answers to its next API requests (not to /openapi.json or /oauth/token):
    ``next(n)``: for each of the next n, ``before_answering`` runs once the bank did its work."""

    def __init__(
        self, bank: DemoBank, monkeypatch: pytest.MonkeyPatch, before_answering: Callable[[], None]
    ) -> None:
        self._due = 0
        self._lock = threading.Lock()
        answer = bank.delay_before_answering

        def steered(received: Received) -> None:
            if received.path not in ("/openapi.json", "/oauth/token") and self._take():
                before_answering()
            answer(received)

        monkeypatch.setattr(bank, "delay_before_answering", steered)

    def next(self, count: int) -> None:
        with self._lock:
            self._due = count

    def _take(self) -> bool:
        with self._lock:
            if self._due == 0:
                return False
            self._due -= 1
            return True


class HeldAnswers(BankAnswers):
    """``next(n)``: the bank keeps its answers to the next n API requests until ``release()``."""

    def __init__(self, bank: DemoBank, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(bank, monkeypatch, self._hold)
        self.holding = 0
        self._changed = threading.Condition()
        self._released = threading.Event()

    def _hold(self) -> None:
        with self._changed:
            self.holding += 1
            self._changed.notify_all()
        self._released.wait(PATIENCE_SECONDS)

    def holding_at_least(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.holding >= count, PATIENCE_SECONDS)

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def late_answers(bank: DemoBank, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> BankAnswers:
    """``late_answers.next(n)``: the bank answers the next n API requests an hour late by the
    caller's clock, after doing their work: their attempts time out however busy the machine is."""

    def an_hour_passes() -> None:
        clock.now += 3600

    return BankAnswers(bank, monkeypatch, an_hour_passes)


@pytest.fixture
def held_answers(bank: DemoBank, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldAnswers]:
    held = HeldAnswers(bank, monkeypatch)
    yield held
    held.release()


def balance(bank: DemoBank, account: str = "acc-001") -> PreparedRequest:
    return prepare(bank.url, OPERATIONS["getBalance"], {"accountId": account})


def transfer(bank: DemoBank, **changes: Any) -> PreparedRequest:
    return prepare(bank.url, OPERATIONS["createTransfer"], {"body": {**TRANSFER, **changes}})


def assert_no_secret(text: str) -> None:
    for value in (API_KEY, CLIENT_SECRET):
        assert value not in text


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record, its extra fields included."""
    return caplog.text + "".join(repr(vars(record)) for record in caplog.records)


# -- outcomes --------------------------------------------------------------------------------------------


def test_a_call_returns_the_json_answer(bank: DemoBank, caller: TargetCaller) -> None:
    outcome = caller.call("bank", balance(bank), FAST, API_KEY_AUTH, None)
    assert outcome == HttpOutcome(
        200, [{"json": {"accountId": "acc-001", "balance": 1250.0, "currency": "EUR"}}]
    )
    assert outcome.ok


def test_an_api_key_in_the_query_string_reaches_the_bank(bank: DemoBank, caller: TargetCaller) -> None:
    auth = ApiKeyAuth("bank/api-key", "query", "api_key", secrets=lookup)
    request = prepare(bank.url, OPERATIONS["listAccounts"], {"currency": "GBP"})
    outcome = caller.call("bank", request, FAST, auth, None)
    assert outcome.content == [
        {"json": {"accounts": [{"accountId": "acc-003", "name": "Travel account", "currency": "GBP"}]}}
    ]


def test_a_client_error_is_an_outcome_the_model_sees_and_is_not_retried(
    bank: DemoBank, caller: TargetCaller
) -> None:
    outcome = caller.call("bank", balance(bank, "acc-999"), FAST, API_KEY_AUTH, None)
    assert outcome == HttpOutcome(404, [{"json": {"error": "no account acc-999"}}])
    assert not outcome.ok
    invalid = caller.call("bank", transfer(bank, amount=0.001), FAST, API_KEY_AUTH, "key-1")
    assert invalid.status == 400 and invalid.content == [
        {"json": {"error": "amount must be positive, with at most two decimals"}}
    ]
    assert len(bank.api_requests()) == 2
    assert caller.breaker.state("bank") == "closed"


def test_wrong_credentials_come_back_as_401_without_retries(bank: DemoBank, caller: TargetCaller) -> None:
    auth = ApiKeyAuth("bank/api-key", "header", "X-Api-Key", secrets=lambda _: "wrong-key")
    outcome = caller.call("bank", balance(bank), FAST, auth, None)
    assert outcome.status == 401 and len(bank.api_requests()) == 1


# -- retries -----------------------------------------------------------------------------------------------


def test_injected_5xx_answers_are_retried_with_backoff_until_success(
    bank: DemoBank, clock: Clock, caller: TargetCaller
) -> None:
    bank.fail_next(2, 503)
    outcome = caller.call("bank", balance(bank), FAST, API_KEY_AUTH, None)
    assert outcome.ok
    assert len(bank.api_requests()) == 3
    assert len(clock.slept) == 2 and all(0 <= s <= FAST.max_delay_seconds for s in clock.slept)


def test_a_429_is_retried_after_the_retry_after_it_names(
    bank: DemoBank, clock: Clock, caller: TargetCaller
) -> None:
    bank.fail_next(1, 429, retry_after=0.04)
    assert caller.call("bank", balance(bank), FAST, API_KEY_AUTH, None).ok
    assert clock.slept == [0.04]


def test_a_retry_after_longer_than_the_longest_delay_ends_the_call(
    bank: DemoBank, caller: TargetCaller
) -> None:
    bank.fail_next(1, 429, retry_after=30)
    with pytest.raises(
        TargetUnavailable, match="target bank: HTTP 429; the target asked to retry after 30 s"
    ):
        caller.call("bank", balance(bank), FAST, API_KEY_AUTH, None)
    assert len(bank.api_requests()) == 1


def test_5xx_until_the_attempts_run_out_makes_the_target_unavailable(
    bank: DemoBank, caller: TargetCaller
) -> None:
    bank.fail_next(5, 500)
    with pytest.raises(TargetUnavailable, match=r"^target bank: HTTP 500 after 3 attempts$"):
        caller.call("bank", balance(bank), FAST, API_KEY_AUTH, None)
    assert len(bank.api_requests()) == 3


def test_a_post_without_an_idempotency_key_is_not_repeated_after_a_5xx(
    bank: DemoBank, caller: TargetCaller
) -> None:
    bank.fail_next(1, 500)
    with pytest.raises(
        TargetUnavailable, match="HTTP 500; not retried, since a POST without an idempotency key"
    ):
        caller.call("bank", transfer(bank), FAST, API_KEY_AUTH, None)
    assert len(bank.api_requests()) == 1


def test_a_post_without_an_idempotency_key_is_repeated_after_a_429(
    bank: DemoBank, caller: TargetCaller
) -> None:
    bank.fail_next(1, 429)
    assert caller.call("bank", transfer(bank), FAST, API_KEY_AUTH, None).status == 201
    assert bank.executed_transfers == 1


def test_every_attempt_carries_the_same_idempotency_key(bank: DemoBank, caller: TargetCaller) -> None:
    bank.fail_next(2, 502)
    outcome = caller.call("bank", transfer(bank), FAST, API_KEY_AUTH, "toolu_01-transfer")
    assert outcome.status == 201
    assert [r.headers["idempotency-key"] for r in bank.api_requests()] == ["toolu_01-transfer"] * 3


def test_an_idempotency_key_makes_a_retried_transfer_execute_once(
    bank: DemoBank, late_answers: BankAnswers, caller: TargetCaller
) -> None:
    # The bank makes the first transfer but answers too late: the client times out and retries.
    late_answers.next(1)
    outcome = caller.call("bank", transfer(bank), FAST, API_KEY_AUTH, "toolu_02-transfer")
    assert outcome.status == 201 and outcome.content[0]["json"]["transferId"] == "tr-000001"
    assert len(bank.api_requests()) == 2
    assert bank.executed_transfers == 1
    assert str(bank.balance("acc-001")) == "1150.00"


def test_a_timed_out_post_without_an_idempotency_key_is_not_repeated(
    bank: DemoBank, late_answers: BankAnswers, caller: TargetCaller
) -> None:
    late_answers.next(1)
    with pytest.raises(TargetUnavailable, match=r"no complete answer within 30 s; not retried"):
        caller.call("bank", transfer(bank), FAST, API_KEY_AUTH, None)
    assert bank.executed_transfers == 1 and len(bank.api_requests()) == 1


def test_a_target_that_never_answers_is_unavailable_once_every_attempt_timed_out(
    bank: DemoBank, held_answers: HeldAnswers, caller: TargetCaller
) -> None:
    # The bank keeps every answer until the test ends: only the attempts' own timeouts (real ones,
    # on the sockets) can end the call.
    held_answers.next(3)
    policy = TargetPolicy(
        timeout_seconds=0.2, max_attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.05
    )
    with pytest.raises(
        TargetUnavailable, match=r"^target bank: no complete answer within 0.2 s after 3 attempts$"
    ):
        caller.call("bank", balance(bank), policy, API_KEY_AUTH, None)
    assert held_answers.holding_at_least(3)
    assert len(bank.api_requests()) == 3


def test_a_refused_connection_is_retried_then_reported(clock: Clock, caller: TargetCaller) -> None:
    with serve() as stopped:
        url = stopped.url
    request = prepare(url, OPERATIONS["createTransfer"], {"body": TRANSFER})
    with pytest.raises(TargetUnavailable, match=r"^target bank: connection refused after 3 attempts$"):
        caller.call("bank", request, FAST, None, None)  # safe to repeat: it never arrived
    assert len(clock.slept) == 2


# -- circuit breaker ----------------------------------------------------------------------------------------


def test_the_circuit_opens_after_repeated_failures_and_half_opens_after_reset(
    bank: DemoBank, clock: Clock, caller: TargetCaller
) -> None:
    policy = TargetPolicy(max_attempts=1, failure_threshold=2, reset_seconds=10)
    bank.fail_next(2, 500)
    for _ in range(2):
        with pytest.raises(TargetUnavailable, match=r"HTTP 500 after 1 attempt$"):
            caller.call("bank", balance(bank), policy, API_KEY_AUTH, None)
    assert caller.breaker.state("bank", policy.reset_seconds) == "open"
    with pytest.raises(TargetUnavailable, match=r"^target bank: not called, its circuit is open"):
        caller.call("bank", balance(bank), policy, API_KEY_AUTH, None)
    assert len(bank.api_requests()) == 2  # the bank was not contacted
    clock.now += 10
    assert caller.breaker.state("bank", policy.reset_seconds) == "half_open"
    assert caller.call("bank", balance(bank), policy, API_KEY_AUTH, None).ok
    assert caller.breaker.state("bank", policy.reset_seconds) == "closed"
    assert len(bank.api_requests()) == 3


def test_a_failed_trial_opens_the_circuit_again(bank: DemoBank, clock: Clock, caller: TargetCaller) -> None:
    policy = TargetPolicy(max_attempts=1, failure_threshold=1, reset_seconds=10)
    bank.fail_next(2, 503)
    for _ in range(2):
        clock.now += 10
        with pytest.raises(TargetUnavailable, match="HTTP 503"):
            caller.call("bank", balance(bank), policy, API_KEY_AUTH, None)
    with pytest.raises(TargetUnavailable, match="circuit is open"):
        caller.call("bank", balance(bank), policy, API_KEY_AUTH, None)


def test_circuits_are_kept_per_target(bank: DemoBank, caller: TargetCaller) -> None:
    policy = TargetPolicy(max_attempts=1, failure_threshold=1)
    bank.fail_next(1, 500)
    with pytest.raises(TargetUnavailable):
        caller.call("gw/bank-a", balance(bank), policy, API_KEY_AUTH, None)
    assert caller.call("gw/bank-b", balance(bank), policy, API_KEY_AUTH, None).ok


def test_a_shared_breaker_can_be_injected(bank: DemoBank, clock: Clock) -> None:
    breaker = CircuitBreaker(clock=clock)
    caller = TargetCaller(clock=clock, sleep=clock.sleep, breaker=breaker)
    bank.fail_next(1, 500)
    with pytest.raises(TargetUnavailable):
        caller.call(
            "bank", balance(bank), TargetPolicy(max_attempts=1, failure_threshold=1), API_KEY_AUTH, None
        )
    assert breaker.state("bank") == "open"


# -- rate limit --------------------------------------------------------------------------------------------


def test_the_rate_limit_refuses_calls_beyond_the_burst_without_contacting_the_target(
    bank: DemoBank, caller: TargetCaller
) -> None:
    policy = TargetPolicy(rate_per_second=0.1, burst=2, rate_wait_seconds=0.5)
    for _ in range(2):
        assert caller.call("bank", balance(bank), policy, API_KEY_AUTH, None).ok
    with pytest.raises(
        TargetUnavailable, match=r"^target bank: rate limit reached \(0.1 requests per second\)"
    ):
        caller.call("bank", balance(bank), policy, API_KEY_AUTH, None)
    assert len(bank.api_requests()) == 2
    assert caller.breaker.state("bank") == "closed"  # being throttled by ourselves is no failure


def test_the_rate_limit_waits_for_a_token_within_the_allowed_wait(
    bank: DemoBank, clock: Clock, caller: TargetCaller
) -> None:
    policy = TargetPolicy(rate_per_second=2, burst=1, rate_wait_seconds=1.0)
    for _ in range(3):
        assert caller.call("bank", balance(bank), policy, API_KEY_AUTH, None).ok
    assert clock.slept == [0.5, 0.5]


# -- credentials ---------------------------------------------------------------------------------------------


def oauth(bank: DemoBank, token_url: str | None = None) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        token_url or f"{bank.url}/oauth/token", "bank/oauth-client", ("payments",), secrets=lookup
    )


def test_an_oauth_token_is_fetched_once_for_many_calls(bank: DemoBank, caller: TargetCaller) -> None:
    for _ in range(3):
        assert caller.call("bank", balance(bank), FAST, oauth(bank), None).ok
    assert bank.tokens_issued == 1
    assert bank.api_requests()[0].headers["authorization"].startswith("Bearer ")


def test_a_401_with_oauth_refreshes_the_token_and_retries_once(bank: DemoBank, caller: TargetCaller) -> None:
    assert caller.call("bank", balance(bank), FAST, oauth(bank), None).ok
    bank.revoke_tokens()
    assert caller.call("bank", balance(bank), FAST, oauth(bank), None).ok
    assert bank.tokens_issued == 2
    assert [
        r.headers["authorization"] != bank.api_requests()[0].headers["authorization"]
        for r in bank.api_requests()
    ] == [
        False,
        False,
        True,
    ]


def test_a_401_that_persists_after_a_refresh_is_the_outcome(bank: DemoBank, caller: TargetCaller) -> None:
    # Tokens from this other bank's endpoint mean nothing to the bank that is called.
    with serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as issuer:
        outcome = caller.call("bank", balance(bank), FAST, oauth(bank, f"{issuer.url}/oauth/token"), None)
        assert outcome.status == 401 and not outcome.ok
        assert issuer.tokens_issued == 2 and len(bank.api_requests()) == 2


def test_credentials_that_cannot_be_obtained_make_the_target_unavailable(
    bank: DemoBank, caller: TargetCaller
) -> None:
    with serve() as stopped:
        token_url = f"{stopped.url}/oauth/token"
    with pytest.raises(
        TargetUnavailable, match=r"^target bank: its credentials could not be obtained: the token endpoint"
    ):
        caller.call("bank", balance(bank), FAST, oauth(bank, token_url), None)
    assert bank.api_requests() == []
    assert caller.breaker.state("bank") == "closed"


def test_sigv4_headers_arrive_and_verify(caller: TargetCaller) -> None:
    with serve(sigv4_credentials=("testing", "testing")) as bank:
        outcome = caller.call("bank", transfer(bank), FAST, SigV4Auth("execute-api", "eu-west-1"), "toolu_03")
        assert outcome.status == 201
        headers = bank.api_requests()[0].headers
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "idempotency-key" in headers["authorization"]  # the key is signed too
        assert headers["x-amz-date"]


# -- what the model and the logs see ------------------------------------------------------------------------


class Echo:
    """A target that echoes the request it got (credentials included), or a large body."""

    def __init__(self) -> None:
        self.body_size = 0

        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if echo.body_size:
                    payload = b"x" * echo.body_size
                    content_type = "text/plain"
                else:
                    payload = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
                    content_type = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.stop()


def test_credentials_a_target_echoes_are_redacted(echo: Echo, caller: TargetCaller) -> None:
    for auth in (API_KEY_AUTH, ApiKeyAuth("bank/api-key", "query", "key", secrets=lookup)):
        request = PreparedRequest("GET", f"{echo.url}/whoami?x=1", {}, None)
        outcome = caller.call("echo", request, FAST, auth, None)
        assert outcome.ok
        assert API_KEY not in json.dumps(outcome.content)
        assert "[redacted]" in json.dumps(outcome.content)


def test_an_oauth_token_a_target_echoes_is_redacted(bank: DemoBank, echo: Echo, caller: TargetCaller) -> None:
    auth = oauth(bank)
    outcome = caller.call("echo", PreparedRequest("GET", f"{echo.url}/", {}, None), FAST, auth, None)
    assert outcome.content[0]["json"]["headers"]["Authorization"] == "Bearer [redacted]"


def test_a_response_over_5_mb_is_cut_and_says_so(echo: Echo, caller: TargetCaller) -> None:
    echo.body_size = MAX_RESPONSE_BYTES + 1000
    outcome = caller.call("echo", PreparedRequest("GET", f"{echo.url}/big", {}, None), FAST, None, None)
    assert outcome.ok and len(outcome.content) == 2
    assert len(outcome.content[0]["text"]) == MAX_RESPONSE_BYTES
    assert outcome.content[1] == {"text": "[The response was cut: only its first 5 MB are shown.]"}


def test_no_secret_reaches_an_exception_or_a_log_line(
    bank: DemoBank, late_answers: BankAnswers, caller: TargetCaller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    query_auth = ApiKeyAuth("bank/api-key", "query", "api_key", secrets=lookup)
    messages: list[str] = []
    for inject, auth in [
        (lambda: late_answers.next(3), query_auth),  # timeouts
        (lambda: bank.fail_next(3, 503), oauth(bank)),  # 5xx
        (lambda: bank.fail_next(1, 429, retry_after=60), query_auth),  # too long a Retry-After
    ]:
        inject()
        with pytest.raises(TargetUnavailable) as caught:
            caller.call("bank", balance(bank), FAST, auth, "toolu_04")
        messages.append(str(caught.value))
    with serve() as stopped:
        token_url = f"{stopped.url}/oauth/token"
    with pytest.raises(TargetUnavailable) as caught:
        caller.call("bank", balance(bank), FAST, oauth(bank, token_url), None)
    messages.append(str(caught.value))
    text = "\n".join(messages) + logged(caplog)
    assert "retrying" in caplog.text
    assert_no_secret(text)
    assert "api_key=" not in text  # no URL with its query string either


# -- policy ------------------------------------------------------------------------------------------------


def test_a_policy_is_read_from_a_target_configuration() -> None:
    config = {
        "name": "bank",
        "openApi": {"schemaPath": "x.json"},
        "timeoutSeconds": 5,
        "maxAttempts": 4,
        "ratePerSecond": 2.5,
        "burst": 3,
        "circuitBreaker": {"failureThreshold": 5, "resetSeconds": 60},
    }
    assert TargetPolicy.of(config) == TargetPolicy(
        timeout_seconds=5, max_attempts=4, rate_per_second=2.5, burst=3, failure_threshold=5, reset_seconds=60
    )
    assert TargetPolicy.of({}) == TargetPolicy()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"timeoutSeconds": 0}, "timeoutSeconds must be a number from"),
        ({"timeoutSeconds": "5"}, "timeoutSeconds"),
        ({"maxAttempts": 0}, "maxAttempts must be an integer from 1 to 10"),
        ({"maxAttempts": 2.5}, "maxAttempts"),
        ({"maxAttempts": True}, "maxAttempts"),
        ({"ratePerSecond": 0}, "ratePerSecond"),
        ({"burst": 0}, "burst must be an integer"),
        ({"circuitBreaker": []}, "circuitBreaker must be an object"),
        ({"circuitBreaker": {"threshold": 3}}, "circuitBreaker has unknown keys threshold"),
        ({"circuitBreaker": {"failureThreshold": 0}}, "circuitBreaker.failureThreshold"),
        ({"circuitBreaker": {"resetSeconds": -1}}, "circuitBreaker.resetSeconds"),
    ],
)
def test_bad_policy_values_are_value_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TargetPolicy.of(config)
