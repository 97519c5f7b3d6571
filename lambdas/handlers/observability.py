"""Powertools objects, created once and shared by every handler (configured by environment:
POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL). Metrics are emitted with ``single_metric`` where
they are measured (``handlers.dependencies``), under POWERTOOLS_METRICS_NAMESPACE."""

from aws_lambda_powertools import Logger, Tracer

logger = Logger()
tracer = Tracer()
