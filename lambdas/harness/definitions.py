"""Harness definitions: CreateHarness, GetHarness, ListHarnesses, UpdateHarness, DeleteHarness,
ListHarnessVersions.

Requests are validated against the AgentCore service model first (``harness.contract``); then
members this deployment does not implement yet are rejected by name, never silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness import contract
from harness import truncation as truncate
from harness.errors import ConflictError, FieldProblem, ResourceNotFoundError, ValidationError
from harness.ids import Account, new_harness_id
from harness.providers import registry as providers
from harness.providers import router
from harness.tools import registry as tools
from harness.tools.registry import Toolset

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
class ToolPolicy:
    """What tool servers and hook targets this deployment lets a harness name."""

    # Gateway ARNs this deployment configures (None: not checked).
    gateway_arns: frozenset[str] | None = None
    # Hook targets (Lambda functions, SNS topics, event buses) must be named with this prefix: the
    # functions' IAM grants cover exactly those names. Empty: not checked.
    hook_target_prefix: str = ""
    # Whether an approval must come from another principal than the one that started the turn.
    separate_approver: bool = True
    # Whether remote_mcp URLs may name 127.0.0.1 (the local runtime only: on AWS it is the sandbox).
    allow_loopback_urls: bool = False


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


def _unsupported(problems: list[FieldProblem], path: str, what: str) -> None:
    problems.append(FieldProblem(path, f"{what} is not supported by this deployment yet"))


# additionalParams that would send a request (and so the vault's key) somewhere else than apiBase,
# or put a key in the harness definition instead of the vault.
_ENDPOINT_PARAMS = frozenset(
    {"api_base", "base_url", "baseUrl", "http_options", "httpOptions", "api_key", "apiKey"}
)


def _model_problems(model: dict[str, Any], path: str = "model") -> list[FieldProblem]:
    """What this deployment cannot run in a model configuration, its fallback models included."""
    problems: list[FieldProblem] = []
    for kind, config in model.items():
        reason = providers.unsupported_reason(kind, config)
        if reason:
            problems.append(FieldProblem(f"{path}.{kind}", reason))
        params = config.get("additionalParams")
        if not isinstance(params, dict):
            continue
        params_path = f"{path}.{kind}.additionalParams"
        for name in sorted(_ENDPOINT_PARAMS & set(params)):
            problems.append(
                FieldProblem(
                    f"{params_path}.{name}",
                    "the endpoint and the key are set by apiBase and apiKeyArn, not additionalParams",
                )
            )
        window = params.get(router.CONTEXT_WINDOW_KEY)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            problems.append(
                FieldProblem(f"{params_path}.{router.CONTEXT_WINDOW_KEY}", "must be a positive integer")
            )
        if router.FALLBACKS_KEY not in params:
            continue
        fallbacks_path = f"{params_path}.{router.FALLBACKS_KEY}"
        fallbacks = params[router.FALLBACKS_KEY]
        if path != "model":
            problems.append(
                FieldProblem(fallbacks_path, "a fallback model cannot list fallback models of its own")
            )
        elif not isinstance(fallbacks, list):
            problems.append(FieldProblem(fallbacks_path, "must be a list of model configurations"))
        else:
            for index, fallback in enumerate(fallbacks):
                fallback_path = f"{fallbacks_path}[{index}]"
                try:
                    contract.validate(CONTROL, "HarnessModelConfiguration", fallback, path=fallback_path)
                except ValidationError as error:
                    problems.extend(error.fields or [FieldProblem(fallback_path, error.message)])
                else:
                    problems.extend(_model_problems(fallback, fallback_path))
    return problems


def tool_support_problems(body: dict[str, Any], base: dict[str, Any] | None = None) -> list[FieldProblem]:
    """The models of the chain (primary and fallbacks) that cannot be offered the tools this
    configuration makes visible: a harness definition, or with ``base`` (the harness) the
    overrides of one invocation, whose allowedTools narrow the harness's."""
    harness = base or {}
    model = body.get("model") or harness.get("model")
    if not isinstance(model, dict) or len(model) != 1:
        return []
    definitions = [
        t for t in body.get("tools", harness.get("tools")) or [] if isinstance(t, dict) and t.get("name")
    ]
    if base is None:
        toolset = Toolset.for_invocation(definitions, body.get("allowedTools"), None)
    else:
        toolset = Toolset.for_invocation(definitions, base.get("allowedTools"), body.get("allowedTools"))
    if not toolset.configured:
        return []
    problems = []
    ((primary_kind, _),) = model.items()
    for index, candidate in enumerate(router.candidates(model)):
        if not (isinstance(candidate, dict) and len(candidate) == 1) or providers.supports_tools(candidate):
            continue
        ((kind, _),) = candidate.items()
        path = (
            f"model.{kind}"
            if index == 0
            else f"model.{primary_kind}.additionalParams.{router.FALLBACKS_KEY}[{index - 1}]"
        )
        problems.append(
            FieldProblem(
                path, f"this model does not support tools, and {toolset.configured} tool(s) are configured"
            )
        )
    return problems


