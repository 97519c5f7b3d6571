"""The synthesized stack passes cdk-nag (three packs) and cfn-lint, and every acknowledgement says why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks, PCIDSS321Checks
from cfnlint.api import ManualArgs, lint_file

from stacks.app_factory import STACK_ID, build_app

from .synthesis import Synthesized

NAG_PACKS = (AwsSolutionsChecks, NIST80053R5Checks, PCIDSS321Checks)
NAG_PLUGIN_NAMES = {"AwsSolutions", "NIST.800.53.R5", "PCI.DSS.321"}
MIN_REASON_LENGTH = 60


def test_cdk_nag_reports_no_unacknowledged_findings(each_configuration: Synthesized) -> None:
    # What `cdk synth` itself reported (errors would have failed synthesis; warnings would be here)...
    reported = [
        (violation["ruleName"], violation["severity"], resource["constructPath"])
        for plugin in each_configuration.validation_report["pluginReports"]
        for violation in plugin["violations"]
        for resource in violation.get("violatingConstructs", [])
    ]
    assert reported == []
    # ...and each pack run on the construct tree directly, errors and warnings alike.
    findings = [
        (pack.__name__, violation.rule_name, violation.severity, resource.construct_path)
        for pack in NAG_PACKS
        for violation in pack().validate_scope(each_configuration.app).violations
        for resource in violation.violating_resources
    ]
    assert findings == []


def test_an_unacknowledged_finding_fails_synthesis(tmp_path: Path) -> None:
    app, stack = build_app(outdir=str(tmp_path))
    s3.Bucket(stack, "BucketWithoutAccessLogs")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-S1" in report
    assert "BucketWithoutAccessLogs" in report


def _acknowledgements(synthesized: Synthesized) -> list[tuple[str, str, str]]:
    return [
        (logical_id, rule["id"], rule["reason"])
        for logical_id, resource in synthesized.resources.items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


def test_every_acknowledgement_gives_a_specific_reason(synthesized: Synthesized) -> None:
    acknowledgements = _acknowledgements(synthesized)
    assert acknowledgements, "acknowledgements are written to the template metadata for audit tooling"
    for logical_id, rule_id, reason in acknowledgements:
        assert rule_id.split("-")[0] in NAG_PLUGIN_NAMES, (logical_id, rule_id)
        assert len(reason.strip()) >= MIN_REASON_LENGTH, (logical_id, rule_id, reason)


def test_wildcard_permissions_are_acknowledged_one_resource_at_a_time(synthesized: Synthesized) -> None:
    for logical_id, rule_id, _ in _acknowledgements(synthesized):
        if rule_id.startswith("AwsSolutions-IAM5"):
            assert re.fullmatch(r"AwsSolutions-IAM5\[Resource::.+\]", rule_id), (logical_id, rule_id)


def test_no_wildcard_action_is_acknowledged(synthesized: Synthesized) -> None:
    assert [a for a in _acknowledgements(synthesized) if "Action::" in a[1]] == []


@pytest.mark.parametrize("configuration", ["synthesized", "overridden"])
def test_synthesized_template_passes_cfn_lint(configuration: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    matches = lint_file(
        synthesized.outdir / f"{STACK_ID}.template.json",
        config=ManualArgs(regions=["us-east-1", "eu-west-1", "eu-central-1"]),
    )
    for match in matches:
        if match.rule.severity != "error":
            print(f"cfn-lint {match.rule.severity}: {match}")
    assert [str(m) for m in matches if m.rule.severity == "error"] == []
