"""boto3 clients, created once per process (Lambda reuses them across invocations).

Endpoints come from the standard AWS configuration (``AWS_ENDPOINT_URL`` points them at the
local runtime's emulator), so nothing here knows whether it runs on AWS or on a laptop.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)


@functools.cache
def client(service: str, *, read_timeout: int | None = None, total_max_attempts: int | None = None) -> Any:
    """The shared client of ``service``; callers with their own time budget (a hook's
    ``timeoutSeconds``) override the read timeout and the attempt count, one cached client each."""
    config = _CONFIG
    if read_timeout is not None:
        config = config.merge(Config(read_timeout=read_timeout))
    if total_max_attempts is not None:
        config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": total_max_attempts}))
    return boto3.client(service, config=config)
