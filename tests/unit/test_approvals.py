"""Approval policies: conditions on tool input, configuration errors, and the client's answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.approvals import (
    ApprovalDecision,
    approval_reason,
    decision_from_tool_result,
    parse_policies,
)

TRANSFER_REASON = "Transfers above 10,000 need a second pair of eyes"


def policy(when: Any, tool: str = "createTransfer", reason: str = TRANSFER_REASON) -> dict[str, Any]:
    return {"tool": tool, "when": when, "reason": reason}


def reason_for(when: Any, tool_input: dict[str, Any], tool_name: str = "createTransfer") -> str | None:
    return approval_reason(parse_policies([policy(when)]), tool_name, tool_input)


def requires(when: Any, tool_input: dict[str, Any]) -> bool:
    return reason_for(when, tool_input) is not None


AMOUNT_OVER_10000 = {"field": "body.amount", "op": "gt", "value": 10000}


# --- conditions --------------------------------------------------------------------------------


def test_reason_names_the_tool_the_condition_and_the_policy_reason() -> None:
    assert reason_for(AMOUNT_OVER_10000, {"body": {"amount": 25000}}) == (
        f"createTransfer requires approval: body.amount > 10000 ({TRANSFER_REASON})"
    )
    assert reason_for(AMOUNT_OVER_10000, {"body": {"amount": 10000}}) is None


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("gt", 10, 11, True),
        ("gt", 10, 10, False),
        ("ge", 10, 10, True),
        ("ge", 10, 9.99, False),
        ("lt", 0, -0.5, True),
        ("lt", 0, 0, False),
        ("le", 0, 0, True),
        ("le", 0, 1, False),
        ("eq", "EUR", "EUR", True),
        ("eq", "EUR", "eur", False),
        ("eq", 1, 1.0, True),
        ("eq", 1, True, False),  # a JSON boolean is not the number 1
        ("eq", {"a": [1]}, {"a": [1]}, True),
        ("ne", "EUR", "USD", True),
        ("ne", "EUR", "EUR", False),
        ("in", ["EUR", "USD"], "USD", True),
        ("in", ["EUR", "USD"], "GBP", False),
        ("in", [0], False, False),
        ("notIn", ["EUR", "USD"], "GBP", True),
        ("notIn", ["EUR", "USD"], "EUR", False),
    ],
)
def test_comparison_operators(op: str, value: Any, actual: Any, expected: bool) -> None:
    assert requires({"field": "x", "op": op, "value": value}, {"x": actual}) is expected


@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le", "eq", "ne", "in", "notIn"])
def test_a_missing_field_never_matches_a_comparison(op: str) -> None:
    value = [1] if op in ("in", "notIn") else 1
    condition = {"field": "body.amount", "op": op, "value": value}
    assert not requires(condition, {})
    assert not requires(condition, {"body": {}})
    assert not requires(condition, {"body": "not an object"})


@pytest.mark.parametrize("actual", ["20000", True, None, [20000], {"amount": 20000}])
def test_a_field_of_another_type_does_not_match_a_numeric_comparison(actual: Any) -> None:
    assert not requires(AMOUNT_OVER_10000, {"body": {"amount": actual}})


def test_exists_and_absent() -> None:
    present = {"field": "body.memo", "op": "exists"}
    absent = {"field": "body.memo", "op": "exists", "value": False}
    assert requires(present, {"body": {"memo": None}})
    assert not requires(present, {"body": {}})
    assert requires(absent, {"body": {}})
    assert (
        reason_for(absent, {}) == f"createTransfer requires approval: body.memo is absent ({TRANSFER_REASON})"
    )


def test_all_any_not_and_always_nest() -> None:
    foreign_and_large = {
        "all": [
            AMOUNT_OVER_10000,
            {"not": {"field": "body.currency", "op": "in", "value": ["EUR"]}},
        ]
    }
    when = {"any": [foreign_and_large, {"field": "body.beneficiary.new", "op": "eq", "value": True}]}
    assert requires(when, {"body": {"amount": 20000, "currency": "USD"}})
    assert not requires(when, {"body": {"amount": 20000, "currency": "EUR"}})
    assert not requires(when, {"body": {"amount": 5, "currency": "USD"}})
    assert requires(when, {"body": {"amount": 5, "beneficiary": {"new": True}}})
    assert requires({"always": True}, {})


def test_the_reason_describes_the_branch_that_matched() -> None:
    when = {
        "any": [
            {"all": [AMOUNT_OVER_10000, {"not": {"field": "body.currency", "op": "eq", "value": "EUR"}}]},
            {"field": "body.beneficiary.new", "op": "eq", "value": True},
        ]
    }
    assert reason_for(when, {"body": {"amount": 20000, "currency": "USD"}}) == (
        'createTransfer requires approval: body.amount > 10000 and not body.currency == "EUR" '
        f"({TRANSFER_REASON})"
    )
    assert reason_for(when, {"body": {"amount": 1, "beneficiary": {"new": True}}}) == (
        f"createTransfer requires approval: body.beneficiary.new == true ({TRANSFER_REASON})"
    )
    assert reason_for({"always": True}, {}) == f"createTransfer requires approval ({TRANSFER_REASON})"


def test_tool_patterns_match_the_tools_own_name_case_sensitively() -> None:
    policies = parse_policies([policy({"always": True}, tool="create*", reason="writes")])
    assert approval_reason(policies, "createTransfer", {}) is not None
    assert approval_reason(policies, "CreateTransfer", {}) is None
    assert approval_reason(policies, "listTransfers", {}) is None


def test_the_first_matching_policy_gives_the_reason() -> None:
    policies = parse_policies(
        [
            policy(AMOUNT_OVER_10000, reason="large"),
            policy({"always": True}, tool="*", reason="everything else"),
        ]
    )
    assert approval_reason(policies, "createTransfer", {"body": {"amount": 20000}}) == (
        "createTransfer requires approval: body.amount > 10000 (large)"
    )
    assert approval_reason(policies, "createTransfer", {"body": {"amount": 1}}) == (
        "createTransfer requires approval (everything else)"
    )
    assert approval_reason([], "createTransfer", {}) is None


@given(st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_gt_requires_approval_exactly_above_the_threshold(amount: float) -> None:
    assert requires(AMOUNT_OVER_10000, {"body": {"amount": amount}}) is (amount > 10000)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(), st.lists, max_leaves=5))
def test_model_input_never_raises(amount: Any) -> None:
    when = {"any": [AMOUNT_OVER_10000, {"field": "body.amount", "op": "in", "value": [1, "x", None]}]}
    reason_for(when, {"body": {"amount": amount}})
    reason_for(when, {"body": amount})


# --- configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("createTransfer", "must be a list"),
        (["createTransfer"], r"approval policy \[0\]: must be an object"),
        ([{"tool": "t", "when": {"always": True}}], r"\[0\]: missing 'reason'"),
        ([{"tool": "t", "reason": "r"}], "missing 'when'"),
        ([{"tool": "", "when": {"always": True}, "reason": "r"}], "'tool' must be a non-empty string"),
        ([{"tool": "t", "when": {"always": True}, "reason": " "}], "'reason' must be a non-empty string"),
        ([{"tool": "t", "when": {"always": True}, "reason": "r", "mode": 1}], r"unknown keys \['mode'\]"),
        ([policy({"field": "amount", "op": "gte", "value": 1})], "unknown op 'gte' .*expected one of gt, ge"),
        ([policy({"field": "amount", "op": "gt", "value": "10000"})], "'value' of gt must be a number"),
        ([policy({"field": "amount", "op": "gt", "value": True})], "'value' of gt must be a number"),
        ([policy({"field": "amount", "op": "gt"})], "missing 'value' for op gt"),
        ([policy({"op": "gt", "value": 1})], "'field' must be a dotted path"),
        ([policy({"field": "body..amount", "op": "gt", "value": 1})], "'field' must be a dotted path"),
        ([policy({"field": "amount", "op": "in", "value": "EUR"})], "'value' of in must be a list"),
        (
            [policy({"field": "memo", "op": "exists", "value": "yes"})],
            "'value' of exists must be true or false",
        ),
        ([policy({"field": "a", "op": "eq", "vaule": 1})], r"unknown keys \['vaule'\]"),
        ([policy({"all": []})], r"when\.all: must be a non-empty list"),
        ([policy({"always": False})], r"when\.always: must be true"),
        ([policy({"every": []})], "unknown condition 'every'"),
        ([policy({"all": [{"always": True}], "any": [{"always": True}]})], "exactly one of"),
        ([policy("always")], "a condition must be an object"),
    ],
)
def test_bad_configuration_is_reported_with_its_location(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policies(raw)


def test_nested_errors_name_the_path() -> None:
    bad = {"any": [{"always": True}, {"not": {"field": "a", "op": "between", "value": 1}}]}
    with pytest.raises(ValueError, match=r"approval policy \[1\]: when\.any\[1\]\.not: unknown op 'between'"):
        parse_policies([policy({"always": True}), policy(bad)])


def test_absurdly_deep_conditions_are_refused() -> None:
    when: dict[str, Any] = {"always": True}
    for _ in range(40):
        when = {"not": when}
    with pytest.raises(ValueError, match="nested deeper than"):
        parse_policies([policy(when)])


# --- the client's answer -----------------------------------------------------------------------


def answer(
    decision: Any = "approve", reason: Any = "checked with the customer", **extra: Any
) -> dict[str, Any]:
    body = {"decision": decision, "reason": reason, **extra}
    return {"toolUseId": "tooluse_1", "status": "success", "content": [{"json": body}]}


def test_approve_and_reject() -> None:
    assert decision_from_tool_result(answer()) == ApprovalDecision(True, "checked with the customer")
    assert decision_from_tool_result(answer("reject", "not today")) == ApprovalDecision(False, "not today")


def test_text_blocks_beside_the_answer_are_ignored() -> None:
    result = answer()
    result["content"].insert(0, {"text": "see below"})
    del result["status"]
    assert decision_from_tool_result(result).approved


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("approve", "must be a toolResult object"),
        ({**answer(), "status": "error"}, "must not have status 'error'"),
        ({"toolUseId": "t", "content": [{"text": "approve"}]}, "exactly one json content block"),
        ({"toolUseId": "t"}, "exactly one json content block"),
        ({**answer(), "content": answer()["content"] * 2}, "exactly one json content block"),
        ({"toolUseId": "t", "content": [{"json": "approve"}]}, "must be an object"),
        (answer("yes"), "decision must be 'approve' or 'reject'"),
        (answer("APPROVE"), "decision must be 'approve' or 'reject'"),
        (answer(reason=None), "needs a reason"),
        (answer(reason="  "), "needs a reason"),
        (answer(reason="x" * 1025), "longer than 1024"),
        (answer(approver="bob"), r"unknown keys \['approver'\]"),
    ],
)
def test_malformed_answers_are_refused_with_a_clear_message(result: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decision_from_tool_result(result)


def test_a_reason_of_exactly_1024_characters_is_accepted() -> None:
    assert decision_from_tool_result(answer(reason="x" * 1024)).reason == "x" * 1024
