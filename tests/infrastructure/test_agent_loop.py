"""The agent loop: the ASL file, deployed as a Standard state machine with tracing and logging."""

from __future__ import annotations

import json

from stacks.components.agent_loop import ASL_PATH, EXECUTION_TIMEOUT, asl_placeholders

from .synthesis import Synthesized

STEP_FUNCTIONS = {
    "LoadContextFunctionArn": "LoadContextFunction",
    "CallModelFunctionArn": "CallModelFunction",
    "AuthorizeToolCallsFunctionArn": "AuthorizeToolCallsFunction",
    "RunToolFunctionArn": "RunToolFunction",
    "AwaitClientFunctionArn": "AwaitClientFunction",
    "FinalizeFunctionArn": "FinalizeFunction",
    "RecordFailureFunctionArn": "RecordFailureFunction",
}


def test_state_machine_is_standard_and_traced(synthesized: Synthesized) -> None:
    properties = synthesized.resources["AgentLoop"]["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_logs_every_event_but_no_execution_data(synthesized: Synthesized) -> None:
    logging = synthesized.resources["AgentLoop"]["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert synthesized.resources[log_group]["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": ["EncryptionKey", "Arn"]
    }


def test_state_machine_runs_the_asl_file_inline(synthesized: Synthesized) -> None:
    deployed = json.loads(synthesized.resources["AgentLoop"]["Properties"]["DefinitionString"])
    source = json.loads(ASL_PATH.read_text())
    assert deployed["States"] == source["States"]
    assert deployed["StartAt"] == source["StartAt"]
    assert "DefinitionS3Location" not in synthesized.resources["AgentLoop"]["Properties"]


def test_state_machine_has_an_execution_timeout_backstop(synthesized: Synthesized) -> None:
    deployed = json.loads(synthesized.resources["AgentLoop"]["Properties"]["DefinitionString"])
    source = json.loads(ASL_PATH.read_text())
    assert deployed["TimeoutSeconds"] == source.get("TimeoutSeconds", EXECUTION_TIMEOUT.to_seconds())


def test_every_asl_placeholder_is_substituted_with_its_function_arn(synthesized: Synthesized) -> None:
    substitutions = synthesized.resources["AgentLoop"]["Properties"]["DefinitionSubstitutions"]
    assert asl_placeholders(ASL_PATH.read_text()) == set(STEP_FUNCTIONS)
    assert substitutions == {name: {"Fn::GetAtt": [fn, "Arn"]} for name, fn in STEP_FUNCTIONS.items()}


def test_the_api_function_controls_executions_of_this_state_machine(synthesized: Synthesized) -> None:
    variables = synthesized.resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STATE_MACHINE_ARN"] == {"Ref": "AgentLoop"}
