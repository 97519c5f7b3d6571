"""The functions' code asset, bundled on this machine: no Docker, no network.

The asset is ``lambdas/`` plus the pure-Python packages the handlers import that the Lambda Python
runtime does not provide, copied from the interpreter that runs ``cdk synth``, plus the two
botocore service models the API contract is read from (the runtime's botocore may predate them).
"""

from __future__ import annotations

import gzip
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from harness.contract import bundled_model_files

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SOURCE = REPO_ROOT / "lambdas"

#: Runtime dependencies (``requirements.txt``) beyond the boto3/botocore the Lambda runtime ships.
#: All are pure Python, so a copy from any platform runs on arm64.
VENDORED_PACKAGES = ("aws_lambda_powertools", "jmespath", "typing_extensions")

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "tests", ".mypy_cache", ".pytest_cache")


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Copies the handlers, the vendored packages and the service models into the asset directory."""

    def __init__(self, source: Path = LAMBDA_SOURCE) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, *, image: DockerImage | None = None, **_: Any) -> bool:
        out = Path(output_dir)
        shutil.copytree(self._source, out, ignore=_IGNORED, dirs_exist_ok=True)
        for package in VENDORED_PACKAGES:
            _copy_installed(package, out)
        _copy_service_models(out)
        return True


def code_asset(runtime: lambda_.Runtime) -> lambda_.Code:
    """One asset for every function; Docker is named as the fallback CDK requires but never used."""
    return lambda_.Code.from_asset(
        str(LAMBDA_SOURCE),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=runtime.bundling_image, local=LocalBundler()),
    )


def _copy_installed(package: str, out: Path) -> None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{package} is not installed in this interpreter; pip install -r requirements.txt")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: copy its directory
        shutil.copytree(origin.parent, out / package, ignore=_IGNORED, dirs_exist_ok=True)
    else:  # a single-module distribution such as typing_extensions
        shutil.copy2(origin, out / origin.name)


def _copy_service_models(out: Path) -> None:
    for service, source in bundled_model_files().items():
        target = out / "harness" / "service_models" / service / "service-2.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        # botocore may ship the model gzip-compressed; the bundle carries plain JSON.
        data = source.read_bytes()
        target.write_bytes(gzip.decompress(data) if source.suffix == ".gz" else data)
