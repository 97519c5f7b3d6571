"""Per-actor files and large tool outputs, under ``actors/<actorId>/`` in the artifact bucket."""

from __future__ import annotations

from typing import Any

from harness.adapters.clients import client


def actor_prefix(actor_id: str) -> str:
    return f"actors/{actor_id}/"


class ArtifactStore:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._s3 = client("s3")

    def put(self, actor_id: str, relative_key: str, body: bytes, content_type: str) -> str:
        key = actor_prefix(actor_id) + relative_key
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
        return key

    def delete_actor_objects(self, actor_id: str) -> int:
        """Delete every version and delete marker under the actor's prefix; returns objects removed."""
        removed_keys: set[str] = set()
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=actor_prefix(actor_id)):
            entries: list[dict[str, Any]] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            removed_keys.update(v["Key"] for v in page.get("Versions", []))
            for start in range(0, len(entries), 1000):
                self._s3.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": entries[start : start + 1000], "Quiet": True}
                )
        return len(removed_keys)

    def count_actor_objects(self, actor_id: str) -> int:
        count = 0
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=actor_prefix(actor_id)):
            count += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
        return count
