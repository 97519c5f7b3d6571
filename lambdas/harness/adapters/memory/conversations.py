"""The verbatim messages of each session, and the summaries cached for the ``summarization``
truncation strategy."""

from __future__ import annotations

from typing import Any

from harness.adapters.memory.table import MemoryTable, dump, load, message_prefix, summary_key


class ConversationStore:
    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def put_message(
        self, actor_id: str, session_id: str, position: str, message: dict[str, Any], expires_at: int
    ) -> None:
        """Store one message at a deterministic position, so a retried step overwrites, never duplicates."""
        self._table.put(
            {
                "actorId": {"S": actor_id},
                "sk": {"S": message_prefix(session_id) + position},
                "message": dump(message),
                "expiresAt": {"N": str(expires_at)},
            }
        )

    def list_messages(self, actor_id: str, session_id: str) -> list[dict[str, Any]]:
        return [message for _, message in self.list_messages_with_positions(actor_id, session_id)]

    def list_messages_with_positions(
        self, actor_id: str, session_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        prefix = message_prefix(session_id)
        return [
            (item["sk"]["S"][len(prefix) :], load(item["message"]))
            for item in self._table.query_prefix(actor_id, prefix)
        ]

    def put_summary(
        self, actor_id: str, session_id: str, position: str, summary: str, expires_at: int
    ) -> None:
        """Cache the summary of the session's messages up to and including ``position``."""
        self._table.put(
            {
                "actorId": {"S": actor_id},
                "sk": {"S": summary_key(session_id, position)},
                "summary": {"S": summary},
                "expiresAt": {"N": str(expires_at)},
            }
        )

    def get_summary(self, actor_id: str, session_id: str, position: str) -> str | None:
        item = self._table.get(actor_id, summary_key(session_id, position))
        return str(item["summary"]["S"]) if item else None
