"""The stream events of each invocation, in position order, with pause and end markers."""

from __future__ import annotations

from typing import Any

from harness.adapters.memory.table import EVENT_PREFIX, MemoryTable, dump, invocation_key, load
from harness.stores import EventRow


def _event_prefix(invocation_id: str) -> str:
    return f"{invocation_key(invocation_id)}#{EVENT_PREFIX}"


class EventLog:
    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def put_event(
        self,
        actor_id: str,
        invocation_id: str,
        position: str,
        *,
        event: dict[str, Any] | None = None,
        control: str | None = None,
        expires_at: int,
    ) -> None:
        item: dict[str, Any] = {
            "actorId": {"S": actor_id},
            "sk": {"S": _event_prefix(invocation_id) + position},
            "expiresAt": {"N": str(expires_at)},
        }
        if event is not None:
            item["event"] = dump(event)
        if control is not None:
            item["control"] = {"S": control}
        self._table.put(item)

    def read_events(self, actor_id: str, invocation_id: str, after_position: str | None) -> list[EventRow]:
        """Events after ``after_position``, oldest first, as (position, event, control)."""
        prefix = _event_prefix(invocation_id)
        start = {"actorId": {"S": actor_id}, "sk": {"S": prefix + after_position}} if after_position else None
        rows: list[EventRow] = []
        for item in self._table.query_prefix(actor_id, prefix, start_key=start):
            position = item["sk"]["S"][len(prefix) :]
            event = load(item["event"]) if "event" in item else None
            rows.append((position, event, item.get("control", {}).get("S")))
        return rows
