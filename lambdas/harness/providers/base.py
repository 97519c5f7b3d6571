"""The provider interface and the events a provider streams back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    """What every provider receives: canonical messages, system text, tools, inference settings."""

    model_config: dict[str, Any]
    messages: list[dict[str, Any]]
    system: list[str] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolUseStart:
    tool_use_id: str
    name: str


@dataclass(frozen=True)
class ToolUseInputDelta:
    tool_use_id: str
    input_json: str


@dataclass(frozen=True)
class Stop:
    reason: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


ModelEvent = TextDelta | ToolUseStart | ToolUseInputDelta | Stop | Usage


class ModelProvider(Protocol):
    name: str

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        """Yield events as the model produces them; ends with ``Stop`` then ``Usage``."""
        ...


class ModelCallError(Exception):
    """A provider failed; the message is safe to show the caller (no credentials, no payloads)."""


class ModelUnavailableError(ModelCallError):
    """Throttling (429), a server error (5xx), a timeout or a connection failure: the call may
    succeed on another model, so the router fails over."""


class ModelRequestError(ModelCallError):
    """The provider rejected the request itself (bad request, authentication, permissions): no
    other model will fix it, so the invocation ends with this error."""
