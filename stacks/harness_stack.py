"""The harness stack: composes one construct per concern and exports what operators need."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from harness.gateway import gateway_arn
from stacks.components.agent_loop import AgentLoop
from stacks.components.api import Api
from stacks.components.artifacts import Artifacts
from stacks.components.audit import AccessLogs, Audit
from stacks.components.encryption import Encryption
from stacks.components.functions import METRICS_NAMESPACE, Functions
from stacks.components.memory import Memory
from stacks.components.monitoring import Monitoring
from stacks.components.vault import Vault
from stacks.settings import HarnessSettings


class HarnessStack(Stack):
    """A self-hosted agent harness: API, agent loop, memory, vault, audit and erasure."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: HarnessSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.encryption = Encryption(self, "Encryption")
        self.memory = Memory(self, "Memory", encryption=self.encryption)
        self.access_logs = AccessLogs(self, "AccessLogs", expiry_days=settings.access_log_expiry_days)
        self.audit = Audit(
            self,
            "Audit",
            encryption=self.encryption,
            access_logs=self.access_logs.bucket,
            retention_days=settings.audit_retention_days,
        )
        self.artifacts = Artifacts(
            self, "Artifacts", encryption=self.encryption, access_logs=self.access_logs.bucket
        )
        self.vault = Vault(self, "Vault", encryption=self.encryption)
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            encryption=self.encryption,
            memory=self.memory,
            audit=self.audit,
            artifacts=self.artifacts,
            vault=self.vault,
        )
        self.agent_loop = AgentLoop(
            self,
            "AgentLoop",
            steps=self.functions.loop_steps,
            key=self.encryption.key,
            log_retention_days=settings.log_retention_days,
        )
        for function in self.functions.api_functions:
            self.agent_loop.grant_control(function)
        self.agent_loop.grant_stop(self.functions.erasure)
        for function in (*self.functions.api_functions, self.functions.erasure):
            function.add_environment("STATE_MACHINE_ARN", self.agent_loop.state_machine.state_machine_arn)
        self.api = Api(
            self,
            "HarnessApi",
            settings=settings,
            key=self.encryption.key,
            api_function=self.functions.api,
            invoke_function=self.functions.invoke_stream,
            erasure_function=self.functions.erasure,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            key=self.encryption.key,
            state_machine=self.agent_loop.state_machine,
            rest_api=self.api.rest_api,
            functions=self.functions.all,
            metrics_namespace=METRICS_NAMESPACE,
        )

        outputs = {
            "ApiUrl": (self.api.url, "Base URL of the harness API (stage v1); sign requests with SigV4"),
            "StateMachineArn": (self.agent_loop.state_machine.state_machine_arn, "The agent loop"),
            "HarnessTableName": (self.memory.harness_table.table_name, "Harness definitions"),
            "MemoryTableName": (self.memory.memory_table.table_name, "Sessions, events and memory per actor"),
            "AuditBucketName": (self.audit.bucket.bucket_name, "Audit records (Object Lock, COMPLIANCE)"),
            "ArtifactBucketName": (
                self.artifacts.bucket.bucket_name,
                "Per-actor files and large tool outputs",
            ),
            "VaultSecretPrefix": (self.vault.secret_prefix, "Name prefix of the token vault's secrets"),
            "EncryptionKeyArn": (
                self.encryption.key.key_arn,
                "Customer-managed key; use it for vault secrets",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
        # The ARN a harness's agentcore_gateway tool names, one output per configured gateway.
        for gateway_name in sorted(settings.gateways):
            CfnOutput(
                self,
                f"GatewayArn{''.join(part.title() for part in gateway_name.split('-'))}",
                value=gateway_arn(gateway_name, self.region, self.account, self.partition),
                description=f"gatewayArn of gateway {gateway_name} for agentcore_gateway tools",
            )
