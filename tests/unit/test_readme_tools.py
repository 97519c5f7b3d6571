"""The README's tool examples are configurations this deployment accepts: the gateway block
parses as ``harness:gateways`` and the tool entries pass the contract and the deployment's checks."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from harness import contract
from harness.gateway import Gateways, gateway_arn
from harness.tools.registry import unsupported_reason
from stacks.app_factory import REPO_ROOT

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _gateway_block() -> dict[str, Any]:
    (block,) = re.findall(r"```json\n(\"harness:gateways\": \{.*?)\n```", README, flags=re.DOTALL)
    config: dict[str, Any] = json.loads("{" + block + "}")["harness:gateways"]
    return config


def _python_assignment(name: str) -> Any:
    for code in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL):
        for node in ast.parse(code).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
                return node.value
    raise AssertionError(f"no {name} = ... in the README")


def test_the_readme_gateway_configuration_parses() -> None:
    config = _gateway_block()
    # The README names the operator's own document; the demo bank's stands in for it.
    config["payments"]["targets"][0]["openApi"]["schemaPath"] = "local_runtime/demo_bank.openapi.json"
    gateways = Gateways.parse(config, REPO_ROOT)
    (gateway,) = gateways.by_id.values()
    assert set(gateway.targets) == {"bank", "fx", "research"}
    assert gateway.targets["bank"].approvals[0].tool == "createTransfer"


def test_the_readme_remote_mcp_tool_is_accepted() -> None:
    advisor = ast.literal_eval(_python_assignment("advisor"))
    contract.validate("bedrock-agentcore-control", "HarnessTool", advisor, path="tools[0]")
    assert unsupported_reason(advisor, {}) is None


def test_the_readme_gateway_tool_is_accepted() -> None:
    arn = gateway_arn("payments", "eu-west-1", "111122223333")

    class StackOutput(ast.NodeTransformer):
        # The README reads the ARN from the stack's outputs; everything else is a literal.
        def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
            return ast.Constant(arn)

    tool = ast.literal_eval(StackOutput().visit(_python_assignment("gateway")))
    contract.validate("bedrock-agentcore-control", "HarnessTool", tool, path="tools[0]")
    assert unsupported_reason(tool, {arn}) is None
