"""Shared vocabulary of an invocation: statuses, stored positions, the effective configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.tools.registry import Catalog, CatalogTool, Toolset

RUNNING = "RUNNING"
AWAITING_CLIENT = "AWAITING_CLIENT"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
INTERRUPTED = "INTERRUPTED"
ACTIVE_STATUSES = {RUNNING, AWAITING_CLIENT}

# Members of InvokeHarness that override the harness for one invocation.
OVERRIDES = ("model", "systemPrompt", "tools", "allowedTools", "maxIterations", "maxTokens", "timeoutSeconds")

END_POSITION_PREFIX = "9999#"
END_CONTROL_POSITION = "9999#99"


def input_position(turn: int, index: int) -> str:
    return f"{turn:06d}#in#{index:03d}"


def assistant_position(turn: int, iteration: int) -> str:
    return f"{turn:06d}#it#{iteration:04d}#a"


def assistant_iteration(turn: int, position: str) -> int | None:
    """The iteration of an ``assistant_position`` of ``turn``; None for any other position."""
    prefix = f"{turn:06d}#it#"
    if position.startswith(prefix) and position.endswith("#a"):
        return int(position[len(prefix) : len(prefix) + 4])
    return None


def results_position(turn: int, iteration: int) -> str:
    return f"{turn:06d}#it#{iteration:04d}#r"


def start_event_position(n: int) -> str:
    """Events of LoadContext (beforeInvocation hooks): before the first model call's."""
    return f"0000#0#{n:04d}"


def model_event_position(iteration: int, n: int) -> str:
    return f"{iteration:04d}#1#{n:04d}"


# An iteration's tool calls are authorized and run in up to two phases: before the loop pauses for
# the client (phase 0) and after the client answered (phase 1: approved calls). A resumed stream
# reads after the pause position, so phase-1 events must sort after it.
_PHASE_MARK = {0: ("15", "2"), 1: ("35", "4")}


def authorize_event_position(iteration: int, phase: int, n: int) -> str:
    return f"{iteration:04d}#{_PHASE_MARK[phase][0]}#{n:04d}"


def tool_event_position(iteration: int, tool_index: int, n: int, phase: int = 0) -> str:
    return f"{iteration:04d}#{_PHASE_MARK[phase][1]}#{tool_index:03d}#{n:02d}"


def pause_position(iteration: int) -> str:
    return f"{iteration:04d}#3"


def end_position(n: int) -> str:
    return f"{END_POSITION_PREFIX}{n:02d}"


@dataclass(frozen=True)
class EffectiveConfig:
    """The harness version an invocation runs, with that invocation's overrides applied."""

    model: dict[str, Any]
    system: list[str]
    toolset: Toolset
    max_iterations: int
    max_tokens: int | None
    timeout_seconds: int
    # The harness's truncation strategy (InvokeHarness has no override for it).
    truncation: dict[str, Any]

    # Each hook of the harness, as configured (hooks cannot be overridden per invocation).
    hooks: list[dict[str, Any]]

    @classmethod
    def of(
        cls, harness: dict[str, Any], overrides: dict[str, Any], catalog: dict[str, Any] | None = None
    ) -> EffectiveConfig:
        """``catalog`` is what the invocation's tool servers offered when it started (``put_catalog``)."""
        tools = overrides.get("tools", harness.get("tools") or [])
        offered: Catalog = {}
        for item in (catalog or {}).get("tools", []):
            tool = CatalogTool.of_item(item)
            offered.setdefault(tool.server, []).append(tool)
        toolset = Toolset.for_invocation(
            tools, harness.get("allowedTools"), overrides.get("allowedTools"), offered
        )
        system = overrides.get("systemPrompt", harness.get("systemPrompt") or [])
        return cls(
            model=overrides.get("model") or harness["model"],
            system=[block["text"] for block in system if "text" in block],
            toolset=toolset,
            max_iterations=int(overrides.get("maxIterations", harness.get("maxIterations", 20))),
            max_tokens=overrides.get("maxTokens", harness.get("maxTokens")),
            timeout_seconds=int(overrides.get("timeoutSeconds", harness.get("timeoutSeconds", 900))),
            truncation=harness.get("truncation") or {"strategy": "none"},
            hooks=harness.get("hooks") or [],
        )
