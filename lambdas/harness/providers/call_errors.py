"""How a provider's failure becomes a caller-safe ``ModelCallError``: the few words of an error body
that may be shown (``safe_word``) and what an HTTP status means for failover (``status_error``)."""

from __future__ import annotations

import re
from typing import Any

from harness.providers.base import ModelCallError, ModelRequestError, ModelUnavailableError

# Statuses worth trying on another model: timeout, conflict (a lock), throttling, server errors.
TRANSIENT_STATUSES = frozenset({408, 409, 429})

_SAFE_WORD = re.compile(r"[A-Za-z0-9_.:\- ]{1,64}")


def safe_word(value: Any, secrets: tuple[str, ...] = ()) -> str | None:
    """A short identifier from a provider's error body (its type, code or status), or None: never
    free text, never anything that contains a secret."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not _SAFE_WORD.fullmatch(text) or any(s and s in text for s in secrets):
        return None
    return text


def status_error(
    label: str, status: int, kind: str | None, transient: frozenset[int] = TRANSIENT_STATUSES
) -> ModelCallError:
    """The error for an HTTP status from a provider: ``transient`` ones and server errors fail over."""
    message = f"The {label} model call failed: HTTP {status}" + (f" ({kind})" if kind else "")
    if status in transient or status >= 500:
        return ModelUnavailableError(message)
    return ModelRequestError(message)
