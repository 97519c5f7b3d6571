"""Behaviour of harness.contract (with contract_validation and contract_schema): validation and JSON
Schema derived from botocore's service models."""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.loaders
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import contract
from harness.contract_validation import MAX_DEPTH, MAX_REPORTED_PROBLEMS
from harness.errors import CannotParseError, ValidationError
from harness.gateway import gateway_arn

CONTROL = contract.CONTROL_SERVICE
DATA = contract.DATA_SERVICE
HARNESS_OPERATIONS = [
    (CONTROL, "CreateHarness"),
    (CONTROL, "GetHarness"),
    (CONTROL, "UpdateHarness"),
    (CONTROL, "DeleteHarness"),
    (CONTROL, "ListHarnesses"),
    (CONTROL, "ListHarnessVersions"),
    (DATA, "InvokeHarness"),
]

HARNESS_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/demo-abcdefghij"
SESSION_ID = "s" * 33

VALID_CREATE: dict[str, Any] = {
    "harnessName": "demo_harness",
    "executionRoleArn": "arn:aws:iam::123456789012:role/harness",
    "model": {
        "bedrockModelConfig": {
            "modelId": "anthropic.claude-sonnet",
            "maxTokens": 1024,
            "temperature": 0.5,
            "topP": 1,
            "additionalParams": {"anything": [1, "two", None, {"three": 3.0}]},
        }
    },
    "systemPrompt": [{"text": "Be brief."}],
    "tools": [
        {
            "type": "inline_function",
            "name": "lookup",
            "config": {
                "inlineFunction": {
                    "description": "Looks things up",
                    "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
                }
            },
        },
        {
            "type": "remote_mcp",
            "name": "docs",
            "config": {"remoteMcp": {"url": "https://mcp.example.com", "outboundAuth": {"none": {}}}},
        },
    ],
    "environment": {
        "agentCoreRuntimeEnvironment": {
            "lifecycleConfiguration": {"idleRuntimeSessionTimeout": 900, "maxLifetime": 3600},
            "networkConfiguration": {"networkMode": "PUBLIC"},
        }
    },
    "environmentVariables": {"STAGE": "dev"},
    "tags": {"team": "agents"},
    "memory": {"disabled": {}},
    "maxIterations": 10,
}

VALID_INVOKE_BODY: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": [{"text": "hi"}]},
        {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"redactedContent": base64.b64encode(b"\x00secret").decode()}},
                {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "x"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"json": [1, 2]}], "status": "success"}}
            ],
        },
    ],
    "maxTokens": 100,
}


def problems(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    """Field name -> messages reported for it."""
    reported: dict[str, list[str]] = {}
    for field in excinfo.value.fields:
        reported.setdefault(field.name, []).append(field.message)
    return reported


def create_with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID_CREATE)
    body.update(changes)
    return body


def rejected_create(body: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "CreateHarnessRequest", body)
    return problems(excinfo)


