"""Keys: the customer-managed key that encrypts every store, and the HMAC key that seals audit records."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.components.naming import colon_arn, pin_logical_id

#: Explicit KMS actions (the CDK defaults use ``kms:ReEncrypt*`` and ``kms:GenerateDataKey*``).
DECRYPT_ACTIONS = ["kms:Decrypt", "kms:DescribeKey"]
ENCRYPT_ACTIONS = ["kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
ENCRYPT_DECRYPT_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
]


class Encryption(Construct):
    """``EncryptionKey`` (symmetric, yearly rotation) and ``AuditMacKey`` (HMAC_256, GENERATE_VERIFY_MAC).

    Both keys are retained when the stack is deleted: data encrypted or sealed with them (audit
    records under Object Lock, point-in-time backups, log groups) outlives the stack.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.key = kms.Key(
            self,
            "EncryptionKey",
            description="Agent harness: encrypts tables, buckets, vault secrets and log groups",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        pin_logical_id(self.key, "EncryptionKey")
        # CloudWatch Logs of this region may use the key, and only for this account's log groups
        # (the service puts the log group ARN into the encryption context).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                # Logs encrypts and decrypts log events: the explicit actions of grant_encrypt_decrypt.
                actions=ENCRYPT_DECRYPT_ACTIONS,
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": colon_arn(self, "logs", "log-group", "*")
                    }
                },
            )
        )

        # KMS cannot rotate HMAC keys automatically; sealed digests stay verifiable with this key.
        self.mac_key = kms.Key(
            self,
            "AuditMacKey",
            description="Agent harness: HMAC key that seals audit records (hash-chain digests)",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=RemovalPolicy.RETAIN,
        )
        pin_logical_id(self.mac_key, "AuditMacKey")

    # Data in DynamoDB and S3 is encrypted with ``key`` by those services on the caller's behalf,
    # and the domain encrypts per-actor data keys with it (crypto-shredding), so callers need
    # these actions on the key itself.

    def grant_decrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.key.grant(grantee, *DECRYPT_ACTIONS)

    def grant_encrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.key.grant(grantee, *ENCRYPT_ACTIONS)

    def grant_encrypt_decrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.key.grant(grantee, *ENCRYPT_DECRYPT_ACTIONS)

    def grant_seal(self, grantee: iam.IGrantable) -> iam.Grant:
        """Seal audit records: ``kms:GenerateMac`` with the HMAC key."""
        return self.mac_key.grant_generate_mac(grantee)

    def grant_verify_seal(self, grantee: iam.IGrantable) -> iam.Grant:
        """Check a record's seal: ``kms:VerifyMac`` with the HMAC key."""
        return self.mac_key.grant_verify_mac(grantee)
