"""What the domain stores, as Protocols: one per kind of record, so the loop, invocations and
erasure take their stores as parameters and unit tests pass small in-memory fakes.

The adapters (``harness.adapters``) implement them on DynamoDB, S3 and KMS. They raise the
domain's ``TransientStoreError`` for throttling and unreachable services, so nothing outside the
adapters handles botocore's errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

# A stream event row: (position, event or None, control marker or None).
EventRow = tuple[str, dict[str, Any] | None, str | None]


class SessionRefusal(Enum):
    """Why a session could not be claimed for a new turn (the domain words it for the caller)."""

    OWNED_BY_ANOTHER_ACTOR = "owned by another actor"
    BOUND_TO_ANOTHER_HARNESS = "bound to another harness"
    TURN_IN_PROGRESS = "turn in progress"


class SessionStore(Protocol):
    """Sessions of one actor: which harness they are bound to, their turn count, the invocation
    that holds them, and who owns each session id. ``begin_turn`` answers the new turn's number,
    or why the session cannot take one."""

    def begin_turn(
        self,
        *,
        actor_id: str,
        actor_digest: str,
        session_id: str,
        harness_id: str,
        invocation: dict[str, Any],
        expires_at: int,
    ) -> int | SessionRefusal: ...
    def get_session(self, actor_id: str, session_id: str) -> dict[str, Any] | None: ...
    def session_owner_digest(self, session_id: str) -> str | None: ...
    def end_turn(self, actor_id: str, session_id: str, invocation_id: str) -> None: ...


class ConversationStore(Protocol):
    """The verbatim messages of each session, at deterministic positions, and cached summaries."""

    def put_message(
        self, actor_id: str, session_id: str, position: str, message: dict[str, Any], expires_at: int
    ) -> None: ...
    def list_messages_with_positions(
        self, actor_id: str, session_id: str
    ) -> list[tuple[str, dict[str, Any]]]: ...
    def put_summary(
        self, actor_id: str, session_id: str, position: str, summary: str, expires_at: int
    ) -> None: ...
    def get_summary(self, actor_id: str, session_id: str, position: str) -> str | None: ...


class InvocationStore(Protocol):
    """Invocation records: status, the pause's task token, and the fields steps add."""

    def get_invocation(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None: ...
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
    ) -> bool: ...
    def take_task_token(
        self, actor_id: str, invocation_id: str, expected_status: str, pending_tool_use_ids: list[str]
    ) -> str | None: ...
    def active_invocations(self) -> Iterator[tuple[str, str]]: ...


class ToolCallStore(Protocol):
    """Per invocation: tool results (first result wins), run claims, the tool servers' catalog and
    approval decisions."""

    def put_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> None: ...
    def put_first_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> dict[str, Any]: ...
    def get_tool_result(
        self, actor_id: str, invocation_id: str, tool_use_id: str
    ) -> dict[str, Any] | None: ...
    def get_tool_results(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]: ...
    def claim_tool_call(
        self,
        actor_id: str,
        invocation_id: str,
        tool_use_id: str,
        *,
        now: float,
        until: float,
        expires_at: int,
    ) -> bool: ...
    def put_catalog(
        self, actor_id: str, invocation_id: str, catalog: dict[str, Any], expires_at: int
    ) -> None: ...
    def get_catalog(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None: ...
    def put_approval(
        self, actor_id: str, invocation_id: str, decision: dict[str, Any], expires_at: int
    ) -> None: ...
    def get_approvals(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]: ...


class EventLog(Protocol):
    """The stream events of each invocation, in position order, with pause/end control markers."""

    def put_event(
        self,
        actor_id: str,
        invocation_id: str,
        position: str,
        *,
        event: dict[str, Any] | None = None,
        control: str | None = None,
        expires_at: int,
    ) -> None: ...
    def read_events(
        self, actor_id: str, invocation_id: str, after_position: str | None
    ) -> list[EventRow]: ...


@dataclass(frozen=True)
class ActorItem:
    """One stored item of an actor, as erasure counts it. ``kind`` is the receipt's category
    (sessions, messages, summaries, invocations, streamEvents, toolResults, otherItems); the
    session or invocation id is set on those records themselves; ``key`` is the store's own."""

    kind: str
    key: Any
    session_id: str | None = None
    invocation_id: str | None = None


class ActorItems(Protocol):
    """Everything of one actor in the memory table, for erasure and its verification scan."""

    def actor_items(self, actor_id: str) -> Iterator[ActorItem]: ...
    def delete_items(self, items: list[ActorItem]) -> None: ...
    def delete_session_owner(self, session_id: str) -> bool: ...


class HarnessVersions(Protocol):
    """Read access to stored harness versions (``DefinitionStore`` is the full interface)."""

    def get(self, harness_id: str, version: int | None = None) -> dict[str, Any] | None: ...


class Artifacts(Protocol):
    """Large objects under each actor's prefix of the artifact bucket (KMS-encrypted)."""

    def put(self, actor_id: str, relative_key: str, body: bytes, content_type: str) -> str: ...
    def delete_actor_objects(self, actor_id: str) -> int: ...
    def count_actor_objects(self, actor_id: str) -> int: ...


class SealedRecords(Protocol):
    """Immutable, sealed records (the audit bucket): ``write`` seals, ``verify`` checks the seal."""

    def write(self, key: str, record: dict[str, Any]) -> None: ...
    def read(self, key: str) -> dict[str, Any] | None: ...
    def verify(self, sealed: dict[str, Any]) -> bool: ...


class Executions(Protocol):
    """The state machine's executions, one per invocation, named by the invocation id."""

    def start(self, invocation_id: str, execution_input: Mapping[str, Any]) -> None: ...
    def resume(self, task_token: str, output: dict[str, Any]) -> None: ...
    def status(self, invocation_id: str) -> str | None: ...
    def is_running(self, invocation_id: str) -> bool: ...
    def stop(self, invocation_id: str, cause: str) -> None: ...


@dataclass(frozen=True)
class MemoryStores:
    """The stores of the memory table, by what they hold (one table, one partition per actor)."""

    sessions: SessionStore
    conversations: ConversationStore
    invocations: InvocationStore
    tool_calls: ToolCallStore
    events: EventLog
