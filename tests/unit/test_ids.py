"""Identifiers and ARNs in the contract's shapes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import contract
from harness.errors import ValidationError
from harness.ids import (
    Account,
    actor_digest,
    check_actor_id,
    harness_id_from_arn,
    new_erasure_id,
    new_harness_id,
    new_invocation_id,
)

CONTRACT_HARNESS_ID = contract.pattern(contract.CONTROL_SERVICE, "HarnessId")
ACCOUNT = Account("aws", "us-east-1", "123456789012")
HARNESS_NAMES = st.from_regex(contract.pattern(contract.CONTROL_SERVICE, "HarnessName"), fullmatch=True)


@given(HARNESS_NAMES)
def test_harness_ids_match_the_contract_pattern(name: str) -> None:
    harness_id = new_harness_id(name)
    assert CONTRACT_HARNESS_ID.fullmatch(harness_id)
    assert harness_id.rsplit("-", 1)[0] == name
    assert harness_id_from_arn(ACCOUNT.harness_arn(harness_id), ACCOUNT) == harness_id


def test_harness_ids_are_unique() -> None:
    assert len({new_harness_id("h") for _ in range(200)}) == 200


def test_invocation_ids_are_valid_execution_names() -> None:
    for _ in range(20):
        invocation_id = new_invocation_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", invocation_id)
    assert new_invocation_id() != new_invocation_id()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", new_erasure_id())


def test_account_from_a_function_arn() -> None:
    account = Account.from_function_arn("arn:aws-cn:lambda:cn-north-1:210987654321:function:api")
    assert account == Account("aws-cn", "cn-north-1", "210987654321")
    assert (
        account.harness_arn("h-0123456789")
        == "arn:aws-cn:bedrock-agentcore:cn-north-1:210987654321:harness/h-0123456789"
    )
    with pytest.raises(ValueError):
        Account.from_function_arn("not-an-arn")


def test_arn_parsing_accepts_this_deployment() -> None:
    assert harness_id_from_arn(
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/my_h-AbCdEfGhIj", ACCOUNT
    ) == ("my_h-AbCdEfGhIj")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:bedrock-agentcore:eu-west-1:123456789012:harness/my_h-AbCdEfGhIj",  # other region
        "arn:aws:bedrock-agentcore:us-east-1:210987654321:harness/my_h-AbCdEfGhIj",  # other account
    ],
)
def test_arn_parsing_rejects_other_regions_and_accounts(arn: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        harness_id_from_arn(arn, ACCOUNT)
    assert "this deployment serves us-east-1 / 123456789012" in excinfo.value.message


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "my_h-AbCdEfGhIj",
        "arn:aws:bedrock:us-east-1:123456789012:harness/my_h-AbCdEfGhIj",  # other service
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/my_h-AbCdEfGhIj",  # other resource
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/my_h-short",  # suffix too short
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/my_h-AbCdEfGhIj/extra",
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/1bad-AbCdEfGhIj",  # leading digit
        "arn:aws:bedrock-agentcore:us-east-1:12345678901:harness/my_h-AbCdEfGhIj",  # 11-digit account
        " arn:aws:bedrock-agentcore:us-east-1:123456789012:harness/my_h-AbCdEfGhIj",
    ],
)
def test_arn_parsing_rejects_malformed_arns(arn: str) -> None:
    with pytest.raises(ValidationError):
        harness_id_from_arn(arn, ACCOUNT)


@pytest.mark.parametrize("actor_id", ["a", "default", "user@example.com", "tenant:42", "A.b_c-d", "9" * 128])
def test_valid_actor_ids(actor_id: str) -> None:
    assert check_actor_id(actor_id) == actor_id


@pytest.mark.parametrize(
    "actor_id",
    ["", "a#b", "a/b", "a b", "-a", ".a", "_a", "9" * 129, "a\nb", "ä", "a%40b", "SESSION#x"],
)
def test_invalid_actor_ids(actor_id: str) -> None:
    with pytest.raises(ValidationError):
        check_actor_id(actor_id)


def test_a_missing_actor_id_is_invalid() -> None:
    with pytest.raises(ValidationError):
        check_actor_id(None)  # type: ignore[arg-type]


@given(st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.@:-]{0,127}", fullmatch=True))
def test_valid_actor_ids_never_collide_with_owner_partitions_or_key_separators(actor_id: str) -> None:
    """Actor ids are partition keys beside ``SESSION#<id>`` owner markers and S3 prefixes."""
    assert check_actor_id(actor_id) == actor_id
    assert "#" not in actor_id and "/" not in actor_id


def test_actor_digests_are_stable_pseudonyms() -> None:
    digest = actor_digest("alice")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == actor_digest("alice") != actor_digest("alice ")
    assert "alice" not in digest
