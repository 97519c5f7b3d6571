"""Canonical JSON and its digest: the one byte form used wherever a value is sealed, compared or
fingerprinted (audit records, request digests, deterministic ids)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant white space, ASCII escapes (as records were always sealed):
    equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def digest(value: Any) -> str:
    """The SHA-256 of the value's canonical JSON, in hex."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def text_digest(text: str) -> str:
    """The SHA-256 of a string's UTF-8 bytes, in hex (for names and ids, not structures)."""
    return hashlib.sha256(text.encode()).hexdigest()
