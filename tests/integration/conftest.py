"""One emulated deployment per test session: moto on 127.0.0.1, provisioned from the synthesized
template, with the state machine's Lambda tasks dispatched to the project's handlers in-process.

This is what ``LocalRuntime.start`` does, minus its HTTP server: tests call the Lambda handlers
directly with API Gateway REST proxy events, as API Gateway would on AWS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local_runtime import lambda_dispatch, provision
from local_runtime.provision import Deployment
from local_runtime.synth import code_environment, synthesize
from local_runtime.template import Template

from .support import ACCOUNT_ID, REGION, STACK_NAME, Api, clear_caches


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = dict(os.environ)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "MOTO_PORT": str(port),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            # As the local runtime: the tests' tool servers listen on 127.0.0.1.
            "TOOL_URLS_ALLOW_LOOPBACK": "true",
        }
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    original_invoke = lambda_dispatch.LambdaFunction._invoke_lambda
    try:
        request = urllib.request.Request(
            f"{endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request).close()
        template = synthesize()
        deployed = provision.provision(Template(template, ACCOUNT_ID, REGION, STACK_NAME), endpoint)
        os.environ.update(deployed.environment())
        os.environ.update(code_environment(template))
        lambda_dispatch.install(deployed)
        clear_caches()
        yield deployed
    finally:
        lambda_dispatch.LambdaFunction._invoke_lambda = original_invoke  # type: ignore[method-assign]
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
        clear_caches()


@pytest.fixture(scope="session")
def api(deployment: Deployment) -> Api:
    return Api(deployment)


@pytest.fixture(scope="session")
def aws(deployment: Deployment) -> Any:
    """Plain boto3 clients against the emulator (for looking behind the adapters)."""

    class Clients:
        def __getattr__(self, service: str) -> Any:
            return boto3.client(service.replace("_", "-"), region_name=REGION)

    return Clients()


@pytest.fixture(scope="session")
def names(deployment: Deployment) -> dict[str, str]:
    """Physical names of the deployment's resources, as the template (and so the handlers) know them."""
    environment = deployment.environment()
    return {
        "harness_table": environment["HARNESS_TABLE_NAME"],
        "memory_table": environment["MEMORY_TABLE_NAME"],
        "artifact_bucket": environment["ARTIFACT_BUCKET_NAME"],
        "audit_bucket": environment["AUDIT_BUCKET_NAME"],
        "audit_mac_key_id": environment["AUDIT_MAC_KEY_ID"],
        "state_machine_arn": environment["STATE_MACHINE_ARN"],
    }
