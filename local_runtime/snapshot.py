"""Keep the emulated stores across restarts of the local runtime.

moto keeps state in memory, so the runtime writes the tables, the current objects of every
bucket and the KMS key material (so audit MACs still verify) to a state file, atomically, after
every change and at exit; on start it loads them back. The state file is the local stand-in for
durable AWS storage: keep the state directory private (it is created with mode 0700).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

import boto3
from moto.kms.models import kms_backends

from local_runtime.provision import Deployment

STATE_FILE = "state.json"
FORMAT_VERSION = 1


class Snapshots:
    def __init__(self, deployment: Deployment, state_dir: Path, endpoint_url: str) -> None:
        self._deployment = deployment
        self._path = state_dir / STATE_FILE
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        session = boto3.session.Session(region_name=deployment.template.region)
        self._dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
        self._s3 = session.client("s3", endpoint_url=endpoint_url)
        self._lock = threading.Lock()

    def _kms_keys(self) -> Any:
        template = self._deployment.template
        return kms_backends[template.account_id][template.region].keys

    def save(self) -> None:
        with self._lock:
            state: dict[str, Any] = {"version": FORMAT_VERSION, "tables": {}, "buckets": {}, "kms": {}}
            for logical_id, table in self._deployment.tables.items():
                items: list[dict[str, Any]] = []
                kwargs: dict[str, Any] = {"TableName": table}
                while True:
                    page = self._dynamodb.scan(**kwargs)
                    items.extend(page.get("Items", []))
                    if not page.get("LastEvaluatedKey"):
                        break
                    kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
                state["tables"][logical_id] = items
            for logical_id, bucket in self._deployment.buckets.items():
                objects = []
                for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for entry in page.get("Contents", []):
                        obj = self._s3.get_object(Bucket=bucket, Key=entry["Key"])
                        objects.append(
                            {
                                "key": entry["Key"],
                                "body": base64.b64encode(obj["Body"].read()).decode(),
                                "contentType": obj.get("ContentType", "application/octet-stream"),
                            }
                        )
                state["buckets"][logical_id] = objects
            keys = self._kms_keys()
            for logical_id, key_id in self._deployment.kms_keys.items():
                state["kms"][logical_id] = base64.b64encode(keys[key_id].key_material).decode()
            temporary = self._path.with_suffix(".tmp")
            temporary.write_text(json.dumps(state))
            os.chmod(temporary, 0o600)
            temporary.replace(self._path)

    def restore(self) -> bool:
        """Load the last state into the freshly provisioned stores; False when there is none."""
        if not self._path.exists():
            return False
        state = json.loads(self._path.read_text())
        if state.get("version") != FORMAT_VERSION:
            raise RuntimeError(f"{self._path} was written by another version of the local runtime")
        keys = self._kms_keys()
        for logical_id, material in state["kms"].items():
            if logical_id in self._deployment.kms_keys:
                keys[self._deployment.kms_keys[logical_id]].key_material = base64.b64decode(material)
        for logical_id, items in state["tables"].items():
            table = self._deployment.tables.get(logical_id)
            for start in range(0, len(items), 25) if table else ():
                batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
                pending: dict[str, Any] = {table: batch}
                while pending:
                    pending = (
                        self._dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                    )
        for logical_id, objects in state["buckets"].items():
            bucket = self._deployment.buckets.get(logical_id)
            for obj in objects if bucket else ():
                self._s3.put_object(
                    Bucket=bucket,
                    Key=obj["key"],
                    Body=base64.b64decode(obj["body"]),
                    ContentType=obj["contentType"],
                )
        return True
