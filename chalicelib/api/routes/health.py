"""Health: liveness, readiness, and a summary with the version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api.http import json_response
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource

if TYPE_CHECKING:
    from chalicelib.api.schemas import HealthSummary, Live, Ready
    from chalicelib.services import health
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    HealthSummary, Live, Ready = lazy("chalicelib.api.schemas", "HealthSummary", "Live", "Ready")
    health = lazy("chalicelib.services", "health")

bp = Resource(__name__)
route = bp.declare


@route("/health/live", "GET", summary="The process answers", responses={200: Live}, scope="public")
def health_live() -> Response:
    """200 while the process answers (no dependency is checked)."""
    return json_response({"status": "ok"})


@route("/health/ready", "GET", summary="The table and the queue answer",
       responses={200: Ready, 503: Ready}, scope="public")
def health_ready() -> Response:
    """200 when the table and the delivery queue answer; 503 (with each check) when not."""
    ok, checks = health.ready()
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                         200 if ok else 503)


@route("/health", "GET", summary="Health summary with version",
       responses={200: HealthSummary, 503: HealthSummary}, scope="public")
def health_summary() -> Response:
    """The version and each dependency's state: 200 ok, 503 degraded."""
    ok, body = health.summary()
    return json_response(body, 200 if ok else 503)
