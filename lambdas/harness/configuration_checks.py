"""What this deployment can run in a harness configuration: a definition (CreateHarness,
UpdateHarness) or the overrides of one invocation.

These checks come after the contract's (``harness.contract``): the request is well formed, and
what remains is whether this deployment supports it -- providers, fallback models, tool types and
their schemas, hook targets, memory options, prompt blocks, truncation, limits, and whether the
models can be offered the configured tools. Problems are collected, then raised together by
``raise_problems`` as one ValidationError naming every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import contract
from harness import truncation as truncate
from harness.errors import FieldProblem, ValidationError
from harness.providers import registry as providers
from harness.providers import router
from harness.tools import registry as tools
from harness.tools.registry import Toolset


@dataclass(frozen=True)
class ToolPolicy:
    """What tool servers and hook targets this deployment lets a harness name."""

    # Gateway ARNs this deployment configures (None: not checked).
    gateway_arns: frozenset[str] | None = None
    # Hook targets (Lambda functions, SNS topics, event buses) must be named with this prefix: the
    # functions' IAM grants cover exactly those names. Empty: not checked.
    hook_target_prefix: str = ""
    # Whether an approval must come from another principal than the one that started the turn.
    separate_approver: bool = True
    # Whether remote_mcp URLs may name 127.0.0.1 (the local runtime only: on AWS it is the sandbox).
    allow_loopback_urls: bool = False


def not_supported(path: str, what: str) -> FieldProblem:
    return FieldProblem(path, f"{what} is not supported by this deployment yet")


# additionalParams that would send a request (and so the vault's key) somewhere else than apiBase,
# or put a key in the harness definition instead of the vault.
_ENDPOINT_PARAMS = frozenset(
    {"api_base", "base_url", "baseUrl", "http_options", "httpOptions", "api_key", "apiKey"}
)


def _model_problems(model: dict[str, Any], path: str = "model") -> list[FieldProblem]:
    """What this deployment cannot run in a model configuration, its fallback models included."""
    problems: list[FieldProblem] = []
    for kind, config in model.items():
        reason = providers.unsupported_reason(kind, config)
        if reason:
            problems.append(FieldProblem(f"{path}.{kind}", reason))
        params = config.get("additionalParams")
        if not isinstance(params, dict):
            continue
        params_path = f"{path}.{kind}.additionalParams"
        for name in sorted(_ENDPOINT_PARAMS & set(params)):
            problems.append(
                FieldProblem(
                    f"{params_path}.{name}",
                    "the endpoint and the key are set by apiBase and apiKeyArn, not additionalParams",
                )
            )
        window = params.get(router.CONTEXT_WINDOW_KEY)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            problems.append(
                FieldProblem(f"{params_path}.{router.CONTEXT_WINDOW_KEY}", "must be a positive integer")
            )
        if router.FALLBACKS_KEY not in params:
            continue
        fallbacks_path = f"{params_path}.{router.FALLBACKS_KEY}"
        fallbacks = params[router.FALLBACKS_KEY]
        if path != "model":
            problems.append(
                FieldProblem(fallbacks_path, "a fallback model cannot list fallback models of its own")
            )
        elif not isinstance(fallbacks, list):
            problems.append(FieldProblem(fallbacks_path, "must be a list of model configurations"))
        else:
            for index, fallback in enumerate(fallbacks):
                fallback_path = f"{fallbacks_path}[{index}]"
                try:
                    contract.validate(
                        contract.CONTROL_SERVICE, "HarnessModelConfiguration", fallback, path=fallback_path
                    )
                except ValidationError as error:
                    problems.extend(error.fields or [FieldProblem(fallback_path, error.message)])
                else:
                    problems.extend(_model_problems(fallback, fallback_path))
    return problems


def tool_support_problems(body: dict[str, Any], base: dict[str, Any] | None = None) -> list[FieldProblem]:
    """The models of the chain (primary and fallbacks) that cannot be offered the tools this
    configuration makes visible: a harness definition, or with ``base`` (the harness) the
    overrides of one invocation, whose allowedTools narrow the harness's."""
    harness = base or {}
    model = body.get("model") or harness.get("model")
    if not isinstance(model, dict) or len(model) != 1:
        return []
    definitions = [
        t for t in body.get("tools", harness.get("tools")) or [] if isinstance(t, dict) and t.get("name")
    ]
    if base is None:
        toolset = Toolset.for_invocation(definitions, body.get("allowedTools"), None)
    else:
        toolset = Toolset.for_invocation(definitions, base.get("allowedTools"), body.get("allowedTools"))
    if not toolset.configured:
        return []
    problems = []
    ((primary_kind, _),) = model.items()
    for index, candidate in enumerate(router.candidates(model)):
        if not (isinstance(candidate, dict) and len(candidate) == 1) or providers.supports_tools(candidate):
            continue
        ((kind, _),) = candidate.items()
        path = (
            f"model.{kind}"
            if index == 0
            else f"model.{primary_kind}.additionalParams.{router.FALLBACKS_KEY}[{index - 1}]"
        )
        problems.append(
            FieldProblem(
                path, f"this model does not support tools, and {toolset.configured} tool(s) are configured"
            )
        )
    return problems


