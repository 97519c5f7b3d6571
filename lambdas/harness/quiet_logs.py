"""Silencing a library's log while this thread handles a secret.

With DEBUG logging switched on (Lambda's log-level control sets the root logger), botocore writes
response bodies (``botocore.parsers``: a GetSecretValue answer, key included) and canonical
requests (``botocore.auth``: headers, session token included) to the function's log.
"""

from __future__ import annotations

import logging
import threading


class QuietWhile(logging.Filter):
    """A filter on ``logger_name`` that drops every record this thread logs inside ``with``."""

    def __init__(self, logger_name: str) -> None:
        super().__init__()
        self._active = threading.local()
        logging.getLogger(logger_name).addFilter(self)

    def __enter__(self) -> None:
        self._active.on = True

    def __exit__(self, *_: object) -> None:
        self._active.on = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self._active, "on", False)
