"""Invocation-level overrides of the harness configuration (model, tools, allowedTools, limits)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .support import ROLE_ARN, Api, inline_tool, new_session_id, tool_use_id_of, unique_name

BAD_FALLBACK = {
    "liteLlmModelConfig": {
        "modelId": "local/deterministic",
        "additionalParams": {"fallbackModels": [{"geminiModelConfig": {"modelId": "gemini-2.5-pro"}}]},
    }
}
BROWSER = {"type": "agentcore_browser", "name": "browser", "config": {"agentCoreBrowser": {}}}


def test_invocation_allowed_tools_narrow_the_harness(api: Api) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup"), inline_tool("other")])
    paused = api.invoke(
        harness["harnessId"],
        "/tool lookup {}",
        session_id=new_session_id(),
        actor_id=unique_name(),
        extra={"allowedTools": ["lookup"]},
    )
    assert tool_use_id_of(paused.items())
    assert paused.items()[-2] == {"messageStop": {"stopReason": "tool_use"}}


def test_a_resume_must_keep_the_paused_configuration(api: Api) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup")])
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(
        harness["harnessId"],
        "/tool lookup {}",
        session_id=session,
        actor_id=actor,
        extra={"maxIterations": 5},
    )
    result = {"toolResult": {"toolUseId": tool_use_id_of(paused.items()), "content": [{"text": "ok"}]}}
    changed = api.invoke(
        harness["harnessId"],
        [{"role": "user", "content": [result]}],
        session_id=session,
        actor_id=actor,
        extra={"maxIterations": 6},
    )
    assert changed.status == 400
    assert "maxIterations" in changed.json["message"]
    same = api.invoke(
        harness["harnessId"],
        [{"role": "user", "content": [result]}],
        session_id=session,
        actor_id=actor,
        extra={"maxIterations": 5},
    )
    assert same.status == 200


def test_an_empty_harness_allowed_tools_list_allows_no_tools(api: Api) -> None:
    """``allowedTools: []`` is valid in the contract (no minimum length) and means no tool may be
    used; UpdateHarness stores it as given, so CreateHarness must not turn it into ``["*"]``."""
    created = api.call(
        "POST",
        "/harnesses",
        body={
            "harnessName": unique_name(),
            "executionRoleArn": ROLE_ARN,
            "tools": [inline_tool("lookup")],
            "allowedTools": [],
        },
    )
    assert created.status == 201
    harness = created.json["harness"]
    assert harness["allowedTools"] == []

    response = api.invoke(
        harness["harnessId"], "/tool lookup {}", session_id=new_session_id(), actor_id=unique_name()
    )
    assert response.items()[-2] == {
        "messageStop": {"stopReason": "end_turn"}
    }  # refused, not sent to the client


def test_update_and_create_agree_on_an_empty_allowed_tools_list(api: Api) -> None:
    harness = api.create_harness(tools=[inline_tool("lookup")])
    updated = api.call("PATCH", f"/harnesses/{harness['harnessId']}", body={"allowedTools": []})
    assert updated.json["harness"]["allowedTools"] == []
    created = api.create_harness(tools=[inline_tool("lookup")], allowedTools=[])
    assert created["allowedTools"] == updated.json["harness"]["allowedTools"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        (
            {"model": BAD_FALLBACK},
            "model.liteLlmModelConfig.additionalParams.fallbackModels[0].geminiModelConfig.apiKeyArn",
        ),
        (
            {"model": {"bedrockModelConfig": {"modelId": "m", "apiFormat": "responses"}}},
            "model.bedrockModelConfig",
        ),
        ({"tools": [BROWSER]}, "tools[0].type"),
    ],
    ids=["fallback-model-without-vault-key", "bedrock-responses-format", "browser-tool"],
)
def test_unsupported_invocation_overrides_are_rejected_by_name(
    api: Api, override: dict[str, Any], field: str
) -> None:
    """CreateHarness rejects these members by name ("never silently ignored"); the same members as
    InvokeHarness overrides must be refused up front too, not start a turn that cannot work."""
    harness = api.create_harness()
    response = api.invoke(
        harness["harnessId"], "hello", session_id=new_session_id(), actor_id=unique_name(), extra=override
    )
    assert response.status == 400, json.dumps(response.items() if response.status == 200 else response.json)
    assert field in [problem["name"] for problem in response.json["fieldList"]]
