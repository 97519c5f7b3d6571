"""The functions' code and their third-party packages, bundled on this machine: no Docker.

The code asset is ``lambdas/`` plus the two botocore service models the API contract is read from.
The third-party packages the handlers import (``lambdas/requirements.txt``: Powertools, boto3, the
model providers' SDKs and what they pull in, some of it compiled, e.g. ``pydantic_core``) are
installed by pip *for the functions' platform*, not this machine's: ``--platform
manylinux..._aarch64 --python-version 3.14 --only-binary=:all:`` selects the wheels built for the
Lambda runtime whatever the machine running ``cdk synth`` is.

pip runs once per change of the requirements or the platform: its output is kept in
``.build/lambda-deps/<key>/site-packages`` (git-ignored), ``<key>`` a hash of the requirements
file and of the pip options that name the platform. Synthesis with a warm cache needs no network;
with a cold cache and no PyPI it fails with the pip command to run.

The packages go either into the code asset or into one Lambda layer shared by every function
(``functions.DEPENDENCIES_IN_LAYER``); both are built by local bundling (``ILocalBundling``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from harness.contract import bundled_model_files

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SOURCE = REPO_ROOT / "lambdas"
#: The third-party packages the functions import at run time.
REQUIREMENTS = LAMBDA_SOURCE / "requirements.txt"
#: pip's output for each (requirements, platform); git-ignored.
CACHE_ROOT = REPO_ROOT / ".build" / "lambda-deps"
#: Part of every cache key: bump it to have every cache entry installed afresh.
_CACHE_FORMAT = 1

_IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", "tests", ".mypy_cache", ".pytest_cache", "requirements.txt"
)
#: Left out of the installed packages: console scripts (their shebang names this machine's
#: interpreter), bytecode (pip would compile it for this interpreter's version, which the runtime
#: ignores) and the packages' own test suites.
_IGNORED_DEPENDENCIES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "tests")
_IGNORED_DEPENDENCY_ROOTS = {"bin"}

#: glibc of the Lambda runtimes' OS: Amazon Linux 2023 (python3.12 and later), Amazon Linux 2 before.
_GLIBC_AL2023 = (2, 34)
_GLIBC_AL2 = (2, 26)
_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}


class DependencyInstallError(RuntimeError):
    """pip could not install the functions' requirements (and the cache had no copy)."""


