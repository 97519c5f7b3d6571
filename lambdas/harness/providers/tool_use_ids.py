"""Tool-use ids: what makes an id canonical, and the ids the harness makes up.

A canonical ``toolUseId`` satisfies the contract's ``HarnessToolUseId`` (``[a-zA-Z0-9_-]``, 1 to 64
characters: also what Bedrock accepts, so a history stays valid after a model switch). A provider
passes a model's own call id on when it is canonical, and otherwise derives a deterministic
``tooluse_<24 hex digits>`` id from the request, so the same reply to the same request gets the
same ids. The loop gives a call whose id is repeated or invalid a fresh random one
(``new_tool_use_id``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeGuard

from harness import contract
from harness.canonical import text_digest

PREFIX = "tooluse_"
_HEX_DIGITS = 24


def is_tool_use_id(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is a valid canonical tool-use id."""
    return isinstance(value, str) and contract.satisfies("bedrock-agentcore", "HarnessToolUseId", value)


def hashed_tool_use_id(text: str) -> str:
    """``tooluse_`` and the first 24 hex digits of the SHA-256 of ``text``."""
    return PREFIX + text_digest(text)[:_HEX_DIGITS]


def generated_tool_use_id(seed: str, position: int) -> str:
    """A deterministic id for the call at ``position`` of a reply whose request gave ``seed``."""
    return hashed_tool_use_id(f"{seed}:{position}")


def canonical_tool_use_id(raw: Any, seed: str, position: int) -> str:
    """The model's call id when it is a valid canonical id; otherwise a deterministic one derived
    from it (none, or one that is not canonical)."""
    if is_tool_use_id(raw):
        return raw
    return generated_tool_use_id(f"{seed}:{raw}", position)


def request_seed(payload: Any) -> str:
    """A short digest of a request's messages, the seed of the ids generated for its reply. Not
    ``harness.canonical.digest``: a payload may hold bytes (images, Gemini's thought signatures),
    which this serialises with ``str``."""
    return text_digest(json.dumps(payload, sort_keys=True, default=str))[:16]


def new_tool_use_id() -> str:
    """A fresh random id (for a call whose id is repeated or invalid)."""
    return f"{PREFIX}{uuid.uuid4().hex[:_HEX_DIGITS]}"
