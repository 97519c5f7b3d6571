"""The REST API: IAM on every method, validated requests, AgentCore-shaped errors, logged and throttled."""

from __future__ import annotations

import json
from typing import Any

from harness import contract

from .synthesis import Synthesized

ROUTES = {
    ("POST", "/harnesses"): "ApiFunction",
    ("GET", "/harnesses"): "ApiFunction",
    ("POST", "/harnesses/invoke"): "InvokeStreamFunction",
    ("GET", "/harnesses/{harnessId}"): "ApiFunction",
    ("PATCH", "/harnesses/{harnessId}"): "ApiFunction",
    ("DELETE", "/harnesses/{harnessId}"): "ApiFunction",
    ("GET", "/harnesses/{harnessId}/versions"): "ApiFunction",
    ("DELETE", "/actors/{actorId}"): "ErasureFunction",
    ("GET", "/actors/{actorId}/erasures/{erasureId}"): "ErasureFunction",
}


def _path(synthesized: Synthesized, resource_ref: dict[str, Any]) -> str:
    if "Fn::GetAtt" in resource_ref:  # the root resource
        return ""
    resource = synthesized.resources[resource_ref["Ref"]]["Properties"]
    return _path(synthesized, resource["ParentId"]) + "/" + resource["PathPart"]


def _methods(synthesized: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (m["Properties"]["HttpMethod"], _path(synthesized, m["Properties"]["ResourceId"])): m["Properties"]
        for m in synthesized.of_type("AWS::ApiGateway::Method").values()
    }


def _stage(synthesized: Synthesized) -> dict[str, Any]:
    (stage,) = synthesized.of_type("AWS::ApiGateway::Stage").values()
    properties: dict[str, Any] = stage["Properties"]
    return properties


