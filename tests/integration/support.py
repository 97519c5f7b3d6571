"""Helpers for the integration tests: API Gateway proxy events, Lambda contexts, stream decoding."""

from __future__ import annotations

import base64
import importlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.eventstream import EventStreamBuffer

from harness import contract
from harness.ids import Account
from local_runtime.lambda_dispatch import context_for
from local_runtime.provision import Deployment

ACCOUNT_ID = "123456789012"  # moto's account
REGION = "us-east-1"
STACK_NAME = "AgentHarness"
SESSION_HEADER = contract.header_name(contract.DATA_SERVICE, "InvokeHarness", "runtimeSessionId")
USER_HEADER = contract.header_name(contract.DATA_SERVICE, "InvokeHarness", "runtimeUserId")
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/harness-execution"
LOCAL_MODEL = {"liteLlmModelConfig": {"modelId": "local/deterministic"}}
# The IAM principal API Gateway authenticated, as it puts it in the proxy event.
CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/tester"
APPROVER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/approver"


def clear_caches() -> None:
    """Forget services built from a previous environment (they are cached per process)."""
    from handlers import dependencies
    from harness.adapters import clients

    dependencies.settings.cache_clear()
    dependencies.gateways.cache_clear()
    dependencies.agent_loop.cache_clear()
    dependencies.erasure.cache_clear()
    clients.client.cache_clear()


def new_session_id() -> str:
    # runtimeSessionId must be at least 33 characters in the contract.
    return f"session-{uuid.uuid4()}"


