"""Webhook endpoints: what a receiver registered, as pure rules and models (no I/O).

An endpoint is a URL, an optional filter of event types, a signing secret (rotated with a
grace period during which both secrets sign) and a health record. The delivery pipeline fans
every event out to each enabled endpoint whose filter matches (chalicelib/pipeline).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from chalicelib.domain.models import Model, Request
from chalicelib.domain.vocabulary import INTEGRAL, Moment, Timestamp

MAX_ENDPOINTS = 20
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
DEFAULT_GRACE_SECONDS = 86_400
MAX_GRACE_SECONDS = 7 * 86_400
DEFAULT_ENDPOINT = "default"  # the endpoint WEBHOOK_URL / WEBHOOK_SECRET create or update
PING = "ping"  # the event type of POST /v1/webhook-endpoints/{id}/test
# Latency histogram buckets (upper bounds, ms) of an endpoint's stats: p50/p99 are read from
# them (as the bucket's upper bound), so recording a latency is one atomic ADD.
LATENCY_BUCKETS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)

EventType = Literal["session_created", "progress_update", "progress_update:DONE", "session_ended"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
EndpointUrl = Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=r"^[\x21-\x7e]+$")]
Description = Annotated[str, StringConstraints(max_length=500)]
EndpointId = Annotated[str, StringConstraints(pattern=r"^(?:ep_[0-9a-f]{16}|default)$")]
PingId = Annotated[str, StringConstraints(pattern=r"^evt_ping_[0-9a-f]{1,20}$")]


def new_endpoint_id() -> str:
    return "ep_" + secrets.token_hex(8)


def new_secret() -> str:
    """`whsec_` + base64 of 24 random bytes (Standard Webhooks' secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def fingerprint(value: str) -> str:
    """A short digest of a configuration value (to notice that WEBHOOK_SECRET changed
    without storing it twice)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def matches(event_types: list[str] | None, event: dict[str, Any]) -> bool:
    """Whether an endpoint's filter takes this event: None takes every event;
    `progress_update` every progress report, `progress_update:DONE` only DONE reports. A
    `ping` goes only where it was sent (the caller decides), never through a filter."""
    kind = event.get("event_type")
    if kind == PING:
        return False
    if event_types is None:
        return True
    return kind in event_types or f"{kind}:{event.get('step_status')}" in event_types


def signing_secrets(endpoint: dict[str, Any], now_epoch: float) -> list[Any]:
    """The secrets that sign a request now, as stored (encrypted, or a plain string): the
    current one, and the previous one while its grace period lasts (a receiver holding either
    verifies)."""
    found = [endpoint["secret"]] if endpoint.get("secret") else []
    previous = endpoint.get("previous_secret")
    if previous and float(endpoint.get("previous_expires_epoch") or 0) > now_epoch:
        found.append(previous)
    return found


def percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """The upper bound (ms) of the bucket holding the `fraction` quantile (None: no data).
    The last bucket is open: its latencies are reported as its lower bound's next step."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for bound in (*LATENCY_BUCKETS, LATENCY_BUCKETS[-1] * 2):
        seen += histogram.get(bound, 0)
        if seen >= rank:
            return bound
    return LATENCY_BUCKETS[-1] * 2


def bucket(latency_ms: int) -> int:
    """The histogram bucket (its upper bound) of one latency."""
    for bound in LATENCY_BUCKETS:
        if latency_ms <= bound:
            return bound
    return LATENCY_BUCKETS[-1] * 2


def group_for(endpoint_id: str, session_id: str) -> str:
    """The FIFO group of an endpoint's webhooks of one session: a slow endpoint holds back
    only its own group. The default endpoint keeps the session id (the group every webhook
    had before endpoints existed, so messages queued across an upgrade stay in order)."""
    if endpoint_id == DEFAULT_ENDPOINT:
        return session_id
    group = f"{endpoint_id}:{session_id}"
    return group if len(group) <= 128 else f"{endpoint_id}:{hashlib.sha256(session_id.encode()).hexdigest()}"


def dedup_for(endpoint_id: str, event_id: str) -> str:
    """The FIFO deduplication id of one event's message to one endpoint."""
    return event_id if endpoint_id == DEFAULT_ENDPOINT else f"{event_id}:{endpoint_id}"


def delivery_state(event: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    """One endpoint's delivery state on an event item ({} if never attempted). An event stored
    before endpoints existed keeps the default endpoint's state in its top-level fields."""
    state: dict[str, Any] = (event.get("deliveries") or {}).get(endpoint_id) or {}
    if not state and endpoint_id == DEFAULT_ENDPOINT and "delivery_round" in event:
        # only writes from before per-endpoint state set delivery_round at the top level
        return {"status": event.get("delivery_status"), "round": event.get("delivery_round"),
                "attempt_count": event.get("attempt_count", 0)}
    return state


# ---- the API's models ----------------------------------------------------------------------


def _unique(values: list[str] | None) -> list[str] | None:
    return None if values is None else sorted(set(values))


class EndpointCreate(Request):
    url: EndpointUrl = Field(description="Where webhooks are POSTed (https on AWS; http also locally).")
    description: Description | None = None
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=4)] | None = Field(
        None, description="Which events this endpoint gets (absent or null: every event).")
    enabled: bool = True

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return _unique(value)


