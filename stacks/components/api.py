"""The REST API: AgentCore-compatible routes, IAM (SigV4) on every method, validated requests.

Request bodies are checked against JSON schemas generated from the botocore service models
(``harness.contract``), the same contract the API function validates against; required query
strings and headers come from the same models. Errors API Gateway returns itself (validation,
authentication, throttling) have the AgentCore error shape: an ``x-amzn-ErrorType`` header and a
JSON body with ``message``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from harness import contract
from stacks.components.compliance import AWS_SOLUTIONS, acknowledge, in_compliance_packs
from stacks.components.log_groups import encrypted_log_group
from stacks.components.naming import pin_logical_id
from stacks.settings import HarnessSettings

STAGE_NAME = "v1"
BINARY_MEDIA_TYPES = ["application/vnd.amazon.eventstream", "text/event-stream"]
JSON = "application/json"

_VALIDATION_MESSAGE = '{"message": "$context.error.validationErrorString", "reason": "FieldValidationFailed"}'
_ERROR_MESSAGE = '{"message": $context.error.messageString}'
_INTERNAL_MESSAGE = '{"message": "Internal server error"}'


@dataclass(frozen=True)
class ErrorResponse:
    """How API Gateway answers an error it raises itself, in the AgentCore error shape."""

    error_type: str
    status_code: str | None
    body: str


GATEWAY_RESPONSES: dict[apigw.ResponseType, ErrorResponse] = {
    apigw.ResponseType.BAD_REQUEST_BODY: ErrorResponse("ValidationException", "400", _VALIDATION_MESSAGE),
    apigw.ResponseType.BAD_REQUEST_PARAMETERS: ErrorResponse(
        "ValidationException", "400", _VALIDATION_MESSAGE
    ),
    apigw.ResponseType.REQUEST_TOO_LARGE: ErrorResponse("ValidationException", "413", _ERROR_MESSAGE),
    apigw.ResponseType.ACCESS_DENIED: ErrorResponse("AccessDeniedException", "403", _ERROR_MESSAGE),
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN: ErrorResponse(
        "AccessDeniedException", "403", _ERROR_MESSAGE
    ),
    apigw.ResponseType.UNAUTHORIZED: ErrorResponse("AccessDeniedException", "403", _ERROR_MESSAGE),
    apigw.ResponseType.INVALID_SIGNATURE: ErrorResponse("AccessDeniedException", "403", _ERROR_MESSAGE),
    apigw.ResponseType.EXPIRED_TOKEN: ErrorResponse("AccessDeniedException", "403", _ERROR_MESSAGE),
    apigw.ResponseType.THROTTLED: ErrorResponse("ThrottlingException", "429", _ERROR_MESSAGE),
    # Every 5xx keeps its status code; the body never carries internals.
    apigw.ResponseType.DEFAULT_5_XX: ErrorResponse("InternalServerException", None, _INTERNAL_MESSAGE),
}


@dataclass(frozen=True)
class Operation:
    """An API operation as its botocore model names it."""

    service: str
    name: str

    @property
    def input_shape(self) -> str:
        return contract.input_shape_name(self.service, self.name)

    def body_schema(self) -> dict:
        """Draft-04 schema of the JSON body: the input shape minus its URI/query/header members."""
        return contract.json_schema(
            self.service, self.input_shape, exclude=contract.location_members(self.service, self.name)
        )

    def required_request_parameters(self) -> dict[str, bool]:
        """``method.request.*`` names of the required query-string and header members."""
        required = contract.service_model(self.service)["shapes"][self.input_shape].get("required", [])
        return {
            f"method.request.{location}.{wire_name}": True
            for member, (location, wire_name) in contract.location_members(self.service, self.name).items()
            if member in required and location in ("querystring", "header")
        }


CREATE_HARNESS = Operation(contract.CONTROL_SERVICE, "CreateHarness")
UPDATE_HARNESS = Operation(contract.CONTROL_SERVICE, "UpdateHarness")
INVOKE_HARNESS = Operation(contract.DATA_SERVICE, "InvokeHarness")


class Api(Construct):
    """``HarnessApi``: a regional REST API, stage ``v1``, throttled, traced, access-logged."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: HarnessSettings,
        key: kms.IKey,
        api_function: lambda_.IFunction,
        invoke_function: lambda_.IFunction,
        erasure_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = encrypted_log_group(
            self, "AccessLogs", key=key, retention_days=settings.log_retention_days
        )
        self.rest_api = apigw.RestApi(
            self,
            "Default",
            rest_api_name=f"{Stack.of(self).stack_name}-HarnessApi",
            description="Agent harness API (AgentCore-compatible harness operations and InvokeHarness)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=BINARY_MEDIA_TYPES,
            policy=_resource_policy(Stack.of(self), settings.allowed_caller_principals),
            cloud_watch_role=settings.create_api_gateway_account_role,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                throttling_rate_limit=settings.api_throttle_rate_limit,
                throttling_burst_limit=settings.api_throttle_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.INFO,
                # Data trace would log full request and response bodies -- conversation content,
                # tool arguments -- into CloudWatch, outside erasure; execution logs keep metadata only.
                data_trace_enabled=False,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        pin_logical_id(self.rest_api, "HarnessApi")
        # The stack exports the URL once, as ApiUrl.
        self.rest_api.node.try_remove_child("Endpoint")
        self._validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        for response_type, response in GATEWAY_RESPONSES.items():
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=response.status_code,
                response_headers={"x-amzn-ErrorType": f"'{response.error_type}'"},
                templates={JSON: response.body},
            )

        api = apigw.LambdaIntegration(api_function, proxy=True, allow_test_invoke=False)
        erasure = apigw.LambdaIntegration(erasure_function, proxy=True, allow_test_invoke=False)
        # InvokeHarness streams: API Gateway passes the function's response on as it arrives
        # (InvokeWithResponseStream), for up to 15 minutes instead of 29 seconds.
        streamed = apigw.LambdaIntegration(
            invoke_function,
            proxy=True,
            allow_test_invoke=False,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.minutes(15),
        )

        harnesses = self.rest_api.root.add_resource("harnesses")
        self._method(harnesses, "POST", api, CREATE_HARNESS)
        self._method(harnesses, "GET", api)
        invoke = harnesses.add_resource("invoke")
        self._method(invoke, "POST", streamed, INVOKE_HARNESS)
        harness = harnesses.add_resource("{harnessId}")
        self._method(harness, "GET", api)
        self._method(harness, "PATCH", api, UPDATE_HARNESS)
        self._method(harness, "DELETE", api)
        self._method(harness.add_resource("versions"), "GET", api)

        actor = self.rest_api.root.add_resource("actors").add_resource("{actorId}")
        self._method(actor, "DELETE", erasure)
        self._method(actor.add_resource("erasures").add_resource("{erasureId}"), "GET", erasure)

        self._acknowledge_findings()

    @property
    def url(self) -> str:
        return self.rest_api.url

    def _method(
        self,
        resource: apigw.IResource,
        http_method: str,
        integration: apigw.Integration,
        operation: Operation | None = None,
    ) -> apigw.Method:
        request_models = None
        request_parameters = None
        if operation is not None:
            request_models = {JSON: self._model(operation)}
            request_parameters = operation.required_request_parameters() or None
        method = resource.add_method(
            http_method,
            integration,
            request_validator=self._validator,
            request_models=request_models,
            request_parameters=request_parameters,
        )
        acknowledge(
            method,
            f"{AWS_SOLUTIONS}-COG4",
            "The method uses IAM (SigV4) authorization: callers are IAM principals (services and "
            "platform roles), authenticated and authorized by IAM and the API's resource policy; there "
            "is no end-user pool to put in front of it.",
        )
        return method

    def _model(self, operation: Operation) -> apigw.IModel:
        """A request model holding the operation's generated schema (``<InputShape>Model``)."""
        schema = operation.body_schema()
        model = apigw.CfnModel(
            self.rest_api,
            f"{operation.input_shape}Model",
            rest_api_id=self.rest_api.rest_api_id,
            content_type=JSON,
            description=f"{operation.service} {operation.name} request body, from the service model",
            schema=schema,
        )
        # A changed schema must produce a new deployment, as it would for an L2 model.
        self.rest_api.latest_deployment.add_to_logical_id({operation.input_shape: schema})  # type: ignore[union-attr]
        return apigw.Model.from_model_name(self, f"{operation.input_shape}ModelRef", model.ref)

    def _acknowledge_findings(self) -> None:
        stage = self.rest_api.deployment_stage
        acknowledge(
            stage,
            [f"{AWS_SOLUTIONS}-APIG3", *in_compliance_packs("APIGWAssociatedWithWAF")],
            "Every method requires IAM (SigV4) authentication and the resource policy admits only the "
            "configured principals, so anonymous traffic never reaches an integration; the stage is "
            "throttled. A WAF web ACL is the operator's choice (shared ACLs are usually managed by a "
            "central team) and attaches to the stage without changing this stack.",
        )
        acknowledge(
            stage,
            in_compliance_packs("APIGWCacheEnabledAndEncrypted"),
            "Responses are per caller and per actor (harness definitions, invocation streams); a stage "
            "cache keyed by path would serve one caller's response to another. Caching stays off.",
        )
        acknowledge(
            stage,
            in_compliance_packs("APIGWSSLEnabled"),
            "The rule asks for a client certificate that API Gateway presents to HTTP backends; every "
            "integration here is a Lambda proxy integration invoked through the Lambda API with IAM, "
            "where backend client certificates do not apply.",
        )
        cloud_watch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            acknowledge(
                cloud_watch_role,
                f"{AWS_SOLUTIONS}-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-wide API Gateway CloudWatch Logs role must be able to write execution and "
                "access logs of every API in the account and region; AWS maintains this managed policy "
                "for exactly that role. Set harness:createApiGatewayAccountRole=false where the landing "
                "zone already manages the account setting.",
            )


