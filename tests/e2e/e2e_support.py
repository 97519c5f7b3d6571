"""What the end-to-end tests share: real boto3 clients, SigV4-signed raw requests, small builders."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import contract

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/harness"
SESSION_HEADER = contract.header_name(contract.DATA_SERVICE, "InvokeHarness", "runtimeSessionId")


def clients(url: str) -> tuple[Any, Any]:
    """(bedrock-agentcore-control, bedrock-agentcore) clients pointed at the local runtime."""
    kw: dict[str, Any] = dict(
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=botocore.config.Config(inject_host_prefix=False, retries={"max_attempts": 0}, read_timeout=60),
    )
    return boto3.client("bedrock-agentcore-control", **kw), boto3.client("bedrock-agentcore", **kw)


def unique_name(prefix: str = "e2e") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def new_session_id() -> str:
    """A runtimeSessionId within AgentCore's 33-100 characters."""
    return f"session-{uuid.uuid4().hex}"  # 40 characters


def inline_tool(name: str) -> dict[str, Any]:
    return {
        "type": "inline_function",
        "name": name,
        "config": {"inlineFunction": {"description": f"The {name} tool.", "inputSchema": {"type": "object"}}},
    }


def user_text(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def tool_result(tool_use_id: str, text: str, status: str = "success") -> dict[str, Any]:
    return {"toolResult": {"toolUseId": tool_use_id, "content": [{"text": text}], "status": status}}


def create_harness(control: Any, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"harnessName": unique_name(), "executionRoleArn": ROLE_ARN} | overrides
    harness: dict[str, Any] = control.create_harness(**params)["harness"]
    return harness


@dataclass
class Turn:
    """The events one InvokeHarness stream delivered, with the views tests assert on."""

    events: list[dict[str, Any]]
    invocation_id: str | None = None
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [next(iter(event)) for event in self.events]

    @property
    def text(self) -> str:
        return "".join(
            event["contentBlockDelta"]["delta"].get("text", "")
            for event in self.events
            if "contentBlockDelta" in event
        )

    @property
    def stop_reasons(self) -> list[str]:
        return [event["messageStop"]["stopReason"] for event in self.events if "messageStop" in event]

    @property
    def stop_reason(self) -> str:
        return self.stop_reasons[-1]

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """Each toolUse the model started: toolUseId, name and the input assembled from deltas."""
        uses: dict[int, dict[str, Any]] = {}
        for event in self.events:
            if "contentBlockStart" in event and "toolUse" in event["contentBlockStart"]["start"]:
                start = event["contentBlockStart"]
                uses[start["contentBlockIndex"]] = dict(start["start"]["toolUse"], input="")
            elif "contentBlockDelta" in event and "toolUse" in event["contentBlockDelta"]["delta"]:
                delta = event["contentBlockDelta"]
                uses[delta["contentBlockIndex"]]["input"] += delta["delta"]["toolUse"]["input"]
        return [dict(use, input=json.loads(use["input"] or "{}")) for use in uses.values()]


def invoke(
    data: Any,
    harness_arn: str,
    session_id: str,
    messages: list[dict[str, Any]],
    actor_id: str | None = "alice",
    **extra: Any,
) -> Turn:
    params: dict[str, Any] = {"harnessArn": harness_arn, "runtimeSessionId": session_id, "messages": messages}
    if actor_id is not None:
        params["actorId"] = actor_id
    response = data.invoke_harness(**params, **extra)
    events = list(response["stream"])
    return Turn(events, response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-invocation-id"))


def say(
    data: Any, harness_arn: str, session_id: str, text: str, actor_id: str = "alice", **extra: Any
) -> Turn:
    return invoke(data, harness_arn, session_id, user_text(text), actor_id=actor_id, **extra)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """SigV4-signed raw HTTP requests, for what boto3 will not send (or to see the bytes)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80

    def open(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a signed request and return once the response headers arrived; the caller reads
        the body (a stream) and closes the connection."""
        payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} | (headers or {})
        request = AWSRequest(method=method, url=self.url + path, data=payload, headers=all_headers)
        SigV4Auth(Credentials("x", "y"), "bedrock-agentcore", REGION).add_auth(request)
        connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
        connection.request(method, path, body=payload, headers=dict(request.prepare().headers))
        return connection, connection.getresponse()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        sign: bool = True,
        timeout: float = 60,
    ) -> RawResponse:
        payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} | (headers or {})
        request = AWSRequest(method=method, url=self.url + path, data=payload, headers=all_headers)
        if sign:
            SigV4Auth(Credentials("x", "y"), "bedrock-agentcore", REGION).add_auth(request)
        prepared = request.prepare()
        connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            connection.request(
                method, prepared.url[len(self.url) :], body=payload, headers=dict(prepared.headers)
            )
            response = connection.getresponse()
            return RawResponse(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()


# -- the runtime process ----------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "Agent harness local runtime ready at "
STARTUP_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 20


# Below Linux's ephemeral range (32768+), from which the runtime picks its own emulator port with
# bind(0): a port chosen there could be handed to the runtime's emulator before the API binds it.
_PORT_RANGE = (20000, 32000)
BIND_FAILURE = "Cannot serve on 127.0.0.1:"


def _free_port() -> int:
    for _ in range(100):
        port = random.randrange(*_PORT_RANGE)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORT_RANGE}")


