"""The token vault: credentials in Secrets Manager under ``<stack name>/vault/``, encrypted with the CMK.

The stack creates no secrets; an operator stores each credential (a model provider's API key, an
OAuth client secret for a gateway target) under the prefix, encrypted with the stack's key::

    aws secretsmanager create-secret \\
        --name "<VaultSecretPrefix output><name>" \\
        --kms-key-id "<EncryptionKeyArn output>" \\
        --secret-string '{"apiKey": "..."}'

for example ``--name AgentHarness/vault/openai``. Harness definitions refer to the credential by
``<name>``; the functions read it at call time and inject it into the outbound request only --
never into model context, tool results, logs, traces, events or audit records.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.components.compliance import acknowledge_wildcard_resource
from stacks.components.encryption import Encryption
from stacks.components.naming import colon_arn


class Vault(Construct):
    """Read access to the secrets under ``secret_prefix`` (``VAULT_SECRET_PREFIX``)."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption: Encryption) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._encryption = encryption
        #: The name prefix of every vault secret, e.g. ``AgentHarness/vault/``.
        self.secret_prefix = f"{stack.stack_name}/vault/"
        # Secret ARNs end in "-" plus six random characters, so the grant needs a trailing "*".
        self._secrets_arn = colon_arn(self, "secretsmanager", "secret", self.secret_prefix + "*")

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read vault secrets, and decrypt them with the CMK only through Secrets Manager."""
        stack = Stack.of(self)
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resource_arns=[self._secrets_arn],
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self._encryption.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}
                },
            )
        )
        acknowledge_wildcard_resource(
            grantee,
            "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:"
            f"{self.secret_prefix}*",
            f"The vault is every secret named {self.secret_prefix}<name>; which one a harness uses is "
            "configuration, and Secrets Manager appends a random suffix to every secret ARN. Read-only "
            "(GetSecretValue, DescribeSecret), decryption only via Secrets Manager.",
        )
        return grant
