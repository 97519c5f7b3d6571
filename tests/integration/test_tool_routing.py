"""Server-side tools through the whole loop: a remote MCP server and a gateway OpenAPI target (both
real servers on 127.0.0.1), allowedTools as a security control, approvals audited before the call
runs, exactly-once effects, large results offloaded to S3, parallel calls kept in the model's
order, and failing targets as tool errors. The gateway configuration is the file the stack
bundles, made by the same function from the same shape as ``harness:gateways``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from harness.gateway import bundle, gateway_arn
from local_runtime import demo_bank, demo_mcp, lambda_dispatch
from local_runtime.demo_bank import DemoBank
from local_runtime.demo_mcp import AdvisorServer
from local_runtime.provision import Deployment
from stacks.app_factory import REPO_ROOT
from tests.mcp_proxy import time_server_over_http

from .support import (
    ACCOUNT_ID,
    APPROVER_ARN,
    CALLER_ARN,
    REGION,
    Api,
    Response,
    clear_caches,
    everything_stored,
    execution_arn,
    new_session_id,
    unique_name,
    wait_for_execution,
)

BANK_SECRET = "it-bank/api-key"
FX_FUNCTION = "it-gateway-fx"
FX_CALLS: list[dict[str, Any]] = []


def _convert(event: dict[str, Any], _: Any) -> dict[str, Any]:
    FX_CALLS.append(event)
    if event["input"]["to"] == "XXX":
        raise ValueError("rates table password=hunter2 unreachable")
    return {"amount": round(event["input"]["amount"] * 1.08, 2), "currency": event["input"]["to"]}


def _fx_function(aws: Any) -> str:
    """A Lambda target in the emulator whose code runs in this process."""
    role = aws.iam.create_role(
        RoleName=unique_name("fx-role"),
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    arn: str = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=FX_FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": b"runs in-process"},
    )["FunctionArn"]
    lambda_dispatch.register(FX_FUNCTION, _convert)
    return arn


THRESHOLD = 1000
GATEWAY_ARN = gateway_arn("payments", REGION, ACCOUNT_ID)


@dataclass
class ToolServers:
    bank: DemoBank
    advisor: AdvisorServer
    bank_key: str


@pytest.fixture(scope="module")
def servers(
    deployment: Deployment, aws: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ToolServers]:
    bank_key = f"bank-key-{uuid.uuid4().hex}"
    bank = demo_bank.serve(api_key=bank_key)
    advisor = demo_mcp.serve()
    fx_arn = _fx_function(aws)
    config = {
        "payments": {
            "targets": [
                {
                    "name": "bank",
                    "openApi": {"schemaPath": "local_runtime/demo_bank.openapi.json", "baseUrl": bank.url},
                    "auth": {
                        "apiKey": {"secret": BANK_SECRET, "location": "header", "parameterName": "X-Api-Key"}
                    },
                    "timeoutSeconds": 2,
                    "maxAttempts": 2,
                    "circuitBreaker": {"failureThreshold": 50, "resetSeconds": 1},
                    "approvals": [
                        {
                            "tool": "createTransfer",
                            "when": {"field": "body.amount", "op": "gt", "value": THRESHOLD},
                            "reason": "Large transfers need a second pair of eyes",
                        }
                    ],
                },
                {
                    "name": "fx",
                    "lambda": {
                        "functionArn": fx_arn,
                        "tools": [
                            {
                                "name": "convert",
                                "description": "Convert an amount between currencies",
                                "inputSchema": {
                                    "type": "object",
                                    "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
                                    "required": ["amount", "to"],
                                },
                            }
                        ],
                    },
                    "timeoutSeconds": 5,
                },
            ]
        }
    }
    path: Path = tmp_path_factory.mktemp("gateways") / "gateways.json"
    path.write_text(json.dumps(bundle(config, REPO_ROOT)))
    prefix = deployment.environment()["VAULT_SECRET_PREFIX"]
    # Where the README tells operators to store a gateway target's credential.
    aws.secretsmanager.create_secret(Name=f"{prefix}targets/{BANK_SECRET}", SecretString=bank_key)
    saved = os.environ.get("GATEWAY_CONFIG_FILE")
    os.environ["GATEWAY_CONFIG_FILE"] = str(path)
    clear_caches()
    try:
        yield ToolServers(bank, advisor, bank_key)
    finally:
        if saved is None:
            os.environ.pop("GATEWAY_CONFIG_FILE", None)
        else:
            os.environ["GATEWAY_CONFIG_FILE"] = saved
        clear_caches()
        lambda_dispatch.unregister(FX_FUNCTION)
        advisor.stop()
        bank.stop()


def tools(servers: ToolServers) -> list[dict[str, Any]]:
    return [
        {"type": "remote_mcp", "name": "advisor", "config": {"remoteMcp": {"url": servers.advisor.url}}},
        {
            "type": "agentcore_gateway",
            "name": "pay",
            "config": {"agentCoreGateway": {"gatewayArn": GATEWAY_ARN}},
        },
    ]


def text_of(items: list[dict[str, Any]]) -> str:
    return "".join(
        item["contentBlockDelta"]["delta"].get("text", "") for item in items if "contentBlockDelta" in item
    )


def stop_reasons(items: list[dict[str, Any]]) -> list[str]:
    return [item["messageStop"]["stopReason"] for item in items if "messageStop" in item]


def tool_results(items: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    starts = [
        item["contentBlockStart"]["start"]["toolResult"]
        for item in items
        if "toolResult" in item.get("contentBlockStart", {}).get("start", {})
    ]
    deltas = [
        item["contentBlockDelta"]["delta"]["toolResult"]
        for item in items
        if "toolResult" in item.get("contentBlockDelta", {}).get("delta", {})
    ]
    return [(start["status"], delta) for start, delta in zip(starts, deltas, strict=True)]


def tool_uses(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        item["contentBlockStart"]["start"]["toolUse"]
        for item in items
        if "toolUse" in item.get("contentBlockStart", {}).get("start", {})
    ]


def audit_record(aws: Any, names: dict[str, str], key: str) -> dict[str, Any]:
    body = aws.s3.get_object(Bucket=names["audit_bucket"], Key=key)["Body"].read()
    record: dict[str, Any] = json.loads(body)["record"]
    return record


def one_turn(api: Api, harness: dict[str, Any], text: str) -> Response:
    """A turn in a new session of a new actor."""
    return api.invoke(harness["harnessId"], text, session_id=new_session_id(), actor_id=unique_name())


def invocation_id_of(response: Response) -> str:
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    return invocation_id


def test_a_remote_mcp_tool_is_listed_called_and_answered(api: Api, servers: ToolServers) -> None:
    harness = api.create_harness(tools=tools(servers))
    response = one_turn(api, harness, '/tool advisor__fx_rate {"base": "EUR", "quote": "USD"}')
    items = response.items()
    (use,) = tool_uses(items)
    assert use["name"] == "advisor__fx_rate"
    assert use["type"] == "mcp_tool_use" and use["serverName"] == "advisor"
    ((status, content),) = tool_results(items)
    assert status == "success"
    assert {"json": {"base": "EUR", "quote": "USD", "rate": pytest.approx(1.08, rel=0.2)}} in content or any(
        "json" in block and block["json"]["quote"] == "USD" for block in content
    )
    assert stop_reasons(items)[-1] == "end_turn"
    assert "Tool advisor__fx_rate returned" in text_of(items)


def test_a_gateway_openapi_operation_is_called_with_the_vault_key(
    api: Api, aws: Any, servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers))
    before = len(servers.bank.api_requests())
    response = one_turn(api, harness, '/tool pay__bank__getBalance {"accountId": "acc-003"}')
    items = response.items()
    (use,) = tool_uses(items)
    assert use["type"] == "server_tool_use" and use["serverName"] == "pay"
    ((status, content),) = tool_results(items)
    assert status == "success"
    assert content[0]["json"]["accountId"] == "acc-003"
    (request,) = servers.bank.api_requests()[before:]
    assert request.headers["x-api-key"] == servers.bank_key
    # The key went to the bank, and nowhere into what the deployment stored.
    leaks = [where for where, text in everything_stored(aws) if servers.bank_key in text]
    assert leaks == []
    assert servers.bank_key not in response.raw_body.decode("utf-8", errors="replace")


def test_allowed_tools_hide_and_refuse_tools_outside_the_set(
    api: Api, aws: Any, names: dict[str, str], servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers), allowedTools=["@advisor", "@pay/bank__getBalance"])
    session, actor = new_session_id(), unique_name()
    calls_before = servers.advisor.calls["fx_rate"]
    # The invocation narrows to one advisor tool; the model calls another one anyway.
    response = api.invoke(
        harness["harnessId"],
        '/tool advisor__fx_rate {"base": "EUR", "quote": "USD"}',
        session_id=session,
        actor_id=actor,
        extra={"allowedTools": ["@advisor/market_note"]},
    )
    items = response.items()
    ((status, content),) = tool_results(items)
    assert status == "error" and "not available to this invocation" in content[0]["text"]
    assert servers.advisor.calls["fx_rate"] == calls_before  # never reached the server
    record = audit_record(aws, names, f"invocations/{harness['harnessId']}/{invocation_id_of(response)}.json")
    assert len(record["refusedToolCalls"]) == 1
    # A tool the harness does not allow cannot be reached by naming it in the invocation.
    response = api.invoke(
        harness["harnessId"],
        '/tool pay__bank__createTransfer {"body": {"fromAccount": "acc-001", "toAccount": "acc-002", '
        '"amount": 1, "currency": "EUR"}}',
        session_id=new_session_id(),
        actor_id=actor,
        extra={"allowedTools": ["*"]},
    )
    ((status, content),) = tool_results(response.items())
    assert status == "error" and "not available" in content[0]["text"]


def transfer_command(amount: float, reference: str) -> str:
    body = {
        "fromAccount": "acc-001",
        "toAccount": "acc-002",
        "amount": amount,
        "currency": "EUR",
        "reference": reference,
    }
    return "/tool pay__bank__createTransfer " + json.dumps({"body": body})


def approval_answer(tool_use_id: str, decision: str, reason: str) -> list[dict[str, Any]]:
    result = {
        "toolUseId": tool_use_id,
        "status": "success",
        "content": [{"json": {"decision": decision, "reason": reason}}],
    }
    return [{"role": "user", "content": [{"toolResult": result}]}]


def test_a_transfer_above_the_threshold_waits_for_approval_which_is_audited_before_it_runs(
    api: Api, aws: Any, names: dict[str, str], servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers))
    session, actor = new_session_id(), unique_name()
    executed = servers.bank.executed_transfers
    paused = api.invoke(
        harness["harnessId"],
        transfer_command(THRESHOLD + 200, "approve-me"),
        session_id=session,
        actor_id=actor,
    )
    items = paused.items()
    assert stop_reasons(items)[-1] == "tool_use"
    (use,) = tool_uses(items)
    (notice,) = [item["hookEvent"] for item in items if "hookEvent" in item]
    assert notice["name"] == "approval" and notice["type"] == "before_tool_call"
    assert use["toolUseId"] in notice["reason"] and "body.amount" in notice["reason"]
    assert "decision" not in notice
    assert servers.bank.executed_transfers == executed  # nothing ran yet

    # An answer that is not a decision is refused and changes nothing.
    bad = api.invoke(
        harness["harnessId"],
        [
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "ok"}]}}],
            }
        ],
        session_id=session,
        actor_id=actor,
    )
    assert bad.status == 400 and "approval" in bad.json["message"]

    # The principal that started the turn cannot approve its own transfer.
    own = api.invoke(
        harness["harnessId"],
        approval_answer(use["toolUseId"], "approve", "Looks fine to me"),
        session_id=session,
        actor_id=actor,
    )
    assert own.status == 403 and "second principal" in own.json["message"]
    assert servers.bank.executed_transfers == executed

    resumed = api.invoke(
        harness["harnessId"],
        approval_answer(use["toolUseId"], "approve", "Verified with the customer by phone"),
        session_id=session,
        actor_id=actor,
        caller=APPROVER_ARN,
    )
    items = resumed.items()
    ((status, content),) = tool_results(items)
    assert status == "success" and content[0]["json"]["status"] == "executed"
    assert stop_reasons(items)[-1] == "end_turn"
    assert servers.bank.executed_transfers == executed + 1
    invocation_id = invocation_id_of(paused)
    approval = audit_record(
        aws, names, f"approvals/{harness['harnessId']}/{invocation_id}/{use['toolUseId']}.json"
    )
    assert approval["decision"] == "approved"
    assert approval["approver"] == APPROVER_ARN and approval["requestedBy"] == CALLER_ARN
    assert approval["reason"] == "Verified with the customer by phone"
    assert approval["tool"] == "pay__bank__createTransfer"
    # The approval was locked away before the transfer's request reached the bank.
    versions = aws.s3.list_object_versions(
        Bucket=names["audit_bucket"], Prefix=f"approvals/{harness['harnessId']}/{invocation_id}/"
    )["Versions"]
    transfer_request = [r for r in servers.bank.api_requests() if r.path == "/transfers"][-1]
    assert min(v["LastModified"].timestamp() for v in versions) <= transfer_request.received_at + 1
    closing = audit_record(aws, names, f"invocations/{harness['harnessId']}/{invocation_id}.json")
    assert closing["requestedBy"] == CALLER_ARN
    assert closing["approvals"] == [use["toolUseId"]]
    assert [c["tool"] for c in closing["toolCalls"]] == ["pay__bank__createTransfer"]


def test_a_rejected_transfer_never_runs_and_the_model_is_told_why(
    api: Api, aws: Any, names: dict[str, str], servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers))
    session, actor = new_session_id(), unique_name()
    executed = servers.bank.executed_transfers
    paused = api.invoke(
        harness["harnessId"], transfer_command(THRESHOLD * 5, "reject-me"), session_id=session, actor_id=actor
    )
    (use,) = tool_uses(paused.items())
    resumed = api.invoke(
        harness["harnessId"],
        approval_answer(use["toolUseId"], "reject", "Payee is not on the customer's list"),
        session_id=session,
        actor_id=actor,
        caller=APPROVER_ARN,
    )
    items = resumed.items()
    assert "returned an error" in text_of(items) and "Payee is not on the customer's list" in text_of(items)
    assert servers.bank.executed_transfers == executed
    approval = audit_record(
        aws, names, f"approvals/{harness['harnessId']}/{invocation_id_of(paused)}/{use['toolUseId']}.json"
    )
    assert approval["decision"] == "rejected"


def test_a_small_transfer_runs_without_approval_exactly_once(
    api: Api, deployment: Deployment, servers: ToolServers
) -> None:
    from handlers.dependencies import agent_loop

    harness = api.create_harness(tools=tools(servers))
    session, actor = new_session_id(), unique_name()
    executed = servers.bank.executed_transfers
    response = api.invoke(
        harness["harnessId"], transfer_command(5, "small"), session_id=session, actor_id=actor
    )
    items = response.items()
    ((status, _),) = tool_results(items)
    assert status == "success"
    assert servers.bank.executed_transfers == executed + 1
    # Step Functions retries RunTool (for example after a Lambda service error): the call does not
    # run again and its result stays what the model saw.
    (use,) = tool_uses(items)
    invocation_id = invocation_id_of(response)
    ids = {
        "invocationId": invocation_id,
        "actorId": actor,
        "sessionId": session,
        "harnessId": harness["harnessId"],
        "harnessVersion": 1,
    }
    again = agent_loop().run_tool(ids, use["toolUseId"])
    assert again == {"toolUseId": use["toolUseId"], "status": "success"}
    assert servers.bank.executed_transfers == executed + 1


def test_a_failing_target_is_a_tool_error_not_a_failed_invocation(
    api: Api, aws: Any, names: dict[str, str], servers: ToolServers, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = api.create_harness(tools=tools(servers))
    servers.bank.fail_next(10, status=503)
    try:
        response = api.invoke(
            harness["harnessId"],
            '/tool pay__bank__getBalance {"accountId": "acc-001"}',
            session_id=new_session_id(),
            actor_id=unique_name(),
        )
    finally:
        servers.bank.fail_next(0)
    items = response.items()
    ((status, content),) = tool_results(items)
    assert status == "error"
    assert "getBalance" in content[0]["text"] or "503" in json.dumps(content)
    assert stop_reasons(items)[-1] == "end_turn"
    described = wait_for_execution(
        aws.stepfunctions, execution_arn(names["state_machine_arn"], invocation_id_of(response))
    )
    assert described["status"] == "SUCCEEDED"
    # Operators see it as a metric of failed tool calls, by tool type.
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ToolCall"' in line]
    assert any(m["ToolType"] == "agentcore_gateway" and m["Status"] == "error" for m in emf)


def test_an_unreachable_mcp_server_costs_only_its_own_tools(api: Api, servers: ToolServers) -> None:
    gone = {"type": "remote_mcp", "name": "gone", "config": {"remoteMcp": {"url": "http://127.0.0.1:9/mcp"}}}
    harness = api.create_harness(tools=[*tools(servers), gone])
    response = one_turn(api, harness, '/tool advisor__market_note {"topic": "rates"}')
    ((status, _),) = tool_results(response.items())
    assert status == "success"


def test_parallel_calls_of_one_turn_return_in_the_model_order(api: Api, servers: ToolServers) -> None:
    harness = api.create_harness(tools=tools(servers))
    command = "\n".join(
        [
            '/tool advisor__long_report {"paragraphs": 3}',
            '/tool pay__bank__getBalance {"accountId": "acc-002"}',
            '/tool advisor__fx_rate {"base": "EUR", "quote": "GBP"}',
        ]
    )
    response = api.invoke(harness["harnessId"], command, session_id=new_session_id(), actor_id=unique_name())
    items = response.items()
    uses = tool_uses(items)
    assert [u["name"] for u in uses] == ["advisor__long_report", "pay__bank__getBalance", "advisor__fx_rate"]
    # The model's answer lists the results in its own call order.
    answer = text_of(items).split("Tool ")[1:]
    assert [part.split(" ")[0] for part in answer][-3:] == [u["name"] for u in uses]


def test_a_large_result_is_kept_in_s3_under_the_actor_and_cut_for_the_model(
    api: Api, aws: Any, names: dict[str, str], servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers))
    actor = unique_name()
    response = api.invoke(
        harness["harnessId"],
        '/tool advisor__long_report {"paragraphs": 400}',
        session_id=new_session_id(),
        actor_id=actor,
    )
    items = response.items()
    ((status, content),) = tool_results(items)
    assert status == "success"
    (block,) = content
    assert "[Result truncated: showing 16000 of" in block["text"]
    listed = aws.s3.list_objects_v2(Bucket=names["artifact_bucket"], Prefix=f"actors/{actor}/tool-results/")
    (stored,) = listed["Contents"]
    whole = aws.s3.get_object(Bucket=names["artifact_bucket"], Key=stored["Key"])
    assert len(whole["Body"].read()) > 32 * 1024
    assert whole["ServerSideEncryption"] == "aws:kms"
    # Encrypted by the bucket's default: the stack's customer-managed key.
    (rule,) = aws.s3.get_bucket_encryption(Bucket=names["artifact_bucket"])[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # Erasure removes it with the rest of the actor's data.
    assert api.erase(actor).status == 200
    assert (
        aws.s3.list_objects_v2(Bucket=names["artifact_bucket"], Prefix=f"actors/{actor}/").get("KeyCount")
        == 0
    )


def test_a_gateway_lambda_target_is_invoked_with_the_input_and_idempotency_key(
    api: Api, servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers))
    response = one_turn(api, harness, '/tool pay__fx__convert {"amount": 100, "to": "USD"}')
    items = response.items()
    ((status, content),) = tool_results(items)
    assert status == "success" and content == [{"json": {"amount": 108.0, "currency": "USD"}}]
    (use,) = tool_uses(items)
    event = FX_CALLS[-1]
    assert event["tool"] == "convert" and event["input"] == {"amount": 100, "to": "USD"}
    assert event["idempotencyKey"] == f"{invocation_id_of(response)}:{use['toolUseId']}"
    # A function error reaches the model as its kind, never its message.
    failed = one_turn(api, harness, '/tool pay__fx__convert {"amount": 1, "to": "XXX"}')
    ((status, content),) = tool_results(failed.items())
    assert status == "error" and "hunter2" not in json.dumps(content)


def test_arguments_that_fail_a_server_tools_schema_never_reach_it(api: Api, servers: ToolServers) -> None:
    harness = api.create_harness(tools=tools(servers))
    calls = len(FX_CALLS)
    response = one_turn(api, harness, '/tool pay__fx__convert {"amount": "a lot", "to": "USD"}')
    items = response.items()
    assert "at amount" in text_of(items) and "is not of type 'number'" in text_of(items)
    assert len(FX_CALLS) == calls


def test_a_published_mcp_server_behind_a_stdio_proxy_works_as_a_remote_mcp_tool(api: Api) -> None:
    with time_server_over_http() as url:
        clock = {"type": "remote_mcp", "name": "clock", "config": {"remoteMcp": {"url": url}}}
        harness = api.create_harness(tools=[clock])
        arguments = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        response = api.invoke(
            harness["harnessId"],
            "/tool clock__convert_time " + json.dumps(arguments),
            session_id=new_session_id(),
            actor_id=unique_name(),
        )
    items = response.items()
    ((status, content),) = tool_results(items)
    assert status == "success"
    assert "21:00" in json.dumps(content)


def test_a_transfer_whose_answer_is_lost_is_retried_and_still_runs_once(
    api: Api, servers: ToolServers
) -> None:
    harness = api.create_harness(tools=tools(servers))
    executed = servers.bank.executed_transfers
    # The bank makes the transfer, then answers after the target's 2 s timeout: the gateway retries
    # with the same Idempotency-Key and the bank replays the first transfer instead of a second one.
    servers.bank.delay_next(1, 3.0)
    response = one_turn(api, harness, transfer_command(7, "lost-answer"))
    ((status, content),) = tool_results(response.items())
    assert status == "success" and content[0]["json"]["status"] == "executed"
    assert servers.bank.executed_transfers == executed + 1
    posts = [r for r in servers.bank.api_requests() if r.path == "/transfers"][-2:]
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]


def test_an_invocation_cannot_add_or_rename_a_tool_server(api: Api, servers: ToolServers) -> None:
    harness = api.create_harness(tools=tools(servers), allowedTools=["@advisor", "@pay/bank__getBalance"])
    executed = servers.bank.executed_transfers
    # Renamed to a name the harness allows, the gateway would offer its transfers as advisor__*.
    renamed = {
        "type": "agentcore_gateway",
        "name": "advisor",
        "config": {"agentCoreGateway": {"gatewayArn": GATEWAY_ARN}},
    }
    elsewhere = {"type": "remote_mcp", "name": "advisor", "config": {"remoteMcp": {"url": servers.bank.url}}}
    for override in ([renamed], [elsewhere]):
        response = api.invoke(
            harness["harnessId"],
            transfer_command(5, "renamed").replace("pay__", "advisor__"),
            session_id=new_session_id(),
            actor_id=unique_name(),
            extra={"tools": override},
        )
        assert response.status == 400, response.raw_body
        assert response.json["fieldList"][0]["name"] == "tools[0]"
    assert servers.bank.executed_transfers == executed
    # The harness's own entries, unchanged, are a valid narrowing.
    narrowed = api.invoke(
        harness["harnessId"],
        '/tool advisor__market_note {"topic": "rates"}',
        session_id=new_session_id(),
        actor_id=unique_name(),
        extra={"tools": tools(servers)[:1]},
    )
    ((status, _),) = tool_results(narrowed.items())
    assert status == "success"


def test_a_tool_list_too_large_for_the_invocation_costs_only_that_server(
    api: Api, aws: Any, names: dict[str, str], servers: ToolServers
) -> None:
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.lowlevel.server import ServerRequestContext

    from local_runtime.demo_mcp import BackgroundMcpServer

    # 400 tools with 1 KB descriptions: more than one invocation's tool list may hold.
    listed = [
        types.Tool(name=f"tool_{n}", description="d" * 1000, input_schema={"type": "object"})
        for n in range(400)
    ]

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    app = Server("big", on_list_tools=on_list_tools).streamable_http_app()
    with BackgroundMcpServer(app).start() as big:
        entry = {"type": "remote_mcp", "name": "big", "config": {"remoteMcp": {"url": big.url}}}
        harness = api.create_harness(tools=[*tools(servers), entry])
        response = one_turn(api, harness, '/tool advisor__market_note {"topic": "rates"}')
    ((status, _),) = tool_results(response.items())
    assert status == "success"
    record = audit_record(aws, names, f"invocations/{harness['harnessId']}/{invocation_id_of(response)}.json")
    assert record["unavailableToolServers"] == ["big"]
