"""What the gateway-target tests share: the demo bank's credentials in a stand-in vault and a clock
the code under test moves by sleeping. Their fixtures (a fresh OAuth token cache per test, the
running bank) are in ``conftest.py``."""

from __future__ import annotations

import json

API_KEY = "sk-live-API-KEY-0123456789"
CLIENT_ID = "harness-client"
CLIENT_SECRET = "CLIENT-SECRET-abcdef123456"
SECRETS = {
    "bank/api-key": API_KEY,
    "bank/oauth-client": json.dumps({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}),
}


def lookup(name: str) -> str:
    """The vault, for these tests: secret name -> value."""
    return SECRETS[name]


class Clock:
    """A clock that moves only when told to, or when the code under test sleeps."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
