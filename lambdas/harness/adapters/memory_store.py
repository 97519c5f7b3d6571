"""Everything stored about actors: sessions, conversation messages, invocations, stream events.

All of an actor's items share the partition key ``actorId``, so IAM can scope access with
``dynamodb:LeadingKeys`` and erasure finds everything with one Query. The only items outside an
actor's partition are session-ownership markers (``SESSION#<id>``), which hold a digest of the
owner, never the actor id, and are erased with the actor's sessions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from harness.adapters.clients import client
from harness.errors import AccessDeniedError, ResourceConflictError, ValidationError

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


def _dump(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"))}


class MemoryStore:
    def __init__(self, table_name: str) -> None:
        self._table = table_name
        self._ddb = client("dynamodb")

    # -- sessions ---------------------------------------------------------------------------

    def begin_turn(
        self,
        *,
        actor_id: str,
        actor_digest: str,
        session_id: str,
        harness_id: str,
        invocation: dict[str, Any],
        expires_at: int,
    ) -> int:
        """Claim the session for a new invocation and return the session's turn number.

        One transaction: the session must belong to this actor (or be new), must be bound to the
        same harness, and must have no invocation in progress.
        """
        invocation_id = invocation["invocationId"]
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
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
                            "TableName": self._table,
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
                            "TableName": self._table,
                            "Item": self._invocation_item(actor_id, invocation, expires_at),
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
                raise AccessDeniedError(
                    "runtimeSessionId belongs to another actor; choose a new session id."
                ) from error
            session = self.get_session(actor_id, session_id)
            if session and session.get("harnessId") != harness_id:
                raise ValidationError(
                    "runtimeSessionId is bound to another harness; start a new session for this harness."
                ) from error
            raise ResourceConflictError(
                "This session has an invocation in progress; wait for it to finish or answer its "
                "pending tool uses."
            ) from error
        session = self.get_session(actor_id, session_id)
        assert session is not None
        return int(session["turnCount"])

    def get_session(self, actor_id: str, session_id: str) -> dict[str, Any] | None:
        item = self._get(actor_id, session_key(session_id))
        if item is None:
            return None
        return {
            "harnessId": item["harnessId"]["S"],
            "turnCount": int(item.get("turnCount", {}).get("N", "0")),
            "activeInvocationId": item.get("activeInvocationId", {}).get("S"),
        }

    def session_owner_digest(self, session_id: str) -> str | None:
        item = self._get(owner_partition(session_id), "OWNER")
        return item["ownerDigest"]["S"] if item else None

    def end_turn(self, actor_id: str, session_id: str, invocation_id: str) -> None:
        """Release the session; a no-op when another invocation already owns it."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"actorId": {"S": actor_id}, "sk": {"S": session_key(session_id)}},
                UpdateExpression="REMOVE activeInvocationId",
                ConditionExpression="activeInvocationId = :i",
                ExpressionAttributeValues={":i": {"S": invocation_id}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # -- conversation messages --------------------------------------------------------------

    def put_message(
        self, actor_id: str, session_id: str, position: str, message: dict[str, Any], expires_at: int
    ) -> None:
        """Store one message at a deterministic position, so a retried step overwrites, never duplicates."""
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "actorId": {"S": actor_id},
                "sk": {"S": message_prefix(session_id) + position},
                "message": _dump(message),
                "expiresAt": {"N": str(expires_at)},
            },
        )

    def list_messages(self, actor_id: str, session_id: str) -> list[dict[str, Any]]:
        return [message for _, message in self.list_messages_with_positions(actor_id, session_id)]

    def list_messages_with_positions(
        self, actor_id: str, session_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        prefix = message_prefix(session_id)
        return [
            (item["sk"]["S"][len(prefix) :], json.loads(item["message"]["S"]))
            for item in self._query_prefix(actor_id, prefix)
        ]

    # -- summaries (truncation strategy ``summarization``) ------------------------------------

    def put_summary(
        self, actor_id: str, session_id: str, position: str, summary: str, expires_at: int
    ) -> None:
        """Cache the summary of the session's messages up to and including ``position``."""
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "actorId": {"S": actor_id},
                "sk": {"S": summary_key(session_id, position)},
                "summary": {"S": summary},
                "expiresAt": {"N": str(expires_at)},
            },
        )

    def get_summary(self, actor_id: str, session_id: str, position: str) -> str | None:
        item = self._get(actor_id, summary_key(session_id, position))
        return str(item["summary"]["S"]) if item else None

    # -- invocations --------------------------------------------------------------------------

    def get_invocation(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None:
        item = self._get(actor_id, invocation_key(invocation_id))
        return json.loads(item["record"]["S"]) | _invocation_flags(item) if item else None

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
            values[":p"] = _dump(pending_tool_use_ids)
        for index, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = _dump(value)
            sets.append(f"#f{index} = :f{index}")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
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
            self._ddb.update_item(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
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
            response = self._ddb.update_item(
                TableName=self._table,
                Key={"actorId": {"S": actor_id}, "sk": {"S": invocation_key(invocation_id)}},
                UpdateExpression="SET #s = :running REMOVE taskToken, pendingToolUseIds",
                ConditionExpression=(
                    "#s = :expected AND attribute_exists(taskToken) AND pendingToolUseIds = :p"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":running": {"S": "RUNNING"},
                    ":expected": {"S": expected_status},
                    ":p": _dump(pending_tool_use_ids),
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return str(response["Attributes"]["taskToken"]["S"])

    # -- tool results ---------------------------------------------------------------------------

    def put_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "actorId": {"S": actor_id},
                "sk": {"S": f"{invocation_key(invocation_id)}#result#{result['toolUseId']}"},
                "result": _dump(result),
                "expiresAt": {"N": str(expires_at)},
            },
        )

    def get_tool_results(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]:
        prefix = f"{invocation_key(invocation_id)}#result#"
        return {
            item["sk"]["S"][len(prefix) :]: json.loads(item["result"]["S"])
            for item in self._query_prefix(actor_id, prefix)
        }

    def put_first_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> dict[str, Any]:
        """Store a server-run tool's result unless one is stored already; return the stored one.
        The first result of a call wins, so a retried call cannot change what the model saw."""
        sort_key = f"{invocation_key(invocation_id)}#result#{result['toolUseId']}"
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "actorId": {"S": actor_id},
                    "sk": {"S": sort_key},
                    "result": _dump(result),
                    "expiresAt": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = self._get(actor_id, sort_key)
            if stored is not None:
                return dict(json.loads(stored["result"]["S"]))
        return result

    def get_tool_result(self, actor_id: str, invocation_id: str, tool_use_id: str) -> dict[str, Any] | None:
        item = self._get(actor_id, f"{invocation_key(invocation_id)}#result#{tool_use_id}")
        return json.loads(item["result"]["S"]) if item else None

    def claim_tool_call(
        self,
        actor_id: str,
        invocation_id: str,
        tool_use_id: str,
        *,
        now: float,
        until: float,
        expires_at: int,
    ) -> bool:
        """Claim the right to run a tool call until ``until``: False while another attempt holds an
        unexpired claim (so two attempts of one call never run its side effect at the same time)."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "actorId": {"S": actor_id},
                    "sk": {"S": f"{invocation_key(invocation_id)}#claim#{tool_use_id}"},
                    "claimedUntil": {"N": str(until)},
                    "expiresAt": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(sk) OR claimedUntil < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- tool catalogs and approvals ---------------------------------------------------------------

    def put_catalog(
        self, actor_id: str, invocation_id: str, catalog: dict[str, Any], expires_at: int
    ) -> None:
        """The tools the invocation's tool servers offered when it started."""
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "actorId": {"S": actor_id},
                "sk": {"S": f"{invocation_key(invocation_id)}#catalog"},
                "catalog": _dump(catalog),
                "expiresAt": {"N": str(expires_at)},
            },
        )

    def get_catalog(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None:
        item = self._get(actor_id, f"{invocation_key(invocation_id)}#catalog")
        return json.loads(item["catalog"]["S"]) if item else None

    def put_approval(
        self, actor_id: str, invocation_id: str, decision: dict[str, Any], expires_at: int
    ) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "actorId": {"S": actor_id},
                "sk": {"S": f"{invocation_key(invocation_id)}#approval#{decision['toolUseId']}"},
                "decision": _dump(decision),
                "expiresAt": {"N": str(expires_at)},
            },
        )

    def get_approvals(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]:
        prefix = f"{invocation_key(invocation_id)}#approval#"
        return {
            item["sk"]["S"][len(prefix) :]: json.loads(item["decision"]["S"])
            for item in self._query_prefix(actor_id, prefix)
        }

    # -- stream events --------------------------------------------------------------------------

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
            "sk": {"S": f"{invocation_key(invocation_id)}#{EVENT_PREFIX}{position}"},
            "expiresAt": {"N": str(expires_at)},
        }
        if event is not None:
            item["event"] = _dump(event)
        if control is not None:
            item["control"] = {"S": control}
        self._ddb.put_item(TableName=self._table, Item=item)

    def read_events(
        self, actor_id: str, invocation_id: str, after_position: str | None
    ) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        """Events after ``after_position``, oldest first, as (position, event, control)."""
        prefix = f"{invocation_key(invocation_id)}#{EVENT_PREFIX}"
        start = {"actorId": {"S": actor_id}, "sk": {"S": prefix + after_position}} if after_position else None
        rows = []
        for item in self._query_prefix(actor_id, prefix, start_key=start):
            position = item["sk"]["S"][len(prefix) :]
            event = json.loads(item["event"]["S"]) if "event" in item else None
            rows.append((position, event, item.get("control", {}).get("S")))
        return rows

    def active_invocations(self) -> Iterator[tuple[str, str]]:
        """(actor id, invocation id) of every invocation still running or paused: a full scan,
        used only when a runtime restarts and must settle what it was running."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(sk, :p) AND #s IN (:running, :awaiting)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":p": {"S": "invocation#"},
                ":running": {"S": "RUNNING"},
                ":awaiting": {"S": "AWAITING_CLIENT"},
            },
            "ProjectionExpression": "actorId, sk",
        }
        while True:
            page = self._ddb.scan(**kwargs)
            for item in page.get("Items", []):
                sort_key = item["sk"]["S"]
                if sort_key.count("#") == 1:
                    yield item["actorId"]["S"], sort_key.split("#", 1)[1]
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- erasure ----------------------------------------------------------------------------------

    def actor_item_keys(self, actor_id: str) -> Iterator[dict[str, Any]]:
        yield from self._query(
            {
                "TableName": self._table,
                "KeyConditionExpression": "actorId = :a",
                "ExpressionAttributeValues": {":a": {"S": actor_id}},
                "ProjectionExpression": "actorId, sk",
                "ConsistentRead": True,
            }
        )

    def delete_keys(self, keys: list[dict[str, Any]]) -> None:
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: requests}
            while pending:
                response = self._ddb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    def delete_session_owner(self, session_id: str) -> bool:
        response = self._ddb.delete_item(
            TableName=self._table,
            Key={"actorId": {"S": owner_partition(session_id)}, "sk": {"S": "OWNER"}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response

    # -- internals ----------------------------------------------------------------------------

    def _get(self, partition: str, sort_key: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(
            TableName=self._table,
            Key={"actorId": {"S": partition}, "sk": {"S": sort_key}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _query_prefix(
        self, actor_id: str, prefix: str, start_key: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "actorId = :a AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":a": {"S": actor_id}, ":p": {"S": prefix}},
            "ConsistentRead": True,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        yield from self._query(kwargs)

    def _query(self, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self._ddb.query(**kwargs)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _invocation_item(actor_id: str, invocation: dict[str, Any], expires_at: int) -> dict[str, Any]:
        return {
            "actorId": {"S": actor_id},
            "sk": {"S": invocation_key(invocation["invocationId"])},
            "status": {"S": invocation["status"]},
            "record": _dump(invocation),
            "expiresAt": {"N": str(expires_at)},
        }


def _invocation_flags(item: dict[str, Any]) -> dict[str, Any]:
    """The mutable parts of an invocation item, merged over its immutable record."""
    flags: dict[str, Any] = {"status": item["status"]["S"]}
    if "pendingToolUseIds" in item:
        flags["pendingToolUseIds"] = json.loads(item["pendingToolUseIds"]["S"])
    for name, value in item.items():
        if name not in {"actorId", "sk", "status", "record", "expiresAt", "taskToken", "pendingToolUseIds"}:
            flags[name] = json.loads(value["S"])
    return flags
