"""DynamoDB: harness definitions, and everything an actor owns (sessions, events, memory records)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.components.compliance import acknowledge, nist
from stacks.components.encryption import Encryption
from stacks.components.naming import pin_logical_id

#: The attribute DynamoDB's TTL reads on the memory table (epoch seconds).
EXPIRY_ATTRIBUTE = "expiresAt"

READ_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
]
WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
ERASE_ACTIONS = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]


class Memory(Construct):
    """``HarnessTable`` (``harnessId``/``sk``) and ``MemoryTable`` (``actorId``/``sk``, TTL ``expiresAt``).

    Everything of one actor lives in that actor's partition of the memory table, so IAM can scope
    access with ``dynamodb:LeadingKeys`` and erasure is a Query on one partition key.
    Both tables: on-demand, encrypted with the stack's key, point-in-time recovery, deletion
    protection, retained when the stack is deleted.
    """

    def __init__(self, scope: Construct, construct_id: str, *, encryption: Encryption) -> None:
        super().__init__(scope, construct_id)
        self._encryption = encryption
        self.harness_table = self._table("HarnessTable", "harnessId")
        self.memory_table = self._table("MemoryTable", "actorId", ttl=EXPIRY_ATTRIBUTE)

    def grant_read_harnesses(self, grantee: iam.IGrantable) -> None:
        self.harness_table.grants.actions(grantee, *READ_ACTIONS)
        self._encryption.grant_decrypt(grantee)

    def grant_read_write_harnesses(self, grantee: iam.IGrantable) -> None:
        self.harness_table.grants.actions(grantee, *READ_ACTIONS, *WRITE_ACTIONS)
        self._encryption.grant_encrypt_decrypt(grantee)

    def grant_read_write_actor_data(self, grantee: iam.IGrantable) -> None:
        self.memory_table.grants.actions(grantee, *READ_ACTIONS, *WRITE_ACTIONS)
        self._encryption.grant_encrypt_decrypt(grantee)

    def grant_erase_actor_data(self, grantee: iam.IGrantable) -> None:
        """Find an actor's items (Query on its partition) and delete them; no writes of new data."""
        self.memory_table.grants.actions(grantee, *ERASE_ACTIONS)
        self._encryption.grant_decrypt(grantee)

    def _table(self, construct_id: str, partition_key: str, *, ttl: str | None = None) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self._encryption.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute=ttl,
            removal_policy=RemovalPolicy.RETAIN,
        )
        pin_logical_id(table, construct_id)
        acknowledge(
            table,
            nist("DynamoDBInBackupPlan"),
            "Point-in-time recovery (continuous, 35 days) is on and deletion protection blocks table "
            "deletion. An AWS Backup plan (vault, schedule, cross-account copies) is set by the "
            "organization's backup policy, which selects resources by tag, not by this stack.",
        )
        return table
