"""Lifecycle hooks: the contract's ``HarnessHooks``, run at four points of the agent loop.

A hook is one of ``beforeInvocation``, ``afterInvocation``, ``beforeToolCall`` or ``afterToolCall``
and has one target:

* ``lambda`` -- invoked synchronously; its answer can veto (``deny``) what the hook guards.
* ``sns`` / ``eventBridge`` -- notifications: published and not waited on for a decision.

Every hook that runs yields a ``HookOutcome``, which the stream reports as a ``hookEvent``.

Payload sent to a Lambda target (JSON). The caller of ``HookRunner.run`` passes the context; the
runner sets the first three members for each hook (``hookType`` and ``hookEventId`` may be in the
caller's payload: the type must match, and each hook gets a fresh event id, since each hook that
runs is its own stream event)::

    {
      "hookType": "beforeToolCall",          # the HarnessHook member name
      "hookEventId": "<uuid>",               # the same id as the stream's hookEvent
      "hookName": "<name>",                  # one function may serve several hooks
      "harnessId": "...", "harnessVersion": "...", "invocationId": "...", "sessionId": "...",
      "toolUse": {"toolUseId": "...", "name": "...", "input": {...}},     # tool hooks
      "toolResult": {"status": "success" | "error", "content": [...]},    # afterToolCall
      "stopReason": "end_turn"                                            # afterInvocation
    }

The actor id is deliberately absent: a hook gets only what it needs to decide. Members other than
these are refused (ValueError) rather than forwarded, so nothing reaches a hook by accident.

The Lambda answers ``{"decision": "allow" | "deny", "reason": "..."}``. An object without
``decision`` allows. Anything else -- a function error, a timeout, a refused or throttled call, a
response that is not such an object -- is a hook failure: the hook's ``failureMode`` becomes the
decision, and the reason names only the hook and an error code. The function's error message,
stack trace and response are never repeated (they may contain data), nor is the payload.

SNS and EventBridge targets fan out to subscribers, so they receive ids, names, the hook type and
the decision so far, never tool input or output content. A failed notification never blocks.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from harness import contract
from harness.adapters import functions
from harness.adapters.clients import client


def _contract_shape(service: str, shape_name: str) -> Mapping[str, Any]:
    shape: Mapping[str, Any] = contract.service_model(service)["shapes"][shape_name]
    return shape


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _hook_types() -> dict[str, str]:
    stream_types = _contract_shape(contract.DATA_SERVICE, "HarnessHookEventType")["enum"]
    types = {
        member: _snake_case(member)
        for member in _contract_shape(contract.CONTROL_SERVICE, "HarnessHook")["members"]
    }
    unknown = set(types.values()) - set(stream_types)
    if unknown:
        raise RuntimeError(f"hook types {sorted(unknown)} have no hookEvent type in {contract.DATA_SERVICE}")
    return types


HOOK_TYPES: Final[Mapping[str, str]] = _hook_types()
"""HarnessHook member name -> the stream's hookEvent type, e.g. beforeToolCall -> before_tool_call."""

LAMBDA: Final = "lambda"
SNS: Final = "sns"
EVENT_BRIDGE: Final = "eventBridge"
TARGET_KINDS: Final = frozenset({LAMBDA, SNS, EVENT_BRIDGE})
"""The targets this runner knows how to reach: a target kind the model adds later is refused."""
if TARGET_KINDS - set(_contract_shape(contract.CONTROL_SERVICE, "HarnessHookTarget")["members"]):
    raise RuntimeError(f"hook targets {sorted(TARGET_KINDS)} are not all HarnessHookTarget members")

ALLOW: Final = "allow"
DENY: Final = "deny"
DECISIONS: Final = frozenset(_contract_shape(contract.DATA_SERVICE, "HarnessHookDecision")["enum"])
FAILURE_MODES: Final = frozenset(_contract_shape(contract.CONTROL_SERVICE, "HarnessHookFailureMode")["enum"])
_TIMEOUT_SHAPE: Final = _contract_shape(
    contract.CONTROL_SERVICE, "HarnessHookLambdaTargetTimeoutSecondsInteger"
)
TIMEOUT_RANGE: Final = range(_TIMEOUT_SHAPE["min"], _TIMEOUT_SHAPE["max"] + 1)
MAX_REASON_LENGTH: Final[int] = _contract_shape(contract.DATA_SERVICE, "HarnessHookEventReasonString")["max"]

