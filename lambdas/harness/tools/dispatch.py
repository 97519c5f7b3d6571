"""Server-side tools: listing what the tool servers offer, and running one call.

``remote_mcp`` entries are MCP servers the harness names by URL; ``agentcore_gateway`` entries
name a gateway of this deployment (``harness.gateway``), whose targets are OpenAPI services,
Lambda functions and MCP servers. A call that fails (a server down, a timeout, an open circuit,
an error answer) comes back as a tool error for the model, never as an exception that would end
the loop; its message names what failed, never a credential.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.adapters import functions
from harness.approvals import approval_reason
from harness.canonical import text_digest
from harness.gateway import Gateway, Gateways, Target
from harness.providers.base import ModelCallError
from harness.resilience import CircuitBreaker
from harness.tools import mcp_client
from harness.tools.http_target import TargetCaller, TargetUnavailable
from harness.tools.openapi import PreparedRequest
from harness.tools.outbound_auth import OutboundAuthError, SecretLookup, as_httpx_auth
from harness.tools.outbound_auth_config import auth_from_config
from harness.tools.registry import (
    GATEWAY,
    REMOTE_MCP,
    SEPARATOR,
    Catalog,
    CatalogTool,
    ToolEntry,
    schema_problem,
)

logger = logging.getLogger(__name__)
# The MCP SDK's HTTP client logs each request's full URL at INFO; a URL may carry a credential.
logging.getLogger("httpx2").setLevel(logging.WARNING)

REMOTE_MCP_TIMEOUT_SECONDS = 30.0
DISCOVERY_TIMEOUT_SECONDS = 10.0
# A header value that ends in a token-vault ARN (``Bearer arn:...:token-vault/...``): the ARN is
# replaced by the key it names, the text before it is kept.
_VAULT_HEADER = re.compile(
    r"(?P<prefix>(?:\S+ )?)(?P<arn>arn:aws[a-z-]*:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:token-vault/\S+)"
)

# (apiKeyArn, the URL the key is for) -> the key; the vault refuses URLs its secret does not list.
KeyLookup = Callable[[str, str | None], str]


@dataclass(frozen=True)
class CallResult:
    content: list[dict[str, Any]]
    is_error: bool

    @property
    def status(self) -> str:
        return "error" if self.is_error else "success"


def _error(message: str) -> CallResult:
    return CallResult([{"text": message}], True)


class ToolDispatcher:
    """One per warm function: its circuit breakers and rate limits outlive a single call."""

    def __init__(
        self,
        gateways: Gateways,
        *,
        secrets: SecretLookup,
        api_key: KeyLookup,
        invoke_lambda: functions.Invoke | None = None,
        caller: TargetCaller | None = None,
    ) -> None:
        self._gateways = gateways
        self._secrets = secrets
        self._api_key = api_key
        # Two attempts: the payload's idempotencyKey lets a function recognise a repeated call.
        self._invoke_lambda = invoke_lambda or functions.invoker(attempts=2)
        self._caller = caller or TargetCaller()
        self._mcp_breaker = CircuitBreaker()

    # -- listing ---------------------------------------------------------------------------------

    def discover(self, servers: tuple[dict[str, Any], ...]) -> tuple[Catalog, dict[str, str]]:
        """The tools each server entry offers now, and why an entry offers none (unreachable...).
        Servers are asked concurrently; one that fails costs only its own tools."""
        catalog: Catalog = {}
        problems: dict[str, str] = {}
        if not servers:
            return catalog, problems
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
            futures = {pool.submit(self._list, server): server["name"] for server in servers}
            for future, name in futures.items():
                try:
                    catalog[name] = future.result()
                except _ListingFailed as failure:
                    problems[name] = str(failure)
                    logger.warning("tool server unavailable", extra={"server": name, "problem": str(failure)})
        return catalog, problems

    def _list(self, server: dict[str, Any]) -> list[CatalogTool]:
        name = server["name"]
        if server["type"] == REMOTE_MCP:
            config = server["config"]["remoteMcp"]
            try:
                remote = mcp_client.list_tools(
                    config["url"], timeout=DISCOVERY_TIMEOUT_SECONDS, headers=self._remote_mcp_headers(config)
                )
            except (mcp_client.McpError, ValueError) as error:
                raise _ListingFailed(f"the MCP server of {name} could not be listed: {error}") from None
            return [
                CatalogTool(name, t.name, t.description, t.input_schema)
                for t in remote
                if _usable_schema(name, t.name, t.input_schema)
            ]
        gateway = self._gateway(server)
        tools: list[CatalogTool] = []
        for target in gateway.targets.values():
            if target.kind == "mcp":
                try:
                    remote = mcp_client.list_tools(
                        target.url,
                        timeout=min(DISCOVERY_TIMEOUT_SECONDS, target.policy.timeout_seconds),
                        auth=self._target_httpx_auth(target),
                    )
                except (mcp_client.McpError, ValueError, OutboundAuthError) as error:
                    # The other targets of the gateway still offer their tools.
                    logger.warning(
                        "gateway target unavailable",
                        extra={"gateway": gateway.name, "target": target.name, "problem": str(error)},
                    )
                    continue
                offered = [
                    (t.name, t.description, t.input_schema)
                    for t in remote
                    if _usable_schema(name, t.name, t.input_schema)
                ]
            else:
                offered = [(t.name, t.description, t.input_schema) for t in target.tools.values()]
            tools.extend(
                CatalogTool(name, f"{target.name}{SEPARATOR}{tool}", description, schema)
                for tool, description, schema in offered
            )
        return tools

    # -- approvals ---------------------------------------------------------------------------------

    def approval_reason(self, entry: ToolEntry, arguments: dict[str, Any]) -> str | None:
        """Why this call needs a person's approval before it runs (a gateway target's policy), or None."""
        if entry.tool_type != GATEWAY or entry.remote_name is None:
            return None
        gateway = self._gateways.by_arn(entry.definition["config"]["agentCoreGateway"]["gatewayArn"])
        split = gateway.split(entry.remote_name) if gateway else None
        if split is None:
            return None
        target, tool = split
        return approval_reason(target.approvals, tool, arguments)

    # -- calls ---------------------------------------------------------------------------------------

    def call(self, entry: ToolEntry, arguments: dict[str, Any], idempotency_key: str) -> CallResult:
        try:
            if entry.tool_type == REMOTE_MCP:
                return self._call_remote_mcp(entry, arguments, idempotency_key)
            if entry.tool_type == GATEWAY:
                return self._call_gateway(entry, arguments, idempotency_key)
        except _ListingFailed as failure:
            return _error(f"Tool {entry.name} failed: {failure}")
        return _error(f"Tool {entry.name} is not run by the harness.")

    def _call_remote_mcp(self, entry: ToolEntry, arguments: dict[str, Any], key: str) -> CallResult:
        config = entry.definition["config"]["remoteMcp"]
        headers = self._remote_mcp_headers(config)
        configured = config.get("headers") or {}
        secrets = [value for name, value in headers.items() if value != configured.get(name)]
        # One circuit per server and credential: one harness's bad key must not pause another's calls.
        fingerprint = json.dumps([config["url"], sorted(headers.items())])
        circuit = "mcp:" + text_digest(fingerprint)[:16]
        if not self._mcp_breaker.allow(circuit):
            return _error(
                f"Tool {entry.name} failed: its MCP server is failing; calls are paused for a while."
            )
        try:
            outcome = mcp_client.call_tool(
                config["url"],
                entry.remote_name or "",
                arguments,
                timeout=REMOTE_MCP_TIMEOUT_SECONDS,
                meta={"idempotencyKey": key},
                headers=headers,
            )
        except (mcp_client.McpError, ValueError) as error:
            self._mcp_breaker.failed(circuit)
            return _error(_redacted(f"Tool {entry.name} failed: {error}", secrets))
        self._mcp_breaker.succeeded(circuit)
        # A server that echoes the credential back must not put it in front of the model.
        return CallResult(_redacted(outcome.content, secrets), outcome.is_error)

    def _call_gateway(self, entry: ToolEntry, arguments: dict[str, Any], key: str) -> CallResult:
        gateway = self._gateway(entry.definition)
        split = gateway.split(entry.remote_name or "")
        if split is None:
            return _error(f"Tool {entry.name} is no longer offered by gateway {gateway.name}.")
        target, tool = split
        if target.kind == "openApi":
            return self._call_openapi(entry, gateway.id, target, tool, arguments, key)
        if target.kind == "lambda":
            return self._call_lambda(entry, target, tool, arguments, key)
        try:
            auth = auth_from_config(target.auth, self._secrets)
            # What the credential puts into a request, to redact if the server echoes it back.
            secrets = (
                list(auth.secrets_in(auth.apply(PreparedRequest("POST", target.url, {}, None))))
                if auth
                else []
            )
            outcome = mcp_client.call_tool(
                target.url,
                tool,
                arguments,
                timeout=target.policy.timeout_seconds,
                auth=as_httpx_auth(auth) if auth is not None else None,
                meta={"idempotencyKey": key},
            )
        except (mcp_client.McpError, ValueError, OutboundAuthError) as error:
            return _error(f"Tool {entry.name} failed: {error}")
        return CallResult(_redacted(outcome.content, secrets), outcome.is_error)

    def _call_openapi(
        self,
        entry: ToolEntry,
        gateway_id: str,
        target: Target,
        tool: str,
        arguments: dict[str, Any],
        key: str,
    ) -> CallResult:
        from harness.tools import openapi

        gateway_tool = target.tools.get(tool)
        if gateway_tool is None or gateway_tool.operation is None:
            return _error(f"Tool {entry.name} is no longer offered by its gateway target.")
        try:
            request = openapi.prepare(target.url, gateway_tool.operation, arguments)
            auth = auth_from_config(target.auth, self._secrets)
            # One circuit and one rate limit per gateway target, whatever a harness calls the entry.
            outcome = self._caller.call(f"{gateway_id}/{target.name}", request, target.policy, auth, key)
        except TargetUnavailable as error:
            return _error(f"Tool {entry.name} failed: {error}")
        except ValueError as error:
            return _error(f"Tool {entry.name} could not be called: {error}")
        if outcome.ok:
            return CallResult(outcome.content, False)
        return CallResult([{"text": f"The service answered HTTP {outcome.status}."}, *outcome.content], True)

    def _call_lambda(
        self, entry: ToolEntry, target: Target, tool: str, arguments: dict[str, Any], key: str
    ) -> CallResult:
        if tool not in target.tools:
            return _error(f"Tool {entry.name} is no longer offered by its gateway target.")
        payload = {"tool": tool, "input": arguments, "idempotencyKey": key}
        try:
            response = functions.answer(
                self._invoke_lambda(
                    target.config["functionArn"], json.dumps(payload).encode(), target.policy.timeout_seconds
                )
            )
        except functions.FunctionFailed as failed:
            # The function's error message may carry data; the model gets the kind only.
            return _error(f"Tool {entry.name} failed: the function reported an error ({failed.kind}).")
        except Exception as error:  # any failure of the call is a tool error for the model
            return _error(
                f"Tool {entry.name} failed: the function could not be invoked ({type(error).__name__})."
            )
        if isinstance(response, str):
            return CallResult([{"text": response}], False)
        return CallResult([{"json": response}], False)

    # -- credentials ---------------------------------------------------------------------------------

    def _remote_mcp_headers(self, config: dict[str, Any]) -> dict[str, str]:
        """Headers, token-vault ARNs replaced by their keys."""
        url = config["url"]
        headers = {}
        for name, value in (config.get("headers") or {}).items():
            match = _VAULT_HEADER.fullmatch(value)
            if match is None:
                headers[name] = value
                continue
            try:
                # The vault gives the key only for a URL its secret lists (apiBases).
                headers[name] = match["prefix"] + self._api_key(match["arn"], url)
            except ModelCallError as error:
                raise _ListingFailed(f"header {name}: {error}") from None
        return headers

    def _target_httpx_auth(self, target: Target) -> Any:
        auth = auth_from_config(target.auth, self._secrets)
        return as_httpx_auth(auth) if auth is not None else None

    def _gateway(self, server: dict[str, Any]) -> Gateway:
        arn = server["config"]["agentCoreGateway"]["gatewayArn"]
        gateway = self._gateways.by_arn(arn)
        if gateway is None:
            raise _ListingFailed(f"gateway {arn} is not configured in this deployment")
        return gateway


class _ListingFailed(Exception):
    pass


def _usable_schema(server: str, tool: str, schema: Any) -> bool:
    """A server tool whose inputSchema is not valid JSON Schema is left out (and logged): the
    model could not be told how to call it, nor its calls checked."""
    problem = schema_problem(schema) if isinstance(schema, dict) else "inputSchema is not an object"
    if problem:
        logger.warning("tool left out", extra={"server": server, "tool": tool, "problem": problem})
    return problem is None


def _redacted(value: Any, secrets: list[str]) -> Any:
    """``value`` (text or Converse blocks) with every secret string replaced."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    return value
