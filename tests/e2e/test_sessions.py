"""Sessions belong to one actor: nobody else can use or read them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from e2e_support import create_harness, new_session_id, say

pytestmark = pytest.mark.e2e


def test_another_actor_cannot_use_or_read_a_session(control: Any, data: Any) -> None:
    harness = create_harness(control)
    alice_session = new_session_id()
    say(data, harness["arn"], alice_session, "alice secret one", actor_id="alice")
    say(data, harness["arn"], alice_session, "alice secret two", actor_id="alice")

    with pytest.raises(ClientError) as denied:
        say(data, harness["arn"], alice_session, "/history", actor_id="bob")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "alice secret" not in denied.value.response["Error"]["Message"]

    bob_session = new_session_id()
    say(data, harness["arn"], bob_session, "bob note", actor_id="bob")
    bob_history = say(data, harness["arn"], bob_session, "/history", actor_id="bob").text
    assert bob_history == "bob note\n/history"
    assert "alice" not in bob_history

    # Bob's attempt changed nothing for alice.
    alice_history = say(data, harness["arn"], alice_session, "/history", actor_id="alice").text
    assert alice_history == "alice secret one\nalice secret two\n/history"


def test_a_session_is_bound_to_its_harness(control: Any, data: Any) -> None:
    first = create_harness(control)
    second = create_harness(control)
    session = new_session_id()
    say(data, first["arn"], session, "on the first harness")

    with pytest.raises(ClientError) as bound:
        say(data, second["arn"], session, "/history")
    assert bound.value.response["Error"]["Code"] == "ValidationException"
    assert bound.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert say(data, first["arn"], session, "/history").text == "on the first harness\n/history"
