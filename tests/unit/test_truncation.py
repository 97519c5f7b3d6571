"""Truncation: requests stay within limits, cut only between complete turns."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import truncation
from harness.truncation import ContextWindowExceededError, cut_points, estimate_tokens, fit, sliding_window


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"text": text}]}


def calls(*ids: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": i, "name": "lookup", "input": {}}} for i in ids],
    }


def results(*ids: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": i, "content": [{"text": "ok"}]}} for i in ids],
    }


# One turn: a user question, any number of tool rounds (several calls per round), an answer.
@st.composite
def turns(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    messages = [user(f"question {index} " + "x" * draw(st.integers(0, 200)))]
    for round_index in range(draw(st.integers(0, 3))):
        ids = [f"t{index}-{round_index}-{n}" for n in range(draw(st.integers(1, 3)))]
        messages += [calls(*ids), results(*ids)]
    messages.append(assistant(f"answer {index}"))
    return messages


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 8))
    messages: list[dict[str, Any]] = []
    for index in range(count):
        messages += draw(turns(index))
    if draw(st.booleans()):
        messages.pop()  # the current turn, still waiting for the model
    return messages


def assert_well_formed(kept: list[dict[str, Any]], original: list[dict[str, Any]]) -> None:
    assert kept == original[len(original) - len(kept) :], "a suffix of the history"
    first = kept[0]
    assert first["role"] == "user"
    assert not any("toolResult" in block for block in first["content"])
    used = {b["toolUse"]["toolUseId"] for m in kept for b in m["content"] if "toolUse" in b}
    answered = {b["toolResult"]["toolUseId"] for m in kept for b in m["content"] if "toolResult" in b}
    assert answered <= used, "no tool result without its call"
    original_answered = {
        b["toolResult"]["toolUseId"] for m in original for b in m["content"] if "toolResult" in b
    }
    assert used & original_answered <= answered, "no answered call without its result"


@given(conversations(), st.integers(1, 30))
def test_a_sliding_window_never_splits_a_tool_call_from_its_result(
    messages: list[dict[str, Any]], count: int
) -> None:
    kept = sliding_window(messages, count)
    assert_well_formed(kept, messages)
    last_turn_start = cut_points(messages)[-1]
    # At most ``count`` messages, unless the current turn alone is longer (it is never cut).
    assert len(kept) <= max(count, len(messages) - last_turn_start)


@given(conversations(), st.integers(50, 3000))
def test_fitting_a_window_keeps_whole_turns_within_the_budget(
    messages: list[dict[str, Any]], budget: int
) -> None:
    try:
        kept = fit(messages, budget)
    except ContextWindowExceededError:
        last_turn = messages[cut_points(messages)[-1] :]
        assert sum(estimate_tokens(m) for m in last_turn) > budget
        return
    assert_well_formed(kept, messages)
    assert sum(estimate_tokens(m) for m in kept) <= budget


def test_the_sliding_window_moves_the_cut_forward_to_a_turn_boundary() -> None:
    messages = [user("a"), calls("t1"), results("t1"), assistant("b"), user("c"), assistant("d")]
    assert sliding_window(messages, 3) == [user("c"), assistant("d")]
    assert sliding_window(messages, 6) == messages
    assert sliding_window(messages, 100) == messages


def test_the_current_turn_is_kept_whole_even_beyond_the_count() -> None:
    messages = [user("a"), assistant("b"), user("c"), calls("t1"), results("t1"), calls("t2"), results("t2")]
    assert sliding_window(messages, 2) == messages[2:]


def test_a_call_answered_later_is_not_separated_from_its_result() -> None:
    # A client may send a history where a user text sits between a call and its result.
    messages = [user("a"), calls("t1"), user("interjection"), results("t1"), assistant("b"), user("c")]
    assert cut_points(messages) == [0, 5]
    assert sliding_window(messages, 4) == [user("c")]


def test_none_and_the_default_keep_everything() -> None:
    messages = [user(str(n)) for n in range(100)]
    assert truncation.apply(messages, {"strategy": "none"}) == messages
    assert truncation.apply(messages, {}) == messages


def test_sliding_window_reads_its_count_and_defaults_to_forty() -> None:
    messages = [m for n in range(50) for m in (user(str(n)), assistant(str(n)))]
    config = {"strategy": "sliding_window", "config": {"slidingWindow": {"messagesCount": 4}}}
    assert truncation.apply(messages, config) == messages[-4:]
    assert truncation.apply(messages, {"strategy": "sliding_window"}) == messages[-40:]


def test_fit_leaves_room_for_the_fixed_overhead() -> None:
    messages = [user("x" * 400), assistant("y" * 400), user("z")]
    assert fit(messages, 1000) == messages
    assert fit(messages, 1000, overhead_tokens=900) == [user("z")]
    with pytest.raises(ContextWindowExceededError):
        fit(messages, 1000, overhead_tokens=1000)


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"strategy": "none"}, []),
        ({"strategy": "sliding_window", "config": {"slidingWindow": {"messagesCount": 10}}}, []),
        (
            {"strategy": "sliding_window", "config": {"slidingWindow": {"messagesCount": 0}}},
            ["truncation.config.slidingWindow.messagesCount"],
        ),
        (
            {"strategy": "none", "config": {"slidingWindow": {"messagesCount": 3}}},
            ["truncation.config.slidingWindow"],
        ),
        ({"strategy": "summarization"}, []),
        (
            {
                "strategy": "summarization",
                "config": {"summarization": {"preserveRecentMessages": 0, "summaryRatio": 1.5}},
            },
            [
                "truncation.config.summarization.preserveRecentMessages",
                "truncation.config.summarization.summaryRatio",
            ],
        ),
        (
            {"strategy": "sliding_window", "config": {"summarization": {"preserveRecentMessages": 3}}},
            ["truncation.config.summarization"],
        ),
    ],
    ids=[
        "none",
        "sliding-window",
        "zero-count",
        "config-for-another-strategy",
        "summarization",
        "summarization-out-of-range",
        "summarization-config-for-sliding-window",
    ],
)
def test_truncation_configurations_this_deployment_cannot_run_are_named(
    config: dict[str, Any], names: list[str]
) -> None:
    assert [name for name, _ in truncation.problems(config)] == names


# -- summarization ---------------------------------------------------------------------------------


def summarization(preserve: int | None = None, **config: Any) -> dict[str, Any]:
    if preserve is not None:
        config["preserveRecentMessages"] = preserve
    return {"strategy": "summarization", "config": {"summarization": config}}


class FakeSummarizer:
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[dict[str, Any]]]] = []

    def __call__(self, last: int, older: list[dict[str, Any]]) -> str:
        self.calls.append((last, older))
        return f"{len(older)} messages"


def test_summarization_replaces_the_older_turns_and_merges_into_the_first_kept_user_message() -> None:
    messages = [user("a"), assistant("b"), user("c"), calls("t1"), results("t1"), assistant("d"), user("e")]
    fake = FakeSummarizer()
    shaped = truncation.summarized(messages, summarization(3), fake)
    # The cut moves forward to the next turn boundary: the last user message.
    assert fake.calls == [(5, messages[:6])]
    assert shaped == [
        {
            "role": "user",
            "content": [{"text": "Summary of the earlier conversation: 6 messages"}, {"text": "e"}],
        }
    ]
    assert messages[-1] == user("e"), "the stored history is not changed"


def test_summarization_keeps_short_conversations_and_the_current_turn_whole() -> None:
    fake = FakeSummarizer()
    short = [user(str(n)) if n % 2 == 0 else assistant(str(n)) for n in range(10)]
    assert truncation.summarized(short, summarization(), fake) == short
    one_turn = [user("a"), calls("t1"), results("t1"), calls("t2"), results("t2"), calls("t3"), results("t3")]
    assert truncation.summarized(one_turn, summarization(2), fake) == one_turn
    assert fake.calls == []


def test_summarization_defaults_to_ten_recent_messages() -> None:
    messages = [m for n in range(8) for m in (user(str(n)), assistant(str(n)))]
    fake = FakeSummarizer()
    shaped = truncation.summarized(messages, {"strategy": "summarization"}, fake)
    assert fake.calls == [(5, messages[:6])]
    assert shaped[1:] == messages[7:]
    assert shaped[0]["content"][1:] == messages[6]["content"]


def test_other_strategies_never_summarize() -> None:
    messages = [m for n in range(20) for m in (user(str(n)), assistant(str(n)))]
    fake = FakeSummarizer()
    assert truncation.summarized(messages, {"strategy": "none"}, fake) == messages
    window = {"strategy": "sliding_window", "config": {"slidingWindow": {"messagesCount": 2}}}
    assert truncation.summarized(messages, window, fake) == messages
    assert fake.calls == []
    assert truncation.apply(messages, summarization(2)) == messages


def test_a_summary_before_an_assistant_message_is_its_own_user_message() -> None:
    assert truncation.with_summary("s", [assistant("b")]) == [
        {"role": "user", "content": [{"text": "Summary of the earlier conversation: s"}]},
        assistant("b"),
    ]


@given(conversations(), st.integers(1, 30))
def test_a_summarized_request_is_a_valid_conversation(messages: list[dict[str, Any]], preserve: int) -> None:
    shaped = truncation.summarized(messages, summarization(preserve), FakeSummarizer())
    if shaped is messages:
        return
    first = shaped[0]
    assert first["role"] == "user"
    assert first["content"][0]["text"].startswith(truncation.SUMMARY_PREFIX)
    recent = [first | {"content": first["content"][1:]}, *shaped[1:]]
    assert_well_formed(recent, messages)
    assert not any(a["role"] == b["role"] == "user" for a, b in itertools.pairwise(shaped))


def test_the_summarization_request_renders_tool_calls_and_asks_for_the_ratio() -> None:
    older = [
        user("find x"),
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "x"}}}],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"x": 1}}]}}]},
        assistant("x is 1"),
    ]
    system, text = truncation.summarization_request(older, summarization(summaryRatio=0.5))
    assert system == truncation.DEFAULT_SUMMARIZATION_PROMPT
    conversation = (
        "user: find x\n"
        'assistant called tool lookup with {"q":"x"}\n'
        'result of tool lookup: {"x":1}\n'
        "assistant: x is 1"
    )
    assert text.startswith(truncation.SUMMARIZATION_REQUEST)
    assert text.endswith("\n\n" + conversation)
    assert f"at most {len(conversation) // 2} characters" in text
    custom = summarization(summarizationSystemPrompt="Be brief.")
    assert truncation.summarization_request(older, custom)[0] == "Be brief."


def test_a_summarization_request_is_cut_to_its_budget_keeping_the_instruction_and_the_newest_part() -> None:
    older = [user(f"message {n} " + "z" * 200) for n in range(40)]
    _, text = truncation.summarization_request(older, summarization())
    request = [{"role": "user", "content": [{"text": text}]}]
    assert truncation.fit_summarization_request(request, 100_000) == request
    cut = truncation.fit_summarization_request(request, 1000, overhead_tokens=50)
    cut_text = cut[0]["content"][0]["text"]
    assert truncation.estimate_tokens(cut) + 50 <= 1000
    assert cut_text.startswith(text.partition("\n\n")[0])
    assert truncation.OMITTED_MARKER in cut_text
    assert "message 39" in cut_text and "message 0 " not in cut_text
    with pytest.raises(truncation.ContextWindowExceededError):
        truncation.fit_summarization_request(request, 60)
