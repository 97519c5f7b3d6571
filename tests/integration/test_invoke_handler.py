"""InvokeHarness through ``handlers.api.handler``: the buffered Lambda path that runs on AWS behind
API Gateway (the whole stream is collected into one base64 response body)."""

from __future__ import annotations

import json
from typing import Any

from harness.adapters.memory.table import invocation_key
from harness.wire import eventstream, sse

from .support import (
    USER_HEADER,
    Api,
    decode_sse,
    inline_tool,
    new_session_id,
    unique_name,
)


def _text(items: list[dict[str, Any]]) -> str:
    return "".join(
        item["contentBlockDelta"]["delta"].get("text", "") for item in items if "contentBlockDelta" in item
    )


def test_a_plain_turn_is_one_streamed_eventstream_body(api: Api) -> None:
    harness = api.create_harness()
    response = api.invoke(
        harness["harnessId"], "hello there", session_id=new_session_id(), actor_id=unique_name()
    )

    assert response.status == 200
    # Streamed (API Gateway response streaming): raw bytes, not a base64 proxy body.
    assert response.is_base64 is False
    assert response.header("content-type") == eventstream.CONTENT_TYPE
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id and len(invocation_id) == 36

    frames = response.events()
    assert all(kind == "event" for kind, _, _ in frames)
    names = [name for _, name, _ in frames]
    assert names[0] == "messageStart"
    assert names[-2:] == ["messageStop", "metadata"]
    assert set(names[1:-2]) == {"contentBlockDelta", "contentBlockStop"}
    items = response.items()
    assert items[0] == {"messageStart": {"role": "assistant"}}
    assert items[-2] == {"messageStop": {"stopReason": "end_turn"}}
    usage = items[-1]["metadata"]["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0
    assert "latencyMs" in items[-1]["metadata"]["metrics"]
    # The deterministic model streams the reply word by word.
    assert sum(1 for item in items if "contentBlockDelta" in item) > 1
    assert _text(items) == 'You said: "hello there"'


def test_accept_text_event_stream_answers_server_sent_events(api: Api) -> None:
    harness = api.create_harness()
    response = api.invoke(
        harness["harnessId"],
        "in sse please",
        session_id=new_session_id(),
        actor_id=unique_name(),
        accept="text/event-stream",
    )

    assert response.status == 200
    assert response.header("content-type") == sse.CONTENT_TYPE
    text = response.text
    assert text.startswith("event: messageStart\ndata: ")
    items = decode_sse(text)
    assert items[0] == {"messageStart": {"role": "assistant"}}
    assert items[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert "metadata" in items[-1]
    assert _text(items) == 'You said: "in sse please"'


def test_a_session_remembers_earlier_turns(api: Api) -> None:
    harness = api.create_harness()
    session, actor = new_session_id(), unique_name()
    for text in ("first words", "second words"):
        assert api.invoke(harness["harnessId"], text, session_id=session, actor_id=actor).status == 200
    response = api.invoke(harness["harnessId"], "/history", session_id=session, actor_id=actor)
    assert _text(response.items()) == "first words\nsecond words\n/history"


def test_the_user_header_names_the_actor_when_the_body_does_not(
    api: Api, aws: Any, names: dict[str, str]
) -> None:
    harness = api.create_harness()
    actor = unique_name("hdr")
    response = api.invoke(
        harness["harnessId"], "who am i", session_id=new_session_id(), headers={USER_HEADER: actor}
    )
    assert response.status == 200
    invocation_id = response.header("x-amzn-invocation-id")
    item = aws.dynamodb.get_item(
        TableName=names["memory_table"],
        Key={"actorId": {"S": actor}, "sk": {"S": invocation_key(invocation_id)}},
        ConsistentRead=True,
    )
    assert item["Item"]["status"]["S"] == "COMPLETED"


def test_inline_tool_pauses_the_stream_and_a_tool_result_resumes_it(api: Api) -> None:
    harness = api.create_harness(tools=[inline_tool("get_weather")])
    session, actor = new_session_id(), unique_name()

    paused = api.invoke(
        harness["harnessId"], '/tool get_weather {"city": "Paris"}', session_id=session, actor_id=actor
    )
    assert paused.status == 200
    items = paused.items()
    start = next(item["contentBlockStart"] for item in items if "contentBlockStart" in item)
    tool_use = start["start"]["toolUse"]
    assert tool_use["name"] == "get_weather"
    deltas = [i["contentBlockDelta"]["delta"]["toolUse"]["input"] for i in items if "contentBlockDelta" in i]
    assert json.loads("".join(deltas)) == {"city": "Paris"}
    assert {"messageStop": {"stopReason": "tool_use"}} in items
    assert "metadata" in items[-1]

    result = {"toolResult": {"toolUseId": tool_use["toolUseId"], "content": [{"text": "sunny"}]}}
    resumed = api.invoke(
        harness["harnessId"], [{"role": "user", "content": [result]}], session_id=session, actor_id=actor
    )
    assert resumed.status == 200, resumed.raw_body
    # The same invocation goes on: a resume does not start a new one.
    assert resumed.header("x-amzn-invocation-id") == paused.header("x-amzn-invocation-id")
    resumed_items = resumed.items()
    assert _text(resumed_items) == "Tool get_weather returned: sunny"
    assert resumed_items[-2] == {"messageStop": {"stopReason": "end_turn"}}

    # Answering the same tool use again is refused: it is no longer pending.
    again = api.invoke(
        harness["harnessId"], [{"role": "user", "content": [result]}], session_id=session, actor_id=actor
    )
    assert again.status == 400
    assert again.json["reason"] == "FieldValidationFailed"
    assert tool_use["toolUseId"] in json.dumps(again.json["fieldList"])


def test_a_resume_may_repeat_the_assistant_tool_use_message(api: Api) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(
        harness["harnessId"], '/tool lookup {"city": "Oslo"}', session_id=session, actor_id=actor
    )
    tool_use_id = next(i for i in paused.items() if "contentBlockStart" in i)["contentBlockStart"]["start"][
        "toolUse"
    ]["toolUseId"]
    messages = [
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": tool_use_id, "name": "lookup", "input": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": tool_use_id, "content": [{"json": {"t": 3}}], "status": "error"}}
            ],
        },
    ]
    resumed = api.invoke(harness["harnessId"], messages, session_id=session, actor_id=actor)
    assert resumed.status == 200, resumed.raw_body
    assert _text(resumed.items()) == 'Tool lookup returned an error: {"t": 3}'


