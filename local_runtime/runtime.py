"""Start, run and stop the local runtime."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from local_runtime import lambda_dispatch, provision, server, snapshot
from local_runtime.synth import code_environment
from local_runtime.template import Template

ACCOUNT_ID = "123456789012"  # moto's account
SNAPSHOT_INTERVAL_SECONDS = 1.0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LocalRuntime:
    template_body: dict[str, Any]
    port: int
    state_dir: Path
    region: str = "us-east-1"
    stack_name: str = "AgentHarness"
    # Vault entries (name under the vault prefix -> secret string) put into the emulated Secrets
    # Manager at every start. They are never written to the state directory.
    vault_secrets: dict[str, str] = field(default_factory=dict)
    # The CDK context the template was synthesized with (it locates the code asset's files).
    synth_context: dict[str, Any] | None = None

    def start(self) -> str:
        """Provision the emulated stack, restore saved state, serve the API; returns the API URL."""
        moto_port = _free_port()
        # Credentials and endpoints for everything in this process point at the emulator only.
        os.environ.update(
            {
                "MOTO_PORT": str(moto_port),
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # Tool servers on 127.0.0.1 are this machine's (on AWS, the function's sandbox).
                "TOOL_URLS_ALLOW_LOOPBACK": "true",
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        self._moto.start()
        endpoint = f"http://127.0.0.1:{moto_port}"
        request = urllib.request.Request(
            f"{endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request).close()

        template = Template(self.template_body, ACCOUNT_ID, self.region, self.stack_name)
        self.deployment = provision.provision(template, endpoint)
        os.environ.update(self.deployment.environment())
        os.environ.update(code_environment(self.template_body, self.synth_context))
        lambda_dispatch.install(self.deployment)
        self._fill_vault(endpoint)

        self._snapshots = snapshot.Snapshots(self.deployment, self.state_dir, endpoint)
        if self._snapshots.restore():
            self._settle_interrupted()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._saver = threading.Thread(target=self._save_periodically, name="local-snapshots", daemon=True)
        self._saver.start()
        self._http = server.make_server(self.deployment, self.port, on_change=self._dirty.set)
        server.serve_in_background(self._http)
        self._wrap_dispatch_to_mark_changes()
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._stopping.set()
        self._saver.join(timeout=10)
        self._snapshots.save()
        self._moto.stop()

    def _fill_vault(self, endpoint: str) -> None:
        import boto3

        prefix = os.environ.get("VAULT_SECRET_PREFIX", "")
        secrets = boto3.client("secretsmanager", region_name=self.region, endpoint_url=endpoint)
        for name, value in self.vault_secrets.items():
            secrets.create_secret(Name=prefix + name, SecretString=value)

    def _settle_interrupted(self) -> None:
        # The state machine's executions lived in the previous process: end what they left open.
        from handlers.dependencies import agent_loop, settings
        from harness.adapters.memory import memory_stores

        invocations = memory_stores(settings().memory_table).invocations
        for actor_id, invocation_id in list(invocations.active_invocations()):
            agent_loop().interrupt(actor_id, invocation_id)
        self._snapshots.save()

    def _wrap_dispatch_to_mark_changes(self) -> None:
        from moto.awslambda.models import LambdaFunction

        invoke = LambdaFunction._invoke_lambda
        dirty = self._dirty

        def invoke_and_mark(function: Any, event: Any = None) -> tuple[str, bool, str]:
            try:
                return invoke(function, event)
            finally:
                dirty.set()

        LambdaFunction._invoke_lambda = invoke_and_mark  # type: ignore[method-assign]

    def _save_periodically(self) -> None:
        while not self._stopping.is_set():
            if self._dirty.wait(SNAPSHOT_INTERVAL_SECONDS) and not self._stopping.is_set():
                self._dirty.clear()
                self._snapshots.save()
