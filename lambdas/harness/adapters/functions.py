"""Lambda functions outside the stack, invoked and waited for: hooks' Lambda targets and gateway
Lambda targets.

``invoker`` gives the call (one shared client per timeout and attempt count); ``answer`` reads
what it returned. A function that raised is one outcome, ``FunctionFailed``, whatever Lambda calls
it: the error document it carries may hold data, so only its kind is ever reported.

The local runtime and the tests run these functions in-process behind moto's Lambda
(``local_runtime.lambda_dispatch.register``), so the same Invoke travels either way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from harness.adapters.clients import client

# (function ARN, JSON payload, timeout seconds) -> Lambda's Invoke response: "Payload" has read(),
# "FunctionError" is set when the function raised. botocore errors are raised as they are.
Invoke = Callable[[str, bytes, float], Mapping[str, Any]]


class FunctionFailed(Exception):
    """The function ran and raised (Lambda's ``FunctionError``); ``kind`` is all that is reported."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def invoker(*, attempts: int) -> Invoke:
    """A synchronous invoke (RequestResponse) that makes at most ``attempts`` attempts, each waiting
    at most the call's timeout (rounded up to whole seconds) for the answer. A caller for whom a
    second run of the function would be wrong asks for one attempt."""

    def invoke(function_arn: str, payload: bytes, timeout_seconds: float) -> Mapping[str, Any]:
        lambda_client = client("lambda", read_timeout=math.ceil(timeout_seconds), total_max_attempts=attempts)
        response: Mapping[str, Any] = lambda_client.invoke(
            FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload
        )
        return response

    return invoke


def answer(response: Mapping[str, Any]) -> Any:
    """What the function returned, decoded from JSON: None when it returned nothing, the text when it
    is not JSON. Raises ``FunctionFailed`` when the function raised; an answer that cannot be read
    at all (not UTF-8, nested past the recursion limit) raises ``ValueError`` or ``RecursionError``."""
    kind = response.get("FunctionError")
    if kind:
        raise FunctionFailed(kind)
    body: bytes = response["Payload"].read()
    if not body:
        return None
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body.decode("utf-8", errors="replace")
