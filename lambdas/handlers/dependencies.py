"""Builds the domain services from the deployment settings, once per process."""

from __future__ import annotations

import functools

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from handlers.observability import logger
from harness.adapters.artifact_store import ArtifactStore
from harness.adapters.audit_log import AuditLog
from harness.adapters.harness_store import HarnessStore
from harness.adapters.memory import actor_items, memory_stores
from harness.adapters.vault import Vault
from harness.adapters.workflow import Workflow
from harness.configuration_checks import ToolPolicy
from harness.definitions import DeploymentDefaults, HarnessDefinitions
from harness.erasure import Erasure
from harness.gateway import Gateways
from harness.hooks import HookRunner
from harness.ids import Account
from harness.invocations import Invocations
from harness.loop import AgentLoop
from harness.settings import Settings
from harness.tools.dispatch import ToolDispatcher


@functools.cache
def settings() -> Settings:
    return Settings.from_environ()


@functools.cache
def gateways() -> Gateways:
    return Gateways.load(settings().gateway_config_file)


def tool_policy(account: Account) -> ToolPolicy:
    return ToolPolicy(
        gateway_arns=frozenset(gateways().arns(account.region, account.account_id, account.partition)),
        hook_target_prefix=settings().hook_target_prefix,
        separate_approver=settings().approval_separation_of_duties,
        allow_loopback_urls=settings().allow_loopback_tool_urls,
    )


def definitions(account: Account) -> HarnessDefinitions:
    s = settings()
    return HarnessDefinitions(
        HarnessStore(s.harness_table),
        account,
        DeploymentDefaults(
            model=s.default_model,
            event_expiry_days=s.event_expiry_days,
            runtime_arn=s.state_machine_arn,
            tool_policy=tool_policy(account),
        ),
    )


def invocations(account: Account) -> Invocations:
    s = settings()
    return Invocations(
        HarnessStore(s.harness_table),
        memory_stores(s.memory_table),
        Workflow(s.state_machine_arn),
        account,
        s.client_response_timeout_seconds,
        tool_policy=tool_policy(account),
    )


def record_fallback(source: str, target: str, reason: str) -> None:
    """A model call moved to the next model of its fallback chain: a log line and an EMF metric."""
    logger.warning("model fallback", extra={"from_provider": source, "to_provider": target, "reason": reason})
    with single_metric(name="ModelFallback", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="FromProvider", value=source)
        metric.add_dimension(name="ToProvider", value=target)


def record_tool_call(tool_type: str, tool: str, status: str, latency_ms: int) -> None:
    """A server-run tool call: a log line (names from the configuration, never content) and EMF
    metrics for the tool failure rate and latency."""
    logger.info(
        "tool call", extra={"tool_type": tool_type, "tool": tool, "status": status, "latency_ms": latency_ms}
    )
    with single_metric(name="ToolCall", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="ToolType", value=tool_type)
        metric.add_dimension(name="Status", value=status)
    with single_metric(name="ToolCallLatency", unit=MetricUnit.Milliseconds, value=latency_ms) as metric:
        metric.add_dimension(name="ToolType", value=tool_type)


@functools.cache
def agent_loop() -> AgentLoop:
    s = settings()
    vault = Vault(s.vault_secret_prefix)
    return AgentLoop(
        HarnessStore(s.harness_table),
        memory_stores(s.memory_table),
        AuditLog(s.audit_bucket, s.audit_mac_key_id),
        # Provider keys are read inside the model call, from this function's vault grant.
        vault=vault.api_key,
        record_fallback=record_fallback,
        dispatcher=ToolDispatcher(gateways(), secrets=vault.secret, api_key=vault.api_key),
        hooks=HookRunner(),
        artifacts=ArtifactStore(s.artifact_bucket) if s.artifact_bucket else None,
        record_tool_call=record_tool_call,
    )


@functools.cache
def erasure() -> Erasure:
    s = settings()
    return Erasure(
        memory_stores(s.memory_table),
        actor_items(s.memory_table),
        ArtifactStore(s.artifact_bucket),
        AuditLog(s.audit_bucket, s.audit_mac_key_id),
        Workflow(s.state_machine_arn),
    )