def harness_arn(harness_id: str) -> str:
    return Account("aws", REGION, ACCOUNT_ID).harness_arn(harness_id)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw_body: bytes
    is_base64: bool

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw_body)
        return body

    @property
    def text(self) -> str:
        return self.raw_body.decode()

    def events(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Decoded event-stream frames as (message type, event or exception type, payload)."""
        return decode_eventstream(self.raw_body)

    def items(self) -> list[dict[str, Any]]:
        """The stream as ``{name: payload}`` items, like the encoder's input."""
        return [{name: payload} for _, name, payload in self.events()]


def decode_eventstream(data: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    decoded = []
    for message in buffer:
        headers = message.headers
        kind = headers[":message-type"]
        name = headers[":event-type"] if kind == "event" else headers[":exception-type"]
        decoded.append((kind, name, json.loads(message.payload)))
    return decoded


def decode_sse(text: str) -> list[dict[str, Any]]:
    items = []
    for chunk in text.split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
        items.append({lines["event"]: json.loads(lines["data"])})
    return items


class Api:
    """Calls the API's Lambda handlers with the events API Gateway's REST proxy integration sends."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def event(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        caller: str = CALLER_ARN,
    ) -> tuple[dict[str, Any], str]:
        found = self.deployment.route_for(method, path)
        if found is None:
            # API Gateway would answer itself; the API function's own not-found handler is what we test.
            api_route = self.deployment.route_for("POST", "/harnesses")
            assert api_route is not None
            resource, params, function = path, {}, api_route[0].function_logical_id
        else:
            route, params = found
            resource, function = route.path, route.function_logical_id
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
        request_id = str(uuid.uuid4())
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": dict(query) if query else None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "requestId": request_id,
                "stage": "v1",
                "resourcePath": resource,
                "httpMethod": method,
                "path": f"/v1{path}",
                "accountId": ACCOUNT_ID,
                "identity": {"sourceIp": "127.0.0.1", "userArn": caller},
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "body": body,
            "isBase64Encoded": False,
        }
        return event, function

    def call(self, method: str, path: str, *, context: Any = None, **kwargs: Any) -> Response:
        event, function_logical_id = self.event(method, path, **kwargs)
        function = self.deployment.functions[function_logical_id]
        module_name, _, attribute = function["handler"].rpartition(".")
        module = importlib.import_module(module_name)
        # A route API Gateway streams (InvokeHarness) is served as the local runtime serves it.
        streaming = getattr(module, "STREAMING_ROUTES", {}).get((method, event["resource"]))
        if streaming is not None:
            status, streamed_headers, chunks = streaming(event, context or context_for(function))
            return Response(int(status), dict(streamed_headers), b"".join(chunks), False)
        handler = getattr(module, attribute)
        result = handler(event, context or context_for(function))
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ",".join(values)
        payload = result.get("body") or ""
        is_base64 = bool(result.get("isBase64Encoded"))
        raw = base64.b64decode(payload) if is_base64 else payload.encode()
        return Response(int(result["statusCode"]), headers, raw, is_base64)

    def invoke_function(self) -> dict[str, Any]:
        """The function behind InvokeHarness (it streams), from the template."""
        found = self.deployment.route_for("POST", "/harnesses/invoke")
        assert found is not None
        logical_id = found[0].function_logical_id
        return {"logical_id": logical_id, **self.deployment.functions[logical_id]}

    # -- conveniences -------------------------------------------------------------------------------

    def create_harness(self, name: str | None = None, **members: Any) -> dict[str, Any]:
        body = {"harnessName": name or unique_name(), "executionRoleArn": ROLE_ARN, **members}
        response = self.call("POST", "/harnesses", body=body)
        assert response.status == 201, response.raw_body
        harness: dict[str, Any] = response.json["harness"]
        return harness

    def invoke(
        self,
        harness_id: str,
        messages: list[dict[str, Any]] | str,
        *,
        session_id: str,
        actor_id: str | None = None,
        accept: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        context: Any = None,
        caller: str = CALLER_ARN,
    ) -> Response:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": [{"text": messages}]}]
        body: dict[str, Any] = {"messages": messages, **(extra or {})}
        if actor_id is not None:
            body["actorId"] = actor_id
        all_headers = {SESSION_HEADER: session_id, **(headers or {})}
        if accept:
            all_headers["Accept"] = accept
        return self.call(
            "POST",
            "/harnesses/invoke",
            body=body,
            headers=all_headers,
            query={"harnessArn": harness_arn(harness_id)},
            context=context,
            caller=caller,
        )

    def erase(self, actor_id: str) -> Response:
        return self.call("DELETE", f"/actors/{quote(actor_id, safe='')}")


def unique_name(prefix: str = "it") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def inline_tool(name: str, description: str = "a client-side tool") -> dict[str, Any]:
    return {
        "type": "inline_function",
        "name": name,
        "config": {
            "inlineFunction": {
                "description": description,
                "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        },
    }


def execution_arn(state_machine_arn: str, invocation_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{invocation_id}"


def wait_for_execution(sfn: Any, arn: str, timeout: float = 15.0) -> dict[str, Any]:
    """The execution once it is no longer RUNNING (a finished stream may precede the final state)."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def states_entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def tool_use_id_of(items: list[dict[str, Any]]) -> str:
    for item in items:
        start = item.get("contentBlockStart", {}).get("start", {})
        if "toolUse" in start:
            tool_use_id: str = start["toolUse"]["toolUseId"]
            return tool_use_id
    raise AssertionError(f"no toolUse in {items}")


def tool_result_message(tool_use_id: str, text: str, status: str = "success") -> list[dict[str, Any]]:
    result = {"toolUseId": tool_use_id, "content": [{"text": text}], "status": status}
    return [{"role": "user", "content": [{"toolResult": result}]}]


def everything_stored(aws: Any) -> Iterator[tuple[str, str]]:
    """(where, text) of everything the deployment stored: DynamoDB items, S3 object versions, log
    events, Step Functions executions and their histories (for canary scans)."""
    for table in aws.dynamodb.list_tables()["TableNames"]:
        for page in aws.dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                yield f"dynamodb:{table}", json.dumps(item, default=str)
    for bucket in aws.s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        pages = aws.s3.get_paginator("list_object_versions").paginate(Bucket=name)
        for version in (v for page in pages for v in page.get("Versions", [])):
            body = aws.s3.get_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])["Body"]
            yield f"s3:{name}/{version['Key']}", body.read().decode("utf-8", errors="replace")
    for group in aws.logs.describe_log_groups()["logGroups"]:
        for page in aws.logs.get_paginator("filter_log_events").paginate(logGroupName=group["logGroupName"]):
            for event in page["events"]:
                yield f"logs:{group['logGroupName']}", event["message"]
    sfn = aws.stepfunctions
    for machine in sfn.list_state_machines()["stateMachines"]:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
        for execution in (e for page in pages for e in page["executions"]):
            arn = execution["executionArn"]
            yield f"sfn:{arn}", json.dumps(sfn.describe_execution(executionArn=arn), default=str)
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                yield f"sfn-history:{arn}", json.dumps(page["events"], default=str)
