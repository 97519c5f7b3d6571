"""IAM: explicit actions only, resources named, and each function granted what its handler needs."""

from __future__ import annotations

from typing import Any

import pytest

from .synthesis import Synthesized

#: The only actions granted on Resource "*", and why: none of them supports resource-level permissions.
ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS = {
    "xray:PutTraceSegments": "X-Ray tracing of functions and the state machine",
    "xray:PutTelemetryRecords": "X-Ray tracing of functions and the state machine",
    "xray:GetSamplingRules": "X-Ray tracing of the state machine",
    "xray:GetSamplingTargets": "X-Ray tracing of the state machine",
    "logs:CreateLogDelivery": "Step Functions logging (vended log delivery)",
    "logs:GetLogDelivery": "Step Functions logging (vended log delivery)",
    "logs:UpdateLogDelivery": "Step Functions logging (vended log delivery)",
    "logs:DeleteLogDelivery": "Step Functions logging (vended log delivery)",
    "logs:ListLogDeliveries": "Step Functions logging (vended log delivery)",
    "logs:PutResourcePolicy": "Step Functions logging (vended log delivery)",
    "logs:DescribeResourcePolicies": "Step Functions logging (vended log delivery)",
    "logs:DescribeLogGroups": "Step Functions logging (vended log delivery)",
}
LOOP_STEPS = (
    "LoadContextFunction",
    "CallModelFunction",
    "AuthorizeToolCallsFunction",
    "RunToolFunction",
    "AwaitClientFunction",
    "FinalizeFunction",
    "RecordFailureFunction",
)
FUNCTIONS = ("ApiFunction", "InvokeStreamFunction", *LOOP_STEPS, "ErasureFunction")
EXECUTIONS = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<Fn::Select>:*"
VAULT = "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:AgentHarness/vault/*"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _iam_statements(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    statements = []
    for logical_id, resource in synthesized.resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        else:
            continue
        statements += [(logical_id, s) for document in documents for s in document["Statement"]]
    return statements


def _role_statements(synthesized: Synthesized, role_logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _function_grants(synthesized: Synthesized, function: str) -> set[tuple[str, str]]:
    """(action, resource logical id or literal) pairs granted to a function's role."""
    role = synthesized.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    grants = set()
    for statement in _role_statements(synthesized, role):
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                grants.add((action, _resource_name(resource)))
    return grants


def _resource_name(resource: Any) -> str:
    """A resource as a readable string: logical ids for attributes and references, ``<AWS::Region>``
    for pseudo parameters, ``<Fn::Select>`` for other intrinsics."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if "Ref" in resource:
        ref = str(resource["Ref"])
        return f"<{ref}>" if ref.startswith("AWS::") else ref
    if "Fn::Join" in resource:
        return "".join(_resource_name(part) for part in resource["Fn::Join"][1])
    return "<" + next(iter(resource)) + ">"


def test_no_iam_statement_grants_all_actions_or_wildcard_actions(each_configuration: Synthesized) -> None:
    actions = [
        (logical_id, action)
        for logical_id, statement in _iam_statements(each_configuration)
        for action in _as_list(statement.get("Action", []))
    ]
    assert actions
    assert [(logical_id, a) for logical_id, a in actions if "*" in a] == []
    assert not any("NotAction" in s for _, s in _iam_statements(each_configuration))


def test_resource_star_is_granted_only_for_actions_without_resource_level_permissions(
    synthesized: Synthesized,
) -> None:
    for logical_id, statement in _iam_statements(synthesized):
        if "*" in _as_list(statement["Resource"]):
            unexpected = set(_as_list(statement["Action"])) - set(ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS)
            assert unexpected == set(), (logical_id, unexpected)


def test_the_state_machine_may_invoke_exactly_the_loop_steps(synthesized: Synthesized) -> None:
    role = synthesized.resources["AgentLoop"]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invoked = {
        _resource_name(resource).removesuffix(":*")
        for statement in _role_statements(synthesized, role)
        if "lambda:InvokeFunction" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    assert invoked == set(LOOP_STEPS)


def test_every_function_writes_only_to_its_own_log_group(synthesized: Synthesized) -> None:
    for function in FUNCTIONS:
        log_group = synthesized.resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        log_writes = {r for a, r in _function_grants(synthesized, function) if a.startswith("logs:")}
        assert log_writes == {log_group}, function


@pytest.mark.parametrize(
    ("function", "may", "may_not"),
    [
        (
            "ApiFunction",
            {
                ("dynamodb:PutItem", "HarnessTable"),
                ("dynamodb:PutItem", "MemoryTable"),
                ("states:StartExecution", "AgentLoop"),
                ("states:DescribeExecution", EXECUTIONS),
                ("states:SendTaskSuccess", "AgentLoop"),
                ("kms:Encrypt", "EncryptionKey"),
            },
            {
                ("s3:PutObject", "AuditBucket/*"),
                ("secretsmanager:GetSecretValue", "*"),
                ("states:StopExecution", EXECUTIONS),
            },
        ),
        (
            "InvokeStreamFunction",
            {
                ("dynamodb:GetItem", "HarnessTable"),
                ("dynamodb:PutItem", "MemoryTable"),
                ("states:StartExecution", "AgentLoop"),
                ("states:SendTaskSuccess", "AgentLoop"),
            },
            {
                ("dynamodb:PutItem", "HarnessTable"),
                ("s3:PutObject", "AuditBucket/*"),
                ("secretsmanager:GetSecretValue", "*"),
            },
        ),
        (
            "LoadContextFunction",
            {("dynamodb:GetItem", "HarnessTable"), ("dynamodb:PutItem", "MemoryTable")},
            {("dynamodb:PutItem", "HarnessTable"), ("s3:GetObject", "ArtifactBucket/actors/*")},
        ),
        (
            "CallModelFunction",
            {
                ("s3:PutObject", "ArtifactBucket/actors/*"),
                ("secretsmanager:GetSecretValue", VAULT),
            },
            {("dynamodb:PutItem", "HarnessTable"), ("kms:GenerateMac", "AuditMacKey")},
        ),
        (
            "RunToolFunction",
            {
                ("s3:GetObject", "ArtifactBucket/actors/*"),
                ("secretsmanager:GetSecretValue", VAULT),
            },
            {("s3:PutObject", "AuditBucket/*")},
        ),
        (
            "AuthorizeToolCallsFunction",
            {("s3:PutObject", "AuditBucket/*"), ("kms:GenerateMac", "AuditMacKey")},
            {("s3:GetObject", "AuditBucket/*"), ("s3:DeleteObject", "AuditBucket/*")},
        ),
        ("FinalizeFunction", {("s3:PutObject", "AuditBucket/*"), ("kms:GenerateMac", "AuditMacKey")}, set()),
        (
            "RecordFailureFunction",
            {("s3:PutObject", "AuditBucket/*"), ("kms:GenerateMac", "AuditMacKey")},
            set(),
        ),
        (
            "ErasureFunction",
            {
                ("dynamodb:Query", "MemoryTable"),
                ("dynamodb:DeleteItem", "MemoryTable"),
                ("s3:DeleteObjectVersion", "ArtifactBucket/actors/*"),
                ("s3:ListBucketVersions", "ArtifactBucket"),
                ("s3:PutObject", "AuditBucket/*"),
                ("s3:GetObject", "AuditBucket/erasure-receipts/*"),
                ("kms:Decrypt", "EncryptionKey"),
                ("kms:VerifyMac", "AuditMacKey"),
                ("dynamodb:GetItem", "MemoryTable"),
                ("states:StopExecution", EXECUTIONS),
            },
            {
                ("dynamodb:PutItem", "MemoryTable"),
                ("dynamodb:GetItem", "HarnessTable"),
                ("s3:PutObject", "ArtifactBucket/actors/*"),
                ("s3:DeleteObject", "AuditBucket/*"),
            },
        ),
    ],
)
def test_each_function_is_granted_what_its_handler_needs_and_no_more(
    synthesized: Synthesized, function: str, may: set[tuple[str, str]], may_not: set[tuple[str, str]]
) -> None:
    grants = _function_grants(synthesized, function)
    assert may <= grants, may - grants
    assert not (may_not & grants)


def test_only_the_model_and_tool_steps_may_read_the_vault(synthesized: Synthesized) -> None:
    readers = {
        function
        for function in FUNCTIONS
        if any(action.startswith("secretsmanager:") for action, _ in _function_grants(synthesized, function))
    }
    # Model keys (CallModel); tool servers' credentials when listing (LoadContext) and calling (RunTool).
    assert readers == {"CallModelFunction", "LoadContextFunction", "RunToolFunction"}


def test_vault_secrets_are_decrypted_only_through_secrets_manager(synthesized: Synthesized) -> None:
    role = synthesized.resources["CallModelFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    (via_vault,) = [
        s for s in _role_statements(synthesized, role) if s["Action"] == "kms:Decrypt" and "Condition" in s
    ]
    assert via_vault["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {
                "Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
            }
        }
    }


def test_listing_artifacts_is_limited_to_actor_prefixes(synthesized: Synthesized) -> None:
    for function in ("CallModelFunction", "RunToolFunction", "ErasureFunction"):
        role = synthesized.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        listing = [s for s in _role_statements(synthesized, role) if "s3:ListBucket" in _as_list(s["Action"])]
        assert listing
        for statement in listing:
            assert statement["Condition"] == {"StringLike": {"s3:prefix": ["actors/*"]}}
