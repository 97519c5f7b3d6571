"""What the functions get: their code and ``lambdas/requirements.txt`` built for Lambda, not this machine.

The compiled packages (``pydantic_core``, ``jiter``, ...) must be the aarch64 builds for the
runtime's CPython; pip's install is cached, so that synthesizing again needs neither pip nor PyPI.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from cfnlint.api import ManualArgs, lint_file

from stacks.app_factory import STACK_ID
from stacks.components import functions, lambda_bundling
from stacks.components.functions import ARCHITECTURE, RUNTIME
from stacks.components.lambda_bundling import (
    REQUIREMENTS,
    Dependencies,
    LambdaPlatform,
    dependencies_layer,
)

from .synthesis import Synthesized, synthesize

PLATFORM = LambdaPlatform.of(RUNTIME, ARCHITECTURE)
#: Lambda's limit on a function's unzipped code and layers together.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
#: ``e_machine`` of an ELF shared object, by the machine the runtime reports.
ELF_MACHINES = {"aarch64": 183, "x86_64": 62}
SERVICE_MODELS = ("bedrock-agentcore", "bedrock-agentcore-control")


def _asset(synthesized: Synthesized, s3_key: str) -> Path:
    return synthesized.outdir / ("asset." + s3_key.removesuffix(".zip"))


def _parts(synthesized: Synthesized, function: str = "CallModelFunction") -> list[Path]:
    """The code asset and each layer's asset of ``function``."""
    properties = synthesized.resources[function]["Properties"]
    parts = [_asset(synthesized, properties["Code"]["S3Key"])]
    for layer in properties.get("Layers", []):
        content = synthesized.resources[layer["Ref"]]["Properties"]["Content"]
        parts.append(_asset(synthesized, content["S3Key"]))
    return parts


def _sys_path(synthesized: Synthesized) -> list[Path]:
    """Where the runtime imports from: the code, then each layer's ``python/``."""
    code, *layers = _parts(synthesized)
    return [code, *(layer / "python" for layer in layers)]


def _find(roots: list[Path], relative: str) -> Path | None:
    return next((root / relative for root in roots if (root / relative).exists()), None)


def _requirement_names() -> list[str]:
    names = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0])
    return names


def _dist_info(roots: list[Path], project: str) -> Path | None:
    normalized = re.sub(r"[-_.]+", "_", project).lower()
    for root in roots:
        for candidate in root.glob("*.dist-info"):
            if candidate.name.lower().startswith(normalized + "-"):
                return candidate
    return None


def _records(roots: list[Path]) -> dict[str, str]:
    return {d.name: (d / "RECORD").read_text() for root in roots for d in root.glob("*.dist-info")}


def _size(paths: list[Path]) -> int:
    return sum(f.stat().st_size for path in paths for f in path.rglob("*") if f.is_file())


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


# --- the bundle ---------------------------------------------------------------------------------


def test_pip_is_asked_for_wheels_of_the_runtime_python_on_manylinux_for_the_functions_cpu() -> None:
    assert (RUNTIME.name, ARCHITECTURE.name) == ("python3.14", "arm64")  # else update the tags below
    command = Dependencies(PLATFORM).pip_command()
    assert command[command.index("--python-version") + 1] == "3.14"
    assert command[command.index("--implementation") + 1] == "cp"
    assert "--only-binary=:all:" in command
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert "manylinux2014_aarch64" in platforms
    assert "manylinux_2_28_aarch64" in platforms  # PEP 600 tags are not implied by manylinux2014
    # Amazon Linux 2023 (python3.12 and later) has glibc 2.34: no wheel may need a newer one.
    assert "manylinux_2_34_aarch64" in platforms
    assert not [p for p in platforms if not p.endswith("_aarch64") or p.startswith("manylinux_2_35")]


def test_compiled_packages_are_built_for_the_runtime_python_and_cpu(synthesized: Synthesized) -> None:
    roots = _sys_path(synthesized)
    core = _find(roots, "pydantic_core")
    assert core is not None, "pydantic_core (pydantic's compiled core, via openai and google-genai)"
    (extension,) = core.glob("_pydantic_core*.so")
    assert extension.name.endswith(f".cpython-{PLATFORM.python_tag[2:]}-{PLATFORM.machine}-linux-gnu.so")
    wheel = _dist_info(roots, "pydantic_core")
    assert wheel is not None
    tags = [
        line.removeprefix("Tag: ")
        for line in (wheel / "WHEEL").read_text().splitlines()
        if line.startswith("Tag: ")
    ]
    assert tags, wheel
    for tag in tags:
        assert re.fullmatch(
            rf"{PLATFORM.python_tag}-{PLATFORM.python_tag}-manylinux\w*_{PLATFORM.machine}", tag
        )
    # Every compiled module in the bundle, not only pydantic's, is for the runtime's CPU and CPython.
    shared_objects = [so for root in roots for so in root.rglob("*.so")]
    assert {so.name.split(".")[0] for so in shared_objects} >= {"_pydantic_core", "jiter"}
    for so in shared_objects:
        assert _elf_machine(so) == ELF_MACHINES[PLATFORM.machine], so
        version = re.search(r"\.cpython-(\d+)-", so.name)
        assert version is None or version.group(1) == PLATFORM.python_tag[2:], so


