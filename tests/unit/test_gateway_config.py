"""The deployment's gateways: ``harness:gateways`` parsed once, the same way at synth and at run time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.gateway import GatewayConfigError, Gateways, bundle, gateway_arn, gateway_id, gateway_id_of_arn
from stacks.app_factory import REPO_ROOT

BANK_DOCUMENT = "local_runtime/demo_bank.openapi.json"
FX_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:harness-fx"


def bank_target(base_url: str | None = None, **extra: Any) -> dict[str, Any]:
    spec = {"schemaPath": BANK_DOCUMENT} | ({"baseUrl": base_url} if base_url else {})
    return {"name": "bank", "openApi": spec, **extra}


def fx_target(**extra: Any) -> dict[str, Any]:
    tools = [{"name": "convert", "description": "convert an amount", "inputSchema": {"type": "object"}}]
    return {"name": "fx", "lambda": {"functionArn": FX_ARN, "tools": tools}, **extra}


def parse(config: dict[str, Any]) -> Gateways:
    return Gateways.parse(config, REPO_ROOT)


def test_openapi_operations_and_lambda_tools_become_gateway_tools() -> None:
    gateways = parse({"payments": {"targets": [bank_target(), fx_target()]}})
    (gateway,) = gateways.by_id.values()
    assert gateway.name == "payments"
    assert set(gateway.targets["bank"].tools) == {"listAccounts", "getBalance", "createTransfer"}
    assert set(gateway.targets["fx"].tools) == {"convert"}
    # The document's servers[0] is the base URL when the target names none.
    assert gateway.targets["bank"].url == "http://127.0.0.1:8001"
    target, tool = gateway.split("bank__createTransfer") or (None, None)
    assert target is not None and target.name == "bank" and tool == "createTransfer"
    assert gateway.split("nowhere__x") is None and gateway.split("bank") is None


def test_gateway_arns_follow_the_contract_pattern() -> None:
    arn = gateway_arn("payments", "eu-west-1", "123456789012")
    assert arn == f"arn:aws:bedrock-agentcore:eu-west-1:123456789012:gateway/{gateway_id('payments')}"
    assert gateway_id("payments") == gateway_id("payments") != gateway_id("payment")
    assert gateway_id_of_arn(arn) == gateway_id("payments")
    gateways = parse({"payments": {"targets": [bank_target()]}})
    assert gateways.by_arn(arn) is not None
    assert gateways.arns("eu-west-1", "123456789012") == {arn: "payments"}
    assert gateways.by_arn(arn.replace("payments", "other")) is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "must be an object"),
        ({"Payments": {"targets": [bank_target()]}}, "lowercase letters"),
        ({"payments": {"targets": []}}, "non-empty list 'targets'"),
        ({"payments": {"targets": [bank_target(), bank_target()]}}, "used twice"),
        ({"payments": {"targets": [{"name": "x"}]}}, "exactly one of openApi, lambda, mcp"),
        ({"payments": {"targets": [bank_target(name="a__b")]}}, "'name' must be"),
        (
            {"payments": {"targets": [{"name": "bank", "openApi": {"schemaPath": "nope.json"}}]}},
            "cannot be read",
        ),
        (
            {"payments": {"targets": [{"name": "docs", "mcp": {"url": "http://docs.example.com/mcp"}}]}},
            "https://",
        ),
        (
            {"payments": {"targets": [{"name": "fx", "lambda": {"functionArn": "fx", "tools": []}}]}},
            "function ARN",
        ),
        (
            {"payments": {"targets": [{"name": "fx", "lambda": {"functionArn": FX_ARN}}]}},
            "must list the tools",
        ),
        ({"payments": {"targets": [bank_target(timeoutSeconds=-1)]}}, "timeoutSeconds"),
        (
            {"payments": {"targets": [bank_target(timeoutSeconds=100, maxAttempts=3)]}},
            "a call must fit 240 s",
        ),
        ({"payments": {"targets": [bank_target(baseUrl="https://x.example.com")]}}, "unknown key(s) baseUrl"),
        ({"payments": {"targets": [bank_target(auth={"apiKey": {}})]}}, "auth.apiKey"),
        (
            {
                "payments": {
                    "targets": [
                        bank_target(approvals=[{"tool": "wire", "when": {"always": True}, "reason": "r"}])
                    ]
                }
            },
            "matches no tool",
        ),
        (
            {
                "payments": {
                    "targets": [bank_target(approvals=[{"tool": "createTransfer", "when": {"op": "gt"}}])]
                }
            },
            "approval",
        ),
    ],
)
def test_a_bad_gateway_configuration_is_explained(config: Any, message: str) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        parse(config)
    assert message in str(raised.value)


def test_the_bundled_file_carries_the_documents_and_parses_without_the_repository(tmp_path: Path) -> None:
    config = {"payments": {"targets": [bank_target("https://bank.example.com")]}}
    bundled = bundle(config, REPO_ROOT)
    target = bundled["payments"]["targets"][0]
    assert "schemaPath" not in target["openApi"] and target["openApi"]["schema"]["openapi"].startswith("3.")
    # The stack's context is not changed by bundling.
    assert config["payments"]["targets"][0]["openApi"] == {
        "schemaPath": BANK_DOCUMENT,
        "baseUrl": "https://bank.example.com",
    }
    path = tmp_path / "gateways.json"
    path.write_text(json.dumps(bundled))
    gateways = Gateways.load(str(path))
    (gateway,) = gateways.by_id.values()
    assert gateway.targets["bank"].url == "https://bank.example.com"
    assert Gateways.load("").by_id == {}