class RuntimeProcess:
    """One ``python -m local_runtime`` subprocess, its output kept for failure messages."""

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        repo_root: Path = REPO_ROOT,
        start_lock: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.state_dir = state_dir
        self.extra_args = extra_args
        self.port = port or _free_port()
        self._port_given = port is not None
        self.repo_root = repo_root
        # Held while a runtime starts, so runtimes of parallel test workers never synthesize the
        # stack at the same time (see test_startup.py for why that matters).
        self._start_lock = start_lock
        self.url: str | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        if self._start_lock is None:
            return self._start_with_port_retries()
        with self._start_lock.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._start_with_port_retries()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _start_with_port_retries(self) -> str:
        for _attempt in range(3):
            seen = len(self.output)
            try:
                return self._start_once()
            except RuntimeError:
                # Another process took the port between our probe and the runtime's bind: that is
                # the test's choice of port failing, not the runtime; pick another one.
                if self._port_given or not any(BIND_FAILURE in line for line in self.output[seen:]):
                    raise
                self.output.append(f"(port {self.port} was taken; retrying on another port)")
                self.port = _free_port()
        return self._start_once()

    def _start_once(self) -> str:
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(["lambdas", "."])
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT dumps every thread's stack: see stop()
        # The runtime points its own AWS clients at the emulator; nothing of ours should leak in.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            env.pop(name, None)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_runtime",
                "--port",
                str(self.port),
                "--state-dir",
                str(self.state_dir),
                *self.extra_args,
            ],
            cwd=self.repo_root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_output, name="runtime-output", daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._ready.wait(0.2):
            if self._process.poll() is not None:
                time.sleep(0.2)  # let the reader drain the last lines
                raise RuntimeError(
                    f"the local runtime exited with {self._process.returncode} before it was ready:\n"
                    + self.log()
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the local runtime was not ready within {STARTUP_TIMEOUT_SECONDS} s:\n" + self.log()
                )
        assert self.url is not None
        return self.url

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.output.append(line.rstrip("\n"))
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX) :].strip()
                self._ready.set()

    def log(self, last: int = 200, width: int = 600) -> str:
        lines = self.output[-last:]
        return "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in lines)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, as a user's Ctrl-C or service manager would; kill only if it does not exit."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                # Hung: have faulthandler print where every thread is, for the failure message.
                self.output.append(f"(no exit {STOP_TIMEOUT_SECONDS} s after SIGTERM; sending SIGABRT)")
                process.send_signal(signal.SIGABRT)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
                time.sleep(0.5)  # let the reader drain the dump
        self._process = None
        return process.returncode
