"""The token vault: model providers' API keys, read from Secrets Manager at call time.

A model configuration names its key by ``apiKeyArn``, an AgentCore token-vault ARN::

    arn:aws:bedrock-agentcore:<region>:<account>:token-vault/<vault>/apikeycredentialprovider/<provider>

which this deployment maps to the secret ``<VAULT_SECRET_PREFIX><vault>/<provider>`` (for example
``AgentHarness/vault/default/openai``). The secret holds the key as a plain string or as
``{"apiKey": "...", "apiBases": ["https://llm.internal.example/v1"]}``. Region and account in the
ARN are not used: the vault is this stack's.

A key goes to its provider's own endpoint, or to an ``apiBase`` that its secret lists in
``apiBases``: whoever may set a model configuration (CreateHarness, or an InvokeHarness override)
must not be able to point a stored key at a server of their choosing.

The value is returned to the model-call code that injects it into the outbound request, and is
cached per ARN for a short time. It is never logged, and errors name the ARN, never the value.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from harness.adapters.clients import client
from harness.errors import VaultSecretError
from harness.providers.base import ModelRequestError, ModelUnavailableError
from harness.quiet_logs import QuietWhile

DEFAULT_TTL_SECONDS = 300.0
_ARN = re.compile(
    r"arn:aws[a-z-]*:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:token-vault/"
    r"(?P<vault>[a-zA-Z0-9.-]+)/apikeycredentialprovider/(?P<provider>[a-zA-Z0-9.-]+)"
)
_NOT_FOUND = {"ResourceNotFoundException"}
_DENIED = {
    "AccessDeniedException",
    "AccessDenied",
    "DecryptionFailure",
    "InvalidRequestException",  # a secret scheduled for deletion
    "KMSAccessDeniedException",
}


# GetSecretValue responses (the key) never reach botocore's DEBUG log.
_quiet = QuietWhile("botocore.parsers")


# Gateway targets' credentials live under <prefix>targets/: no apiKeyArn may name them, so a
# harness's model configuration cannot send an operator's target credential to a provider.
TARGETS_FOLDER = "targets"


def secret_name(secret_prefix: str, api_key_arn: str) -> str:
    """The Secrets Manager name of the credential an ``apiKeyArn`` names."""
    match = _ARN.fullmatch(api_key_arn)
    if match is None:
        raise ModelRequestError(
            f"apiKeyArn {api_key_arn} is not a token-vault API key credential provider ARN"
        )
    if match["vault"] == TARGETS_FOLDER:
        raise ModelRequestError(
            f"apiKeyArn {api_key_arn} names the vault of gateway target credentials, which models "
            "and remote_mcp headers may not use"
        )
    return f"{secret_prefix}{match['vault']}/{match['provider']}"


@dataclass(frozen=True)
class _Credential:
    key: str
    # The endpoints (apiBase values) the key may be sent to besides the provider's own.
    api_bases: frozenset[str]


def _normalized(api_base: str) -> str:
    return api_base.strip().rstrip("/")


def _credential(secret: str) -> _Credential:
    """A secret value: the key as a plain string, or ``{"apiKey": ..., "apiBases": [...]}``."""
    try:
        document = json.loads(secret)
    except ValueError:
        return _Credential(secret.strip(), frozenset())
    if not isinstance(document, dict):
        return _Credential(secret.strip(), frozenset())
    key = document.get("apiKey")
    bases = document.get("apiBases")
    allowed = [_normalized(b) for b in bases if isinstance(b, str)] if isinstance(bases, list) else []
    return _Credential(key.strip() if isinstance(key, str) else "", frozenset(allowed))


class Vault:
    def __init__(
        self,
        secret_prefix: str,
        clock: Callable[[], float] = time.monotonic,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        self._prefix = secret_prefix
        self._clock = clock
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, _Credential]] = {}
        self._secrets: dict[str, tuple[float, str]] = {}

    def secret(self, name: str) -> str:
        """The secret ``<prefix>targets/<name>`` (a gateway target's API key or OAuth client),
        cached briefly."""
        now = self._clock()
        cached = self._secrets.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        if not self._prefix:
            raise VaultSecretError("this function has no access to the token vault (VAULT_SECRET_PREFIX)")
        try:
            with _quiet:
                response = client("secretsmanager").get_secret_value(
                    SecretId=f"{self._prefix}{TARGETS_FOLDER}/{name}"
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise VaultSecretError(f"vault secret {name} could not be read ({code})") from None
        except BotoCoreError as error:
            raise VaultSecretError(f"the token vault could not be reached ({type(error).__name__})") from None
        value = response.get("SecretString")
        if value is None:
            value = bytes(response.get("SecretBinary", b"")).decode("utf-8", errors="replace")
        if not value:
            raise VaultSecretError(f"vault secret {name} is empty")
        self._secrets[name] = (now + self._ttl, value)
        return str(value)

    def api_key(self, api_key_arn: str, api_base: str | None = None) -> str:
        """The API key ``api_key_arn`` names, for a call to ``api_base`` (None: the provider's own
        endpoint). ModelRequestError when the key is missing, unreadable, or not bound to that
        ``apiBase``: a configuration must not be able to send a key to a server of its choosing."""
        credential = self._credential(api_key_arn)
        if api_base is not None and _normalized(api_base) not in credential.api_bases:
            raise ModelRequestError(
                f"the credential named by apiKeyArn {api_key_arn} is not allowed for the configured "
                "apiBase; list that apiBase in the secret's apiBases"
            )
        return credential.key

    def _credential(self, api_key_arn: str) -> _Credential:
        now = self._clock()
        cached = self._cache.get(api_key_arn)
        if cached is not None and cached[0] > now:
            return cached[1]
        if not self._prefix:
            raise ModelRequestError("this function has no access to the token vault (VAULT_SECRET_PREFIX)")
        name = secret_name(self._prefix, api_key_arn)
        try:
            with _quiet:
                response = client("secretsmanager").get_secret_value(SecretId=name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _NOT_FOUND:
                raise ModelRequestError(
                    f"the credential named by apiKeyArn {api_key_arn} was not found in the vault"
                ) from None
            if code in _DENIED:
                raise ModelRequestError(
                    f"the credential named by apiKeyArn {api_key_arn} could not be read from the vault "
                    f"({code})"
                ) from None
            raise ModelUnavailableError(f"the token vault could not be read ({code})") from None
        except BotoCoreError as error:
            raise ModelUnavailableError(
                f"the token vault could not be reached ({type(error).__name__})"
            ) from None
        if "SecretString" in response:
            credential = _credential(response["SecretString"])
        else:
            credential = _credential(
                bytes(response.get("SecretBinary", b"")).decode("utf-8", errors="replace")
            )
        if not credential.key:
            raise ModelRequestError(f"the credential named by apiKeyArn {api_key_arn} is empty")
        self._cache[api_key_arn] = (now + self._ttl, credential)
        return credential
