"""One exception hierarchy for everything a caller can act on.

Each error maps to an AgentCore-shaped error response (the error shapes of the
``bedrock-agentcore-control`` / ``bedrock-agentcore`` service models) in one place:
``HarnessError.to_response()``. Anything that is not a ``HarnessError`` is an internal error
and is never shown to the caller in detail.
"""

from __future__ import annotations

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


class ServiceQuotaExceededError(HarnessError):
    error_type = "ServiceQuotaExceededException"
    status_code = 402


class ThrottlingError(HarnessError):
    error_type = "ThrottlingException"
    status_code = 429


class PayloadTooLargeError(ValidationError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit_bytes} bytes.", reason="CannotParse")


class InternalError(HarnessError):
    """Raised for our own faults; the message shown to callers never carries internals."""
