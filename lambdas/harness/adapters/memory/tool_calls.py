"""Per invocation: tool results (the first result of a call wins), claims that keep two attempts of
a call from running at once, what the tool servers offered, and approval decisions."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from harness.adapters.memory.table import MemoryTable, dump, invocation_key, is_conditional_failure, load


def _result_key(invocation_id: str, tool_use_id: str = "") -> str:
    return f"{invocation_key(invocation_id)}#result#{tool_use_id}"


def _approval_key(invocation_id: str, tool_use_id: str = "") -> str:
    return f"{invocation_key(invocation_id)}#approval#{tool_use_id}"


class ToolCallStore:
    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def _item(
        self, actor_id: str, sort_key: str, attribute: str, value: Any, expires_at: int
    ) -> dict[str, Any]:
        return {
            "actorId": {"S": actor_id},
            "sk": {"S": sort_key},
            attribute: dump(value),
            "expiresAt": {"N": str(expires_at)},
        }

    def _by_tool_use(self, actor_id: str, prefix: str, attribute: str) -> dict[str, dict[str, Any]]:
        return {
            item["sk"]["S"][len(prefix) :]: load(item[attribute])
            for item in self._table.query_prefix(actor_id, prefix)
        }

    # -- results ------------------------------------------------------------------------------------

    def put_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> None:
        key = _result_key(invocation_id, result["toolUseId"])
        self._table.put(self._item(actor_id, key, "result", result, expires_at))

    def put_first_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> dict[str, Any]:
        """Store a server-run tool's result unless one is stored already; return the stored one.
        The first result of a call wins, so a retried call cannot change what the model saw."""
        key = _result_key(invocation_id, result["toolUseId"])
        try:
            self._table.put(
                self._item(actor_id, key, "result", result, expires_at),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            stored = self._table.get(actor_id, key)
            if stored is not None:
                return dict(load(stored["result"]))
        return result

    def get_tool_result(self, actor_id: str, invocation_id: str, tool_use_id: str) -> dict[str, Any] | None:
        item = self._table.get(actor_id, _result_key(invocation_id, tool_use_id))
        return load(item["result"]) if item else None

    def get_tool_results(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]:
        return self._by_tool_use(actor_id, _result_key(invocation_id), "result")

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
            self._table.put(
                {
                    "actorId": {"S": actor_id},
                    "sk": {"S": f"{invocation_key(invocation_id)}#claim#{tool_use_id}"},
                    "claimedUntil": {"N": str(until)},
                    "expiresAt": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(sk) OR claimedUntil < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    # -- catalogs and approvals ------------------------------------------------------------------------

    def put_catalog(
        self, actor_id: str, invocation_id: str, catalog: dict[str, Any], expires_at: int
    ) -> None:
        """The tools the invocation's tool servers offered when it started."""
        key = f"{invocation_key(invocation_id)}#catalog"
        self._table.put(self._item(actor_id, key, "catalog", catalog, expires_at))

    def get_catalog(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None:
        item = self._table.get(actor_id, f"{invocation_key(invocation_id)}#catalog")
        return load(item["catalog"]) if item else None

    def put_approval(
        self, actor_id: str, invocation_id: str, decision: dict[str, Any], expires_at: int
    ) -> None:
        key = _approval_key(invocation_id, decision["toolUseId"])
        self._table.put(self._item(actor_id, key, "decision", decision, expires_at))

    def get_approvals(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]:
        return self._by_tool_use(actor_id, _approval_key(invocation_id), "decision")