def _hook_problems(hooks: list[dict[str, Any]], prefix: str) -> list[FieldProblem]:
    problems = []
    names = []
    for index, hook in enumerate(hooks):
        for hook_type, config in hook.items():
            names.append(config.get("name"))
            for kind, target in (config.get("target") or {}).items():
                resource = str(target.get("arn", "")).split(":", 5)[-1]
                # function:<name>, <topic name>, event-bus/<name>
                name = resource.split(":")[1] if resource.startswith("function:") else resource.split("/")[-1]
                if prefix and not name.startswith(prefix):
                    problems.append(
                        FieldProblem(
                            f"hooks[{index}].{hook_type}.target.{kind}.arn",
                            f"hook targets of this deployment must be named {prefix}* "
                            "(its functions may invoke and notify only those)",
                        )
                    )
    if len(names) != len(set(names)):
        problems.append(FieldProblem("hooks", "hook names must be unique"))
    return problems


def configuration_problems(body: dict[str, Any], policy: ToolPolicy | None = None) -> list[FieldProblem]:
    """What this deployment cannot run in a harness configuration (a definition or the overrides
    of one invocation): providers, fallback models, tool types, hook targets, memory options,
    prompt blocks, truncation, limits. Whether the models support the tools is
    ``tool_support_problems``."""
    policy = policy or ToolPolicy()
    problems: list[FieldProblem] = []
    model = body.get("model")
    if isinstance(model, dict):
        problems.extend(_model_problems(model))
    truncation = body.get("truncation")
    if isinstance(truncation, dict):
        problems.extend(FieldProblem(path, message) for path, message in truncate.problems(truncation))
    for index, tool in enumerate(body.get("tools") or []):
        reason = tools.unsupported_reason(tool, policy.gateway_arns, policy.allow_loopback_urls)
        if reason:
            problems.append(FieldProblem(f"tools[{index}].type", reason))
        elif tool.get("type") == tools.INLINE and (problem := tools.schema_problem(tools.input_schema(tool))):
            problems.append(FieldProblem(f"tools[{index}].config.inlineFunction.inputSchema", problem))
    problems.extend(_hook_problems(body.get("hooks") or [], policy.hook_target_prefix))
    memory = body.get("memory")
    if isinstance(memory, dict) and "optionalValue" in memory:
        memory = memory["optionalValue"]
    if isinstance(memory, dict):
        for kind, config in memory.items():
            if kind != "managedMemoryConfiguration":
                problems.append(not_supported(f"memory.{kind}", kind))
                continue
            for member in config:
                if member != "eventExpiryDuration":
                    problems.append(not_supported(f"memory.managedMemoryConfiguration.{member}", member))
    for index, block in enumerate(body.get("systemPrompt") or []):
        if "text" not in block:
            problems.append(FieldProblem(f"systemPrompt[{index}]", "only text blocks are supported"))
    for name in ("maxIterations", "maxTokens", "timeoutSeconds"):
        if name in body and body[name] < 1:
            problems.append(FieldProblem(name, "must be at least 1"))
    names = [tool.get("name") for tool in body.get("tools") or []]
    if len(names) != len(set(names)):
        problems.append(FieldProblem("tools", "tool names must be unique"))
    return problems


def raise_problems(problems: list[FieldProblem]) -> None:
    if problems:
        raise ValidationError(
            f"{len(problems)} unsupported or invalid field(s): " + ", ".join(p.name for p in problems),
            fields=problems,
        )
