"""Invocation records: an immutable record of how the turn started, and the mutable fields the
loop's steps set (status, the pause's task token, pending tool uses, stop reason, switches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from harness.adapters.memory.table import MemoryTable, dump, invocation_key, is_conditional_failure, load
from harness.records import AWAITING_CLIENT, RUNNING

# Attributes of an invocation item that are not fields of the invocation.
_ITEM_ATTRIBUTES = {"actorId", "sk", "status", "record", "expiresAt", "taskToken", "pendingToolUseIds"}


class InvocationStore:
    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def get_invocation(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None:
        item = self._table.get(actor_id, invocation_key(invocation_id))
        return load(item["record"]) | _invocation_flags(item) if item else None

    def update_invocation(
        self,
        actor_id: str,
        invocation_id: str,
        *,
        status: str,
        expected_status: str | None = None,
        task_token: str | None = None,
        pending_tool_use_ids: list[str] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> bool:
        """Move an invocation to ``status``; False when it was not in ``expected_status``.

        The task token that resumes a paused execution is kept in its own attribute and is
        removed on every transition away from the pause, so it can only be used once.
        """
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": {"S": status}}
        sets = ["#s = :s"]
        removes = []
        if task_token is not None:
            sets.append("taskToken = :t")
            values[":t"] = {"S": task_token}
        else:
            removes.append("taskToken")
        if pending_tool_use_ids is not None:
            sets.append("pendingToolUseIds = :p")
            values[":p"] = dump(pending_tool_use_ids)
        for index, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = dump(value)
            sets.append(f"#f{index} = :f{index}")
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "Key": {"actorId": {"S": actor_id}, "sk": {"S": invocation_key(invocation_id)}},
            "UpdateExpression": "SET "
            + ", ".join(sets)
            + (" REMOVE " + ", ".join(removes) if removes else ""),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConditionExpression": "attribute_exists(actorId)",
        }
        if expected_status is not None:
            kwargs["ConditionExpression"] += " AND #s = :expected"
            values[":expected"] = {"S": expected_status}
        try:
            self._table.ddb.update_item(**kwargs)
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def take_task_token(
        self, actor_id: str, invocation_id: str, expected_status: str, pending_tool_use_ids: list[str]
    ) -> str | None:
        """Atomically move a paused invocation back to RUNNING and hand out its task token once:
        only for the pause whose pending tool uses the caller validated its answers against (a
        delayed resend of an earlier pause's answers cannot take a later pause's token)."""
        try:
            response = self._table.ddb.update_item(
                TableName=self._table.name,
                Key={"actorId": {"S": actor_id}, "sk": {"S": invocation_key(invocation_id)}},
                UpdateExpression="SET #s = :running REMOVE taskToken, pendingToolUseIds",
                ConditionExpression=(
                    "#s = :expected AND attribute_exists(taskToken) AND pendingToolUseIds = :p"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":running": {"S": RUNNING},
                    ":expected": {"S": expected_status},
                    ":p": dump(pending_tool_use_ids),
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        return str(response["Attributes"]["taskToken"]["S"])

    def active_invocations(self) -> Iterator[tuple[str, str]]:
        """(actor id, invocation id) of every invocation still running or paused: a full scan,
        used only when a runtime restarts and must settle what it was running."""
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "FilterExpression": "begins_with(sk, :p) AND #s IN (:running, :awaiting)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":p": {"S": invocation_key("")},
                ":running": {"S": RUNNING},
                ":awaiting": {"S": AWAITING_CLIENT},
            },
            "ProjectionExpression": "actorId, sk",
        }
        while True:
            page = self._table.ddb.scan(**kwargs)
            for item in page.get("Items", []):
                sort_key = item["sk"]["S"]
                if sort_key.count("#") == 1:
                    yield item["actorId"]["S"], sort_key.split("#", 1)[1]
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _invocation_flags(item: dict[str, Any]) -> dict[str, Any]:
    """The mutable parts of an invocation item, merged over its immutable record."""
    flags: dict[str, Any] = {"status": item["status"]["S"]}
    if "pendingToolUseIds" in item:
        flags["pendingToolUseIds"] = load(item["pendingToolUseIds"])
    for name, value in item.items():
        if name not in _ITEM_ATTRIBUTES:
            flags[name] = load(value)
    return flags