def test_a_paused_session_refuses_new_text_until_the_tools_are_answered(api: Api) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    api.invoke(harness["harnessId"], "/tool lookup {}", session_id=session, actor_id=actor)

    response = api.invoke(harness["harnessId"], "never mind", session_id=session, actor_id=actor)
    assert response.status == 400
    body = response.json
    assert body["reason"] == "FieldValidationFailed"
    assert "waiting for results" in body["message"]
    assert any("toolResult" in problem["message"] for problem in body["fieldList"])


def test_a_tool_outside_allowed_tools_is_refused_by_the_loop(api: Api) -> None:
    """The model asks for a tool the invocation may not use: the call is refused with an error result
    (never sent to the client) and the model sees that error."""
    harness = api.create_harness(tools=[inline_tool("lookup"), inline_tool("delete_all")])
    response = api.invoke(
        harness["harnessId"],
        "/tool delete_all {}",
        session_id=new_session_id(),
        actor_id=unique_name(),
        extra={"allowedTools": ["lookup"]},
    )
    assert response.status == 200
    items = response.items()
    results = [
        i["contentBlockStart"]["start"]["toolResult"]
        for i in items
        if "toolResult" in json.dumps(i.get("contentBlockStart", {}))
    ]
    assert results and results[0]["status"] == "error"
    assert "Tool delete_all returned an error: Tool delete_all is not available" in _text(items)
    assert items[-2] == {"messageStop": {"stopReason": "end_turn"}}
