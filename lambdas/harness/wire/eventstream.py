"""Encoder for the AWS event-stream framing (``application/vnd.amazon.eventstream``).

botocore only decodes this format (``botocore.eventstream``), so the encoder is ours. A message is::

    [total length u32][headers length u32][prelude CRC32 u32]
    [headers][payload]
    [message CRC32 u32]   (CRC32 of every byte before it)

Each header is ``[name length u8][name utf-8][value type u8][value]``; all our headers are strings
(type 7: ``[length u16][utf-8]``). Integers are big-endian.

Stream items are ``{event name: payload}`` dicts, the shape of one ``InvokeHarnessStreamOutput``
member. Payloads are JSON-ready: blob members (e.g. ``reasoningContent.redactedContent``) must
already be base64 strings, which is how rest-json carries blobs and what botocore decodes to bytes.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Final

from harness import contract

CONTENT_TYPE: Final = "application/vnd.amazon.eventstream"

_STREAM_SERVICE: Final = contract.DATA_SERVICE
_STREAM_SHAPE: Final = "InvokeHarnessStreamOutput"
_STRING_HEADER: Final = 7
# The decoder's limits (botocore.eventstream): frames beyond them are unreadable by clients.
_MAX_HEADERS_BYTES: Final = 128 * 1024
_MAX_PAYLOAD_BYTES: Final = 24 * 1024 * 1024
_PRELUDE_BYTES: Final = 12
_CRC_BYTES: Final = 4


def encode_event(event_type: str, payload: Mapping[str, object]) -> bytes:
    """One ``event`` message: ``:event-type`` names the stream member, the payload is its JSON."""
    return _message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        _json(payload),
    )


def encode_exception(exception_type: str, payload: Mapping[str, object]) -> bytes:
    """One ``exception`` message, e.g. ``validationException``: clients raise it while iterating."""
    return _message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        _json(payload),
    )


def encode_stream_item(item: Mapping[str, Mapping[str, object]]) -> bytes:
    """Encode ``{"messageStart": {"role": "assistant"}}``-style items of InvokeHarnessStreamOutput.

    Members whose shape is an error in the service model are encoded as exceptions.
    """
    if len(item) != 1:
        raise ValueError(f"a stream item has exactly one event name, got {sorted(item)}")
    ((name, payload),) = item.items()
    if name not in contract.stream_event_names(_STREAM_SERVICE, _STREAM_SHAPE):
        raise ValueError(f"{name!r} is not an event of {_STREAM_SHAPE}")
    if name in contract.stream_exception_names(_STREAM_SERVICE, _STREAM_SHAPE):
        return encode_exception(name, payload)
    return encode_event(name, payload)


def _json(payload: Mapping[str, object]) -> bytes:
    if not isinstance(payload, Mapping):
        raise TypeError(f"an event payload is a JSON object, got {type(payload).__name__}")
    # allow_nan=False: NaN/Infinity are not JSON and clients would fail to parse the event.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _headers(headers: Mapping[str, str]) -> bytes:
    encoded = bytearray()
    for name, value in headers.items():
        name_bytes = name.encode()
        value_bytes = value.encode()
        if len(name_bytes) > 0xFF or len(value_bytes) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} is too long to encode")
        encoded += struct.pack("!B", len(name_bytes)) + name_bytes
        encoded += struct.pack("!BH", _STRING_HEADER, len(value_bytes)) + value_bytes
    return bytes(encoded)


def _message(headers: Mapping[str, str], payload: bytes) -> bytes:
    header_bytes = _headers(headers)
    if len(header_bytes) > _MAX_HEADERS_BYTES:
        raise ValueError("event-stream headers exceed the decoder's 128 KiB limit")
    if len(payload) > _MAX_PAYLOAD_BYTES:
        raise ValueError("event-stream payload exceeds the decoder's 24 MiB limit; split the event")
    total = _PRELUDE_BYTES + len(header_bytes) + len(payload) + _CRC_BYTES
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack("!I", zlib.crc32(body))
