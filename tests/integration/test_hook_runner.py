"""HookRunner against moto: Lambda hooks run in-process, SNS and EventBridge deliver to SQS.

The hooks need no part of the stack, so this module runs its own moto server rather than the
session's deployment. moto would run Lambda code in Docker; as ``local_runtime.lambda_dispatch``
does for the stack's functions, ``LambdaFunction._invoke_lambda`` is replaced, here with Python
callables named after the test's functions. Invoke still travels over HTTP to the moto server, so
the client's read timeout is exercised for real.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction
from moto.server import ThreadedMotoServer

from harness import contract
from harness.adapters import clients
from harness.hooks import (
    HOOK_TYPES,
    HookOutcome,
    HookRunner,
    HookSpec,
    denied,
    hook_specs,
)

from .support import ACCOUNT_ID, REGION, unique_name

SECRET_INPUT = {"iban": "DE89370400440532013000", "amount": 25000}
SECRET_OUTPUT = [{"text": "balance is 1,000,000"}]
TOOL_CALL_PAYLOAD = {
    "harnessId": "support-abcdefghij",
    "harnessVersion": "1",
    "invocationId": str(uuid.uuid4()),
    "sessionId": "session-00000000000000000000000000000001",
    "toolUse": {"toolUseId": "tooluse_1", "name": "createTransfer", "input": SECRET_INPUT},
}
AFTER_TOOL_CALL_PAYLOAD = {**TOOL_CALL_PAYLOAD, "toolResult": {"status": "success", "content": SECRET_OUTPUT}}

Handler = Callable[[dict[str, Any]], Any]


@pytest.fixture(scope="module")
def aws_clients() -> Iterator[Any]:
    """A moto server on 127.0.0.1; HookRunner's default clients reach it through AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with pytest.MonkeyPatch.context() as environment:
            for name, value in {
                "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            }.items():
                environment.setenv(name, value)
            clients.client.cache_clear()

            class Clients:
                def __getattr__(self, service: str) -> Any:
                    return boto3.client(service, region_name=REGION)

            yield Clients()
    finally:
        clients.client.cache_clear()  # the cached clients point at this server
        server.stop()


class FakeFunctions:
    """Lambda functions created in moto whose code is a Python callable; records every event."""

    def __init__(self, aws_clients: Any) -> None:
        self.lambda_client = getattr(aws_clients, "lambda")
        self.handlers: dict[str, Handler] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.role_arn = aws_clients.iam.create_role(
            RoleName=unique_name("hook-role"),
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]

    def create(self, handler: Handler) -> str:
        name = unique_name("hook")
        created = self.lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self.role_arn,
            Handler="index.handler",
            Code={"ZipFile": b"not run: the test dispatches in-process"},
        )
        self.handlers[name] = handler
        self.events[name] = []
        arn: str = created["FunctionArn"]
        return arn

    def events_of(self, arn: str) -> list[dict[str, Any]]:
        return self.events[arn.rsplit(":", 1)[-1]]

    def invoke(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        """What Lambda returns for a RequestResponse invoke: (payload, errored, logs)."""
        payload = json.loads(event) if isinstance(event, str) else event
        self.events[function.function_name].append(payload)
        try:
            result = self.handlers[function.function_name](payload)
        except Exception as error:
            body = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return json.dumps(body), True, ""
        return (result if isinstance(result, str) else json.dumps(result)), False, ""


@pytest.fixture
def functions(aws_clients: Any, monkeypatch: pytest.MonkeyPatch) -> FakeFunctions:
    fakes = FakeFunctions(aws_clients)
    dispatch_other_functions = LambdaFunction._invoke_lambda

    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if self.function_name in fakes.handlers:
            return fakes.invoke(self, event)
        return dispatch_other_functions(self, event)

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    return fakes


@pytest.fixture
def queue(aws_clients: Any) -> tuple[str, str]:
    """An SQS queue (URL, ARN) to observe notifications."""
    url: str = aws_clients.sqs.create_queue(QueueName=unique_name("hooks"))["QueueUrl"]
    arn: str = aws_clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def received(aws_clients: Any, queue_url: str) -> list[str]:
    messages = aws_clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [message["Body"] for message in messages.get("Messages", [])]


def lambda_hook(
    arn: str, hook_type: str = "beforeToolCall", *, name: str = "guard", **options: Any
) -> HookSpec:
    return HookSpec(name=name, hook_type=hook_type, target_kind="lambda", arn=arn, **options)


def assert_no_content(text: str) -> None:
    for secret in ("DE89370400440532013000", "25000", "1,000,000", "actorId", "input", "content"):
        assert secret not in text


# --- Lambda targets ----------------------------------------------------------------------------


def test_an_allowing_hook_gets_the_payload_without_the_actor(functions: FakeFunctions) -> None:
    arn = functions.create(lambda event: {"decision": "allow"})

    [outcome] = HookRunner().run([lambda_hook(arn)], "beforeToolCall", TOOL_CALL_PAYLOAD)

    assert outcome.decision == "allow" and outcome.reason is None and outcome.name == "guard"
    [event] = functions.events_of(arn)
    assert event == {
        "hookType": "beforeToolCall",
        "hookEventId": outcome.hook_event_id,
        "hookName": "guard",
        **TOOL_CALL_PAYLOAD,
    }


def test_a_hook_without_a_decision_allows(functions: FakeFunctions) -> None:
    arn = functions.create(lambda event: {"note": "seen"})
    [outcome] = HookRunner().run([lambda_hook(arn)], "beforeToolCall", TOOL_CALL_PAYLOAD)
    assert outcome.decision == "allow"


def test_a_deny_carries_the_hooks_reason(functions: FakeFunctions) -> None:
    arn = functions.create(lambda event: {"decision": "deny", "reason": "beneficiary is on a sanctions list"})

    outcomes = HookRunner().run([lambda_hook(arn)], "beforeToolCall", TOOL_CALL_PAYLOAD)

    assert denied(outcomes) == outcomes[0]
    assert outcomes[0].decision == "deny"
    assert outcomes[0].reason == "beneficiary is on a sanctions list"


def test_a_function_error_applies_the_failure_mode_without_its_message(functions: FakeFunctions) -> None:
    def crash(event: dict[str, Any]) -> Any:
        raise RuntimeError(f"cannot parse {event['toolUse']['input']}")

    arn = functions.create(crash)
    runner = HookRunner()

    [closed] = runner.run([lambda_hook(arn)], "beforeToolCall", TOOL_CALL_PAYLOAD)
    [opened] = runner.run([lambda_hook(arn, failure_mode="allow")], "beforeToolCall", TOOL_CALL_PAYLOAD)
    [after] = runner.run([lambda_hook(arn, "afterToolCall")], "afterToolCall", AFTER_TOOL_CALL_PAYLOAD)

    assert closed.decision == "deny"
    assert closed.reason == "hook guard failed (FunctionError); failureMode deny applied"
    assert opened.decision == "allow"
    assert opened.reason == "hook guard failed (FunctionError); failureMode allow applied"
    assert after.decision == "allow"  # after* hooks fail open by default
    for outcome in (closed, opened, after):
        assert outcome.reason is not None
        assert "cannot parse" not in outcome.reason and "RuntimeError" not in outcome.reason


@pytest.mark.parametrize(
    "answer",
    ["not json", [], "null", {"decision": "DENY"}, {"decision": "maybe"}, {"decision": "deny", "reason": 7}],
)
def test_a_malformed_answer_is_a_hook_failure(functions: FakeFunctions, answer: Any) -> None:
    arn = functions.create(lambda event: answer)
    [outcome] = HookRunner().run([lambda_hook(arn)], "beforeToolCall", TOOL_CALL_PAYLOAD)
    assert outcome.decision == "deny"
    assert outcome.reason == "hook guard failed (InvalidResponse); failureMode deny applied"


def test_a_missing_function_is_a_hook_failure(aws_clients: Any) -> None:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{unique_name('absent')}"
    spec = lambda_hook(arn, "beforeInvocation")
    [outcome] = HookRunner().run([spec], "beforeInvocation", {"sessionId": "s"})
    assert outcome.decision == "deny"
    assert outcome.reason == "hook guard failed (ResourceNotFoundException); failureMode deny applied"


def test_a_hook_slower_than_its_timeout_is_a_failure(functions: FakeFunctions) -> None:
    release = threading.Event()

    def slow(event: dict[str, Any]) -> Any:
        release.wait(timeout=2)  # the moto server thread; released once the client has given up
        return {"decision": "allow"}

    arn = functions.create(slow)
    try:
        [outcome] = HookRunner().run(
            [lambda_hook(arn, timeout_seconds=1)], "beforeToolCall", TOOL_CALL_PAYLOAD
        )
    finally:
        release.set()

    assert outcome.decision == "deny"
    assert outcome.reason == "hook guard failed (Timeout); failureMode deny applied"
    assert len(functions.events_of(arn)) == 1  # not retried: a retry would run the function twice


def test_a_before_deny_stops_the_hooks_after_it(functions: FakeFunctions, aws_clients: Any) -> None:
    deny = functions.create(lambda event: {"decision": "deny", "reason": "no"})
    allow = functions.create(lambda event: {"decision": "allow"})
    topic = aws_clients.sns.create_topic(Name=unique_name("hooks"))["TopicArn"]
    specs = [
        lambda_hook(allow, name="first"),
        lambda_hook(deny, name="second"),
        lambda_hook(allow, name="third"),
        HookSpec(name="audit", hook_type="beforeToolCall", target_kind="sns", arn=topic),
    ]

    outcomes = HookRunner().run(specs, "beforeToolCall", TOOL_CALL_PAYLOAD)

    assert [(o.name, o.decision) for o in outcomes] == [("first", "allow"), ("second", "deny")]
    assert len(functions.events_of(allow)) == 1


def test_after_hooks_all_run_whatever_they_decide(functions: FakeFunctions) -> None:
    deny = functions.create(lambda event: {"decision": "deny", "reason": "looks odd"})
    allow = functions.create(lambda event: {"decision": "allow"})
    specs = [
        lambda_hook(deny, "afterToolCall", name="first"),
        lambda_hook(allow, "afterToolCall", name="second"),
        lambda_hook(allow, "beforeToolCall", name="other-type"),
    ]

    outcomes = HookRunner().run(specs, "afterToolCall", AFTER_TOOL_CALL_PAYLOAD)

    assert [(o.name, o.decision) for o in outcomes] == [("first", "deny"), ("second", "allow")]
    assert denied(outcomes) == outcomes[0]
    [event] = functions.events_of(allow)
    assert event["toolResult"] == AFTER_TOOL_CALL_PAYLOAD["toolResult"]


def test_members_the_hook_must_not_see_are_refused() -> None:
    with pytest.raises(ValueError, match="actorId"):
        HookRunner().run([], "beforeInvocation", {"sessionId": "s", "actorId": "alice"})
    with pytest.raises(ValueError, match="unknown hook type"):
        HookRunner().run([], "before_tool_call", {})
    with pytest.raises(ValueError, match="run as 'afterInvocation'"):
        HookRunner().run([], "afterInvocation", {"hookType": "beforeInvocation"})


def test_each_hook_gets_its_own_event_id(functions: FakeFunctions) -> None:
    arn = functions.create(lambda event: {"decision": "allow"})
    payload = {"hookType": "beforeToolCall", "hookEventId": "from-the-caller", **TOOL_CALL_PAYLOAD}

    outcomes = HookRunner().run([lambda_hook(arn), lambda_hook(arn)], "beforeToolCall", payload)

    ids = [event["hookEventId"] for event in functions.events_of(arn)]
    assert ids == [outcome.hook_event_id for outcome in outcomes]
    assert len(set(ids)) == 2 and "from-the-caller" not in ids


# --- notification targets ----------------------------------------------------------------------


def test_sns_notifications_carry_ids_not_content(
    aws_clients: Any, functions: FakeFunctions, queue: Any
) -> None:
    queue_url, queue_arn = queue
    topic = aws_clients.sns.create_topic(Name=unique_name("hooks"))["TopicArn"]
    aws_clients.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    allow = functions.create(lambda event: {"decision": "allow"})
    specs = [
        lambda_hook(allow),
        HookSpec(name="audit", hook_type="beforeToolCall", target_kind="sns", arn=topic),
    ]

    outcomes = HookRunner().run(specs, "beforeToolCall", TOOL_CALL_PAYLOAD)

    notified = outcomes[1]
    assert (notified.decision, notified.reason) == (None, "notified")
    [body] = received(aws_clients, queue_url)
    message = json.loads(json.loads(body)["Message"])
    assert message == {
        "hookType": "beforeToolCall",
        "hookEventId": notified.hook_event_id,
        "hookName": "audit",
        "harnessId": TOOL_CALL_PAYLOAD["harnessId"],
        "harnessVersion": "1",
        "invocationId": TOOL_CALL_PAYLOAD["invocationId"],
        "sessionId": TOOL_CALL_PAYLOAD["sessionId"],
        "toolUse": {"toolUseId": "tooluse_1", "name": "createTransfer"},
        "decision": "allow",
    }
    assert_no_content(json.dumps(message))


def test_eventbridge_notifications_reach_a_rule_on_the_bus(aws_clients: Any, queue: Any) -> None:
    queue_url, queue_arn = queue
    bus_name = unique_name("hooks")
    bus = aws_clients.events.create_event_bus(Name=bus_name)["EventBusArn"]
    rule = unique_name("hooks")
    aws_clients.events.put_rule(
        Name=rule,
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": ["agent-harness"], "detail-type": ["Harness Hook afterToolCall"]}),
    )
    aws_clients.events.put_targets(
        Rule=rule, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    spec = HookSpec(name="observe", hook_type="afterToolCall", target_kind="eventBridge", arn=bus)

    [outcome] = HookRunner().run([spec], "afterToolCall", AFTER_TOOL_CALL_PAYLOAD)

    assert (outcome.decision, outcome.reason) == (None, "notified")
    [body] = received(aws_clients, queue_url)
    event = json.loads(body)
    assert event["source"] == "agent-harness"
    assert event["detail-type"] == "Harness Hook afterToolCall"
    assert event["detail"]["hookEventId"] == outcome.hook_event_id
    assert event["detail"]["toolUse"] == {"toolUseId": "tooluse_1", "name": "createTransfer"}
    assert event["detail"]["toolResult"] == {"status": "success"}
    assert "decision" not in event["detail"]  # no Lambda hook had decided before it
    assert_no_content(json.dumps(event["detail"]))


def test_a_failed_notification_never_blocks(functions: FakeFunctions) -> None:
    allow = functions.create(lambda event: {"decision": "allow"})
    missing_topic = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{unique_name('absent')}"
    specs = [
        HookSpec(name="audit", hook_type="beforeToolCall", target_kind="sns", arn=missing_topic),
        lambda_hook(allow),
    ]

    outcomes = HookRunner().run(specs, "beforeToolCall", TOOL_CALL_PAYLOAD)

    assert [(o.decision, o.reason) for o in outcomes] == [
        (None, "notification failed (NotFound)"),
        ("allow", None),
    ]
    assert denied(outcomes) is None


def test_a_refused_eventbridge_entry_is_a_failed_notification() -> None:
    def refuse(bus_arn: str, detail_type: str, detail: str) -> dict[str, Any]:
        return {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "x"}],
        }

    bus = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/hooks"
    spec = HookSpec(name="observe", hook_type="afterInvocation", target_kind="eventBridge", arn=bus)
    [outcome] = HookRunner(put_event=refuse).run([spec], "afterInvocation", {"stopReason": "end_turn"})
    assert outcome.reason == "notification failed (AccessDeniedException)"


