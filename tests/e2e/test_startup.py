"""Starting and stopping the local runtime on a checkout whose stack is not synthesized yet."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from e2e_support import REPO_ROOT, RuntimeProcess

pytestmark = pytest.mark.e2e

# What `python -m local_runtime` reads from a checkout. Generated caches stay behind, except
# `.build` (the functions' third-party packages): linked, so synthesis never needs the network.
_CHECKOUT = ("app.py", "cdk.json", "pyproject.toml", "requirements.txt", "lambdas", "stacks", "local_runtime")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def _fresh_checkout(destination: Path) -> Path:
    """A copy of the sources with no synthesized stack cached yet (cdk.out is not copied)."""
    destination.mkdir()
    for name in _CHECKOUT:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=_SKIPPED)
        elif source.exists():
            shutil.copy2(source, destination / name)
    if (REPO_ROOT / ".build").exists():
        os.symlink(REPO_ROOT / ".build", destination / ".build")
    return destination


def test_two_runtimes_started_together_on_a_fresh_checkout_start_and_stop_cleanly(tmp_path: Path) -> None:
    """Two runtimes of one checkout (two terminals, or `make test`'s pytest workers each starting
    one for these tests) may both find the stack not synthesized yet: both must start. And a
    runtime that synthesized the stack itself must still stop on SIGTERM, saving its state."""
    checkout = _fresh_checkout(tmp_path / "checkout")
    runtimes = [RuntimeProcess(tmp_path / f"state-{n}", repo_root=checkout) for n in range(2)]
    started: list[str] = ["not started", "not started"]

    def start(n: int) -> None:
        try:
            runtimes[n].start()
            started[n] = "ready"
        except RuntimeError:
            started[n] = "did not start:\n" + runtimes[n].log(last=6, width=400)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(2)]
    stopped: list[str] = []
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
    finally:
        for runtime in runtimes:
            was_running = runtime.running
            began = time.monotonic()
            code = runtime.stop()
            if was_running:
                stopped.append(
                    "stopped"
                    if code == 0 and "Stopping: saving state..." in runtime.output
                    else f"exit {code} after {time.monotonic() - began:.0f} s:\n{runtime.log(80)}"
                )
    assert started == ["ready", "ready"], "\n\n".join(started)
    assert stopped == ["stopped", "stopped"], "\n\n".join(stopped)
