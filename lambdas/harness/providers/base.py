"""The provider interface and the events a provider streams back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# Provider failures are part of the one error hierarchy; providers raise them from here.
from harness.errors import ModelCallError as ModelCallError
from harness.errors import ModelRequestError as ModelRequestError
from harness.errors import ModelUnavailableError as ModelUnavailableError


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
