"""Checking a value against the shapes of a service model: the walker behind ``contract.validate``.

It works on a service's ``shapes`` mapping (see ``contract.service_model``) and collects every
problem before raising one ValidationError, worded as AgentCore words them. ``contract`` holds the
entry points (``validate``, ``validate_request``); ``contract_schema`` translates the same rules to
JSON Schema, so the vocabulary both share (numeric ranges, documents, unions) lives here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from harness.errors import FieldProblem, ValidationError

Shape = Mapping[str, Any]

MAX_DEPTH: Final = 64
"""Deepest nesting of JSON objects/arrays accepted; deeper input is a ValidationError, never a
RecursionError (documents such as a tool's ``inputSchema`` are otherwise unbounded)."""

MAX_REPORTED_PROBLEMS: Final = 100
"""Problems listed in ``fieldList``. The count in the message is always the true total; the cap
keeps a pathological body (thousands of bad list items) from producing a larger error response."""

_SUMMARISED_PROBLEMS: Final = 10
_ROOT_NAME: Final = "$"

# Implicit ranges of the numeric shape types, for when the model sets no min/max.
INTEGER_BOUNDS: Final[Mapping[str, tuple[int, int]]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
FLOAT_TYPES: Final = frozenset({"float", "double"})


def is_document(shape: Shape) -> bool:
    return bool(shape.get("document"))


def is_union(shape: Shape) -> bool:
    return bool(shape.get("union"))


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    # AWS patterns are Java regular expressions, whose \d, \w and \s are ASCII-only.
    return re.compile(pattern, re.ASCII)


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _length_messages(shape: Shape, length: int) -> list[str]:
    messages = []
    if "min" in shape and length < shape["min"]:
        messages.append(f"Member must have length greater than or equal to {shape['min']}")
    if "max" in shape and length > shape["max"]:
        messages.append(f"Member must have length less than or equal to {shape['max']}")
    return messages


def string_messages(shape: Shape, value: str) -> list[str]:
    messages = []
    if "enum" in shape and value not in shape["enum"]:
        messages.append(f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]")
    length_messages = _length_messages(shape, len(value))
    messages.extend(length_messages)
    # A value already out of its length bounds skips the pattern: the length verdict suffices, and
    # it keeps an oversized value from being fed to a backtracking pattern.
    if "pattern" in shape and not length_messages and not compiled(shape["pattern"]).fullmatch(value):
        messages.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    return messages


def _range_messages(low: float | None, high: float | None, value: float) -> list[str]:
    messages = []
    if low is not None and value < low:
        messages.append(f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        messages.append(f"Member must have value less than or equal to {high}")
    return messages


class Validator:
    """Walks one value against the shapes of one service, collecting every problem."""

    def __init__(self, service: str, shapes: Mapping[str, Shape]) -> None:
        self._service = service
        self._shapes = shapes
        self.problems: list[FieldProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(FieldProblem(name=path or _ROOT_NAME, message=message))

    def raise_if_invalid(self) -> None:
        if not self.problems:
            return
        total = len(self.problems)
        listed = "; ".join(
            f"Value at '{p.name}' failed to satisfy constraint: {p.message}"
            for p in self.problems[:_SUMMARISED_PROBLEMS]
        )
        more = f"; and {total - _SUMMARISED_PROBLEMS} more" if total > _SUMMARISED_PROBLEMS else ""
        noun = "error" if total == 1 else "errors"
        raise ValidationError(
            f"{total} validation {noun} detected: {listed}{more}",
            fields=self.problems[:MAX_REPORTED_PROBLEMS],
        )

    def _enter(self, path: str, depth: int) -> bool:
        """Whether a container at ``depth`` levels of nesting may be descended into."""
        if depth + 1 > MAX_DEPTH:
            self.problem(path, f"Member must not be nested more than {MAX_DEPTH} levels deep")
            return False
        return True

    def check(self, shape_name: str, value: object, path: str, depth: int) -> None:
        shape = self._shapes[shape_name]
        if value is None:
            self.problem(path, "Member must not be null")
            return
        if is_document(shape):
            self._check_document(value, path, depth)
            return
        kind = shape["type"]
        if kind == "structure":
            self._check_structure(shape, value, path, depth)
        elif kind == "list":
            self._check_list(shape, value, path, depth)
        elif kind == "map":
            self._check_map(shape, value, path, depth)
        elif kind == "string":
            if isinstance(value, str):
                for message in string_messages(shape, value):
                    self.problem(path, message)
            else:
                self.problem(path, "Member must be a string")
        elif kind in INTEGER_BOUNDS:
            self._check_integer(shape, value, path)
        elif kind in FLOAT_TYPES:
            self._check_float(shape, value, path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.problem(path, "Member must be a boolean")
        elif kind == "timestamp":
            self._check_timestamp(value, path)
        elif kind == "blob":
            self._check_blob(shape, value, path)
        else:
            raise ValueError(f"{self._service} shape {shape_name!r} has unsupported type {kind!r}")

    def _check_structure(self, shape: Shape, value: object, path: str, depth: int) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, "Member must be an object")
            return
        if not self._enter(path, depth):
            return
        members: Mapping[str, Any] = shape.get("members", {})
        for name, member_value in value.items():
            member_path = _join(path, str(name))
            if name in members:
                self.check(members[name]["shape"], member_value, member_path, depth + 1)
            else:
                self.problem(member_path, "Member is an unknown field")
        for name in shape.get("required", []):
            if name not in value:
                self.problem(_join(path, name), "Member must not be null")
        if is_union(shape):
            present = [name for name in value if name in members]
            if len(present) != 1:
                self.problem(
                    path,
                    f"Member must have exactly one of [{', '.join(members)}] set, found {len(present)}",
                )

    def _check_list(self, shape: Shape, value: object, path: str, depth: int) -> None:
        if not isinstance(value, list):
            self.problem(path, "Member must be a list")
            return
        if not self._enter(path, depth):
            return
        for message in _length_messages(shape, len(value)):
            self.problem(path, message)
        member_shape = shape["member"]["shape"]
        for index, item in enumerate(value):
            self.check(member_shape, item, f"{path}[{index}]", depth + 1)

    def _check_map(self, shape: Shape, value: object, path: str, depth: int) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, "Member must be an object (a map)")
            return
        if not self._enter(path, depth):
            return
        for message in _length_messages(shape, len(value)):
            self.problem(path, message)
        key_shape = self._shapes[shape["key"]["shape"]]
        value_shape = shape["value"]["shape"]
        key_messages: set[str] = set()
        for key, item in value.items():
            if isinstance(key, str):
                key_messages.update(string_messages(key_shape, key))
            else:
                key_messages.add("Member must be a string")
            self.check(value_shape, item, _join(path, str(key)), depth + 1)
        # Keys are reported once per distinct problem, without echoing them: a sensitive map's
        # keys should not travel into logs of the error.
        for message in sorted(key_messages):
            self.problem(path, f"Map keys must satisfy constraint: {message}")

    def _check_integer(self, shape: Shape, value: object, path: str) -> None:
        # bool is a subclass of int in Python, but JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, "Member must be an integer")
            return
        low, high = INTEGER_BOUNDS[shape["type"]]
        for message in _range_messages(shape.get("min", low), shape.get("max", high), value):
            self.problem(path, message)

    def _check_float(self, shape: Shape, value: object, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, "Member must be a number")
            return
        if not math.isfinite(value):
            self.problem(path, "Member must be a finite number")
            return
        for message in _range_messages(shape.get("min"), shape.get("max"), value):
            self.problem(path, message)

    def _check_timestamp(self, value: object, path: str) -> None:
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                self.problem(path, "Member must be an ISO-8601 timestamp")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problem(path, "Member must be an ISO-8601 timestamp string or epoch seconds")

    def _check_blob(self, shape: Shape, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.problem(path, "Member must be a base64-encoded string")
            return
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.problem(path, "Member must be a base64-encoded string")
            return
        # A blob's length constraints are on the bytes, not on their base64 text.
        for message in _length_messages(shape, len(decoded)):
            self.problem(path, message)

    def _check_document(self, value: object, path: str, depth: int) -> None:
        if value is None or isinstance(value, str | bool | int):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                self.problem(path, "Member must be a finite number")
            return
        if isinstance(value, list):
            if self._enter(path, depth):
                for index, item in enumerate(value):
                    self._check_document(item, f"{path}[{index}]", depth + 1)
            return
        if isinstance(value, Mapping):
            if self._enter(path, depth):
                for key, item in value.items():
                    if not isinstance(key, str):
                        self.problem(path, "Member must have string keys")
                    self._check_document(item, _join(path, str(key)), depth + 1)
            return
        self.problem(path, "Member must be a JSON value")
