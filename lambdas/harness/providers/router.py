"""The model router: the fallback chain of a model configuration and a circuit breaker per provider.

Fallback models. The contract's HarnessModelConfiguration has no member for them (and boto3
rejects unknown members client-side), so they live in the primary configuration's
``additionalParams`` document under ``fallbackModels``: a list of HarnessModelConfiguration
objects, tried in order. ``contextWindowTokens`` in ``additionalParams`` sets a model's context
window. The router removes both before a provider sees ``additionalParams``.

Failover. A ``ModelUnavailableError`` (throttling, 5xx, timeout, connection failure) or an open
circuit moves the call to the next model; a ``ModelRequestError`` (bad request, authentication)
ends it, since no other model would fix the request. A call fails over only while nothing of its
reply has reached the caller: once a provider has yielded an event, a later failure is raised as
``ModelUnavailableError`` and the step fails, because the caller's stream already holds part of
that reply. (Providers raise connection and HTTP errors before their first event.)

Circuit breaker. In-process: one per Lambda container (the router lives as long as the warm
container), keyed by provider kind and endpoint. It opens after ``failure_threshold``
consecutive ``ModelUnavailableError`` and then skips the provider without contacting it; after
``reset_seconds`` one trial call is let through (half-open), and its success closes the circuit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from harness.providers.base import (
    ModelCallError,
    ModelEvent,
    ModelProvider,
    ModelRequest,
    ModelUnavailableError,
)
from harness.providers.registry import endpoint_of, kind_of, member
from harness.resilience import CircuitBreaker
from harness.truncation import ContextWindowExceededError

FALLBACKS_KEY = "fallbackModels"
CONTEXT_WINDOW_KEY = "contextWindowTokens"
ROUTER_PARAMS = (FALLBACKS_KEY, CONTEXT_WINDOW_KEY)
DEFAULT_CONTEXT_WINDOW_TOKENS = 128_000

# Why a call moved to the next model.
UNAVAILABLE = "unavailable"
CIRCUIT_OPEN = "circuit_open"
CONTEXT_WINDOW = "context_window_exceeded"


def fallback_models(model: dict[str, Any]) -> list[Any]:
    """The ``fallbackModels`` listed in a model configuration (unvalidated)."""
    _, config = member(model)
    fallbacks = (config.get("additionalParams") or {}).get(FALLBACKS_KEY) or []
    return list(fallbacks) if isinstance(fallbacks, list) else []


def context_window_tokens(model: dict[str, Any]) -> int:
    _, config = member(model)
    window = (config.get("additionalParams") or {}).get(CONTEXT_WINDOW_KEY)
    return int(window) if isinstance(window, int) and window > 0 else DEFAULT_CONTEXT_WINDOW_TOKENS


def without_router_params(model: dict[str, Any]) -> dict[str, Any]:
    """The configuration as its provider sees it: ``additionalParams`` without the router's keys."""
    name, config = member(model)
    params = config.get("additionalParams")
    if not isinstance(params, dict) or not any(key in params for key in ROUTER_PARAMS):
        return model
    stripped = {key: value for key, value in config.items() if key != "additionalParams"}
    rest = {key: value for key, value in params.items() if key not in ROUTER_PARAMS}
    if rest:
        stripped["additionalParams"] = rest
    return {name: stripped}


