"""Settings come from CDK context (``cdk.json``, ``cdk synth -c``), with validated values."""

from __future__ import annotations

import pytest

from stacks.app_factory import cdk_json_context
from stacks.settings import HarnessSettings, SettingsError


def test_cdk_json_lists_every_setting_with_its_default() -> None:
    context = cdk_json_context()
    harness_keys = {key: value for key, value in context.items() if key.startswith("harness:")}
    assert harness_keys == HarnessSettings.defaults_as_context()


def test_defaults_are_those_of_a_financial_deployment() -> None:
    settings = HarnessSettings()
    assert settings.audit_retention_days == 2555  # 7 years
    assert settings.event_expiry_days == 30
    assert settings.allowed_caller_principals == ()
    assert settings.default_model == {
        "bedrockModelConfig": {"modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}
    }


def test_values_given_on_the_command_line_as_strings_are_parsed() -> None:
    settings = HarnessSettings.from_values(
        {
            "audit_retention_days": "400",
            "allowed_caller_principals": '["arn:aws:iam::111122223333:role/a"]',
            "default_model": '{"bedrockModelConfig": {"modelId": "m"}}',
            "create_api_gateway_account_role": "false",
        }
    )
    assert settings.audit_retention_days == 400
    assert settings.allowed_caller_principals == ("arn:aws:iam::111122223333:role/a",)
    assert settings.default_model == {"bedrockModelConfig": {"modelId": "m"}}
    assert settings.create_api_gateway_account_role is False


def test_a_comma_separated_caller_list_is_accepted() -> None:
    settings = HarnessSettings.from_values(
        {"allowed_caller_principals": "arn:aws:iam::1:role/a, arn:aws:iam::2:root"}
    )
    assert settings.allowed_caller_principals == ("arn:aws:iam::1:role/a", "arn:aws:iam::2:root")


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"audit_retention_days": "0"}, "harness:auditRetentionDays"),
        ({"audit_retention_days": "seven years"}, "harness:auditRetentionDays"),
        ({"log_retention_days": 42}, "harness:logRetentionDays"),
        ({"log_level": "LOUD"}, "harness:logLevel"),
        ({"allowed_caller_principals": ["platform-team"]}, "harness:allowedCallerPrincipals"),
        ({"default_model": "[1, 2]"}, "harness:defaultModel"),
        ({"create_api_gateway_account_role": "maybe"}, "harness:createApiGatewayAccountRole"),
    ],
)
def test_an_unusable_value_is_rejected_naming_its_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(SettingsError, match=key):
        HarnessSettings.from_values(values)
