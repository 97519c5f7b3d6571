"""Right to erasure through ``handlers.erasure.handler``: what is removed, what is verified, what is
kept (a locked receipt naming the actor only by digest), and what is refused."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.adapters.memory.table import owner_partition
from harness.audit import erasure_receipt_key as receipt_key
from harness.ids import actor_digest

from .support import (
    Api,
    inline_tool,
    new_session_id,
    tool_use_id_of,
    unique_name,
)

COUNTED = (
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


def _partition(aws: Any, table: str, actor_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "actorId = :a",
        "ExpressionAttributeValues": {":a": {"S": actor_id}},
        "ConsistentRead": True,
    }
    while True:
        page = aws.dynamodb.query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _classify(items: list[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for item in items:
        sort_key = item["sk"]["S"]
        if sort_key.startswith("session#"):
            if "#msg#" in sort_key:
                counts["messages"] += 1
            else:
                counts["summaries" if "#summary#" in sort_key else "sessions"] += 1
        elif "#ev#" in sort_key:
            counts["streamEvents"] += 1
        elif "#result#" in sort_key:
            counts["toolResults"] += 1
        elif sort_key.startswith("invocation#"):
            counts["invocations"] += 1
        else:
            counts["otherItems"] += 1
    return counts


def _versions(aws: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    page = aws.s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return list(page.get("Versions", [])) + list(page.get("DeleteMarkers", []))


def _owner(aws: Any, table: str, session_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = aws.dynamodb.get_item(
        TableName=table,
        Key={"actorId": {"S": owner_partition(session_id)}, "sk": {"S": "OWNER"}},
        ConsistentRead=True,
    ).get("Item")
    return item


@pytest.fixture()
def populated(api: Api, aws: Any, names: dict[str, str]) -> dict[str, Any]:
    """An actor with a finished session, a session with a refused tool call, a session paused on a
    client tool, and artifact objects (one overwritten, one deleted); plus a neighbour actor whose
    id extends this actor's id."""
    actor = unique_name("erase")
    neighbour = actor + "x"
    harness = api.create_harness(tools=[inline_tool("lookup")])
    sessions = [new_session_id() for _ in range(3)]
    assert (
        api.invoke(harness["harnessId"], "remember me", session_id=sessions[0], actor_id=actor).status == 200
    )
    assert api.invoke(harness["harnessId"], "and this", session_id=sessions[0], actor_id=actor).status == 200
    assert (
        api.invoke(harness["harnessId"], "/tool nope {}", session_id=sessions[1], actor_id=actor).status
        == 200
    )
    paused = api.invoke(harness["harnessId"], "/tool lookup {}", session_id=sessions[2], actor_id=actor)
    assert tool_use_id_of(paused.items())
    neighbour_session = new_session_id()
    assert (
        api.invoke(harness["harnessId"], "keep me", session_id=neighbour_session, actor_id=neighbour).status
        == 200
    )

    bucket = names["artifact_bucket"]
    aws.s3.put_object(Bucket=bucket, Key=f"actors/{actor}/notes.txt", Body=b"v1")
    aws.s3.put_object(Bucket=bucket, Key=f"actors/{actor}/notes.txt", Body=b"v2")
    aws.s3.put_object(Bucket=bucket, Key=f"actors/{actor}/gone.txt", Body=b"old")
    aws.s3.delete_object(Bucket=bucket, Key=f"actors/{actor}/gone.txt")
    aws.s3.put_object(Bucket=bucket, Key=f"actors/{neighbour}/keep.txt", Body=b"theirs")
    return {
        "actor": actor,
        "neighbour": neighbour,
        "harness": harness,
        "sessions": sessions,
        "neighbour_session": neighbour_session,
        "paused_invocation": paused.header("x-amzn-invocation-id"),
    }


def test_erasure_removes_everything_and_reports_it(
    api: Api, aws: Any, names: dict[str, str], populated: dict[str, Any]
) -> None:
    actor, neighbour = populated["actor"], populated["neighbour"]
    table, bucket = names["memory_table"], names["artifact_bucket"]
    before = _classify(_partition(aws, table, actor))
    neighbour_before = _partition(aws, table, neighbour)
    assert before["toolResults"] >= 1 and before["streamEvents"] > 0

    response = api.erase(actor)
    assert response.status == 200, response.raw_body
    erasure = response.json["erasure"]
    assert erasure["actorId"] == actor
    assert erasure["actorDigest"] == actor_digest(actor)
    assert erasure["status"] == "COMPLETED"
    assert erasure["verification"] == {"remainingItems": 0, "remainingObjects": 0}
    deleted = erasure["deleted"]
    assert set(deleted) == set(COUNTED)
    for kind in ("sessions", "messages", "invocations", "streamEvents", "toolResults", "otherItems"):
        assert deleted[kind] == before[kind], kind
    assert deleted["sessions"] == 3
    assert deleted["sessionOwnerMarkers"] == 3
    assert deleted["stoppedInvocations"] == 1
    # notes.txt (two versions) and gone.txt (a version under a delete marker) are both counted.
    assert deleted["artifactObjects"] == 2

    # Verified independently: nothing in the partition, nothing under the prefix, no owner markers.
    assert _partition(aws, table, actor) == []
    assert _versions(aws, bucket, f"actors/{actor}/") == []
    for session in populated["sessions"]:
        assert _owner(aws, table, session) is None
    # The paused execution was asked to stop (stoppedInvocations above). The emulator does not
    # move a task-token wait to ABORTED, so check what matters: the pause cannot be resumed.
    resumed = api.invoke(
        populated["harness"]["harnessId"], "resume?", session_id=populated["sessions"][2], actor_id=actor
    )
    assert resumed.status == 200  # a brand-new turn: nothing of the paused invocation is left
    assert resumed.header("x-amzn-invocation-id") != populated["paused_invocation"]

    # The neighbour (whose id extends the erased one) is untouched.
    assert len(_partition(aws, table, neighbour)) == len(neighbour_before)
    assert [v["Key"] for v in _versions(aws, bucket, f"actors/{neighbour}/")] == [
        f"actors/{neighbour}/keep.txt"
    ]
    assert _owner(aws, table, populated["neighbour_session"]) is not None