DEFAULT_LAMBDA_TIMEOUT_SECONDS: Final = 30
# The before* hooks guard an action that has not happened yet: when the guard cannot answer, the
# action does not happen (fail closed). The after* hooks observe something already done; denying
# there on a failure would only turn a broken observer into a broken loop.
GUARD_HOOK_TYPES: Final = frozenset(hook_type for hook_type in HOOK_TYPES if hook_type.startswith("before"))

NOTIFICATION_SOURCE: Final = "agent-harness"
NOTIFIED: Final = "notified"
# A notification is best-effort: a short wait and one retry keep a slow topic or bus from holding
# up the loop.
_NOTIFICATION_READ_TIMEOUT_SECONDS: Final = 5
_NOTIFICATION_ATTEMPTS: Final = 2

_CONTEXT_MEMBERS: Final = frozenset(
    {"harnessId", "harnessVersion", "invocationId", "sessionId", "toolUse", "toolResult", "stopReason"}
)
_RUNNER_MEMBERS: Final = frozenset({"hookType", "hookEventId", "hookName"})
_IDENTITY_MEMBERS: Final = ("harnessId", "harnessVersion", "invocationId", "sessionId", "stopReason")


def default_failure_mode(hook_type: str) -> str:
    return DENY if hook_type in GUARD_HOOK_TYPES else ALLOW


@dataclass(frozen=True)
class HookSpec:
    """One configured hook. ``failure_mode`` and ``timeout_seconds`` apply to Lambda targets only."""

    name: str
    hook_type: str
    target_kind: str
    arn: str
    timeout_seconds: int = DEFAULT_LAMBDA_TIMEOUT_SECONDS
    failure_mode: str | None = None  # None: the hook type's default (see GUARD_HOOK_TYPES)

    def __post_init__(self) -> None:
        if self.hook_type not in HOOK_TYPES:
            raise ValueError(f"hook {self.name!r}: unknown hook type {self.hook_type!r}")
        if self.target_kind not in TARGET_KINDS:
            raise ValueError(f"hook {self.name!r}: unknown target {self.target_kind!r}")
        if self.timeout_seconds not in TIMEOUT_RANGE:
            raise ValueError(f"hook {self.name!r}: timeoutSeconds must be within 1..{TIMEOUT_RANGE[-1]}")
        if self.failure_mode is None:
            object.__setattr__(self, "failure_mode", default_failure_mode(self.hook_type))
        elif self.failure_mode not in FAILURE_MODES:
            raise ValueError(f"hook {self.name!r}: unknown failureMode {self.failure_mode!r}")

    @property
    def guards(self) -> bool:
        """Whether a deny from this hook stops the action (and the hooks after it)."""
        return self.hook_type in GUARD_HOOK_TYPES


def hook_specs(hooks: Iterable[Mapping[str, Any]]) -> list[HookSpec]:
    """Specs from the contract's ``HarnessHooks`` list (validated against the model by the API)."""
    specs = []
    for index, hook in enumerate(hooks):
        if len(hook) != 1:
            raise ValueError(f"hooks[{index}] must set exactly one hook type")
        ((hook_type, body),) = hook.items()
        target = body["target"]
        if len(target) != 1:
            raise ValueError(f"hooks[{index}].{hook_type}.target must set exactly one target")
        ((target_kind, config),) = target.items()
        specs.append(
            HookSpec(
                name=body["name"],
                hook_type=hook_type,
                target_kind=target_kind,
                arn=config["arn"],
                timeout_seconds=config.get("timeoutSeconds", DEFAULT_LAMBDA_TIMEOUT_SECONDS),
                failure_mode=config.get("failureMode"),
            )
        )
    return specs


@dataclass(frozen=True)
class HookOutcome:
    """What one hook did. ``decision`` is None for notifications (they do not decide)."""

    hook_event_id: str
    name: str
    hook_type: str
    decision: str | None
    reason: str | None

    def stream_event(self) -> dict[str, Any]:
        """The ``hookEvent`` stream event, in the contract's ``HarnessHookEvent`` shape."""
        event: dict[str, Any] = {
            "hookEventId": self.hook_event_id,
            "name": self.name,
            "type": HOOK_TYPES[self.hook_type],
        }
        if self.decision is not None:
            event["decision"] = self.decision
        if self.reason is not None:
            event["reason"] = self.reason[:MAX_REASON_LENGTH]
        return {"hookEvent": event}


