"""The state machine and the Python it runs name the same things.

Step Functions matches errors by class name and branches on stop reasons and fields by string: a
rename on either side would silently disable a retry or a branch. These tests read the ASL and
fail if it names an error, a stop reason or a state field that the Python does not define, or if a
task's payload and result no longer match the step's typed event and result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, get_type_hints

import pytest

from harness.errors import error_classes
from harness.loop import state
from stacks.components.agent_loop import ASL_PATH

# Error names Step Functions and the Lambda service raise themselves.
AWS_ERROR_PREFIXES = ("States.", "Lambda.")
# Stop reasons a Choice state may branch on.
STOP_REASONS = {state.TOOL_USE, state.HOOK_STOPPED}
# Where each part of the execution's state lives, and its type.
STATE_PATHS: dict[str, type] = {"$.ids": state.LoopIds, "$.loop": state.LoopState, "$.tools": state.ToolBatch}
# What each task sends its function and selects from the answer.
TASKS: dict[str, tuple[type, type | None]] = {
    "LoadContext": (state.StepEvent, state.LoopState),
    "CallModel": (state.ModelStepEvent, state.LoopState),
    "AuthorizeToolCalls": (state.ModelStepEvent, state.ToolBatch),
    "RunTool": (state.RunToolEvent, state.ToolRunResult),
    "AwaitClient": (state.AwaitClientEvent, None),
    "Finalize": (state.ModelStepEvent, None),
    "RecordFailure": (state.RecordFailureEvent, None),
}


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the Map state's ItemSelector it runs under, if any), nested Maps included."""
    for name, body in definition["States"].items():
        yield name, body, {}
        if body.get("Type") == "Map":
            for inner_name, inner, _ in _states(body["ItemProcessor"]):
                yield inner_name, inner, body.get("ItemSelector", {})


def _keys(typed: type) -> set[str]:
    return set(get_type_hints(typed))


def _selected(mapping: dict[str, Any]) -> set[str]:
    return {key.removesuffix(".$") for key in mapping}


def _path_problems(path: str) -> list[str]:
    """``$.loop.stopReason`` must name a field of LoopState, and so on."""
    for prefix, typed in STATE_PATHS.items():
        if path.startswith(prefix + "."):
            field = path[len(prefix) + 1 :]
            return [] if field in _keys(typed) else [f"{path}: {typed.__name__} has no field {field}"]
    return [f"{path}: not a path of the execution's state"]


def name_problems(definition: dict[str, Any], errors: set[str], stop_reasons: set[str]) -> list[str]:
    """Every string of the ASL that must match the Python, and does not."""
    problems: list[str] = []
    for name, body, item_selector in _states(definition):
        for clause in body.get("Retry", []) + body.get("Catch", []):
            for error in clause["ErrorEquals"]:
                if not error.startswith(AWS_ERROR_PREFIXES) and error not in errors:
                    problems.append(f"{name}: ErrorEquals {error} names no error of harness.errors")
        for choice in body.get("Choices", []):
            problems += _path_problems(choice["Variable"])
            if "StringEquals" in choice and choice["StringEquals"] not in stop_reasons:
                problems.append(f"{name}: StringEquals {choice['StringEquals']} is no stop-reason constant")
        if "TimeoutSecondsPath" in body:
            problems += _path_problems(body["TimeoutSecondsPath"])
        if name not in TASKS:
            continue
        event, result = TASKS[name]
        # A Map's task passes its item ("Payload.$": "$"), which the ItemSelector built.
        parameters = body["Parameters"]
        payload = item_selector if "Payload.$" in parameters else parameters["Payload"]
        if _selected(payload) != _keys(event):
            problems.append(f"{name}: payload {sorted(_selected(payload))} is not {event.__name__}")
        selector = body.get("ResultSelector")
        if result is not None and (selector is None or _selected(selector) != _keys(result)):
            problems.append(f"{name}: ResultSelector does not select {result.__name__}")
    return problems


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASL_PATH.read_text())
    return loaded


def test_every_error_stop_reason_and_field_the_state_machine_names_is_defined_in_python(
    definition: dict[str, Any],
) -> None:
    assert name_problems(definition, set(error_classes()), STOP_REASONS) == []


def test_every_loop_task_is_checked(definition: dict[str, Any]) -> None:
    tasks = {name for name, body, _ in _states(definition) if body.get("Type") == "Task"}
    assert tasks == set(TASKS)


def test_the_retries_match_the_transient_store_error(definition: dict[str, Any]) -> None:
    """Every task retries what the stores raise when they are briefly unavailable."""
    for name, body, _ in _states(definition):
        if body.get("Type") == "Task":
            retried = {error for clause in body["Retry"] for error in clause["ErrorEquals"]}
            assert "TransientStoreError" in retried, name
    assert "TransientStoreError" in error_classes()


def test_renaming_an_error_on_either_side_is_found(definition: dict[str, Any]) -> None:
    renamed_in_asl = json.loads(
        json.dumps(definition).replace('"TransientStoreError"', '"TransientStoreErr"')
    )
    assert any(
        "TransientStoreErr names no error" in p
        for p in name_problems(renamed_in_asl, set(error_classes()), STOP_REASONS)
    )
    renamed_in_python = set(error_classes()) - {"TransientStoreError"}
    assert any(
        "TransientStoreError names no error" in p
        for p in name_problems(definition, renamed_in_python, STOP_REASONS)
    )


def test_renaming_a_stop_reason_or_field_on_either_side_is_found(definition: dict[str, Any]) -> None:
    renamed_reason = json.loads(json.dumps(definition).replace('"hook_stopped"', '"hook_stop"'))
    assert any(
        "hook_stop is no stop-reason" in p
        for p in name_problems(renamed_reason, set(error_classes()), STOP_REASONS)
    )
    assert any(
        "hook_stopped is no stop-reason" in p
        for p in name_problems(definition, set(error_classes()), STOP_REASONS - {state.HOOK_STOPPED})
    )
    renamed_field = json.loads(json.dumps(definition).replace("$.loop.stopReason", "$.loop.stop_reason"))
    assert any(
        "LoopState has no field stop_reason" in p
        for p in name_problems(renamed_field, set(error_classes()), STOP_REASONS)
    )
    renamed_result = json.loads(json.dumps(definition).replace('"awaitClient.$"', '"await.$"'))
    assert any(
        "AuthorizeToolCalls: ResultSelector" in p
        for p in name_problems(renamed_result, set(error_classes()), STOP_REASONS)
    )