def _resource_policy(stack: Stack, allowed_callers: tuple[str, ...]) -> iam.PolicyDocument:
    """Allow ``execute-api:Invoke`` to the allowed callers only.

    Without a list, the account's own IAM principals may call (they still need an IAM policy
    allowing ``execute-api:Invoke``). With a list, the listed principals are allowed and everyone
    else, including principals of this account, is denied explicitly.
    """
    invoke = {"actions": ["execute-api:Invoke"], "resources": ["execute-api:/*"]}
    if not allowed_callers:
        return iam.PolicyDocument(
            statements=[iam.PolicyStatement(principals=[iam.AccountRootPrincipal()], **invoke)]
        )
    roots = [arn for arn in allowed_callers if arn.endswith(":root")]
    principals = [arn for arn in allowed_callers if not arn.endswith(":root")]
    conditions: dict[str, dict[str, list[str]]] = {}
    if principals:
        conditions["StringNotEquals"] = {"aws:PrincipalArn": principals}
    if roots:
        conditions.setdefault("StringNotEquals", {})["aws:PrincipalAccount"] = [
            arn.split(":")[4] for arn in roots
        ]
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(principals=[iam.ArnPrincipal(arn) for arn in allowed_callers], **invoke),
            iam.PolicyStatement(
                effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], conditions=conditions, **invoke
            ),
        ]
    )