def test_the_bundle_has_the_handlers_the_sdks_and_the_service_models(synthesized: Synthesized) -> None:
    roots = _sys_path(synthesized)
    code = roots[0]
    for package in ("harness", "handlers", "runtime_api"):
        assert (code / package / "__init__.py").is_file(), package
    assert (code / "handlers" / "loop.py").is_file()
    assert (code / "runtime_api" / "streaming.py").is_file()  # the streaming function's runtime loop
    for module in (
        "openai/__init__.py",
        "google/genai/__init__.py",
        "aws_lambda_powertools/__init__.py",
        "aws_xray_sdk/core/__init__.py",  # Powertools' Tracer imports it on Lambda
        "pydantic/__init__.py",
    ):
        assert _find(roots, module) is not None, module
    for project in _requirement_names():
        assert _dist_info(roots, project) is not None, f"{project} (lambdas/requirements.txt)"
    for service in SERVICE_MODELS:
        assert (code / "harness" / "service_models" / service / "service-2.json").is_file(), service


def test_the_bundle_has_no_bytecode_tests_or_scripts(synthesized: Synthesized) -> None:
    parts = _parts(synthesized)
    for part in parts:
        assert not list(part.rglob("__pycache__")), part
        assert not list(part.rglob("*.pyc")), part
        assert not [d for d in part.rglob("tests") if d.is_dir()], part
        assert not list(part.rglob("conftest.py")), part
    for root in _sys_path(synthesized):
        assert not (root / "bin").exists(), root  # console scripts naming this machine's interpreter
        assert not (root / "requirements.txt").exists(), root


def test_the_unzipped_bundle_fits_in_lambdas_limit(synthesized: Synthesized) -> None:
    parts = _parts(synthesized)
    size = _size(parts)
    print(
        f"\nunzipped bundle: {size / 2**20:.1f} MiB of {LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MiB "
        f"({', '.join(f'{p.name[:14]}: {_size([p]) / 2**20:.1f} MiB' for p in parts)})"
    )
    assert size < LAMBDA_UNZIPPED_LIMIT


# --- the cache ----------------------------------------------------------------------------------


def test_a_second_synth_reuses_the_cached_install(
    synthesized: Synthesized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = Dependencies(PLATFORM).directory
    assert cached.is_dir()  # the session's synthesis filled it
    mtime = cached.stat().st_mtime_ns
    calls: list[object] = []

    def no_pip(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        raise AssertionError(f"pip ran again: {args}")

    monkeypatch.setattr(lambda_bundling.subprocess, "run", no_pip)
    again = synthesize(tmp_path / "cdk.out")
    assert calls == []
    assert cached.stat().st_mtime_ns == mtime
    # The same packages, file for file (each wheel's RECORD lists its files with their hashes).
    assert _records(_sys_path(again)) == _records(_sys_path(synthesized))


def test_the_cache_key_follows_the_requirements_the_python_and_the_cpu(tmp_path: Path) -> None:
    key = Dependencies(PLATFORM).key
    assert Dependencies(PLATFORM).key == key
    assert Dependencies(LambdaPlatform.of(lambda_.Runtime.PYTHON_3_13, ARCHITECTURE)).key != key
    assert Dependencies(LambdaPlatform.of(RUNTIME, lambda_.Architecture.X86_64)).key != key
    changed = tmp_path / "requirements.txt"
    changed.write_text(REQUIREMENTS.read_text() + "requests>=2\n")
    assert Dependencies(PLATFORM, requirements=changed).key != key
    assert Dependencies(PLATFORM).directory.is_relative_to(lambda_bundling.REPO_ROOT / ".build")


def test_a_cold_cache_without_pypi_fails_synthesis_naming_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [v for v in os.environ if v.startswith("PIP_")]:
        monkeypatch.delenv(variable)
    # No configuration (index mirrors, local wheel folders, pip's HTTP cache): only a dead index.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    cold = Dependencies(PLATFORM, cache_root=tmp_path / "cache")
    app = App(outdir=str(tmp_path / "cdk.out"))
    with pytest.raises(RuntimeError) as raised:
        dependencies_layer(Stack(app, "Cold"), "Dependencies", RUNTIME, ARCHITECTURE, dependencies=cold)
        app.synth()
    message = str(raised.value)
    assert "Could not install the Lambda functions' dependencies" in message
    assert "pip install --target" in message
    assert str(cold.directory) in message  # run as printed, it warms the cache
    assert "--python-version 3.14" in message
    assert "--platform manylinux2014_aarch64" in message
    assert f"-r {REQUIREMENTS}" in message
    # Nothing half-installed is left to be mistaken for a cache entry.
    assert not cold.directory.exists()
    assert list(cold.entry.iterdir()) == []


# --- the layer variant --------------------------------------------------------------------------


def test_the_packages_can_ship_as_one_layer_that_passes_cdk_nag_and_cfn_lint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``functions.DEPENDENCIES_IN_LAYER = True``: the code asset shrinks to the handlers."""
    monkeypatch.setattr(functions, "DEPENDENCIES_IN_LAYER", True)
    layered = synthesize(tmp_path / "cdk.out")
    layers = layered.of_type("AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    (layer_id, layer), *_ = layers.items()
    assert layer["Properties"]["CompatibleRuntimes"] == [RUNTIME.name]
    assert layer["Properties"]["CompatibleArchitectures"] == [ARCHITECTURE.name]
    for name, function in layered.of_type("AWS::Lambda::Function").items():
        assert function["Properties"]["Layers"] == [{"Ref": layer_id}], name
    code, layer_asset = _parts(layered)
    assert code.name != layer_asset.name
    assert not (code / "openai").exists() and (code / "handlers").is_dir()
    assert (layer_asset / "python" / "openai" / "__init__.py").is_file()
    assert _size([code]) < 10 * 2**20
    assert _size([code, layer_asset]) < LAMBDA_UNZIPPED_LIMIT
    violations = [v for p in layered.validation_report["pluginReports"] for v in p["violations"]]
    assert violations == []
    matches = lint_file(
        layered.outdir / f"{STACK_ID}.template.json", config=ManualArgs(regions=["us-east-1", "eu-west-1"])
    )
    assert [str(m) for m in matches if m.rule.severity == "error"] == []
