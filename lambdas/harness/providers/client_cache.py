"""SDK clients kept across provider instances: a warm Lambda reuses a client and its connection
pool. Keyed by a digest of the API key, never the key itself."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from harness.canonical import text_digest

MAX_CACHED_CLIENTS = 16


class ClientCache:
    """At most ``limit`` clients; when full, it starts over (keys rarely change in one container)."""

    def __init__(self, limit: int = MAX_CACHED_CLIENTS) -> None:
        self._limit = limit
        self._clients: dict[tuple[Hashable, ...], Any] = {}

    def get(self, key: str, settings: tuple[Hashable, ...], build: Callable[[], Any]) -> Any:
        """The client for this API key and these settings, built by ``build`` on first use."""
        cache_key = (text_digest(key), *settings)
        client = self._clients.get(cache_key)
        if client is None:
            client = build()
            if len(self._clients) >= self._limit:
                self._clients.clear()
            self._clients[cache_key] = client
        return client
