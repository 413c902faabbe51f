"""The webhook endpoints the pipeline delivers to: read from a per-process cache.

The cache (CACHE_SECONDS, 10 s) means a stream batch or a delivery batch normally costs no
read for the endpoint list, and a change made through the API reaches other Lambda instances
within those seconds (the process that made it forgets at once).

`WEBHOOK_URL` / `WEBHOOK_SECRET` (the configuration before endpoints existed) create or
update the endpoint `default` on first use (and at `make run`'s start): its URL, secret
and filter (`WEBHOOK_EVENT_TYPES`) follow the environment whenever the environment changes,
while a rotation or a disable done through the API stands until it does. Its secret is stored
encrypted like every endpoint's (chalicelib/sealing.py).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from chalicelib import sealing
from chalicelib.config import Settings, get_settings
from chalicelib.db import endpoints as records
from chalicelib.domain import endpoints as rules
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.endpoints import DEFAULT_ENDPOINT
from chalicelib.domain.errors import SecretsKeyUnavailable
from chalicelib.observability import logger

CACHE_SECONDS = 10.0

_lock = threading.Lock()
# (expires, the settings it was read under, whether the configuration was applied, the list)
_cached: tuple[float, Settings | None, bool, list[dict[str, Any]]] = (0.0, None, False, [])
_retry_default_at = 0.0  # storing `default` failed (its secret could not be encrypted): not before this


def forget() -> None:
    """Forget the cached list (a change made in this process is seen at once)."""
    global _cached, _retry_default_at
    _cached = (0.0, None, False, [])
    _retry_default_at = 0.0


def every(configure: bool = True) -> list[dict[str, Any]]:
    """Every endpoint (enabled or not), from the cache. With WEBHOOK_URL set, `configure`
    creates or updates the stored endpoint `default` first (once per process and
    configuration: the API, the delivery function, `make run`); without it (the feedback
    function, which never writes the table) a stored `default` that the configuration has
    moved past is read as the configuration says, until a writer stores it. So is it when
    its secret cannot be encrypted now (KMS failing): stored on a later call, once the list
    has expired."""
    global _cached, _retry_default_at
    settings = get_settings()
    expires, seen_settings, configured, found = _cached
    now = time.monotonic()
    fresh = seen_settings is settings and (configured or not configure or now < _retry_default_at)
    if fresh and expires > now:
        return found
    with _lock:
        if configure and not (seen_settings is settings and configured) and now >= _retry_default_at:
            try:
                ensure_default(settings)
                configured = True
            except SecretsKeyUnavailable:
                logger.exception("the webhook endpoint `default` could not be stored now")
                configured = False
                _retry_default_at = now + CACHE_SECONDS
        elif seen_settings is not settings:
            configured = False
        found = records.all_endpoints()
        if not configured:
            found = as_configured(found, settings)
        _cached = (time.monotonic() + CACHE_SECONDS, settings, configured, found)
    return found


def _marker(settings: Settings) -> str:
    """A fingerprint of the configuration the default endpoint follows."""
    return rules.fingerprint("\n".join([settings.webhook_url, settings.webhook_secret,
                                         *sorted(settings.event_types)]))


def as_configured(found: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """The endpoints as `ensure_default` would leave them, without writing: the default
    endpoint from WEBHOOK_URL (its stored enabled state kept) when none is stored, or the
    stored one is of an older configuration."""
    if not settings.webhook_url:
        return found
    stored = next((e for e in found if e["endpoint_id"] == DEFAULT_ENDPOINT), None)
    if stored is not None and stored.get("env_fingerprint") == _marker(settings):
        return found
    default = {**(stored or {}), "endpoint_id": DEFAULT_ENDPOINT, "url": settings.webhook_url,
               "event_types": sorted(settings.event_types), "secret": settings.webhook_secret,
               "enabled": (stored or {}).get("enabled", True)}
    return [e for e in found if e["endpoint_id"] != DEFAULT_ENDPOINT] + [default]


def by_id(endpoint_id: str, configure: bool = True) -> dict[str, Any] | None:
    return next((e for e in every(configure) if e["endpoint_id"] == endpoint_id), None)


def wanted_anywhere(event: dict[str, Any]) -> bool:
    """Whether some enabled endpoint takes this event (else its status reads `not_sent`)."""
    return any(e.get("enabled", True) and rules.matches(e.get("event_types"), event) for e in every())


def deliveries_of(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An event's delivery per endpoint: {endpoint_id: {status, round, attempt_count, at}}.
    Endpoints never attempted read `pending` (enabled, the filter takes it) or
    `endpoint_disabled`; endpoints whose filter does not take it are left out; a deleted
    endpoint's delivery not settled there reads `endpoint_deleted`."""
    found = {k: dict(v) for k, v in (event.get("deliveries") or {}).items()}
    legacy = rules.delivery_state(event, DEFAULT_ENDPOINT)
    if legacy and DEFAULT_ENDPOINT not in found:
        found[DEFAULT_ENDPOINT] = legacy
    known = every()
    for endpoint in known:
        endpoint_id = endpoint["endpoint_id"]
        if endpoint_id not in found and rules.matches(endpoint.get("event_types"), event):
            found[endpoint_id] = {"status": "pending" if endpoint.get("enabled", True) else "endpoint_disabled"}
    ids = {e["endpoint_id"] for e in known}
    for endpoint_id, state in found.items():  # a deleted endpoint's queued or failed delivery: never sent now
        if endpoint_id not in ids and state.get("status") in ("pending", "retrying", "failed"):
            state["status"] = "endpoint_deleted"
    return found


