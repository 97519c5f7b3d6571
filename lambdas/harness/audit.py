"""The audit trail: every record the Object Lock bucket keeps is built here, in one place.

Three kinds, each sealed with the KMS HMAC key by the adapter that writes it:
- ``invocation``: how a turn ended, which tools ran (names and outcomes, never content), which
  calls were refused (name digests), hook outcomes, approvals, model switches.
- ``approval``: a person's decision on a held tool call, who made it and why, written before the
  call may run.
- ``erasureReceipt``: what an erasure removed and the proof that nothing remains.

Records are locked for years while actor data is erasable, so they name the actor only by digest
and tool inputs only by digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.canonical import digest, text_digest
from harness.ids import actor_digest
from harness.stores import SealedRecords

INVOCATION = "invocation"
APPROVAL = "approval"
ERASURE_RECEIPT = "erasureReceipt"


def invocation_record_key(harness_id: str, invocation_id: str) -> str:
    return f"invocations/{harness_id}/{invocation_id}.json"


def approval_record_key(harness_id: str, invocation_id: str, tool_use_id: str) -> str:
    return f"approvals/{harness_id}/{invocation_id}/{tool_use_id}.json"


def erasure_receipt_key(actor_id: str, erasure_id: str) -> str:
    return f"erasure-receipts/{actor_digest(actor_id)}/{erasure_id}.json"


@dataclass(frozen=True)
class Subject:
    """Whose turn a record is about: the invocation, its harness version and its actor."""

    invocation_id: str
    harness_id: str
    harness_version: int
    actor_id: str

    def fields(self) -> dict[str, Any]:
        return {
            "invocationId": self.invocation_id,
            "harnessId": self.harness_id,
            "harnessVersion": self.harness_version,
            "actorDigest": actor_digest(self.actor_id),
        }


@dataclass(frozen=True)
class TurnOutcome:
    """How an invocation ended, as its closing step knows it."""

    status: str
    stop_reason: str
    iterations: int | None
    total_tokens: int | None
    failure: str | None


class AuditTrail:
    def __init__(self, records: SealedRecords, clock: Callable[[], float]) -> None:
        self._records = records
        self._clock = clock

    def invocation_closed(
        self,
        subject: Subject,
        invocation: dict[str, Any],
        outcome: TurnOutcome,
        *,
        tool_results: Iterable[dict[str, Any]],
        hook_events: list[dict[str, Any]],
        approvals: Iterable[str],
        unavailable_servers: Iterable[str],
    ) -> None:
        results = list(tool_results)
        refused = [
            # Model-chosen names may carry user text; the locked audit log keeps only digests.
            {"toolUseId": r["toolUseId"], "nameDigest": text_digest(r["refusedToolName"])}
            for r in results
            if "refusedToolName" in r
        ]
        # Server-run calls: names from the configuration, outcome and latency, never content.
        tool_calls = [
            {
                "toolUseId": r["toolUseId"],
                "tool": r["tool"],
                "status": r["status"],
                "latencyMs": r.get("latencyMs"),
                "offloaded": "offloaded" in r,
            }
            for r in results
            if "tool" in r
        ]
        record = {
            "kind": INVOCATION,
            **subject.fields(),
            # The IAM principal that started the turn (a caller of the API, not the actor).
            "requestedBy": invocation.get("requestedBy"),
            "status": outcome.status,
            "stopReason": outcome.stop_reason,
            "iterations": outcome.iterations,
            "totalTokens": outcome.total_tokens,
            "refusedToolCalls": sorted(refused, key=lambda r: r["toolUseId"]),
            "toolCalls": sorted(tool_calls, key=lambda r: r["toolUseId"]),
            "hookEvents": hook_events,
            "approvals": sorted(approvals),
            "unavailableToolServers": sorted(unavailable_servers),
            "modelSwitches": invocation.get("modelSwitches", []),
            "failure": outcome.failure,
            "startedAt": invocation["createdAt"],
            "endedAt": self._clock(),
        }
        self._records.write(invocation_record_key(subject.harness_id, subject.invocation_id), record)

    def approval_decided(
        self, subject: Subject, call: dict[str, Any], tool: str, decision: dict[str, Any]
    ) -> None:
        """The decision, who made it and why, in the Object Lock bucket before the call can run."""
        record = {
            "kind": APPROVAL,
            **subject.fields(),
            "toolUseId": call["toolUseId"],
            # Names of server tools come from the configuration; the input is personal data, so
            # only its digest is locked away (it proves which input was approved).
            "tool": tool,
            "inputDigest": digest(call["input"]),
            "decision": "approved" if decision["approved"] else "rejected",
            "reason": decision["reason"],
            "approver": decision["approver"],
            "requestedBy": decision.get("requestedBy"),
            "decidedAt": decision["decidedAt"],
        }
        key = approval_record_key(subject.harness_id, subject.invocation_id, call["toolUseId"])
        self._records.write(key, record)

    def erasure_completed(self, actor_id: str, receipt: dict[str, Any]) -> None:
        """``receipt`` names the actor by digest only; the key does too."""
        self._records.write(
            erasure_receipt_key(actor_id, receipt["erasureId"]), {"kind": ERASURE_RECEIPT, **receipt}
        )

    def erasure_receipt(self, actor_id: str, erasure_id: str) -> tuple[dict[str, Any], bool] | None:
        """The stored receipt (without its kind), and whether it still matches its seal."""
        sealed = self._records.read(erasure_receipt_key(actor_id, erasure_id))
        if sealed is None:
            return None
        record = {k: v for k, v in sealed["record"].items() if k != "kind"}
        return record, self._records.verify(sealed)
