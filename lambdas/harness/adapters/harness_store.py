"""Harness definitions and their versions (the harness table)."""

from __future__ import annotations

import base64
import json
from typing import Any

from botocore.exceptions import ClientError

from harness.adapters.clients import client
from harness.errors import ValidationError

LATEST = "LATEST"


def _version_key(version: int) -> str:
    return f"V#{version:05d}"


class HarnessStore:
    """One item per version (``V#00001``...) plus a ``LATEST`` item that is the current definition."""

    def __init__(self, table_name: str) -> None:
        self._table = table_name
        self._ddb = client("dynamodb")

    def create(self, record: dict[str, Any]) -> bool:
        """Store version 1; False when the harness id already exists."""
        item = self._item(record, LATEST)
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(harnessId)",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": self._item(record, _version_key(1))}},
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def update(self, record: dict[str, Any], expected_version: int) -> bool:
        """Store a new version when the current one is still ``expected_version`` (optimistic lock)."""
        version = int(record["harnessVersion"])
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._item(record, LATEST),
                            "ConditionExpression": "version = :expected",
                            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._item(record, _version_key(version)),
                            "ConditionExpression": "attribute_not_exists(harnessId)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def claim_name(self, harness_name: str, harness_id: str) -> str | None:
        """Reserve a harness name; returns the id that holds it (ours when the claim succeeded)."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "harnessId": {"S": f"NAME#{harness_name}"},
                    "sk": {"S": "NAME"},
                    "owner": {"S": harness_id},
                },
                ConditionExpression="attribute_not_exists(harnessId)",
            )
            return harness_id
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"harnessId": {"S": f"NAME#{harness_name}"}, "sk": {"S": "NAME"}},
            ConsistentRead=True,
        ).get("Item")
        return item["owner"]["S"] if item else None

    def release_name(self, harness_name: str, harness_id: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"harnessId": {"S": f"NAME#{harness_name}"}, "sk": {"S": "NAME"}},
                ConditionExpression="#o = :id",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":id": {"S": harness_id}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def remember_client_token(
        self, client_token: str, request_digest: str, result_ref: str
    ) -> tuple[str, str]:
        """Record what a client token's request produces; returns the (result, digest) on record."""
        key = {"harnessId": {"S": f"TOKEN#{client_token}"}, "sk": {"S": "TOKEN"}}
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=key | {"owner": {"S": result_ref}, "digest": {"S": request_digest}},
                ConditionExpression="attribute_not_exists(harnessId)",
            )
            return result_ref, request_digest
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        item = self._ddb.get_item(TableName=self._table, Key=key, ConsistentRead=True)["Item"]
        return item["owner"]["S"], item["digest"]["S"]

    def forget_client_token(self, client_token: str, result_ref: str) -> None:
        """Drop a token whose request failed, so a retry can succeed."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"harnessId": {"S": f"TOKEN#{client_token}"}, "sk": {"S": "TOKEN"}},
                ConditionExpression="#o = :ref",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":ref": {"S": result_ref}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def get(self, harness_id: str, version: int | None = None) -> dict[str, Any] | None:
        key = LATEST if version is None else _version_key(version)
        response = self._ddb.get_item(
            TableName=self._table,
            Key={"harnessId": {"S": harness_id}, "sk": {"S": key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return json.loads(item["body"]["S"]) if item else None

    def delete(self, harness_id: str) -> int:
        """Delete the definition and every version; returns how many items went."""
        deleted = 0
        for key in self._keys(harness_id):
            self._ddb.delete_item(TableName=self._table, Key=key)
            deleted += 1
        return deleted

    def list_latest(self, limit: int, next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :latest",
            "ExpressionAttributeValues": {":latest": {"S": LATEST}},
        }
        start_key = _decode_token(next_token) if next_token else None
        return self._paged(self._ddb.scan, kwargs, limit, start_key)

    def list_versions(
        self, harness_id: str, limit: int, next_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "harnessId = :id AND begins_with(sk, :v)",
            "ExpressionAttributeValues": {":id": {"S": harness_id}, ":v": {"S": "V#"}},
            "ConsistentRead": True,
        }
        start_key = _decode_token(next_token, harness_id) if next_token else None
        return self._paged(self._ddb.query, kwargs, limit, start_key)

    @staticmethod
    def _paged(
        operation: Any, kwargs: dict[str, Any], limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        # A filter can leave a page short, so keep reading until the page is full or the table ends.
        records: list[dict[str, Any]] = []
        last_key = None
        while len(records) < limit:
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            kwargs["Limit"] = limit - len(records)
            try:
                page = operation(**kwargs)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ValidationException":
                    raise ValidationError("nextToken is not a token this API issued.") from error
                raise
            records.extend(json.loads(item["body"]["S"]) for item in page.get("Items", []))
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                break
            start_key = last_key
        return records, (_encode_token(last_key) if last_key else None)

    def _keys(self, harness_id: str) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "harnessId = :id",
            "ExpressionAttributeValues": {":id": {"S": harness_id}},
            "ProjectionExpression": "harnessId, sk",
        }
        while True:
            page = self._ddb.query(**kwargs)
            keys.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return keys
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _item(self, record: dict[str, Any], sort_key: str) -> dict[str, Any]:
        return {
            "harnessId": {"S": record["harnessId"]},
            "sk": {"S": sort_key},
            "version": {"N": str(int(record["harnessVersion"]))},
            "body": {"S": json.dumps(record, separators=(",", ":"))},
        }


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, harness_id: str | None = None) -> dict[str, Any]:
    """The table key a nextToken names; anything but a key of this table (of this harness, when
    listing versions) is rejected before it reaches DynamoDB."""
    invalid = ValidationError("nextToken is not a token this API issued.")
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError) as error:
        raise invalid from error
    if not isinstance(key, dict) or set(key) != {"harnessId", "sk"}:
        raise invalid
    if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()):
        raise invalid
    if harness_id is not None and key["harnessId"]["S"] != harness_id:
        raise invalid
    return key
