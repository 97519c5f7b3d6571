"""The deployment's tool gateways: governed tools behind one control point.

A gateway is configured in the stack (CDK context ``harness:gateways``) and reached by a harness
through an ``agentcore_gateway`` tool whose ``gatewayArn`` names it. Each gateway has targets:

- ``openApi``: every operation of an OpenAPI 3 document becomes a tool (name = operationId);
- ``lambda``: a function invoked with the tool input, offering the tools the target lists;
- ``mcp``: an MCP server reached through the gateway (its tools, listed when an invocation starts).

A target also says how to authenticate (``auth``: API key, OAuth2 client credentials or SigV4,
with secrets named in the vault), how to call (``timeoutSeconds``, ``maxAttempts``,
``ratePerSecond``, ``burst``, ``circuitBreaker``) and which calls need a person's approval
(``approvals``). Inside a gateway a tool is named ``<target>__<tool>``.

The same parser checks the configuration at synth (so a bad gateway fails ``cdk synth`` with a
clear message) and reads the file the stack bundles with the functions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.approvals import ApprovalPolicy, parse_policies
from harness.canonical import text_digest
from harness.errors import GatewayConfigError
from harness.tools import openapi
from harness.tools.http_target import TargetPolicy
from harness.tools.registry import SEPARATOR, url_problem

TARGET_KINDS = ("openApi", "lambda", "mcp")
#: The longest one target call may take: the tool step's 300 s timeout, minus room for its hooks
#: and its own writes.
CALL_BUDGET_SECONDS = 240
_TARGET_KEYS = {
    "name",
    "description",
    *TARGET_KINDS,
    "auth",
    "approvals",
    # TargetPolicy.of
    "timeoutSeconds",
    "maxAttempts",
    "baseDelaySeconds",
    "maxDelaySeconds",
    "ratePerSecond",
    "burst",
    "rateWaitSeconds",
    "circuitBreaker",
}
_GATEWAY_NAME = re.compile(r"[0-9a-z](-?[0-9a-z]){0,47}")
_TARGET_NAME = re.compile(r"[a-zA-Z0-9](-?[a-zA-Z0-9_])*")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_LAMBDA_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[a-zA-Z0-9_-]+(:[a-zA-Z0-9_$-]+)?"
)


def gateway_id(name: str) -> str:
    """The id in a gateway's ARN: the name and a stable ten-character suffix (the contract's
    ``gateway/<name>-<10 chars>`` form)."""
    return f"{name}-{text_digest(name)[:10]}"


def gateway_arn(name: str, region: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:bedrock-agentcore:{region}:{account}:gateway/{gateway_id(name)}"


def gateway_id_of_arn(arn: str) -> str | None:
    """The gateway id an ARN names; region and account are not compared (gateways are this stack's)."""
    match = re.fullmatch(r"arn:aws[a-z-]*:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:gateway/(.+)", arn or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class GatewayTool:
    name: str  # inside its target
    description: str
    input_schema: dict[str, Any]
    operation: openapi.Operation | None = None  # openApi targets


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # one of TARGET_KINDS
    config: dict[str, Any]  # the kind's member of the target configuration
    auth: dict[str, Any] | None
    policy: TargetPolicy
    approvals: list[ApprovalPolicy]
    tools: dict[str, GatewayTool] = field(default_factory=dict)  # static tools (openApi, lambda)

    @property
    def url(self) -> str:
        if self.kind == "mcp":
            return str(self.config["url"])
        if self.kind == "openApi":
            return str(self.config["baseUrl"])
        return ""


@dataclass(frozen=True)
class Gateway:
    name: str
    targets: dict[str, Target]

    @property
    def id(self) -> str:
        return gateway_id(self.name)

    def split(self, tool: str) -> tuple[Target, str] | None:
        """The target and the target's own tool name of ``<target>__<tool>``."""
        target_name, separator, name = tool.partition(SEPARATOR)
        target = self.targets.get(target_name)
        if not separator or target is None:
            return None
        return target, name


@dataclass(frozen=True)
class Gateways:
    by_id: dict[str, Gateway]

    @classmethod
    def parse(cls, config: dict[str, Any], base_dir: Path | None = None) -> Gateways:
        """Parse ``harness:gateways``. ``base_dir`` resolves ``openApi.schemaPath`` (at synth);
        the bundled file carries the documents themselves in ``openApi.schema``."""
        if not isinstance(config, dict):
            raise GatewayConfigError("harness:gateways must be an object: gateway name -> gateway")
        gateways = {}
        for name, body in config.items():
            if not _GATEWAY_NAME.fullmatch(name):
                raise GatewayConfigError(
                    f"gateway name {name!r}: use lowercase letters, digits and single hyphens (≤ 48)"
                )
            gateways[gateway_id(name)] = _gateway(name, body, base_dir)
        return cls(gateways)

    @classmethod
    def load(cls, path: str) -> Gateways:
        """The gateways of the bundled configuration file; none when there is no file name."""
        if not path:
            return cls({})
        return cls.parse(json.loads(Path(path).read_text()))

    def by_arn(self, arn: str) -> Gateway | None:
        gateway_id_ = gateway_id_of_arn(arn)
        return self.by_id.get(gateway_id_) if gateway_id_ else None

    def arns(self, region: str, account: str, partition: str = "aws") -> dict[str, str]:
        """Gateway ARN -> gateway name, as this deployment publishes them."""
        return {gateway_arn(g.name, region, account, partition): g.name for g in self.by_id.values()}


def bundle(config: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """The configuration the functions read: checked, with each ``schemaPath`` replaced by the
    document it names, so the runtime needs nothing outside its code asset."""
    Gateways.parse(config, base_dir)
    bundled: dict[str, Any] = json.loads(json.dumps(config))
    for gateway in bundled.values():
        for target in gateway.get("targets", []):
            spec = target.get("openApi")
            if isinstance(spec, dict) and "schemaPath" in spec:
                spec["schema"] = _read_document(base_dir / spec.pop("schemaPath"))
    return bundled


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise GatewayConfigError(f"OpenAPI document {path} cannot be read: {error}") from None
    return document


def _gateway(name: str, body: Any, base_dir: Path | None) -> Gateway:
    where = f"gateway {name}"
    if not isinstance(body, dict) or not isinstance(body.get("targets"), list) or not body["targets"]:
        raise GatewayConfigError(f"{where}: needs a non-empty list 'targets'")
    targets: dict[str, Target] = {}
    for index, raw in enumerate(body["targets"]):
        target = _target(f"{where} targets[{index}]", raw, base_dir)
        if target.name in targets:
            raise GatewayConfigError(f"{where}: target name {target.name} is used twice")
        targets[target.name] = target
    return Gateway(name, targets)


def _target(where: str, raw: Any, base_dir: Path | None) -> Target:
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"{where}: must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not _TARGET_NAME.fullmatch(name) or SEPARATOR in name or len(name) > 32:
        raise GatewayConfigError(
            f"{where}: 'name' must be letters, digits, '_' and '-' (≤ 32, no '{SEPARATOR}')"
        )
    where = f"{where} ({name})"
    unknown = sorted(set(raw) - _TARGET_KEYS)
    if unknown:
        raise GatewayConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kinds = [k for k in TARGET_KINDS if k in raw]
    if len(kinds) != 1:
        raise GatewayConfigError(f"{where}: needs exactly one of {', '.join(TARGET_KINDS)}")
    kind = kinds[0]
    if not isinstance(raw[kind], dict):
        raise GatewayConfigError(f"{where}: '{kind}' must be an object")
    config = dict(raw[kind])
    try:
        policy = TargetPolicy.of(raw)
        approvals = parse_policies(raw.get("approvals") or [])
        _check_auth(raw.get("auth"))
    except ValueError as error:
        raise GatewayConfigError(f"{where}: {error}") from None
    worst = policy.timeout_seconds * policy.max_attempts + policy.max_delay_seconds * (
        policy.max_attempts - 1
    )
    if worst > CALL_BUDGET_SECONDS:
        # Past it the tool step times out: the call's effect may have happened, its result is lost.
        raise GatewayConfigError(
            f"{where}: timeoutSeconds * maxAttempts plus backoff may take {worst:g} s; a call must fit "
            f"{CALL_BUDGET_SECONDS} s"
        )
    tools = _static_tools(where, kind, config, base_dir)
    known = set(tools)
    for policy_ in approvals:
        if kind != "mcp" and not any(policy_.applies_to(tool) for tool in known):
            raise GatewayConfigError(f"{where}: approval policy for {policy_.tool!r} matches no tool")
    return Target(name, kind, config, raw.get("auth"), policy, approvals, tools)


def _check_auth(auth: Any) -> None:
    # The secrets are read when a call is made; this checks the shape (and never reads a secret).
    from harness.tools.outbound_auth_config import auth_from_config

    def unread(_: str) -> str:
        raise AssertionError("configuration checks never read secrets")

    auth_from_config(auth, unread)


def _static_tools(
    where: str, kind: str, config: dict[str, Any], base_dir: Path | None
) -> dict[str, GatewayTool]:
    if kind == "mcp":
        problem = url_problem(str(config.get("url", "")))
        if problem:
            raise GatewayConfigError(f"{where}: mcp.url {problem}")
        return {}
    if kind == "lambda":
        arn = config.get("functionArn", "")
        if not isinstance(arn, str) or not _LAMBDA_ARN.fullmatch(arn):
            raise GatewayConfigError(f"{where}: lambda.functionArn must be a Lambda function ARN")
        tools = {}
        for index, tool in enumerate(config.get("tools") or []):
            tool_name = tool.get("name") if isinstance(tool, dict) else None
            if not isinstance(tool_name, str) or not _TOOL_NAME.fullmatch(tool_name):
                raise GatewayConfigError(
                    f"{where}: lambda.tools[{index}].name must match [a-zA-Z0-9_-]{{1,64}}"
                )
            schema = tool.get("inputSchema") or {"type": "object"}
            tools[tool_name] = GatewayTool(tool_name, str(tool.get("description", tool_name)), schema)
        if not tools:
            raise GatewayConfigError(f"{where}: lambda.tools must list the tools the function offers")
        return tools
    # openApi
    if "schema" in config:
        document = config["schema"]
    elif "schemaPath" in config and base_dir is not None:
        document = _read_document(base_dir / config["schemaPath"])
    else:
        raise GatewayConfigError(f"{where}: openApi needs 'schemaPath' (a file next to cdk.json)")
    try:
        operations = openapi.operations(document)
    except openapi.OpenApiError as error:
        raise GatewayConfigError(f"{where}: {error}") from None
    base_url = config.get("baseUrl") or openapi.base_url(document)
    if not base_url:
        raise GatewayConfigError(f"{where}: openApi needs 'baseUrl' (or servers[0].url in the document)")
    problem = url_problem(base_url)
    if problem:
        raise GatewayConfigError(f"{where}: openApi.baseUrl {problem}")
    config["baseUrl"] = base_url
    return {op.tool_name: GatewayTool(op.tool_name, op.description, op.input_schema, op) for op in operations}
