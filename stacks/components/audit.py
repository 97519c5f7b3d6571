"""Audit evidence: the Object Lock (COMPLIANCE) audit bucket, and the bucket of S3 server access logs."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.buckets import encrypted_bucket, secure_bucket
from stacks.components.compliance import (
    acknowledge,
    acknowledge_wildcard_resource,
    arn_placeholder,
    in_compliance_packs,
)
from stacks.components.encryption import Encryption

#: Where the erasure function writes its receipts inside the audit bucket.
ERASURE_RECEIPTS_PREFIX = "erasure-receipts/"


class AccessLogs(Construct):
    """``AccessLogsBucket``: the target of S3 server access logging for the other buckets."""

    def __init__(self, scope: Construct, construct_id: str, *, expiry_days: int) -> None:
        super().__init__(scope, construct_id)
        # S3 delivers server access logs only to buckets whose default encryption is SSE-S3: a target
        # with SSE-KMS default encryption receives no logs. Delivery is granted by a bucket policy
        # (logging.s3.amazonaws.com, limited to this account's source buckets), not by ACLs.
        self.bucket = secure_bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(expiry_days),
                    noncurrent_version_expiration=Duration.days(expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        acknowledge(
            self.bucket,
            in_compliance_packs("S3DefaultEncryptionKMS"),
            "S3 server access log delivery supports only SSE-S3 (AES256) default encryption on the target "
            "bucket; an SSE-KMS target receives no logs. The logs hold request metadata, not content.",
        )


class Audit(Construct):
    """``AuditBucket``: audit records and erasure receipts, immutable for the retention period.

    Object Lock in COMPLIANCE mode: no one, the root user included, can delete or overwrite a record
    version before its retention ends, and the retention cannot be shortened. Records are sealed
    with the HMAC key (``AUDIT_MAC_KEY_ID``) so a verifier detects missing or altered ones.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption: Encryption,
        access_logs: s3.IBucket,
        retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._encryption = encryption
        self.bucket = encrypted_bucket(
            self,
            "AuditBucket",
            key=encryption.key,
            access_logs=access_logs,
            access_logs_prefix="audit/",
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(Duration.days(retention_days)),
        )

    def grant_append(self, grantee: iam.IGrantable) -> None:
        """Write new audit records, sealed with the HMAC key. No read, no delete."""
        self.bucket.grants.actions_on_object_keys(grantee, "*", "s3:PutObject")
        self._encryption.grant_encrypt(grantee)
        self._encryption.grant_seal(grantee)
        acknowledge_wildcard_resource(
            grantee,
            arn_placeholder(self.bucket, "/*"),
            "Audit records are keyed by invocation id, known only at run time. The grant is "
            "s3:PutObject alone, and Object Lock COMPLIANCE keeps every version immutable: a writer can "
            "add records but never change or remove one.",
        )

    def grant_erasure_receipts(self, grantee: iam.IGrantable) -> None:
        """Append audit records and read back erasure receipts (``erasure-receipts/``)."""
        self.grant_append(grantee)
        pattern = ERASURE_RECEIPTS_PREFIX + "*"
        self.bucket.grants.actions_on_object_keys(grantee, pattern, "s3:GetObject")
        self._encryption.grant_decrypt(grantee)
        # A receipt is returned with whether its seal still verifies.
        self._encryption.grant_verify_seal(grantee)
        acknowledge_wildcard_resource(
            grantee,
            arn_placeholder(self.bucket, "/" + pattern),
            "Erasure receipts are keyed by erasure id under erasure-receipts/; reading them back "
            "(GET /actors/{actorId}/erasures/{erasureId}) is limited to that prefix.",
        )