@dataclass(frozen=True)
class LambdaPlatform:
    """What a compiled wheel must be built for: the runtime's CPython, CPU and glibc."""

    python_version: str  # "3.14"
    machine: str  # "aarch64"
    glibc: tuple[int, int]

    @classmethod
    def of(cls, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> LambdaPlatform:
        if not runtime.name.startswith("python3."):
            raise ValueError(f"{runtime.name} is not a Python runtime")
        version = runtime.name.removeprefix("python")
        minor = int(version.split(".")[1])
        return cls(
            python_version=version,
            machine=_MACHINES[architecture.name],
            glibc=_GLIBC_AL2023 if minor >= 12 else _GLIBC_AL2,
        )

    @property
    def pip_platforms(self) -> list[str]:
        """Every manylinux tag the runtime's glibc accepts, newest first (pip prefers earlier ones).

        pip takes ``--platform`` values literally: ``manylinux2014_aarch64`` alone would miss
        wheels tagged only ``manylinux_2_28_aarch64`` (PEP 600), so each glibc up to the runtime's
        is listed, and ``manylinux2014`` (= ``manylinux_2_17``) for wheels with the legacy tag only.
        """
        major, newest = self.glibc
        tags = [f"manylinux_{major}_{minor}_{self.machine}" for minor in range(newest, 16, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    @property
    def python_tag(self) -> str:
        """``cp314`` for 3.14: the tag of a wheel or extension module built for this CPython."""
        return "cp" + self.python_version.replace(".", "")


@dataclass(frozen=True)
class Dependencies:
    """``requirements`` installed by pip for ``platform``, cached under ``cache_root``."""

    platform: LambdaPlatform
    requirements: Path = REQUIREMENTS
    cache_root: Path = CACHE_ROOT

    def pip_options(self) -> list[str]:
        options = [
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            self.platform.python_version,
        ]
        for platform in self.platform.pip_platforms:
            options += ["--platform", platform]
        return [*options, "--no-compile", "--disable-pip-version-check"]

    @property
    def key(self) -> str:
        """Hash of the requirements file and the pip options (platform, Python version)."""
        inputs = {
            "format": _CACHE_FORMAT,
            "requirements": self.requirements.read_text(encoding="utf-8"),
            "pip": self.pip_options(),
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def entry(self) -> Path:
        """This key's cache entry."""
        return self.cache_root / self.key

    @property
    def directory(self) -> Path:
        """The installed packages: what goes on the functions' ``sys.path``."""
        return self.entry / "site-packages"

    def pip_command(self, target: Path | None = None) -> list[str]:
        target = target or self.directory
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--target",
            str(target),
            *self.pip_options(),
            "-r",
            str(self.requirements),
        ]

    def ensure(self) -> Path:
        """The cached packages, installed first if the cache has none for this key."""
        if self.directory.is_dir():
            return self.directory
        self.entry.mkdir(parents=True, exist_ok=True)
        # pip installs into a directory of its own that becomes the cache entry's only once
        # complete: an interrupted or failed install leaves no half-filled cache, and of two
        # synthesizers installing at once (pytest -n 2) the first to finish wins.
        staging = Path(tempfile.mkdtemp(prefix=".pip-", dir=self.entry))
        try:
            self._install(staging / "site-packages")
            try:
                (staging / "site-packages").rename(self.directory)
            except OSError:
                if not self.directory.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.directory

    def copy_into(self, out: Path) -> None:
        source = self.ensure()
        for entry in source.iterdir():
            if entry.name in _IGNORED_DEPENDENCY_ROOTS or _IGNORED_DEPENDENCIES(str(source), [entry.name]):
                continue
            if entry.is_dir():
                shutil.copytree(entry, out / entry.name, ignore=_IGNORED_DEPENDENCIES, dirs_exist_ok=True)
            else:
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy2(entry, out / entry.name)

    def _install(self, target: Path) -> None:
        print(
            f"Installing {self._relative(self.requirements)} for python{self.platform.python_version} "
            f"{self.platform.machine} into {self._relative(self.cache_root / self.key)} ...",
            file=sys.stderr,
            flush=True,
        )
        command = self.pip_command(target)
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise DependencyInstallError(self._failure(str(error))) from error
        if result.returncode != 0:
            raise DependencyInstallError(self._failure(result.stderr or result.stdout))

    def _failure(self, output: str) -> str:
        said = "\n".join(output.strip().splitlines()[-15:])
        return (
            f"Could not install the Lambda functions' dependencies ({self._relative(self.requirements)}) "
            f"for python{self.platform.python_version} {self.platform.machine}: they are not cached in "
            f"{self._relative(self.cache_root)} yet and pip failed. Synthesis needs PyPI once per change "
            "of the requirements (later synths reuse the cache offline); with network access, run:\n\n"
            f"  {shlex.join(self.pip_command())}\n\npip said:\n{said}"
        )

    @staticmethod
    def _relative(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


@jsii.implements(ILocalBundling)
class LocalBundler:
    """The code asset: the handlers, the service models and, unless they are in a layer, the packages."""

    def __init__(
        self,
        source: Path = LAMBDA_SOURCE,
        dependencies: Dependencies | None = None,
        generated: dict[str, bytes] | None = None,
    ) -> None:
        self._source = source
        self._dependencies = dependencies
        self._generated = generated or {}

    def try_bundle(self, output_dir: str, *, image: DockerImage | None = None, **_: Any) -> bool:
        out = Path(output_dir)
        if self._dependencies is not None:
            self._dependencies.copy_into(out)
        shutil.copytree(self._source, out, ignore=_IGNORED, dirs_exist_ok=True)
        _copy_service_models(out)
        for name, content in self._generated.items():
            (out / name).write_bytes(content)
        # Lambda executes these (AWS_LAMBDA_EXEC_WRAPPER); a checkout may have lost the mode bits.
        for executable in (out / "exec_wrappers").glob("*"):
            executable.chmod(0o755)
        return True


@jsii.implements(ILocalBundling)
class LayerBundler:
    """A Python layer: the packages under ``python/``, which the runtime puts on ``sys.path``."""

    def __init__(self, dependencies: Dependencies) -> None:
        self._dependencies = dependencies

    def try_bundle(self, output_dir: str, *, image: DockerImage | None = None, **_: Any) -> bool:
        self._dependencies.copy_into(Path(output_dir) / "python")
        return True


def code_asset(
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    *,
    with_dependencies: bool,
    generated: dict[str, bytes] | None = None,
) -> lambda_.Code:
    """One asset for every function; Docker is named as the fallback CDK requires but never used.
    ``generated`` files (name -> content) are written at the asset's root: configuration the
    functions read, made from the stack's settings."""
    dependencies = Dependencies(LambdaPlatform.of(runtime, architecture)) if with_dependencies else None
    return lambda_.Code.from_asset(
        str(LAMBDA_SOURCE),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=runtime.bundling_image,
            local=LocalBundler(dependencies=dependencies, generated=generated),
        ),
    )


def dependencies_layer(
    scope: Construct,
    construct_id: str,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    dependencies: Dependencies | None = None,
) -> lambda_.LayerVersion:
    """One layer with the packages of ``lambdas/requirements.txt`` for ``runtime`` on ``architecture``."""
    dependencies = dependencies or Dependencies(LambdaPlatform.of(runtime, architecture))
    # The asset's source is the cache entry (pip fills it when the layer is bundled). CDK stages an
    # asset once per source and bundling options in a process: the code asset's source, lambdas/,
    # would make the layer that asset.
    dependencies.entry.mkdir(parents=True, exist_ok=True)
    code = lambda_.Code.from_asset(
        str(dependencies.entry),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=runtime.bundling_image, local=LayerBundler(dependencies)),
    )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[runtime],
        compatible_architectures=[architecture],
        description=f"lambdas/requirements.txt installed for {runtime.name} on {architecture.name}",
    )


def _copy_service_models(out: Path) -> None:
    for service, source in bundled_model_files().items():
        target = out / "harness" / "service_models" / service / "service-2.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        # botocore may ship the model gzip-compressed; the bundle carries plain JSON.
        data = source.read_bytes()
        target.write_bytes(gzip.decompress(data) if source.suffix == ".gz" else data)
