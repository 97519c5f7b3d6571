"""Tool visibility: harness tools ∩ harness allowedTools ∩ invocation allowedTools."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.configuration_checks import configuration_problems
from harness.gateway import gateway_arn
from harness.providers.base import ToolSpec
from harness.records import EffectiveConfig
from harness.tools.registry import (
    CLIENT,
    SERVER,
    CatalogTool,
    Toolset,
    model_tool_name,
    unsupported_reason,
)


def tool(name: str, description: str = "does things") -> dict[str, Any]:
    return {
        "type": "inline_function",
        "name": name,
        "config": {"inlineFunction": {"description": description, "inputSchema": {"type": "object"}}},
    }


TOOLS = [tool("lookup"), tool("look_around"), tool("delete_all"), tool("send_mail")]


def visible(harness: list[str] | None, invocation: list[str] | None) -> set[str]:
    return set(Toolset.for_invocation(TOOLS, harness, invocation).tools)


def test_star_and_none_allow_every_tool() -> None:
    everything = {t["name"] for t in TOOLS}
    assert visible(["*"], None) == everything
    assert visible(None, None) == everything
    assert visible(["*"], ["*"]) == everything


def test_exact_names_and_globs() -> None:
    assert visible(["lookup", "send_mail"], None) == {"lookup", "send_mail"}
    assert visible(["look*"], None) == {"lookup", "look_around"}
    assert visible(["*_all"], None) == {"delete_all"}
    assert visible(["nothing*"], None) == set()
    assert visible([], None) == set()


def test_the_invocation_can_only_narrow() -> None:
    assert visible(["look*"], ["lookup"]) == {"lookup"}
    assert visible(["look*"], ["*"]) == {"lookup", "look_around"}
    # Naming a tool the harness does not allow does not widen the set.
    assert visible(["lookup"], ["delete_all", "lookup"]) == {"lookup"}
    assert visible(["lookup"], ["delete_all"]) == set()
    assert visible(["*"], []) == set()


def test_at_patterns_are_not_globs() -> None:
    # "@builtin" selects built-in tool types only; "@server/*" patterns never match inline tools.
    assert visible(["@builtin"], None) == set()
    assert visible(["@*"], None) == set()


def test_route_refuses_names_outside_the_set() -> None:
    toolset = Toolset.for_invocation(TOOLS, ["look*"], ["lookup"])
    assert toolset.route("lookup") == CLIENT
    assert toolset.route("look_around") is None  # allowed by the harness, not by the invocation
    assert toolset.route("delete_all") is None
    assert toolset.route("hallucinated") is None
    assert toolset.route("") is None


def test_specs_describe_only_the_visible_tools() -> None:
    toolset = Toolset.for_invocation(TOOLS, ["lookup"], None)
    assert toolset.specs() == [ToolSpec("lookup", "does things", {"type": "object"})]


def test_effective_config_applies_invocation_overrides() -> None:
    harness = {
        "model": {"m": {}},
        "tools": TOOLS,
        "allowedTools": ["look*"],
        "systemPrompt": [{"text": "hi"}],
    }
    config = EffectiveConfig.of(harness, {"allowedTools": ["lookup", "delete_all"]})
    assert set(config.toolset.tools) == {"lookup"}
    assert config.system == ["hi"]
    assert config.max_iterations == 20 and config.timeout_seconds == 900 and config.max_tokens is None
    # Invocation-level tools replace the harness's, and are still filtered by the harness allowedTools.
    config = EffectiveConfig.of(harness, {"tools": [tool("delete_all"), tool("lookup")]})
    assert set(config.toolset.tools) == {"lookup"}


GATEWAY_ARN = gateway_arn("payments", "us-east-1", "123456789012")
OTHER_GATEWAY_ARN = gateway_arn("other", "us-east-1", "123456789012")


def mcp(name: str, url: str = "https://mcp.example.com/mcp") -> dict[str, Any]:
    return {"type": "remote_mcp", "name": name, "config": {"remoteMcp": {"url": url}}}


def gateway(name: str, arn: str = GATEWAY_ARN) -> dict[str, Any]:
    return {"type": "agentcore_gateway", "name": name, "config": {"agentCoreGateway": {"gatewayArn": arn}}}


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"type": "agentcore_browser", "name": "b"}, "agentcore_browser"),
        ({"type": "inline_function", "config": {"inlineFunction": {}}}, "need a name"),
        ({"type": "inline_function", "name": "x", "config": {}}, "config.inlineFunction"),
        ({"type": "remote_mcp", "name": "docs", "config": {}}, "config.remoteMcp"),
        (mcp("docs", "http://mcp.example.com/mcp"), "https://"),
        (mcp("docs", "ftp://127.0.0.1/x"), "https://"),
        (mcp("my__docs"), "may not contain '__'"),
        (
            gateway("pay", gateway_arn("other", "us-east-1", "123456789012")),
            "names no gateway of this deployment",
        ),
    ],
)
def test_unsupported_tools_are_explained(definition: dict[str, Any], problem: str) -> None:
    reason = unsupported_reason(definition, {GATEWAY_ARN: "payments"})
    assert reason is not None and problem in reason


@pytest.mark.parametrize(
    "definition",
    [tool("ok"), mcp("docs"), mcp("local", "http://127.0.0.1:8002/mcp"), gateway("pay")],
)
def test_supported_tools(definition: dict[str, Any]) -> None:
    assert unsupported_reason(definition, {GATEWAY_ARN: "payments"}) is None


SERVER_TOOLS = [tool("lookup"), mcp("docs"), gateway("pay")]
CATALOG = {
    "docs": [
        CatalogTool("docs", "search", "search the docs", {"type": "object"}),
        CatalogTool("docs", "fetch_page", "fetch a page", {"type": "object"}),
    ],
    "pay": [
        CatalogTool("pay", "bank__getBalance", "balance", {"type": "object"}),
        CatalogTool("pay", "bank__createTransfer", "transfer", {"type": "object"}),
    ],
}


def server_visible(harness: list[str] | None, invocation: list[str] | None = None) -> set[str]:
    return set(Toolset.for_invocation(SERVER_TOOLS, harness, invocation, CATALOG).tools)


def test_server_tools_are_shown_as_server__tool() -> None:
    assert server_visible(None) == {
        "lookup",
        "docs__search",
        "docs__fetch_page",
        "pay__bank__getBalance",
        "pay__bank__createTransfer",
    }
    toolset = Toolset.for_invocation(SERVER_TOOLS, None, None, CATALOG)
    assert toolset.route("docs__search") == SERVER and toolset.route("lookup") == CLIENT
    entry = toolset.entry("pay__bank__createTransfer")
    assert entry is not None and entry.server == "pay" and entry.remote_name == "bank__createTransfer"


def test_at_server_patterns_select_tools_of_one_server() -> None:
    assert server_visible(["@docs"]) == {"docs__search", "docs__fetch_page"}
    assert server_visible(["docs"]) == {"docs__search", "docs__fetch_page"}
    assert server_visible(["@docs/search"]) == {"docs__search"}
    assert server_visible(["@pay/bank__get*"]) == {"pay__bank__getBalance"}
    assert server_visible(["@pay/*", "lookup"]) == {
        "lookup",
        "pay__bank__getBalance",
        "pay__bank__createTransfer",
    }
    # A pattern for one server never reaches another's tools or inline functions.
    assert server_visible(["@docs/getBalance", "@lookup"]) == set()
    assert server_visible(["@builtin"]) == set()
    # The invocation narrows: it cannot add a tool the harness does not allow.
    assert server_visible(["@docs"], ["@docs/search", "@pay/*"]) == {"docs__search"}


def test_only_servers_the_patterns_can_reach_are_listed() -> None:
    def servers(harness: list[str] | None, invocation: list[str] | None = None) -> set[str]:
        return {s["name"] for s in Toolset.for_invocation(SERVER_TOOLS, harness, invocation).servers}

    assert servers(None) == {"docs", "pay"}
    assert servers(["@docs/search"]) == {"docs"}
    assert servers(["lookup"]) == set()
    assert servers(["*"], ["@pay/bank__getBalance"]) == {"pay"}
    assert servers(["docs__*"]) == {"docs"}


def test_model_tool_names_fit_every_provider() -> None:
    name = model_tool_name("server", "a.very/long tool name " * 5)
    assert len(name) <= 64 and re.fullmatch(r"[a-zA-Z0-9_-]+", name)
    assert name != model_tool_name("server", "a.very/long tool name " * 6)


NAMES = st.sampled_from([t["name"] for t in TOOLS] + ["other"])
PATTERNS = st.one_of(
    NAMES,
    st.just("*"),
    st.sampled_from(["look*", "*_all", "s*", "*a*", "@builtin", "x*"]),
)
ALLOWED = st.one_of(st.none(), st.lists(PATTERNS, max_size=4))


@given(harness=ALLOWED, invocation=ALLOWED)
def test_the_invocation_result_is_always_within_the_harness_result(
    harness: list[str] | None, invocation: list[str] | None
) -> None:
    narrowed = visible(harness, invocation)
    assert narrowed <= visible(harness, None)
    assert narrowed <= visible(invocation, None)
    # Intersection: exactly the tools both levels allow.
    assert narrowed == visible(harness, None) & visible(invocation, None)
    toolset = Toolset.for_invocation(TOOLS, harness, invocation)
    for t in TOOLS:
        assert (toolset.route(t["name"]) is not None) == (t["name"] in narrowed)


APPROVE_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number"}, "payee": {"type": "string"}},
    "required": ["amount"],
}


def _approve(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "inline_function",
        "name": "approve",
        "config": {"inlineFunction": {"description": "d", "inputSchema": schema}},
    }


def test_arguments_that_fail_the_schema_are_described_by_field() -> None:
    toolset = Toolset.for_invocation([_approve(APPROVE_SCHEMA)], ["*"], None)
    assert toolset.input_problem("approve", {"amount": 5, "payee": "bob"}) is None
    problem = toolset.input_problem("approve", {"amount": "ten"})
    assert problem is not None
    assert "approve" in problem and "at amount" in problem and "'ten' is not of type 'number'" in problem
    missing = toolset.input_problem("approve", {"payee": "bob"})
    assert missing is not None and "'amount' is a required property" in missing


def test_a_tool_the_invocation_cannot_see_has_no_schema_verdict() -> None:
    # Unknown names are the dispatcher's to refuse and record, not the schema check's.
    toolset = Toolset.for_invocation([_approve(APPROVE_SCHEMA)], ["*"], None)
    assert toolset.input_problem("transfer", {"amount": "ten"}) is None


def test_an_invalid_input_schema_is_a_definition_problem() -> None:
    problems = configuration_problems({"tools": [_approve({"type": "objekt"})]})
    assert [p.name for p in problems] == ["tools[0].config.inlineFunction.inputSchema"]
    assert "not a valid JSON Schema" in problems[0].message


def test_a_deployment_refuses_loopback_urls_and_role_signed_remote_mcp() -> None:
    local = mcp("local", "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next")
    reason = unsupported_reason(local, allow_loopback=False)
    assert reason is not None and "loopback" in reason
    assert unsupported_reason(mcp("local", "https://localhost/mcp"), allow_loopback=False) is not None
    assert unsupported_reason(local, allow_loopback=True) is None  # the local runtime's own servers
    signed = mcp("signed")
    signed["config"]["remoteMcp"]["outboundAuth"] = {"awsIam": {"service": "lambda"}}
    reason = unsupported_reason(signed)
    assert reason is not None and "awsIam" in reason


def test_a_server_schema_that_cannot_judge_input_does_not_crash_the_check() -> None:
    broken = [CatalogTool("docs", "search", "d", {"type": "object", "properties": {"q": {"pattern": "("}}})]
    toolset = Toolset.for_invocation([mcp("docs")], None, None, {"docs": broken})
    assert toolset.input_problem("docs__search", {"q": "x"}) is None


def _hook(kind: str, name: str, target: dict[str, Any]) -> dict[str, Any]:
    return {kind: {"name": name, "target": target}}


def test_hook_targets_must_be_in_the_deployments_naming_scope_and_hook_names_unique() -> None:
    from harness.configuration_checks import ToolPolicy

    policy = ToolPolicy(hook_target_prefix="harness-hook-")
    ok = [
        _hook(
            "beforeToolCall",
            "guard",
            {"lambda": {"arn": "arn:aws:lambda:eu-west-1:1:function:harness-hook-guard"}},
        ),
        _hook("afterInvocation", "notify", {"sns": {"arn": "arn:aws:sns:eu-west-1:1:harness-hook-topic"}}),
        _hook(
            "afterToolCall",
            "bus",
            {"eventBridge": {"arn": "arn:aws:events:eu-west-1:1:event-bus/harness-hook-b"}},
        ),
    ]
    assert configuration_problems({"hooks": ok}, policy) == []
    outside = [_hook("beforeToolCall", "guard", {"sns": {"arn": "arn:aws:sns:eu-west-1:1:payments"}})]
    (problem,) = configuration_problems({"hooks": outside}, policy)
    assert problem.name == "hooks[0].beforeToolCall.target.sns.arn" and "harness-hook-*" in problem.message
    twice = [ok[0], _hook("afterToolCall", "guard", ok[0]["beforeToolCall"]["target"])]
    assert [p.name for p in configuration_problems({"hooks": twice}, policy)] == ["hooks"]
