"""The memory table's layout, shared by the stores that live in it.

All of an actor's items share the partition key ``actorId``, so IAM can scope access with
``dynamodb:LeadingKeys`` and erasure finds everything with one Query. The only items outside an
actor's partition are session-ownership markers (``SESSION#<id>``), which hold a digest of the
owner, never the actor id, and are erased with the actor's sessions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from harness.adapters.clients import client
from harness.adapters.store_errors import TransientErrors

EVENT_PREFIX = "ev#"


def session_key(session_id: str) -> str:
    return f"session#{session_id}"


def message_prefix(session_id: str) -> str:
    return f"session#{session_id}#msg#"


def summary_key(session_id: str, position: str) -> str:
    return f"session#{session_id}#summary#{position}"


def invocation_key(invocation_id: str) -> str:
    return f"invocation#{invocation_id}"


def owner_partition(session_id: str) -> str:
    return f"SESSION#{session_id}"


def dump(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"))}


def load(attribute: dict[str, str]) -> Any:
    return json.loads(attribute["S"])


def is_conditional_failure(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class MemoryTable:
    """Reads and writes of the memory table, with transient failures raised as the domain's."""

    def __init__(self, table_name: str) -> None:
        self.name = table_name
        self.ddb = TransientErrors(client("dynamodb"), "memory table")

    def put(self, item: dict[str, Any], **conditions: Any) -> None:
        self.ddb.put_item(TableName=self.name, Item=item, **conditions)

    def get(self, partition: str, sort_key: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=self.name,
            Key={"actorId": {"S": partition}, "sk": {"S": sort_key}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def query_prefix(
        self, partition: str, prefix: str, start_key: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "actorId = :a AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":a": {"S": partition}, ":p": {"S": prefix}},
            "ConsistentRead": True,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        yield from self.query(kwargs)

    def query(self, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self.ddb.query(**kwargs)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
