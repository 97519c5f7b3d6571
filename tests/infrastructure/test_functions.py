"""The functions: one locally bundled asset, arm64, the newest Python, consistent environment."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_cdk import aws_lambda as lambda_

from stacks.app_factory import REPO_ROOT, STACK_ID
from stacks.components.functions import RUNTIME

from .synthesis import Synthesized

HANDLERS = {
    "ApiFunction": ("handlers.api.handler", 29),
    "InvokeStreamFunction": ("runtime_api.streaming.handler", 900),
    "LoadContextFunction": ("handlers.loop.load_context", 60),
    "CallModelFunction": ("handlers.loop.call_model", 300),
    "AuthorizeToolCallsFunction": ("handlers.loop.authorize_tool_calls", 60),
    "RunToolFunction": ("handlers.tools.run_tool", 300),
    "AwaitClientFunction": ("handlers.loop.await_client", 60),
    "FinalizeFunction": ("handlers.loop.finalize", 60),
    "RecordFailureFunction": ("handlers.loop.record_failure", 60),
    "ErasureFunction": ("handlers.erasure.handler", 300),
}
AUDITORS = {"AuthorizeToolCallsFunction", "FinalizeFunction", "RecordFailureFunction", "ErasureFunction"}
#: Which function gets which resource name: exactly those granted access to it.
API_FUNCTIONS = {"ApiFunction", "InvokeStreamFunction"}
NAMED_RESOURCES = {
    "HARNESS_TABLE_NAME": set(HANDLERS) - {"ErasureFunction"},
    "MEMORY_TABLE_NAME": set(HANDLERS),
    "ARTIFACT_BUCKET_NAME": {"CallModelFunction", "RunToolFunction", "ErasureFunction"},
    "AUDIT_BUCKET_NAME": AUDITORS,
    "AUDIT_MAC_KEY_ID": AUDITORS,
    "VAULT_SECRET_PREFIX": {"CallModelFunction", "LoadContextFunction", "RunToolFunction"},
    "STATE_MACHINE_ARN": {*API_FUNCTIONS, "ErasureFunction"},
    "APPROVAL_SEPARATION_OF_DUTIES": API_FUNCTIONS,
    "AWS_LAMBDA_EXEC_WRAPPER": {"InvokeStreamFunction"},
    # The naming scope of hook targets: the API checks it, the hook-running steps are granted it.
    "HOOK_TARGET_PREFIX": {
        *API_FUNCTIONS,
        "LoadContextFunction",
        "AuthorizeToolCallsFunction",
        "RunToolFunction",
        "FinalizeFunction",
        "RecordFailureFunction",
    },
}
COMMON = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "LOG_LEVEL",
    "DEFAULT_MODEL_CONFIG",
    "EVENT_EXPIRY_DAYS",
    "CLIENT_RESPONSE_TIMEOUT_SECONDS",
    "GATEWAY_CONFIG_FILE",
}


def _functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synthesized.of_type("AWS::Lambda::Function").items()}


def _environments(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {name: fn["Environment"]["Variables"] for name, fn in _functions(synthesized).items()}


def test_runtime_is_the_newest_python_lambda_offers() -> None:
    newest = max(
        (getattr(lambda_.Runtime, n) for n in dir(lambda_.Runtime) if n.startswith("PYTHON_3_")),
        key=lambda runtime: tuple(int(p) for p in runtime.name.removeprefix("python").split(".")),
    )
    assert RUNTIME.name == newest.name


def test_every_function_runs_that_python_on_arm64_with_active_tracing(
    each_configuration: Synthesized,
) -> None:
    functions = _functions(each_configuration)
    assert set(functions) == set(HANDLERS)
    for name, function in functions.items():
        assert function["Runtime"] == RUNTIME.name, name
        assert function["Architectures"] == ["arm64"], name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert function["MemorySize"] == 512, name
        assert "ReservedConcurrentExecutions" not in function, name


def test_functions_run_their_handlers_with_their_timeouts(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    for name, (handler, timeout) in HANDLERS.items():
        assert (functions[name]["Handler"], functions[name]["Timeout"]) == (handler, timeout)


def test_all_functions_share_one_code_asset(synthesized: Synthesized) -> None:
    codes = {json.dumps(fn["Code"], sort_keys=True) for fn in _functions(synthesized).values()}
    assert len(codes) == 1


def test_each_function_logs_to_its_own_log_group(synthesized: Synthesized) -> None:
    log_groups = [fn["LoggingConfig"]["LogGroup"]["Ref"] for fn in _functions(synthesized).values()]
    assert len(set(log_groups)) == len(log_groups)


def test_a_variable_has_the_same_value_in_every_function_that_has_it(each_configuration: Synthesized) -> None:
    values: dict[str, set[str]] = {}
    for variables in _environments(each_configuration).values():
        for name, value in variables.items():
            values.setdefault(name, set()).add(json.dumps(value, sort_keys=True))
    assert {name: v for name, v in values.items() if len(v) > 1} == {}


def test_a_function_gets_a_resource_name_exactly_when_it_may_use_the_resource(
    synthesized: Synthesized,
) -> None:
    environments = _environments(synthesized)
    for variable, functions in NAMED_RESOURCES.items():
        assert {name for name, env in environments.items() if variable in env} == functions, variable
    for name, env in environments.items():
        assert set(env) <= COMMON | set(NAMED_RESOURCES), name
        assert set(env) >= COMMON, name


def test_environment_names_the_resources_of_this_stack(synthesized: Synthesized) -> None:
    env = _environments(synthesized)
    assert env["ApiFunction"]["HARNESS_TABLE_NAME"] == {"Ref": "HarnessTable"}
    assert env["ApiFunction"]["MEMORY_TABLE_NAME"] == {"Ref": "MemoryTable"}
    assert env["RunToolFunction"]["ARTIFACT_BUCKET_NAME"] == {"Ref": "ArtifactBucket"}
    assert env["FinalizeFunction"]["AUDIT_BUCKET_NAME"] == {"Ref": "AuditBucket"}
    assert env["FinalizeFunction"]["AUDIT_MAC_KEY_ID"] == {"Fn::GetAtt": ["AuditMacKey", "Arn"]}
    assert env["CallModelFunction"]["VAULT_SECRET_PREFIX"] == "AgentHarness/vault/"
    assert env["ApiFunction"]["POWERTOOLS_SERVICE_NAME"] == "agent-harness"
    assert env["ApiFunction"]["POWERTOOLS_METRICS_NAMESPACE"] == "AgentHarness"


def test_settings_reach_the_functions_from_context(synthesized: Synthesized, overridden: Synthesized) -> None:
    for configuration, expected in (
        (
            synthesized,
            (
                "INFO",
                "30",
                "3600",
                {"bedrockModelConfig": {"modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
            ),
        ),
        (overridden, ("DEBUG", "7", "900", {"openAiModelConfig": {"modelId": "gpt-5"}})),
    ):
        env = _environments(configuration)["CallModelFunction"]
        level, expiry, timeout, model = expected
        assert env["POWERTOOLS_LOG_LEVEL"] == env["LOG_LEVEL"] == level
        assert env["EVENT_EXPIRY_DAYS"] == expiry
        assert env["CLIENT_RESPONSE_TIMEOUT_SECONDS"] == timeout
        assert json.loads(env["DEFAULT_MODEL_CONFIG"]) == model
        assert " " not in env["DEFAULT_MODEL_CONFIG"]  # compact JSON


def _asset_dir(synthesized: Synthesized) -> Path:
    s3_key = _functions(synthesized)["ApiFunction"]["Code"]["S3Key"]
    return synthesized.outdir / ("asset." + s3_key.removesuffix(".zip"))


def test_the_code_asset_is_bundled_locally_with_the_service_models(
    synthesized: Synthesized,
) -> None:
    assert os.environ["CDK_DOCKER"] == "/bin/false"  # any Docker bundling would have failed
    asset = _asset_dir(synthesized)
    assert (asset / "harness" / "__init__.py").is_file()
    assert (asset / "handlers").is_dir()
    # Third-party packages ship in the shared dependencies layer (see test_lambda_packaging.py).
    for service in ("bedrock-agentcore", "bedrock-agentcore-control"):
        model = json.loads((asset / "harness" / "service_models" / service / "service-2.json").read_text())
        assert model["metadata"]["endpointPrefix"] == service
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.pyc"))


def test_app_py_synthesizes_without_docker_or_aws_credentials(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "CDK_")) and key not in {"PYTHONPATH"}
    }
    env |= {
        "CDK_DOCKER": "/bin/false",
        "CDK_OUTDIR": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / f"{STACK_ID}.template.json").is_file()


def test_every_handler_the_template_names_exists(synthesized: Synthesized) -> None:
    for name, function in _functions(synthesized).items():
        module_name, attribute = function["Handler"].rsplit(".", 1)
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attribute, None)), (name, function["Handler"])


def test_the_streaming_function_starts_its_own_runtime_loop(synthesized: Synthesized) -> None:
    function = _functions(synthesized)["InvokeStreamFunction"]
    wrapper = function["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    assert wrapper == "/var/task/exec_wrappers/streaming-bootstrap"
    asset = json.loads((synthesized.outdir / f"{STACK_ID}.assets.json").read_text())
    source = asset["files"][function["Code"]["S3Key"].removesuffix(".zip")]["source"]["path"]
    code = synthesized.outdir / source
    script = code / wrapper.removeprefix("/var/task/")
    assert os.access(script, os.X_OK), "Lambda executes the wrapper: it must keep its mode bits"
    assert "python3 -m runtime_api.streaming" in script.read_text()
    assert (code / "runtime_api" / "streaming.py").is_file()  # the module the wrapper runs is bundled
