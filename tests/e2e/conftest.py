"""End-to-end fixtures: the local runtime started as a user starts it, in its own process.

``python -m local_runtime --port N --state-dir DIR`` is launched from the repository root; the
tests talk to it only over HTTP on 127.0.0.1 with the real boto3 clients (or SigV4-signed raw
requests for what boto3 refuses to send).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Api, RuntimeProcess, clients


@pytest.fixture(scope="session")
def start_lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lock file shared by every pytest-xdist worker of this run (their base temps are siblings)."""
    return tmp_path_factory.getbasetemp().parent / "e2e-runtime-start.lock"


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory, start_lock: Path) -> Iterator[RuntimeProcess]:
    process = RuntimeProcess(tmp_path_factory.mktemp("runtime-state"), start_lock=start_lock)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def runtime_url(runtime: RuntimeProcess) -> str:
    assert runtime.url is not None
    return runtime.url


@pytest.fixture(scope="session")
def control(runtime_url: str) -> Any:
    return clients(runtime_url)[0]


@pytest.fixture(scope="session")
def data(runtime_url: str) -> Any:
    return clients(runtime_url)[1]


@pytest.fixture(scope="session")
def api(runtime_url: str) -> Api:
    return Api(runtime_url)


@pytest.fixture
def start_runtime(tmp_path: Path, start_lock: Path) -> Iterator[Callable[[Path | None], RuntimeProcess]]:
    """Start separate runtimes (for restart tests); every one started here is stopped at teardown."""
    started: list[RuntimeProcess] = []

    def start(state_dir: Path | None = None) -> RuntimeProcess:
        process = RuntimeProcess(state_dir or tmp_path / "state", start_lock=start_lock)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the runtime's recent output: the server side of what went wrong."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        runtime = getattr(item, "funcargs", {}).get("runtime")
        if isinstance(runtime, RuntimeProcess):
            report.sections.append(("local runtime output (last 60 lines)", runtime.log(60)))
