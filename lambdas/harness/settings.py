"""Deployment settings, read once from the environment the stack gives every function."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    harness_table: str
    memory_table: str
    artifact_bucket: str
    audit_bucket: str
    audit_mac_key_id: str
    state_machine_arn: str
    vault_secret_prefix: str
    default_model: dict[str, Any]
    event_expiry_days: int
    client_response_timeout_seconds: int
    region: str
    # The deployment's gateways (bundled with the code) and the name prefix of hook targets.
    gateway_config_file: str
    hook_target_prefix: str
    approval_separation_of_duties: bool
    # Set by the local runtime only: tool servers on 127.0.0.1 are the laptop's, not the sandbox's.
    allow_loopback_tool_urls: bool

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            harness_table=env.get("HARNESS_TABLE_NAME", ""),
            memory_table=env.get("MEMORY_TABLE_NAME", ""),
            artifact_bucket=env.get("ARTIFACT_BUCKET_NAME", ""),
            audit_bucket=env.get("AUDIT_BUCKET_NAME", ""),
            audit_mac_key_id=env.get("AUDIT_MAC_KEY_ID", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            vault_secret_prefix=env.get("VAULT_SECRET_PREFIX", ""),
            default_model=json.loads(env.get("DEFAULT_MODEL_CONFIG") or "{}"),
            event_expiry_days=int(env.get("EVENT_EXPIRY_DAYS", "30")),
            client_response_timeout_seconds=int(env.get("CLIENT_RESPONSE_TIMEOUT_SECONDS", "3600")),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            gateway_config_file=_code_path(env.get("GATEWAY_CONFIG_FILE", "")),
            hook_target_prefix=env.get("HOOK_TARGET_PREFIX", ""),
            approval_separation_of_duties=env.get("APPROVAL_SEPARATION_OF_DUTIES", "true") != "false",
            allow_loopback_tool_urls=env.get("TOOL_URLS_ALLOW_LOOPBACK") == "true",
        )


def _code_path(name: str) -> str:
    """A file of the code asset: relative names are found next to the ``harness`` package."""
    if not name or os.path.isabs(name):
        return name
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name)