# --- configuration and the stream event --------------------------------------------------------


def test_specs_from_the_contract_shape_with_defaults() -> None:
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:guard"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:audit"
    bus = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/hooks"
    hooks = [
        {"beforeToolCall": {"name": "guard", "target": {"lambda": {"arn": function}}}},
        {"afterToolCall": {"name": "scan", "target": {"lambda": {"arn": function, "timeoutSeconds": 5}}}},
        {
            "afterInvocation": {
                "name": "close",
                "target": {"lambda": {"arn": function, "failureMode": "deny"}},
            }
        },
        {"beforeInvocation": {"name": "audit", "target": {"sns": {"arn": topic}}}},
        {"afterInvocation": {"name": "observe", "target": {"eventBridge": {"arn": bus}}}},
    ]
    contract.validate(contract.CONTROL_SERVICE, "HarnessHooks", hooks)

    specs = hook_specs(hooks)

    assert [(s.name, s.hook_type, s.target_kind, s.timeout_seconds, s.failure_mode) for s in specs] == [
        ("guard", "beforeToolCall", "lambda", 30, "deny"),
        ("scan", "afterToolCall", "lambda", 5, "allow"),
        ("close", "afterInvocation", "lambda", 30, "deny"),
        ("audit", "beforeInvocation", "sns", 30, "deny"),
        ("observe", "afterInvocation", "eventBridge", 30, "allow"),
    ]
    assert [s.arn for s in specs] == [function, function, function, topic, bus]


