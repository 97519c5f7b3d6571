"""The harness control-plane operations through ``handlers.api.handler``."""

from __future__ import annotations

import uuid

from .support import LOCAL_MODEL, ROLE_ARN, Api, inline_tool, unique_name


def test_create_get_update_versions_delete(api: Api, names: dict[str, str]) -> None:
    name = unique_name()
    created = api.call(
        "POST",
        "/harnesses",
        body={
            "harnessName": name,
            "executionRoleArn": ROLE_ARN,
            "systemPrompt": [{"text": "Be brief."}],
            "tools": [inline_tool("lookup")],
            "allowedTools": ["look*"],
            "maxIterations": 5,
            "tags": {"team": "agents"},
        },
    )
    assert created.status == 201
    harness = created.json["harness"]
    harness_id = harness["harnessId"]
    assert harness_id.startswith(name + "-")
    assert harness["arn"].endswith(f":harness/{harness_id}")
    assert harness["status"] == "READY"
    assert harness["harnessVersion"] == "1"
    assert harness["model"] == LOCAL_MODEL  # the deployment default
    assert harness["allowedTools"] == ["look*"]
    environment = harness["environment"]["agentCoreRuntimeEnvironment"]
    assert environment["agentRuntimeArn"] == names["state_machine_arn"]

    got = api.call("GET", f"/harnesses/{harness_id}")
    assert got.status == 200 and got.json["harness"] == harness

    updated = api.call("PATCH", f"/harnesses/{harness_id}", body={"maxIterations": 7, "allowedTools": ["*"]})
    assert updated.status == 200
    assert updated.json["harness"]["harnessVersion"] == "2"
    assert updated.json["harness"]["maxIterations"] == 7
    assert updated.json["harness"]["tools"] == harness["tools"]

    old = api.call("GET", f"/harnesses/{harness_id}", query={"harnessVersion": "1"})
    assert old.json["harness"]["maxIterations"] == 5
    versions = api.call("GET", f"/harnesses/{harness_id}/versions")
    assert [v["harnessVersion"] for v in versions.json["harnessVersions"]] == ["1", "2"]

    listed = api.call("GET", "/harnesses", query={"maxResults": "100"})
    assert listed.status == 200

    deleted = api.call("DELETE", f"/harnesses/{harness_id}")
    assert deleted.status == 200
    assert deleted.json["harness"]["status"] == "DELETING"
    assert api.call("GET", f"/harnesses/{harness_id}").status == 404
    # The name is free again.
    assert (
        api.call("POST", "/harnesses", body={"harnessName": name, "executionRoleArn": ROLE_ARN}).status == 201
    )


def test_create_with_a_client_token_is_idempotent_over_the_api(api: Api) -> None:
    body = {"harnessName": unique_name(), "executionRoleArn": ROLE_ARN, "clientToken": str(uuid.uuid4())}
    first = api.call("POST", "/harnesses", body=body)
    second = api.call("POST", "/harnesses", body=body)
    assert first.status == second.status == 201
    assert first.json["harness"]["harnessId"] == second.json["harness"]["harnessId"]
    mismatch = api.call("POST", "/harnesses", body=body | {"maxIterations": 2})
    assert mismatch.status == 400
    assert mismatch.json["reason"] == "IdempotentParameterMismatchException"


def test_delete_managed_memory_is_refused_by_name(api: Api) -> None:
    harness = api.create_harness()
    response = api.call("DELETE", f"/harnesses/{harness['harnessId']}", query={"deleteManagedMemory": "true"})
    assert response.status == 400
    assert [p["name"] for p in response.json["fieldList"]] == ["deleteManagedMemory"]
    assert api.call("GET", f"/harnesses/{harness['harnessId']}").status == 200
    bad = api.call("DELETE", f"/harnesses/{harness['harnessId']}", query={"deleteManagedMemory": "yes"})
    assert bad.status == 400


def test_a_base64_encoded_request_body_is_read_as_api_gateway_sends_binary_payloads(api: Api) -> None:
    import base64
    import importlib
    import json

    from local_runtime.lambda_dispatch import context_for

    name = unique_name()
    body = json.dumps({"harnessName": name, "executionRoleArn": ROLE_ARN})
    event, function_id = api.event("POST", "/harnesses", body=base64.b64encode(body.encode()).decode())
    event["isBase64Encoded"] = True
    function = api.deployment.functions[function_id]
    module_name, _, attribute = function["handler"].rpartition(".")
    result = getattr(importlib.import_module(module_name), attribute)(event, context_for(function))
    assert result["statusCode"] == 201
    assert json.loads(result["body"])["harness"]["harnessName"] == name
