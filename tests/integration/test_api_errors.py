"""Every error path of the API Lambda: AgentCore-shaped error bodies, the right status codes, and
no internals in what the caller sees."""

from __future__ import annotations

from typing import Any

import pytest

from harness.definitions import HarnessDefinitions
from harness.gateway import gateway_arn
from harness.invocations import Invocations

from .support import (
    ACCOUNT_ID,
    REGION,
    ROLE_ARN,
    SESSION_HEADER,
    Api,
    harness_arn,
    inline_tool,
    new_session_id,
    unique_name,
)

SECRET = "db password is hunter2 at /var/task/handlers/secret.py line 42"


def _assert_error(response: Any, status: int, error_type: str) -> dict[str, Any]:
    assert response.status == status, response.raw_body
    assert response.header("x-amzn-ErrorType") == error_type
    assert response.header("content-type") == "application/json"
    body: dict[str, Any] = response.json
    assert isinstance(body["message"], str) and body["message"]
    return body


def _fields(body: dict[str, Any]) -> list[str]:
    return [problem["name"] for problem in body.get("fieldList", [])]


@pytest.mark.parametrize("raw", ["{not json", '{"harnessName": "x",', "", "\x00"])
def test_malformed_json_is_cannot_parse(api: Api, raw: str) -> None:
    body = _assert_error(api.call("POST", "/harnesses", body=raw), 400, "ValidationException")
    assert body["reason"] == "CannotParse"


@pytest.mark.parametrize("raw", ["[]", '"a string"', "42", "null", "true"])
def test_a_body_that_is_not_an_object_is_cannot_parse(api: Api, raw: str) -> None:
    body = _assert_error(api.call("POST", "/harnesses", body=raw), 400, "ValidationException")
    assert body["reason"] == "CannotParse"


def test_malformed_json_on_invoke_is_cannot_parse(api: Api) -> None:
    harness = api.create_harness()
    response = api.call(
        "POST",
        "/harnesses/invoke",
        body="{oops",
        headers={SESSION_HEADER: new_session_id()},
        query={"harnessArn": harness_arn(harness["harnessId"])},
    )
    body = _assert_error(response, 400, "ValidationException")
    assert body["reason"] == "CannotParse"


def test_an_unknown_field_is_named(api: Api) -> None:
    response = api.call(
        "POST",
        "/harnesses",
        body={"harnessName": unique_name(), "executionRoleArn": ROLE_ARN, "colour": "blue"},
    )
    body = _assert_error(response, 400, "ValidationException")
    assert body["reason"] == "FieldValidationFailed"
    assert "colour" in _fields(body)


UNSUPPORTED_CREATE_MEMBERS: list[tuple[str, dict[str, Any], str]] = [
    ("skills", {"skills": [{"path": "skills/review"}]}, "skills"),
    (
        "environment",
        {"environment": {"agentCoreRuntimeEnvironment": {"networkConfiguration": {"networkMode": "PUBLIC"}}}},
        "environment",
    ),
    ("environmentVariables", {"environmentVariables": {"STAGE": "dev"}}, "environmentVariables"),
    (
        "agentcore_browser tool",
        {"tools": [{"type": "agentcore_browser", "name": "browser", "config": {"agentCoreBrowser": {}}}]},
        "tools[0].type",
    ),
    (
        "a fallback model this deployment cannot run",
        {
            "model": {
                "liteLlmModelConfig": {
                    "modelId": "local/deterministic",
                    "additionalParams": {
                        "fallbackModels": [{"bedrockModelConfig": {"modelId": "m", "apiFormat": "responses"}}]
                    },
                }
            }
        },
        "model.liteLlmModelConfig.additionalParams.fallbackModels[0].bedrockModelConfig",
    ),
    (
        "bedrock apiFormat other than converse_stream",
        {"model": {"bedrockModelConfig": {"modelId": "m", "apiFormat": "responses"}}},
        "model.bedrockModelConfig",
    ),
    ("memory strategy", {"memory": {"disabled": {}}}, "memory.disabled"),
]


@pytest.mark.parametrize(
    ("members", "field"),
    [pytest.param(m, f, id=i) for i, m, f in UNSUPPORTED_CREATE_MEMBERS],
)
def test_an_unsupported_member_is_rejected_by_name(api: Api, members: dict[str, Any], field: str) -> None:
    name = unique_name()
    response = api.call(
        "POST", "/harnesses", body={"harnessName": name, "executionRoleArn": ROLE_ARN, **members}
    )
    body = _assert_error(response, 400, "ValidationException")
    assert field in _fields(body), body
    assert field in body["message"] or "field" in body["message"]
    # Nothing was created: the name is still free.
    assert (
        api.call("POST", "/harnesses", body={"harnessName": name, "executionRoleArn": ROLE_ARN}).status == 201
    )


