"""Webhook messages: the payload built from an event item, Standard Webhooks signing, and
one HTTP delivery attempt (stdlib only: nothing heavy on the cold-start path)."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from .clock import seconds_between

USER_AGENT = "session-service-webhooks/1"


def wanted(event: dict[str, Any], event_types: tuple[str, ...]) -> bool:
    """Whether configuration asks for this event: `progress_update` means every progress
    report, `progress_update:DONE` only DONE reports."""
    kind = event.get("event_type")
    return kind in event_types or f"{kind}:{event.get('step_status')}" in event_types


def payload(event: dict[str, Any]) -> dict[str, Any]:
    """The webhook body for one event item (the seed's fields plus ids and ordering)."""
    end = event.get("ended_at") or event["occurred_at"]
    return {
        "event_type": event["event_type"],
        "event_id": event["event_id"],
        "occurred_at": event["occurred_at"],
        "sequence": event["sequence"],
        "session_id": event["session_id"],
        "user_id": event["user_id"],
        "manual_id": event["manual_id"],
        "previous_step": event["previous_step"],
        "current_step": event["current_step"],
        "total_steps": event["total_steps"],
        "step": event.get("step"),
        "step_status": event.get("step_status"),
        "session_status": event["session_status"],
        "session_duration_seconds": max(0.0, seconds_between(event["started_at"], end)),
        "is_completed": event["session_status"] == "completed",
        "completed_steps": event.get("completed_steps", []),
        "out_of_order": event.get("out_of_order", False),
        "reason": event.get("reason"),
        "summary": event.get("summary"),
    }


def signed_headers(secret: str, message_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers: webhook-id, webhook-timestamp, webhook-signature (v1)."""
    from standardwebhooks.webhooks import Webhook

    moment = now or datetime.now(timezone.utc)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(moment.timestamp()))}
    if secret:
        headers["webhook-signature"] = Webhook(secret).sign(message_id, moment, body)
    return headers


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST."""

    status_code: int | None
    error: str | None
    latency_ms: int
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop; retrying would be rude and useless."""
        return self.status_code == 410


def post(url: str, body: str, headers: dict[str, str], timeout: float) -> Attempt:
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return Attempt(response.status, None, elapsed())
    except urllib.error.HTTPError as exc:
        return Attempt(exc.code, None, elapsed(), _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, socket.timeout, ConnectionError, ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(None, f"{type(reason).__name__}: {reason}"[:300], elapsed())


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
