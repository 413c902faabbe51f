"""Health: liveness (the process answers) and readiness (the table and the queue answer)."""

from __future__ import annotations

from typing import Any

from chalicelib import __version__
from chalicelib.config import get_settings
from chalicelib.db import table
from chalicelib.pipeline import queue


def ready() -> tuple[bool, dict[str, Any]]:
    """One cheap data-plane call per dependency; says which one failed."""
    checks: dict[str, Any] = {}
    try:
        table.ping()
        checks["table"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; report its kind
        checks["table"] = f"error: {type(exc).__name__}"
    try:
        queue.get_client().get_queue_attributes(
            QueueUrl=get_settings().delivery_queue_url, AttributeNames=["QueueArn"])
        checks["queue"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["queue"] = f"error: {type(exc).__name__}"
    return all(v == "ok" for v in checks.values()), checks


def summary() -> tuple[bool, dict[str, Any]]:
    ok, checks = ready()
    return ok, {"status": "ok" if ok else "degraded", "version": __version__, "checks": checks}
