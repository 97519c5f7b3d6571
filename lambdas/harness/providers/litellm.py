"""Anything LiteLLM routes (an optional extra: ``pip install litellm``), through
``litellm.completion(..., stream=True)``.

LiteLLM speaks the OpenAI Chat Completions format, so the translation is the OpenAI one
(``harness.providers.openai_chat.chat_request`` and its stream reader): one
translation, not two. ``litellm`` is imported on first use; when it is not installed, ``stream``
raises ``ModelRequestError`` and ``supports_tools`` answers True (nothing says otherwise).

``apiKeyArn`` is optional here (a local Ollama needs none); ``apiBase`` becomes ``api_base``;
``additionalParams`` are passed to ``litellm.completion`` as keyword arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from harness.providers.base import (
    ModelCallError,
    ModelEvent,
    ModelRequest,
    ModelRequestError,
    ModelUnavailableError,
)
from harness.providers.call_errors import status_error
from harness.providers.config import additional_params, config_for, inference_settings
from harness.providers.openai_chat import ChatStreamReader, chat_request
from harness.providers.openai_errors import openai_error
from harness.providers.tool_use_ids import request_seed

CONFIG_KEY = "liteLlmModelConfig"
DEFAULT_TIMEOUT_SECONDS = 120.0
LOCAL_MODEL_PREFIX = "local/"  # the offline models the registry serves itself
RESERVED_PARAMS = frozenset({"model", "messages", "stream", "api_key"})
NOT_INSTALLED = "litellm is not installed: pip install litellm"


def _import_litellm() -> ModuleType | None:
    # LiteLLM otherwise fetches its model map from the internet at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        return None
    litellm.suppress_debug_info = True
    return litellm


def supports_tools(config: dict[str, Any]) -> bool:
    """False only when LiteLLM knows the model and says it cannot call functions."""
    model = str(config.get("modelId", ""))
    if not model or model.startswith(LOCAL_MODEL_PREFIX):
        return True
    litellm = _import_litellm()
    if litellm is None:
        return True
    try:
        info = litellm.get_model_info(model=model)
    except Exception:  # a model LiteLLM has not mapped: it says nothing either way
        return True
    return info.get("supports_function_calling") is not False


def to_litellm(request: ModelRequest) -> dict[str, Any]:
    """Keyword arguments for ``litellm.completion`` (without the API key)."""
    config = config_for(request, CONFIG_KEY)
    kwargs = chat_request(config["modelId"], request)
    if config.get("apiBase"):
        kwargs["api_base"] = config["apiBase"]
    names = {"maxTokens": "max_tokens", "temperature": "temperature", "topP": "top_p"}
    kwargs.update(inference_settings(config, names))
    kwargs.update(additional_params(config, CONFIG_KEY, RESERVED_PARAMS))
    return kwargs


def litellm_error(error: Exception, secrets: tuple[str, ...]) -> ModelCallError:
    """A LiteLLM exception as a caller-safe ModelCallError. LiteLLM's exceptions derive from the
    ``openai`` SDK's (which it depends on); others are judged by their HTTP status, if any."""
    try:
        import openai
    except ImportError:  # pragma: no cover - litellm depends on openai
        pass
    else:
        if isinstance(error, openai.OpenAIError):
            return openai_error(error, "litellm", secrets)
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return status_error("litellm", status, None)
    if isinstance(error, TimeoutError | ConnectionError):
        return ModelUnavailableError("The litellm model call could not reach the model")
    return ModelRequestError(f"The litellm model call failed ({type(error).__name__})")


class LiteLLMProvider:
    """Streams a canonical request through LiteLLM.

    ``api_key_for`` maps ``apiKeyArn`` (optional in this configuration) to the key, inside
    ``stream``. ``timeout`` (seconds) and ``max_retries`` (0: failover is the router's job) are
    passed to ``litellm.completion``."""

    name = "litellm"

    def __init__(
        self,
        api_key_for: Callable[[str], str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = 0,
    ) -> None:
        self._api_key_for = api_key_for
        self._timeout = timeout
        self._max_retries = max_retries

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config = config_for(request, CONFIG_KEY)
        kwargs = to_litellm(request)
        litellm = _import_litellm()
        if litellm is None:
            raise ModelRequestError(NOT_INSTALLED)
        secrets: tuple[str, ...] = ()
        if config.get("apiKeyArn"):
            if self._api_key_for is None:
                raise ModelRequestError(f"{CONFIG_KEY}.apiKeyArn is set but no key source is configured")
            key = self._api_key_for(config["apiKeyArn"])
            if not key:
                raise ModelRequestError(f"the secret named by {CONFIG_KEY}.apiKeyArn is empty")
            kwargs["api_key"] = key
            secrets = (key,)
        kwargs.setdefault("timeout", self._timeout)
        kwargs.setdefault("max_retries", self._max_retries)
        reader = ChatStreamReader(request_seed(kwargs["messages"]))
        try:
            response = litellm.completion(**kwargs)
            try:
                for chunk in response:
                    yield from reader.feed(chunk)
            finally:
                close = getattr(response, "close", None)
                if callable(close):
                    close()
        except ModelCallError:
            raise
        except Exception as error:  # LiteLLM raises its own (openai-derived) and other errors
            raise litellm_error(error, secrets) from None
        yield from reader.finish()
