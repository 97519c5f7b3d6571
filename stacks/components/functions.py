"""The Lambda functions: the API, the agent loop's steps, tool dispatch and erasure.

All run the same code asset (``lambdas/``) on arm64 with X-Ray tracing, each with its own role
and its own CMK-encrypted log group. An environment variable has the same value in every
function that has it (the local runtime runs all handlers in one process with their union), and a
function gets a table or bucket name only together with a grant on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from harness.gateway import bundle as bundle_gateways
from stacks.components.artifacts import Artifacts
from stacks.components.audit import Audit
from stacks.components.compliance import (
    acknowledge,
    acknowledge_wildcard_resource,
    in_compliance_packs,
    nist,
)
from stacks.components.encryption import Encryption
from stacks.components.lambda_bundling import code_asset, dependencies_layer
from stacks.components.log_groups import encrypted_log_group
from stacks.components.memory import Memory
from stacks.components.naming import colon_arn, pin_logical_id
from stacks.components.vault import Vault
from stacks.settings import PROJECT_ROOT, HarnessSettings

#: The newest Python runtime Lambda offers (cdk-nag AwsSolutions-L1 checks this too).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
MEMORY_MB = 512
#: Where the third-party packages of ``lambdas/requirements.txt`` (installed for RUNTIME on
#: ARCHITECTURE) go: into the one code asset (False), or into one layer every function uses (True),
#: which keeps the code asset small and leaves it out of deploys that change only the handlers.
DEPENDENCIES_IN_LAYER = True
SERVICE_NAME = "agent-harness"
#: The deployment's gateway configuration, written into the code asset (``harness:gateways``
#: with each OpenAPI document inlined), so every function reads the same definition.
GATEWAY_CONFIG_FILE = "gateways.json"
METRICS_NAMESPACE = "AgentHarness"


@dataclass(frozen=True)
class FunctionSpec:
    construct_id: str
    handler: str
    description: str
    timeout: Duration


API = FunctionSpec(
    "ApiFunction",
    "handlers.api.handler",
    "Harness API: Create/Get/List/Update/Delete harness, ListHarnessVersions",
    Duration.seconds(29),  # API Gateway's integration timeout
)
INVOKE_STREAM = FunctionSpec(
    "InvokeStreamFunction",
    # Never called: the exec wrapper starts the runtime loop runtime_api.streaming, which streams the
    # response. The local runtime finds the route it streams (STREAMING_ROUTES) in this module.
    "runtime_api.streaming.handler",
    "Harness API: InvokeHarness, streamed to the caller as the loop writes events",
    Duration.minutes(15),  # the longest an API Gateway response stream may last
)
#: Started by Lambda in place of the managed runtime's bootstrap (see runtime_api/streaming.py).
STREAMING_EXEC_WRAPPER = "/var/task/exec_wrappers/streaming-bootstrap"
LOAD_CONTEXT = FunctionSpec(
    "LoadContextFunction",
    "handlers.loop.load_context",
    "Loop: resolve harness and session, set budgets",
    Duration.seconds(60),
)
CALL_MODEL = FunctionSpec(
    "CallModelFunction",
    "handlers.loop.call_model",
    "Loop: send the conversation to the model",
    Duration.seconds(300),
)
AUTHORIZE_TOOL_CALLS = FunctionSpec(
    "AuthorizeToolCallsFunction",
    "handlers.loop.authorize_tool_calls",
    "Loop: authorize the model's tool calls and audit the decision",
    Duration.seconds(60),
)
RUN_TOOL = FunctionSpec(
    "RunToolFunction",
    "handlers.tools.run_tool",
    "Loop: dispatch one tool call to its tool type",
    Duration.seconds(300),
)
AWAIT_CLIENT = FunctionSpec(
    "AwaitClientFunction",
    "handlers.loop.await_client",
    "Loop: emit client-answered tool calls and park the task token",
    Duration.seconds(60),
)
FINALIZE = FunctionSpec(
    "FinalizeFunction",
    "handlers.loop.finalize",
    "Loop: close the turn, usage and audit record",
    Duration.seconds(60),
)
RECORD_FAILURE = FunctionSpec(
    "RecordFailureFunction",
    "handlers.loop.record_failure",
    "Loop: record a failed invocation",
    Duration.seconds(60),
)
ERASURE = FunctionSpec(
    "ErasureFunction",
    "handlers.erasure.handler",
    "Right to erasure: delete an actor's data in every store and write a receipt",
    Duration.seconds(300),
)
LOOP_STEPS = (
    LOAD_CONTEXT,
    CALL_MODEL,
    AUTHORIZE_TOOL_CALLS,
    RUN_TOOL,
    AWAIT_CLIENT,
    FINALIZE,
    RECORD_FAILURE,
)


class Functions(Construct):
    """Every function of the harness, with exactly the grants its handler needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: HarnessSettings,
        encryption: Encryption,
        memory: Memory,
        audit: Audit,
        artifacts: Artifacts,
        vault: Vault,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._encryption = encryption
        self._memory = memory
        self._audit = audit
        self._artifacts = artifacts
        self._vault = vault
        gateways = bundle_gateways(settings.gateways, PROJECT_ROOT)
        self._code = code_asset(
            RUNTIME,
            ARCHITECTURE,
            with_dependencies=not DEPENDENCIES_IN_LAYER,
            generated={GATEWAY_CONFIG_FILE: json.dumps(gateways, sort_keys=True, indent=1).encode()},
        )
        self._layers = (
            [dependencies_layer(self, "Dependencies", RUNTIME, ARCHITECTURE)] if DEPENDENCIES_IN_LAYER else []
        )

        self.api = self._function(API)
        self._use_harness_table(self.api, write=True)
        #: InvokeHarness, streamed: the same API code under a runtime loop that streams responses.
        self.invoke_stream = self._function(INVOKE_STREAM)
        self.invoke_stream.add_environment("AWS_LAMBDA_EXEC_WRAPPER", STREAMING_EXEC_WRAPPER)
        self._use_harness_table(self.invoke_stream, write=False)
        for function in (self.api, self.invoke_stream):
            # CreateHarness/UpdateHarness and invocation overrides accept only hook targets the
            # loop's grants cover; approvals arrive through InvokeHarness, from a second principal.
            function.add_environment("HOOK_TARGET_PREFIX", settings.hook_target_prefix)
            function.add_environment(
                "APPROVAL_SEPARATION_OF_DUTIES", "true" if settings.approval_separation_of_duties else "false"
            )
            self._use_memory_table(function)
            encryption.grant_encrypt_decrypt(function)

        #: The loop's steps by construct id; the ASL refers to each as ``${<id>Arn}``.
        self.loop_steps: dict[str, lambda_.Function] = {}
        for spec in LOOP_STEPS:
            function = self._function(spec)
            self._use_harness_table(function, write=False)
            self._use_memory_table(function)
            self.loop_steps[spec.construct_id] = function
        for name in (CALL_MODEL.construct_id, RUN_TOOL.construct_id):
            self._use_artifacts(self.loop_steps[name])
        # Model keys (CallModel), tool-server credentials (listing at LoadContext, calls at RunTool).
        for name in (CALL_MODEL.construct_id, LOAD_CONTEXT.construct_id, RUN_TOOL.construct_id):
            self._use_vault(self.loop_steps[name])
        for name in (AUTHORIZE_TOOL_CALLS.construct_id, FINALIZE.construct_id, RECORD_FAILURE.construct_id):
            self._use_audit(self.loop_steps[name])
        # The steps that run hooks: beforeInvocation, beforeToolCall, afterToolCall, afterInvocation.
        for spec in (LOAD_CONTEXT, AUTHORIZE_TOOL_CALLS, RUN_TOOL, FINALIZE, RECORD_FAILURE):
            self._use_hook_targets(self.loop_steps[spec.construct_id])
        self._use_gateway_functions(self.loop_steps[RUN_TOOL.construct_id], gateways)

        self.erasure = self._function(ERASURE)
        self._use_memory_table(self.erasure, erase=True)
        self._use_artifacts(self.erasure, erase=True)
        self._use_audit(self.erasure, receipts=True)
        encryption.grant_encrypt_decrypt(self.erasure)

    @property
    def api_functions(self) -> list[lambda_.Function]:
        """The functions behind the API's harness routes (they start and resume the loop)."""
        return [self.api, self.invoke_stream]

    @property
    def all(self) -> list[lambda_.Function]:
        return [*self.api_functions, *self.loop_steps.values(), self.erasure]

    # --- what a function may use; each grant comes with the name of what it grants ------------

    def _use_harness_table(self, function: lambda_.Function, *, write: bool) -> None:
        if write:
            self._memory.grant_read_write_harnesses(function)
        else:
            self._memory.grant_read_harnesses(function)
        function.add_environment("HARNESS_TABLE_NAME", self._memory.harness_table.table_name)

    def _use_memory_table(self, function: lambda_.Function, *, erase: bool = False) -> None:
        if erase:
            self._memory.grant_erase_actor_data(function)
        else:
            self._memory.grant_read_write_actor_data(function)
        function.add_environment("MEMORY_TABLE_NAME", self._memory.memory_table.table_name)

    def _use_artifacts(self, function: lambda_.Function, *, erase: bool = False) -> None:
        if erase:
            self._artifacts.grant_erase(function)
        else:
            self._artifacts.grant_read_write(function)
        function.add_environment("ARTIFACT_BUCKET_NAME", self._artifacts.bucket.bucket_name)

    def _use_audit(self, function: lambda_.Function, *, receipts: bool = False) -> None:
        if receipts:
            self._audit.grant_erasure_receipts(function)
        else:
            self._audit.grant_append(function)
        function.add_environment("AUDIT_BUCKET_NAME", self._audit.bucket.bucket_name)
        function.add_environment("AUDIT_MAC_KEY_ID", self._encryption.mac_key.key_arn)

    def _use_hook_targets(self, function: lambda_.Function) -> None:
        """Invoke / notify the hook targets a harness may name: only those named with the prefix."""
        stack = Stack.of(self)
        prefix = self._settings.hook_target_prefix
        arns = {
            "lambda:InvokeFunction": colon_arn(self, "lambda", "function", f"{prefix}*"),
            "sns:Publish": stack.format_arn(service="sns", resource=f"{prefix}*"),
            "events:PutEvents": stack.format_arn(
                service="events", resource="event-bus", resource_name=f"{prefix}*"
            ),
        }
        for action, arn in arns.items():
            function.add_to_role_policy(iam.PolicyStatement(actions=[action], resources=[arn]))
        for placeholder in (
            f"arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:{prefix}*",
            f"arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:{prefix}*",
            f"arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/{prefix}*",
        ):
            acknowledge_wildcard_resource(
                function,
                placeholder,
                f"Hook targets are harness configuration; a harness may name only targets called "
                f"{prefix}* (CreateHarness checks it), so the grant covers exactly that naming scope in "
                "this account and region, with one action per service.",
            )
        function.add_environment("HOOK_TARGET_PREFIX", prefix)

    def _use_gateway_functions(self, function: lambda_.Function, gateways: dict[str, object]) -> None:
        """Invoke exactly the Lambda functions the gateways' lambda targets name."""
        arns = sorted(
            {
                target["lambda"]["functionArn"]
                for gateway in gateways.values()
                for target in gateway["targets"]  # type: ignore[index]
                if "lambda" in target
            }
        )
        if arns:
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=arns)
            )

    def _use_vault(self, function: lambda_.Function) -> None:
        self._vault.grant_read(function)
        function.add_environment("VAULT_SECRET_PREFIX", self._vault.secret_prefix)

    # --- one function -------------------------------------------------------------------------

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        name = spec.construct_id
        log_group = encrypted_log_group(
            self, f"{name}Logs", key=self._encryption.key, retention_days=self._settings.log_retention_days
        )
        # An explicit role instead of the default one: the default attaches the AWS managed
        # AWSLambdaBasicExecutionRole (logs:CreateLogGroup and writes to any log group).
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {name}",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            name,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self._code,
            layers=self._layers,
            handler=spec.handler,
            role=role,
            timeout=spec.timeout,
            memory_size=MEMORY_MB,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment=self._common_environment(),
        )
        pin_logical_id(function, name)
        self._acknowledge_function_findings(function, role)
        return function

    def _common_environment(self) -> dict[str, str]:
        settings = self._settings
        return {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": settings.log_level,
            "LOG_LEVEL": settings.log_level,
            "DEFAULT_MODEL_CONFIG": settings.default_model_json,
            "EVENT_EXPIRY_DAYS": str(settings.event_expiry_days),
            "CLIENT_RESPONSE_TIMEOUT_SECONDS": str(settings.client_response_timeout_seconds),
            "GATEWAY_CONFIG_FILE": GATEWAY_CONFIG_FILE,
        }

    @staticmethod
    def _acknowledge_function_findings(function: lambda_.Function, role: iam.Role) -> None:
        acknowledge(
            function,
            nist("LambdaDLQ"),
            "Invoked synchronously only (by API Gateway and by Step Functions tasks); a dead-letter "
            "queue applies to asynchronous invocations. Failures surface to the caller, and the state "
            "machine retries and records them (RecordFailure).",
        )
        acknowledge(
            function,
            in_compliance_packs("LambdaInsideVPC"),
            "The function reaches no private network resource: it calls AWS APIs over TLS with IAM "
            "(SigV4) and model providers over HTTPS. A VPC would add NAT egress to operate without "
            "narrowing access; an operator needing VPC egress control can attach one.",
        )
        acknowledge(
            function,
            nist("LambdaConcurrency"),
            "Reserved concurrency is carved out of the account's regional quota shared with other "
            "workloads, so it is sized by the operator; load is bounded upstream by API Gateway stage "
            "throttling and the state machine's Map MaxConcurrency.",
        )
        acknowledge(
            role,
            in_compliance_packs("IAMNoInlinePolicy"),
            "The role's permissions are generated by CDK grants into a policy attached to this role "
            "alone and deleted with it; every statement names its resources (see the template), and a "
            "managed policy would only make them attachable to other principals.",
        )
        acknowledge_wildcard_resource(
            role,
            "*",
            "X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) does not support "
            "resource-level permissions; these two actions are the only ones granted on '*'.",
        )
