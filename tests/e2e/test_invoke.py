"""InvokeHarness with the deterministic local model: the event stream, memory across turns, SSE."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from e2e_support import SESSION_HEADER, Api, create_harness, new_session_id, say, user_text

pytestmark = pytest.mark.e2e


def test_a_turn_streams_the_reply_with_usage_and_latency(control: Any, data: Any) -> None:
    harness = create_harness(control)

    turn = say(data, harness["arn"], new_session_id(), "hello")

    assert turn.names[0] == "messageStart"
    assert turn.events[0]["messageStart"]["role"] == "assistant"
    stop_at = turn.names.index("messageStop")
    deltas = turn.names[1 : stop_at - 1]
    assert deltas and set(deltas) == {"contentBlockDelta"}, turn.names
    assert turn.names[stop_at - 1] == "contentBlockStop"
    assert turn.names[stop_at:] == ["messageStop", "metadata"]
    assert turn.stop_reason == "end_turn"
    assert turn.text == 'You said: "hello"'

    metadata = turn.events[-1]["metadata"]
    usage = metadata["usage"]
    assert usage["inputTokens"] > 0
    assert usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert isinstance(metadata["metrics"]["latencyMs"], int)
    assert metadata["metrics"]["latencyMs"] >= 0
    assert turn.invocation_id


def test_a_session_remembers_earlier_turns(control: Any, data: Any) -> None:
    harness = create_harness(control)
    session = new_session_id()

    assert say(data, harness["arn"], session, "first").text == 'You said: "first"'
    assert say(data, harness["arn"], session, "second").text == 'You said: "second"'
    history = say(data, harness["arn"], session, "/history")

    assert history.stop_reason == "end_turn"
    assert history.text == "first\nsecond\n/history"


def test_the_user_id_header_identifies_the_actor_when_the_body_has_none(control: Any, data: Any) -> None:
    harness = create_harness(control)
    session = new_session_id()
    say(data, harness["arn"], session, "via header", actor_id=None, runtimeUserId="carol")  # type: ignore[arg-type]

    # The same session under the same actor, named in the body this time, sees the first turn.
    history = say(data, harness["arn"], session, "/history", actor_id="carol")
    assert history.text == "via header\n/history"


def _sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in body.decode().split("\n\n"):
        if not frame.strip():
            continue
        lines = frame.split("\n")
        assert lines[0].startswith("event: "), frame
        assert lines[1].startswith("data: "), frame
        assert len(lines) == 2, frame
        events.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return events


def test_invoke_streams_server_sent_events_when_asked(control: Any, api: Api) -> None:
    harness = create_harness(control)

    response = api.request(
        "POST",
        f"/harnesses/invoke?harnessArn={quote(harness['arn'], safe='')}",
        {"messages": user_text("hello"), "actorId": "alice"},
        {"Accept": "text/event-stream", SESSION_HEADER: new_session_id()},
    )

    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.body.decode()
    assert text.startswith("event: messageStart\ndata: {")
    events = _sse_events(response.body)
    names = [name for name, _ in events]
    assert names[0] == "messageStart"
    assert names[-2:] == ["messageStop", "metadata"]
    assert "contentBlockDelta" in names
    assert names.index("contentBlockStop") < names.index("messageStop")
    assert dict(events)["messageStop"] == {"stopReason": "end_turn"}
    assert _sse_text(response.body) == 'You said: "hello"'


def _sse_text(body: bytes) -> str:
    return "".join(
        payload["delta"].get("text", "") for name, payload in _sse_events(body) if name == "contentBlockDelta"
    )


def test_a_session_runs_one_turn_at_a_time_and_a_retried_turn_reattaches(control: Any, api: Api) -> None:
    """While a turn runs, a different message is a ResourceConflict; the same message again (a
    client retry) re-attaches to the running turn's stream instead of running it twice."""
    harness = create_harness(control)
    path = f"/harnesses/invoke?harnessArn={quote(harness['arn'], safe='')}"
    for _attempt in range(3):
        session = new_session_id()
        headers = {"Accept": "text/event-stream", SESSION_HEADER: session}
        connection, first = api.open(
            "POST", path, {"messages": user_text("first"), "actorId": "alice"}, headers
        )
        try:
            assert first.status == 200
            conflict = api.request(
                "POST", path, {"messages": user_text("second"), "actorId": "alice"}, {SESSION_HEADER: session}
            )
            retry = api.request("POST", path, {"messages": user_text("first"), "actorId": "alice"}, headers)
            first_body = first.read()
        finally:
            connection.close()
        if conflict.status == 200:
            continue  # the first turn was already over: no overlap to observe, try again
        assert conflict.status == 400, conflict.body
        assert conflict.error_type == "ValidationException"
        assert conflict.json()["reason"] == "ResourceConflict"
        assert retry.status == 200, retry.body
        if retry.headers.get("x-amzn-invocation-id") != first.getheader("x-amzn-invocation-id"):
            continue  # the retry arrived after the turn ended and started a new one
        assert retry.body == first_body
        assert [name for name, _ in _sse_events(first_body)][-2:] == ["messageStop", "metadata"]
        history = api.request("POST", path, {"messages": user_text("/history"), "actorId": "alice"}, headers)
        # One "first" turn, not two, and nothing of the rejected "second".
        assert _sse_text(history.body) == "first\n/history"
        return
    pytest.fail("three turns in a row were over before a second request reached the runtime")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        (
            {"model": {"bedrockModelConfig": {"modelId": "anthropic.claude", "apiFormat": "responses"}}},
            "model.bedrockModelConfig",
        ),
        (
            {
                "tools": [
                    {
                        "type": "agentcore_browser",
                        "name": "mcp",
                        "config": {"agentCoreBrowser": {}},
                    }
                ]
            },
            "tools[0]",
        ),
    ],
    ids=["model", "tool-type"],
)
def test_an_invocation_override_this_deployment_cannot_run_is_rejected_up_front(
    control: Any, data: Any, override: dict[str, Any], field: str
) -> None:
    """CreateHarness rejects these configurations by name with a ValidationException; the same
    configuration given for one invocation must be rejected the same way, before anything runs,
    not accepted and then failed inside the stream."""
    harness = create_harness(control)
    session = new_session_id()

    with pytest.raises(ClientError) as rejected:
        say(data, harness["arn"], session, "/tool mcp {}", **override)
    error = rejected.value
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == "ValidationException", error.response["Error"]
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert field in error.response["Error"]["Message"]
    # Nothing of the rejected turn was stored.
    assert say(data, harness["arn"], session, "/history").text == "/history"
