"""Canonical content blocks that a provider's format carries differently or not at all."""

from __future__ import annotations

from typing import Any

IMAGE_MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
IMAGE_FORMATS = {mime: fmt for fmt, mime in IMAGE_MIME_TYPES.items()}


def image_mime_type(fmt: str) -> str:
    """The MIME type of a canonical image format (``image/<format>`` for one not listed)."""
    return IMAGE_MIME_TYPES.get(fmt, "image/" + fmt)


def document_note(block: dict[str, Any]) -> str:
    """The text that stands in for a document block, for a model that cannot read documents."""
    name = block["document"].get("name", "document")
    return f"[document {name!r} left out: this model cannot read documents]"
