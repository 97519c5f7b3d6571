"""Run Lambda tasks of the emulated state machine with the project's own handlers, in-process.

moto's Lambda backend would run function code in Docker; its Docker-free mode only echoes the
payload. The Step Functions interpreter calls ``LambdaFunction._invoke_lambda`` for each task,
so that is the one seam replaced here: it imports the function's handler (from the template)
and calls it with a Lambda-like context, returning what Lambda would (payload, error flag, logs).
"""

from __future__ import annotations

import importlib
import json
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import LambdaFunction

from local_runtime.provision import Deployment


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    timeout_seconds: int = 60
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = handler.rpartition(".")
    function: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attribute)
    return function


def context_for(function: dict[str, Any]) -> LocalLambdaContext:
    return LocalLambdaContext(
        function_name=function["name"],
        invoked_function_arn=function["arn"],
        timeout_seconds=function["timeout"],
    )


# Functions outside the stack that run in-process too: the user's hook functions and gateway Lambda
# targets, by function name (the local demo and the tests register them).
_EXTERNAL: dict[str, Callable[[Any, Any], Any]] = {}


def register(function_name: str, handler: Callable[[Any, Any], Any]) -> None:
    """Run ``handler`` when the emulated Lambda function ``function_name`` is invoked."""
    _EXTERNAL[function_name] = handler


def unregister(function_name: str) -> None:
    _EXTERNAL.pop(function_name, None)


def install(deployment: Deployment) -> None:
    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str) else (event or {})
        external = _EXTERNAL.get(self.function_name)
        if external is not None:
            function = {"name": self.function_name, "arn": self.function_arn, "timeout": self.timeout}
            handler = external
        else:
            function = deployment.function_by_name(self.function_name)
            handler = load_handler(function["handler"])
        try:
            result = handler(payload, context_for(function))
        except Exception as error:
            # Lambda's shape for an unhandled error; Step Functions takes errorType as the error name.
            body = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return json.dumps(body), True, ""
        return json.dumps(result), False, ""

    LambdaFunction._invoke_lambda = invoke  # type: ignore[method-assign]
