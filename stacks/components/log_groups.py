"""CloudWatch log groups: encrypted with the stack's key, retention from ``harness:logRetentionDays``."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct


def encrypted_log_group(
    scope: Construct, construct_id: str, *, key: kms.IKey, retention_days: int
) -> logs.LogGroup:
    """A log group CDK names, encrypted with ``key``, kept ``retention_days`` and retained with the
    stack's deletion (logs are evidence for the retention period)."""
    log_group = logs.LogGroup(scope, construct_id, encryption_key=key, removal_policy=RemovalPolicy.RETAIN)
    # ``RetentionDays`` is an enum of names; the validated number goes into the template directly.
    resource = log_group.node.default_child
    assert isinstance(resource, logs.CfnLogGroup)
    resource.retention_in_days = retention_days
    return log_group