def nested_lists(levels: int) -> list[Any]:
    """``levels`` arrays inside one another, built without recursion."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


# --- structures, members and messages ----------------------------------------------------------


def test_a_complete_valid_create_request_passes() -> None:
    contract.validate(CONTROL, "CreateHarnessRequest", VALID_CREATE)


def test_a_valid_invoke_body_passes() -> None:
    contract.validate_request(
        DATA, "InvokeHarness", VALID_INVOKE_BODY, {"harnessArn": HARNESS_ARN, "runtimeSessionId": SESSION_ID}
    )


def test_unknown_member_is_rejected_with_its_path() -> None:
    body = create_with()
    body["tools"][0]["config"]["inlineFunction"]["extra"] = 1
    body["surprise"] = True

    reported = rejected_create(body)

    assert reported == {
        "tools[0].config.inlineFunction.extra": ["Member is an unknown field"],
        "surprise": ["Member is an unknown field"],
    }


def test_missing_required_members_are_reported_at_their_paths() -> None:
    body = create_with()
    del body["executionRoleArn"]
    del body["tools"][1]["type"]

    reported = rejected_create(body)

    assert reported == {
        "executionRoleArn": ["Member must not be null"],
        "tools[1].type": ["Member must not be null"],
    }


def test_explicit_null_member_is_rejected() -> None:
    assert rejected_create(create_with(maxIterations=None)) == {"maxIterations": ["Member must not be null"]}


def test_structure_must_be_a_json_object() -> None:
    assert rejected_create(create_with(model=["bedrockModelConfig"])) == {
        "model": ["Member must be an object"]
    }
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "CreateHarnessRequest", "not an object")
    assert problems(excinfo) == {"$": ["Member must be an object"]}


def test_message_summarises_the_count_and_each_constraint_like_aws() -> None:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "CreateHarnessRequest", create_with(harnessName="1-bad"))

    assert excinfo.value.message == (
        "1 validation error detected: Value at 'harnessName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z][a-zA-Z0-9_]{0,39}"
    )
    assert excinfo.value.reason == "FieldValidationFailed"
    assert excinfo.value.to_response()[0] == 400


def test_all_problems_are_reported_in_one_error() -> None:
    body = create_with(harnessName="1-bad", maxTokens=True, bogus=1)
    del body["executionRoleArn"]
    body["tools"][0]["config"]["inlineFunction"]["description"] = ""
    body["tools"][1]["type"] = "lambda"

    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "CreateHarnessRequest", body)

    assert set(problems(excinfo)) == {
        "harnessName",
        "maxTokens",
        "bogus",
        "executionRoleArn",
        "tools[0].config.inlineFunction.description",
        "tools[1].type",
    }
    assert excinfo.value.message.startswith("6 validation errors detected: Value at ")


def test_path_argument_prefixes_reported_field_names() -> None:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "HarnessTool", {"type": "nope"}, path="tools[3]")
    assert problems(excinfo) == {"tools[3].type": [_enum_message("HarnessToolType")]}


def test_unknown_shape_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="NoSuchShape"):
        contract.validate(CONTROL, "NoSuchShape", {})


# --- scalars -----------------------------------------------------------------------------------


def _enum_message(shape_name: str) -> str:
    values = contract.service_model(CONTROL)["shapes"][shape_name]["enum"]
    return f"Member must satisfy enum value set: [{', '.join(values)}]"


@pytest.mark.parametrize("name", ["ok_name!", "9lives", "a" * 41, "has space"])
def test_string_pattern_must_match_the_whole_value(name: str) -> None:
    # "ok_name!" starts with a match: only a whole-value match is a pass.
    assert rejected_create(create_with(harnessName=name)) == {
        "harnessName": ["Member must satisfy regular expression pattern: [a-zA-Z][a-zA-Z0-9_]{0,39}"]
    }


def test_pattern_character_classes_are_ascii_like_java() -> None:
    # \d in the region pattern: a non-ASCII digit is a digit to Python's default re, not to Java's.
    mount = {"bucket": "bkt", "mountPath": "/mnt/data", "s3BucketRegion": "us-east-\u0661"}
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "S3BucketMountConfiguration", mount)
    assert list(problems(excinfo)) == ["s3BucketRegion"]


def test_string_length_bounds_are_enforced() -> None:
    body = create_with()
    body["tools"][0]["config"]["inlineFunction"]["description"] = ""
    body["tools"][1]["name"] = "n" * 65

    assert rejected_create(body) == {
        "tools[0].config.inlineFunction.description": ["Member must have length greater than or equal to 1"],
        "tools[1].name": ["Member must have length less than or equal to 64"],
    }


def test_string_member_must_be_a_string() -> None:
    assert rejected_create(create_with(harnessName=42)) == {"harnessName": ["Member must be a string"]}


def test_enum_member_must_be_one_of_the_model_values() -> None:
    body = create_with()
    body["tools"][0]["type"] = "lambda"
    assert rejected_create(body) == {"tools[0].type": [_enum_message("HarnessToolType")]}


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_accepted_as_an_integer(value: bool) -> None:
    assert rejected_create(create_with(maxIterations=value)) == {
        "maxIterations": ["Member must be an integer"]
    }


@pytest.mark.parametrize("value", [1.0, 1.5, "10"])
def test_integer_member_rejects_non_integers(value: object) -> None:
    assert rejected_create(create_with(maxIterations=value)) == {
        "maxIterations": ["Member must be an integer"]
    }


def test_integer_bounds_come_from_the_model_and_the_type() -> None:
    body = create_with(maxIterations=2**31)
    lifecycle = body["environment"]["agentCoreRuntimeEnvironment"]["lifecycleConfiguration"]
    lifecycle["idleRuntimeSessionTimeout"] = 59
    lifecycle["maxLifetime"] = 1209601

    prefix = "environment.agentCoreRuntimeEnvironment.lifecycleConfiguration"
    assert rejected_create(body) == {
        "maxIterations": ["Member must have value less than or equal to 2147483647"],
        f"{prefix}.idleRuntimeSessionTimeout": ["Member must have value greater than or equal to 60"],
        f"{prefix}.maxLifetime": ["Member must have value less than or equal to 1209600"],
    }


@pytest.mark.parametrize("temperature", [0, 2, 1.25, 0.0])
def test_float_member_accepts_ints_and_floats_in_range(temperature: float) -> None:
    body = create_with()
    body["model"]["bedrockModelConfig"]["temperature"] = temperature
    contract.validate(CONTROL, "CreateHarnessRequest", body)


@pytest.mark.parametrize(
    ("temperature", "message"),
    [
        (True, "Member must be a number"),
        ("0.5", "Member must be a number"),
        (2.5, "Member must have value less than or equal to 2.0"),
        (-0.1, "Member must have value greater than or equal to 0.0"),
        (float("nan"), "Member must be a finite number"),
    ],
)
def test_float_member_rejects_bools_strings_and_out_of_range(temperature: object, message: str) -> None:
    body = create_with()
    body["model"]["bedrockModelConfig"]["temperature"] = temperature
    assert rejected_create(body) == {"model.bedrockModelConfig.temperature": [message]}


def test_boolean_member_must_be_a_boolean() -> None:
    vpc = {
        "securityGroups": ["sg-12345678"],
        "subnets": ["subnet-12345678"],
        "requireServiceS3Endpoint": "true",
    }
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "VpcConfig", vpc)
    assert problems(excinfo) == {"requireServiceS3Endpoint": ["Member must be a boolean"]}

    contract.validate(CONTROL, "VpcConfig", {**vpc, "requireServiceS3Endpoint": False})


@pytest.mark.parametrize("value", ["2024-05-01T12:30:00Z", "2024-05-01T12:30:00.123+02:00", 1714566600, 1.5])
def test_timestamp_accepts_iso8601_strings_and_epoch_numbers(value: object) -> None:
    contract.validate(DATA, "DateTimestamp", value)


@pytest.mark.parametrize("value", ["yesterday", True, [], float("inf")])
def test_timestamp_rejects_other_values(value: object) -> None:
    with pytest.raises(ValidationError):
        contract.validate(DATA, "DateTimestamp", value)


def test_blob_accepts_base64_strings_only() -> None:
    contract.validate(DATA, "Blob", base64.b64encode(b"\x00\xff bytes").decode())
    for bad in ["not base64!", "abc", b"raw bytes"]:
        with pytest.raises(ValidationError) as excinfo:
            contract.validate(DATA, "Blob", bad)
        assert problems(excinfo) == {"$": ["Member must be a base64-encoded string"]}


# --- lists, maps, unions, documents ------------------------------------------------------------


def test_list_item_count_bounds_are_enforced() -> None:
    vpc: dict[str, Any] = {"securityGroups": [], "subnets": [f"subnet-{i:08d}" for i in range(17)]}
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "VpcConfig", vpc)
    assert problems(excinfo) == {
        "securityGroups": ["Member must have length greater than or equal to 1"],
        "subnets": ["Member must have length less than or equal to 16"],
    }


def test_each_list_item_is_validated_at_its_index() -> None:
    body = create_with(systemPrompt=[{"text": "fine"}, {"text": ""}, "text"])
    assert rejected_create(body) == {
        "systemPrompt[1].text": ["Member must have length greater than or equal to 1"],
        "systemPrompt[2]": ["Member must be an object"],
    }


def test_list_member_must_be_a_list() -> None:
    assert rejected_create(create_with(systemPrompt={"text": "x"})) == {
        "systemPrompt": ["Member must be a list"]
    }


def test_map_values_keys_and_entry_count_are_validated() -> None:
    tags = {f"k{i}": "v" for i in range(50)}
    tags["bad!"] = "also bad!"
    tags["k" * 129] = "v"

    reported = rejected_create(create_with(tags=tags))

    assert reported == {
        "tags": [
            "Member must have length less than or equal to 50",
            "Map keys must satisfy constraint: Member must have length less than or equal to 128",
            "Map keys must satisfy constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z0-9\\s._:/=+@-]*",
        ],
        "tags.bad!": ["Member must satisfy regular expression pattern: [a-zA-Z0-9\\s._:/=+@-]*"],
    }


def test_map_must_be_an_object() -> None:
    assert rejected_create(create_with(tags=[["k", "v"]])) == {"tags": ["Member must be an object (a map)"]}


@pytest.mark.parametrize(
    ("model", "found"),
    [
        ({}, 0),
        ({"bedrockModelConfig": {"modelId": "m"}, "liteLlmModelConfig": {"modelId": "m"}}, 2),
    ],
)
def test_union_requires_exactly_one_member(model: dict[str, Any], found: int) -> None:
    assert rejected_create(create_with(model=model)) == {
        "model": [
            "Member must have exactly one of [bedrockModelConfig, openAiModelConfig, geminiModelConfig, "
            f"liteLlmModelConfig] set, found {found}"
        ]
    }


def test_union_unknown_member_is_not_counted_as_set() -> None:
    assert rejected_create(create_with(memory={"mystery": {}})) == {
        "memory.mystery": ["Member is an unknown field"],
        "memory": [
            "Member must have exactly one of [agentCoreMemoryConfiguration, managedMemoryConfiguration, "
            "disabled] set, found 0"
        ],
    }


def test_union_member_of_unit_shape_accepts_an_empty_object() -> None:
    gateway = {
        "gatewayArn": gateway_arn("gw", "us-east-1", "123456789012"),
        "outboundAuth": {"awsIam": {}},
    }
    contract.validate(CONTROL, "HarnessAgentCoreGatewayConfig", gateway)


@pytest.mark.parametrize(
    "document", [1, -2.5, "text", True, [], {}, {"a": [{"b": None}, 1e300, "x"]}, [None]]
)
def test_document_members_accept_any_json_value(document: object) -> None:
    body = create_with()
    body["tools"][0]["config"]["inlineFunction"]["inputSchema"] = document
    contract.validate(CONTROL, "CreateHarnessRequest", body)


def test_document_member_set_to_null_counts_as_missing() -> None:
    # null inside a document is a value; a member that is null is not set, like any other member.
    body = create_with()
    body["tools"][0]["config"]["inlineFunction"]["inputSchema"] = None
    assert rejected_create(body) == {
        "tools[0].config.inlineFunction.inputSchema": ["Member must not be null"]
    }


def test_document_rejects_values_json_cannot_carry() -> None:
    body = create_with()
    body["tools"][0]["config"]["inlineFunction"]["inputSchema"] = {"when": {1, 2}, "n": float("inf")}
    assert rejected_create(body) == {
        "tools[0].config.inlineFunction.inputSchema.when": ["Member must be a JSON value"],
        "tools[0].config.inlineFunction.inputSchema.n": ["Member must be a finite number"],
    }


# --- depth and size guards ---------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_accepted_and_beyond_is_rejected() -> None:
    contract.validate(CONTROL, "SensitiveJson", nested_lists(MAX_DEPTH))
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "SensitiveJson", nested_lists(MAX_DEPTH + 1))
    ((name, messages),) = problems(excinfo).items()
    assert name == "[0]" * MAX_DEPTH
    assert messages == ["Member must not be nested more than 64 levels deep"]


def test_very_deep_document_is_a_validation_error_not_a_recursion_error() -> None:
    body = create_with()
    body["tools"][0]["config"]["inlineFunction"]["inputSchema"] = {"deep": nested_lists(100_000)}
    reported = rejected_create(body)
    assert list(reported.values()) == [["Member must not be nested more than 64 levels deep"]]


def test_deeply_recursive_shape_is_rejected_at_the_depth_limit() -> None:
    # SchemaDefinition nests through its own "items" member.
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(500):
        schema = {"type": "array", "items": schema}
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "SchemaDefinition", schema)
    ((name, messages),) = problems(excinfo).items()
    assert name == ".".join(["items"] * MAX_DEPTH)
    assert messages == ["Member must not be nested more than 64 levels deep"]


def test_reported_problems_are_capped_but_counted_in_full() -> None:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate(CONTROL, "CreateHarnessRequest", create_with(allowedTools=["a/b/c"] * 500))
    assert len(excinfo.value.fields) == MAX_REPORTED_PROBLEMS
    assert excinfo.value.message.startswith("500 validation errors detected: ")
    assert excinfo.value.message.endswith("; and 490 more")


# --- operations: body, params, locations -------------------------------------------------------


def _body_member_names(service: str, operation: str) -> set[str]:
    """Input members carried in the JSON body: those without a location."""
    shape = contract.service_model(service)["shapes"][contract.input_shape_name(service, operation)]
    return {name for name, member in shape["members"].items() if "location" not in member}


def test_location_members_name_where_each_member_travels() -> None:
    assert contract.location_members(DATA, "InvokeHarness") == {
        "harnessArn": ("querystring", "harnessArn"),
        "qualifier": ("querystring", "qualifier"),
        "runtimeSessionId": ("header", "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"),
        "runtimeUserId": ("header", "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"),
        "traceParent": ("header", "traceparent"),
        "traceState": ("header", "tracestate"),
        "traceId": ("header", "X-Amzn-Trace-Id"),
        "baggage": ("header", "baggage"),
    }
    assert contract.location_members(CONTROL, "UpdateHarness") == {"harnessId": ("uri", "harnessId")}


def test_header_names_come_from_the_model() -> None:
    assert (
        contract.header_name(DATA, "InvokeHarness", "runtimeSessionId")
        == "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
    )
    assert contract.header_name(DATA, "InvokeHarness", "traceId") == "X-Amzn-Trace-Id"
    with pytest.raises(ValueError, match="harnessArn"):
        contract.header_name(DATA, "InvokeHarness", "harnessArn")  # a query string member
    with pytest.raises(ValueError, match="messages"):
        contract.header_name(DATA, "InvokeHarness", "messages")  # a body member


def test_patterns_are_the_models_as_validate_applies_them() -> None:
    harness_id = contract.pattern(CONTROL, "HarnessId")
    assert harness_id.fullmatch("demo_harness-AbCdEfGhIj")
    assert not harness_id.fullmatch("demo_harness-short")
    with pytest.raises(ValueError, match="no pattern"):
        contract.pattern(CONTROL, "Integer")


def test_location_member_sent_in_the_body_is_rejected() -> None:
    body = {**VALID_INVOKE_BODY, "harnessArn": HARNESS_ARN}
    with pytest.raises(ValidationError) as excinfo:
        contract.validate_request(
            DATA, "InvokeHarness", body, {"harnessArn": HARNESS_ARN, "runtimeSessionId": SESSION_ID}
        )
    assert problems(excinfo) == {
        "harnessArn": ["Member must be sent in the query string as 'harnessArn', not in the body"]
    }


def test_required_members_are_checked_across_body_and_params() -> None:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate_request(DATA, "InvokeHarness", {}, {})
    assert problems(excinfo) == {
        "harnessArn": ["Member must not be null"],
        "runtimeSessionId": ["Member must not be null"],
        "messages": ["Member must not be null"],
    }


def test_params_are_validated_against_their_member_shapes_with_body_problems() -> None:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate_request(
            DATA,
            "InvokeHarness",
            {**VALID_INVOKE_BODY, "maxTokens": "many"},
            {"harnessArn": "arn:aws:s3:::bucket", "runtimeSessionId": "short", "unheard": "x"},
        )
    assert problems(excinfo) == {
        "maxTokens": ["Member must be an integer"],
        "harnessArn": [
            "Member must satisfy regular expression pattern: arn:([^:]+)?:bedrock-agentcore:[a-z0-9-]+:"
            "[0-9]{12}:harness/[a-zA-Z][a-zA-Z0-9_]{0,39}-[a-zA-Z0-9]{10}"
        ],
        "runtimeSessionId": ["Member must have length greater than or equal to 33"],
        "unheard": ["Member is an unknown field for the URI, headers or query string"],
    }


def test_wire_strings_in_params_are_coerced_to_their_member_types() -> None:
    assert contract.coerce_params(
        CONTROL, "DeleteHarness", {"harnessId": "h-abcdefghij", "deleteManagedMemory": "true"}
    ) == {
        "harnessId": "h-abcdefghij",
        "deleteManagedMemory": True,
    }
    contract.validate_request(CONTROL, "ListHarnesses", {}, {"maxResults": "10"})
    with pytest.raises(ValidationError) as excinfo:
        contract.validate_request(CONTROL, "ListHarnesses", {}, {"maxResults": "0", "nextToken": ""})
    assert problems(excinfo) == {
        "maxResults": ["Member must have value greater than or equal to 1"],
        "nextToken": ["Member must have length greater than or equal to 1"],
    }
    with pytest.raises(ValidationError) as excinfo:
        contract.validate_request(
            CONTROL, "DeleteHarness", {}, {"harnessId": "h-abcdefghij", "deleteManagedMemory": "yes"}
        )
    assert problems(excinfo) == {"deleteManagedMemory": ["Member must be a boolean"]}


def test_update_body_cannot_carry_the_harness_id() -> None:
    with pytest.raises(ValidationError) as excinfo:
        contract.validate_request(CONTROL, "UpdateHarness", {"harnessId": "h-abcdefghij"}, {})
    assert problems(excinfo) == {
        "harnessId": [
            "Member must be sent in the URI path as 'harnessId', not in the body",
            "Member must not be null",
        ]
    }


def test_body_that_is_not_an_object_cannot_be_parsed() -> None:
    with pytest.raises(CannotParseError):
        contract.validate_request(CONTROL, "CreateHarness", ["not", "an", "object"], {})  # type: ignore[arg-type]


def test_unknown_operation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="DescribeHarness"):
        contract.location_members(CONTROL, "DescribeHarness")


# --- the model itself --------------------------------------------------------------------------


def _closure(service: str, root: str) -> set[str]:
    shapes = contract.service_model(service)["shapes"]
    seen: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = shapes[name]
        pending.extend(shape[k]["shape"] for k in ("member", "key", "value") if k in shape)
        pending.extend(m["shape"] for m in shape.get("members", {}).values())
    return seen


@pytest.mark.parametrize(("service", "operation"), HARNESS_OPERATIONS)
def test_every_shape_of_the_harness_operations_is_supported(service: str, operation: str) -> None:
    shapes = contract.service_model(service)["shapes"]
    supported = {"structure", "list", "map", "string", "integer", "long", "float", "double", "boolean"}
    supported |= {"timestamp", "blob"}
    for name in _closure(service, contract.input_shape_name(service, operation)):
        shape = shapes[name]
        assert shape["type"] in supported, name
        if "pattern" in shape:
            re.compile(shape["pattern"])  # a Java-only construct would fail here, not at request time


def test_stream_exception_names_are_the_error_members_of_the_stream() -> None:
    assert contract.stream_exception_names(DATA, "InvokeHarnessStreamOutput") == {
        "internalServerException",
        "validationException",
        "runtimeClientError",
    }
    assert "messageStart" in contract.stream_event_names(DATA, "InvokeHarnessStreamOutput")


# --- loading -----------------------------------------------------------------------------------


@pytest.fixture
def bundle_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(contract, "SERVICE_MODELS_DIR", tmp_path)
    contract.service_model.cache_clear()
    yield tmp_path
    contract.service_model.cache_clear()


def test_bundled_model_files_are_the_installed_botocore_models() -> None:
    files = contract.bundled_model_files()
    assert set(files) == {CONTROL, DATA}
    for service, path in files.items():
        raw = path.read_bytes()
        model = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
        assert model == botocore.loaders.Loader().load_service_model(service, "service-2")


def test_a_bundled_model_is_loaded_in_preference_to_botocore(bundle_dir: Path) -> None:
    model = {"metadata": {}, "operations": {}, "shapes": {"Only": {"type": "string", "max": 1}}}
    (bundle_dir / DATA).mkdir()
    (bundle_dir / DATA / "service-2.json").write_text(json.dumps(model))

    assert contract.service_model(DATA) == model
    with pytest.raises(ValidationError):
        contract.validate(DATA, "Only", "too long")


def test_a_bundled_copy_of_botocores_compressed_file_loads_under_either_name(bundle_dir: Path) -> None:
    for service, source in contract.bundled_model_files().items():
        (bundle_dir / service).mkdir()
        shutil.copyfile(source, bundle_dir / service / "service-2.json")
    contract.service_model.cache_clear()

    for service in (CONTROL, DATA):
        assert contract.service_model(service) == botocore.loaders.Loader().load_service_model(
            service, "service-2"
        )


def test_without_a_bundle_the_installed_botocore_model_is_used(bundle_dir: Path) -> None:
    assert "CreateHarness" in contract.service_model(CONTROL)["operations"]


# --- JSON Schema -------------------------------------------------------------------------------


def _draft4_class() -> Any:
    # jsonschema is a test-only convenience: without it only these checks are skipped.
    return pytest.importorskip("jsonschema").Draft4Validator


def _draft4(service: str, shape: str, exclude: frozenset[str] = frozenset()) -> Any:
    schema = contract.json_schema(service, shape, exclude=exclude)
    draft4 = _draft4_class()
    draft4.check_schema(schema)
    return draft4(schema)


@functools.cache
def _invoke_schema() -> Any:
    return _draft4(DATA, "InvokeHarnessRequest", frozenset(contract.location_members(DATA, "InvokeHarness")))


@pytest.mark.parametrize(
    ("service", "shape"),
    [(CONTROL, "CreateHarnessRequest"), (CONTROL, "UpdateHarnessRequest"), (DATA, "InvokeHarnessRequest")],
)
def test_json_schema_is_draft4_and_fits_an_api_gateway_model(service: str, shape: str) -> None:
    schema = contract.json_schema(service, shape)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    _draft4_class().check_schema(schema)
    assert len(json.dumps(schema).encode()) < 400 * 1024


def test_json_schema_excludes_the_named_top_level_members() -> None:
    schema = contract.json_schema(
        DATA, "InvokeHarnessRequest", exclude=set(contract.location_members(DATA, "InvokeHarness"))
    )
    assert set(schema["properties"]) == _body_member_names(DATA, "InvokeHarness")
    assert schema["required"] == ["messages"]
    assert schema["additionalProperties"] is False


def test_json_schema_translates_each_constraint() -> None:
    properties = contract.json_schema(CONTROL, "CreateHarnessRequest")["properties"]
    assert properties["harnessName"] == {"type": "string", "pattern": "^(?:[a-zA-Z][a-zA-Z0-9_]{0,39})$"}
    assert properties["maxIterations"] == {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
    model = properties["model"]
    assert (model["minProperties"], model["maxProperties"], model["additionalProperties"]) == (1, 1, False)
    bedrock = model["properties"]["bedrockModelConfig"]["properties"]
    assert bedrock["temperature"] == {"type": "number", "minimum": 0.0, "maximum": 2.0}
    assert bedrock["additionalParams"] == {}
    assert properties["environmentVariables"] == {
        "type": "object",
        "additionalProperties": {"type": "string", "minLength": 0, "maxLength": 5000},
        "minProperties": 0,
        "maxProperties": 50,
    }
    assert properties["tools"]["items"]["properties"]["type"]["enum"][0] == "remote_mcp"


def test_json_schema_of_a_recursive_shape_terminates_with_definitions() -> None:
    schema = contract.json_schema(CONTROL, "SchemaDefinition")
    assert schema["properties"]["items"] == {"$ref": "#/definitions/SchemaDefinition"}
    assert set(schema["definitions"]) == {"SchemaDefinition", "SchemaProperties"}

    validator = _draft4(CONTROL, "SchemaDefinition")
    nested = {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "string"}}}}
    assert validator.is_valid(nested)
    assert not validator.is_valid({"type": "object", "properties": {"xs": {"type": "tuple"}}})


CREATE_SAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    ("valid", VALID_CREATE, True),
    ("pattern", create_with(harnessName="ok_name!"), False),
    ("unknown member", create_with(extra=1), False),
    ("bool for int", create_with(maxIterations=True), False),
    ("float for int", create_with(maxIterations=1.5), False),
    ("union with two", create_with(memory={"disabled": {}, "managedMemoryConfiguration": {}}), False),
    ("union with none", create_with(memory={}), False),
    ("enum", create_with(truncation={"strategy": "random"}), False),
    ("too many tags", create_with(tags={f"k{i}": "v" for i in range(51)}), False),
    ("bad tag key", create_with(tags={"bad!": "v"}), False),
    ("null", create_with(maxTokens=None), False),
    ("missing required", {k: v for k, v in VALID_CREATE.items() if k != "harnessName"}, False),
    ("empty list item string", create_with(systemPrompt=[{"text": ""}]), False),
    (
        "any document",
        create_with(model={"bedrockModelConfig": {"modelId": "m", "additionalParams": [None]}}),
        True,
    ),
]


@pytest.mark.parametrize(
    ("body", "valid"), [(b, v) for _, b, v in CREATE_SAMPLES], ids=[i for i, _, _ in CREATE_SAMPLES]
)
def test_json_schema_accepts_and_rejects_the_same_create_payloads_as_validate(
    body: dict[str, Any], valid: bool
) -> None:
    assert _draft4(CONTROL, "CreateHarnessRequest").is_valid(body) is valid
    try:
        contract.validate(CONTROL, "CreateHarnessRequest", body)
        validated = True
    except ValidationError:
        validated = False
    assert validated is valid


INVOKE_SAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    ("valid", VALID_INVOKE_BODY, True),
    ("header member in body", {**VALID_INVOKE_BODY, "runtimeSessionId": SESSION_ID}, False),
    ("bad role", {"messages": [{"role": "system", "content": [{"text": "x"}]}]}, False),
    (
        "content block with two",
        {"messages": [{"role": "user", "content": [{"text": "x", "toolUse": {}}]}]},
        False,
    ),
    (
        "redacted not base64",
        {"messages": [{"role": "user", "content": [{"reasoningContent": {"redactedContent": "*"}}]}]},
        False,
    ),
]


@pytest.mark.parametrize(
    ("body", "valid"), [(b, v) for _, b, v in INVOKE_SAMPLES], ids=[i for i, _, _ in INVOKE_SAMPLES]
)
def test_json_schema_accepts_and_rejects_the_same_invoke_bodies_as_validate_request(
    body: dict[str, Any], valid: bool
) -> None:
    assert _invoke_schema().is_valid(body) is valid
    params = {"harnessArn": HARNESS_ARN, "runtimeSessionId": SESSION_ID}
    try:
        contract.validate_request(DATA, "InvokeHarness", body, params)
        validated = True
    except ValidationError:
        validated = False
    assert validated is valid


# --- properties --------------------------------------------------------------------------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=8,
)


def _values_of(service: str, shape_name: str) -> st.SearchStrategy[Any]:
    """Values the model says are valid for ``shape_name`` (kept small: lists and maps of <= 2)."""
    shape = contract.service_model(service)["shapes"][shape_name]
    if shape.get("document"):
        # null inside a document is a value, but a member that is null counts as not set.
        return _JSON_VALUES.filter(lambda value: value is not None)
    kind = shape["type"]
    low, high = shape.get("min"), shape.get("max")
    if kind == "structure":
        members = {name: _values_of(service, m["shape"]) for name, m in shape.get("members", {}).items()}
        if shape.get("union"):
            return st.one_of([st.builds(lambda v, n=name: {n: v}, s) for name, s in members.items()])
        required = {name: members.pop(name) for name in shape.get("required", [])}
        return st.fixed_dictionaries(required, optional=members)
    if kind == "list":
        low = low or 0
        return st.lists(
            _values_of(service, shape["member"]["shape"]), min_size=low, max_size=min(high or 2, low + 2)
        )
    if kind == "map":
        low = low or 0
        keys = _values_of(service, shape["key"]["shape"])
        values = _values_of(service, shape["value"]["shape"])
        return st.dictionaries(keys, values, min_size=low, max_size=min(high or 2, low + 2))
    if kind == "string":
        if "enum" in shape:
            return st.sampled_from(shape["enum"])
        if "pattern" in shape:
            pattern = re.compile(shape["pattern"], re.ASCII)
            return st.from_regex(pattern, fullmatch=True).filter(
                lambda s: (low is None or len(s) >= low) and (high is None or len(s) <= high)
            )
        return st.text(min_size=low or 0, max_size=min(high or 20, (low or 0) + 20))
    if kind in ("integer", "long"):
        return st.integers(
            min_value=low if low is not None else -(2**31), max_value=high if high is not None else 2**31 - 1
        )
    if kind in ("float", "double"):
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "blob":
        return st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode())
    if kind == "timestamp":
        return st.datetimes().map(lambda d: d.isoformat())
    raise AssertionError(f"no strategy for {kind}")


def _bodies_of(
    service: str, operation: str, *, leave_out: frozenset[str] = frozenset()
) -> st.SearchStrategy[Any]:
    """Request bodies the model allows for ``operation`` (its body members only)."""
    shape = contract.service_model(service)["shapes"][contract.input_shape_name(service, operation)]
    names = _body_member_names(service, operation) - leave_out
    members = {name: _values_of(service, m["shape"]) for name, m in shape["members"].items() if name in names}
    required = {name: members.pop(name) for name in shape.get("required", []) if name in names}
    return st.fixed_dictionaries(required, optional=members)


@functools.cache
def _create_schema() -> Any:
    return _draft4(CONTROL, "CreateHarnessRequest")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies_of(DATA, "InvokeHarness"))
def test_any_invoke_body_the_model_allows_passes_both_validate_and_the_json_schema(
    body: dict[str, Any],
) -> None:
    contract.validate_request(
        DATA, "InvokeHarness", body, {"harnessArn": HARNESS_ARN, "runtimeSessionId": SESSION_ID}
    )
    assert _invoke_schema().is_valid(body)


# clientToken is left out only because a 33+ character match of its pattern is rarely drawn.
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies_of(CONTROL, "CreateHarness", leave_out=frozenset({"clientToken"})))
def test_any_create_body_the_model_allows_passes_both_validate_and_the_json_schema(
    body: dict[str, Any],
) -> None:
    contract.validate_request(CONTROL, "CreateHarness", body, {})
    assert _create_schema().is_valid(body)


@functools.cache
def _name_schema() -> Any:
    return _draft4(CONTROL, "HarnessName")


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=45) | st.from_regex(contract.pattern(CONTROL, "HarnessName"), fullmatch=True))
def test_the_json_schema_never_rejects_a_name_validate_accepts(name: str) -> None:
    schema = _name_schema()
    try:
        contract.validate(CONTROL, "HarnessName", name)
    except ValidationError:
        return
    assert schema.is_valid(name)
