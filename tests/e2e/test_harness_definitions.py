"""The control plane: a harness's life from CreateHarness to DeleteHarness, through boto3."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from e2e_support import ACCOUNT_ID, REGION, ROLE_ARN, create_harness, unique_name

from harness import contract
from harness.ids import Account

pytestmark = pytest.mark.e2e


def _all_harnesses(control: Any) -> list[dict[str, Any]]:
    harnesses: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = control.list_harnesses(**kwargs)
        harnesses.extend(page["harnesses"])
        if not page.get("nextToken"):
            return harnesses
        kwargs["nextToken"] = page["nextToken"]


def test_a_harness_goes_from_create_through_versions_to_delete(control: Any) -> None:
    name = unique_name("lifecycle")
    created = control.create_harness(
        harnessName=name,
        executionRoleArn=ROLE_ARN,
        systemPrompt=[{"text": "You are terse."}],
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    harness = created["harness"]
    assert contract.pattern(contract.CONTROL_SERVICE, "HarnessArn").fullmatch(harness["arn"]), harness["arn"]
    harness_id = harness["harnessId"]
    assert harness_id.rsplit("-", 1)[0] == name
    assert harness["arn"] == Account("aws", REGION, ACCOUNT_ID).harness_arn(harness_id)
    assert harness["harnessName"] == name
    assert harness["harnessVersion"] == "1"
    assert harness["status"] == "READY"

    got = control.get_harness(harnessId=harness_id)["harness"]
    assert got["arn"] == harness["arn"]
    assert got["systemPrompt"] == [{"text": "You are terse."}]
    assert got["harnessVersion"] == "1"

    listed = {h["harnessId"]: h for h in _all_harnesses(control)}
    assert harness_id in listed
    assert listed[harness_id]["harnessName"] == name
    assert listed[harness_id]["arn"] == harness["arn"]

    new_model = {"liteLlmModelConfig": {"modelId": "local/other"}}
    updated = control.update_harness(
        harnessId=harness_id, model=new_model, systemPrompt=[{"text": "You are verbose."}]
    )["harness"]
    assert updated["harnessVersion"] == "2"
    assert updated["model"] == new_model
    assert updated["systemPrompt"] == [{"text": "You are verbose."}]
    assert updated["arn"] == harness["arn"]

    latest = control.get_harness(harnessId=harness_id)["harness"]
    assert latest["harnessVersion"] == "2"
    assert latest["model"] == new_model
    assert {h["harnessId"]: h for h in _all_harnesses(control)}[harness_id]["harnessVersion"] == "2"

    versions = control.list_harness_versions(harnessId=harness_id)["harnessVersions"]
    assert sorted(v["harnessVersion"] for v in versions) == ["1", "2"]
    assert {v["harnessId"] for v in versions} == {harness_id}

    first = control.get_harness(harnessId=harness_id, harnessVersion="1")["harness"]
    assert first["harnessVersion"] == "1"
    assert first["systemPrompt"] == [{"text": "You are terse."}]
    assert first["model"] == harness["model"]

    deleted = control.delete_harness(harnessId=harness_id)["harness"]
    assert deleted["harnessId"] == harness_id

    with pytest.raises(ClientError) as missing:
        control.get_harness(harnessId=harness_id)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert harness_id not in {h["harnessId"] for h in _all_harnesses(control)}


def test_create_with_the_same_client_token_returns_the_same_harness(control: Any) -> None:
    name = unique_name("idem")
    token = str(uuid.uuid4())
    first = control.create_harness(harnessName=name, executionRoleArn=ROLE_ARN, clientToken=token)["harness"]
    again = control.create_harness(harnessName=name, executionRoleArn=ROLE_ARN, clientToken=token)["harness"]
    assert again["harnessId"] == first["harnessId"]
    assert again["arn"] == first["arn"]
    assert [h["harnessId"] for h in _all_harnesses(control) if h["harnessName"] == name] == [
        first["harnessId"]
    ]


def test_a_second_harness_with_a_taken_name_is_a_conflict(control: Any) -> None:
    first = create_harness(control)
    with pytest.raises(ClientError) as conflict:
        control.create_harness(harnessName=first["harnessName"], executionRoleArn=ROLE_ARN)
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    same_name = [h for h in _all_harnesses(control) if h["harnessName"] == first["harnessName"]]
    assert [h["harnessId"] for h in same_name] == [first["harnessId"]]


def test_a_deleted_harness_frees_its_name(control: Any) -> None:
    first = create_harness(control)
    control.delete_harness(harnessId=first["harnessId"])
    second = create_harness(control, harnessName=first["harnessName"])
    assert second["harnessId"] != first["harnessId"]
    assert (
        control.get_harness(harnessId=second["harnessId"])["harness"]["harnessName"] == first["harnessName"]
    )


def test_listing_pages_through_every_harness_once(control: Any) -> None:
    created = {create_harness(control)["harnessId"] for _ in range(3)}
    seen: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = control.list_harnesses(maxResults=1, **kwargs)
        assert len(page["harnesses"]) <= 1
        seen.extend(h["harnessId"] for h in page["harnesses"])
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    assert len(seen) == len(set(seen))
    assert created <= set(seen)
    assert set(seen) == {h["harnessId"] for h in _all_harnesses(control)}


def test_an_update_retried_with_the_same_client_token_makes_one_version(control: Any) -> None:
    """UpdateHarness's clientToken (an idempotency token in the AgentCore model, filled in by the
    SDK and reused by its retries) must make a retried update return the version it created."""
    harness = create_harness(control)
    token = str(uuid.uuid4())

    first = control.update_harness(harnessId=harness["harnessId"], maxIterations=3, clientToken=token)[
        "harness"
    ]
    retried = control.update_harness(harnessId=harness["harnessId"], maxIterations=3, clientToken=token)[
        "harness"
    ]

    assert first["harnessVersion"] == "2"
    assert retried["harnessVersion"] == "2", "the retry created another version"
    versions = control.list_harness_versions(harnessId=harness["harnessId"])["harnessVersions"]
    assert sorted(v["harnessVersion"] for v in versions) == ["1", "2"]
