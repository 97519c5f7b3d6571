"""Which provider serves a model configuration (the union members of HarnessModelConfiguration).

Provider modules, and the client libraries they use, are imported only when a configuration
needs them, so a cold start pays only for the provider it calls.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from harness.errors import ValidationError
from harness.providers.base import ModelProvider, ModelRequestError
from harness.providers.local import MODEL_ID_PREFIX, LocalProvider

# Union member -> provider kind (the name in logs, metrics and invocation records).
KINDS = {
    "bedrockModelConfig": "bedrock",
    "openAiModelConfig": "openai",
    "geminiModelConfig": "gemini",
    "liteLlmModelConfig": "litellm",
}
LOCAL = "local"
# Provider kind -> (module, class) of the providers that live in their own module.
_MODULES = {
    "bedrock": ("harness.providers.bedrock", "BedrockProvider"),
    "openai": ("harness.providers.openai", "OpenAIProvider"),
    "gemini": ("harness.providers.gemini", "GeminiProvider"),
    "litellm": ("harness.providers.litellm", "LiteLLMProvider"),
}
_NEEDS_KEY = {"openai", "gemini", "litellm"}
# Provider kind -> the client library it needs (litellm is an optional extra of a deployment).
_LIBRARIES = {"openai": "openai", "gemini": "google.genai", "litellm": "litellm"}

# The vault's lookup: (apiKeyArn, the apiBase the key is for, None for the provider's own) -> key.
VaultLookup = Callable[[str, str | None], str]


def member(model: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one union member of a model configuration, as (member name, its configuration)."""
    if len(model) != 1:
        raise ValidationError("model must set exactly one provider configuration.")
    ((name, config),) = model.items()
    return name, config


def kind_of(model: dict[str, Any]) -> str:
    """``bedrock``, ``openai``, ``gemini``, ``litellm`` or ``local``."""
    name, config = member(model)
    if name == "liteLlmModelConfig" and str(config.get("modelId", "")).startswith(MODEL_ID_PREFIX):
        return LOCAL
    return KINDS[name]


def endpoint_of(model: dict[str, Any]) -> str:
    """What one circuit breaker guards: the provider kind and the endpoint it calls."""
    _, config = member(model)
    return f"{kind_of(model)}|{config.get('apiBase', '')}"


def library_installed(kind: str) -> bool:
    """Whether the client library of a provider kind is part of this deployment (found, not imported:
    the API function answers this without paying for the import)."""
    library = _LIBRARIES.get(kind)
    if library is None:
        return True
    try:
        return importlib.util.find_spec(library) is not None
    except ModuleNotFoundError:  # a parent package (``google``) is missing
        return False


def unsupported_reason(kind: str, config: dict[str, Any]) -> str | None:
    """Why this deployment cannot serve the configuration, or None when it can."""
    if kind == "bedrockModelConfig":
        api_format = config.get("apiFormat", "converse_stream")
        return None if api_format == "converse_stream" else f"apiFormat {api_format} is not supported yet"
    if kind not in KINDS:
        return f"{kind} is not supported by this deployment"
    provider = kind_of({kind: config})
    if not library_installed(provider):
        library = _LIBRARIES[provider]
        return f"the {library} library of the {provider} provider is not installed in this deployment"
    return None


def _no_vault(api_key_arn: str, api_base: str | None = None) -> str:
    raise ModelRequestError(f"no token vault is configured to read apiKeyArn {api_key_arn}")


def key_lookup(model: dict[str, Any], vault: VaultLookup | None) -> Callable[[str], str]:
    """What a provider calls to get its key: the vault's lookup, bound to the endpoint this
    configuration sends the key to, so a key only reaches an ``apiBase`` its secret allows."""
    _, config = member(model)
    api_base = config.get("apiBase") or None
    lookup = vault or _no_vault
    return lambda api_key_arn: lookup(api_key_arn, api_base)


def _module(kind: str) -> Any:
    module_name, _ = _MODULES[kind]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ModelRequestError(f"the {kind} provider is not installed in this deployment") from error


def provider_for(model: dict[str, Any], vault: VaultLookup | None = None) -> ModelProvider:
    """The provider that serves ``model``; ``vault`` reads an ``apiKeyArn`` (see ``key_lookup``)."""
    name, config = member(model)
    reason = unsupported_reason(name, config)
    if reason:
        raise ValidationError(f"model.{name}: {reason}")
    kind = kind_of(model)
    if kind == LOCAL:
        return LocalProvider()
    provider_class = getattr(_module(kind), _MODULES[kind][1])
    if kind in _NEEDS_KEY:
        provider: ModelProvider = provider_class(api_key_for=key_lookup(model, vault))
        return provider
    bedrock: ModelProvider = provider_class()
    return bedrock


def supports_tools(model: dict[str, Any]) -> bool:
    """Whether the model can be offered tools (asked before a turn starts, never mid-call)."""
    kind = kind_of(model)
    if kind in {LOCAL, "bedrock"}:
        return True
    _, config = member(model)
    try:
        check: Callable[[dict[str, Any]], bool] = _module(kind).supports_tools
    except (ModelRequestError, AttributeError):
        return True  # the provider decides at call time
    return bool(check(config))