def test_erasure_is_idempotent_and_the_receipt_can_be_read_back(
    api: Api, aws: Any, names: dict[str, str], populated: dict[str, Any]
) -> None:
    actor = populated["actor"]
    first = api.erase(actor).json["erasure"]
    second_response = api.erase(actor)
    assert second_response.status == 200
    second = second_response.json["erasure"]
    assert second["erasureId"] != first["erasureId"]
    assert all(count == 0 for count in second["deleted"].values()), second["deleted"]

    receipt = api.call("GET", f"/actors/{actor}/erasures/{first['erasureId']}")
    assert receipt.status == 200, receipt.raw_body
    read_back = receipt.json["erasure"]
    assert read_back["sealed"] is True
    assert read_back["actorId"] == actor
    assert {k: read_back[k] for k in ("erasureId", "deleted", "status", "verification")} == {
        k: first[k] for k in ("erasureId", "deleted", "status", "verification")
    }

    # The stored receipt names the actor by digest only.
    stored = aws.s3.get_object(Bucket=names["audit_bucket"], Key=receipt_key(actor, first["erasureId"]))
    assert actor not in stored["Body"].read().decode()

    # Another actor cannot read this receipt; a malformed erasure id is refused.
    other = api.call("GET", f"/actors/{populated['neighbour']}/erasures/{first['erasureId']}")
    assert other.status == 404
    malformed = api.call("GET", f"/actors/{actor}/erasures/not-a-uuid")
    assert malformed.status == 400
    assert malformed.json["reason"] == "FieldValidationFailed"


def test_an_erased_session_id_can_be_used_again(api: Api, populated: dict[str, Any]) -> None:
    api.erase(populated["actor"])
    harness = populated["harness"]
    response = api.invoke(
        harness["harnessId"], "fresh start", session_id=populated["sessions"][0], actor_id=unique_name()
    )
    assert response.status == 200, response.raw_body


def test_an_actor_with_nothing_stored_gets_an_empty_receipt(api: Api) -> None:
    response = api.erase(unique_name("nobody"))
    assert response.status == 200
    assert set(response.json["erasure"]["deleted"].values()) == {0}


def test_the_receipt_is_object_locked(api: Api, aws: Any, names: dict[str, str]) -> None:
    actor = unique_name("locked")
    erasure = api.erase(actor).json["erasure"]
    bucket, key = names["audit_bucket"], receipt_key(actor, erasure["erasureId"])
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] is not None
    with pytest.raises(ClientError) as excinfo:
        aws.s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    assert aws.s3.head_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])["ContentLength"] > 0


@pytest.mark.parametrize(
    "path_segment",
    ["a%23b", "a%2Fb", "-leading-dash", "x" * 129, "spa%20ce", "%2E%2E"],
    ids=["hash", "slash", "leading-dash", "too-long", "space", "dot-dot"],
)
def test_an_invalid_actor_id_is_400(api: Api, path_segment: str) -> None:
    response = api.call("DELETE", f"/actors/{path_segment}")
    assert response.status == 400, response.raw_body
    assert response.header("x-amzn-ErrorType") == "ValidationException"
    assert "actorId" in response.json["message"]


def test_an_unknown_erasure_route_is_404(api: Api) -> None:
    response = api.call("GET", "/actors/someone")
    assert response.status == 404


def test_a_percent_encoded_actor_id_is_erased_under_its_decoded_id(
    api: Api, aws: Any, names: dict[str, str]
) -> None:
    """API Gateway (REST) passes ``path`` still percent-encoded, as the client sent it. Clients that
    encode ``@`` and ``:`` (JavaScript's encodeURIComponent, urllib.parse.quote(safe="")) must still
    be able to erase an e-mail-shaped actor id, which ``check_actor_id`` allows."""
    actor = f"{unique_name('mail')}@example.com"
    harness = api.create_harness()
    assert api.invoke(harness["harnessId"], "hi", session_id=new_session_id(), actor_id=actor).status == 200
    assert _partition(aws, names["memory_table"], actor)

    response = api.call("DELETE", f"/actors/{actor.replace('@', '%40')}")
    assert response.status == 200, response.raw_body
    assert response.json["erasure"]["actorId"] == actor
    assert _partition(aws, names["memory_table"], actor) == []


def test_a_tampered_receipt_reads_back_as_not_sealed(api: Api, aws: Any, names: dict[str, str]) -> None:
    """Object Lock keeps every version, but anyone with PutObject can add a newer version on top;
    the MAC is what exposes it. Reading such a receipt must say ``sealed: false``, not fail."""
    actor = unique_name("tamper")
    erasure = api.erase(actor).json["erasure"]
    key = receipt_key(actor, erasure["erasureId"])
    stored = json.loads(aws.s3.get_object(Bucket=names["audit_bucket"], Key=key)["Body"].read())
    stored["record"]["deleted"]["messages"] = 0
    stored["record"]["status"] = "COMPLETED "
    aws.s3.put_object(Bucket=names["audit_bucket"], Key=key, Body=json.dumps(stored).encode())

    response = api.call("GET", f"/actors/{actor}/erasures/{erasure['erasureId']}")
    assert response.status == 200, response.raw_body
    assert response.json["erasure"]["sealed"] is False
