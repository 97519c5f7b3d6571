"""The AWS adapters against the emulated deployment's own tables and buckets."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.adapters.artifact_store import ArtifactStore
from harness.adapters.audit_log import AuditLog
from harness.adapters.harness_store import HarnessStore
from harness.adapters.memory import memory_stores
from harness.definitions import DeploymentDefaults, HarnessDefinitions
from harness.errors import ConflictError, ValidationError
from harness.ids import Account, actor_digest
from harness.stores import MemoryStores, SessionRefusal

from .support import ACCOUNT_ID, LOCAL_MODEL, REGION, ROLE_ARN, new_session_id, unique_name

# -- The memory table's stores--------------------------------------------------------------------------------


@pytest.fixture()
def memory(names: dict[str, str]) -> MemoryStores:
    return memory_stores(names["memory_table"])


def _begin(memory: MemoryStores, actor: str, session: str, harness: str) -> tuple[str, int | SessionRefusal]:
    invocation_id = str(uuid.uuid4())
    now = int(time.time())
    invocation = {
        "invocationId": invocation_id,
        "sessionId": session,
        "harnessId": harness,
        "harnessVersion": "1",
        "status": "RUNNING",
        "createdAt": now,
        "expiresAt": now + 3600,
        "input": [],
        "turn": 0,
    }
    turn = memory.sessions.begin_turn(
        actor_id=actor,
        actor_digest=actor_digest(actor),
        session_id=session,
        harness_id=harness,
        invocation=invocation,
        expires_at=now + 3600,
    )
    return invocation_id, turn


def test_begin_turn_numbers_turns_and_refuses_a_second_active_turn(memory: MemoryStores) -> None:
    actor, session = unique_name(), new_session_id()
    first, turn = _begin(memory, actor, session, "h-1")
    assert turn == 1
    assert _begin(memory, actor, session, "h-1")[1] is SessionRefusal.TURN_IN_PROGRESS
    assert memory.sessions.get_session(actor, session) == {
        "harnessId": "h-1",
        "turnCount": 1,
        "activeInvocationId": first,
    }

    memory.sessions.end_turn(actor, session, first)
    second, turn = _begin(memory, actor, session, "h-1")
    assert turn == 2
    assert memory.sessions.get_session(actor, session)["activeInvocationId"] == second  # type: ignore[index]


def test_begin_turn_refuses_another_actor_on_the_same_session(memory: MemoryStores) -> None:
    session = new_session_id()
    owner = unique_name()
    _begin(memory, owner, session, "h-1")
    assert memory.sessions.session_owner_digest(session) == actor_digest(owner)
    assert _begin(memory, unique_name(), session, "h-1")[1] is SessionRefusal.OWNED_BY_ANOTHER_ACTOR
    # Even after the owner's turn ends.
    invocation = memory.sessions.get_session(owner, session)["activeInvocationId"]  # type: ignore[index]
    memory.sessions.end_turn(owner, session, invocation)
    assert _begin(memory, unique_name(), session, "h-1")[1] is SessionRefusal.OWNED_BY_ANOTHER_ACTOR


def test_begin_turn_refuses_another_harness_on_the_same_session(memory: MemoryStores) -> None:
    actor, session = unique_name(), new_session_id()
    invocation, _ = _begin(memory, actor, session, "h-1")
    memory.sessions.end_turn(actor, session, invocation)
    assert _begin(memory, actor, session, "h-2")[1] is SessionRefusal.BOUND_TO_ANOTHER_HARNESS
    # A refused turn leaves nothing behind: the session is unchanged and free.
    assert memory.sessions.get_session(actor, session) == {
        "harnessId": "h-1",
        "turnCount": 1,
        "activeInvocationId": None,
    }


def test_end_turn_of_a_stale_invocation_does_not_release_the_current_one(memory: MemoryStores) -> None:
    actor, session = unique_name(), new_session_id()
    first, _ = _begin(memory, actor, session, "h-1")
    memory.sessions.end_turn(actor, session, first)
    second, _ = _begin(memory, actor, session, "h-1")
    memory.sessions.end_turn(actor, session, first)  # late, duplicate
    assert memory.sessions.get_session(actor, session)["activeInvocationId"] == second  # type: ignore[index]


def test_take_task_token_hands_the_token_out_exactly_once(memory: MemoryStores) -> None:
    actor, session = unique_name(), new_session_id()
    invocation, _ = _begin(memory, actor, session, "h-1")
    pending = ["t1", "t2"]
    assert (
        memory.invocations.take_task_token(actor, invocation, "AWAITING_CLIENT", pending) is None
    )  # not paused yet
    assert memory.invocations.update_invocation(
        actor, invocation, status="AWAITING_CLIENT", task_token="token-1", pending_tool_use_ids=pending
    )
    assert memory.invocations.get_invocation(actor, invocation)["pendingToolUseIds"] == ["t1", "t2"]  # type: ignore[index]
    assert "taskToken" not in memory.invocations.get_invocation(actor, invocation)  # type: ignore[operator]

    # Answers checked against another pause's pending calls do not get this pause's token.
    assert memory.invocations.take_task_token(actor, invocation, "AWAITING_CLIENT", ["t0"]) is None
    assert memory.invocations.take_task_token(actor, invocation, "AWAITING_CLIENT", pending) == "token-1"
    assert memory.invocations.take_task_token(actor, invocation, "AWAITING_CLIENT", pending) is None
    stored = memory.invocations.get_invocation(actor, invocation)
    assert stored is not None
    assert stored["status"] == "RUNNING"
    assert "pendingToolUseIds" not in stored


def test_take_task_token_is_atomic_under_concurrent_resumes(memory: MemoryStores) -> None:
    from concurrent.futures import ThreadPoolExecutor

    actor, session = unique_name(), new_session_id()
    invocation, _ = _begin(memory, actor, session, "h-1")
    memory.invocations.update_invocation(
        actor, invocation, status="AWAITING_CLIENT", task_token="only-once", pending_tool_use_ids=["t1"]
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda _: memory.invocations.take_task_token(actor, invocation, "AWAITING_CLIENT", ["t1"]),
                range(8),
            )
        )
    assert results.count("only-once") == 1
    assert results.count(None) == 7


def test_update_invocation_checks_the_expected_status(memory: MemoryStores) -> None:
    actor, session = unique_name(), new_session_id()
    invocation, _ = _begin(memory, actor, session, "h-1")
    assert (
        memory.invocations.update_invocation(
            actor, invocation, status="COMPLETED", expected_status="AWAITING_CLIENT"
        )
        is False
    )
    assert (
        memory.invocations.update_invocation(actor, invocation, status="COMPLETED", expected_status="RUNNING")
        is True
    )
    assert memory.invocations.update_invocation(actor, "no-such-invocation", status="COMPLETED") is False


def test_events_are_read_in_position_order_after_a_position(memory: MemoryStores) -> None:
    actor, invocation = unique_name(), str(uuid.uuid4())
    expires = int(time.time()) + 60
    for position in ("0001#1#0001", "9999#99", "0000#1#0000", "0001#3"):
        memory.events.put_event(actor, invocation, position, event={"at": position}, expires_at=expires)
    rows = memory.events.read_events(actor, invocation, None)
    assert [p for p, _, _ in rows] == ["0000#1#0000", "0001#1#0001", "0001#3", "9999#99"]
    assert [p for p, _, _ in memory.events.read_events(actor, invocation, "0001#1#0001")] == [
        "0001#3",
        "9999#99",
    ]
    memory.events.put_event(actor, invocation, "0001#3", control="pause", expires_at=expires)
    assert memory.events.read_events(actor, invocation, "0001#1#0001")[0] == ("0001#3", None, "pause")


def test_messages_are_listed_in_position_order(memory: MemoryStores) -> None:
    actor, session = unique_name(), new_session_id()
    expires = int(time.time()) + 60
    memory.conversations.put_message(
        actor, session, "000002#in#000", {"role": "user", "content": [{"text": "b"}]}, expires
    )
    memory.conversations.put_message(
        actor, session, "000001#in#000", {"role": "user", "content": [{"text": "a"}]}, expires
    )
    memory.conversations.put_message(
        actor, session, "000001#it#0000#a", {"role": "assistant", "content": [{"text": "r"}]}, expires
    )
    texts = [m["content"][0]["text"] for m in memory.conversations.list_messages(actor, session)]
    assert texts == ["a", "r", "b"]
    # Writing the same position again overwrites (a retried step never duplicates).
    memory.conversations.put_message(
        actor, session, "000001#in#000", {"role": "user", "content": [{"text": "A"}]}, expires
    )
    assert [m["content"][0]["text"] for m in memory.conversations.list_messages(actor, session)] == [
        "A",
        "r",
        "b",
    ]


# -- HarnessStore and HarnessDefinitions ----------------------------------------------------------------


@pytest.fixture()
def fresh_harness_table(aws: Any, names: dict[str, str]) -> Iterator[str]:
    """An empty table shaped like the deployment's harness table (paging needs a known population)."""
    described = aws.dynamodb.describe_table(TableName=names["harness_table"])["Table"]
    name = f"{names['harness_table']}-{uuid.uuid4().hex[:8]}"
    aws.dynamodb.create_table(
        TableName=name,
        KeySchema=described["KeySchema"],
        AttributeDefinitions=described["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    aws.dynamodb.delete_table(TableName=name)


def _definitions(table: str) -> HarnessDefinitions:
    return HarnessDefinitions(
        HarnessStore(table),
        Account("aws", REGION, ACCOUNT_ID),
        DeploymentDefaults(LOCAL_MODEL, 30, f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:loop"),
    )


def _body(name: str | None = None, **members: Any) -> dict[str, Any]:
    return {"harnessName": name or unique_name(), "executionRoleArn": ROLE_ARN, **members}


def test_list_harnesses_walks_every_page(fresh_harness_table: str) -> None:
    definitions = _definitions(fresh_harness_table)
    created = {definitions.create(_body())["harnessId"] for _ in range(5)}
    # Versions, name claims and client tokens share the table: the pages must skip them.
    some = sorted(created)[0]
    definitions.update(some, {"maxIterations": 3})

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        page = definitions.list("2", token)
        pages += 1
        assert len(page["harnesses"]) <= 2
        seen.extend(h["harnessId"] for h in page["harnesses"])
        token = page.get("nextToken")
        if token is None:
            break
        assert pages < 10
    assert sorted(seen) == sorted(created)
    assert pages == 3
    latest = {h["harnessId"]: h["harnessVersion"] for h in definitions.list("10", None)["harnesses"]}
    assert latest[some] == "2"


def test_list_versions_pages_too(fresh_harness_table: str) -> None:
    definitions = _definitions(fresh_harness_table)
    harness_id = definitions.create(_body())["harnessId"]
    for n in range(2, 6):
        definitions.update(harness_id, {"maxIterations": n})
    first = definitions.list_versions(harness_id, "3", None)
    assert [v["harnessVersion"] for v in first["harnessVersions"]] == ["1", "2", "3"]
    second = definitions.list_versions(harness_id, "3", first["nextToken"])
    assert [v["harnessVersion"] for v in second["harnessVersions"]] == ["4", "5"]
    assert "nextToken" not in second
    assert definitions.get(harness_id, "2")["maxIterations"] == 2


def test_client_token_makes_create_idempotent(fresh_harness_table: str) -> None:
    definitions = _definitions(fresh_harness_table)
    body = _body(clientToken="token-" + uuid.uuid4().hex)
    first = definitions.create(body)
    again = definitions.create(dict(body))
    assert again["harnessId"] == first["harnessId"]
    assert len(definitions.list("100", None)["harnesses"]) == 1

    with pytest.raises(ValidationError) as excinfo:
        definitions.create(body | {"maxIterations": 4})
    assert excinfo.value.reason == "IdempotentParameterMismatchException"


def test_a_taken_name_conflicts_until_the_harness_is_deleted(fresh_harness_table: str) -> None:
    definitions = _definitions(fresh_harness_table)
    name = unique_name()
    first = definitions.create(_body(name))
    with pytest.raises(ConflictError):
        definitions.create(_body(name))
    with pytest.raises(ConflictError):
        definitions.create(_body(name, clientToken="another-" + uuid.uuid4().hex))
    deleted = definitions.delete(first["harnessId"], None)
    assert deleted["status"] == "DELETING"
    assert HarnessStore(fresh_harness_table).get(first["harnessId"]) is None
    assert HarnessStore(fresh_harness_table).get(first["harnessId"], 1) is None
    assert definitions.create(_body(name))["harnessId"] != first["harnessId"]


def test_an_update_retried_with_its_client_token_makes_one_version(fresh_harness_table: str) -> None:
    """UpdateHarness takes a clientToken (idempotency) like CreateHarness: a retry of the same update
    must not add a second version."""
    definitions = _definitions(fresh_harness_table)
    harness_id = definitions.create(_body())["harnessId"]
    update = {"maxIterations": 4, "clientToken": str(uuid.uuid4())}
    first = definitions.update(harness_id, dict(update))
    retried = definitions.update(harness_id, dict(update))
    assert retried["harnessVersion"] == first["harnessVersion"] == "2"
    assert [
        v["harnessVersion"] for v in definitions.list_versions(harness_id, None, None)["harnessVersions"]
    ] == [
        "1",
        "2",
    ]


def test_update_with_a_stale_version_is_refused(fresh_harness_table: str) -> None:
    store = HarnessStore(fresh_harness_table)
    definitions = _definitions(fresh_harness_table)
    record = definitions.create(_body())
    newer = definitions.update(record["harnessId"], {"maxIterations": 2})
    stale = dict(record, harnessVersion="2", maxIterations=9)
    assert store.update(stale, expected_version=1) is False
    assert store.get(record["harnessId"]) == newer


def test_a_forged_next_token_is_a_validation_error(fresh_harness_table: str) -> None:
    definitions = _definitions(fresh_harness_table)
    for token in ("!!!", "bm90IGpzb24", "WzEsMl0"):  # not base64, not JSON, a JSON list
        with pytest.raises(ValidationError):
            definitions.list("2", token)


@pytest.mark.parametrize(
    "key",
    [
        {"colour": {"S": "blue"}},
        {"harnessId": {"S": "x"}},
        {"harnessId": {"N": "1"}, "sk": {"S": "LATEST"}},
    ],
    ids=["foreign-attribute", "partial-key", "wrong-type"],
)
def test_a_next_token_that_is_not_a_key_of_the_table_is_a_validation_error(
    fresh_harness_table: str, key: dict[str, Any]
) -> None:
    """Tokens are base64 JSON of a DynamoDB start key; one this API did not issue (wrong attributes
    or types) must be refused as the caller's mistake, not sent to DynamoDB (which answers
    ValidationException: the provided starting key is invalid, i.e. a 500 for the caller)."""
    import base64

    import boto3
    from botocore.config import Config

    store = HarnessStore(fresh_harness_table)
    store._ddb = boto3.client("dynamodb", region_name=REGION, config=Config(retries={"max_attempts": 1}))
    definitions = HarnessDefinitions(
        store,
        Account("aws", REGION, ACCOUNT_ID),
        DeploymentDefaults(LOCAL_MODEL, 30, f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:loop"),
    )
    harness_id = definitions.create(_body())["harnessId"]
    token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    with pytest.raises(ValidationError):
        definitions.list(None, token)
    with pytest.raises(ValidationError):
        definitions.list_versions(harness_id, None, token)


# -- ArtifactStore and AuditLog --------------------------------------------------------------------------


def test_artifact_store_counts_and_deletes_every_version(aws: Any, names: dict[str, str]) -> None:
    store = ArtifactStore(names["artifact_bucket"])
    actor = unique_name()
    key = store.put(actor, "a.txt", b"1", "text/plain")
    assert key == f"actors/{actor}/a.txt"
    store.put(actor, "a.txt", b"2", "text/plain")
    store.put(actor + "-other", "b.txt", b"3", "text/plain")
    assert store.count_actor_objects(actor) == 2  # two versions of one object
    assert store.delete_actor_objects(actor) == 1
    assert store.count_actor_objects(actor) == 0
    assert store.count_actor_objects(actor + "-other") == 1


def test_audit_records_are_sealed_and_verifiable(names: dict[str, str]) -> None:
    audit = AuditLog(names["audit_bucket"], names["audit_mac_key_id"])
    key = f"tests/{uuid.uuid4()}.json"
    audit.write(key, {"kind": "test", "n": 1})
    sealed = audit.read(key)
    assert sealed is not None
    assert sealed["record"] == {"kind": "test", "n": 1}
    assert sealed["macAlgorithm"] == "HMAC_SHA_256"
    assert audit.verify(sealed) is True
    assert audit.read(f"tests/{uuid.uuid4()}.json") is None


def test_a_tampered_audit_record_does_not_verify(names: dict[str, str]) -> None:
    """``AuditLog.verify`` returns a bool, and ``Erasure.receipt`` reports it as ``sealed``. KMS
    VerifyMac answers a mismatching MAC with KMSInvalidMacException (documented), not MacValid=false,
    so a tampered record must come back False rather than raise."""
    audit = AuditLog(names["audit_bucket"], names["audit_mac_key_id"])
    key = f"tests/{uuid.uuid4()}.json"
    audit.write(key, {"kind": "test", "deleted": 3})
    sealed = audit.read(key)
    assert sealed is not None
    tampered = json.loads(json.dumps(sealed))
    tampered["record"]["deleted"] = 0
    assert audit.verify(tampered) is False


def test_audit_objects_cannot_be_overwritten_away(aws: Any, names: dict[str, str]) -> None:
    audit = AuditLog(names["audit_bucket"], names["audit_mac_key_id"])
    key = f"tests/{uuid.uuid4()}.json"
    audit.write(key, {"kind": "test"})
    version = aws.s3.head_object(Bucket=names["audit_bucket"], Key=key)["VersionId"]
    with pytest.raises(ClientError):
        aws.s3.delete_object(Bucket=names["audit_bucket"], Key=key, VersionId=version)
