"""In-memory stand-ins for everything the agent loop's steps take as parameters, for unit tests that
run each step with no AWS, no network and no wall clock.

Each store mirrors its adapter's semantics on plain dicts (``harness.adapters.memory``,
``adapters.audit_log``, ``adapters.artifact_store``): values go in and come out as JSON, as the
table stores them; ``put_first_tool_result`` keeps the first result; ``claim_tool_call`` refuses
while an unexpired claim is held; ``read_events`` returns the rows after a position in sort order;
``update_invocation`` answers False when the invocation is missing or not in ``expected_status``;
``take_task_token`` hands the token out once. ``Fakes`` wires them together with a settable clock,
hook functions, a tool dispatcher and a scripted model, and builds the stored shapes a real
deployment would hold (a harness version, a started invocation, a person's approval decision).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness import records
from harness.audit import AuditTrail
from harness.canonical import canonical_json
from harness.errors import TransientStoreError
from harness.hooks import HookRunner
from harness.ids import actor_digest, new_invocation_id
from harness.loop.authorization import ToolAuthorization
from harness.loop.closing import Closing
from harness.loop.context import LoopContext
from harness.loop.model_turn import ModelTurn
from harness.loop.state import Ids, LoopIds, execution_input
from harness.loop.tool_run import ToolRun
from harness.providers.base import (
    ModelEvent,
    ModelRequest,
    Stop,
    TextDelta,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)
from harness.providers.router import Router
from harness.stores import (
    Artifacts,
    EventRow,
    HarnessVersions,
    MemoryStores,
    SealedRecords,
    SessionRefusal,
)
from harness.tools.registry import CatalogTool, ToolEntry, model_tool_name

START = 1_700_000_000.0
ACTOR = "actor-unit-1"
SESSION = "session-unit-0000000000000000000001"
CALLER = "arn:aws:iam::123456789012:role/caller"
APPROVER = "arn:aws:iam::123456789012:role/approver"
CLIENT_TIMEOUT_SECONDS = 3600
LOCAL_MODEL = {"liteLlmModelConfig": {"modelId": "local/deterministic"}}
INPUT_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def _stored(value: Any) -> Any:
    """What a store hands back: a JSON copy, never the caller's object."""
    return json.loads(json.dumps(value))


