"""Tool gateways and hooks in the stack: the configuration the functions read is the context's,
bundled with the code; grants cover exactly the gateway's Lambda targets and the hook naming scope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.gateway import gateway_arn
from stacks.settings import HarnessSettings, SettingsError

from .synthesis import OVERRIDES, Synthesized

HOOK_STEPS = {
    "LoadContextFunction",
    "AuthorizeToolCallsFunction",
    "RunToolFunction",
    "FinalizeFunction",
    "RecordFailureFunction",
}


def _statements(synthesized: Synthesized, function: str) -> list[dict[str, Any]]:
    role = synthesized.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _resources_for(synthesized: Synthesized, function: str, action: str) -> list[Any]:
    found = []
    for statement in _statements(synthesized, function):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action in actions:
            resources = statement["Resource"]
            found.extend(resources if isinstance(resources, list) else [resources])
    return found


def _joined(value: Any) -> str:
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(
            part if isinstance(part, str) else f"<{next(iter(part.values()))}>"
            for part in value["Fn::Join"][1]
        )
    return str(value)


@pytest.mark.parametrize(
    ("configuration", "prefix"), [("synthesized", "harness-hook-"), ("overridden", "bank-hooks-")]
)
def test_hook_targets_are_granted_only_within_the_naming_scope(
    request: pytest.FixtureRequest, configuration: str, prefix: str
) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    functions = {k for k, v in synthesized.resources.items() if v["Type"] == "AWS::Lambda::Function"}
    for function in functions:
        invoke = [_joined(r) for r in _resources_for(synthesized, function, "lambda:InvokeFunction")]
        publish = [_joined(r) for r in _resources_for(synthesized, function, "sns:Publish")]
        put = [_joined(r) for r in _resources_for(synthesized, function, "events:PutEvents")]
        if function in HOOK_STEPS:
            assert any(r.endswith(f":function:{prefix}*") for r in invoke), function
            assert publish == [f"arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:{prefix}*"], function
            assert put == [
                f"arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/{prefix}*"
            ], function
        else:
            assert invoke == publish == put == [], function
        env = synthesized.resources[function]["Properties"]["Environment"]["Variables"]
        if function in HOOK_STEPS or function == "ApiFunction":
            assert env["HOOK_TARGET_PREFIX"] == prefix


def test_only_the_tool_step_may_invoke_the_gateways_lambda_targets(overridden: Synthesized) -> None:
    target = "arn:aws:lambda:eu-west-1:111122223333:function:fx-rates"
    holders = {
        function
        for function, resource in overridden.resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
        and target in _resources_for(overridden, function, "lambda:InvokeFunction")
    }
    assert holders == {"RunToolFunction"}


def test_the_gateway_configuration_is_bundled_with_the_code(overridden: Synthesized) -> None:
    function = overridden.resources["RunToolFunction"]["Properties"]
    assert function["Environment"]["Variables"]["GATEWAY_CONFIG_FILE"] == "gateways.json"
    asset = json.loads((overridden.outdir / "AgentHarness.assets.json").read_text())
    source = asset["files"][function["Code"]["S3Key"].removesuffix(".zip")]["source"]["path"]
    bundled = json.loads((overridden.outdir / source / "gateways.json").read_text())
    bank = bundled["payments"]["targets"][0]
    assert bank["openApi"]["schema"]["paths"]["/transfers"]["post"]["operationId"] == "createTransfer"
    assert "schemaPath" not in bank["openApi"]
    assert bank["approvals"] == OVERRIDES["harness:gateways"]["payments"]["targets"][0]["approvals"]


def test_each_gateway_arn_is_a_stack_output(overridden: Synthesized, synthesized: Synthesized) -> None:
    outputs = overridden.template_json["Outputs"]
    arn = _joined(outputs["GatewayArnPayments"]["Value"])
    assert arn == gateway_arn("payments", "<AWS::Region>", "<AWS::AccountId>", "<AWS::Partition>")
    assert not any(name.startswith("GatewayArn") for name in synthesized.template_json["Outputs"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"gateways": {"payments": {"targets": [{"name": "x", "mcp": {"url": "http://x.example.com"}}]}}},
            "https://",
        ),
        ({"gateways": {"Pay": {"targets": []}}}, "harness:gateways"),
        ({"hook_target_prefix": "*"}, "harness:hookTargetPrefix"),
    ],
)
def test_an_unusable_gateway_or_hook_setting_fails_synth_naming_its_key(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        HarnessSettings.from_values(values)
    assert message in str(raised.value)
