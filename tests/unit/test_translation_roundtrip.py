"""Canonical history -> provider format -> canonical history, for random valid histories.

"Loses nothing" means: the same messages in the same order with the same roles; every text block
(exact string, order kept); every image (format and bytes); every tool use (id, name, input, order);
every tool result (id, status, content, order). The exceptions are where a format cannot carry
something, and each is stated by the ``expected_*`` normalisation below:

- all formats drop ``reasoningContent`` (another provider's reasoning cannot be replayed);
- a missing tool-result status reads as ``success``;
- OpenAI chat and responses carry a tool result as one string: the items' texts and JSON
  serialisations joined by newlines, one text item back (none when empty), and an ``error`` status
  as the prefix ``"Error: "`` -- so a success whose string starts with that prefix reads as an error;
- Gemini carries results exactly (items and status inside the ``function_response``).

The generated histories put an assistant's texts before its tool uses and a user's tool results
before their other content, the order every provider produces (and the translations assume).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.providers.base import ModelRequest
from harness.providers.gemini import from_gemini, to_gemini
from harness.providers.openai_chat import from_openai_chat, to_openai_chat
from harness.providers.openai_format import ERROR_PREFIX
from harness.providers.openai_responses import from_openai_responses, to_openai_responses

TOOL_IDS = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,20}", fullmatch=True)
TEXT = st.text(min_size=1, max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)
IMAGES = st.builds(
    lambda fmt, data: {"image": {"format": fmt, "source": {"bytes": base64.b64encode(data).decode()}}},
    st.sampled_from(["png", "jpeg", "gif", "webp"]),
    st.binary(min_size=1, max_size=24),
)
RESULT_ITEMS = st.one_of(
    st.builds(lambda t: {"text": t}, st.text(max_size=40)), st.builds(lambda j: {"json": j}, JSON_VALUES)
)
REASONING = {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "c2ln"}}}


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    used_ids: set[str] = set()
    messages: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    turns = draw(st.integers(min_value=1, max_value=4))
    for turn in range(turns):
        # the user's turn: results for every pending tool use (in some order), then other content
        blocks: list[dict[str, Any]] = []
        for use in draw(st.permutations(pending)):
            result: dict[str, Any] = {
                "toolUseId": use["toolUseId"],
                "content": draw(st.lists(RESULT_ITEMS, max_size=3)),
            }
            status = draw(st.sampled_from(["success", "error", None]))
            if status:
                result["status"] = status
            blocks.append({"toolResult": result})
        blocks += draw(
            st.lists(
                st.one_of(st.builds(lambda t: {"text": t}, TEXT), IMAGES),
                min_size=0 if pending else 1,
                max_size=3,
            )
        )
        messages.append({"role": "user", "content": blocks})
        pending = []
        if turn == turns - 1 and draw(st.booleans()):
            break  # end on the user's turn
        # the assistant's turn: optional reasoning, texts, then tool uses; never empty
        blocks = [REASONING] if draw(st.booleans()) else []
        texts = draw(st.lists(TEXT, max_size=2))
        blocks += [{"text": t} for t in texts]
        for _ in range(draw(st.integers(min_value=0 if texts else 1, max_value=3))):
            tool_use_id = draw(TOOL_IDS.filter(lambda i: i not in used_ids))
            used_ids.add(tool_use_id)
            use = {"toolUseId": tool_use_id, "name": draw(NAMES), "input": draw(JSON_OBJECTS)}
            pending.append(use)
            blocks.append({"toolUse": use})
        messages.append({"role": "assistant", "content": blocks})
    if pending:  # every tool use is answered, as a valid history requires
        messages.append(
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": u["toolUseId"], "content": [], "status": "success"}}
                    for u in pending
                ],
            }
        )
    return messages


def _without_reasoning(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"role": m["role"], "content": [b for b in m["content"] if "reasoningContent" not in b]}
        for m in messages
    ]


def expected_gemini(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = _without_reasoning(messages)
    for message in out:
        for block in message["content"]:
            if "toolResult" in block:
                block["toolResult"] = {
                    **block["toolResult"],
                    "status": block["toolResult"].get("status", "success"),
                }
    return out


def expected_openai(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = _without_reasoning(messages)
    for message in out:
        for block in message["content"]:
            if "toolResult" in block:
                result = block["toolResult"]
                text = "\n".join(
                    i["text"] if "text" in i else json.dumps(i["json"], ensure_ascii=False)
                    for i in result["content"]
                )
                status = result.get("status", "success")
                if status == "success" and text.startswith(ERROR_PREFIX):
                    status, text = "error", text[len(ERROR_PREFIX) :]
                block["toolResult"] = {
                    "toolUseId": result["toolUseId"],
                    "content": [{"text": text}] if text else [],
                    "status": status,
                }
    return out


def request(kind: str, messages: list[dict[str, Any]]) -> ModelRequest:
    return ModelRequest(model_config={kind: {"modelId": "m"}}, messages=messages, system=["sys"])


def over_the_wire(payload: Any) -> Any:
    return json.loads(json.dumps(payload))


ROUND_TRIP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(histories())
def test_openai_chat_round_trip(messages: list[dict[str, Any]]) -> None:
    body = over_the_wire(to_openai_chat(request("openAiModelConfig", messages)))
    chat = body["messages"]
    assert chat[0] == {"role": "system", "content": "sys"}
    assert from_openai_chat(chat) == expected_openai(messages)
    # OpenAI pairs ids exactly: each assistant turn's tool calls are answered, in the tool messages
    # right after it, once each.
    for index, message in enumerate(chat):
        if message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            answers = []
            for following in chat[index + 1 :]:
                if following["role"] != "tool":
                    break
                answers.append(following["tool_call_id"])
            assert sorted(answers) == sorted(ids)


@ROUND_TRIP
@given(histories())
def test_openai_responses_round_trip(messages: list[dict[str, Any]]) -> None:
    body = over_the_wire(to_openai_responses(request("openAiModelConfig", messages)))
    assert body["instructions"] == "sys"
    assert from_openai_responses(body["input"]) == expected_openai(messages)
    calls = [i["call_id"] for i in body["input"] if i["type"] == "function_call"]
    outputs = [i["call_id"] for i in body["input"] if i["type"] == "function_call_output"]
    assert sorted(calls) == sorted(outputs) and len(set(calls)) == len(calls)


@ROUND_TRIP
@given(histories())
def test_gemini_round_trip(messages: list[dict[str, Any]]) -> None:
    from google.genai import types

    body = to_gemini(request("geminiModelConfig", messages))
    assert from_gemini(body["contents"]) == expected_gemini(messages)
    # The SDK accepts every content as built, and what it holds reads back the same.
    held = [types.Content.model_validate(c).model_dump(exclude_none=True) for c in body["contents"]]
    assert from_gemini(held) == expected_gemini(messages)
    assert types.GenerateContentConfig.model_validate(body["config"]).system_instruction is not None
