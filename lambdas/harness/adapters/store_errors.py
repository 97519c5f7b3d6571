"""Where AWS errors become the domain's: a store that is throttled or unreachable raises
``TransientStoreError`` (the state machine retries the step); other errors pass unchanged."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from harness.errors import TransientStoreError

# Error codes that say "try again": throttling and the service's own faults.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "KMSInternalException",
        "TransactionInProgressException",
    }
)


def is_transient(error: Exception) -> bool:
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in TRANSIENT_CODES
    # Connection failures, read timeouts and other client-side faults.
    return isinstance(error, BotoCoreError)


class TransientErrors:
    """A boto3 client whose calls raise ``TransientStoreError`` for transient failures."""

    def __init__(self, client: Any, store: str) -> None:
        self._client = client
        self._store = store

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        call = getattr(self._client, operation)

        @functools.wraps(call)
        def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return call(*args, **kwargs)
            except (ClientError, BotoCoreError) as error:
                if is_transient(error):
                    raise TransientStoreError(
                        f"the {self._store} was unavailable ({type(error).__name__}); the step is retried"
                    ) from error
                raise

        return translated
