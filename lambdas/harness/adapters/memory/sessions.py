"""Sessions: the harness a session is bound to, its turn count, the invocation that holds it, and
who owns each session id."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from harness.adapters.memory.table import (
    MemoryTable,
    dump,
    invocation_key,
    is_conditional_failure,
    owner_partition,
    session_key,
)
from harness.stores import SessionRefusal


class SessionStore:
    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def begin_turn(
        self,
        *,
        actor_id: str,
        actor_digest: str,
        session_id: str,
        harness_id: str,
        invocation: dict[str, Any],
        expires_at: int,
    ) -> int | SessionRefusal:
        """Claim the session for a new invocation and return the session's turn number.

        One transaction: the session must belong to this actor (or be new), must be bound to the
        same harness, and must have no invocation in progress.
        """
        invocation_id = invocation["invocationId"]
        try:
            self._table.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": {
                                "actorId": {"S": owner_partition(session_id)},
                                "sk": {"S": "OWNER"},
                                "ownerDigest": {"S": actor_digest},
                                "expiresAt": {"N": str(expires_at)},
                            },
                            "ConditionExpression": "attribute_not_exists(actorId) OR ownerDigest = :d",
                            "ExpressionAttributeValues": {":d": {"S": actor_digest}},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table.name,
                            "Key": {"actorId": {"S": actor_id}, "sk": {"S": session_key(session_id)}},
                            "UpdateExpression": (
                                "SET harnessId = if_not_exists(harnessId, :h), activeInvocationId = :i, "
                                "turnCount = if_not_exists(turnCount, :zero) + :one, expiresAt = :e, "
                                "createdAt = if_not_exists(createdAt, :now)"
                            ),
                            "ConditionExpression": (
                                "attribute_not_exists(activeInvocationId) AND "
                                "(attribute_not_exists(harnessId) OR harnessId = :h)"
                            ),
                            "ExpressionAttributeValues": {
                                ":h": {"S": harness_id},
                                ":i": {"S": invocation_id},
                                ":zero": {"N": "0"},
                                ":one": {"N": "1"},
                                ":e": {"N": str(expires_at)},
                                ":now": {"N": str(invocation["createdAt"])},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": {
                                "actorId": {"S": actor_id},
                                "sk": {"S": invocation_key(invocation_id)},
                                "status": {"S": invocation["status"]},
                                "record": dump(invocation),
                                "expiresAt": {"N": str(expires_at)},
                            },
                            "ConditionExpression": "attribute_not_exists(actorId)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return SessionRefusal.OWNED_BY_ANOTHER_ACTOR
            session = self.get_session(actor_id, session_id)
            if session and session.get("harnessId") != harness_id:
                return SessionRefusal.BOUND_TO_ANOTHER_HARNESS
            return SessionRefusal.TURN_IN_PROGRESS
        session = self.get_session(actor_id, session_id)
        assert session is not None
        return int(session["turnCount"])

    def get_session(self, actor_id: str, session_id: str) -> dict[str, Any] | None:
        item = self._table.get(actor_id, session_key(session_id))
        if item is None:
            return None
        return {
            "harnessId": item["harnessId"]["S"],
            "turnCount": int(item.get("turnCount", {}).get("N", "0")),
            "activeInvocationId": item.get("activeInvocationId", {}).get("S"),
        }

    def session_owner_digest(self, session_id: str) -> str | None:
        item = self._table.get(owner_partition(session_id), "OWNER")
        return item["ownerDigest"]["S"] if item else None

    def end_turn(self, actor_id: str, session_id: str, invocation_id: str) -> None:
        """Release the session; a no-op when another invocation already owns it."""
        try:
            self._table.ddb.update_item(
                TableName=self._table.name,
                Key={"actorId": {"S": actor_id}, "sk": {"S": session_key(session_id)}},
                UpdateExpression="REMOVE activeInvocationId",
                ConditionExpression="activeInvocationId = :i",
                ExpressionAttributeValues={":i": {"S": invocation_id}},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
