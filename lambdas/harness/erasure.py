"""Right to erasure: delete everything stored about one actor, verify nothing remains, and keep
an immutable receipt that names the actor only by digest.

Idempotent and resumable: every pass deletes what it finds, so running it again after a
failure (or after success) finishes the job and reports what that run removed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import records
from harness.errors import InternalError, ResourceNotFoundError, ValidationError
from harness.ids import UUID_RE, actor_digest, check_actor_id, new_erasure_id

if TYPE_CHECKING:
    from harness.adapters.artifact_store import ArtifactStore
    from harness.adapters.audit_log import AuditLog
    from harness.adapters.memory_store import MemoryStore
    from harness.adapters.workflow import Workflow

MAX_PASSES = 3


def _kind(sort_key: str) -> str:
    """Classify an item of the actor's partition for the receipt's counts."""
    if sort_key.startswith("session#"):
        if "#msg#" in sort_key:
            return "messages"
        return "summaries" if "#summary#" in sort_key else "sessions"
    if sort_key.startswith("invocation#"):
        if "#ev#" in sort_key:
            return "streamEvents"
        if "#result#" in sort_key:
            return "toolResults"
        return "invocations"
    return "otherItems"


def receipt_key(actor_id: str, erasure_id: str) -> str:
    return f"erasure-receipts/{actor_digest(actor_id)}/{erasure_id}.json"


class Erasure:
    def __init__(
        self,
        memory: MemoryStore,
        artifacts: ArtifactStore,
        audit: AuditLog,
        workflow: Workflow,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._memory = memory
        self._artifacts = artifacts
        self._audit = audit
        self._workflow = workflow
        self._clock = clock

    def erase(self, actor_id: str) -> dict[str, Any]:
        check_actor_id(actor_id)
        erasure_id = new_erasure_id()
        requested_at = self._clock()
        counts: Counter[str] = Counter()
        for _ in range(MAX_PASSES):
            self._erase_pass(actor_id, counts)
            remaining_items = sum(1 for _ in self._memory.actor_item_keys(actor_id))
            remaining_objects = self._artifacts.count_actor_objects(actor_id)
            if remaining_items == 0 and remaining_objects == 0:
                break
        else:
            raise InternalError(
                "Erasure could not confirm that nothing remains (work was still being written); run it again."
            )
        receipt = {
            "erasureId": erasure_id,
            "actorDigest": actor_digest(actor_id),
            "status": "COMPLETED",
            "requestedAt": requested_at,
            "completedAt": self._clock(),
            "deleted": {
                name: counts.get(name, 0)
                for name in (
                    "sessions",
                    "messages",
                    "summaries",
                    "invocations",
                    "streamEvents",
                    "toolResults",
                    "otherItems",
                    "sessionOwnerMarkers",
                    "stoppedInvocations",
                    "artifactObjects",
                )
            },
            "verification": {"remainingItems": 0, "remainingObjects": 0},
        }
        self._audit.write(receipt_key(actor_id, erasure_id), {"kind": "erasureReceipt", **receipt})
        return receipt | {"actorId": actor_id}

    def receipt(self, actor_id: str, erasure_id: str) -> dict[str, Any]:
        check_actor_id(actor_id)
        if not UUID_RE.fullmatch(erasure_id or ""):
            raise ValidationError("erasureId must be the id returned by DELETE /actors/{actorId}.")
        sealed = self._audit.read(receipt_key(actor_id, erasure_id))
        if sealed is None:
            raise ResourceNotFoundError(f"No erasure {erasure_id} exists for this actor.")
        record = {k: v for k, v in sealed["record"].items() if k != "kind"}
        return record | {"actorId": actor_id, "sealed": self._audit.verify(sealed)}

    def _erase_pass(self, actor_id: str, counts: Counter[str]) -> None:
        keys = list(self._memory.actor_item_keys(actor_id))
        # Stop work in flight first, so it cannot write into the partition after the delete.
        for key in keys:
            sort_key = key["sk"]["S"]
            if sort_key.startswith("invocation#") and sort_key.count("#") == 1:
                invocation_id = sort_key.split("#", 1)[1]
                invocation = self._memory.get_invocation(actor_id, invocation_id)
                if invocation and invocation["status"] in records.ACTIVE_STATUSES:
                    self._workflow.stop(invocation_id, "actor erased")
                    counts["stoppedInvocations"] += 1
        for key in keys:
            sort_key = key["sk"]["S"]
            if _kind(sort_key) == "sessions":
                counts["sessionOwnerMarkers"] += int(
                    self._memory.delete_session_owner(sort_key.split("#", 1)[1])
                )
            counts[_kind(sort_key)] += 1
        self._memory.delete_keys(keys)
        counts["artifactObjects"] += self._artifacts.delete_actor_objects(actor_id)
