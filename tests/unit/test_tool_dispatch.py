"""The dispatcher against real servers on 127.0.0.1: listing tool servers, calling MCP tools with
vault-held headers, gateway OpenAPI, Lambda and MCP targets, approval policies, and failures
that become tool errors instead of exceptions."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server.mcpserver import Context

from harness.gateway import Gateways, gateway_arn
from harness.providers.base import ModelRequestError
from harness.tools.dispatch import ToolDispatcher
from harness.tools.registry import Toolset
from local_runtime import demo_bank, demo_mcp
from local_runtime.demo_bank import DemoBank
from local_runtime.demo_mcp import AdvisorServer
from stacks.app_factory import REPO_ROOT

TOKEN_ARN = (
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:token-vault/advisor/apikeycredentialprovider/default"
)
FX_ARN = "arn:aws:lambda:us-east-1:123456789012:function:harness-fx"
ARN = gateway_arn("payments", "us-east-1", "123456789012")
TOKEN = "advisor-token-for-tests"
BANK_KEY = "bank-key-for-tests"


@pytest.fixture(scope="module")
def advisor() -> Iterator[AdvisorServer]:
    with demo_mcp.serve(required_bearer=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bank() -> Iterator[DemoBank]:
    with demo_bank.serve(api_key=BANK_KEY) as server:
        yield server


class LambdaStub:
    """Stands in for Lambda's Invoke (the AWS call itself is covered by the integration tests)."""

    def __init__(self, answer: Any, function_error: str | None = None) -> None:
        self.answer = answer
        self.function_error = function_error
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def __call__(self, arn: str, payload: bytes, timeout: float) -> dict[str, Any]:
        self.calls.append((arn, json.loads(payload), timeout))
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


def gateways(bank: DemoBank, advisor: AdvisorServer) -> Gateways:
    config = {
        "payments": {
            "targets": [
                {
                    "name": "bank",
                    "openApi": {"schemaPath": "local_runtime/demo_bank.openapi.json", "baseUrl": bank.url},
                    "auth": {"apiKey": {"secret": "bank", "parameterName": "X-Api-Key"}},
                    "timeoutSeconds": 2,
                    "approvals": [
                        {
                            "tool": "createTransfer",
                            "when": {"field": "body.amount", "op": "gt", "value": 10000},
                            "reason": "big",
                        }
                    ],
                },
                {
                    "name": "fx",
                    "lambda": {
                        "functionArn": FX_ARN,
                        "tools": [
                            {"name": "convert", "description": "convert", "inputSchema": {"type": "object"}}
                        ],
                    },
                    "timeoutSeconds": 3,
                },
                {
                    "name": "advice",
                    "mcp": {"url": advisor.url},
                    "auth": {
                        "apiKey": {"secret": "advisor", "parameterName": "Authorization", "prefix": "Bearer "}
                    },
                },
            ]
        }
    }
    return Gateways.parse(config, REPO_ROOT)


def dispatcher(
    bank: DemoBank,
    advisor: AdvisorServer,
    invoker: LambdaStub | None = None,
    keys: dict[str, str] | None = None,
) -> ToolDispatcher:
    secrets = {"bank": BANK_KEY, "advisor": TOKEN}

    def api_key(arn: str, url: str | None) -> str:
        if arn not in (keys or {}):
            raise ModelRequestError(f"the credential named by apiKeyArn {arn} was not found in the vault")
        return (keys or {})[arn]

    return ToolDispatcher(
        gateways(bank, advisor),
        secrets=secrets.__getitem__,
        api_key=api_key,
        invoke_lambda=invoker or LambdaStub({}),
    )


def remote(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"url": url} | ({"headers": headers} if headers else {})
    return {"type": "remote_mcp", "name": "advisor", "config": {"remoteMcp": config}}


GATEWAY_TOOL = {
    "type": "agentcore_gateway",
    "name": "pay",
    "config": {"agentCoreGateway": {"gatewayArn": ARN}},
}


def toolset(dispatch: ToolDispatcher, definitions: list[dict[str, Any]]) -> tuple[Toolset, dict[str, str]]:
    servers = Toolset.for_invocation(definitions, None, None).servers
    catalog, problems = dispatch.discover(servers)
    return Toolset.for_invocation(definitions, None, None, catalog), problems