def _hook_problems(hooks: list[dict[str, Any]], prefix: str) -> list[FieldProblem]:
    problems = []
    names = []
    for index, hook in enumerate(hooks):
        for hook_type, config in hook.items():
            names.append(config.get("name"))
            for kind, target in (config.get("target") or {}).items():
                resource = str(target.get("arn", "")).split(":", 5)[-1]
                # function:<name>, <topic name>, event-bus/<name>
                name = resource.split(":")[1] if resource.startswith("function:") else resource.split("/")[-1]
                if prefix and not name.startswith(prefix):
                    problems.append(
                        FieldProblem(
                            f"hooks[{index}].{hook_type}.target.{kind}.arn",
                            f"hook targets of this deployment must be named {prefix}* "
                            "(its functions may invoke and notify only those)",
                        )
                    )
    if len(names) != len(set(names)):
        problems.append(FieldProblem("hooks", "hook names must be unique"))
    return problems


def configuration_problems(body: dict[str, Any], policy: ToolPolicy | None = None) -> list[FieldProblem]:
    """What this deployment cannot run in a harness configuration (a definition or the overrides
    of one invocation): providers, fallback models, tool types, hook targets, memory options,
    prompt blocks, truncation, limits. Whether the models support the tools is
    ``tool_support_problems``."""
    policy = policy or ToolPolicy()
    problems: list[FieldProblem] = []
    model = body.get("model")
    if isinstance(model, dict):
        problems.extend(_model_problems(model))
    truncation = body.get("truncation")
    if isinstance(truncation, dict):
        problems.extend(FieldProblem(path, message) for path, message in truncate.problems(truncation))
    for index, tool in enumerate(body.get("tools") or []):
        reason = tools.unsupported_reason(tool, policy.gateway_arns, policy.allow_loopback_urls)
        if reason:
            problems.append(FieldProblem(f"tools[{index}].type", reason))
        elif tool.get("type") == tools.INLINE and (problem := tools.schema_problem(tools.input_schema(tool))):
            problems.append(FieldProblem(f"tools[{index}].config.inlineFunction.inputSchema", problem))
    problems.extend(_hook_problems(body.get("hooks") or [], policy.hook_target_prefix))
    memory = body.get("memory")
    if isinstance(memory, dict) and "optionalValue" in memory:
        memory = memory["optionalValue"]
    if isinstance(memory, dict):
        for kind, config in memory.items():
            if kind != "managedMemoryConfiguration":
                _unsupported(problems, f"memory.{kind}", kind)
                continue
            for member in config:
                if member != "eventExpiryDuration":
                    _unsupported(problems, f"memory.managedMemoryConfiguration.{member}", member)
    for index, block in enumerate(body.get("systemPrompt") or []):
        if "text" not in block:
            problems.append(FieldProblem(f"systemPrompt[{index}]", "only text blocks are supported"))
    for name in ("maxIterations", "maxTokens", "timeoutSeconds"):
        if name in body and body[name] < 1:
            problems.append(FieldProblem(name, "must be at least 1"))
    names = [tool.get("name") for tool in body.get("tools") or []]
    if len(names) != len(set(names)):
        problems.append(FieldProblem("tools", "tool names must be unique"))
    return problems


def raise_problems(problems: list[FieldProblem]) -> None:
    if problems:
        raise ValidationError(
            f"{len(problems)} unsupported or invalid field(s): " + ", ".join(p.name for p in problems),
            fields=problems,
        )


def _check_implemented(body: dict[str, Any], policy: ToolPolicy) -> None:
    problems: list[FieldProblem] = []
    for name in body:
        if name not in _IMPLEMENTED:
            _unsupported(problems, name, name)
    raise_problems(problems + configuration_problems(body, policy))


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