def test_an_unsupported_member_of_update_is_rejected_by_name(api: Api) -> None:
    harness = api.create_harness()
    response = api.call("PATCH", f"/harnesses/{harness['harnessId']}", body={"skills": [{"path": "x"}]})
    body = _assert_error(response, 400, "ValidationException")
    assert "skills" in _fields(body)
    assert api.call("GET", f"/harnesses/{harness['harnessId']}").json["harness"]["harnessVersion"] == "1"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"skills": [{"path": "skills/review"}]}, "skills"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": "AA=="}}}]}
                ]
            },
            "messages[0].content[0].image",
        ),
    ],
    ids=["skills", "image-block"],
)
def test_unsupported_invoke_members_are_rejected_by_name(api: Api, extra: dict[str, Any], field: str) -> None:
    harness = api.create_harness()
    body: dict[str, Any] = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], **extra}
    response = api.call(
        "POST",
        "/harnesses/invoke",
        body=body,
        headers={SESSION_HEADER: new_session_id()},
        query={"harnessArn": harness_arn(harness["harnessId"])},
    )
    result = _assert_error(response, 400, "ValidationException")
    assert field in _fields(result), result


def test_qualifier_is_rejected_by_name(api: Api) -> None:
    harness = api.create_harness()
    response = api.call(
        "POST",
        "/harnesses/invoke",
        body={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        headers={SESSION_HEADER: new_session_id()},
        query={"harnessArn": harness_arn(harness["harnessId"]), "qualifier": "DEFAULT"},
    )
    assert "qualifier" in _fields(_assert_error(response, 400, "ValidationException"))


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("PUT", "/harnesses"), ("POST", "/harnesses/abc/versions"), ("GET", "/")],
)
def test_an_unknown_route_is_404(api: Api, method: str, path: str) -> None:
    body = _assert_error(api.call(method, path), 404, "ResourceNotFoundException")
    assert "No such operation" in body["message"]


def test_an_unknown_harness_is_404(api: Api) -> None:
    missing = "nobody_here-abcdefghij"
    _assert_error(api.call("GET", f"/harnesses/{missing}"), 404, "ResourceNotFoundException")
    _assert_error(api.call("DELETE", f"/harnesses/{missing}"), 404, "ResourceNotFoundException")
    _assert_error(api.call("GET", f"/harnesses/{missing}/versions"), 404, "ResourceNotFoundException")
    _assert_error(
        api.call("PATCH", f"/harnesses/{missing}", body={"maxIterations": 3}),
        404,
        "ResourceNotFoundException",
    )
    response = api.invoke(missing, "hello", session_id=new_session_id())
    body = _assert_error(response, 404, "ResourceNotFoundException")
    assert missing in body["message"]


def test_an_unknown_harness_version_is_404(api: Api) -> None:
    harness = api.create_harness()
    response = api.call("GET", f"/harnesses/{harness['harnessId']}", query={"harnessVersion": "7"})
    _assert_error(response, 404, "ResourceNotFoundException")


def test_a_malformed_harness_id_is_400(api: Api) -> None:
    _assert_error(api.call("GET", "/harnesses/no"), 400, "ValidationException")


