"""Bad requests get AgentCore-shaped 4xx errors, never a 500, and change nothing that is stored."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from e2e_support import (
    ROLE_ARN,
    SESSION_HEADER,
    Api,
    RawResponse,
    create_harness,
    inline_tool,
    new_session_id,
    say,
    unique_name,
    user_text,
)

pytestmark = pytest.mark.e2e


def _names(control: Any) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = control.list_harnesses(**kwargs)
        names.extend(h["harnessName"] for h in page["harnesses"])
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]


@pytest.fixture
def harnesses_unchanged(control: Any) -> Iterator[None]:
    """Fails the test if the set of harnesses changed while it ran."""
    before = sorted(_names(control))
    yield
    assert sorted(_names(control)) == before


def assert_error(response: RawResponse, status: int, error_type: str) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body)
    assert response.error_type == error_type, response.headers
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


def assert_client_error(error: ClientError, status: int, code: str) -> dict[str, Any]:
    assert error.response["Error"]["Code"] == code, error.response
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["Error"]["Message"]
    return error.response


def _field_names(body: dict[str, Any]) -> list[str]:
    return [problem["name"] for problem in body.get("fieldList", [])]


# -- CreateHarness with raw bodies ----------------------------------------------------------------


@pytest.mark.usefixtures("harnesses_unchanged")
def test_a_malformed_json_body_is_a_validation_error(api: Api) -> None:
    name = unique_name("malformed")
    response = api.request("POST", "/harnesses", f'{{"harnessName": "{name}", '.encode())
    body = assert_error(response, 400, "ValidationException")
    assert body["reason"] == "CannotParse"


@pytest.mark.usefixtures("harnesses_unchanged")
@pytest.mark.parametrize(
    "raw", [b"[]", b'"harness"', b"null", b"42"], ids=["array", "string", "null", "number"]
)
def test_a_json_body_that_is_not_an_object_is_a_validation_error(api: Api, raw: bytes) -> None:
    body = assert_error(api.request("POST", "/harnesses", raw), 400, "ValidationException")
    assert body["reason"] == "CannotParse"


@pytest.mark.usefixtures("harnesses_unchanged")
def test_an_unknown_top_level_field_is_named_in_the_field_list(api: Api) -> None:
    response = api.request(
        "POST",
        "/harnesses",
        {"harnessName": unique_name("unknown"), "executionRoleArn": ROLE_ARN, "favouriteColour": "blue"},
    )
    body = assert_error(response, 400, "ValidationException")
    assert body["reason"] == "FieldValidationFailed"
    assert "favouriteColour" in _field_names(body)


@pytest.mark.usefixtures("harnesses_unchanged")
def test_a_field_of_the_wrong_type_is_a_validation_error(api: Api) -> None:
    response = api.request(
        "POST",
        "/harnesses",
        {"harnessName": unique_name("wrongtype"), "executionRoleArn": ROLE_ARN, "maxIterations": "ten"},
    )
    body = assert_error(response, 400, "ValidationException")
    assert _field_names(body) == ["maxIterations"]


@pytest.mark.usefixtures("harnesses_unchanged")
def test_a_null_required_field_is_a_validation_error(api: Api) -> None:
    response = api.request("POST", "/harnesses", {"harnessName": None, "executionRoleArn": ROLE_ARN})
    body = assert_error(response, 400, "ValidationException")
    assert "harnessName" in _field_names(body)


@pytest.mark.usefixtures("harnesses_unchanged")
def test_an_unknown_nested_field_is_named_with_its_path(api: Api) -> None:
    tool = inline_tool("approve") | {"colour": "blue"}
    response = api.request(
        "POST",
        "/harnesses",
        {"harnessName": unique_name("nested"), "executionRoleArn": ROLE_ARN, "tools": [tool]},
    )
    body = assert_error(response, 400, "ValidationException")
    assert "tools[0].colour" in _field_names(body)


@pytest.mark.usefixtures("harnesses_unchanged")
def test_a_deeply_nested_body_is_a_validation_error_not_a_crash(api: Api) -> None:
    depth = 5000
    raw = (
        '{"harnessName": "deep", "executionRoleArn": "' + ROLE_ARN + '", "tools": [{"type": '
        '"inline_function", "name": "t", "config": {"inlineFunction": {"description": "d", '
        '"inputSchema": ' + '{"a": ' * depth + "1" + "}" * depth + "}}}]}"
    )
    response = api.request("POST", "/harnesses", raw.encode())
    assert_error(response, 400, "ValidationException")


@pytest.mark.usefixtures("harnesses_unchanged")
def test_a_body_over_one_mebibyte_is_rejected(api: Api) -> None:
    body = {
        "harnessName": unique_name("huge"),
        "executionRoleArn": ROLE_ARN,
        "systemPrompt": [{"text": "x" * (1024 * 1024 + 1)}],
    }
    response = api.request("POST", "/harnesses", body)
    assert 400 <= response.status < 500, response.status
    assert response.error_type == "ValidationException"
    assert response.json()["message"]


@pytest.mark.usefixtures("harnesses_unchanged")
def test_an_unsigned_request_is_denied(api: Api) -> None:
    response = api.request(
        "POST",
        "/harnesses",
        {"harnessName": unique_name("unsigned"), "executionRoleArn": ROLE_ARN},
        sign=False,
    )
    assert_error(response, 403, "AccessDeniedException")
    assert_error(api.request("GET", "/harnesses", sign=False), 403, "AccessDeniedException")


def test_an_unknown_route_is_not_found(api: Api) -> None:
    assert_error(api.request("GET", "/no-such-thing"), 404, "ResourceNotFoundException")


# -- CreateHarness through boto3 ------------------------------------------------------------------


@pytest.mark.usefixtures("harnesses_unchanged")
def test_an_invalid_harness_name_is_a_validation_error(control: Any) -> None:
    with pytest.raises(ClientError) as invalid:
        control.create_harness(harnessName="9bad", executionRoleArn=ROLE_ARN)
    assert_client_error(invalid.value, 400, "ValidationException")
    assert "harnessName" in invalid.value.response["Error"]["Message"]


@pytest.mark.usefixtures("harnesses_unchanged")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("skills", [{"path": "x"}]),
        ("environmentVariables", {"STAGE": "dev"}),
    ],
)
def test_a_field_this_deployment_does_not_implement_is_named(control: Any, field: str, value: Any) -> None:
    name = unique_name("unsupported")
    with pytest.raises(ClientError) as unsupported:
        control.create_harness(harnessName=name, executionRoleArn=ROLE_ARN, **{field: value})
    assert_client_error(unsupported.value, 400, "ValidationException")
    assert field in unsupported.value.response["Error"]["Message"]
    assert field in [p["name"] for p in unsupported.value.response.get("fieldList", [])]


@pytest.mark.usefixtures("harnesses_unchanged")
def test_a_tool_type_this_deployment_does_not_run_is_named(control: Any) -> None:
    with pytest.raises(ClientError) as unsupported:
        control.create_harness(
            harnessName=unique_name("tooltype"),
            executionRoleArn=ROLE_ARN,
            tools=[{"type": "agentcore_browser", "name": "browser", "config": {"agentCoreBrowser": {}}}],
        )
    assert_client_error(unsupported.value, 400, "ValidationException")
    assert "tools[0]" in unsupported.value.response["Error"]["Message"]


@pytest.mark.usefixtures("harnesses_unchanged")
def test_an_unsupported_update_changes_nothing(control: Any) -> None:
    harness = create_harness(control)  # deleted at the end: the harness set is as it was
    try:
        with pytest.raises(ClientError) as unsupported:
            control.update_harness(harnessId=harness["harnessId"], skills=[{"path": "x"}], maxIterations=3)
        assert_client_error(unsupported.value, 400, "ValidationException")
        current = control.get_harness(harnessId=harness["harnessId"])["harness"]
        assert current["harnessVersion"] == "1"
        assert current["maxIterations"] == harness["maxIterations"]
    finally:
        control.delete_harness(harnessId=harness["harnessId"])


def test_getting_an_unknown_harness_is_not_found(control: Any) -> None:
    with pytest.raises(ClientError) as missing:
        control.get_harness(harnessId="nothere-abcdefghij")
    assert_client_error(missing.value, 404, "ResourceNotFoundException")


def test_a_malformed_harness_id_is_a_validation_error(control: Any) -> None:
    with pytest.raises(ClientError) as malformed:
        control.get_harness(harnessId="not_an_id")
    assert_client_error(malformed.value, 400, "ValidationException")


def test_updating_or_deleting_an_unknown_harness_is_not_found(control: Any) -> None:
    with pytest.raises(ClientError) as update:
        control.update_harness(harnessId="nothere-abcdefghij", maxIterations=3)
    assert_client_error(update.value, 404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as delete:
        control.delete_harness(harnessId="nothere-abcdefghij")
    assert_client_error(delete.value, 404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as versions:
        control.list_harness_versions(harnessId="nothere-abcdefghij")
    assert_client_error(versions.value, 404, "ResourceNotFoundException")


# -- InvokeHarness --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session_with_history(control: Any, data: Any) -> tuple[dict[str, Any], str]:
    harness = create_harness(control)
    session = new_session_id()
    say(data, harness["arn"], session, "kept")
    return harness, session


def _history(data: Any, harness: dict[str, Any], session: str) -> str:
    return say(data, harness["arn"], session, "/history").text


def test_invoking_an_unknown_harness_is_not_found(data: Any) -> None:
    arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/nothere-abcdefghij"
    with pytest.raises(ClientError) as missing:
        say(data, arn, new_session_id(), "hello")
    assert_client_error(missing.value, 404, "ResourceNotFoundException")


def test_invoking_a_deleted_harness_is_not_found(control: Any, data: Any) -> None:
    harness = create_harness(control)
    control.delete_harness(harnessId=harness["harnessId"])
    with pytest.raises(ClientError) as missing:
        say(data, harness["arn"], new_session_id(), "hello")
    assert_client_error(missing.value, 404, "ResourceNotFoundException")


@pytest.mark.parametrize(
    "arn",
    [
        "not-an-arn",
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:agent/whatever-abcdefghij",
        "arn:aws:bedrock-agentcore:eu-west-1:999999999999:harness/other-abcdefghij",
    ],
    ids=["garbage", "other-resource", "other-account"],
)
def test_invoking_with_a_malformed_harness_arn_is_a_validation_error(
    data: Any, session_with_history: tuple[dict[str, Any], str], arn: str
) -> None:
    harness, session = session_with_history
    with pytest.raises(ClientError) as malformed:
        say(data, arn, session, "should not be stored")
    assert_client_error(malformed.value, 400, "ValidationException")
    assert _history(data, harness, session).startswith("kept\n")
    assert "should not be stored" not in _history(data, harness, session)


def test_a_too_short_session_id_is_a_validation_error(
    api: Api, session_with_history: tuple[dict[str, Any], str]
) -> None:
    harness, _ = session_with_history
    response = api.request(
        "POST",
        f"/harnesses/invoke?harnessArn={quote(harness['arn'], safe='')}",
        {"messages": user_text("hello")},
        {SESSION_HEADER: "too-short"},
    )
    body = assert_error(response, 400, "ValidationException")
    assert "runtimeSessionId" in _field_names(body)


def test_a_missing_session_id_is_a_validation_error(
    api: Api, session_with_history: tuple[dict[str, Any], str]
) -> None:
    harness, _ = session_with_history
    response = api.request(
        "POST",
        f"/harnesses/invoke?harnessArn={quote(harness['arn'], safe='')}",
        {"messages": user_text("hi")},
    )
    assert_error(response, 400, "ValidationException")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        ({"messages": user_text("hi"), "skills": [{"path": "x"}]}, "skills"),
        ({"messages": user_text("hi"), "sessionColour": "blue"}, "sessionColour"),
        ({"messages": user_text("hi"), "maxIterations": "ten"}, "maxIterations"),
        ({"messages": user_text("hi"), "actorId": "-bad actor-"}, None),
    ],
    ids=["no-messages", "last-not-user", "no-content", "skills", "unknown", "wrong-type", "bad-actor"],
)
def test_a_bad_invoke_body_is_a_validation_error_and_stores_nothing(
    api: Api,
    data: Any,
    session_with_history: tuple[dict[str, Any], str],
    body: dict[str, Any],
    field: str | None,
) -> None:
    harness, session = session_with_history
    before = _history(data, harness, session)
    response = api.request(
        "POST",
        f"/harnesses/invoke?harnessArn={quote(harness['arn'], safe='')}",
        body | {"actorId": body.get("actorId", "alice")},
        {SESSION_HEADER: session},
    )
    problem = assert_error(response, 400, "ValidationException")
    if field is not None:
        assert field in _field_names(problem) or field in problem["message"], problem
    assert _history(data, harness, session) == before + "\n/history"


def test_a_malformed_invoke_body_is_a_validation_error(
    api: Api, session_with_history: tuple[dict[str, Any], str]
) -> None:
    harness, session = session_with_history
    response = api.request(
        "POST",
        f"/harnesses/invoke?harnessArn={quote(harness['arn'], safe='')}",
        b'{"messages": [',
        {SESSION_HEADER: session},
    )
    body = assert_error(response, 400, "ValidationException")
    assert body["reason"] == "CannotParse"


def test_a_qualifier_is_not_supported_yet(
    data: Any, session_with_history: tuple[dict[str, Any], str]
) -> None:
    harness, _ = session_with_history
    with pytest.raises(ClientError) as unsupported:
        say(data, harness["arn"], new_session_id(), "hi", qualifier="DEFAULT")
    assert_client_error(unsupported.value, 400, "ValidationException")
    assert "qualifier" in unsupported.value.response["Error"]["Message"]


def test_list_harnesses_rejects_a_bad_max_results(api: Api) -> None:
    for value in ("abc", "0", "100000"):
        response = api.request("GET", f"/harnesses?maxResults={value}")
        assert_error(response, 400, "ValidationException")


def test_error_bodies_are_json_objects_with_a_message(api: Api) -> None:
    # One spot check of the exact wire shape botocore's rest-json parser relies on.
    response = api.request("GET", f"/harnesses/nothere-{uuid.uuid4().hex[:10]}")
    assert response.status == 404
    assert response.error_type == "ResourceNotFoundException"
    assert set(json.loads(response.body)) == {"message"}


@pytest.mark.parametrize(
    "key",
    [
        {"colour": {"S": "blue"}},
        {"harnessId": {"S": "x"}},
        {"harnessId": {"N": "1"}, "sk": {"S": "LATEST"}},
    ],
    ids=["foreign-attribute", "partial-key", "wrong-type"],
)
def test_a_forged_next_token_is_a_validation_error_not_a_crash(
    control: Any, api: Api, key: dict[str, Any]
) -> None:
    """A nextToken is opaque to clients; one the API did not issue is the caller's mistake."""
    create_harness(control)  # a table with items: the start key is compared against them
    token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    response = api.request("GET", f"/harnesses?nextToken={quote(token)}")
    assert response.status != 500, response.body
    assert_error(response, 400, "ValidationException")
