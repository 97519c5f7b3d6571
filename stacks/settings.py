"""Stack settings read from CDK context (``cdk.json`` or ``cdk synth -c key=value``).

Every key is prefixed ``harness:``. ``cdk.json`` lists each key with the default below, so an
operator sees every knob in one file; a test keeps the two in step. Values given on the command
line arrive as strings and are parsed here, so ``-c harness:auditRetentionDays=400`` works.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from constructs import Node

from harness.gateway import GatewayConfigError, Gateways

#: Where relative paths of the configuration (OpenAPI documents of gateway targets) start.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

CONTEXT_PREFIX = "harness:"

#: The retention periods CloudWatch Logs accepts (``RetentionInDays``).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


class SettingsError(ValueError):
    """A context value that cannot be used; the message names the key and what it accepts."""


def _default_model() -> dict[str, Any]:
    return {"bedrockModelConfig": {"modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}}


@dataclass(frozen=True)
class HarnessSettings:
    """What an operator may change without editing code. Context key = ``harness:<camelCaseName>``."""

    #: Object Lock (COMPLIANCE) retention of audit records, in days. 2555 days = 7 years, a
    #: typical record-keeping period for financial records.
    audit_retention_days: int = 2555
    #: Operational expiry (DynamoDB TTL) of conversation events. Expiry is not erasure.
    event_expiry_days: int = 30
    #: Log level of every function (Powertools ``POWERTOOLS_LOG_LEVEL`` and ``LOG_LEVEL``).
    log_level: str = "INFO"
    #: IAM principal ARNs allowed to call the API (resource policy). Empty: this account's principals.
    allowed_caller_principals: tuple[str, ...] = ()
    #: Model configuration used when a harness names none (AgentCore ``model`` shape).
    default_model: dict[str, Any] = field(default_factory=_default_model)
    #: How long the loop waits for a client to answer ``inline_function`` tool calls.
    client_response_timeout_seconds: int = 3600
    #: Retention of every CloudWatch log group of the stack, in days (a CloudWatch Logs value).
    log_retention_days: int = 365
    #: Expiry of S3 server access logs, in days.
    access_log_expiry_days: int = 365
    #: Steady-state requests per second of the API stage.
    api_throttle_rate_limit: int = 50
    #: Burst of the API stage.
    api_throttle_burst_limit: int = 100
    #: Whether the stack sets the account-wide API Gateway CloudWatch Logs role that execution and
    #: access logging require. Set false where a landing zone already manages that account setting.
    create_api_gateway_account_role: bool = True
    #: The deployment's tool gateways: gateway name -> {"targets": [...]} (see README, "Gateway
    #: targets"). A harness reaches one through an ``agentcore_gateway`` tool naming its ARN.
    gateways: dict[str, Any] = field(default_factory=dict)
    #: Hook targets (Lambda functions, SNS topics, EventBridge buses) must be named with this
    #: prefix: the functions may invoke and notify only those.
    hook_target_prefix: str = "harness-hook-"
    #: Whether a tool call held for approval must be approved by another IAM principal than the
    #: one that started the turn (separation of duties).
    approval_separation_of_duties: bool = True

    @classmethod
    def context_key(cls, field_name: str) -> str:
        head, *rest = field_name.split("_")
        return CONTEXT_PREFIX + head + "".join(part.title() for part in rest)

    @classmethod
    def defaults_as_context(cls) -> dict[str, Any]:
        """The defaults as ``cdk.json`` context entries."""
        defaults = cls()
        return {cls.context_key(f.name): _to_json(getattr(defaults, f.name)) for f in fields(cls)}

    @classmethod
    def from_node(cls, node: Node) -> HarnessSettings:
        """Read every ``harness:`` key from the construct tree's context, falling back to the defaults."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = node.try_get_context(cls.context_key(f.name))
            if raw is not None:
                values[f.name] = raw
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> HarnessSettings:
        defaults = cls()
        parsed: dict[str, Any] = {}
        for f in fields(cls):
            key = cls.context_key(f.name)
            if f.name not in values:
                continue
            raw = values[f.name]
            default = getattr(defaults, f.name)
            if isinstance(default, bool):
                parsed[f.name] = _parse_bool(key, raw)
            elif isinstance(default, int):
                parsed[f.name] = _parse_positive_int(key, raw)
            elif isinstance(default, tuple):
                parsed[f.name] = tuple(_parse_string_list(key, raw))
            elif isinstance(default, dict):
                parsed[f.name] = _parse_object(key, raw)
            else:
                parsed[f.name] = str(raw).upper() if f.name == "log_level" else str(raw)
        settings = cls(**parsed)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError(
                f"{self.context_key('log_level')} must be one of {sorted(LOG_LEVELS)}, not {self.log_level!r}"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise SettingsError(
                f"{self.context_key('log_retention_days')} must be a CloudWatch Logs retention period "
                f"({sorted(LOG_RETENTION_DAYS)}), not {self.log_retention_days}"
            )
        if not re.fullmatch(r"[a-zA-Z0-9_-]{3,40}", self.hook_target_prefix):
            raise SettingsError(
                f"{self.context_key('hook_target_prefix')} must be 3-40 letters, digits, '_' or '-' "
                "(it scopes the IAM grants of hook targets)"
            )
        try:
            Gateways.parse(self.gateways, PROJECT_ROOT)
        except GatewayConfigError as error:
            raise SettingsError(f"{self.context_key('gateways')}: {error}") from None
        for arn in self.allowed_caller_principals:
            if not arn.startswith("arn:"):
                raise SettingsError(
                    f"{self.context_key('allowed_caller_principals')} holds IAM principal ARNs, not {arn!r}"
                )

    @property
    def default_model_json(self) -> str:
        """``harness:defaultModel`` as the compact JSON string the functions receive."""
        return json.dumps(self.default_model, separators=(",", ":"), sort_keys=True)


def _to_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _parse_positive_int(key: str, raw: Any) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a whole number, not {raw!r}") from None
    if isinstance(raw, bool) or value <= 0:
        raise SettingsError(f"{key} must be a positive whole number, not {raw!r}")
    return value


def _parse_bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in {"true", "false"}:
        return str(raw).lower() == "true"
    raise SettingsError(f"{key} must be true or false, not {raw!r}")


def _parse_string_list(key: str, raw: Any) -> list[str]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            raw = json.loads(text)
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise SettingsError(f"{key} must be a list of strings, not {raw!r}")
    return raw


def _parse_object(key: str, raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{key} must be a JSON object: {error}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{key} must be a JSON object, not {raw!r}")
    return raw
