"""Outbound credentials against the real demo bank on 127.0.0.1 (harness.tools.outbound_auth,
oauth2_client and outbound_auth_config)."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

import anyio
import httpx2
import pytest
from botocore.credentials import Credentials

from harness.tools.oauth2_client import OAuth2ClientCredentials
from harness.tools.openapi import PreparedRequest, operations, prepare
from harness.tools.outbound_auth import ApiKeyAuth, OutboundAuthError, SigV4Auth, as_httpx_auth
from harness.tools.outbound_auth_config import auth_from_config
from local_runtime.demo_bank import DemoBank, openapi_document, serve
from tests.unit.bank_target import API_KEY, CLIENT_ID, CLIENT_SECRET, lookup

SESSION_TOKEN = "SESSION-TOKEN-zyxw9876"
SECRET_VALUES = (API_KEY, CLIENT_SECRET, SESSION_TOKEN)


OPERATIONS = {op.tool_name: op for op in operations(openapi_document())}


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def send(request: PreparedRequest) -> tuple[int, Any]:
    """The request as it is, over real HTTP."""
    raw = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        with urllib.request.urlopen(raw, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def accounts_request(bank: DemoBank) -> PreparedRequest:
    return prepare(bank.url, OPERATIONS["listAccounts"], {"currency": "EUR"})


def oauth(bank: DemoBank, **extra: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        f"{bank.url}/oauth/token", "bank/oauth-client", ("payments",), secrets=lookup, **extra
    )


def assert_no_secret(text: str) -> None:
    for value in SECRET_VALUES:
        assert value not in text


# -- API key -----------------------------------------------------------------------------------------


def test_an_api_key_in_a_header_is_accepted_by_the_bank(bank: DemoBank) -> None:
    request = accounts_request(bank)
    signed = ApiKeyAuth("bank/api-key", "header", "X-Api-Key", secrets=lookup).apply(request)
    assert send(request)[0] == 401
    status, body = send(signed)
    assert status == 200 and {a["accountId"] for a in body["accounts"]} == {"acc-001", "acc-002"}
    assert "X-Api-Key" not in request.headers  # apply returned a new request


def test_an_api_key_in_the_query_string_keeps_the_other_parameters(bank: DemoBank) -> None:
    signed = ApiKeyAuth("bank/api-key", "query", "api_key", secrets=lookup).apply(accounts_request(bank))
    status, body = send(signed)
    assert status == 200 and len(body["accounts"]) == 2  # currency=EUR still applied
    assert bank.requests[-1].query == {"currency": ["EUR"], "api_key": [API_KEY]}


def test_an_api_key_may_have_a_prefix_and_be_stored_as_json() -> None:
    auth = ApiKeyAuth("k", "header", "Authorization", "Token ", secrets=lambda _: '{"apiKey": "abc123"}')
    signed = auth.apply(PreparedRequest("GET", "https://x.example/", {"authorization": "model-set"}, None))
    assert signed.headers == {"Authorization": "Token abc123"}  # replaced, whatever its case
    assert auth.secrets_in(signed) == ("abc123",)


def test_a_missing_secret_is_an_error_naming_the_secret_but_not_what_the_lookup_said() -> None:
    def failing(name: str) -> str:
        raise KeyError(f"{name} holds {API_KEY}")

    with pytest.raises(OutboundAuthError, match="the secret bank/api-key could not be read") as caught:
        ApiKeyAuth("bank/api-key", "header", "X-Api-Key", secrets=failing).apply(
            PreparedRequest("GET", "https://x.example/", {}, None)
        )
    assert_no_secret(str(caught.value))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- OAuth2 ------------------------------------------------------------------------------------------


def test_a_token_is_fetched_once_and_shared_by_every_instance(bank: DemoBank) -> None:
    for _ in range(3):
        status, _ = send(oauth(bank).apply(accounts_request(bank)))
        assert status == 200
    assert bank.tokens_issued == 1
    assert bank.token_requests[0] == {"grant_type": "client_credentials", "scope": "payments"}


def test_tokens_are_cached_per_client_and_scopes(bank: DemoBank) -> None:
    oauth(bank).apply(accounts_request(bank))
    OAuth2ClientCredentials(
        f"{bank.url}/oauth/token", "bank/oauth-client", ("payments", "read"), secrets=lookup
    ).apply(accounts_request(bank))
    assert bank.tokens_issued == 2
    assert bank.token_requests[1]["scope"] == "payments read"


def test_a_token_is_refreshed_when_it_expires(bank: DemoBank) -> None:
    bank.token_expires_in = 120
    clock = Clock()
    auth = oauth(bank, clock=clock)
    first = auth.access_token()
    clock.now += 59  # 120 s less the 60 s safety margin
    assert auth.access_token() == first
    clock.now += 1
    second = auth.access_token()
    assert second != first and bank.tokens_issued == 2
    assert send(auth.apply(accounts_request(bank)))[0] == 200


def test_a_short_lived_token_is_kept_for_half_its_life(bank: DemoBank) -> None:
    bank.token_expires_in = 10
    clock = Clock()
    auth = oauth(bank, clock=clock)
    auth.access_token()
    clock.now += 4.9
    auth.access_token()
    clock.now += 0.1
    auth.access_token()
    assert bank.tokens_issued == 2


def test_invalidate_makes_the_next_request_fetch_a_new_token(bank: DemoBank) -> None:
    auth = oauth(bank)
    signed = auth.apply(accounts_request(bank))
    bank.revoke_tokens()
    assert send(signed)[0] == 401
    assert auth.invalidate() is True
    assert send(auth.apply(accounts_request(bank)))[0] == 200
    assert bank.tokens_issued == 2


def test_concurrent_requests_share_one_token_fetch(bank: DemoBank) -> None:
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(oauth(bank).access_token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and bank.tokens_issued == 1


def test_a_refused_client_is_an_error_without_its_secret(
    bank: DemoBank, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = json.dumps({"clientId": CLIENT_ID, "clientSecret": "WRONG-" + CLIENT_SECRET})
    auth = OAuth2ClientCredentials(f"{bank.url}/oauth/token", "bank/oauth-client", secrets=lambda _: wrong)
    with pytest.raises(
        OutboundAuthError,
        match=r"token endpoint http://127\.0\.0\.1:\d+/oauth/token answered HTTP 401 \(invalid_client\)",
    ) as caught:
        auth.access_token()
    assert_no_secret(str(caught.value))
    assert_no_secret(caplog.text)


def test_an_unreachable_token_endpoint_is_an_error() -> None:
    with serve() as stopped:
        url = f"{stopped.url}/oauth/token"
    auth = OAuth2ClientCredentials(url, "bank/oauth-client", secrets=lookup)
    with pytest.raises(OutboundAuthError, match="could not be reached"):
        auth.access_token()


@pytest.mark.parametrize("secret", ["not json", '{"clientId": "only-id"}', '["x"]'])
def test_a_malformed_client_secret_is_an_error_that_does_not_quote_it(secret: str) -> None:
    auth = OAuth2ClientCredentials(
        "http://127.0.0.1:9/oauth/token", "bank/oauth-client", secrets=lambda _: secret
    )
    with pytest.raises(OutboundAuthError, match="must be JSON with clientId and clientSecret") as caught:
        auth.access_token()
    assert secret not in str(caught.value)


def test_client_secrets_travel_only_over_https_except_on_loopback() -> None:
    with pytest.raises(ValueError, match="must be https"):
        OAuth2ClientCredentials("http://idp.example/token", "s", secrets=lookup)
    OAuth2ClientCredentials("https://idp.example/token", "s", secrets=lookup)
    OAuth2ClientCredentials("http://localhost:8001/token", "s", secrets=lookup)


# -- SigV4 -------------------------------------------------------------------------------------------


def test_sigv4_signs_with_the_process_credentials_and_the_bank_verifies_it() -> None:
    # tests/conftest.py sets the process's credentials to testing/testing.
    with serve(sigv4_credentials=("testing", "testing")) as bank:
        request = prepare(
            bank.url,
            OPERATIONS["createTransfer"],
            {"body": {"fromAccount": "acc-001", "toAccount": "acc-002", "amount": 5, "currency": "EUR"}},
        )
        signed = SigV4Auth("execute-api", "eu-west-1").apply(request)
        assert (
            signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
            and "/eu-west-1/execute-api/aws4_request" in signed.headers["Authorization"]
        )
        assert "X-Amz-Date" in signed.headers and "Authorization" not in request.headers
        assert send(request)[0] == 401
        assert send(signed)[0] == 201
        received = bank.requests[-1].headers
        assert received["authorization"] == signed.headers["Authorization"]
        assert received["x-amz-date"] == signed.headers["X-Amz-Date"]
        tampered = PreparedRequest(signed.method, signed.url, signed.headers, signed.body.replace(b"5", b"6"))
        assert send(tampered)[0] == 401


def test_sigv4_sends_a_session_token_and_never_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = Credentials("AKIDEXAMPLE", "secret-key", SESSION_TOKEN)
    with serve(sigv4_credentials=("AKIDEXAMPLE", "secret-key")) as bank:
        auth = SigV4Auth("execute-api", "us-east-1", credentials=credentials)
        signed = auth.apply(prepare(bank.url, OPERATIONS["getBalance"], {"accountId": "acc-003"}))
        assert signed.headers["X-Amz-Security-Token"] == SESSION_TOKEN
        assert auth.secrets_in(signed) == (SESSION_TOKEN,)
        assert send(signed) == (200, {"accountId": "acc-003", "balance": 320.5, "currency": "GBP"})
    assert_no_secret(caplog.text)


# -- configuration ------------------------------------------------------------------------------------


def never_read(name: str) -> str:
    raise AssertionError("a configuration is parsed without reading secrets")


def test_every_configuration_shape_parses_without_reading_a_secret() -> None:
    api_key = auth_from_config(
        {
            "apiKey": {
                "secret": "bank/api-key",
                "location": "header",
                "parameterName": "X-Api-Key",
                "prefix": "",
            }
        },
        never_read,
    )
    assert api_key == ApiKeyAuth("bank/api-key", "header", "X-Api-Key", secrets=never_read)
    oauth2 = auth_from_config(
        {
            "oauth2": {
                "tokenUrl": "http://127.0.0.1:8001/oauth/token",
                "secret": "bank/oauth-client",
                "scopes": ["payments"],
            }
        },
        never_read,
    )
    assert oauth2 == OAuth2ClientCredentials(
        "http://127.0.0.1:8001/oauth/token", "bank/oauth-client", ("payments",), secrets=never_read
    )
    assert auth_from_config(
        {"sigv4": {"service": "execute-api", "region": "eu-west-1"}}, never_read
    ) == SigV4Auth("execute-api", "eu-west-1")
    assert auth_from_config(None, never_read) is None
    assert auth_from_config({"none": {}}, never_read) is None
    assert auth_from_config({"apiKey": {"secret": "s", "parameterName": "k"}}, never_read) == ApiKeyAuth(
        "s", "header", "k", secrets=never_read
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "exactly one of apiKey, oauth2, sigv4, none"),
        ({"apiKey": {}, "sigv4": {}}, "exactly one of"),
        ({"basic": {}}, "exactly one of"),
        ("apiKey", "exactly one of"),
        ({"apiKey": []}, "auth.apiKey must be an object"),
        (
            {"apiKey": {"secret": "s", "parameterName": "k", "where": "x"}},
            "auth.apiKey has unknown keys where",
        ),
        (
            {"apiKey": {"secret": "s", "parameterName": "k", "location": "cookie"}},
            "location must be 'header' or 'query'",
        ),
        ({"apiKey": {"secret": "s"}}, "auth.apiKey.parameterName must be a non-empty string"),
        ({"apiKey": {"secret": "", "parameterName": "k"}}, "auth.apiKey.secret must be a non-empty string"),
        (
            {"oauth2": {"tokenUrl": "https://idp.example/t", "secret": "s", "scopes": "payments"}},
            "scopes must be a list",
        ),
        (
            {"oauth2": {"tokenUrl": "ftp://idp.example/t", "secret": "s"}},
            "auth.oauth2.tokenUrl must be an http",
        ),
        (
            {"oauth2": {"tokenUrl": "http://idp.example/t", "secret": "s"}},
            "auth.oauth2.tokenUrl must be https",
        ),
        ({"oauth2": {"tokenUrl": "https://u:p@idp.example/t", "secret": "s"}}, "must not carry credentials"),
        ({"oauth2": {"tokenUrl": "https://idp.example/t", "secret": "s", "audience": 3}}, "audience"),
        ({"sigv4": {"service": "execute-api"}}, "auth.sigv4.region must be a non-empty string"),
        ({"none": {"x": 1}}, "auth.none has unknown keys x"),
    ],
)
def test_bad_configurations_are_value_errors_saying_what_is_wrong(config: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        auth_from_config(config, never_read)


# -- httpx adapter ------------------------------------------------------------------------------------


def test_the_httpx_adapter_sends_an_api_key(bank: DemoBank) -> None:
    auth = as_httpx_auth(ApiKeyAuth("bank/api-key", "query", "api_key", secrets=lookup))
    assert isinstance(auth, httpx2.Auth)
    with httpx2.Client(auth=auth) as client:
        response = client.get(f"{bank.url}/accounts", params={"currency": "GBP"})
    assert response.status_code == 200 and [a["accountId"] for a in response.json()["accounts"]] == [
        "acc-003"
    ]


def test_the_httpx_adapter_refreshes_a_revoked_token_once(bank: DemoBank) -> None:
    auth = as_httpx_auth(oauth(bank))
    with httpx2.Client(auth=auth) as client:
        assert client.get(f"{bank.url}/accounts").status_code == 200
        bank.revoke_tokens()
        assert client.get(f"{bank.url}/accounts").status_code == 200
    assert bank.tokens_issued == 2


def test_the_httpx_adapter_signs_the_request_httpx_sends() -> None:
    body = {
        "fromAccount": "acc-001",
        "toAccount": "acc-002",
        "amount": 1.25,
        "currency": "EUR",
        "reference": "x y",
    }
    with serve(sigv4_credentials=("testing", "testing")) as bank:
        auth = as_httpx_auth(SigV4Auth("execute-api", "eu-west-1"))
        with httpx2.Client(auth=auth, headers={"X-Extra": "1"}) as client:
            response = client.post(f"{bank.url}/transfers", json=body, headers={"Idempotency-Key": "k-1"})
        assert response.status_code == 201, response.text
        assert bank.executed_transfers == 1


def test_the_httpx_adapter_works_in_an_async_client(bank: DemoBank) -> None:
    auth = as_httpx_auth(oauth(bank))

    async def fetch() -> int:
        async with httpx2.AsyncClient(auth=auth) as client:
            return (await client.get(f"{bank.url}/accounts/acc-001/balance")).status_code

    assert anyio.run(fetch) == 200
    assert bank.tokens_issued == 1