def test_specs_refuse_what_the_runner_cannot_run() -> None:
    with pytest.raises(ValueError, match="unknown target"):
        HookSpec(name="h", hook_type="beforeToolCall", target_kind="http", arn="https://example.com")
    with pytest.raises(ValueError, match="timeoutSeconds"):
        HookSpec(name="h", hook_type="beforeToolCall", target_kind="lambda", arn="a", timeout_seconds=901)
    with pytest.raises(ValueError, match="exactly one hook type"):
        hook_specs([{}])


def test_stream_events_have_the_contract_shape() -> None:
    outcomes = [
        HookOutcome(str(uuid.uuid4()), "guard", "beforeToolCall", "deny", "r" * 5000),
        HookOutcome(str(uuid.uuid4()), "audit", "afterInvocation", None, "notified"),
        HookOutcome(str(uuid.uuid4()), "scan", "afterToolCall", "allow", None),
        HookOutcome(str(uuid.uuid4()), "open", "beforeInvocation", "allow", ""),
    ]
    stream_events = contract.stream_event_names(contract.DATA_SERVICE, "InvokeHarnessStreamOutput")

    for outcome in outcomes:
        ((name, event),) = outcome.stream_event().items()
        assert name in stream_events
        contract.validate(contract.DATA_SERVICE, "HarnessHookEvent", event)
        assert event["type"] == HOOK_TYPES[outcome.hook_type]

    first, notified, *_ = (outcome.stream_event()["hookEvent"] for outcome in outcomes)
    assert first["type"] == "before_tool_call" and len(first["reason"]) == 1024
    assert "decision" not in notified
