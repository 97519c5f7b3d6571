"""OpenAI, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...) reached by ``apiBase``,
through the official ``openai`` SDK: Chat Completions by default (``openai_chat``), the Responses
API with ``apiFormat: "responses"`` (``openai_responses``).

The SDK is imported on first use, never when this module is imported: a cold start pays only for
the provider it calls (the LiteLLM provider imports ``openai_chat`` for its translation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from harness.providers.base import ModelEvent, ModelRequest, ModelRequestError
from harness.providers.client_cache import ClientCache
from harness.providers.config import api_key, config_for
from harness.providers.openai_chat import ChatStreamReader, to_openai_chat
from harness.providers.openai_errors import openai_error
from harness.providers.openai_format import CONFIG_KEY
from harness.providers.openai_responses import ResponsesStreamReader, to_openai_responses
from harness.providers.tool_use_ids import request_seed

CHAT_COMPLETIONS = "chat_completions"
RESPONSES = "responses"
DEFAULT_TIMEOUT_SECONDS = 120.0

_CLIENTS = ClientCache()


def supports_tools(config: dict[str, Any]) -> bool:
    """Every OpenAI chat or responses model this provider serves can take tool definitions."""
    return True


class OpenAIProvider:
    """Streams a canonical request from OpenAI or an OpenAI-compatible server.

    ``api_key_for`` maps ``apiKeyArn`` to the key (the vault); it is called inside ``stream``.
    ``timeout`` (seconds) bounds connecting and each wait for the next chunk; ``max_retries`` is the
    SDK's own retry count, 0 by default so that throttling and server errors reach the router's
    failover at once."""

    name = "openai"

    def __init__(
        self,
        api_key_for: Callable[[str], str],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = 0,
    ) -> None:
        self._api_key_for = api_key_for
        self._timeout = timeout
        self._max_retries = max_retries

    def _client(self, key: str, base_url: str | None) -> Any:
        def build() -> Any:
            import openai

            return openai.OpenAI(
                api_key=key, base_url=base_url, timeout=self._timeout, max_retries=self._max_retries
            )

        return _CLIENTS.get(key, (base_url, self._timeout, self._max_retries), build)

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config = config_for(request, CONFIG_KEY)
        api_format = config.get("apiFormat", CHAT_COMPLETIONS)
        if api_format not in (CHAT_COMPLETIONS, RESPONSES):
            raise ModelRequestError(f"{CONFIG_KEY}.apiFormat {api_format!r} is not supported")
        body = to_openai_chat(request) if api_format == CHAT_COMPLETIONS else to_openai_responses(request)
        try:
            import openai  # on first use only: cold starts pay for the provider they call
        except ImportError:
            raise ModelRequestError("the openai package is not installed: pip install openai") from None
        key = api_key(self._api_key_for, config, CONFIG_KEY)
        base_url = config.get("apiBase") or None
        label = "openai" if base_url is None else "OpenAI-compatible"
        secrets = (key,)
        seed = request_seed(body.get("messages", body.get("input")))
        try:
            client = self._client(key, base_url)
            if api_format == CHAT_COMPLETIONS:
                reader: ChatStreamReader | ResponsesStreamReader = ChatStreamReader(seed)
                call = client.chat.completions.create
                first = {"model": body["model"], "messages": body["messages"]}
            else:
                reader = ResponsesStreamReader(seed, label, secrets)
                call = client.responses.create
                first = {"model": body["model"], "input": body["input"]}
            extra = {k: v for k, v in body.items() if k not in first and k != "stream"}
            stream = call(**first, stream=True, extra_body=extra)
            try:
                for chunk in stream:
                    yield from reader.feed(chunk)
            finally:
                stream.close()
            yield from reader.finish()
        except openai.OpenAIError as error:
            raise openai_error(error, label, secrets) from None
