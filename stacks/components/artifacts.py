"""Per-actor files (sandbox filesystem) and large tool outputs, under ``actors/{actorId}/``."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.buckets import encrypted_bucket
from stacks.components.compliance import acknowledge_wildcard_resource, arn_placeholder
from stacks.components.encryption import Encryption

#: Every object of the bucket lives under an actor's prefix: ``actors/{actorId}/...``.
ACTORS_PREFIX = "actors/"


class Artifacts(Construct):
    """``ArtifactBucket``: KMS-encrypted, versioned, TLS-only, access-logged under ``artifacts/``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, encryption: Encryption, access_logs: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self._encryption = encryption
        self.bucket = encrypted_bucket(
            self,
            "ArtifactBucket",
            key=encryption.key,
            access_logs=access_logs,
            access_logs_prefix="artifacts/",
        )

    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """Read and write objects under ``actors/`` (tool outputs, session files)."""
        self.bucket.grants.actions_on_object_keys(
            grantee, ACTORS_PREFIX + "*", "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"
        )
        self._grant_list(grantee, "s3:ListBucket")
        self._encryption.grant_encrypt_decrypt(grantee)
        self._acknowledge_actor_objects(grantee)

    def grant_erase(self, grantee: iam.IGrantable) -> None:
        """List and delete every version of every object under ``actors/`` (right to erasure)."""
        self.bucket.grants.actions_on_object_keys(
            grantee, ACTORS_PREFIX + "*", "s3:DeleteObject", "s3:DeleteObjectVersion"
        )
        self._grant_list(grantee, "s3:ListBucket", "s3:ListBucketVersions")
        self._acknowledge_actor_objects(grantee)

    def _grant_list(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Listing is a bucket-level action; the ``s3:prefix`` condition keeps it inside ``actors/``."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [ACTORS_PREFIX + "*"]}},
            )
        )

    def _acknowledge_actor_objects(self, grantee: iam.IGrantable) -> None:
        acknowledge_wildcard_resource(
            grantee,
            arn_placeholder(self.bucket, f"/{ACTORS_PREFIX}*"),
            "Objects are keyed actors/{actorId}/..., and the actor id is known only per request; the "
            "grant is limited to that prefix and to explicit object actions.",
        )
