"""Webhook endpoints through the API: registered (the secret shown once), listed, changed,
rotated, deleted; a test ping and a bounded replay of a time window to one endpoint. The
list the pipeline fans events out to, and its cache, is chalicelib/pipeline/targets.py."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

from chalicelib import sealing
from chalicelib.config import Settings, get_settings
from chalicelib.db import endpoints as records
from chalicelib.db import events
from chalicelib.domain import endpoints as rules
from chalicelib.domain.clock import from_iso, to_iso, utcnow
from chalicelib.domain.endpoints import (
    Endpoint,
    EndpointCreate,
    EndpointCreated,
    EndpointPage,
    EndpointPatch,
    EndpointStats,
    EndpointUpdated,
    PingStatus,
    ReplayProgress,
    ReplayRequest,
    SecretRotated,
    TestSent,
)
from chalicelib.domain.errors import (
    EndpointDisabled,
    EndpointExists,
    EndpointLimitReached,
    EndpointNotFound,
    EndpointUrlRefused,
    InvalidCursor,
    PingNotFound,
    ValidationFailed,
)
from chalicelib.domain.vocabulary import conforms
from chalicelib.pipeline import delivery, fanout, queue, targets, webhooks

REPLAY_SECONDS = 10.0  # per API request, like a redrive step
MAX_REPLAY_DAYS = 31


# ---- the URL check (the SSRF guard at registration) --------------------------------------


def check_url(url: str, settings: Settings | None = None) -> None:
    """Refuse a URL the pipeline would refuse to call: 400 `endpoint_url_refused`. https
    only, except where private targets are allowed (the local stack and the tests, where
    http is allowed too); the host must resolve, and on AWS to public addresses only."""
    settings = settings or get_settings()
    local = settings.webhook_allow_private_targets
    if not local and not url.lower().startswith("https://"):
        raise EndpointUrlRefused("Webhook endpoint URLs must use https.", url=url[:200])
    try:
        webhooks.check_target(url, allow_private=local)
    except webhooks.TargetRefused as exc:
        raise EndpointUrlRefused(f"This URL cannot receive webhooks: {exc}", url=url[:200]) from exc


# ---- views ---------------------------------------------------------------------------------


def _stats(stats: dict[str, Any]) -> EndpointStats:
    attempts = int(stats.get("attempts", 0))
    delivered = int(stats.get("delivered", 0))
    histogram = records.histogram(stats)
    return EndpointStats(
        attempts=attempts, delivered=delivered,
        success_rate=round(delivered / attempts, 4) if attempts else None,
        p50_latency_ms=rules.percentile(histogram, 0.5), p99_latency_ms=rules.percentile(histogram, 0.99),
        last_error=stats.get("last_error"), last_error_at=stats.get("last_error_at"),
        last_success_at=stats.get("last_success_at"), failing_since=stats.get("failing_since"),
        recent_attempts=records.recent_attempts(stats))


def view(item: dict[str, Any], stats: dict[str, Any] | None = None) -> Endpoint:
    return Endpoint(
        endpoint_id=item["endpoint_id"], url=item["url"], description=item.get("description"),
        event_types=item.get("event_types"), enabled=bool(item.get("enabled", True)),
        disabled_reason=item.get("disabled_reason"), disabled_at=item.get("disabled_at"),
        created_at=item["created_at"], updated_at=item.get("updated_at", item["created_at"]),
        secret_rotated_at=item.get("secret_rotated_at"),
        previous_secret_expires_at=item.get("previous_secret_expires_at") if item.get("previous_secret") else None,
        stats=_stats(stats or {}))


def _load(endpoint_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    item, stats = records.get_with_stats(endpoint_id) if conforms(rules.EndpointId, endpoint_id) else (None, {})
    if item is None:
        raise EndpointNotFound(f"No webhook endpoint '{endpoint_id}'.", endpoint_id=endpoint_id)
    return item, stats


# ---- the API -------------------------------------------------------------------------------


def create(body: EndpointCreate, *, endpoint_id: str | None = None, secret: str | None = None,
           extra: dict[str, Any] | None = None) -> EndpointCreated:
    """Register an endpoint (its secret shown only in this answer); 400 for a refused URL,
    409 `endpoint_limit_reached` past MAX_ENDPOINTS."""
    check_url(body.url)
    now = to_iso(utcnow())
    secret = rules.new_secret() if secret is None else secret
    endpoint_id = endpoint_id or rules.new_endpoint_id()
    item: dict[str, Any] = {
        "endpoint_id": endpoint_id, "url": body.url, "description": body.description,
        "event_types": body.event_types, "enabled": body.enabled, "secret": sealing.seal(endpoint_id, secret),
        "created_at": now, "updated_at": now, **(extra or {})}
    if not body.enabled:
        item.update(disabled_reason="disabled when created", disabled_at=now)
    outcome = records.create(item)
    if outcome == "full":
        raise EndpointLimitReached(f"At most {rules.MAX_ENDPOINTS} webhook endpoints can exist; delete one first.",
                                   limit=rules.MAX_ENDPOINTS)
    if outcome == "exists":  # a random id never collides: only a chosen one can
        raise EndpointExists(f"Webhook endpoint '{item['endpoint_id']}' exists already.")
    targets.forget()
    return EndpointCreated(**view(item).model_dump(), secret=secret)


def get(endpoint_id: str) -> Endpoint:
    return view(*_load(endpoint_id))


def list_page(limit: int, cursor: str | None) -> EndpointPage:
    found, next_cursor = records.list_page(limit, cursor)
    return EndpointPage(items=[view(i, s) for i, s in found], next_cursor=next_cursor)


def update(endpoint_id: str, body: EndpointPatch) -> EndpointUpdated:
    """Change the fields sent. Re-enabling a disabled endpoint answers a `replay_hint`: the
    replay body that re-sends what it missed while disabled."""
    item, stats = _load(endpoint_id)
    sent = body.model_fields_set
    fields: dict[str, Any] = {name: getattr(body, name) for name in sent if name != "enabled"}
    if "url" in fields:
        if fields["url"] is None:
            raise _null("url")
        check_url(fields["url"])
    if "enabled" in sent and body.enabled is None:
        raise _null("enabled")
    remove: tuple[str, ...] = ()
    hint = None
    now = to_iso(utcnow())
    if body.enabled is True and not item.get("enabled", True):
        fields["enabled"] = True
        remove = ("disabled_reason", "disabled_at")
        hint = {"since": item.get("disabled_at") or item["created_at"]}
    elif body.enabled is False and item.get("enabled", True):
        fields.update(enabled=False, disabled_reason="disabled through the API", disabled_at=now)
    fields["updated_at"] = now
    updated = records.update(endpoint_id, fields, remove)
    if updated is None:
        raise EndpointNotFound(f"No webhook endpoint '{endpoint_id}'.", endpoint_id=endpoint_id)
    targets.forget()
    return EndpointUpdated(**view(updated, stats).model_dump(), replay_hint=hint)


def _null(name: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid request: {name}: may not be null",
                            fields=[{"field": name, "message": "may not be null"}])


def delete(endpoint_id: str) -> None:
    """Delete an endpoint: nothing more is queued for it, what is queued is dropped, and the
    events it had failed leave its failed list (within this request, bounded; a long list is
    finished by the scheduled sweep), reading `endpoint_deleted` there."""
    if not conforms(rules.EndpointId, endpoint_id) or not records.delete(endpoint_id, to_iso(utcnow())):
        raise EndpointNotFound(f"No webhook endpoint '{endpoint_id}'.", endpoint_id=endpoint_id)
    targets.forget()
    if delivery.forget_endpoint(endpoint_id, delivery.FORGET_SECONDS):
        records.drop_tombstone(endpoint_id)


def rotate_secret(endpoint_id: str, grace_seconds: int) -> SecretRotated:
    """A new secret at once; the old one keeps signing too (a second signature in
    `webhook-signature`) for `grace_seconds`, so receivers switch without downtime. Both are
    stored encrypted: the old one keeps its ciphertext (this function never decrypts), or
    is encrypted now if an older version stored it plain."""
    item, _ = _load(endpoint_id)
    now = utcnow()
    secret = rules.new_secret()
    fields: dict[str, Any] = {"secret": sealing.seal(endpoint_id, secret), "secret_rotated_at": to_iso(now),
                              "updated_at": to_iso(now)}
    expires = None
    # the default endpoint's secret no longer follows WEBHOOK_SECRET's fingerprint: the next
    # change of that configuration sets it again (targets.ensure_default)
    remove: tuple[str, ...] = ("env_secret_fingerprint",)
    if grace_seconds > 0 and item.get("secret"):
        expires = to_iso(now + timedelta(seconds=grace_seconds))
        fields.update(previous_secret=sealing.reseal(endpoint_id, item["secret"]),
                      previous_expires_epoch=now.timestamp() + grace_seconds, previous_secret_expires_at=expires)
    else:
        remove += ("previous_secret", "previous_expires_epoch", "previous_secret_expires_at")
    if records.update(endpoint_id, fields, remove) is None:
        raise EndpointNotFound(f"No webhook endpoint '{endpoint_id}'.", endpoint_id=endpoint_id)
    targets.forget()
    return SecretRotated(endpoint_id=endpoint_id, secret=secret, previous_secret_expires_at=expires)


def encrypt_stored_secrets() -> dict[str, int]:
    """The upgrade's migration (python -m cli endpoints encrypt-secrets): every secret an
    older version stored plain is encrypted in place. Idempotent: encrypted secrets are left
    alone (never opened); a secret rotated meanwhile is left to the rotation. Until it has
    run, plain secrets keep signing (the delivery function reads both forms)."""
    found = records.all_endpoints()
    encrypted = changed = 0
    for item in found:
        endpoint_id = item["endpoint_id"]
        plain = {name: item[name] for name in ("secret", "previous_secret")
                 if isinstance(item.get(name), str) and item[name]}
        if not plain:
            continue
        fields: dict[str, Any] = {name: sealing.seal(endpoint_id, value) for name, value in plain.items()}
        if endpoint_id == rules.DEFAULT_ENDPOINT and "secret" in plain:
            # what targets.ensure_default compares WEBHOOK_SECRET with, now that it cannot read it
            fields["env_secret_fingerprint"] = rules.fingerprint(plain["secret"])
        if records.replace_secrets(endpoint_id, fields, plain):
            encrypted += 1
        else:
            changed += 1
    targets.forget()
    return {"endpoints": len(found), "encrypted": encrypted, "changed_meanwhile": changed,
            "already_encrypted": len(found) - encrypted - changed}


# ---- a test ping ---------------------------------------------------------------------------


def send_test(endpoint_id: str) -> TestSent:
    """Queue a `ping` to one endpoint (through the queue and the delivery function: signed,
    guarded, counted in its stats, retried on WEBHOOK_RETRY_SCHEDULE like any webhook). Its
    record (one PutItem, kept PING_DAYS) says how it went: GET .../pings/{event_id}. Each
    ping is its own FIFO group, so a ping being retried holds back no other."""
    endpoint = get(endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled(f"Webhook endpoint '{endpoint_id}' is disabled; enable it first.",
                               endpoint_id=endpoint_id)
    moment = utcnow()
    now = to_iso(moment)
    event_id = f"evt_ping_{time.time_ns():x}"
    records.create_ping({"event_id": event_id, "endpoint_id": endpoint_id, "status": "queued",
                         "created_at": now, "updated_at": now},
                        int(moment.timestamp()) + records.PING_DAYS * 86_400)
    body = webhooks.dumps({"event_type": rules.PING, "event_id": event_id, "occurred_at": now,
                           "endpoint_id": endpoint_id})
    fanout.enqueue(queue.Message(body=body, group=rules.group_for(endpoint_id, f"ping:{event_id}"),
                                 dedup_id=event_id, attributes={fanout.ENDPOINT: endpoint_id}))
    return TestSent(endpoint_id=endpoint_id, event_id=event_id, status="queued")


def ping_status(endpoint_id: str, event_id: str) -> PingStatus:
    """A test ping's outcome (one GetItem): 404 `ping_not_found` for an unknown or expired
    one, or one sent to another endpoint."""
    item = records.get_ping(event_id) if conforms(rules.PingId, event_id) else None
    if item is None or item.get("endpoint_id") != endpoint_id or int(item.get("expires_at", 0)) < time.time():
        raise PingNotFound(f"No test ping '{event_id}' at webhook endpoint '{endpoint_id}'.",
                           endpoint_id=endpoint_id, event_id=event_id)
    return PingStatus(endpoint_id=endpoint_id, event_id=event_id, status=item["status"],
                      attempt_count=int(item.get("attempt_count", 0)), max_attempts=get_settings().max_attempts,
                      next_attempt_at=item.get("next_attempt_at"), created_at=item["created_at"],
                      updated_at=item.get("updated_at", item["created_at"]), attempts=list(item.get("attempts") or []))


# ---- a replay ------------------------------------------------------------------------------


def _hours(since: str, until: str) -> list[str]:
    first = from_iso(since).replace(minute=0, second=0, microsecond=0)
    last = from_iso(until)
    hours = []
    while first < last:
        hours.append(to_iso(first)[:13])
        first += timedelta(hours=1)
    return hours


def _encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        position = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if not (isinstance(position, dict) and isinstance(position.get("h"), int)
                and isinstance(position.get("s"), int) and isinstance(position.get("c"), (str, type(None)))):
            raise ValueError("not a replay cursor")
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("The cursor is malformed or belongs to another listing.") from exc
    return position


def _window(body: ReplayRequest) -> tuple[str, str]:
    # since and until are Moments: the model has already made them the stored UTC form
    since = from_iso(body.since)
    until = from_iso(body.until) if body.until else utcnow()
    if until <= since or until - since > timedelta(days=MAX_REPLAY_DAYS):
        raise ValidationFailed(f"Invalid request: until must be after since, at most {MAX_REPLAY_DAYS} days later.",
                               fields=[{"field": "until", "message": "outside the allowed window"}])
    return to_iso(since), to_iso(until)


def replay_step(endpoint_id: str, body: ReplayRequest, seconds: float = REPLAY_SECONDS) -> ReplayProgress:
    """One bounded step of a replay: queue again, to this endpoint only, the window's events
    its filter takes (the same webhook-ids, each in a new delivery round), at most `limit`
    of them within `seconds`; the answer's next_cursor continues (null: done). A session's
    events are queued in order (they share a shard of the window index, walked in time order)."""
    endpoint = get(endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled(f"Webhook endpoint '{endpoint_id}' is disabled; enable it first.",
                               endpoint_id=endpoint_id)
    since, until = _window(body)
    hours = _hours(since, until)
    position: dict[str, Any] = _decode(body.cursor) if body.cursor else {"h": 0, "s": 0, "c": None}
    deadline = time.monotonic() + seconds
    queued = scanned = 0
    h: int = position["h"]
    s: int = position["s"]
    inner: str | None = position["c"]
    while h < len(hours):
        if queued >= body.limit or time.monotonic() >= deadline:
            return ReplayProgress(endpoint_id=endpoint_id, queued=queued, scanned=scanned,
                                  next_cursor=_encode({"h": h, "s": s, "c": inner}), done=False)
        found, inner = events.window_page(hours[h], s, since, until, min(100, body.limit - queued), inner)
        for event in found:
            scanned += 1
            if not rules.matches(endpoint.event_types, event):
                continue
            round_id = fanout.new_round()
            if events.mark_pending(event["session_id"], event["sequence"], endpoint_id, round_id, to_iso(utcnow())):
                fanout.enqueue(fanout.message(endpoint_id, event["session_id"], event["event_id"],
                                webhooks.dumps(webhooks.payload(event)), round_id))
                queued += 1
        if inner is None:
            s += 1
            if s == events.EVENT_SHARDS:
                h, s = h + 1, 0
    return ReplayProgress(endpoint_id=endpoint_id, queued=queued, scanned=scanned, next_cursor=None, done=True)
