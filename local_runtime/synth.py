"""Synthesize the CDK app for the local runtime, reusing the output while the sources are unchanged."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from stacks.app_factory import REPO_ROOT, STACK_ID, build_app

# The local runtime's only difference from a deployment: the offline model is the default.
LOCAL_CONTEXT: dict[str, Any] = {
    "harness:defaultModel": {"liteLlmModelConfig": {"modelId": "local/deterministic"}}
}
_SOURCES = ("app.py", "cdk.json", "stacks", "lambdas", "requirements.txt")


def _fingerprint(context: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    for source in _SOURCES:
        path = REPO_ROOT / source
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(str(file.relative_to(REPO_ROOT)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def output_dir(context: dict[str, Any] | None = None) -> Path:
    """Where ``synthesize(context)`` writes the cloud assembly."""
    return REPO_ROOT / "cdk.out" / "local" / _fingerprint(LOCAL_CONTEXT | (context or {}))


def code_environment(template: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, str]:
    """Environment values that name files of the functions' code asset, made absolute: locally the
    handlers run from ``lambdas/``, the generated files (the gateway configuration) are in the
    synthesized asset, which the assets manifest names by the hash in the function's S3 key."""
    outdir = output_dir(context)
    manifest = json.loads((outdir / f"{STACK_ID}.assets.json").read_text())
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties", {})
        name = properties.get("Environment", {}).get("Variables", {}).get("GATEWAY_CONFIG_FILE")
        key = properties.get("Code", {}).get("S3Key")
        if not name or not isinstance(key, str):
            continue
        source = manifest["files"].get(key.removesuffix(".zip"), {}).get("source", {})
        if "path" in source:
            return {"GATEWAY_CONFIG_FILE": str(outdir / source["path"] / name)}
    return {}


def synthesize(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The synthesized template of the stack (cdk.out/local/<fingerprint>/)."""
    context = LOCAL_CONTEXT | (context or {})
    fingerprint = _fingerprint(context)
    outdir = REPO_ROOT / "cdk.out" / "local" / fingerprint
    template_path = outdir / f"{STACK_ID}.template.json"
    if not template_path.exists():
        outdir.parent.mkdir(parents=True, exist_ok=True)
        # Runtimes started together (make local beside the tests) must not synthesize into the
        # same folder at once: CDK's bundling folders would be removed under the other process.
        with open(outdir.parent / f"{fingerprint}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not template_path.exists():
                os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
                app, _ = build_app(context=context, outdir=str(outdir))
                app.synth()
    template: dict[str, Any] = json.loads(Path(template_path).read_text())
    return template
