"""What every bucket of the stack has in common."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.compliance import acknowledge, in_compliance_packs
from stacks.components.naming import pin_logical_id


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    lifecycle_rules: list[s3.LifecycleRule] | None = None,
    **props: Any,
) -> s3.Bucket:
    """A bucket with what every bucket of the stack has: versioning, no public access, TLS 1.2+ only,
    ACLs disabled, incomplete uploads cleaned up, retained when the stack is deleted."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=lifecycle_rules
        or [s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7))],
        **props,
    )
    pin_logical_id(bucket, construct_id)
    acknowledge(
        bucket,
        in_compliance_packs("S3BucketReplicationEnabled"),
        "Cross-region replication is the operator's disaster-recovery decision (target region, key, "
        "data-residency rules); the bucket is versioned, so replication can be added without migration.",
    )
    return bucket


def encrypted_bucket(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    access_logs: s3.IBucket,
    access_logs_prefix: str,
    **props: Any,
) -> s3.Bucket:
    """A ``secure_bucket`` for data: encrypted with ``key`` (through an S3 bucket key, which saves
    KMS requests), its server access logs written to ``access_logs`` under ``access_logs_prefix``."""
    return secure_bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        **props,
    )
