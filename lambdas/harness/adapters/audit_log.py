"""Immutable audit records in the Object Lock bucket, each sealed with a KMS HMAC."""

from __future__ import annotations

import base64
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from harness.adapters.clients import client
from harness.canonical import canonical_json
from harness.errors import TransientStoreError

MAC_ALGORITHM = "HMAC_SHA_256"


class AuditLog:
    def __init__(self, bucket: str, mac_key_id: str) -> None:
        self._bucket = bucket
        self._mac_key_id = mac_key_id
        self._s3 = client("s3")
        self._kms = client("kms")

    def write(self, key: str, record: dict[str, Any]) -> None:
        """Write a record with its MAC; the bucket's default retention locks it (COMPLIANCE).

        Any failure to seal or store is retried by the step that writes (a record that is not
        written must not let the work it records go on)."""
        body = canonical_json(record)
        try:
            mac = self._kms.generate_mac(KeyId=self._mac_key_id, Message=body, MacAlgorithm=MAC_ALGORITHM)[
                "Mac"
            ]
            sealed = {"record": record, "mac": base64.b64encode(mac).decode(), "macAlgorithm": MAC_ALGORITHM}
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=canonical_json(sealed),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as error:
            raise TransientStoreError(
                f"the audit record {key} could not be written; the step is retried"
            ) from error

    def read(self, key: str) -> dict[str, Any] | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                return None
            raise
        sealed: dict[str, Any] = json.loads(body)
        return sealed

    def verify(self, sealed: dict[str, Any]) -> bool:
        """Whether the record still matches its seal (a tampered record answers False, not an error)."""
        try:
            response = self._kms.verify_mac(
                KeyId=self._mac_key_id,
                Message=canonical_json(sealed["record"]),
                MacAlgorithm=sealed["macAlgorithm"],
                Mac=base64.b64decode(sealed["mac"]),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "KMSInvalidMacException":
                return False
            raise
        return bool(response["MacValid"])
