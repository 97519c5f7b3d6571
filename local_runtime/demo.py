"""The local demo: governed tools in one session, offline.

``python -m local_runtime --demo`` (``make demo``) starts, next to the harness:

- the demo bank (``demo_bank``), an OpenAPI service behind the gateway ``demo``: its operations
  become tools, its API key is read from the vault, and ``createTransfer`` above 10,000 waits for a
  person's approval (the gateway target's approval policy);
- the advisor (``demo_mcp``), an MCP server the harness reaches directly as a ``remote_mcp`` tool,
  with a bearer token from the vault.

The gateway is stack configuration (``harness:gateways``), so the demo synthesizes the stack with
it. ``python -m local_runtime.demo_session`` then creates the demo harness and runs a session that
uses all three.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from harness.gateway import gateway_arn
from local_runtime import demo_bank, demo_mcp
from local_runtime.demo_bank import DemoBank
from local_runtime.demo_mcp import AdvisorServer

BANK_PORT = 8001
ADVISOR_PORT = 8002
GATEWAY = "demo"
BANK_SECRET = "demo/bank-api-key"
# The advisor's token, named by a token-vault ARN in the harness's header configuration.
ADVISOR_VAULT = "advisor"
ADVISOR_PROVIDER = "default"
APPROVAL_THRESHOLD = 10_000


def gateway_context(bank_url: str) -> dict[str, Any]:
    """The CDK context of the demo's gateway: the bank as an OpenAPI target with an approval policy."""
    return {
        "harness:gateways": {
            GATEWAY: {
                "targets": [
                    {
                        "name": "bank",
                        "openApi": {
                            "schemaPath": "local_runtime/demo_bank.openapi.json",
                            "baseUrl": bank_url,
                        },
                        "auth": {
                            "apiKey": {
                                "secret": BANK_SECRET,
                                "location": "header",
                                "parameterName": "X-Api-Key",
                            }
                        },
                        "timeoutSeconds": 5,
                        "maxAttempts": 3,
                        "ratePerSecond": 5,
                        "burst": 10,
                        "approvals": [
                            {
                                "tool": "createTransfer",
                                "when": {"field": "body.amount", "op": "gt", "value": APPROVAL_THRESHOLD},
                                "reason": "Transfers above 10,000 need a second pair of eyes",
                            }
                        ],
                    }
                ]
            }
        }
    }


def advisor_url(port: int = ADVISOR_PORT) -> str:
    return f"http://127.0.0.1:{port}/mcp"


def harness_body(name: str, advisor: str, region: str, account: str) -> dict[str, Any]:
    """CreateHarness for the demo harness: the advisor (remote MCP) and the demo gateway."""
    token_arn = (
        f"arn:aws:bedrock-agentcore:{region}:{account}:token-vault/{ADVISOR_VAULT}/"
        f"apikeycredentialprovider/{ADVISOR_PROVIDER}"
    )
    return {
        "harnessName": name,
        "executionRoleArn": f"arn:aws:iam::{account}:role/demo-harness",
        "systemPrompt": [{"text": "You are a careful banking assistant."}],
        "tools": [
            {
                "type": "remote_mcp",
                "name": "advisor",
                "config": {
                    "remoteMcp": {"url": advisor, "headers": {"Authorization": f"Bearer {token_arn}"}}
                },
            },
            {
                "type": "agentcore_gateway",
                "name": GATEWAY,
                "config": {"agentCoreGateway": {"gatewayArn": gateway_arn(GATEWAY, region, account)}},
            },
        ],
        "allowedTools": ["@advisor", f"@{GATEWAY}/bank__*"],
    }


@dataclass
class DemoServers:
    bank_port: int = BANK_PORT
    advisor_port: int = ADVISOR_PORT
    # Fresh credentials per start: they live only in this process and the emulated vault.
    bank_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    advisor_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def start(self) -> None:
        self._bank: DemoBank = demo_bank.serve(api_key=self.bank_key, port=self.bank_port)
        self._advisor: AdvisorServer = demo_mcp.serve(
            port=self.advisor_port, required_bearer=self.advisor_token
        )

    def stop(self) -> None:
        self._advisor.stop()
        self._bank.stop()

    @property
    def bank_url(self) -> str:
        return f"http://127.0.0.1:{self.bank_port}"

    @property
    def advisor_url(self) -> str:
        return advisor_url(self.advisor_port)

    @property
    def context(self) -> dict[str, Any]:
        return gateway_context(self.bank_url)

    @property
    def vault_secrets(self) -> dict[str, str]:
        """Vault entries (name under the vault prefix -> secret string) the demo's tools use."""
        return {
            f"targets/{BANK_SECRET}": self.bank_key,
            f"{ADVISOR_VAULT}/{ADVISOR_PROVIDER}": json.dumps(
                {"apiKey": self.advisor_token, "apiBases": [advisor_url(self.advisor_port)]}
            ),
        }