def denied(outcomes: Iterable[HookOutcome]) -> HookOutcome | None:
    """The first outcome that denies, if any."""
    return next((outcome for outcome in outcomes if outcome.decision == DENY), None)


# (topic ARN, message)
PublishSns = Callable[[str, str], object]
# (bus ARN, detail type, detail JSON) -> the PutEvents response
PutEvent = Callable[[str, str, str], Mapping[str, Any]]


def publish_to_topic(topic_arn: str, message: str) -> object:
    sns = client(
        "sns", read_timeout=_NOTIFICATION_READ_TIMEOUT_SECONDS, total_max_attempts=_NOTIFICATION_ATTEMPTS
    )
    return sns.publish(TopicArn=topic_arn, Message=message)


def put_event_on_bus(bus_arn: str, detail_type: str, detail: str) -> Mapping[str, Any]:
    events = client(
        "events", read_timeout=_NOTIFICATION_READ_TIMEOUT_SECONDS, total_max_attempts=_NOTIFICATION_ATTEMPTS
    )
    entry = {"Source": NOTIFICATION_SOURCE, "DetailType": detail_type, "Detail": detail}
    response: Mapping[str, Any] = events.put_events(Entries=[{**entry, "EventBusName": bus_arn}])
    return response


class _HookFailure(Exception):
    """A Lambda hook that did not answer usably; ``code`` is all that is reported about it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# Time kept back from a hook for the step's own work after it (writing events, the audit record).
DEADLINE_MARGIN_SECONDS = 5


class HookRunner:
    def __init__(
        self,
        *,
        invoke_lambda: functions.Invoke | None = None,
        publish_sns: PublishSns | None = None,
        put_event: PutEvent | None = None,
    ) -> None:
        # One attempt: timeoutSeconds bounds the whole wait, and a retry after a timeout would run
        # the function a second time. The botocore errors it raises are hook failures.
        self._invoke_lambda = invoke_lambda or functions.invoker(attempts=1)
        self._publish_sns = publish_sns or publish_to_topic
        self._put_event = put_event or put_event_on_bus

    def run(
        self,
        specs: Sequence[HookSpec],
        hook_type: str,
        payload: Mapping[str, Any],
        deadline: float | None = None,
    ) -> list[HookOutcome]:
        """Run every hook of ``hook_type`` in declaration order; see the module docstring for
        ``payload``. For before* hooks the first deny ends the run: the hooks after it are not
        called, since the action they would see is not going to happen. ``deadline``
        (``time.monotonic``) is when the calling function times out: a Lambda hook gets at most
        the time left before it (minus a margin), and one that cannot start in time has failed."""
        if hook_type not in HOOK_TYPES:
            raise ValueError(f"unknown hook type {hook_type!r}")
        unexpected = set(payload) - _CONTEXT_MEMBERS - _RUNNER_MEMBERS
        if unexpected:
            raise ValueError(f"hook payload members {sorted(unexpected)} are not sent to hooks")
        if payload.get("hookType", hook_type) != hook_type:
            raise ValueError(f"hook payload of type {payload['hookType']!r} run as {hook_type!r}")
        context = {member: value for member, value in payload.items() if member in _CONTEXT_MEMBERS}
        outcomes: list[HookOutcome] = []
        for spec in specs:
            if spec.hook_type != hook_type:
                continue
            hook_event_id = str(uuid.uuid4())
            if spec.target_kind == LAMBDA:
                outcome = self._call(spec, hook_event_id, context, deadline)
            else:
                outcome = self._notify(spec, hook_event_id, context, _decision_so_far(outcomes))
            outcomes.append(outcome)
            if spec.guards and outcome.decision == DENY:
                break
        return outcomes

    def _call(
        self, spec: HookSpec, hook_event_id: str, payload: Mapping[str, Any], deadline: float | None
    ) -> HookOutcome:
        body = {"hookType": spec.hook_type, "hookEventId": hook_event_id, "hookName": spec.name, **payload}
        timeout = spec.timeout_seconds
        if deadline is not None:
            left = int(deadline - time.monotonic() - DEADLINE_MARGIN_SECONDS)
            if left < 1:
                return _failed(spec, hook_event_id, "NoTimeLeft")
            timeout = min(timeout, left)
        try:
            decision, reason = _answer(self._invoke_lambda(spec.arn, json.dumps(body).encode(), timeout))
        except _HookFailure as failure:
            return _failed(spec, hook_event_id, failure.code)
        except ClientError as error:
            return _failed(spec, hook_event_id, _error_code(error))
        except ReadTimeoutError:
            return _failed(spec, hook_event_id, "Timeout")
        except BotoCoreError as error:
            return _failed(spec, hook_event_id, type(error).__name__)
        return HookOutcome(hook_event_id, spec.name, spec.hook_type, decision, reason)

    def _notify(
        self, spec: HookSpec, hook_event_id: str, payload: Mapping[str, Any], decision_so_far: str | None
    ) -> HookOutcome:
        message = json.dumps(_notification(spec, hook_event_id, payload, decision_so_far))
        try:
            if spec.target_kind == SNS:
                self._publish_sns(spec.arn, message)
            else:  # EVENT_BRIDGE, the other notification target
                response = self._put_event(spec.arn, f"Harness Hook {spec.hook_type}", message)
                if response.get("FailedEntryCount"):
                    # PutEvents reports a refused entry in the response, not as an error.
                    code = response["Entries"][0].get("ErrorCode", "FailedEntry")
                    return _notification_failed(spec, hook_event_id, code)
        except ClientError as error:
            return _notification_failed(spec, hook_event_id, _error_code(error))
        except BotoCoreError as error:
            return _notification_failed(spec, hook_event_id, type(error).__name__)
        return HookOutcome(hook_event_id, spec.name, spec.hook_type, None, NOTIFIED)


def _answer(response: Mapping[str, Any]) -> tuple[str, str | None]:
    try:
        answer = functions.answer(response)
    except functions.FunctionFailed:
        raise _HookFailure("FunctionError") from None
    except (ValueError, RecursionError):
        raise _HookFailure("InvalidResponse") from None
    if not isinstance(answer, dict):
        raise _HookFailure("InvalidResponse")
    decision = answer.get("decision", ALLOW)
    reason = answer.get("reason")
    if decision not in DECISIONS or not (reason is None or isinstance(reason, str)):
        raise _HookFailure("InvalidResponse")
    return decision, reason


def _failed(spec: HookSpec, hook_event_id: str, code: str) -> HookOutcome:
    reason = f"hook {spec.name} failed ({code}); failureMode {spec.failure_mode} applied"
    return HookOutcome(hook_event_id, spec.name, spec.hook_type, spec.failure_mode, reason)


def _notification_failed(spec: HookSpec, hook_event_id: str, code: str) -> HookOutcome:
    return HookOutcome(hook_event_id, spec.name, spec.hook_type, None, f"notification failed ({code})")


def _error_code(error: ClientError) -> str:
    code: str = error.response.get("Error", {}).get("Code") or "ClientError"
    return code


def _decision_so_far(outcomes: Sequence[HookOutcome]) -> str | None:
    decisions = {outcome.decision for outcome in outcomes}
    if DENY in decisions:
        return DENY
    return ALLOW if ALLOW in decisions else None


def _notification(
    spec: HookSpec, hook_event_id: str, payload: Mapping[str, Any], decision_so_far: str | None
) -> dict[str, Any]:
    """The notification body: identifiers only, never tool input or output content."""
    body: dict[str, Any] = {"hookType": spec.hook_type, "hookEventId": hook_event_id, "hookName": spec.name}
    body.update({member: payload[member] for member in _IDENTITY_MEMBERS if member in payload})
    if "toolUse" in payload:
        body["toolUse"] = {"toolUseId": payload["toolUse"]["toolUseId"], "name": payload["toolUse"]["name"]}
    if "toolResult" in payload:
        body["toolResult"] = {"status": payload["toolResult"]["status"]}
    if decision_so_far is not None:
        body["decision"] = decision_so_far
    return body
