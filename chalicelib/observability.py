"""Structured logs and metrics for every function, with Powertools.

Logs are JSON lines (Powertools Logger) with the Lambda context injected by a Chalice
middleware (function name, request id, cold start) and correlation fields per record
(`api_key_id`, `session_id`, `event_id`, `attempt`, `outcome`, ...). Metrics are CloudWatch
EMF blobs printed to stdout (Powertools Metrics): CloudWatch Logs turns them into metrics with
no API call and no extra latency. Names and dimensions are listed here, once; the packaged
template's dashboard and alarms (infra/package.py) read the same names.

Locally `make run` renders these log records as one readable line each and leaves metrics
off (POWERTOOLS_METRICS_DISABLED); on AWS both are on.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from chalicelib.domain.errors import ServiceError

SERVICE = "session-service"
NAMESPACE = "SessionService"

# The metrics, by name (dimension `service` always; the ones listed also by that dimension).
PROGRESS_ACCEPTED = "ProgressAccepted"
PROGRESS_REPLAYED = "ProgressReplayed"
PROGRESS_REJECTED = "ProgressRejected"  # by ErrorCode
WEBHOOK_ATTEMPTS = "WebhookAttempts"  # by Outcome: delivered, retrying, throttled, failed, gone
WEBHOOK_LATENCY = "WebhookLatency"  # ms, one per attempt
WEBHOOK_LAG = "WebhookDeliveryLag"  # seconds from the change (occurred_at) to its delivery
WEBHOOK_DEAD_LETTERED = "WebhookDeadLettered"  # by Source: delivery (budget spent), sqs (safety net)
SESSIONS_ABANDONED = "IdleSessionsAbandoned"
STREAM_BATCH_FAILURES = "StreamBatchFailures"  # by Function

Unit = MetricUnit
_flushing = threading.Lock()



class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to sys.stdout as it is then (Lambda's never changes; a local run or
    a test that captures output may swap it after this module is imported)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE), logger_handler=_Stdout())
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
                  service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """Add a data point. With `dimensions` it goes out at once in a blob of its own (EMF
    applies a blob's dimensions to all its metrics); without, with the invocation's blob."""
    if not dimensions:
        metrics.add_metric(name=name, unit=unit, value=value)
        return
    single = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    for key, dimension in dimensions.items():
        single.add_dimension(name=key, value=dimension)
    single.add_metric(name=name, unit=unit, value=value)
    single.flush_metrics()


@contextmanager
def rejections_counted(name: str, **fields: Any) -> Iterator[None]:
    """Count (under `name`, by error code) and log a request refused with a ServiceError."""
    try:
        yield
    except ServiceError as exc:
        count(name, ErrorCode=exc.code)
        logger.info("request refused", extra={**fields, "error_code": exc.code, "status": exc.status})
        raise


def progress_outcome(outcome: str, **fields: Any) -> None:
    """A progress report `accepted` or `replayed`: counted, and logged with its fields."""
    count(PROGRESS_ACCEPTED if outcome == "accepted" else PROGRESS_REPLAYED)
    logger.info(f"progress {outcome}", extra=fields)


def flush() -> None:
    """Print the invocation's metrics (if any: an empty flush only warns). Powertools keeps
    one metric set per process; the lock matters only where one process serves requests on
    several threads (the local stack)."""
    with _flushing:
        if metrics.provider.metric_set:
            metrics.flush_metrics()


def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every handler: the Lambda context in every log record of the
    invocation (Powertools' inject_lambda_context, state cleared per invocation), the calling
    API key's id on HTTP requests, and the invocation's metrics flushed at its end."""
    from chalice.app import ConvertToMiddleware, Request

    key_id = None
    context = getattr(event, "lambda_context" if isinstance(event, Request) else "context", None)
    if isinstance(event, Request):
        key_id = ((event.context or {}).get("authorizer") or {}).get("key_id")

    def handle(inner: Any) -> Any:
        if key_id:
            logger.append_keys(api_key_id=key_id)
        return get_response(inner)

    try:
        if context is None:  # called without a Lambda context (a direct call in a test)
            return handle(event)
        return ConvertToMiddleware(logger.inject_lambda_context(clear_state=True))(event, handle)
    finally:
        flush()