def test_api_is_regional_and_passes_event_streams_through(synthesized: Synthesized) -> None:
    properties = synthesized.resources["HarnessApi"]["Properties"]
    assert properties["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert set(properties["BinaryMediaTypes"]) == {"application/vnd.amazon.eventstream", "text/event-stream"}


def test_routes_reach_their_functions_through_lambda_proxy_integrations(synthesized: Synthesized) -> None:
    methods = _methods(synthesized)
    assert set(methods) == set(ROUTES)
    for route, function in ROUTES.items():
        integration = methods[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert {"Fn::GetAtt": [function, "Arn"]} in integration["Uri"]["Fn::Join"][1], route


def test_every_api_method_requires_iam_authorization(each_configuration: Synthesized) -> None:
    methods = _methods(each_configuration)
    assert methods
    for route, method in methods.items():
        if route[0] != "OPTIONS":
            assert method["AuthorizationType"] == "AWS_IAM", route


def test_every_method_validates_body_and_parameters(synthesized: Synthesized) -> None:
    (validator_id, validator), *others = synthesized.of_type("AWS::ApiGateway::RequestValidator").items()
    assert others == []
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    for route, method in _methods(synthesized).items():
        assert method["RequestValidatorId"] == {"Ref": validator_id}, route


def _model_schema(synthesized: Synthesized, method: dict[str, Any]) -> dict[str, Any]:
    model = synthesized.resources[method["RequestModels"]["application/json"]["Ref"]]["Properties"]
    assert model["ContentType"] == "application/json"
    schema = model["Schema"]
    return schema if isinstance(schema, dict) else json.loads(schema)


def test_request_bodies_are_validated_against_schemas_from_the_service_models(
    synthesized: Synthesized,
) -> None:
    methods = _methods(synthesized)
    for route, service, operation in [
        (("POST", "/harnesses"), contract.CONTROL_SERVICE, "CreateHarness"),
        (("PATCH", "/harnesses/{harnessId}"), contract.CONTROL_SERVICE, "UpdateHarness"),
        (("POST", "/harnesses/invoke"), contract.DATA_SERVICE, "InvokeHarness"),
    ]:
        expected = contract.json_schema(
            service,
            contract.input_shape_name(service, operation),
            exclude=contract.location_members(service, operation),
        )
        assert _model_schema(synthesized, methods[route]) == expected, route


def test_invoke_requires_the_harness_arn_and_the_session_header(synthesized: Synthesized) -> None:
    invoke = _methods(synthesized)[("POST", "/harnesses/invoke")]
    session_header = contract.header_name(contract.DATA_SERVICE, "InvokeHarness", "runtimeSessionId")
    assert invoke["RequestParameters"] == {
        "method.request.querystring.harnessArn": True,
        f"method.request.header.{session_header}": True,
    }
    schema = _model_schema(synthesized, invoke)
    assert "runtimeSessionId" not in schema["properties"]
    assert "harnessArn" not in schema["properties"]


def _gateway_responses(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synthesized.of_type("AWS::ApiGateway::GatewayResponse").values()
    }


def test_errors_raised_by_api_gateway_have_the_agentcore_error_shape(synthesized: Synthesized) -> None:
    expected = {
        "BAD_REQUEST_BODY": ("400", "ValidationException"),
        "BAD_REQUEST_PARAMETERS": ("400", "ValidationException"),
        "REQUEST_TOO_LARGE": ("413", "ValidationException"),
        "ACCESS_DENIED": ("403", "AccessDeniedException"),
        "MISSING_AUTHENTICATION_TOKEN": ("403", "AccessDeniedException"),
        "UNAUTHORIZED": ("403", "AccessDeniedException"),
        "INVALID_SIGNATURE": ("403", "AccessDeniedException"),
        "EXPIRED_TOKEN": ("403", "AccessDeniedException"),
        "THROTTLED": ("429", "ThrottlingException"),
        "DEFAULT_5XX": (None, "InternalServerException"),
    }
    responses = _gateway_responses(synthesized)
    assert set(responses) == set(expected)
    for response_type, (status, error_type) in expected.items():
        response = responses[response_type]
        assert response.get("StatusCode") == status, response_type
        assert response["ResponseParameters"] == {
            "gatewayresponse.header.x-amzn-ErrorType": f"'{error_type}'"
        }
        assert "message" in response["ResponseTemplates"]["application/json"]


def test_validation_errors_explain_the_failed_field(synthesized: Synthesized) -> None:
    template = _gateway_responses(synthesized)["BAD_REQUEST_BODY"]["ResponseTemplates"]["application/json"]
    assert "$context.error.validationErrorString" in template
    assert '"reason": "FieldValidationFailed"' in template


def test_server_errors_reveal_no_internals(synthesized: Synthesized) -> None:
    template = _gateway_responses(synthesized)["DEFAULT_5XX"]["ResponseTemplates"]["application/json"]
    assert "$context" not in template


def test_stage_is_traced_throttled_and_logs_metadata_but_never_bodies(
    synthesized: Synthesized, overridden: Synthesized
) -> None:
    for configuration, (rate, burst) in ((synthesized, (50, 100)), (overridden, (7, 9))):
        stage = _stage(configuration)
        assert stage["StageName"] == "v1"
        assert stage["TracingEnabled"] is True
        (settings,) = stage["MethodSettings"]
        assert settings["LoggingLevel"] == "INFO"
        assert settings["MetricsEnabled"] is True
        assert settings["DataTraceEnabled"] is False
        assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (rate, burst)


def test_access_logs_are_json_with_the_caller_and_the_request(synthesized: Synthesized) -> None:
    access_log = _stage(synthesized)["AccessLogSetting"]
    fields = set(json.loads(access_log["Format"]))
    assert fields >= {
        "requestId",
        "ip",
        "caller",
        "user",
        "requestTime",
        "httpMethod",
        "resourcePath",
        "status",
        "protocol",
        "responseLength",
    }
    log_group = next(
        part["Ref"]
        for part in access_log["DestinationArn"]["Fn::Join"][1]
        if isinstance(part, dict) and "Ref" in part and not part["Ref"].startswith("AWS::")
    )
    assert synthesized.resources[log_group]["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": ["EncryptionKey", "Arn"]
    }


def test_by_default_only_this_accounts_principals_may_invoke(synthesized: Synthesized) -> None:
    (statement,) = synthesized.resources["HarnessApi"]["Properties"]["Policy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == "execute-api:/*"
    assert statement["Principal"]["AWS"]["Fn::Join"][1][-1] == ":root"
    assert {"Ref": "AWS::AccountId"} in statement["Principal"]["AWS"]["Fn::Join"][1]


def test_allowed_callers_from_context_are_the_only_principals_that_may_invoke(
    overridden: Synthesized,
) -> None:
    allow, deny = overridden.resources["HarnessApi"]["Properties"]["Policy"]["Statement"]
    assert allow["Effect"] == "Allow"
    assert set(allow["Principal"]["AWS"]) == {
        "arn:aws:iam::111122223333:role/platform-agents",
        "arn:aws:iam::444455556666:root",
    }
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {
        "StringNotEquals": {
            "aws:PrincipalArn": ["arn:aws:iam::111122223333:role/platform-agents"],
            "aws:PrincipalAccount": ["444455556666"],
        }
    }


def test_the_account_wide_logging_role_is_optional(synthesized: Synthesized, overridden: Synthesized) -> None:
    assert len(synthesized.of_type("AWS::ApiGateway::Account")) == 1
    assert overridden.of_type("AWS::ApiGateway::Account") == {}


def test_invoke_harness_is_streamed_for_up_to_fifteen_minutes(synthesized: Synthesized) -> None:
    methods = _methods(synthesized)
    streamed = methods[("POST", "/harnesses/invoke")]["Integration"]
    assert streamed["ResponseTransferMode"] == "STREAM"
    assert streamed["TimeoutInMillis"] == 15 * 60 * 1000
    # API Gateway calls InvokeWithResponseStream, which hands chunks on as the function sends them.
    assert streamed["Uri"]["Fn::Join"][1][-1] == "/response-streaming-invocations"
    for route, method in methods.items():
        if route != ("POST", "/harnesses/invoke"):
            assert method["Integration"].get("ResponseTransferMode", "BUFFERED") == "BUFFERED", route
