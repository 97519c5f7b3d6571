"""Provider keys come only from the vault and never leave the outbound request.

The canary test plants a key in the emulator's Secrets Manager, runs a turn with a tool call and a
failover (and a turn that the provider rejects with an error that quotes the key), then scans
everything the system wrote: every DynamoDB item, every S3 object version, every CloudWatch Logs
event, every Step Functions execution (input, output, history), captured output and log records,
and the streams returned to the client. The key must appear nowhere, while the fake servers prove
they received it in their Authorization header (so the scan could have failed).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.observability import logger as powertools_logger
from harness.adapters.vault import Vault, secret_name
from harness.providers.base import ModelRequestError
from local_runtime.provision import Deployment
from tests.unit.provider_servers import CHAT_DONE, FakeServer, Reply, chat_chunk, chat_usage, openai_error

from .support import (
    ACCOUNT_ID,
    REGION,
    Api,
    clear_caches,
    everything_stored,
    inline_tool,
    new_session_id,
    tool_result_message,
    tool_use_id_of,
    unique_name,
)

VAULT_ARN = f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_ID}:token-vault/default/apikeycredentialprovider/"


@pytest.fixture(autouse=True)
def fresh_loop() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


def plant(aws: Any, deployment: Deployment, value: str, *, kms: bool = True) -> str:
    """Store a provider key as the README tells an operator to; return its apiKeyArn."""
    provider = f"p-{uuid.uuid4().hex[:10]}"
    arn = VAULT_ARN + provider
    kwargs: dict[str, Any] = {"Name": secret_name(deployment.environment()["VAULT_SECRET_PREFIX"], arn)}
    if kms:
        kwargs["KmsKeyId"] = deployment.kms_keys["EncryptionKey"]
    aws.secretsmanager.create_secret(SecretString=value, **kwargs)
    return arn


# -- the canary ----------------------------------------------------------------------------------------


def test_a_canary_key_reaches_the_provider_and_nothing_else(
    api: Api,
    aws: Any,
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    primary, fallback = FakeServer(), FakeServer()
    allowed = [f"{primary.url}/v1", f"{fallback.url}/v1/"]
    arn = plant(aws, deployment, json.dumps({"apiKey": canary, "apiBases": allowed}))
    # The system's work is logged at every level of every logger (botocore, the openai SDK, httpx,
    # Powertools), as in a function whose DEBUG logging is switched on.
    caplog.set_level(logging.DEBUG)
    try:
        model = {
            "openAiModelConfig": {
                "modelId": "primary-model",
                "apiKeyArn": arn,
                "apiBase": f"{primary.url}/v1",
                "additionalParams": {
                    "fallbackModels": [
                        {
                            "openAiModelConfig": {
                                "modelId": "fallback-model",
                                "apiKeyArn": arn,
                                "apiBase": f"{fallback.url}/v1",
                            }
                        }
                    ]
                },
            }
        }
        harness = api.create_harness(model=model, tools=[inline_tool("lookup")])
        session, actor = new_session_id(), unique_name()
        call = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": ""},
        }
        primary.push(
            Reply(
                chunks=[
                    chat_chunk({"tool_calls": [call]}),
                    chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Oslo"}'}}]}),
                    chat_chunk({}, "tool_calls"),
                    CHAT_DONE,
                ]
            )
        )
        paused = api.invoke(harness["harnessId"], "Weather in Oslo?", session_id=session, actor_id=actor)
        primary.push(openai_error(500, "server_error", "internal", f"upstream rejected key {canary}"))
        fallback.push(Reply(chunks=[chat_chunk({"content": "Cold."}, "stop"), chat_usage(5, 1), CHAT_DONE]))
        resumed = api.invoke(
            harness["harnessId"],
            tool_result_message(tool_use_id_of(paused.items()), "-3C"),
            session_id=session,
            actor_id=actor,
        )
        assert "Cold." in json.dumps(resumed.items())
        # A provider that quotes the key in its error (as real ones do for a wrong key): no failover.
        primary.push(
            openai_error(401, "invalid_request_error", "invalid_api_key", f"Incorrect API key: {canary}")
        )
        rejected = api.invoke(harness["harnessId"], "again", session_id=session, actor_id=actor)
        assert rejected.events()[-1][1] == "runtimeClientError"

        # The key did reach the providers, in the Authorization header only.
        received = primary.requests + fallback.requests
        assert len(primary.requests) == 3 and len(fallback.requests) == 1
        assert all(r.headers["authorization"] == f"Bearer {canary}" for r in received)
        assert all(canary not in json.dumps(r.body) for r in received)
    finally:
        caplog.set_level(logging.WARNING)  # the scan below is the test's own work
        primary.close()
        fallback.close()

    written: list[tuple[str, str]] = list(everything_stored(aws))
    written += [("stream", r.raw_body.decode("utf-8", errors="replace")) for r in (paused, resumed, rejected)]
    captured = capsys.readouterr()
    written += [("stdout", captured.out), ("stderr", captured.err), ("log", caplog.text)]
    formatter = powertools_logger.registered_formatter
    written += [("log-record", formatter.format(record)) for record in caplog.records]
    written += [("log-record", json.dumps(vars(record), default=str)) for record in caplog.records]
    assert any(where.startswith("dynamodb:") for where, _ in written)
    assert any(where.startswith("sfn-history:") for where, _ in written)
    assert any("model fallback" in text for where, text in written if where.startswith("log"))
    leaks = [where for where, text in written if canary in text or canary[len("sk-canary-") :] in text]
    assert leaks == []


# -- the vault ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_read_as_plain_text_or_as_an_api_key_document(aws: Any, deployment: Deployment) -> None:
    prefix = deployment.environment()["VAULT_SECRET_PREFIX"]
    plain = plant(aws, deployment, "  sk-plain  ")
    document = plant(aws, deployment, json.dumps({"apiKey": "sk-doc"}), kms=False)
    vault = Vault(prefix)
    assert vault.api_key(plain) == "sk-plain"
    assert vault.api_key(document) == "sk-doc"


def test_a_key_is_cached_briefly(aws: Any, deployment: Deployment) -> None:
    prefix = deployment.environment()["VAULT_SECRET_PREFIX"]
    arn = plant(aws, deployment, "sk-first")
    clock = Clock()
    vault = Vault(prefix, clock=clock, ttl_seconds=300)
    assert vault.api_key(arn) == "sk-first"
    aws.secretsmanager.put_secret_value(SecretId=secret_name(prefix, arn), SecretString="sk-rotated")
    clock.now = 299
    assert vault.api_key(arn) == "sk-first"
    clock.now = 300
    assert vault.api_key(arn) == "sk-rotated"


def test_a_key_is_sent_only_to_an_api_base_its_secret_allows(aws: Any, deployment: Deployment) -> None:
    prefix = deployment.environment()["VAULT_SECRET_PREFIX"]
    plain = plant(aws, deployment, "sk-plain")
    bound = plant(
        aws, deployment, json.dumps({"apiKey": "sk-bound", "apiBases": ["http://llm.internal/v1/"]})
    )
    vault = Vault(prefix)
    assert vault.api_key(plain) == "sk-plain"  # the provider's own endpoint
    assert vault.api_key(bound, "http://llm.internal/v1") == "sk-bound"
    for arn, api_base in ((plain, "http://llm.internal/v1"), (bound, "https://elsewhere.example/v1")):
        with pytest.raises(ModelRequestError, match="not allowed for the configured apiBase") as refused:
            vault.api_key(arn, api_base)
        assert "sk-" not in str(refused.value) and api_base not in str(refused.value)


def test_a_missing_key_is_a_client_error_that_names_the_arn(deployment: Deployment) -> None:
    arn = VAULT_ARN + "nobody"
    with pytest.raises(ModelRequestError) as missing:
        Vault(deployment.environment()["VAULT_SECRET_PREFIX"]).api_key(arn)
    assert str(missing.value) == f"the credential named by apiKeyArn {arn} was not found in the vault"
    assert missing.value.__cause__ is None and missing.value.__suppress_context__


@pytest.mark.parametrize(
    ("prefix", "arn", "message"),
    [
        ("AgentHarness/vault/", "arn:aws:secretsmanager:us-east-1:1:secret:x", "is not a token-vault"),
        ("", VAULT_ARN + "x", "no access to the token vault"),
        (
            "AgentHarness/vault/",
            f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_ID}:token-vault/targets/apikeycredentialprovider/bank",
            "gateway target credentials",
        ),
    ],
    ids=["not-a-vault-arn", "no-vault-grant", "a-gateway-target-credential"],
)
def test_a_key_the_function_cannot_name_is_a_client_error(prefix: str, arn: str, message: str) -> None:
    with pytest.raises(ModelRequestError, match=message):
        Vault(prefix).api_key(arn)


def test_an_empty_key_is_a_client_error(aws: Any, deployment: Deployment) -> None:
    arn = plant(aws, deployment, json.dumps({"apiKey": ""}))
    with pytest.raises(ModelRequestError, match="is empty"):
        Vault(deployment.environment()["VAULT_SECRET_PREFIX"]).api_key(arn)


def test_the_model_call_reads_the_key_from_this_functions_vault(api: Api) -> None:
    """The CallModel function's vault is wired: a missing key ends the turn with a clear error."""
    server = FakeServer()
    try:
        model = {
            "openAiModelConfig": {
                "modelId": "m",
                "apiKeyArn": VAULT_ARN + "absent",
                "apiBase": f"{server.url}/v1",
            }
        }
        harness = api.create_harness(model=model)
        response = api.invoke(harness["harnessId"], "hi", session_id=new_session_id(), actor_id=unique_name())
        kind, name, payload = response.events()[-1]
        assert (kind, name) == ("exception", "runtimeClientError")
        assert "was not found in the vault" in payload["message"]
        assert server.requests == []
    finally:
        server.close()
