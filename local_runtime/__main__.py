"""``python -m local_runtime``: the harness on this machine, at http://127.0.0.1:8000 by default."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

# Set before the CDK (jsii) is imported: Node 20's end-of-life banner is noise here.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from stacks.app_factory import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO_ROOT / ".harness-local",
        help="where harnesses, sessions, events and audit objects persist between runs",
    )
    parser.add_argument(
        "--vault-secret",
        action="append",
        default=[],
        metavar="NAME=ENV_VAR",
        help="put the value of environment variable ENV_VAR into the vault as NAME (for example "
        "openai/default=OPENAI_API_KEY: apiKeyArn ...:token-vault/openai/apikeycredentialprovider/default); "
        "repeatable; the value is never printed or saved",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also start the demo bank (an OpenAPI target of the gateway 'demo', with an approval policy) "
        "and the advisor MCP server; then run python -m local_runtime.demo_session",
    )
    parser.add_argument(
        "--demo-bank-port", type=int, default=8001, help="the demo bank's port (default 8001)"
    )
    parser.add_argument(
        "--demo-advisor-port", type=int, default=8002, help="the advisor MCP server's port (default 8002)"
    )
    args = parser.parse_args(argv)
    vault_secrets = {}
    for entry in args.vault_secret:
        name, _, variable = entry.partition("=")
        if not name or not variable or variable not in os.environ:
            parser.error(f"--vault-secret {entry!r}: give NAME=ENV_VAR with ENV_VAR set in the environment")
        vault_secrets[name] = os.environ[variable]
    # The emulator's own request log would drown the API's one line per request.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from local_runtime.runtime import LocalRuntime
    from local_runtime.synth import synthesize

    context = None
    demo = None
    if args.demo:
        from local_runtime.demo import DemoServers

        demo = DemoServers(bank_port=args.demo_bank_port, advisor_port=args.demo_advisor_port)
        try:
            demo.start()
        except OSError as error:
            print(
                f"Cannot start the demo servers: {error.strerror}. Choose other --demo-*-port.",
                file=sys.stderr,
            )
            return 2
        context = demo.context
        vault_secrets |= demo.vault_secrets
    print("Synthesizing the stack (cached while sources are unchanged)...", flush=True)
    runtime = LocalRuntime(
        synthesize(context),
        port=args.port,
        state_dir=args.state_dir,
        vault_secrets=vault_secrets,
        synth_context=context,
    )
    try:
        url = runtime.start()
    except OSError as error:
        print(
            f"Cannot serve on 127.0.0.1:{args.port}: {error.strerror}. Choose another --port.",
            file=sys.stderr,
        )
        if demo is not None:
            demo.stop()
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"Agent harness local runtime ready at {url}", flush=True)
    if demo is not None:
        print(
            f"Demo tools: bank {demo.bank_url} (gateway 'demo'), advisor {demo.advisor_url}. Run: "
            f"python -m local_runtime.demo_session --url {url} --advisor-port {demo.advisor_port}",
            flush=True,
        )
    # Wait in short slices: a signal may be delivered to another thread, and Python runs its
    # handler only when the main thread runs bytecode again.
    while not stop.wait(timeout=0.2):
        pass
    print("Stopping: saving state...", flush=True)
    runtime.stop()
    if demo is not None:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
