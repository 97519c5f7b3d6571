"""Hooks through the whole loop: Lambda hooks decide (allow/deny, failureMode on failure), SNS
hooks notify, every outcome is a ``hookEvent`` in the stream and in the audit record, and only hook
targets named with the deployment's prefix are accepted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from local_runtime import lambda_dispatch
from local_runtime.provision import Deployment

from .support import (
    ACCOUNT_ID,
    REGION,
    Api,
    execution_arn,
    history,
    inline_tool,
    new_session_id,
    states_entered,
    tool_result_message,
    tool_use_id_of,
    unique_name,
    wait_for_execution,
)

PREFIX = "harness-hook-"
Handler = Callable[[dict[str, Any], Any], Any]


class HookFunctions:
    """Emulated Lambda functions whose code runs in this process (as the local runtime runs them)."""

    def __init__(self, aws: Any) -> None:
        self._aws = aws
        self._role = aws.iam.create_role(
            RoleName=unique_name("hook-role"),
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        self.names: list[str] = []
        self.received: dict[str, list[dict[str, Any]]] = {}

    def function(self, handler: Handler) -> str:
        name = f"{PREFIX}{uuid.uuid4().hex[:10]}"
        arn: str = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self._role,
            Handler="index.handler",
            Code={"ZipFile": b"runs in-process"},
        )["FunctionArn"]
        self.received[name] = []

        def recording(event: dict[str, Any], context: Any) -> Any:
            self.received[name].append(event)
            return handler(event, context)

        lambda_dispatch.register(name, recording)
        self.names.append(name)
        return arn

    def close(self) -> None:
        for name in self.names:
            lambda_dispatch.unregister(name)


@pytest.fixture
def hooks(deployment: Deployment, aws: Any) -> Iterator[HookFunctions]:
    functions = HookFunctions(aws)
    yield functions
    functions.close()


def guard(event: dict[str, Any], _: Any) -> dict[str, Any]:
    if event["toolUse"]["input"].get("city") == "Atlantis":
        return {"decision": "deny", "reason": "Atlantis is not a supported city"}
    return {"decision": "allow"}


def broken(event: dict[str, Any], _: Any) -> dict[str, Any]:
    raise RuntimeError("connection string postgres://user:hunter2@db")


def lambda_hook(kind: str, name: str, arn: str, **target: Any) -> dict[str, Any]:
    return {kind: {"name": name, "target": {"lambda": {"arn": arn, **target}}}}


def hook_events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item["hookEvent"] for item in items if "hookEvent" in item]


def text_of(items: list[dict[str, Any]]) -> str:
    return "".join(
        item["contentBlockDelta"]["delta"].get("text", "") for item in items if "contentBlockDelta" in item
    )


def stop_reasons(items: list[dict[str, Any]]) -> list[str]:
    return [item["messageStop"]["stopReason"] for item in items if "messageStop" in item]


def audit(aws: Any, names: dict[str, str], harness_id: str, invocation_id: str) -> dict[str, Any]:
    key = f"invocations/{harness_id}/{invocation_id}.json"
    record: dict[str, Any] = json.loads(
        aws.s3.get_object(Bucket=names["audit_bucket"], Key=key)["Body"].read()
    )["record"]
    return record


def test_a_before_tool_call_hook_denies_a_call_and_the_stream_and_audit_say_why(
    api: Api, aws: Any, names: dict[str, str], hooks: HookFunctions
) -> None:
    arn = hooks.function(guard)
    harness = api.create_harness(
        tools=[inline_tool("lookup")], hooks=[lambda_hook("beforeToolCall", "guard", arn)]
    )
    session, actor = new_session_id(), unique_name()
    response = api.invoke(
        harness["harnessId"], '/tool lookup {"city": "Atlantis"}', session_id=session, actor_id=actor
    )
    items = response.items()
    (event,) = hook_events(items)
    assert event["name"] == "guard" and event["type"] == "before_tool_call"
    assert event["decision"] == "deny" and event["reason"] == "Atlantis is not a supported city"
    # Denied: no pause for the client; the model hears why.
    assert stop_reasons(items)[-1] == "end_turn"
    assert "Hook guard denied" in text_of(items)
    (received,) = hooks.received[arn.rsplit(":", 1)[-1]]
    assert received["toolUse"]["input"] == {"city": "Atlantis"}
    assert "actorId" not in received and actor not in json.dumps(received)
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    record = audit(aws, names, harness["harnessId"], invocation_id)
    assert record["hookEvents"] == [
        {
            "name": "guard",
            "type": "before_tool_call",
            "decision": "deny",
            "reason": "Atlantis is not a supported city",
        }
    ]
    # An allowed call goes on to the client as usual.
    allowed = api.invoke(
        harness["harnessId"], '/tool lookup {"city": "Oslo"}', session_id=session, actor_id=actor
    )
    assert [e["decision"] for e in hook_events(allowed.items())] == ["allow"]
    assert stop_reasons(allowed.items())[-1] == "tool_use"


@pytest.mark.parametrize(("failure_mode", "paused"), [("deny", False), ("allow", True)])
def test_a_failing_hook_applies_its_failure_mode_without_leaking_its_error(
    api: Api, hooks: HookFunctions, failure_mode: str, paused: bool
) -> None:
    arn = hooks.function(broken)
    harness = api.create_harness(
        tools=[inline_tool("lookup")],
        hooks=[lambda_hook("beforeToolCall", "broken", arn, failureMode=failure_mode, timeoutSeconds=5)],
    )
    response = api.invoke(
        harness["harnessId"],
        '/tool lookup {"city": "Oslo"}',
        session_id=new_session_id(),
        actor_id=unique_name(),
    )
    items = response.items()
    (event,) = hook_events(items)
    assert event["decision"] == failure_mode and "failed" in event["reason"]
    assert "hunter2" not in response.raw_body.decode("utf-8", errors="replace")
    assert (stop_reasons(items)[-1] == "tool_use") is paused


def test_a_before_invocation_hook_can_stop_the_invocation_before_any_model_call(
    api: Api, aws: Any, names: dict[str, str], hooks: HookFunctions
) -> None:
    arn = hooks.function(lambda event, _: {"decision": "deny", "reason": "outside business hours"})
    harness = api.create_harness(hooks=[lambda_hook("beforeInvocation", "hours", arn)])
    response = api.invoke(harness["harnessId"], "hello", session_id=new_session_id(), actor_id=unique_name())
    items = response.items()
    (event,) = hook_events(items)
    assert event["type"] == "before_invocation" and event["decision"] == "deny"
    assert stop_reasons(items) == ["hook_stopped"]
    invocation_id = response.header("x-amzn-invocation-id")
    assert invocation_id
    described = wait_for_execution(
        aws.stepfunctions, execution_arn(names["state_machine_arn"], invocation_id)
    )
    entered = states_entered(history(aws.stepfunctions, described["executionArn"]))
    assert entered == ["LoadContext", "InvocationAllowed", "Finalize", "InvocationComplete"]


def test_sns_hooks_notify_without_tool_content(api: Api, aws: Any, hooks: HookFunctions) -> None:
    topic = aws.sns.create_topic(Name=f"{PREFIX}{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = aws.sqs.create_queue(QueueName=unique_name("hook-q"))["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    harness = api.create_harness(
        tools=[inline_tool("lookup")],
        hooks=[
            {"beforeToolCall": {"name": "watch", "target": {"sns": {"arn": topic}}}},
            {"afterInvocation": {"name": "done", "target": {"sns": {"arn": topic}}}},
        ],
    )
    response = api.invoke(
        harness["harnessId"],
        '/tool lookup {"city": "Secret City"}',
        session_id=new_session_id(),
        actor_id=unique_name(),
    )
    events = hook_events(response.items())
    assert [(e["name"], e["type"], e["reason"]) for e in events] == [
        ("watch", "before_tool_call", "notified")
    ]
    messages = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["hookType"] for b in bodies] == ["beforeToolCall"]
    assert "Secret City" not in json.dumps(bodies)


def test_hook_targets_outside_the_deployment_prefix_are_rejected(api: Api) -> None:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:payments-approver"
    response = api.call(
        "POST",
        "/harnesses",
        body={
            "harnessName": unique_name(),
            "executionRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/r",
            "hooks": [lambda_hook("beforeToolCall", "guard", arn)],
        },
    )
    assert response.status == 400
    body = response.json
    assert body["fieldList"][0]["name"] == "hooks[0].beforeToolCall.target.lambda.arn"
    assert PREFIX in body["fieldList"][0]["message"]


def test_an_after_tool_call_hook_checks_client_results_too(api: Api, hooks: HookFunctions) -> None:
    def dlp(event: dict[str, Any], _: Any) -> dict[str, Any]:
        text = json.dumps(event["toolResult"]["content"])
        if "IBAN" in text:
            return {"decision": "deny", "reason": "contains an account number"}
        return {"decision": "allow"}

    arn = hooks.function(dlp)
    harness = api.create_harness(
        tools=[inline_tool("lookup")], hooks=[lambda_hook("afterToolCall", "dlp", arn)]
    )
    session, actor = new_session_id(), unique_name()
    paused = api.invoke(
        harness["harnessId"], '/tool lookup {"city": "Oslo"}', session_id=session, actor_id=actor
    )
    tool_use_id = tool_use_id_of(paused.items())
    resumed = api.invoke(
        harness["harnessId"],
        tool_result_message(tool_use_id, "IBAN DE89370400440532013000"),
        session_id=session,
        actor_id=actor,
    )
    items = resumed.items()
    (event,) = hook_events(items)
    assert event["type"] == "after_tool_call" and event["decision"] == "deny"
    text = text_of(items)
    assert "withheld this result" in text and "DE8937" not in text
