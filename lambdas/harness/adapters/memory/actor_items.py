"""Everything of one actor in the memory table, classified for erasure's receipt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.adapters.memory.table import EVENT_PREFIX, MemoryTable, invocation_key, owner_partition
from harness.stores import ActorItem

_BATCH = 25  # BatchWriteItem's limit


def _classify(actor_id: str, sort_key: str) -> ActorItem:
    key = {"actorId": {"S": actor_id}, "sk": {"S": sort_key}}
    if sort_key.startswith("session#"):
        if "#msg#" in sort_key:
            return ActorItem("messages", key)
        if "#summary#" in sort_key:
            return ActorItem("summaries", key)
        return ActorItem("sessions", key, session_id=sort_key.split("#", 1)[1])
    if sort_key.startswith(invocation_key("")):
        if f"#{EVENT_PREFIX}" in sort_key:
            return ActorItem("streamEvents", key)
        if "#result#" in sort_key:
            return ActorItem("toolResults", key)
        if sort_key.count("#") == 1:
            return ActorItem("invocations", key, invocation_id=sort_key.split("#", 1)[1])
        return ActorItem("invocations", key)
    return ActorItem("otherItems", key)


class ActorItems:
    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def actor_items(self, actor_id: str) -> Iterator[ActorItem]:
        for item in self._table.query(
            {
                "TableName": self._table.name,
                "KeyConditionExpression": "actorId = :a",
                "ExpressionAttributeValues": {":a": {"S": actor_id}},
                "ProjectionExpression": "actorId, sk",
                "ConsistentRead": True,
            }
        ):
            yield _classify(actor_id, item["sk"]["S"])

    def delete_items(self, items: list[ActorItem]) -> None:
        keys: list[dict[str, Any]] = [item.key for item in items]
        for start in range(0, len(keys), _BATCH):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH]]
            pending: dict[str, Any] = {self._table.name: requests}
            while pending:
                response = self._table.ddb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    def delete_session_owner(self, session_id: str) -> bool:
        response = self._table.ddb.delete_item(
            TableName=self._table.name,
            Key={"actorId": {"S": owner_partition(session_id)}, "sk": {"S": "OWNER"}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response
