"""What every bucket of the stack has in common."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
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
