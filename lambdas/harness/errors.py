"""One exception hierarchy for every error a caller sees or the state machine matches.

- ``HarnessError``: what an API caller can act on. Each maps to an AgentCore-shaped error response
  (the error shapes of the ``bedrock-agentcore-control`` / ``bedrock-agentcore`` service models) in
  one place, ``HarnessError.to_response()``.
- ``ToolCallError``: a tool call failed at or on the way to its target. The dispatcher turns it
  into the call's error result, which the model and the caller's stream see: its message names no
  secret value and no payload.
- ``ConfigurationError``: an operator's configuration (gateways, OpenAPI documents) is unusable;
  found when the stack is synthesized or a function loads it, and the message names the place.
- ``LoopError``: raised by a step of the agent loop. Step Functions sees the class name: its Retry
  and Catch clauses match it (``stacks/agent_loop.asl.json``; a test ties both sides), and
  ``describe_failure`` turns a caught one into what the caller's stream says.

Anything else is an internal error and is never shown to the caller in detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    """One field that failed validation: ``name`` is a dotted path such as ``tools[0].config``."""

    name: str
    message: str


class HarnessError(Exception):
    """Base of every error a caller can act on."""

    error_type = "InternalServerException"
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message}

    def to_response(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        """HTTP status, headers and JSON body, as the AWS rest-json protocol shapes errors."""
        return self.status_code, {"x-amzn-ErrorType": self.error_type}, self.body()


class ValidationError(HarnessError):
    error_type = "ValidationException"
    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        reason: str = "FieldValidationFailed",
        fields: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.fields = list(fields or [])

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "reason": self.reason}
        if self.fields:
            body["fieldList"] = [{"name": f.name, "message": f.message} for f in self.fields]
        return body


class CannotParseError(ValidationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, reason="CannotParse")


class ResourceConflictError(ValidationError):
    """A request that conflicts with work in progress on the same session (reason ResourceConflict)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="ResourceConflict")


class AccessDeniedError(HarnessError):
    error_type = "AccessDeniedException"
    status_code = 403


class ResourceNotFoundError(HarnessError):
    error_type = "ResourceNotFoundException"
    status_code = 404


class ConflictError(HarnessError):
    error_type = "ConflictException"
    status_code = 409


class PayloadTooLargeError(ValidationError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit_bytes} bytes.", reason="CannotParse")


class InternalError(HarnessError):
    """Raised for our own faults; the message shown to callers never carries internals."""


class ToolCallError(Exception):
    """A tool call could not be completed; the message is shown to the model as the tool's error."""


class McpError(ToolCallError):
    """The MCP server could not be reached, answered with an HTTP error, or broke the protocol."""


class McpTimeoutError(McpError):
    """The MCP operation did not finish within its timeout."""


class TargetUnavailable(ToolCallError):
    """A gateway target could not give an answer: circuit open, rate limited, no credentials, or
    connection failures, timeouts, 429 or 5xx until the attempts ran out."""


class OutboundAuthError(ToolCallError):
    """Credentials for a target could not be obtained; the message names no secret value."""


class VaultSecretError(ToolCallError, ValueError):
    """A named vault secret cannot be read; the message names the secret, never its value."""


class ArgumentError(ToolCallError, ValueError):
    """A tool call's arguments cannot make a request of its operation; safe to show the model."""


class ConfigurationError(ValueError):
    """An operator's configuration is unusable; the message names where it is wrong."""


class GatewayConfigError(ConfigurationError):
    """The stack's gateway configuration is wrong."""


class OpenApiError(ConfigurationError):
    """An OpenAPI document cannot be turned into tools."""


class LoopError(Exception):
    """Raised by a step of the agent loop; the state machine matches the class name."""

    # The stream event a caller gets when this error ends an invocation, and whether its message
    # was written for callers (else they get a generic message and the operator the details).
    stream_event = "internalServerException"
    caller_safe = False


class TransientStoreError(LoopError):
    """A store was briefly unavailable; the state machine retries the step (its Retry names this)."""


class LoopStateError(LoopError):
    """The stored state of an invocation contradicts the loop (an operator's problem: its message
    is logged, never shown to the caller)."""


class ContextWindowExceededError(LoopError):
    """Even the last turn of the conversation does not fit the model's context window."""


class ModelCallError(LoopError):
    """A provider failed; the message is safe to show the caller (no credentials, no payloads)."""

    stream_event = "runtimeClientError"
    caller_safe = True


class ModelUnavailableError(ModelCallError):
    """Throttling (429), a server error (5xx), a timeout or a connection failure: the call may
    succeed on another model, so the router fails over."""


class ModelRequestError(ModelCallError):
    """The provider rejected the request itself (bad request, authentication, permissions): no
    other model will fix it, so the invocation ends with this error."""


# Step Functions' own error names for a task that ran out of time, and for an error no name matched.
STATES_TIMEOUT = "States.Timeout"
STATES_RUNTIME = "States.Runtime"
CLIENT_TIMEOUT_MESSAGE = "The client did not answer the pending tool uses in time."
INTERNAL_FAILURE_MESSAGE = (
    "The invocation failed because of an internal error; the operator can find it by invocation id."
)


def _subclasses(cls: type[Exception]) -> list[type[Exception]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def error_classes() -> dict[str, type[Exception]]:
    """Every error of this hierarchy by class name: the names a state machine may match."""
    return {cls.__name__: cls for root in (HarnessError, LoopError) for cls in _subclasses(root)}


@dataclass(frozen=True)
class Failure:
    """A failed step as the caller sees it: the error's name, the stream event and its message."""

    error: str
    stream_event: str
    message: str


def describe_failure(failure: dict[str, Any]) -> Failure:
    """What the caller is told about a Step Functions Catch payload (``Error`` and ``Cause``)."""
    error = str(failure.get("Error", STATES_RUNTIME))
    if error == STATES_TIMEOUT:
        return Failure(error, "internalServerException", CLIENT_TIMEOUT_MESSAGE)
    cls = error_classes().get(error)
    stream_event = getattr(cls, "stream_event", "internalServerException")
    # Our own caller-facing errors (HarnessError) and errors marked caller-safe show their message.
    safe = cls is not None and (issubclass(cls, HarnessError) or getattr(cls, "caller_safe", False))
    try:
        detail = json.loads(failure.get("Cause") or "")
    except (TypeError, json.JSONDecodeError):
        detail = {}
    if safe and isinstance(detail, dict) and detail.get("errorMessage"):
        return Failure(error, stream_event, f"{error}: {detail['errorMessage']}")
    return Failure(error, stream_event, INTERNAL_FAILURE_MESSAGE)
