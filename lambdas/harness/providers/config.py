"""A provider's member of the model configuration (``openAiModelConfig``, ``geminiModelConfig``,
...): the settings every provider that calls a remote API reads the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.providers.base import ModelRequest, ModelRequestError


def config_for(request: ModelRequest, key: str) -> dict[str, Any]:
    """The configuration under ``key``, which must name a ``modelId``."""
    config = request.model_config.get(key)
    if not isinstance(config, dict) or not config.get("modelId"):
        raise ModelRequestError(f"{key}.modelId is required")
    return config


def inference_settings(config: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The inference settings the configuration sets (``maxTokens``, ``temperature``, ...), under the
    names the provider's API gives them (``names``: ours -> theirs)."""
    return {theirs: config[ours] for ours, theirs in names.items() if ours in config}


def additional_params(config: dict[str, Any], key: str, reserved: frozenset[str]) -> dict[str, Any]:
    """``additionalParams``: any request field except the ``reserved`` ones, which the provider owns."""
    params = config.get("additionalParams") or {}
    if not isinstance(params, dict):
        raise ModelRequestError(f"{key}.additionalParams must be an object")
    clash = sorted(set(params) & reserved)
    if clash:
        raise ModelRequestError(f"{key}.additionalParams may not set {', '.join(clash)}")
    return params


def api_key(api_key_for: Callable[[str], str] | None, config: dict[str, Any], key: str) -> str:
    """The API key that ``apiKeyArn`` names, read through ``api_key_for`` (the vault)."""
    arn = config.get("apiKeyArn")
    if not arn or api_key_for is None:
        raise ModelRequestError(f"{key}.apiKeyArn is required")
    secret = api_key_for(arn)
    if not secret:
        raise ModelRequestError(f"the secret named by {key}.apiKeyArn is empty")
    return secret
