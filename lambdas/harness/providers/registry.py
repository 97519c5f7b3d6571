"""Which provider serves a model configuration (the union members of HarnessModelConfiguration)."""

from __future__ import annotations

from typing import Any

from harness.errors import ValidationError
from harness.providers.base import ModelProvider
from harness.providers.local import MODEL_ID_PREFIX, LocalProvider


def unsupported_reason(kind: str, config: dict[str, Any]) -> str | None:
    """Why this deployment cannot serve the configuration yet, or None when it can."""
    if kind == "liteLlmModelConfig" and str(config.get("modelId", "")).startswith(MODEL_ID_PREFIX):
        return None
    if kind == "bedrockModelConfig":
        api_format = config.get("apiFormat", "converse_stream")
        return None if api_format == "converse_stream" else f"apiFormat {api_format} is not supported yet"
    if kind == "liteLlmModelConfig":
        return f"only the offline model ids {MODEL_ID_PREFIX}* are supported through liteLlmModelConfig yet"
    return f"{kind} is not supported by this deployment yet"


def provider_for(model: dict[str, Any]) -> ModelProvider:
    if len(model) != 1:
        raise ValidationError("model must set exactly one provider configuration.")
    ((kind, config),) = model.items()
    reason = unsupported_reason(kind, config)
    if reason:
        raise ValidationError(f"model.{kind}: {reason}")
    if kind == "bedrockModelConfig":
        from harness.providers.bedrock import BedrockProvider  # imported only when used: cold starts

        return BedrockProvider()
    return LocalProvider()
