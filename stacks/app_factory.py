"""Builds the CDK app -- for ``app.py``, ``cdk synth`` and the tests alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks, PCIDSS321Checks

from stacks.harness_stack import HarnessStack
from stacks.settings import HarnessSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = REPO_ROOT / "cdk.json"
STACK_ID = "AgentHarness"


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` block of ``cdk.json``: feature flags and the ``harness:`` defaults."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return context


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> tuple[App, HarnessStack]:
    """The app with its one stack, checked by cdk-nag (AWS Solutions, NIST 800-53 R5, PCI DSS 3.2.1).

    Context precedence, lowest first: ``cdk.json``, the CDK CLI (``cdk synth -c key=value``), then
    ``context`` given here (tests use it to override settings).
    """
    app = App(context=cdk_json_context(), post_cli_context=context or {}, outdir=outdir)
    stack = HarnessStack(
        app,
        STACK_ID,
        description="Self-hosted agent harness: API, agent loop, memory, vault, audit and erasure",
        settings=HarnessSettings.from_node(app.node),
    )
    # cdk-nag v3 runs as a policy-validation plugin at synthesis: findings that are not
    # acknowledged next to their construct fail ``cdk synth`` (errors) or are reported (warnings)
    # in cdk.out/policy-validation-report.json. Acknowledgements are also written into the
    # template's resource metadata (``cdk_nag.rules_to_suppress``) for audit tooling.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True),
        NIST80053R5Checks(app),
        PCIDSS321Checks(app),
    )
    return app, stack