def test_a_vault_header_reaches_the_mcp_server_and_its_tools_are_listed(
    bank: DemoBank, advisor: AdvisorServer
) -> None:
    dispatch = dispatcher(bank, advisor, keys={TOKEN_ARN: TOKEN})
    tools, problems = toolset(dispatch, [remote(advisor.url, {"Authorization": f"Bearer {TOKEN_ARN}"})])
    assert problems == {}
    assert {"advisor__fx_rate", "advisor__market_note", "advisor__long_report"} <= set(tools.tools)
    entry = tools.entry("advisor__fx_rate")
    assert entry is not None
    result = dispatch.call(entry, {"base": "EUR", "quote": "USD"}, "inv:tooluse_1")
    assert not result.is_error and any("json" in block for block in result.content)
    assert advisor.meta_by_tool["fx_rate"][-1].get("idempotencyKey") == "inv:tooluse_1"


def test_a_server_that_refuses_or_a_key_the_vault_refuses_costs_only_that_server(
    bank: DemoBank, advisor: AdvisorServer
) -> None:
    dispatch = dispatcher(bank, advisor)  # the vault has no key for TOKEN_ARN
    definitions = [remote(advisor.url, {"Authorization": f"Bearer {TOKEN_ARN}"}), GATEWAY_TOOL]
    tools, problems = toolset(dispatch, definitions)
    assert set(problems) == {"advisor"} and "not found in the vault" in problems["advisor"]
    assert TOKEN not in problems["advisor"]
    assert "pay__bank__getBalance" in tools.tools
    # Without any header the server answers 401: listed as unavailable, the message has no secret.
    _, problems = toolset(dispatch, [remote(advisor.url)])
    assert "401" in problems["advisor"]


def test_gateway_targets_offer_openapi_lambda_and_mcp_tools(bank: DemoBank, advisor: AdvisorServer) -> None:
    invoker = LambdaStub({"converted": 108.0})
    dispatch = dispatcher(bank, advisor, invoker)
    tools, problems = toolset(dispatch, [GATEWAY_TOOL])
    assert problems == {}
    assert {"pay__bank__getBalance", "pay__fx__convert", "pay__advice__fx_rate"} <= set(tools.tools)

    balance = dispatch.call(tools.tools["pay__bank__getBalance"], {"accountId": "acc-001"}, "inv:t1")
    assert not balance.is_error and balance.content[0]["json"]["accountId"] == "acc-001"
    assert bank.api_requests()[-1].headers["x-api-key"] == BANK_KEY

    converted = dispatch.call(tools.tools["pay__fx__convert"], {"amount": 100}, "inv:t2")
    assert converted.content == [{"json": {"converted": 108.0}}] and not converted.is_error
    ((arn, payload, timeout),) = invoker.calls
    assert arn == FX_ARN and timeout == 3
    assert payload == {"tool": "convert", "input": {"amount": 100}, "idempotencyKey": "inv:t2"}

    advice = dispatch.call(tools.tools["pay__advice__market_note"], {"topic": "rates"}, "inv:t3")
    assert not advice.is_error and advice.content[0]["text"]


def test_errors_of_targets_are_tool_errors_with_no_internals(bank: DemoBank, advisor: AdvisorServer) -> None:
    dispatch = dispatcher(bank, advisor, LambdaStub({"errorMessage": "db password is hunter2"}, "Unhandled"))
    tools, _ = toolset(dispatch, [GATEWAY_TOOL])
    failed = dispatch.call(tools.tools["pay__fx__convert"], {}, "inv:t4")
    assert failed.is_error and "Unhandled" in failed.content[0]["text"]
    assert "hunter2" not in json.dumps(failed.content)

    missing = dispatch.call(tools.tools["pay__bank__getBalance"], {"accountId": "nope"}, "inv:t5")
    assert missing.is_error and "HTTP 404" in missing.content[0]["text"]

    bank.fail_next(10, status=503)
    try:
        down = dispatch.call(tools.tools["pay__bank__listAccounts"], {}, "inv:t6")
    finally:
        bank.fail_next(0)
    assert down.is_error and "listAccounts" in down.content[0]["text"]
    assert BANK_KEY not in json.dumps(down.content)


def test_approval_policies_apply_to_the_gateway_tool_they_name(
    bank: DemoBank, advisor: AdvisorServer
) -> None:
    dispatch = dispatcher(bank, advisor)
    tools, _ = toolset(dispatch, [GATEWAY_TOOL])
    transfer = tools.tools["pay__bank__createTransfer"]
    big = {"body": {"fromAccount": "acc-001", "toAccount": "acc-002", "amount": 20000, "currency": "EUR"}}
    small = {"body": big["body"] | {"amount": 20}}
    reason = dispatch.approval_reason(transfer, big)
    assert reason is not None and "body.amount" in reason and "big" in reason
    assert dispatch.approval_reason(transfer, small) is None
    assert dispatch.approval_reason(tools.tools["pay__bank__getBalance"], {"accountId": "acc-001"}) is None


