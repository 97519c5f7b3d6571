"""A Lambda cold start pays only for the SDK it calls: provider modules import their SDK on first
use, the tool modules the MCP SDK and jsonschema, and no loop handler imports any of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
SDKS = ("openai", "google.genai", "litellm", "mcp", "httpx2", "jsonschema")


@pytest.mark.parametrize(
    "module",
    [
        "harness.providers.openai",
        "harness.providers.openai_chat",
        "harness.providers.openai_responses",
        "harness.providers.gemini",
        "harness.providers.tool_use_ids",
        "harness.providers.litellm",
        "harness.providers.registry",
        "harness.tools.dispatch",
        "handlers.loop",
        "handlers.tools",
    ],
)
def test_importing_a_provider_or_the_model_call_handler_imports_no_sdk(module: str) -> None:
    code = f"import sys; import {module}; print(sorted(m for m in {SDKS!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=LAMBDAS, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
