"""Harness definitions: CreateHarness, GetHarness, ListHarnesses, UpdateHarness, DeleteHarness,
ListHarnessVersions.

Requests are validated against the AgentCore service model first (``harness.contract``); then
members this deployment does not implement yet are rejected by name, never silently ignored, and
what it cannot run is rejected by ``harness.configuration_checks``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness import contract
from harness import truncation as truncate
from harness.configuration_checks import (
    ToolPolicy,
    configuration_problems,
    not_supported,
    raise_problems,
    tool_support_problems,
)
from harness.errors import ConflictError, FieldProblem, ResourceNotFoundError, ValidationError
from harness.ids import Account, new_harness_id

CONTROL = "bedrock-agentcore-control"
DEFAULT_MAX_ITERATIONS = 20
DEFAULT_TIMEOUT_SECONDS = 900
DEFAULT_ALLOWED_TOOLS = ["*"]

# Members of CreateHarness/UpdateHarness that this deployment implements. Anything else that the
# contract allows is answered with a validationException naming the member.
_IMPLEMENTED = {
    "harnessName",
    "clientToken",
    "executionRoleArn",
    "model",
    "systemPrompt",
    "tools",
    "allowedTools",
    "memory",
    "maxIterations",
    "maxTokens",
    "timeoutSeconds",
    "truncation",
    "hooks",
    "tags",
    "harnessId",
}


class DefinitionStore(Protocol):
    def create(self, record: dict[str, Any]) -> bool: ...
    def update(self, record: dict[str, Any], expected_version: int) -> bool: ...
    def get(self, harness_id: str, version: int | None = None) -> dict[str, Any] | None: ...
    def delete(self, harness_id: str) -> int: ...
    def list_latest(self, limit: int, next_token: str | None) -> tuple[list[dict[str, Any]], str | None]: ...
    def list_versions(
        self, harness_id: str, limit: int, next_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...
    def claim_name(self, harness_name: str, harness_id: str) -> str | None: ...
    def release_name(self, harness_name: str, harness_id: str) -> None: ...
    def remember_client_token(
        self, client_token: str, request_digest: str, result_ref: str
    ) -> tuple[str, str]: ...
    def forget_client_token(self, client_token: str, result_ref: str) -> None: ...


@dataclass(frozen=True)
class DeploymentDefaults:
    model: dict[str, Any]
    event_expiry_days: int
    # The state machine that runs every harness of this deployment: reported as the harness's
    # runtime environment, so operators can find executions from a GetHarness answer.
    runtime_arn: str
    tool_policy: ToolPolicy = field(default_factory=ToolPolicy)

    def environment(self) -> dict[str, Any]:
        name = self.runtime_arn.rsplit(":", 1)[-1]
        return {
            "agentCoreRuntimeEnvironment": {
                "agentRuntimeArn": self.runtime_arn,
                "agentRuntimeName": name,
                "agentRuntimeId": name,
                "lifecycleConfiguration": {},
                "networkConfiguration": {"networkMode": "PUBLIC"},
            }
        }


def _check_implemented(body: dict[str, Any], policy: ToolPolicy) -> None:
    unimplemented = [not_supported(name, name) for name in body if name not in _IMPLEMENTED]
    raise_problems(unimplemented + configuration_problems(body, policy))


def _request_digest(operation: str, harness_id: str, body: dict[str, Any]) -> str:
    """Stored with each remembered clientToken, which never expires: its bytes must stay what they
    were when the first tokens were stored (so not ``canonical.digest``'s compact form)."""
    relevant = {k: v for k, v in body.items() if k != "clientToken"}
    return hashlib.sha256(json.dumps([operation, harness_id, relevant], sort_keys=True).encode()).hexdigest()


def _event_expiry_days(memory: dict[str, Any] | None, defaults: DeploymentDefaults) -> int:
    config = (memory or {}).get("managedMemoryConfiguration") or {}
    return int(config.get("eventExpiryDuration") or defaults.event_expiry_days)


class HarnessDefinitions:
    def __init__(self, store: DefinitionStore, account: Account, defaults: DeploymentDefaults) -> None:
        self._store = store
        self._account = account
        self._defaults = defaults

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        contract.validate_request(CONTROL, "CreateHarness", body, {})
        _check_implemented(body, self._defaults.tool_policy)
        raise_problems(tool_support_problems({"model": self._defaults.model} | body))
        harness_id = new_harness_id(body["harnessName"])
        replayed = self._replay("CreateHarness", body, harness_id)
        if replayed is not None:
            return replayed
        now = time.time()
        memory = body.get("memory") or {
            "managedMemoryConfiguration": {"eventExpiryDuration": self._defaults.event_expiry_days}
        }
        record: dict[str, Any] = {
            "harnessId": harness_id,
            "harnessName": body["harnessName"],
            "arn": self._account.harness_arn(harness_id),
            "status": "READY",
            "harnessVersion": "1",
            "executionRoleArn": body["executionRoleArn"],
            "createdAt": now,
            "updatedAt": now,
            "model": body.get("model") or self._defaults.model,
            "systemPrompt": body.get("systemPrompt") or [],
            "tools": body.get("tools") or [],
            "hooks": body.get("hooks") or [],
            "skills": [],
            "allowedTools": body.get("allowedTools", DEFAULT_ALLOWED_TOOLS),
            "truncation": body.get("truncation") or truncate.DEFAULT,
            "environment": self._defaults.environment(),
            "memory": {
                "managedMemoryConfiguration": {
                    "eventExpiryDuration": _event_expiry_days(memory, self._defaults)
                }
            },
            "maxIterations": body.get("maxIterations", DEFAULT_MAX_ITERATIONS),
            "timeoutSeconds": body.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
        }
        if "maxTokens" in body:
            record["maxTokens"] = body["maxTokens"]
        if "tags" in body:
            record["tags"] = body["tags"]
        owner = self._store.claim_name(body["harnessName"], harness_id)
        if owner is not None and owner != harness_id:
            self._forget(body, harness_id)
            raise ConflictError(f"A harness named {body['harnessName']} already exists ({owner}).")
        if not self._store.create(record):
            self._store.release_name(body["harnessName"], harness_id)
            self._forget(body, harness_id)
            raise ConflictError(f"Harness {harness_id} already exists.")
        return record

    def _replay(self, operation: str, body: dict[str, Any], result_ref: str) -> dict[str, Any] | None:
        """The result of an earlier request with the same clientToken, or None for a new request.

        ``result_ref`` names what this request will produce (``<harnessId>`` or
        ``<harnessId>@<version>``); the token is recorded against it before the write.
        """
        token = body.get("clientToken")
        if not token:
            return None
        digest = _request_digest(operation, result_ref.split("@")[0] if "@" in result_ref else "", body)
        known_ref, known_digest = self._store.remember_client_token(token, digest, result_ref)
        if known_ref == result_ref:
            return None
        if known_digest != digest:
            raise ValidationError(
                "clientToken was already used with a different request.",
                reason="IdempotentParameterMismatchException",
            )
        harness_id, _, version = known_ref.partition("@")
        return self._store.get(harness_id, int(version) if version else None)

    def _forget(self, body: dict[str, Any], result_ref: str) -> None:
        if body.get("clientToken"):
            self._store.forget_client_token(body["clientToken"], result_ref)

    def get(self, harness_id: str, version: str | None = None) -> dict[str, Any]:
        contract.validate_request(
            CONTROL,
            "GetHarness",
            {},
            {"harnessId": harness_id} | ({"harnessVersion": version} if version else {}),
        )
        record = self._store.get(harness_id, int(version) if version else None)
        if record is None:
            what = f"version {version} of harness {harness_id}" if version else f"harness {harness_id}"
            raise ResourceNotFoundError(f"No {what} exists.")
        return record

    def list(self, max_results: str | None, next_token: str | None) -> dict[str, Any]:
        params = _paging_params(max_results, next_token)
        contract.validate_request(CONTROL, "ListHarnesses", {}, params)
        records, token = self._store.list_latest(params.get("maxResults", 100), next_token)
        summaries = [_summary(r, "HarnessSummary") for r in records]
        return {"harnesses": summaries} | ({"nextToken": token} if token else {})

    def list_versions(
        self, harness_id: str, max_results: str | None, next_token: str | None
    ) -> dict[str, Any]:
        params = {"harnessId": harness_id} | _paging_params(max_results, next_token)
        contract.validate_request(CONTROL, "ListHarnessVersions", {}, params)
        self.get(harness_id)
        records, token = self._store.list_versions(harness_id, params.get("maxResults", 100), next_token)
        summaries = [_summary(r, "HarnessVersionSummary") for r in records]
        return {"harnessVersions": summaries} | ({"nextToken": token} if token else {})

    def update(self, harness_id: str, body: dict[str, Any]) -> dict[str, Any]:
        contract.validate_request(CONTROL, "UpdateHarness", body, {"harnessId": harness_id})
        _check_implemented(body, self._defaults.tool_policy)
        current = self.get(harness_id)
        record = dict(current)
        for name in (
            "executionRoleArn",
            "model",
            "systemPrompt",
            "tools",
            "allowedTools",
            "maxIterations",
            "maxTokens",
            "timeoutSeconds",
            "truncation",
            "hooks",
        ):
            if name in body:
                record[name] = body[name]
        if "memory" in body:
            memory = body["memory"].get("optionalValue")
            record["memory"] = {
                "managedMemoryConfiguration": {
                    "eventExpiryDuration": _event_expiry_days(memory, self._defaults)
                }
            }
        raise_problems(tool_support_problems(record))
        version = int(current["harnessVersion"]) + 1
        replayed = self._replay("UpdateHarness", body, f"{harness_id}@{version}")
        if replayed is not None:
            return replayed
        record["harnessVersion"] = str(version)
        record["updatedAt"] = time.time()
        if not self._store.update(record, expected_version=version - 1):
            self._forget(body, f"{harness_id}@{version}")
            raise ConflictError(f"Harness {harness_id} was changed concurrently; read it again and retry.")
        return record

    def delete(self, harness_id: str, delete_managed_memory: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"harnessId": harness_id}
        if delete_managed_memory is not None:
            if delete_managed_memory not in {"true", "false"}:
                raise ValidationError(
                    "deleteManagedMemory must be true or false.",
                    fields=[FieldProblem("deleteManagedMemory", "must be true or false")],
                )
            params["deleteManagedMemory"] = delete_managed_memory == "true"
        contract.validate_request(CONTROL, "DeleteHarness", {}, params)
        if params.get("deleteManagedMemory"):
            raise ValidationError(
                "deleteManagedMemory is not supported: erase actors with DELETE /actors/{actorId}.",
                fields=[FieldProblem("deleteManagedMemory", "not supported by this deployment yet")],
            )
        record = self.get(harness_id)
        self._store.delete(harness_id)
        self._store.release_name(record["harnessName"], harness_id)
        return record | {"status": "DELETING"}


def _summary(record: dict[str, Any], shape: str) -> dict[str, Any]:
    """The members of a summary shape of the contract, taken from the full record."""
    members = contract.service_model(CONTROL)["shapes"][shape]["members"]
    return {name: record[name] for name in members if name in record}


def _paging_params(max_results: str | None, next_token: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if max_results is not None:
        try:
            params["maxResults"] = int(max_results)
        except ValueError as error:
            raise ValidationError(
                "maxResults must be an integer.", fields=[FieldProblem("maxResults", "must be an integer")]
            ) from error
    if next_token is not None:
        params["nextToken"] = next_token
    return params
