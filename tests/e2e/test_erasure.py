"""Right to erasure: DELETE /actors/{actorId} removes an actor's data and leaves a sealed receipt."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from e2e_support import Api, create_harness, inline_tool, new_session_id, say

pytestmark = pytest.mark.e2e

DELETED_KINDS = {
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
}


def _actor(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def erase(api: Api, actor_id: str) -> dict[str, Any]:
    response = api.request("DELETE", f"/actors/{actor_id}")
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("application/json")
    receipt: dict[str, Any] = response.json()["erasure"]
    return receipt


def test_erasing_an_actor_deletes_their_sessions_and_leaves_a_sealed_receipt(
    control: Any, data: Any, api: Api
) -> None:
    harness = create_harness(control)
    alice, bob = _actor("alice"), _actor("bob")
    alice_sessions = [new_session_id(), new_session_id()]
    for session in alice_sessions:
        say(data, harness["arn"], session, f"alice in {session}", actor_id=alice)
        say(data, harness["arn"], session, "alice again", actor_id=alice)
    bob_session = new_session_id()
    say(data, harness["arn"], bob_session, "bob stays", actor_id=bob)

    receipt = erase(api, alice)

    assert receipt["actorId"] == alice
    assert receipt["status"] == "COMPLETED"
    assert uuid.UUID(receipt["erasureId"])
    assert receipt["actorDigest"] and alice not in receipt["actorDigest"]
    deleted = receipt["deleted"]
    assert set(deleted) == DELETED_KINDS
    assert deleted["sessions"] == 2
    assert deleted["sessionOwnerMarkers"] == 2
    assert deleted["messages"] >= 8  # 2 sessions x 2 turns x (user message + reply)
    assert deleted["invocations"] == 4
    assert deleted["streamEvents"] > 0
    assert deleted["stoppedInvocations"] == 0
    assert receipt["verification"] == {"remainingItems": 0, "remainingObjects": 0}

    again = erase(api, alice)
    assert again["erasureId"] != receipt["erasureId"]
    assert again["status"] == "COMPLETED"
    assert again["deleted"] == dict.fromkeys(DELETED_KINDS, 0)
    assert again["verification"] == {"remainingItems": 0, "remainingObjects": 0}

    fetched = api.request("GET", f"/actors/{alice}/erasures/{receipt['erasureId']}")
    assert fetched.status == 200, fetched.body
    stored = fetched.json()["erasure"]
    assert stored["erasureId"] == receipt["erasureId"]
    assert stored["deleted"] == receipt["deleted"]
    assert stored["actorId"] == alice
    assert stored["sealed"] is True

    unknown = api.request("GET", f"/actors/{alice}/erasures/{uuid.uuid4()}")
    assert unknown.status == 404
    assert unknown.error_type == "ResourceNotFoundException"
    assert unknown.json()["message"]

    # Someone else cannot read alice's receipt by its id.
    foreign = api.request("GET", f"/actors/{bob}/erasures/{receipt['erasureId']}")
    assert foreign.status == 404
    assert foreign.error_type == "ResourceNotFoundException"

    # After erasure alice starts from nothing, in a new session and in a reused old session id.
    assert say(data, harness["arn"], new_session_id(), "/history", actor_id=alice).text == "/history"
    reused = say(data, harness["arn"], alice_sessions[0], "/history", actor_id=alice)
    assert reused.text == "/history"

    # Bob's data was not touched.
    assert say(data, harness["arn"], bob_session, "/history", actor_id=bob).text == "bob stays\n/history"


def test_erasure_stops_a_paused_invocation_and_frees_its_session_id(
    control: Any, data: Any, api: Api
) -> None:
    harness = create_harness(control, tools=[inline_tool("approve")])
    carol, dave = _actor("carol"), _actor("dave")
    session = new_session_id()
    paused = say(data, harness["arn"], session, "/tool approve {}", actor_id=carol)
    assert paused.stop_reason == "tool_use"

    receipt = erase(api, carol)

    assert receipt["deleted"]["stoppedInvocations"] == 1
    assert receipt["deleted"]["sessions"] == 1
    assert receipt["verification"] == {"remainingItems": 0, "remainingObjects": 0}
    # The session id no longer belongs to anyone: another actor may start it afresh.
    assert say(data, harness["arn"], session, "/history", actor_id=dave).text == "/history"


def test_erasure_rejects_an_invalid_actor_id_or_erasure_id(api: Api) -> None:
    bad_actor = api.request("DELETE", "/actors/-not-valid")
    assert bad_actor.status == 400
    assert bad_actor.error_type == "ValidationException"

    bad_id = api.request("GET", "/actors/alice/erasures/not-a-uuid")
    assert bad_id.status == 400
    assert bad_id.error_type == "ValidationException"


def test_erasure_needs_a_signed_request(api: Api) -> None:
    unsigned = api.request("DELETE", "/actors/alice", sign=False)
    assert unsigned.status == 403
    assert unsigned.error_type == "AccessDeniedException"


def test_a_percent_encoded_actor_id_in_the_path_is_decoded(control: Any, data: Any, api: Api) -> None:
    """Actor ids may contain '@' and ':'; a client that percent-encodes the path segment (as
    urllib.parse.quote(actor, safe="") or encodeURIComponent do) names the same actor, because
    API Gateway URL-decodes path parameters before they reach the function."""
    harness = create_harness(control)
    actor = f"erin.{uuid.uuid4().hex[:8]}@example.com"
    session = new_session_id()
    say(data, harness["arn"], session, "erin was here", actor_id=actor)

    response = api.request("DELETE", f"/actors/{quote(actor, safe='')}")

    assert response.status == 200, response.body
    receipt = response.json()["erasure"]
    assert receipt["actorId"] == actor
    assert receipt["deleted"]["sessions"] == 1
    fetched = api.request("GET", f"/actors/{quote(actor, safe='')}/erasures/{receipt['erasureId']}")
    assert fetched.status == 200, fetched.body
    assert fetched.json()["erasure"]["sealed"] is True
    assert say(data, harness["arn"], session, "/history", actor_id=actor).text == "/history"
