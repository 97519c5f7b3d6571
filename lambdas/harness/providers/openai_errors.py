"""Failures of the ``openai`` SDK (and of LiteLLM, whose exceptions derive from it) as caller-safe
``ModelCallError``s: no key, no payload, only the status and the error body's type or code."""

from __future__ import annotations

from typing import Any

from harness.providers.base import ModelCallError, ModelRequestError, ModelUnavailableError
from harness.providers.call_errors import safe_word, status_error

# Error codes an in-stream error event carries when the failure is transient.
TRANSIENT_ERROR_CODES = frozenset(
    {"server_error", "rate_limit_exceeded", "server_is_overloaded", "slow_down", "insufficient_quota"}
)


def error_type(body: Any, secrets: tuple[str, ...] = ()) -> str | None:
    """The ``type``, ``code`` or ``status`` of an OpenAI-shaped error body, if it is a safe word."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for name in ("type", "code", "status"):
                word = safe_word(inner.get(name), secrets)
                if word:
                    return word
    return None


def stream_error(label: str, code: Any, secrets: tuple[str, ...]) -> ModelCallError:
    """The error for an error event inside a stream: an unknown or transient code fails over."""
    word = safe_word(code, secrets)
    message = f"The {label} model call failed during streaming" + (f" ({word})" if word else "")
    if word is None or word in TRANSIENT_ERROR_CODES:
        return ModelUnavailableError(message)
    return ModelRequestError(message)


def openai_error(error: Exception, label: str, secrets: tuple[str, ...]) -> ModelCallError:
    """An ``openai`` SDK exception as a caller-safe ModelCallError (no key, no payload)."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return ModelUnavailableError(f"The {label} model call timed out")
    if isinstance(error, openai.APIConnectionError):
        return ModelUnavailableError(f"The {label} server could not be reached (connection error)")
    if isinstance(error, openai.APIStatusError):
        return status_error(label, error.status_code, error_type(error.body, secrets))
    if isinstance(error, openai.APIResponseValidationError):
        return ModelUnavailableError(f"The {label} server sent a response that could not be read")
    if isinstance(error, openai.APIError):  # an error event inside the stream
        return stream_error(label, error_type(error.body, secrets), secrets)
    return ModelRequestError(f"The {label} model call failed ({type(error).__name__})")