def _never_null(*names: str) -> Any:
    """The schema of fields that may be left out but not sent as null (the model types them
    `X | None` only to tell "left out" apart)."""

    def strip(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            options = [o for o in field.pop("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1:
                field.update(options[0])
            field.pop("default", None)

    return strip


class EndpointPatch(Request):
    """Fields sent are changed; `event_types: null` takes every event again; `url` and
    `enabled` may be left out, never null."""

    model_config = ConfigDict(json_schema_extra=_never_null("url", "enabled"))

    url: EndpointUrl | None = None
    description: Description | None = None
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=4)] | None = None
    enabled: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return _unique(value)


class RotateSecret(Request):
    grace_seconds: Annotated[int, Field(strict=True, ge=0, le=MAX_GRACE_SECONDS), INTEGRAL] = DEFAULT_GRACE_SECONDS


class ReplayRequest(Request):
    model_config = ConfigDict(json_schema_extra={"x-rules": [
        "until, when given, is after since and at most 31 days later."]})

    since: Moment = Field(description="Start of the window (RFC 3339, with a time zone), included.")
    until: Moment | None = Field(None, description="End of the window, excluded (default: now).")
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        None, description="The previous answer's next_cursor, to go on.")
    limit: Annotated[int, Field(strict=True, ge=1, le=500), INTEGRAL] = 100


class EndpointStats(Model):
    attempts: int
    delivered: int
    success_rate: float | None
    p50_latency_ms: int | None
    p99_latency_ms: int | None
    last_error: str | None
    last_error_at: Timestamp | None
    last_success_at: Timestamp | None
    failing_since: Timestamp | None
    recent_attempts: list[dict[str, Any]] = Field(
        [], description="The endpoint's last 20 attempts, across batches, newest first (test pings included).")


class Endpoint(Model):
    endpoint_id: str
    url: str
    description: str | None
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    secret_rotated_at: Timestamp | None
    previous_secret_expires_at: Timestamp | None
    stats: EndpointStats


class EndpointCreated(Endpoint):
    secret: str = Field(description="The signing secret, shown only in this answer.")


class SecretRotated(Model):
    endpoint_id: str
    secret: str = Field(description="The new signing secret, shown only in this answer.")
    previous_secret_expires_at: Timestamp | None


class EndpointPage(Model):
    items: list[Endpoint]
    next_cursor: str | None


class EndpointUpdated(Endpoint):
    replay_hint: dict[str, str] | None = Field(
        None, description="When the endpoint was re-enabled: the replay body that re-sends what it missed.")


class TestSent(Model):
    endpoint_id: str
    event_id: str
    status: Literal["queued"]


class PingStatus(Model):
    endpoint_id: str
    event_id: str
    status: Literal["queued", "retrying", "delivered", "failed", "gone"] = Field(
        description="queued (not tried yet), retrying (the next attempt at next_attempt_at), delivered, "
                    "failed (every attempt spent) or gone (410: the endpoint is disabled).")
    attempt_count: int = Field(description="Attempts made so far.")
    max_attempts: int = Field(description="Attempts a ping may take (WEBHOOK_RETRY_SCHEDULE, as for any webhook).")
    next_attempt_at: Timestamp | None = Field(description="When the next attempt is due (while retrying).")
    created_at: Timestamp
    updated_at: Timestamp
    attempts: list[dict[str, Any]] = Field(
        description="Every attempt: attempt, of, outcome, status_code, error, latency_ms, at, retry_in_seconds.")


class ReplayProgress(Model):
    endpoint_id: str
    queued: int
    scanned: int
    next_cursor: str | None = Field(description="null: the window is done; otherwise send it back as cursor.")
    done: bool

