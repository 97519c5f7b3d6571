"""The deterministic ``local`` model: the behaviours its module documents, and determinism."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from harness.providers.base import ModelRequest, Stop, TextDelta, ToolUseInputDelta, ToolUseStart, Usage
from harness.providers.local import LocalProvider
from harness.providers.registry import provider_for

MODEL = {"liteLlmModelConfig": {"modelId": "local/deterministic"}}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def assistant_tool_use(tool_use_id: str, name: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": tool_use_id, "name": name, "input": {}}}],
    }


def results(*items: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"toolResult": item} for item in items]}


def run(*messages: dict[str, Any]) -> list[Any]:
    return list(LocalProvider().stream(ModelRequest(model_config=MODEL, messages=list(messages))))


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_the_registry_serves_local_model_ids_with_the_local_provider() -> None:
    assert isinstance(provider_for(MODEL), LocalProvider)


def test_plain_text_is_echoed_in_several_deltas() -> None:
    events = run(user("  the quick brown fox  "))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 6  # You / said: / "the / quick / brown / fox"
    assert text_of(events) == 'You said: "the quick brown fox"'
    assert events[-2] == Stop("end_turn")
    assert isinstance(events[-1], Usage)
    assert events[-1].output_tokens == len(deltas)
    assert events[-1].input_tokens > 0


def test_only_the_last_text_of_the_last_message_is_the_command() -> None:
    events = run(
        user("/tool ignored {}"), {"role": "user", "content": [{"text": "first"}, {"text": "second"}]}
    )
    assert text_of(events) == 'You said: "second"'


def test_slash_tool_with_json_calls_the_tool() -> None:
    events = run(user('/tool get_weather {"city": "Paris", "days": [1, 2]}'))
    assert [type(e) for e in events] == [ToolUseStart, ToolUseInputDelta, Stop, Usage]
    start, delta = events[0], events[1]
    assert start.name == "get_weather"
    assert delta.tool_use_id == start.tool_use_id
    assert json.loads(delta.input_json) == {"city": "Paris", "days": [1, 2]}
    assert events[2] == Stop("tool_use")
    assert re.fullmatch(r"tooluse_[0-9a-f]{24}", start.tool_use_id)


def test_slash_tool_without_input_calls_the_tool_with_an_empty_object() -> None:
    events = run(user("/tool   ping  "))
    assert events[0].name == "ping"
    assert json.loads(events[1].input_json) == {}


def test_slash_tool_with_bad_json_answers_in_text_instead_of_failing() -> None:
    events = run(user("/tool get_weather {city: Paris"))
    assert not any(isinstance(e, (ToolUseStart, ToolUseInputDelta)) for e in events)
    assert text_of(events) == "I could not parse the input for tool get_weather as JSON."
    assert events[-2] == Stop("end_turn")


def test_tool_use_ids_are_deterministic_and_depend_on_the_conversation() -> None:
    first = run(user("/tool a {}"))[0].tool_use_id
    assert run(user("/tool a {}"))[0].tool_use_id == first
    assert run(user('/tool a {"x": 1}'))[0].tool_use_id != first
    assert run(user("earlier"), user("/tool a {}"))[0].tool_use_id != first


def test_tool_results_are_answered_with_their_content() -> None:
    events = run(
        user("/tool lookup {}"),
        assistant_tool_use("t1", "lookup"),
        results({"toolUseId": "t1", "content": [{"text": "sunny"}, {"json": {"b": 2, "a": 1}}]}),
    )
    assert text_of(events) == 'Tool lookup returned: sunny {"a": 1, "b": 2}'
    assert events[-2] == Stop("end_turn")


def test_error_results_say_error() -> None:
    events = run(
        assistant_tool_use("t1", "lookup"),
        results(
            {"toolUseId": "t1", "status": "error", "content": [{"text": "boom"}]},
            {"toolUseId": "t-unknown", "status": "success", "content": [{"text": "fine"}]},
        ),
    )
    assert text_of(events) == "Tool lookup returned an error: boom Tool t-unknown returned: fine"


def test_history_lists_the_user_texts_oldest_first() -> None:
    events = run(
        user("one"),
        {"role": "assistant", "content": [{"text": "reply"}]},
        user("two"),
        {"role": "assistant", "content": [{"text": "reply"}]},
        user("/history"),
    )
    assert text_of(events) == "one\ntwo\n/history"


def test_an_empty_conversation_gets_an_empty_echo() -> None:
    assert text_of(run()) == 'You said: ""'


_COMMANDS = ("/tool ", "/history")


@given(st.text(min_size=0, max_size=80).filter(lambda t: not t.strip().startswith(_COMMANDS)))
def test_any_other_text_is_echoed_exactly_and_deterministically(text: str) -> None:
    first, second = run(user(text)), run(user(text))
    assert first == second
    assert text_of(first) == f'You said: "{text.strip()}"'
    assert first[-2:][0] == Stop("end_turn")
    assert isinstance(first[-1], Usage)
