"""describe_failure: what a caller is told when a step of the loop fails."""

from __future__ import annotations

import json

import pytest

from harness.errors import Failure, describe_failure

GENERIC = "The invocation failed because of an internal error; the operator can find it by invocation id."


def lambda_cause(error_type: str, message: str) -> str:
    """The Cause Step Functions records for a Lambda task's unhandled error."""
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": "b1f0c1d4-0000-0000-0000-000000000000",
            "stackTrace": ['  File "/var/task/harness/loop.py", line 1, in call_model\n'],
        }
    )


def test_a_client_timeout_has_its_own_message() -> None:
    assert describe_failure({"Error": "States.Timeout", "Cause": ""}) == Failure(
        "States.Timeout",
        "internalServerException",
        "The client did not answer the pending tool uses in time.",
    )


def test_model_call_errors_are_shown() -> None:
    failure = describe_failure(
        {
            "Error": "ModelCallError",
            "Cause": lambda_cause("ModelCallError", "Bedrock rejected the model call (ThrottlingException)"),
        }
    )
    assert failure == Failure(
        "ModelCallError",
        "runtimeClientError",
        "ModelCallError: Bedrock rejected the model call (ThrottlingException)",
    )


@pytest.mark.parametrize(
    "name",
    [
        "ValidationError",
        "ResourceNotFoundError",
        "AccessDeniedError",
        "ConflictError",
        "ResourceConflictError",
        "CannotParseError",
    ],
)
def test_our_own_errors_are_caller_safe(name: str) -> None:
    failure = describe_failure(
        {"Error": name, "Cause": lambda_cause(name, "harness h-1 version 2 no longer exists")}
    )
    assert failure == Failure(
        name, "internalServerException", f"{name}: harness h-1 version 2 no longer exists"
    )


@pytest.mark.parametrize(
    "name",
    [
        "RuntimeError",
        "KeyError",
        "TransientStoreError",
        "ClientError",
        "Lambda.Unknown",
        "States.TaskFailed",
        "States.Runtime",
        "Exception",
    ],
)
def test_other_errors_are_reported_without_internals(name: str) -> None:
    secret = "table AgentHarness-MemoryTable key {'actorId': 'alice'} at /var/task/harness/loop.py"
    assert describe_failure({"Error": name, "Cause": lambda_cause(name, secret)}) == Failure(
        name, "internalServerException", GENERIC
    )


@pytest.mark.parametrize(
    "cause",
    [
        None,
        "",
        "not json",
        json.dumps(["a list"]),
        json.dumps({"errorType": "ValidationError"}),
        json.dumps({"errorMessage": ""}),
    ],
    ids=["none", "empty", "text", "list", "no-message", "empty-message"],
)
def test_our_errors_without_a_readable_message_get_the_generic_one(cause: str | None) -> None:
    failure = {"Error": "ValidationError"}
    if cause is not None:
        failure["Cause"] = cause
    assert describe_failure(failure).message == GENERIC


def test_a_failure_without_an_error_name_is_a_runtime_error() -> None:
    assert describe_failure({}) == Failure("States.Runtime", "internalServerException", GENERIC)
