"""Which outbound credentials a gateway target's ``auth`` configuration describes.

Exactly one member::

    {"apiKey": {"secret": "bank/api-key", "location": "header", "parameterName": "X-Api-Key", "prefix": ""}}
    {"oauth2": {"tokenUrl": "https://idp.example/oauth/token", "secret": "bank/oauth-client",
                "scopes": ["payments"], "audience": "https://bank.example"}}
    {"sigv4": {"service": "execute-api", "region": "eu-west-1"}}
    null, or {"none": {}}

``secret`` names a vault secret: parsing reads none, the credentials read theirs per request (see
``outbound_auth`` and ``oauth2_client``).
"""

from __future__ import annotations

from typing import Any

from harness.tools.oauth2_client import OAuth2ClientCredentials
from harness.tools.outbound_auth import ApiKeyAuth, OutboundAuth, SecretLookup, SigV4Auth

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
