#!/usr/bin/env python3
"""What the model-call function's cold start pays for imports, and what the model SDKs would add.

Each measurement is a fresh interpreter importing modules as the Lambda runtime imports the handler
module (``handlers.loop``, PYTHONPATH=lambdas), under ``python -X importtime``; the time is the sum
of the top-level imports the statement triggers, interpreter start-up excluded. Scenarios run
round-robin, ``--runs`` times each, after one unrecorded warm-up round. Compare rows by their ratio to
the handler's row: absolute milliseconds depend on the machine and on how busy it is.

    python bench/cold_start.py [--runs 15] [--no-bytecode]

See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SOURCE = REPO_ROOT / "lambdas"
#: The module of CallModelFunction's handler (``handlers.loop.call_model``, stacks/components/functions.py).
HANDLER_MODULE = "handlers.loop"
#: Modules whose presence after the imports tells that an SDK (or its pydantic) was loaded.
SDK_MODULES = ("openai", "google.genai", "pydantic")
#: What the Lambda service sets and the handlers' import-time objects (Powertools) read.
LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench-cold-start",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "agent-harness",
    "POWERTOOLS_METRICS_NAMESPACE": "AgentHarness",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
_START = "@@bench-start"
_END = "@@bench-end"


@dataclass
class Scenario:
    label: str
    modules: tuple[str, ...]
    samples_ms: list[float] = field(default_factory=list)
    by_package: list[dict[str, float]] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    skipped: str | None = None


def scenarios() -> list[Scenario]:
    return [
        Scenario(f"{HANDLER_MODULE} (handler module)", (HANDLER_MODULE,)),
        Scenario("  + harness.providers.openai", (HANDLER_MODULE, "harness.providers.openai")),
        Scenario("  + harness.providers.gemini", (HANDLER_MODULE, "harness.providers.gemini")),
        Scenario("  + openai SDK", (HANDLER_MODULE, "openai")),
        Scenario("  + google.genai SDK", (HANDLER_MODULE, "google.genai")),
        Scenario("openai SDK alone", ("openai",)),
        Scenario("google.genai SDK alone", ("google.genai",)),
    ]


def _environment(pycache_prefix: str, *, bytecode: bool) -> dict[str, str]:
    """Lambda's variables; bytecode in a private cache, filled by the warm-up round or never written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "POWERTOOLS_"))}
    env |= LAMBDA_ENVIRONMENT
    env["PYTHONPATH"] = str(LAMBDA_SOURCE)
    env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _script(modules: tuple[str, ...]) -> str:
    imports = "".join(f"import {module}\n" for module in modules)
    return (
        f"import sys\nsys.stderr.write({_START!r} + '\\n')\n{imports}sys.stderr.write({_END!r} + '\\n')\n"
        f"import json\nprint(json.dumps([m for m in {SDK_MODULES!r} if m in sys.modules]))\n"
    )


def parse_importtime(stderr: str) -> tuple[float, dict[str, float]]:
    """The statement's import time (ms) and each top-level package's own share of it (ms).

    The total adds up the cumulative time of the top-level imports between the markers (nested
    imports are indented under their importer); a package's share adds up the self time of its
    modules wherever they were imported from.
    """
    lines = stderr.splitlines()
    start, end = lines.index(_START), lines.index(_END)
    total_us = 0
    by_package: dict[str, float] = {}
    for line in lines[start + 1 : end]:
        if not line.startswith("import time:"):
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue  # the header line
        if not name.startswith("  "):
            total_us += int(cumulative)
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(own) / 1000
    return total_us / 1000, by_package


def run_once(scenario: Scenario, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _script(scenario.modules)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        scenario.skipped = f"import failed: {last}"
        return
    total_ms, by_package = parse_importtime(result.stderr)
    scenario.samples_ms.append(total_ms)
    scenario.by_package.append(by_package)
    scenario.loaded = json.loads(result.stdout.strip().splitlines()[-1])


def module_exists(module: str, env: dict[str, str]) -> bool:
    probe = f"import importlib.util, sys\nsys.exit(0 if importlib.util.find_spec({module!r}) else 3)"
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def report(rows: list[Scenario], runs: int, bytecode: bool) -> str:
    baseline = rows[0].samples_ms and statistics.median(rows[0].samples_ms)
    lines = [
        f"python {sys.version.split()[0]} ({sys.executable}), {runs} runs per row, "
        f"bytecode cache {'used' if bytecode else 'not used (every module compiled from source)'}",
        "",
        f"{'imports':38} {'median ms':>10} {'p90 ms':>8} {'x handler':>10}  SDK modules loaded",
    ]
    for row in rows:
        if row.skipped or not row.samples_ms:
            lines.append(f"{row.label:38} {'skipped: ' + (row.skipped or 'no samples')}")
            continue
        median = statistics.median(row.samples_ms)
        ratio = f"{median / baseline:.2f}" if baseline else "-"
        loaded = ", ".join(row.loaded) or "none"
        lines.append(f"{row.label:38} {median:10.1f} {p90(row.samples_ms):8.1f} {ratio:>10}  {loaded}")
    if rows[0].by_package:
        heaviest = heaviest_packages(rows[0].by_package)
        lines += ["", f"Where the handler module's time goes (median self time by package, ms): {heaviest}"]
    return "\n".join(lines)


def heaviest_packages(runs: list[dict[str, float]], count: int = 6) -> str:
    packages = {package for run in runs for package in run}
    medians = {p: statistics.median(run.get(p, 0.0) for run in runs) for p in packages}
    top = sorted(medians.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{package} {ms:.0f}" for package, ms in top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured runs per row (default 15)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile every module from source, as for a bundle without .pyc files",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cold-start-pycache-") as pycache_prefix:
        env = _environment(pycache_prefix, bytecode=not args.no_bytecode)
        rows = scenarios()
        for row in rows:
            missing = [m for m in row.modules if not module_exists(m, env)]
            if missing:
                row.skipped = f"{', '.join(missing)} not found"
        active = [row for row in rows if not row.skipped]
        for round_number in range(args.runs + 1):
            for row in active:
                if row.skipped:
                    continue
                run_once(row, env)
                if round_number == 0:  # warm-up round: not recorded
                    row.samples_ms.clear()
                    row.by_package.clear()
    print(report(rows, args.runs, bytecode=not args.no_bytecode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
