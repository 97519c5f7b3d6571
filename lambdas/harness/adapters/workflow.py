"""The agent loop's state machine: start an invocation, resume a paused one, stop one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from harness.adapters.clients import client


class Workflow:
    def __init__(self, state_machine_arn: str) -> None:
        self._arn = state_machine_arn
        self._sfn = client("stepfunctions")

    def start(self, invocation_id: str, execution_input: Mapping[str, Any]) -> None:
        """Start the execution named after the invocation; starting it again is a no-op."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=invocation_id,
                input=json.dumps(execution_input, separators=(",", ":")),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise

    def resume(self, task_token: str, output: dict[str, Any]) -> None:
        self._sfn.send_task_success(taskToken=task_token, output=json.dumps(output))

    def _execution_arn(self, invocation_id: str) -> str:
        return self._arn.replace(":stateMachine:", ":execution:") + f":{invocation_id}"

    def status(self, invocation_id: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, ... or None when the invocation's execution never started."""
        try:
            response = self._sfn.describe_execution(executionArn=self._execution_arn(invocation_id))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return str(response["status"])

    def is_running(self, invocation_id: str) -> bool:
        return self.status(invocation_id) == "RUNNING"

    def stop(self, invocation_id: str, cause: str) -> None:
        execution_arn = self._execution_arn(invocation_id)
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error="Stopped", cause=cause)
        except ClientError as error:
            if error.response["Error"]["Code"] not in {"ExecutionDoesNotExist", "ValidationException"}:
                raise
