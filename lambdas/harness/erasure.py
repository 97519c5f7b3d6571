"""Right to erasure: delete everything stored about one actor, verify nothing remains, and keep
an immutable receipt that names the actor only by digest.

Idempotent and resumable: every pass deletes what it finds, so running it again after a
failure (or after success) finishes the job and reports what that run removed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness import records
from harness.audit import AuditTrail
from harness.errors import InternalError, ResourceNotFoundError, ValidationError
from harness.ids import UUID_RE, actor_digest, check_actor_id, new_erasure_id
from harness.stores import ActorItems, Artifacts, Executions, MemoryStores, SealedRecords

MAX_PASSES = 3
# What the receipt counts, in its order.
RECEIPT_COUNTS = (
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


class Erasure:
    def __init__(
        self,
        memory: MemoryStores,
        items: ActorItems,
        artifacts: Artifacts,
        audit: SealedRecords,
        workflow: Executions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._memory = memory
        self._items = items
        self._artifacts = artifacts
        self._audit = AuditTrail(audit, clock)
        self._workflow = workflow
        self._clock = clock

    def erase(self, actor_id: str) -> dict[str, Any]:
        check_actor_id(actor_id)
        erasure_id = new_erasure_id()
        requested_at = self._clock()
        counts: Counter[str] = Counter()
        for _ in range(MAX_PASSES):
            self._erase_pass(actor_id, counts)
            remaining_items = sum(1 for _ in self._items.actor_items(actor_id))
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
            "deleted": {name: counts.get(name, 0) for name in RECEIPT_COUNTS},
            "verification": {"remainingItems": 0, "remainingObjects": 0},
        }
        self._audit.erasure_completed(actor_id, receipt)
        return receipt | {"actorId": actor_id}

    def receipt(self, actor_id: str, erasure_id: str) -> dict[str, Any]:
        check_actor_id(actor_id)
        if not UUID_RE.fullmatch(erasure_id or ""):
            raise ValidationError("erasureId must be the id returned by DELETE /actors/{actorId}.")
        found = self._audit.erasure_receipt(actor_id, erasure_id)
        if found is None:
            raise ResourceNotFoundError(f"No erasure {erasure_id} exists for this actor.")
        receipt, sealed = found
        return receipt | {"actorId": actor_id, "sealed": sealed}

    def _erase_pass(self, actor_id: str, counts: Counter[str]) -> None:
        items = list(self._items.actor_items(actor_id))
        # Stop work in flight first, so it cannot write into the partition after the delete.
        for item in items:
            if item.invocation_id is None:
                continue
            invocation = self._memory.invocations.get_invocation(actor_id, item.invocation_id)
            if invocation and invocation["status"] in records.ACTIVE_STATUSES:
                self._workflow.stop(item.invocation_id, "actor erased")
                counts["stoppedInvocations"] += 1
        for item in items:
            if item.session_id is not None:
                counts["sessionOwnerMarkers"] += int(self._items.delete_session_owner(item.session_id))
            counts[item.kind] += 1
        self._items.delete_items(items)
        counts["artifactObjects"] += self._artifacts.delete_actor_objects(actor_id)