def ensure_default(settings: Settings) -> None:
    """WEBHOOK_URL / WEBHOOK_SECRET / WEBHOOK_EVENT_TYPES -> the endpoint `default`: created
    when missing; its URL, filter and secret set again whenever that configuration changed
    (the secret it replaces keeps signing for the default grace period)."""
    if not settings.webhook_url:
        return
    types = sorted(settings.event_types)
    marker = _marker(settings)
    item = records.get(DEFAULT_ENDPOINT)
    secret_marker = rules.fingerprint(settings.webhook_secret)
    if item is None:
        created = to_iso(utcnow())
        outcome = records.create({
            "endpoint_id": DEFAULT_ENDPOINT, "url": settings.webhook_url, "description": "WEBHOOK_URL",
            "event_types": types, "enabled": True, "secret": sealing.reseal(DEFAULT_ENDPOINT, settings.webhook_secret),
            "created_at": created, "updated_at": created, "env_fingerprint": marker,
            "env_secret_fingerprint": secret_marker})
        if outcome == "full":
            logger.error("WEBHOOK_URL ignored: the most webhook endpoints exist already")
        return
    if item.get("env_fingerprint") == marker:
        return
    now = utcnow()
    fields: dict[str, Any] = {"url": settings.webhook_url, "event_types": types, "env_fingerprint": marker,
                              "updated_at": to_iso(now)}
    stored = item.get("secret")
    # encrypted, the stored secret is compared by the fingerprint of the WEBHOOK_SECRET it came
    # from (none after a rotation through the API); a plain one (an older version's) as it is
    changed = (stored != settings.webhook_secret if isinstance(stored, str)
               else item.get("env_secret_fingerprint") != secret_marker)
    if changed:
        fields.update(secret=sealing.reseal(DEFAULT_ENDPOINT, settings.webhook_secret), secret_rotated_at=to_iso(now),
                      env_secret_fingerprint=secret_marker)
        if stored:
            grace = rules.DEFAULT_GRACE_SECONDS
            fields.update(previous_secret=sealing.reseal(DEFAULT_ENDPOINT, stored),
                          previous_expires_epoch=now.timestamp() + grace,
                          previous_secret_expires_at=to_iso(now + timedelta(seconds=grace)))
    elif isinstance(stored, str) and stored:
        fields.update(secret=sealing.seal(DEFAULT_ENDPOINT, stored), env_secret_fingerprint=secret_marker)
    records.update(DEFAULT_ENDPOINT, fields)


def disable(endpoint_id: str, reason: str) -> bool:
    """Disable an endpoint (the pipeline's health rules: a 410, failing for days). False
    when it was disabled already."""
    done = records.disable(endpoint_id, reason[:300], to_iso(utcnow()))
    if done:
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint_id, "reason": reason})
    forget()
    return done
