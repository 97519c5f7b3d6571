"""Declarative approval policies: which calls of high-impact tools wait for a human's answer.

Configuration (a list, from the stack configuration of a gateway target)::

    [{"tool": "createTransfer",
      "when": {"field": "body.amount", "op": "gt", "value": 10000},
      "reason": "Transfers above 10,000 need a second pair of eyes"}]

``tool`` is an fnmatch pattern on the tool's own name (case-sensitive). ``when`` is a condition:

* ``{"field": "<dotted path into the tool input>", "op": "<op>", "value": <JSON value>}`` with op
  ``gt ge lt le`` (numeric value), ``eq ne`` (any JSON value), ``in notIn`` (a list), or
  ``exists`` (value optional, default true; false means "is absent");
* ``{"all": [cond, ...]}``, ``{"any": [cond, ...]}``, ``{"not": cond}``, ``{"always": true}``.

Configuration is checked up front (``parse_policies`` raises ValueError naming the policy and the
problem). Tool input comes from the model and is never trusted to be well formed: a comparison
whose field is missing or of another JSON type does not match, and nothing here raises on it. So
``{"field": "amount", "op": "gt", "value": 10000}`` does not match ``"amount": "20000"``; that
relies on the tool's inputSchema (checked before dispatch) declaring ``amount`` a number.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

MAX_REASON_LENGTH: Final = 1024
_MAX_CONDITION_DEPTH: Final = 32  # configuration deeper than this is a mistake, not a policy


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class Always:
    pass


Condition = Comparison | AllOf | AnyOf | Not | Always


@dataclass(frozen=True)
class ApprovalPolicy:
    tool: str
    when: Condition
    reason: str

    def applies_to(self, tool_name: str) -> bool:
        return fnmatch.fnmatchcase(tool_name, self.tool)


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    reason: str


# --- comparing model input ---------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[int | float]:
    # JSON booleans are not numbers: true is not 1 here, whatever Python thinks.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[key], right[key]) for key in left)
    return left == right


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[object, object], bool]:
    def matches(actual: object, expected: object) -> bool:
        return _is_number(actual) and _is_number(expected) and compare(actual, expected)

    return matches


def _member_of(actual: object, expected: object) -> bool:
    return isinstance(expected, list) and any(_json_equal(actual, item) for item in expected)


# op -> (test of a present field's value against the configured value, symbol for reasons)
_OPERATORS: Final[Mapping[str, tuple[Callable[[object, object], bool], str]]] = {
    "gt": (_numeric(lambda actual, expected: actual > expected), ">"),
    "ge": (_numeric(lambda actual, expected: actual >= expected), ">="),
    "lt": (_numeric(lambda actual, expected: actual < expected), "<"),
    "le": (_numeric(lambda actual, expected: actual <= expected), "<="),
    "eq": (_json_equal, "=="),
    "ne": (lambda actual, expected: not _json_equal(actual, expected), "!="),
    "in": (_member_of, "in"),
    "notIn": (lambda actual, expected: not _member_of(actual, expected), "not in"),
}
_EXISTS: Final = "exists"
OPERATORS: Final = (*_OPERATORS, _EXISTS)

_MISSING: Final = object()


def _lookup(tool_input: object, path: str) -> object:
    value = tool_input
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _explain(condition: Condition, tool_input: object) -> str | None:
    """A description of why ``condition`` matches ``tool_input``, or None when it does not."""
    match condition:
        case Always():
            return "always"
        case Comparison(field, op, value) if op == _EXISTS:
            present = _lookup(tool_input, field) is not _MISSING
            return _describe(condition) if present == value else None
        case Comparison(field, op, value):
            actual = _lookup(tool_input, field)
            test, _ = _OPERATORS[op]
            return _describe(condition) if actual is not _MISSING and test(actual, value) else None
        case AllOf(conditions):
            parts = [_explain(part, tool_input) for part in conditions]
            if any(part is None for part in parts):
                return None
            return " and ".join(_grouped(part) for part in parts if part is not None)
        case AnyOf(conditions):
            # The first branch that matches is the reason; the others are beside the point.
            return next((part for part in (_explain(c, tool_input) for c in conditions) if part), None)
        case Not(inner):
            return None if _explain(inner, tool_input) is not None else f"not {_grouped(_describe(inner))}"


def _describe(condition: Condition) -> str:
    match condition:
        case Always():
            return "always"
        case Comparison(field, op, value) if op == _EXISTS:
            return f"{field} is present" if value else f"{field} is absent"
        case Comparison(field, op, value):
            return f"{field} {_OPERATORS[op][1]} {json.dumps(value)}"
        case AllOf(conditions):
            return " and ".join(_grouped(_describe(part)) for part in conditions)
        case AnyOf(conditions):
            return " or ".join(_grouped(_describe(part)) for part in conditions)
        case Not(inner):
            return f"not {_grouped(_describe(inner))}"


def _grouped(description: str) -> str:
    return f"({description})" if " and " in description or " or " in description else description


def approval_reason(policies: list[ApprovalPolicy], tool_name: str, tool_input: dict[str, Any]) -> str | None:
    """Why calling ``tool_name`` with ``tool_input`` needs approval (first matching policy), or None."""
    for policy in policies:
        if not policy.applies_to(tool_name):
            continue
        if isinstance(policy.when, Always):
            return f"{tool_name} requires approval ({policy.reason})"
        explanation = _explain(policy.when, tool_input)
        if explanation is not None:
            return f"{tool_name} requires approval: {explanation} ({policy.reason})"
    return None


# --- parsing configuration ---------------------------------------------------------------------


def parse_policies(raw: list[Any]) -> list[ApprovalPolicy]:
    """Policies from configuration; ValueError naming the policy index and the problem."""
    if not isinstance(raw, list):
        raise ValueError("approval policies must be a list")
    return [_parse_policy(index, entry) for index, entry in enumerate(raw)]


def _parse_policy(index: int, entry: object) -> ApprovalPolicy:
    where = f"approval policy [{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be an object with tool, when and reason")
    unknown = set(entry) - {"tool", "when", "reason"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (expected tool, when, reason)")
    for key in ("tool", "when", "reason"):
        if key not in entry:
            raise ValueError(f"{where}: missing {key!r}")
    tool, reason = entry["tool"], entry["reason"]
    if not isinstance(tool, str) or not tool:
        raise ValueError(f"{where}: 'tool' must be a non-empty string (a tool name or fnmatch pattern)")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{where}: 'reason' must be a non-empty string")
    return ApprovalPolicy(tool=tool, when=_parse_condition(entry["when"], f"{where}: when", 0), reason=reason)


def _parse_condition(raw: object, where: str, depth: int) -> Condition:
    if depth > _MAX_CONDITION_DEPTH:
        raise ValueError(f"{where}: conditions nested deeper than {_MAX_CONDITION_DEPTH}")
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a condition must be an object")
    if "field" in raw or "op" in raw:
        return _parse_comparison(raw, where)
    if len(raw) != 1:
        raise ValueError(f"{where}: a condition has exactly one of field/op/value, all, any, not, always")
    ((kind, body),) = raw.items()
    if kind in ("all", "any"):
        if not isinstance(body, list) or not body:
            # An empty "all" always matches and an empty "any" never does: surely not what was meant.
            raise ValueError(f"{where}.{kind}: must be a non-empty list of conditions")
        parts = tuple(
            _parse_condition(part, f"{where}.{kind}[{i}]", depth + 1) for i, part in enumerate(body)
        )
        return AllOf(parts) if kind == "all" else AnyOf(parts)
    if kind == "not":
        return Not(_parse_condition(body, f"{where}.not", depth + 1))
    if kind == "always":
        if body is not True:
            raise ValueError(f"{where}.always: must be true")
        return Always()
    raise ValueError(f"{where}: unknown condition {kind!r} (expected field/op/value, all, any, not, always)")


def _parse_comparison(raw: Mapping[str, Any], where: str) -> Comparison:
    unknown = set(raw) - {"field", "op", "value"}
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {sorted(unknown)} in a comparison (expected field, op, value)"
        )
    field, op = raw.get("field"), raw.get("op")
    if not isinstance(field, str) or not field or "" in field.split("."):
        raise ValueError(f"{where}: 'field' must be a dotted path such as 'body.amount'")
    if op not in OPERATORS:
        raise ValueError(f"{where}: unknown op {op!r} (expected one of {', '.join(OPERATORS)})")
    if op == _EXISTS:
        value = raw.get("value", True)
        if not isinstance(value, bool):
            raise ValueError(f"{where}: 'value' of exists must be true or false")
        return Comparison(field, op, value)
    if "value" not in raw:
        raise ValueError(f"{where}: missing 'value' for op {op}")
    value = raw["value"]
    if op in ("gt", "ge", "lt", "le") and not (_is_number(value) and math.isfinite(value)):
        raise ValueError(f"{where}: 'value' of {op} must be a number, not {json.dumps(value)}")
    if op in ("in", "notIn") and not isinstance(value, list):
        raise ValueError(f"{where}: 'value' of {op} must be a list")
    return Comparison(field, op, value)


# --- the client's answer -----------------------------------------------------------------------


def decision_from_tool_result(tool_result: dict[str, Any]) -> ApprovalDecision:
    """The client's answer to a pending approval, sent as a Converse ``toolResult`` block:
    ``{"toolUseId", "status": "success", "content": [{"json": {"decision": "approve" | "reject",
    "reason": "..."}}]}``. ValueError, with a message for the client, for anything else."""
    if not isinstance(tool_result, dict):
        raise ValueError("an approval answer must be a toolResult object")
    if tool_result.get("status", "success") != "success":
        raise ValueError("an approval answer must not have status 'error': send decision 'reject' instead")
    content = tool_result.get("content")
    blocks = content if isinstance(content, list) else []
    answers = [block["json"] for block in blocks if isinstance(block, dict) and "json" in block]
    if len(answers) != 1:
        raise ValueError(
            'an approval answer must have exactly one json content block: {"decision": "approve" | "reject", '
            '"reason": "..."}'
        )
    (answer,) = answers
    if not isinstance(answer, dict):
        raise ValueError("the approval answer's json block must be an object with decision and reason")
    unknown = set(answer) - {"decision", "reason"}
    if unknown:
        raise ValueError(
            f"the approval answer has unknown keys {sorted(unknown)} (expected decision, reason)"
        )
    decision, reason = answer.get("decision"), answer.get("reason")
    if decision not in ("approve", "reject"):
        raise ValueError("the approval answer's decision must be 'approve' or 'reject'")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("the approval answer needs a reason (a non-empty string)")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValueError(f"the approval answer's reason is longer than {MAX_REASON_LENGTH} characters")
    return ApprovalDecision(approved=decision == "approve", reason=reason)