def test_one_circuit_per_gateway_target_whatever_the_entry_is_called(
    bank: DemoBank, advisor: AdvisorServer
) -> None:
    dispatch = dispatcher(bank, advisor)
    first = dict(GATEWAY_TOOL)
    second = GATEWAY_TOOL | {"name": "pay2"}
    tools, _ = toolset(dispatch, [first, second])
    bank.fail_next(100, status=503)
    try:
        for n in range(3):
            failed = dispatch.call(tools.tools["pay__bank__listAccounts"], {}, f"inv:c{n}")
            assert failed.is_error
        before = len(bank.requests)
        refused = dispatch.call(tools.tools["pay2__bank__listAccounts"], {}, "inv:c9")
    finally:
        bank.fail_next(0)
    assert refused.is_error and len(bank.requests) == before  # refused without a request


def _server(name: str) -> Any:
    """An MCPServer built without touching the test process's logging (its constructor would)."""
    import logging

    from mcp.server.mcpserver import MCPServer

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer(name, log_level="WARNING")
    root.handlers[:] = handlers
    root.setLevel(level)
    return server


def test_a_credential_the_server_echoes_is_redacted_from_the_result(
    bank: DemoBank, advisor: AdvisorServer
) -> None:
    from local_runtime.demo_mcp import BackgroundMcpServer

    echo = _server("echo")

    @echo.tool(description="Says what the caller sent", structured_output=False)
    def whoami(ctx: Context) -> str:
        return f"you sent {(ctx.headers or {}).get('authorization')}"

    with BackgroundMcpServer(echo.streamable_http_app(host="127.0.0.1")).start() as server:
        dispatch = dispatcher(bank, advisor, keys={TOKEN_ARN: TOKEN})
        tools, problems = toolset(dispatch, [remote(server.url, {"Authorization": f"Bearer {TOKEN_ARN}"})])
        assert problems == {}
        result = dispatch.call(tools.tools["advisor__whoami"], {}, "inv:e1")
    assert result.content == [{"text": "you sent [redacted]"}]
    assert TOKEN not in json.dumps(result.content)


def _listing_server(tools: list[Any]) -> Any:
    """A low-level SDK server that lists ``tools`` (and answers no calls)."""
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.lowlevel.server import ServerRequestContext

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    return Server("listing", on_list_tools=on_list_tools).streamable_http_app()


def test_server_tools_with_unusable_schemas_are_left_out(bank: DemoBank, advisor: AdvisorServer) -> None:
    import mcp_types as types

    from local_runtime.demo_mcp import BackgroundMcpServer

    listed = [
        types.Tool(name="good", description="fine", input_schema={"type": "object"}),
        types.Tool(name="bad", description="broken", input_schema={"type": "object", "minLength": "3"}),
    ]
    with BackgroundMcpServer(_listing_server(listed)).start() as server:
        tools, problems = toolset(dispatcher(bank, advisor), [remote(server.url)])
    assert problems == {}
    assert "advisor__good" in tools.tools and "advisor__bad" not in tools.tools


def test_a_gateway_mcp_targets_credential_echoed_back_is_redacted() -> None:
    from local_runtime.demo_mcp import BackgroundMcpServer

    echo = _server("echo")

    @echo.tool(description="Says what the caller sent", structured_output=False)
    def whoami(ctx: Context) -> str:
        return f"you sent {(ctx.headers or {}).get('authorization')}"

    with BackgroundMcpServer(echo.streamable_http_app(host="127.0.0.1")).start() as server:
        config = {
            "payments": {
                "targets": [
                    {
                        "name": "echo",
                        "mcp": {"url": server.url},
                        "auth": {
                            "apiKey": {
                                "secret": "echo",
                                "parameterName": "Authorization",
                                "prefix": "Bearer ",
                            }
                        },
                    }
                ]
            }
        }
        dispatch = ToolDispatcher(
            Gateways.parse(config, REPO_ROOT),
            secrets={"echo": TOKEN}.__getitem__,
            api_key=lambda arn, url: "",
            invoke_lambda=LambdaStub({}),
        )
        tools, problems = toolset(dispatch, [GATEWAY_TOOL])
        assert problems == {}
        result = dispatch.call(tools.tools["pay__echo__whoami"], {}, "inv:g1")
    assert result.content == [{"text": "you sent Bearer [redacted]"}]