def candidates(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The primary model, then each fallback, in the order they are tried."""
    return [model, *fallback_models(model)]


def describe(model: dict[str, Any]) -> dict[str, str]:
    """What records and logs may say about a model: its provider kind and model id (never apiBase,
    which the contract marks sensitive, nor apiKeyArn)."""
    _, config = member(model)
    return {"provider": kind_of(model), "modelId": str(config.get("modelId", ""))}


def replayable(messages: list[dict[str, Any]], target_kind: str) -> list[dict[str, Any]]:
    """The history as it may be sent to ``target_kind``.

    Reasoning blocks (and their signatures) are only valid for the provider that produced them,
    named by the message's ``origin``. Blocks whose origin is another provider, or unknown, are
    dropped from the request (never from storage); ``origin`` is not part of the canonical format
    and is removed. (Providers stream no reasoning events yet and InvokeHarness does not accept
    reasoningContent, so none is stored today; this is the rule once it is.)
    """
    prepared = []
    for message in messages:
        if "origin" not in message and not any("reasoningContent" in b for b in message.get("content", [])):
            prepared.append(message)
            continue
        keep_reasoning = message.get("origin") == target_kind
        content = [b for b in message.get("content", []) if keep_reasoning or "reasoningContent" not in b]
        prepared.append({k: v for k, v in message.items() if k != "origin"} | {"content": content})
    return [m for m in prepared if m.get("content")]


@dataclass(frozen=True)
class Switch:
    """One move from a model to the next in the fallback chain."""

    source: dict[str, str]
    target: dict[str, str]
    reason: str


Fit = Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]


# The longest one attempt may take: a provider's own request timeout plus a margin.
ATTEMPT_SECONDS = 130.0


class Router:
    def __init__(
        self,
        providers: Callable[[dict[str, Any]], ModelProvider],
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._providers = providers
        self.breaker = breaker or CircuitBreaker()
        self._clock = clock

    def stream(
        self,
        request: ModelRequest,
        on_switch: Callable[[Switch], None],
        fit: Fit | None = None,
        deadline: float | None = None,
    ) -> Iterator[ModelEvent]:
        """The events of the first model in the chain that answers.

        ``fit`` cuts the history to a model's context window; a primary it cannot fit raises
        ContextWindowExceededError, a fallback it cannot fit is skipped. ``deadline`` (a
        ``clock`` value, e.g. when the calling Lambda times out) stops the chain from starting an
        attempt that could not finish in time: the turn then ends with a clear error instead of
        a function timeout.
        """
        chain = candidates(request.model_config)
        problems: list[str] = []
        for index, model in enumerate(chain):
            kind, key = kind_of(model), endpoint_of(model)
            if index > 0 and deadline is not None and self._clock() + ATTEMPT_SECONDS > deadline:
                problems.append(f"no time left to try {kind}")
                break
            if not self.breaker.allow(key):
                problems.append(f"{kind}: circuit open")
                _switch(chain, index, CIRCUIT_OPEN, on_switch)
                continue
            messages = replayable(request.messages, kind)
            try:
                messages = fit(messages, model) if fit else messages
            except ContextWindowExceededError:
                self.breaker.release(key)
                if index == 0:
                    raise
                problems.append(f"{kind}: context window exceeded")
                _switch(chain, index, CONTEXT_WINDOW, on_switch)
                continue
            attempt = replace(request, model_config=without_router_params(model), messages=messages)
            started = False
            try:
                for event in self._providers(attempt.model_config).stream(attempt):
                    started = True
                    yield event
            except ModelUnavailableError as error:
                self.breaker.failed(key)
                if started:
                    raise ModelUnavailableError(
                        f"{kind} failed after its reply had started streaming: {error}"
                    ) from error
                problems.append(f"{kind}: {error}")
                _switch(chain, index, UNAVAILABLE, on_switch)
                continue
            except ModelCallError:
                self.breaker.succeeded(key)  # the provider answered: a client error is not an outage
                raise
            except BaseException:
                self.breaker.release(key)
                raise
            self.breaker.succeeded(key)
            return
        raise ModelUnavailableError(
            "no model in the fallback chain is available (" + "; ".join(problems) + ")"
        )


def _switch(
    chain: list[dict[str, Any]], index: int, reason: str, on_switch: Callable[[Switch], None]
) -> None:
    if index + 1 < len(chain):
        on_switch(Switch(describe(chain[index]), describe(chain[index + 1]), reason))