class FakeClock:
    """Epoch seconds that move only when a test (or a fake standing in for slow work) says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the memory table ----------------------------------------------------------------------------------


class FakeInvocations:
    """``InvocationStore``: the record as started, with the mutable fields steps set over it."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def create(self, actor_id: str, invocation: dict[str, Any]) -> bool:
        key = (actor_id, invocation["invocationId"])
        if key in self.items:
            return False
        self.items[key] = {"status": invocation["status"], "record": _stored(invocation), "fields": {}}
        return True

    def get_invocation(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None:
        item = self.items.get((actor_id, invocation_id))
        if item is None:
            return None
        flags: dict[str, Any] = {"status": item["status"]}
        if "pendingToolUseIds" in item:
            flags["pendingToolUseIds"] = item["pendingToolUseIds"]
        return _stored(item["record"] | flags | item["fields"])

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
        item = self.items.get((actor_id, invocation_id))
        if item is None or (expected_status is not None and item["status"] != expected_status):
            return False
        item["status"] = status
        if task_token is not None:
            item["taskToken"] = task_token
        else:
            item.pop("taskToken", None)
        if pending_tool_use_ids is not None:
            item["pendingToolUseIds"] = _stored(pending_tool_use_ids)
        item["fields"].update(_stored(fields or {}))
        return True

    def take_task_token(
        self, actor_id: str, invocation_id: str, expected_status: str, pending_tool_use_ids: list[str]
    ) -> str | None:
        item = self.items.get((actor_id, invocation_id))
        if (
            item is None
            or item["status"] != expected_status
            or "taskToken" not in item
            or item.get("pendingToolUseIds") != pending_tool_use_ids
        ):
            return None
        item["status"] = records.RUNNING
        item.pop("pendingToolUseIds")
        token: str = item.pop("taskToken")
        return token

    def active_invocations(self) -> Iterator[tuple[str, str]]:
        for (actor_id, invocation_id), item in list(self.items.items()):
            if item["status"] in records.ACTIVE_STATUSES:
                yield actor_id, invocation_id


class FakeSessions:
    """``SessionStore``: ``begin_turn`` claims the session and stores the invocation in one step,
    as the adapter's transaction does."""

    def __init__(self, invocations: FakeInvocations) -> None:
        self._invocations = invocations
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self.owners: dict[str, str] = {}

    def begin_turn(
        self,
        *,
        actor_id: str,
        actor_digest: str,
        session_id: str,
        harness_id: str,
        invocation: dict[str, Any],
        expires_at: int,
    ) -> int | SessionRefusal:
        owner = self.owners.get(session_id)
        if owner is not None and owner != actor_digest:
            return SessionRefusal.OWNED_BY_ANOTHER_ACTOR
        session = self.sessions.get((actor_id, session_id))
        if session is not None and session["harnessId"] != harness_id:
            return SessionRefusal.BOUND_TO_ANOTHER_HARNESS
        if session is not None and session.get("activeInvocationId"):
            return SessionRefusal.TURN_IN_PROGRESS
        if not self._invocations.create(actor_id, invocation):
            return SessionRefusal.TURN_IN_PROGRESS
        self.owners[session_id] = actor_digest
        session = session or {"harnessId": harness_id, "turnCount": 0}
        session["turnCount"] += 1
        session["activeInvocationId"] = invocation["invocationId"]
        self.sessions[(actor_id, session_id)] = session
        return int(session["turnCount"])

    def get_session(self, actor_id: str, session_id: str) -> dict[str, Any] | None:
        session = self.sessions.get((actor_id, session_id))
        if session is None:
            return None
        return {
            "harnessId": session["harnessId"],
            "turnCount": session["turnCount"],
            "activeInvocationId": session.get("activeInvocationId"),
        }

    def session_owner_digest(self, session_id: str) -> str | None:
        return self.owners.get(session_id)

    def end_turn(self, actor_id: str, session_id: str, invocation_id: str) -> None:
        session = self.sessions.get((actor_id, session_id))
        if session is not None and session.get("activeInvocationId") == invocation_id:
            del session["activeInvocationId"]


class FakeConversations:
    """``ConversationStore``: messages by position (a put at a taken position overwrites)."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.summaries: dict[tuple[str, str, str], str] = {}

    def put_message(
        self, actor_id: str, session_id: str, position: str, message: dict[str, Any], expires_at: int
    ) -> None:
        self.messages.setdefault((actor_id, session_id), {})[position] = _stored(message)

    def list_messages_with_positions(
        self, actor_id: str, session_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        stored = self.messages.get((actor_id, session_id), {})
        return [(position, _stored(stored[position])) for position in sorted(stored)]

    def put_summary(
        self, actor_id: str, session_id: str, position: str, summary: str, expires_at: int
    ) -> None:
        self.summaries[(actor_id, session_id, position)] = summary

    def get_summary(self, actor_id: str, session_id: str, position: str) -> str | None:
        return self.summaries.get((actor_id, session_id, position))


class FakeToolCalls:
    """``ToolCallStore``: results (the first server result wins), claims, catalogs, approvals."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.claims: dict[tuple[str, str, str], float] = {}
        self.catalogs: dict[tuple[str, str], dict[str, Any]] = {}
        self.approvals: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def put_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> None:
        self.results.setdefault((actor_id, invocation_id), {})[result["toolUseId"]] = _stored(result)

    def put_first_tool_result(
        self, actor_id: str, invocation_id: str, result: dict[str, Any], expires_at: int
    ) -> dict[str, Any]:
        results = self.results.setdefault((actor_id, invocation_id), {})
        stored = results.setdefault(result["toolUseId"], _stored(result))
        return dict(_stored(stored))

    def get_tool_result(self, actor_id: str, invocation_id: str, tool_use_id: str) -> dict[str, Any] | None:
        result = self.results.get((actor_id, invocation_id), {}).get(tool_use_id)
        return _stored(result) if result is not None else None

    def get_tool_results(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]:
        results = self.results.get((actor_id, invocation_id), {})
        return {tool_use_id: _stored(results[tool_use_id]) for tool_use_id in sorted(results)}

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
        key = (actor_id, invocation_id, tool_use_id)
        held_until = self.claims.get(key)
        if held_until is not None and not held_until < now:
            return False
        self.claims[key] = until
        return True

    def put_catalog(
        self, actor_id: str, invocation_id: str, catalog: dict[str, Any], expires_at: int
    ) -> None:
        self.catalogs[(actor_id, invocation_id)] = _stored(catalog)

    def get_catalog(self, actor_id: str, invocation_id: str) -> dict[str, Any] | None:
        catalog = self.catalogs.get((actor_id, invocation_id))
        return _stored(catalog) if catalog is not None else None

    def put_approval(
        self, actor_id: str, invocation_id: str, decision: dict[str, Any], expires_at: int
    ) -> None:
        self.approvals.setdefault((actor_id, invocation_id), {})[decision["toolUseId"]] = _stored(decision)

    def get_approvals(self, actor_id: str, invocation_id: str) -> dict[str, dict[str, Any]]:
        return _stored(self.approvals.get((actor_id, invocation_id), {}))


# Decides whether a put fails: (position, event, control) -> True to raise TransientStoreError.
PutFailure = Callable[[str, dict[str, Any] | None, str | None], bool]


class FakeEventLog:
    """``EventLog``: rows by position, read back in sort order. ``fail_once`` makes the next
    matching put raise ``TransientStoreError``, as a throttled table does."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, tuple[dict[str, Any] | None, str | None]]] = {}
        self._failures: list[PutFailure] = []

    def fail_once(self, when: PutFailure) -> None:
        self._failures.append(when)

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
        for failure in self._failures:
            if failure(position, event, control):
                self._failures.remove(failure)
                raise TransientStoreError("the memory table is throttling; the step is retried")
        stored = _stored(event) if event is not None else None
        self.rows.setdefault((actor_id, invocation_id), {})[position] = (stored, control)

    def read_events(self, actor_id: str, invocation_id: str, after_position: str | None) -> list[EventRow]:
        rows = self.rows.get((actor_id, invocation_id), {})
        return [
            (position, _stored(rows[position][0]), rows[position][1])
            for position in sorted(rows)
            if after_position is None or position > after_position
        ]


# -- the other stores -----------------------------------------------------------------------------------


class FakeHarnessVersions:
    """``HarnessVersions``: stored harness records (``harnessVersion`` is a string, as stored)."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], dict[str, Any]] = {}

    def put(self, record: dict[str, Any]) -> None:
        self.versions[(record["harnessId"], int(record["harnessVersion"]))] = _stored(record)

    def get(self, harness_id: str, version: int | None = None) -> dict[str, Any] | None:
        numbers = [n for (h, n) in self.versions if h == harness_id]
        if not numbers:
            return None
        record = self.versions.get((harness_id, max(numbers) if version is None else int(version)))
        return _stored(record) if record is not None else None


class FakeArtifacts:
    """``Artifacts``: objects under ``actors/<actorId>/``, as the artifact bucket keeps them."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, actor_id: str, relative_key: str, body: bytes, content_type: str) -> str:
        key = f"actors/{actor_id}/{relative_key}"
        self.objects[key] = (body, content_type)
        return key

    def delete_actor_objects(self, actor_id: str) -> int:
        keys = [key for key in self.objects if key.startswith(f"actors/{actor_id}/")]
        for key in keys:
            del self.objects[key]
        return len(keys)

    def count_actor_objects(self, actor_id: str) -> int:
        return sum(1 for key in self.objects if key.startswith(f"actors/{actor_id}/"))


class FakeSealedRecords:
    """``SealedRecords``: each record sealed with a digest standing in for the KMS HMAC. Every
    write is noted in ``journal`` so a test can see what happened before what."""

    def __init__(self, journal: list[str]) -> None:
        self.sealed: dict[str, dict[str, Any]] = {}
        self._journal = journal

    @staticmethod
    def _mac(record: dict[str, Any]) -> str:
        return hashlib.sha256(b"unit-test-key" + canonical_json(record)).hexdigest()

    def write(self, key: str, record: dict[str, Any]) -> None:
        record = _stored(record)
        self.sealed[key] = {"record": record, "mac": self._mac(record), "macAlgorithm": "HMAC_SHA_256"}
        self._journal.append(f"audit {key}")

    def read(self, key: str) -> dict[str, Any] | None:
        sealed = self.sealed.get(key)
        return _stored(sealed) if sealed is not None else None

    def verify(self, sealed: dict[str, Any]) -> bool:
        return bool(sealed["mac"] == self._mac(sealed["record"]))

    def record(self, key: str) -> dict[str, Any]:
        """The record written under ``key`` (a KeyError when nothing was)."""
        record: dict[str, Any] = _stored(self.sealed[key]["record"])
        return record


# -- services the steps call ------------------------------------------------------------------------------


class FakeHookFunctions:
    """Hook targets: Lambda functions that answer in-process, and notification targets that record
    what they were sent. ``runner()`` is a ``HookRunner`` that reaches only these."""

    def __init__(self) -> None:
        self._answers: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.notifications: list[tuple[str, dict[str, Any]]] = []

    def function(self, name: str, answer: Mapping[str, Any] | Callable[[dict[str, Any]], Any]) -> str:
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:harness-hook-{name}"
        self._answers[arn] = answer if callable(answer) else (lambda _payload: dict(answer))
        return arn

    def invoke(self, arn: str, payload: bytes, timeout_seconds: float) -> Mapping[str, Any]:
        body = json.loads(payload)
        self.received.append((arn, body))
        return {"Payload": io.BytesIO(json.dumps(self._answers[arn](body)).encode())}

    def publish(self, topic_arn: str, message: str) -> object:
        self.notifications.append((topic_arn, json.loads(message)))
        return {}

    def put_event(self, bus_arn: str, detail_type: str, detail: str) -> Mapping[str, Any]:
        self.notifications.append((bus_arn, json.loads(detail)))
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    def runner(self) -> HookRunner:
        return HookRunner(invoke_lambda=self.invoke, publish_sns=self.publish, put_event=self.put_event)


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool target answered (``ToolDispatcher.call``'s result shape)."""

    content: list[dict[str, Any]]
    status: str = "success"


ToolAnswer = ToolOutcome | Callable[[dict[str, Any]], ToolOutcome]


class FakeDispatcher:
    """The tool dispatcher as the loop uses it: ``discover`` lists what the servers offer,
    ``approval_reason`` names the calls a policy holds, ``call`` answers from ``answers`` (by
    the model's tool name) and notes each call in ``journal``. ``takes`` is how long a call runs
    on the fake clock."""

    def __init__(self, clock: FakeClock, journal: list[str]) -> None:
        self._clock = clock
        self._journal = journal
        self.offered: dict[str, list[CatalogTool]] = {}
        self.unavailable: dict[str, str] = {}
        self.answers: dict[str, ToolAnswer] = {}
        self.approval_reasons: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.takes = 0.0

    def offer(self, server: str, tool: str, input_schema: dict[str, Any] | None = None) -> str:
        """Have ``server`` offer ``tool``; returns the name the model calls it by."""
        self.offered.setdefault(server, []).append(
            CatalogTool(server, tool, f"{tool} on {server}", input_schema or INPUT_SCHEMA)
        )
        return model_tool_name(server, tool)

    def discover(
        self, servers: tuple[dict[str, Any], ...]
    ) -> tuple[dict[str, list[CatalogTool]], dict[str, str]]:
        names = [server["name"] for server in servers]
        catalog = {name: list(self.offered[name]) for name in names if name in self.offered}
        return catalog, {name: problem for name, problem in self.unavailable.items() if name in names}

    def approval_reason(self, entry: ToolEntry, arguments: dict[str, Any]) -> str | None:
        return self.approval_reasons.get(entry.name)

    def call(self, entry: ToolEntry, arguments: dict[str, Any], idempotency_key: str) -> ToolOutcome:
        self.calls.append((entry.name, arguments, idempotency_key))
        self._journal.append(f"call {entry.name}")
        self._clock.advance(self.takes)
        answer = self.answers[entry.name]
        return answer(arguments) if callable(answer) else answer


class ScriptedModel:
    """A model provider that streams the replies it was given, one per call, and keeps each request.
    ``takes`` is how long each reply streams on the fake clock."""

    name = "scripted"

    def __init__(self, *replies: Sequence[ModelEvent], clock: FakeClock | None = None) -> None:
        self._replies = [list(reply) for reply in replies]
        self._clock = clock
        self.takes = 0.0
        self.requests: list[ModelRequest] = []

    def then(self, *replies: Sequence[ModelEvent]) -> None:
        self._replies.extend(list(reply) for reply in replies)

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        self.requests.append(request)
        if not self._replies:
            raise AssertionError("the model was called more often than the test scripted")
        reply = self._replies.pop(0)
        if self._clock is not None:
            self._clock.advance(self.takes)
        yield from reply

    def router(self) -> Router:
        return Router(lambda _model: self)


def text_reply(text: str, usage: tuple[int, int] = (1, 1)) -> list[ModelEvent]:
    return [TextDelta(text), Stop("end_turn"), Usage(*usage)]


def tool_reply(
    *calls: tuple[str, str, dict[str, Any] | str], usage: tuple[int, int] = (1, 1)
) -> list[ModelEvent]:
    """A reply that calls tools: (tool-use id, tool name, input as an object or as raw JSON text)."""
    events: list[ModelEvent] = []
    for tool_use_id, name, tool_input in calls:
        raw = tool_input if isinstance(tool_input, str) else json.dumps(tool_input)
        events += [ToolUseStart(tool_use_id, name), ToolUseInputDelta(tool_use_id, raw)]
    return [*events, Stop("tool_use"), Usage(*usage)]


# -- stored shapes --------------------------------------------------------------------------------------


def harness_record(harness_id: str = "unit-harness-0001", version: int = 1, **members: Any) -> dict[str, Any]:
    """A harness version as ``definitions`` stores it (what ``records.EffectiveConfig.of`` reads)."""
    record: dict[str, Any] = {
        "harnessId": harness_id,
        "harnessName": "unit",
        "arn": f"arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/{harness_id}",
        "status": "READY",
        "harnessVersion": str(version),
        "executionRoleArn": "arn:aws:iam::123456789012:role/harness-execution",
        "createdAt": START - 86400,
        "updatedAt": START - 86400,
        "model": LOCAL_MODEL,
        "systemPrompt": [],
        "tools": [],
        "hooks": [],
        "skills": [],
        "allowedTools": ["*"],
        "truncation": {"strategy": "none"},
        "memory": {"managedMemoryConfiguration": {"eventExpiryDuration": 30}},
        "maxIterations": 20,
        "timeoutSeconds": 900,
    }
    return record | members


def inline_tool(name: str, input_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "inline_function",
        "name": name,
        "config": {
            "inlineFunction": {
                "description": f"{name}, answered by the client",
                "inputSchema": input_schema or INPUT_SCHEMA,
            }
        },
    }


def remote_mcp_tool(name: str) -> dict[str, Any]:
    return {
        "type": "remote_mcp",
        "name": name,
        "config": {"remoteMcp": {"url": f"https://{name}.example.com/mcp"}},
    }


def lambda_hook(hook_type: str, name: str, arn: str, **target: Any) -> dict[str, Any]:
    return {hook_type: {"name": name, "target": {"lambda": {"arn": arn, **target}}}}


def sns_hook(hook_type: str, name: str) -> dict[str, Any]:
    return {
        hook_type: {"name": name, "target": {"sns": {"arn": f"arn:aws:sns:us-east-1:123456789012:{name}"}}}
    }


def user_message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


@dataclass
class LoopSteps:
    model_turn: ModelTurn
    authorization: ToolAuthorization
    tool_run: ToolRun
    closing: Closing


class Fakes:
    """Every store and service of the loop, in memory, on one fake clock."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        # What happened, in order, across the audit bucket and the tool targets.
        self.journal: list[str] = []
        self.invocations = FakeInvocations()
        self.sessions = FakeSessions(self.invocations)
        self.conversations = FakeConversations()
        self.tool_calls = FakeToolCalls()
        self.events = FakeEventLog()
        self.harnesses = FakeHarnessVersions()
        self.artifacts = FakeArtifacts()
        self.audit = FakeSealedRecords(self.journal)
        self.hooks = FakeHookFunctions()
        self.dispatcher = FakeDispatcher(self.clock, self.journal)
        self.model = ScriptedModel(clock=self.clock)
        # Annotated with the Protocols, so a type checker reports a fake that drifts from its store.
        self.memory: MemoryStores = MemoryStores(
            sessions=self.sessions,
            conversations=self.conversations,
            invocations=self.invocations,
            tool_calls=self.tool_calls,
            events=self.events,
        )
        versions: HarnessVersions = self.harnesses
        artifacts: Artifacts = self.artifacts
        audit: SealedRecords = self.audit
        self.context = LoopContext(versions, self.memory, self.hooks.runner(), self.clock)
        trail = AuditTrail(audit, self.clock)
        dispatcher: Any = self.dispatcher
        self.steps = LoopSteps(
            model_turn=ModelTurn(self.context, self.model.router(), dispatcher),
            authorization=ToolAuthorization(self.context, trail, dispatcher),
            tool_run=ToolRun(self.context, dispatcher, artifacts),
            closing=Closing(self.context, trail),
        )

    # -- builders ---------------------------------------------------------------------------------------

    def harness(self, **members: Any) -> dict[str, Any]:
        record = harness_record(**members)
        self.harnesses.put(record)
        return record

    def start(
        self,
        harness: dict[str, Any],
        messages: list[dict[str, Any]] | str = "hello",
        *,
        actor_id: str = ACTOR,
        session_id: str = SESSION,
        overrides: dict[str, Any] | None = None,
    ) -> LoopIds:
        """An invocation as ``Invocations._start`` leaves it: the session claimed, the record
        stored RUNNING with its turn; what the execution starts with is returned."""
        if isinstance(messages, str):
            messages = [user_message(messages)]
        now = int(self.clock())
        days = int(harness["memory"]["managedMemoryConfiguration"]["eventExpiryDuration"])
        invocation_id = new_invocation_id()
        invocation = {
            "invocationId": invocation_id,
            "sessionId": session_id,
            "harnessId": harness["harnessId"],
            "harnessVersion": harness["harnessVersion"],
            "status": records.RUNNING,
            "createdAt": now,
            "expiresAt": now + days * 86400,
            "input": messages,
            "overrides": overrides or {},
            "requestedBy": CALLER,
        }
        turn = self.sessions.begin_turn(
            actor_id=actor_id,
            actor_digest=actor_digest(actor_id),
            session_id=session_id,
            harness_id=harness["harnessId"],
            invocation=invocation | {"turn": 0},
            expires_at=now + days * 86400,
        )
        assert isinstance(turn, int), turn
        self.invocations.update_invocation(
            actor_id, invocation_id, status=records.RUNNING, fields={"turn": turn}
        )
        ids = Ids(invocation_id, actor_id, session_id, harness["harnessId"], int(harness["harnessVersion"]))
        return execution_input(ids, CLIENT_TIMEOUT_SECONDS)["ids"]

    def resume(
        self,
        ids: LoopIds,
        *,
        results: Sequence[dict[str, Any]] = (),
        decisions: Mapping[str, tuple[bool, str]] | None = None,
    ) -> str | None:
        """The client's answer to a pause, as ``Invocations._resume`` stores it: the task token taken
        once, tool results stored, and each approval decision (approved, reason) kept for the loop."""
        invocation = self.invocation(ids)
        pending = invocation.get("pendingToolUseIds", [])
        token = self.invocations.take_task_token(
            ids["actorId"], ids["invocationId"], records.AWAITING_CLIENT, pending
        )
        if token is None:
            return None
        for tool_use_id, (approved, reason) in (decisions or {}).items():
            self.tool_calls.put_approval(
                ids["actorId"],
                ids["invocationId"],
                {
                    "toolUseId": tool_use_id,
                    "approved": approved,
                    "reason": reason,
                    "approver": APPROVER,
                    "requestedBy": invocation.get("requestedBy"),
                    "decidedAt": self.clock(),
                },
                invocation["expiresAt"],
            )
        for result in results:
            self.tool_calls.put_tool_result(
                ids["actorId"], ids["invocationId"], result, invocation["expiresAt"]
            )
        return token

    # -- what a caller or an auditor sees ------------------------------------------------------------------

    def invocation(self, ids: LoopIds) -> dict[str, Any]:
        invocation = self.invocations.get_invocation(ids["actorId"], ids["invocationId"])
        assert invocation is not None
        return invocation

    def rows(self, ids: LoopIds) -> list[EventRow]:
        return self.events.read_events(ids["actorId"], ids["invocationId"], None)

    def stream(self, ids: LoopIds) -> list[dict[str, Any]]:
        """The stream events of the invocation, in the order a caller reads them."""
        return [event for _, event, _ in self.rows(ids) if event is not None]

    def messages(self, ids: LoopIds) -> list[tuple[str, dict[str, Any]]]:
        return self.conversations.list_messages_with_positions(ids["actorId"], ids["sessionId"])

    def result(self, ids: LoopIds, tool_use_id: str) -> dict[str, Any] | None:
        return self.tool_calls.get_tool_result(ids["actorId"], ids["invocationId"], tool_use_id)

    def results(self, ids: LoopIds) -> dict[str, dict[str, Any]]:
        return self.tool_calls.get_tool_results(ids["actorId"], ids["invocationId"])
