"""Server-sent events encoding of InvokeHarness stream items, for browsers and plain HTTP clients.

Each item ``{event name: payload}`` becomes ``event: <name>`` plus one ``data:`` line of compact
JSON. Compact JSON escapes newlines inside strings, so the data never spans lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

CONTENT_TYPE: Final = "text/event-stream"


def encode_sse(item: Mapping[str, Mapping[str, object]]) -> bytes:
    """``event: <name>\\ndata: <compact json>\\n\\n`` for a single-key stream item."""
    if len(item) != 1:
        raise ValueError(f"a stream item has exactly one event name, got {sorted(item)}")
    ((name, payload),) = item.items()
    if not name or any(c in name for c in "\r\n"):
        # A line break would end the field early and let the name forge further SSE fields.
        raise ValueError(f"{name!r} cannot be an SSE event name")
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"event: {name}\ndata: {data}\n\n".encode()