def test_a_harness_arn_of_another_account_or_region_is_400(api: Api) -> None:
    harness = api.create_harness()
    for arn in (
        harness_arn(harness["harnessId"]).replace("123456789012", "210987654321"),
        harness_arn(harness["harnessId"]).replace("us-east-1", "eu-west-1"),
    ):
        response = api.call(
            "POST",
            "/harnesses/invoke",
            body={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
            headers={SESSION_HEADER: new_session_id()},
            query={"harnessArn": arn},
        )
        _assert_error(response, 400, "ValidationException")


def test_missing_session_header_is_400(api: Api) -> None:
    harness = api.create_harness()
    response = api.call(
        "POST",
        "/harnesses/invoke",
        body={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        query={"harnessArn": harness_arn(harness["harnessId"])},
    )
    assert "runtimeSessionId" in _fields(_assert_error(response, 400, "ValidationException"))


def test_a_session_of_another_actor_is_403(api: Api) -> None:
    harness = api.create_harness()
    session = new_session_id()
    assert api.invoke(harness["harnessId"], "mine", session_id=session, actor_id=unique_name()).status == 200
    response = api.invoke(harness["harnessId"], "also mine?", session_id=session, actor_id=unique_name())
    _assert_error(response, 403, "AccessDeniedException")


def test_a_session_bound_to_another_harness_is_400(api: Api) -> None:
    first, second = api.create_harness(), api.create_harness()
    session, actor = new_session_id(), unique_name()
    assert api.invoke(first["harnessId"], "one", session_id=session, actor_id=actor).status == 200
    response = api.invoke(second["harnessId"], "two", session_id=session, actor_id=actor)
    body = _assert_error(response, 400, "ValidationException")
    assert "another harness" in body["message"]


def test_an_invalid_actor_id_on_invoke_is_400(api: Api) -> None:
    harness = api.create_harness()
    response = api.invoke(harness["harnessId"], "hi", session_id=new_session_id(), actor_id="a#b")
    _assert_error(response, 400, "ValidationException")


def test_a_duplicate_name_is_409(api: Api) -> None:
    name = unique_name()
    api.create_harness(name)
    response = api.call("POST", "/harnesses", body={"harnessName": name, "executionRoleArn": ROLE_ARN})
    body = _assert_error(response, 409, "ConflictException")
    assert name in body["message"]


def test_duplicate_tool_names_are_400(api: Api) -> None:
    response = api.call(
        "POST",
        "/harnesses",
        body={
            "harnessName": unique_name(),
            "executionRoleArn": ROLE_ARN,
            "tools": [inline_tool("same"), inline_tool("same")],
        },
    )
    assert "tools" in _fields(_assert_error(response, 400, "ValidationException"))


def test_a_bad_next_token_is_400(api: Api) -> None:
    response = api.call("GET", "/harnesses", query={"nextToken": "bm90IGEgdG9rZW4"})
    _assert_error(response, 400, "ValidationException")
    response = api.call("GET", "/harnesses", query={"maxResults": "many"})
    assert "maxResults" in _fields(_assert_error(response, 400, "ValidationException"))


@pytest.mark.parametrize("method_name", ["get", "list", "create"])
def test_an_unexpected_exception_is_a_500_without_internals(
    api: Api, monkeypatch: pytest.MonkeyPatch, method_name: str
) -> None:
    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(HarnessDefinitions, method_name, explode)
    requests = {
        "get": ("GET", "/harnesses/some_harness-abcdefghij", None),
        "list": ("GET", "/harnesses", None),
        "create": ("POST", "/harnesses", {"harnessName": unique_name(), "executionRoleArn": ROLE_ARN}),
    }
    method, path, body = requests[method_name]
    response = api.call(method, path, body=body)
    result = _assert_error(response, 500, "InternalServerException")
    assert set(result) == {"message"}
    assert "hunter2" not in response.raw_body.decode()
    assert "RuntimeError" not in response.raw_body.decode()
    assert "secret.py" not in response.raw_body.decode()


def test_an_unexpected_exception_on_invoke_is_a_500_without_internals(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = api.create_harness()

    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(Invocations, "invoke", explode)
    response = api.invoke(harness["harnessId"], "hello", session_id=new_session_id())
    _assert_error(response, 500, "InternalServerException")
    assert "hunter2" not in response.raw_body.decode()


UNKNOWN_GATEWAY = gateway_arn("nowhere", REGION, ACCOUNT_ID)


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        (
            {
                "type": "agentcore_gateway",
                "name": "pay",
                "config": {"agentCoreGateway": {"gatewayArn": UNKNOWN_GATEWAY}},
            },
            "names no gateway of this deployment",
        ),
        (
            {
                "type": "remote_mcp",
                "name": "docs",
                "config": {
                    "remoteMcp": {
                        "url": "https://mcp.example.com/mcp",
                        "outboundAuth": {"awsIam": {"service": "lambda"}},
                    }
                },
            },
            "awsIam is not supported",
        ),
        (
            {
                "type": "remote_mcp",
                "name": "docs",
                "config": {"remoteMcp": {"url": "http://mcp.example.com/mcp"}},
            },
            "must be an https:// URL",
        ),
        (
            {
                "type": "remote_mcp",
                "name": "my__docs",
                "config": {"remoteMcp": {"url": "https://mcp.example.com"}},
            },
            "may not contain '__'",
        ),
    ],
    ids=["unknown-gateway", "role-signed-mcp", "plain-http", "separator-in-name"],
)
def test_a_tool_server_this_deployment_cannot_use_is_rejected_and_nothing_is_stored(
    api: Api, tool: dict[str, Any], message: str
) -> None:
    name = unique_name()
    response = api.call(
        "POST", "/harnesses", body={"harnessName": name, "executionRoleArn": ROLE_ARN, "tools": [tool]}
    )
    body = _assert_error(response, 400, "ValidationException")
    assert _fields(body) == ["tools[0].type"]
    assert message in body["fieldList"][0]["message"]
    # Nothing was stored: the name is still free.
    assert (
        api.call("POST", "/harnesses", body={"harnessName": name, "executionRoleArn": ROLE_ARN}).status == 201
    )
