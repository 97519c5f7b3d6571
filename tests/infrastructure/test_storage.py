"""Keys, tables and buckets: encrypted with the stack's key, recoverable, retained, TLS-only."""

from __future__ import annotations

from aws_cdk.assertions import Match

from .synthesis import Synthesized

KEY_ARN = {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
BUCKETS = ("AccessLogsBucket", "AuditBucket", "ArtifactBucket")


def test_the_stack_key_is_customer_managed_rotated_and_retained(synthesized: Synthesized) -> None:
    key = synthesized.resources["EncryptionKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert "KeySpec" not in key["Properties"]  # symmetric encryption key


def test_cloudwatch_logs_may_use_the_key_only_for_this_accounts_log_groups(synthesized: Synthesized) -> None:
    statements = synthesized.resources["EncryptionKey"]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    assert not any("*" in action for action in logs["Action"])


def test_audit_records_are_sealed_with_a_retained_hmac_key(synthesized: Synthesized) -> None:
    key = synthesized.resources["AuditMacKey"]
    assert key["Properties"]["KeySpec"] == "HMAC_256"
    assert key["Properties"]["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert key["DeletionPolicy"] == "Retain"


def test_tables_are_encrypted_with_the_stack_key_recoverable_and_protected(synthesized: Synthesized) -> None:
    for name in ("HarnessTable", "MemoryTable"):
        table = synthesized.resources[name]
        properties = table["Properties"]
        assert properties["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": KEY_ARN,
        }
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["DeletionProtectionEnabled"] is True
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert table["DeletionPolicy"] == "Retain"


def test_harness_table_is_keyed_by_harness_id(synthesized: Synthesized) -> None:
    properties = synthesized.resources["HarnessTable"]["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "harnessId", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert "TimeToLiveSpecification" not in properties


def test_memory_table_keeps_each_actor_in_one_partition_and_expires_events(synthesized: Synthesized) -> None:
    properties = synthesized.resources["MemoryTable"]["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "actorId", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert "GlobalSecondaryIndexes" not in properties  # erasure is a Query on one partition


def test_audit_bucket_locks_records_in_compliance_mode_for_the_configured_days(
    synthesized: Synthesized, overridden: Synthesized
) -> None:
    for configuration, days in ((synthesized, 2555), (overridden, 400)):
        properties = configuration.resources["AuditBucket"]["Properties"]
        assert properties["ObjectLockEnabled"] is True
        assert properties["ObjectLockConfiguration"] == {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": days}},
        }


def test_data_buckets_are_encrypted_with_the_stack_key(synthesized: Synthesized) -> None:
    for name in ("AuditBucket", "ArtifactBucket"):
        (rule,) = synthesized.resources[name]["Properties"]["BucketEncryption"][
            "ServerSideEncryptionConfiguration"
        ]
        assert rule == {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
        }


def test_access_log_bucket_uses_the_only_encryption_log_delivery_supports(synthesized: Synthesized) -> None:
    (rule,) = synthesized.resources["AccessLogsBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_every_bucket_is_versioned_private_and_retained(synthesized: Synthesized) -> None:
    for name in BUCKETS:
        bucket = synthesized.resources[name]
        properties = bucket["Properties"]
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        assert bucket["DeletionPolicy"] == "Retain"


def test_every_bucket_denies_requests_without_tls(synthesized: Synthesized) -> None:
    for name in BUCKETS:
        synthesized.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": name},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Principal": {"AWS": "*"},
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            ),
                            Match.object_like(
                                {"Effect": "Deny", "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}}
                            ),
                        ]
                    )
                },
            },
        )


def test_data_buckets_write_server_access_logs_to_the_log_bucket(synthesized: Synthesized) -> None:
    for name, prefix in (("AuditBucket", "audit/"), ("ArtifactBucket", "artifacts/")):
        assert synthesized.resources[name]["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": "AccessLogsBucket"},
            "LogFilePrefix": prefix,
        }


def test_access_logs_expire_after_the_configured_days(synthesized: Synthesized) -> None:
    (rule,) = synthesized.resources["AccessLogsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 365


def test_every_log_group_is_encrypted_and_kept_for_the_configured_days(
    synthesized: Synthesized, overridden: Synthesized
) -> None:
    for configuration, days in ((synthesized, 365), (overridden, 731)):
        log_groups = configuration.of_type("AWS::Logs::LogGroup")
        assert len(log_groups) == 12  # 10 functions, the state machine, API access logs
        for log_group in log_groups.values():
            assert log_group["Properties"]["KmsKeyId"] == KEY_ARN
            assert log_group["Properties"]["RetentionInDays"] == days
            assert log_group["DeletionPolicy"] == "Retain"


def test_the_stack_creates_no_secrets_and_no_helper_functions(synthesized: Synthesized) -> None:
    # Vault secrets are stored by operators; log retention and bucket cleanup need no custom resources.
    types = {resource["Type"] for resource in synthesized.resources.values()}
    assert "AWS::SecretsManager::Secret" not in types
    assert not any(t.startswith("Custom::") or t == "AWS::CloudFormation::CustomResource" for t in types)
    assert len(synthesized.of_type("AWS::Lambda::Function")) == 10
