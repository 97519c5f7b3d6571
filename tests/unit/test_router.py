"""The model router: fallback chain, failover rules, circuit breaker, what providers are sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.configuration_checks import configuration_problems, tool_support_problems
from harness.providers import registry
from harness.providers.base import (
    ModelEvent,
    ModelProvider,
    ModelRequest,
    ModelRequestError,
    ModelUnavailableError,
    Stop,
    TextDelta,
    Usage,
)
from harness.providers.router import (
    ATTEMPT_SECONDS,
    CIRCUIT_OPEN,
    CONTEXT_WINDOW,
    UNAVAILABLE,
    CircuitBreaker,
    Router,
    Switch,
    candidates,
    context_window_tokens,
    replayable,
    without_router_params,
)
from harness.truncation import ContextWindowExceededError

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:token-vault/default/apikeycredentialprovider/{}"


def openai(model_id: str = "gpt-5", **extra: Any) -> dict[str, Any]:
    return {"openAiModelConfig": {"modelId": model_id, "apiKeyArn": ARN.format("openai"), **extra}}


def gemini(model_id: str = "gemini-2.5-pro") -> dict[str, Any]:
    return {"geminiModelConfig": {"modelId": model_id, "apiKeyArn": ARN.format("gemini")}}


def bedrock(model_id: str = "anthropic.claude", **params: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"modelId": model_id}
    if params:
        config["additionalParams"] = params
    return {"bedrockModelConfig": config}


REPLY: list[ModelEvent] = [TextDelta("Hi"), TextDelta(" there"), Stop("end_turn"), Usage(3, 2)]


class Script:
    """A scripted provider per model id: each call pops the next behaviour (a reply or an error)."""

    def __init__(self, **behaviours: list[list[ModelEvent] | Exception]) -> None:
        self.behaviours = behaviours
        self.requests: list[ModelRequest] = []

    def provider_for(self, model: dict[str, Any]) -> ModelProvider:
        _, config = registry.member(model)
        script = self

        class Provider:
            name = "scripted"

            def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
                script.requests.append(request)
                behaviour = script.behaviours[config["modelId"]].pop(0)
                if isinstance(behaviour, Exception):
                    raise behaviour
                yield from behaviour

        return Provider()

    def calls(self, model_id: str) -> int:
        return sum(1 for r in self.requests if registry.member(r.model_config)[1]["modelId"] == model_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(
    router: Router, model: dict[str, Any], fit: Callable[..., Any] | None = None
) -> tuple[list[ModelEvent], list[Switch]]:
    switches: list[Switch] = []
    request = ModelRequest(model_config=model, messages=[{"role": "user", "content": [{"text": "hello"}]}])
    events = list(router.stream(request, switches.append, fit))
    return events, switches


def with_fallbacks(primary: dict[str, Any], *fallbacks: dict[str, Any]) -> dict[str, Any]:
    ((name, config),) = primary.items()
    params = dict(config.get("additionalParams") or {})
    params["fallbackModels"] = list(fallbacks)
    return {name: config | {"additionalParams": params}}


# -- failover ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        ModelUnavailableError("The openai server answered 429 (rate_limit_exceeded)"),
        ModelUnavailableError("The openai server answered 500"),
        ModelUnavailableError("The openai model call timed out"),
    ],
    ids=["throttled", "server-error", "timeout"],
)
def test_an_unavailable_model_fails_over_to_the_next(failure: Exception) -> None:
    script = Script(**{"gpt-5": [failure], "gemini-2.5-pro": [REPLY]})
    events, switches = run(Router(script.provider_for), with_fallbacks(openai(), gemini()))
    assert events == REPLY
    assert switches == [
        Switch(
            {"provider": "openai", "modelId": "gpt-5"},
            {"provider": "gemini", "modelId": "gemini-2.5-pro"},
            UNAVAILABLE,
        )
    ]


def test_the_fallback_receives_the_same_conversation_and_no_router_params() -> None:
    script = Script(**{"gpt-5": [ModelUnavailableError("down")], "gemini-2.5-pro": [REPLY]})
    primary = with_fallbacks(
        openai(additionalParams={"reasoning_effort": "low", "contextWindowTokens": 9000}), gemini()
    )
    history = [
        {"role": "user", "content": [{"text": "weather?"}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "w", "input": {"c": "Oslo"}}}],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "cold"}]}}]},
    ]
    request = ModelRequest(model_config=primary, messages=history, system=["be brief"])
    list(Router(script.provider_for).stream(request, lambda _: None))
    first, second = script.requests
    assert first.model_config == openai(additionalParams={"reasoning_effort": "low"})
    assert second.model_config == gemini()
    assert first.messages == second.messages == history
    assert second.system == ["be brief"]


def test_no_fallback_is_started_that_could_not_finish_before_the_function_times_out() -> None:
    script = Script(
        **{"gpt-5": [ModelUnavailableError("The openai model call timed out")], "gemini-2.5-pro": [REPLY]}
    )
    now = [1000.0]
    router = Router(script.provider_for, clock=lambda: now[0])
    request = ModelRequest(model_config=with_fallbacks(openai(), gemini()), messages=[])
    # The primary may start; afterwards less than one attempt's time is left before the deadline.
    with pytest.raises(ModelUnavailableError, match="no time left to try gemini"):
        list(router.stream(request, lambda _: None, deadline=now[0] + ATTEMPT_SECONDS - 1))
    assert script.calls("gpt-5") == 1
    assert script.calls("gemini-2.5-pro") == 0

    script = Script(**{"gpt-5": [ModelUnavailableError("down")], "gemini-2.5-pro": [REPLY]})
    router = Router(script.provider_for, clock=lambda: now[0])
    events = list(router.stream(request, lambda _: None, deadline=now[0] + 2 * ATTEMPT_SECONDS))
    assert events == REPLY


def test_a_client_error_does_not_fail_over() -> None:
    script = Script(
        **{"gpt-5": [ModelRequestError("The openai server answered 401")], "gemini-2.5-pro": [REPLY]}
    )
    switches: list[Switch] = []
    request = ModelRequest(model_config=with_fallbacks(openai(), gemini()), messages=[])
    with pytest.raises(ModelRequestError, match="401"):
        list(Router(script.provider_for).stream(request, switches.append))
    assert script.calls("gemini-2.5-pro") == 0
    assert switches == []


def test_a_failure_after_the_reply_started_streaming_does_not_fail_over() -> None:
    class Broken:
        name = "broken"

        def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
            yield TextDelta("Hel")
            raise ModelUnavailableError("connection reset")

    fallback_calls = []

    def provider_for(model: dict[str, Any]) -> ModelProvider:
        if "geminiModelConfig" in model:
            fallback_calls.append(model)
        return Broken()

    router = Router(provider_for)
    request = ModelRequest(model_config=with_fallbacks(openai(), gemini()), messages=[])
    seen: list[ModelEvent] = []
    with pytest.raises(ModelUnavailableError, match="after its reply had started streaming"):
        for event in router.stream(request, lambda _: None):
            seen.append(event)
    assert seen == [TextDelta("Hel")]
    assert fallback_calls == []


def test_when_every_model_is_unavailable_the_error_names_each() -> None:
    script = Script(
        **{"gpt-5": [ModelUnavailableError("429")], "gemini-2.5-pro": [ModelUnavailableError("503")]}
    )
    with pytest.raises(ModelUnavailableError) as failed:
        run(Router(script.provider_for), with_fallbacks(openai(), gemini()))
    assert "openai: 429" in str(failed.value)
    assert "gemini: 503" in str(failed.value)


def test_each_model_is_tried_in_order_and_switches_are_reported_pairwise() -> None:
    script = Script(
        **{
            "gpt-5": [ModelUnavailableError("down")],
            "gemini-2.5-pro": [ModelUnavailableError("down")],
            "anthropic.claude": [REPLY],
        }
    )
    events, switches = run(Router(script.provider_for), with_fallbacks(openai(), gemini(), bedrock()))
    assert events == REPLY
    assert [(s.source["provider"], s.target["provider"]) for s in switches] == [
        ("openai", "gemini"),
        ("gemini", "bedrock"),
    ]


# -- circuit breaker ----------------------------------------------------------------------------------


def test_the_circuit_opens_after_three_failures_and_skips_the_provider() -> None:
    clock = Clock()
    script = Script(**{"gpt-5": [ModelUnavailableError("500")] * 3, "gemini-2.5-pro": [REPLY] * 4})
    router = Router(script.provider_for, CircuitBreaker(clock=clock))
    model = with_fallbacks(openai(), gemini())
    for _ in range(3):
        run(router, model)
    assert script.calls("gpt-5") == 3
    events, switches = run(router, model)
    assert events == REPLY
    assert script.calls("gpt-5") == 3  # not contacted
    assert [s.reason for s in switches] == [CIRCUIT_OPEN]


def test_a_half_open_circuit_lets_one_trial_through_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    script = Script(
        **{"gpt-5": [ModelUnavailableError("500")] * 3 + [REPLY, REPLY], "gemini-2.5-pro": [REPLY] * 5}
    )
    router = Router(script.provider_for, breaker)
    model = with_fallbacks(openai(), gemini())
    for _ in range(3):
        run(router, model)
    key = registry.endpoint_of(openai())
    assert breaker.state(key) == "open"
    clock.now += 29
    run(router, model)
    assert script.calls("gpt-5") == 3
    clock.now += 1
    assert breaker.state(key) == "half_open"
    events, switches = run(router, model)
    assert events == REPLY and switches == []
    assert script.calls("gpt-5") == 4
    assert breaker.state(key) == "closed"
    run(router, model)
    assert script.calls("gpt-5") == 5


def test_a_failed_trial_opens_the_circuit_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    script = Script(**{"gpt-5": [ModelUnavailableError("500")] * 4, "gemini-2.5-pro": [REPLY] * 5})
    router = Router(script.provider_for, breaker)
    model = with_fallbacks(openai(), gemini())
    for _ in range(3):
        run(router, model)
    clock.now += 30
    run(router, model)  # the trial fails
    assert script.calls("gpt-5") == 4
    run(router, model)
    assert script.calls("gpt-5") == 4
    assert breaker.state(registry.endpoint_of(openai())) == "open"


def test_only_one_trial_call_is_let_through_while_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    key = "openai|"
    for _ in range(3):
        assert breaker.allow(key)
        breaker.failed(key)
    clock.now += 30
    assert breaker.allow(key)
    assert not breaker.allow(key)
    breaker.succeeded(key)
    assert breaker.allow(key) and breaker.allow(key)


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(clock=Clock())
    for _ in range(2):
        breaker.failed("k")
    breaker.succeeded("k")
    for _ in range(2):
        breaker.failed("k")
    assert breaker.state("k") == "closed"


def test_circuits_are_kept_per_provider_endpoint() -> None:
    assert registry.endpoint_of(openai(apiBase="http://127.0.0.1:1/v1")) != registry.endpoint_of(openai())
    assert registry.endpoint_of(openai("a")) == registry.endpoint_of(openai("b"))


def test_a_client_error_settles_a_trial_without_opening_the_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    script = Script(**{"gpt-5": [ModelUnavailableError("500")] * 3 + [ModelRequestError("400")]})
    router = Router(script.provider_for, breaker)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError):
            run(router, openai())
    clock.now += 30
    with pytest.raises(ModelRequestError):
        run(router, openai())
    assert breaker.state(registry.endpoint_of(openai())) == "closed"


# -- context window ---------------------------------------------------------------------------------


def test_a_primary_that_cannot_fit_the_conversation_ends_the_turn() -> None:
    def fit(messages: list[Any], model: dict[str, Any]) -> list[Any]:
        raise ContextWindowExceededError("too big")

    script = Script(**{"gpt-5": [REPLY]})
    with pytest.raises(ContextWindowExceededError):
        run(Router(script.provider_for), with_fallbacks(openai(), gemini()), fit)
    assert script.requests == []


def test_a_fallback_that_cannot_fit_the_conversation_is_skipped() -> None:
    def fit(messages: list[Any], model: dict[str, Any]) -> list[Any]:
        if context_window_tokens(model) < 1000:
            raise ContextWindowExceededError("too big")
        return messages

    script = Script(**{"gpt-5": [ModelUnavailableError("500")], "anthropic.claude": [REPLY]})
    small = gemini() | {}
    small["geminiModelConfig"] = small["geminiModelConfig"] | {
        "additionalParams": {"contextWindowTokens": 10}
    }
    events, switches = run(Router(script.provider_for), with_fallbacks(openai(), small, bedrock()), fit)
    assert events == REPLY
    assert [s.reason for s in switches] == [UNAVAILABLE, CONTEXT_WINDOW]


# -- configuration -------------------------------------------------------------------------------------


def test_router_params_are_stripped_and_other_params_kept() -> None:
    model = with_fallbacks(bedrock(contextWindowTokens=1000, top_k=5), gemini())
    assert without_router_params(model) == bedrock(top_k=5)
    assert without_router_params(bedrock(contextWindowTokens=1)) == bedrock()
    assert without_router_params(bedrock(top_k=5)) == bedrock(top_k=5)
    assert candidates(model) == [model, gemini()]
    assert context_window_tokens(model) == 1000
    assert context_window_tokens(gemini()) == 128_000


def test_fallback_models_are_validated_against_the_contract() -> None:
    model = with_fallbacks(openai(), {"geminiModelConfig": {"modelId": "g"}}, {"nope": {}}, "text")
    names = [p.name for p in configuration_problems({"model": model})]
    prefix = "model.openAiModelConfig.additionalParams.fallbackModels"
    assert f"{prefix}[0].geminiModelConfig.apiKeyArn" in names
    assert any(name.startswith(f"{prefix}[1]") for name in names)
    assert any(name.startswith(f"{prefix}[2]") for name in names)


def test_a_fallback_cannot_have_fallbacks_of_its_own() -> None:
    model = with_fallbacks(openai(), with_fallbacks(gemini(), bedrock()))
    problems = configuration_problems({"model": model})
    assert [p.name for p in problems] == [
        "model.openAiModelConfig.additionalParams.fallbackModels[0].geminiModelConfig.additionalParams.fallbackModels"
    ]


@pytest.mark.parametrize("window", [0, -5, "big", True, 1.5])
def test_a_context_window_must_be_a_positive_integer(window: Any) -> None:
    problems = configuration_problems({"model": bedrock(contextWindowTokens=window)})
    assert [p.name for p in problems] == ["model.bedrockModelConfig.additionalParams.contextWindowTokens"]


LITELLM = {"liteLlmModelConfig": {"modelId": "anthropic/claude"}}


def test_every_provider_of_the_contract_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "library_installed", lambda kind: True)
    for model in (openai(), gemini(), bedrock(), LITELLM, {"liteLlmModelConfig": {"modelId": "local/x"}}):
        assert configuration_problems({"model": model}) == []


def test_a_provider_whose_library_is_not_installed_is_rejected_up_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "library_installed", lambda kind: kind != "litellm")
    (problem,) = configuration_problems({"model": LITELLM})
    assert problem.name == "model.liteLlmModelConfig"
    assert (
        problem.message == "the litellm library of the litellm provider is not installed in this deployment"
    )
    assert configuration_problems({"model": {"liteLlmModelConfig": {"modelId": "local/x"}}}) == []


def test_the_installed_libraries_are_found_without_importing_them() -> None:
    assert registry.library_installed("openai") and registry.library_installed("gemini")
    assert registry.library_installed("bedrock") and registry.library_installed("local")


def test_a_model_without_tool_support_is_rejected_when_tools_are_visible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "supports_tools", lambda model: "geminiModelConfig" not in model)
    tool = {"type": "inline_function", "name": "lookup", "config": {"inlineFunction": {"inputSchema": {}}}}
    harness = {"model": openai(), "tools": [tool], "allowedTools": ["*"]}
    assert tool_support_problems(harness) == []
    assert [p.name for p in tool_support_problems({"model": gemini()}, base=harness)] == [
        "model.geminiModelConfig"
    ]
    # Not when the invocation's allowedTools hide every tool.
    assert tool_support_problems({"model": gemini(), "allowedTools": []}, base=harness) == []
    chain = with_fallbacks(openai(), gemini())
    assert [p.name for p in tool_support_problems({"model": chain, "tools": [tool]})] == [
        "model.openAiModelConfig.additionalParams.fallbackModels[0]"
    ]


# -- history --------------------------------------------------------------------------------------------


def test_reasoning_is_replayed_only_to_the_provider_that_produced_it() -> None:
    reasoning = {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}}
    history = [
        {"role": "user", "content": [{"text": "q"}]},
        {"role": "assistant", "origin": "bedrock", "content": [reasoning, {"text": "a"}]},
        {"role": "assistant", "content": [reasoning]},
    ]
    assert replayable(history, "bedrock") == [
        history[0],
        {"role": "assistant", "content": [reasoning, {"text": "a"}]},
    ]
    assert replayable(history, "openai") == [history[0], {"role": "assistant", "content": [{"text": "a"}]}]


@pytest.mark.parametrize("name", ["api_base", "base_url", "http_options", "api_key"])
def test_additional_params_cannot_redirect_a_key(name: str) -> None:
    """Only apiBase (checked against the secret's apiBases) says where a vault key may go."""
    model = with_fallbacks(gemini(), openai(additionalParams={name: "https://x"}))
    model["geminiModelConfig"]["additionalParams"][name] = "https://x"
    names = [p.name for p in configuration_problems({"model": model})]
    assert names == [
        f"model.geminiModelConfig.additionalParams.{name}",
        f"model.geminiModelConfig.additionalParams.fallbackModels[0].openAiModelConfig.additionalParams.{name}",
    ]


def test_a_providers_key_lookup_is_bound_to_its_api_base() -> None:
    calls: list[tuple[str, str | None]] = []

    def vault(arn: str, api_base: str | None) -> str:
        calls.append((arn, api_base))
        return "key"

    registry.key_lookup(openai(apiBase="http://127.0.0.1:9/v1"), vault)("arn-1")
    registry.key_lookup(openai(), vault)("arn-2")
    assert calls == [("arn-1", "http://127.0.0.1:9/v1"), ("arn-2", None)]
    with pytest.raises(ModelRequestError, match="no token vault"):
        registry.key_lookup(openai(), None)("arn-3")
