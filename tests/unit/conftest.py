"""Fixtures of the unit tests that call the demo bank (see bank_target.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.tools.oauth2_client import TOKEN_CACHE
from local_runtime.demo_bank import DemoBank, serve
from tests.unit.bank_target import API_KEY, CLIENT_ID, CLIENT_SECRET


@pytest.fixture(autouse=True)
def fresh_token_cache() -> Iterator[None]:
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture
def bank() -> Iterator[DemoBank]:
    with serve(api_key=API_KEY, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as running:
        yield running
