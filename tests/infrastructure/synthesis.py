"""One synthesis of the app, and the context that overrides every setting."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app_factory import STACK_ID, build_app
from stacks.harness_stack import HarnessStack

#: Context that differs from every default it touches, to prove settings are read from context.
OVERRIDES: dict[str, Any] = {
    "harness:auditRetentionDays": 400,
    "harness:eventExpiryDays": "7",  # as `cdk synth -c harness:eventExpiryDays=7` passes it
    "harness:logLevel": "DEBUG",
    "harness:logRetentionDays": 731,
    "harness:allowedCallerPrincipals": [
        "arn:aws:iam::111122223333:role/platform-agents",
        "arn:aws:iam::444455556666:root",
    ],
    "harness:defaultModel": {"openAiModelConfig": {"modelId": "gpt-5"}},
    "harness:clientResponseTimeoutSeconds": 900,
    "harness:apiThrottleRateLimit": 7,
    "harness:apiThrottleBurstLimit": 9,
    "harness:createApiGatewayAccountRole": False,
    "harness:hookTargetPrefix": "bank-hooks-",
    "harness:gateways": {
        "payments": {
            "targets": [
                {
                    "name": "bank",
                    "openApi": {
                        "schemaPath": "local_runtime/demo_bank.openapi.json",
                        "baseUrl": "https://bank.example.com/v1",
                    },
                    "auth": {
                        "oauth2": {
                            "tokenUrl": "https://bank.example.com/oauth/token",
                            "secret": "bank/client",
                        }
                    },
                    "approvals": [
                        {
                            "tool": "createTransfer",
                            "when": {"field": "body.amount", "op": "gt", "value": 10000},
                            "reason": "Transfers above 10,000 need a second pair of eyes",
                        }
                    ],
                },
                {
                    "name": "fx",
                    "lambda": {
                        "functionArn": "arn:aws:lambda:eu-west-1:111122223333:function:fx-rates",
                        "tools": [{"name": "convert", "description": "Convert an amount", "inputSchema": {}}],
                    },
                },
            ]
        }
    },
}


@dataclass
class Synthesized:
    """One synthesis: the app (for cdk-nag), the stack, the template and the cloud assembly folder."""

    app: App
    stack: HarnessStack
    outdir: Path
    template_json: dict[str, Any]

    @property
    def template(self) -> Template:
        return Template.from_json(self.template_json)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template_json["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    @property
    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synthesized:
    app, stack = build_app(context=context, outdir=str(outdir))
    app.synth()
    template = json.loads((outdir / f"{STACK_ID}.template.json").read_text())
    return Synthesized(app=app, stack=stack, outdir=outdir, template_json=template)
