"""The delivery function: webhook messages from the FIFO queue -> signed POSTs to their
endpoints, with the attempt budget counted here, not by SQS.

Each message goes to one webhook endpoint (its `endpoint` attribute; none: the default
endpoint): its URL, its secret(s) (two signatures during a rotation's grace period), the SSRF
guard at every attempt. Delivery state, attempts and the failed list are per endpoint
(chalicelib/db/events.py). A 410 disables the endpoint; so does failing every attempt for
ENDPOINT_DISABLE_AFTER_DAYS. Each batch adds its attempts to each endpoint's stats (one
UpdateItem per endpoint per batch, which also keeps its last 20 attempts). Messages to a
disabled or deleted endpoint are dropped. A test ping follows the same policy as an event:
its attempts are counted on its own record (chalicelib/db/endpoints.py), retried on the
schedule; when they are spent it is recorded failed (not dead-lettered: nothing to redrive).

Per batch: one BatchGetItem reads the delivery state of the batch's events (per endpoint:
which round, how many attempts in it); then each message in order:
  - its attempt number is the stored count for the message's round + 1 (a redelivered or
    redriven message starts a new round with a fresh budget);
  - it is POSTed once, and `delivery_policy.decide` says what the answer means;
  - the attempt is appended to the event item's log with the new status (one UpdateItem);
  - delivered, gone: done (the event source deletes the message);
  - retrying or throttled: hidden for the delay and reported in batchItemFailures; the rest
    of its session's messages in this batch wait behind it (made visible again at once: FIFO
    will not hand them out while their head is hidden, and they lose no attempt, since only
    real attempts count); both in ONE ChangeMessageVisibilityBatch at the end of the batch;
  - failed (its own budget spent): sent to the dead-letter queue explicitly, with its group
    and a `dead_lettered` attribute, and recorded `failed` (listed by
    GET /v1/deliveries?status=failed); the event source deletes the original. A failed
    event does not hold back the session's later events (SQS's own DLQ semantics): each has
    its own budget, and a receiver sees the gap in `sequence`.
SQS's maxReceiveCount is a distant safety net (delivery_policy.safety_net_receive_count) for
invocations that crash before recording; `sweep_dead_letters` (scheduled) records anything it
moved, so nothing sits in the dead-letter queue unlisted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib import sealing
from chalicelib.config import Settings, get_settings
from chalicelib.db import endpoints as endpoint_records
from chalicelib.db import events
from chalicelib.domain import delivery_policy
from chalicelib.domain import endpoints as endpoint_rules
from chalicelib.domain.clock import from_iso, to_iso, utcnow
from chalicelib.domain.endpoints import DEFAULT_ENDPOINT, PING
from chalicelib.domain.errors import EndpointNotFound, EventNotFound, SecretsKeyUnavailable
from chalicelib.domain.models import Page, RedriveResult
from chalicelib.inbox import forwarding
from chalicelib.observability import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DEAD_LETTERED,
    WEBHOOK_LAG,
    WEBHOOK_LATENCY,
    Unit,
    count,
    logger,
)
from chalicelib.pipeline import fanout, queue, targets, webhooks

REDRIVE_SECONDS = 10.0  # per API request: well under API Gateway's 29 s integration timeout
SWEEP_SECONDS = 20.0
RECENT_ATTEMPTS = endpoint_records.RECENT_SLOTS  # an endpoint's last attempts, kept on its stats
ORIGINAL_ROUND = "0"  # the round of a message the feedback function enqueued
ROUND = fanout.ROUND  # message attribute: the delivery round a message belongs to
ENDPOINT = fanout.ENDPOINT  # message attribute: the endpoint it goes to (absent: the default one)
DEAD_LETTERED = "dead_lettered"  # message attribute: who put it in the DLQ (absent: SQS did)
STATUS_OF = {"delivered": "delivered", "gone": "gone", "failed": "failed",
             "retrying": "retrying", "throttled": "retrying"}


@dataclass(frozen=True)
class Envelope:
    """One message of a batch, as the delivery function reads it."""

    message_id: str
    receipt_handle: str
    group: str
    body: str
    round: str
    payload: dict[str, Any] | None  # None: not a webhook message we can deliver
    endpoint_id: str = DEFAULT_ENDPOINT

    @classmethod
    def of(cls, record: dict[str, Any]) -> Envelope:
        try:
            payload = json.loads(record["body"])
            if not isinstance(payload.get("event_id"), str):
                raise ValueError("no event_id")
            if payload.get("event_type") != PING:
                events.key(payload["session_id"], payload["sequence"])  # has what we need
        except (ValueError, TypeError, KeyError, AttributeError):
            payload = None
        return cls(record["messageId"], record["receiptHandle"],
                   record.get("attributes", {}).get("MessageGroupId", ""), record["body"],
                   queue.attribute(record, ROUND) or ORIGINAL_ROUND, payload,
                   queue.attribute(record, ENDPOINT) or DEFAULT_ENDPOINT)

    @property
    def is_ping(self) -> bool:
        return self.payload is not None and self.payload.get("event_type") == PING

    @property
    def ref(self) -> tuple[str, int]:
        """(session_id, sequence): which event this message delivers."""
        assert self.payload is not None
        return self.payload["session_id"], self.payload["sequence"]

    @property
    def attributes(self) -> dict[str, str]:
        return {ROUND: self.round, ENDPOINT: self.endpoint_id}


# endpoint id -> the position of its ring of recent attempts after this process's last write
# (a guess: a write from a stale position is refused and made again from the stored one)
_ring_at: dict[str, int] = {}


def forget_ring_positions() -> None:
    """Forget the guesses (a new process, or another table: tests, the local stack)."""
    _ring_at.clear()


class Stats:
    """One batch's attempts per endpoint, written once per endpoint at the end of the batch."""

    def __init__(self) -> None:
        self.by_endpoint: dict[str, dict[str, Any]] = {}

    def add(self, message: Envelope, result: webhooks.Attempt, outcome: str, spent: int = 0) -> None:
        """Count one attempt (`spent`: a test ping's last attempt, after this many)."""
        now = to_iso(utcnow())
        endpoint_id, delivered = message.endpoint_id, outcome == "delivered"
        entry = self.by_endpoint.setdefault(endpoint_id, {
            "attempts": 0, "delivered": 0, "latencies": {}, "last_error": None, "last_error_at": None,
            "last_success_at": None, "recent": []})
        payload = message.payload or {}
        entry["recent"] = [*entry["recent"], {
            "event_id": payload.get("event_id"), "event_type": payload.get("event_type"),
            "session_id": payload.get("session_id"), "outcome": outcome, "status_code": result.status_code,
            "error": result.error, "latency_ms": result.latency_ms, "at": now}][-RECENT_ATTEMPTS:]
        entry["attempts"] += 1
        bucket = endpoint_rules.bucket(result.latency_ms)
        entry["latencies"][bucket] = entry["latencies"].get(bucket, 0) + 1
        if delivered:
            entry["delivered"] += 1
            entry["last_success_at"] = now
        else:
            error = f"HTTP {result.status_code}" if result.status_code is not None else (result.error or "no answer")
            if spent:
                error = f"test ping {payload.get('event_id')} failed, all {spent} attempts spent: {error}"
            entry["last_error"] = error[:300]
            entry["last_error_at"] = now

    def write(self, settings: Settings) -> None:
        """Add them to each endpoint's stats; disable an endpoint that has failed every
        attempt for ENDPOINT_DISABLE_AFTER_DAYS. Never fails the batch."""
        for endpoint_id, entry in self.by_endpoint.items():
            try:
                failing_at = entry["last_error_at"] if not entry["delivered"] else None
                after = endpoint_records.record_stats(
                    endpoint_id, attempts=entry["attempts"], delivered=entry["delivered"],
                    latencies=entry["latencies"], last_error=entry["last_error"],
                    last_error_at=entry["last_error_at"], last_success_at=entry["last_success_at"],
                    failing_at=failing_at, recent=entry["recent"], ring_at=_ring_at.get(endpoint_id))
                if after is not None:
                    _ring_at[endpoint_id] = int(after.get("recent_next", 0))
                since = (after or {}).get("failing_since")
                if failing_at and since and (utcnow() - from_iso(since)).total_seconds() >= \
                        settings.endpoint_disable_after_days * 86_400:
                    targets.disable(endpoint_id, f"every attempt failed since {since} "
                                                   f"(ENDPOINT_DISABLE_AFTER_DAYS={settings.endpoint_disable_after_days:g})")
            except Exception:  # noqa: BLE001 - stats are not worth a redelivery
                logger.exception("could not record webhook endpoint stats", extra={"endpoint_id": endpoint_id})


# ---- one attempt ---------------------------------------------------------------------------


def deliver(message: Envelope, state: dict[str, Any] | None, settings: Settings,
            stats: Stats | None = None) -> delivery_policy.Decision | None:
    """Attempt one message. Returns the decision taken (None: nothing to deliver: the event
    was deleted with its session, its endpoint is disabled or deleted, or this round already
    delivered it)."""
    assert message.payload is not None
    fields = _log_fields(message)
    endpoint = targets.by_id(message.endpoint_id)
    if endpoint is None or not endpoint.get("enabled", True):
        logger.info("webhook dropped: its endpoint is disabled or deleted", extra=fields)
        return None
    if message.is_ping:
        return _deliver_ping(message, endpoint, state, settings, stats)
    if state is None:
        logger.info("webhook dropped: its event was deleted with its session", extra=fields)
        return None
    mine = endpoint_rules.delivery_state(state, message.endpoint_id)
    if mine.get("round") == message.round and mine.get("status") in ("delivered", "gone"):
        logger.info("webhook already settled in this round; not sent again", extra=fields)
        return None
    n = delivery_policy.attempt_number(mine.get("round"), int(mine.get("attempt_count") or 0), message.round)
    total = settings.max_attempts
    if n > total:  # recorded as failed, but the process stopped before dead-lettering it
        decision = delivery_policy.Decision("failed", total, total)
        # and maybe before listing it at its endpoint (the same idempotent PutItem)
        events.list_failed_at(*message.ref, message.endpoint_id, message.payload["event_id"],
                              str(mine.get("at") or to_iso(utcnow())))
        _dead_letter(message, decision, settings)
        return decision
    result = _post(message, endpoint, settings)
    decision = delivery_policy.decide(settings.retry_schedule, n, result.status_code, result.retry_after)
    was_failed = message.endpoint_id in (state.get("failed_endpoints") or [])
    mine = record_attempt(message, decision, result, was_failed=was_failed)
    if decision.outcome != "failed" and was_failed:
        state["failed_endpoints"] = [e for e in state.get("failed_endpoints") or [] if e != message.endpoint_id]
    state.setdefault("deliveries", {})[message.endpoint_id] = mine
    if stats is not None:
        stats.add(message, result, decision.outcome)
    _report(message, decision, result, fields)
    if decision.outcome == "gone":  # Standard Webhooks: 410 means the endpoint is gone
        targets.disable(message.endpoint_id, f"the endpoint answered 410 Gone at {to_iso(utcnow())}")
    if decision.outcome == "failed":
        _dead_letter(message, decision, settings)
    return decision  # not settled: the caller hides the message for decision.delay


def _deliver_ping(message: Envelope, endpoint: dict[str, Any], ping: dict[str, Any] | None, settings: Settings,
                  stats: Stats | None) -> delivery_policy.Decision | None:
    """Attempt a test ping: numbered, decided and retried as an event's webhook is, its
    attempts logged on its own record (what GET .../pings/{event_id} answers)."""
    assert message.payload is not None
    fields = _log_fields(message)
    event_id = message.payload["event_id"]
    if ping is None or ping.get("endpoint_id") != message.endpoint_id:
        logger.info("test ping dropped: no record of it (expired)", extra=fields)
        return None
    if ping.get("status") in ("delivered", "gone", "failed"):
        logger.info("test ping already settled; not sent again", extra=fields)
        return None
    n = int(ping.get("attempt_count") or 0) + 1
    result = _post(message, endpoint, settings)
    decision = delivery_policy.decide(settings.retry_schedule, n, result.status_code, result.retry_after)
    now = utcnow()
    status = STATUS_OF[decision.outcome]
    entry: dict[str, Any] = {"attempt": n, "of": decision.of, "outcome": decision.outcome,
                             "status_code": result.status_code, "error": result.error,
                             "latency_ms": result.latency_ms, "at": to_iso(now)}
    next_at = None if decision.settled else to_iso(now + timedelta(seconds=decision.delay))
    if not decision.settled:
        entry["retry_in_seconds"] = decision.delay
    endpoint_records.record_ping_attempt(event_id, status=status, attempt=n, entry=entry, now=to_iso(now),
                                         next_attempt_at=next_at)
    ping.update(status=status, attempt_count=n)
    if stats is not None:
        stats.add(message, result, decision.outcome, spent=n if decision.outcome == "failed" else 0)
    _report(message, decision, result, fields)
    if decision.outcome == "gone":
        targets.disable(message.endpoint_id, f"the endpoint answered 410 Gone at {to_iso(utcnow())}")
    return decision  # failed is settled: the message leaves the queue; the record says failed


def _post(message: Envelope, endpoint: dict[str, Any], settings: Settings) -> webhooks.Attempt:
    """One signed POST to the endpoint (every secret in its grace period signs). A secret
    that cannot be decrypted (KMS refusing or failing) is an attempt without an answer: it
    is recorded and retried like a timeout, never sent unsigned."""
    assert message.payload is not None
    try:
        secrets = sealing.signing_secrets(endpoint, time.time())
    except SecretsKeyUnavailable as exc:
        return webhooks.Attempt(status_code=None, error=f"signing secret unavailable: {exc.message}"[:300],
                                latency_ms=0)
    headers = webhooks.signed_headers(secrets, message.payload["event_id"], message.body)
    return webhooks.post(endpoint["url"], message.body, headers, settings.webhook_timeout_seconds,
                         allow_private=settings.webhook_allow_private_targets)


def record_attempt(message: Envelope, decision: delivery_policy.Decision,
                   result: webhooks.Attempt, was_failed: bool = False) -> dict[str, Any]:
    """Append the attempt to the event item's log and set the endpoint's status (one
    UpdateItem). A `failed` event is listed in GSI1 under DELIVERIES#failed. Returns the
    endpoint's new state."""
    assert message.payload is not None
    now = to_iso(utcnow())
    status = STATUS_OF[decision.outcome]
    entry: dict[str, Any] = {
        "attempt": decision.attempt, "of": decision.of, "round": message.round,
        "outcome": decision.outcome, "status_code": result.status_code, "error": result.error,
        "latency_ms": result.latency_ms, "at": now}
    if not decision.settled:
        entry["retry_in_seconds"] = decision.delay
    session_id, sequence = message.ref
    if not events.record_attempt(session_id, sequence, endpoint_id=message.endpoint_id, status=status, entry=entry,
                                 round_id=message.round, attempt=decision.attempt, now=now,
                                 event_id=message.payload["event_id"], was_failed=was_failed):
        logger.info("event no longer stored (session deleted)", extra=_log_fields(message))
    return {"status": status, "round": message.round, "attempt_count": decision.attempt}


def _dead_letter(message: Envelope, decision: delivery_policy.Decision, settings: Settings) -> None:
    """Move a message whose budget is spent to the dead-letter queue, keeping its group (the
    event source then deletes the original, as for any settled message)."""
    event_id = message.payload["event_id"] if message.payload else message.message_id
    queue.enqueue(message.body, group=message.group or "unknown", queue_url=settings.dead_letter_queue_url,
                  dedup_id=f"{endpoint_rules.dedup_for(message.endpoint_id, event_id)}:{message.round}:dead",
                  attributes={**message.attributes, DEAD_LETTERED: "delivery",
                              "attempts": str(decision.attempt)})
    count(WEBHOOK_DEAD_LETTERED, Source="delivery")


def _log_fields(message: Envelope) -> dict[str, Any]:
    payload = message.payload or {}
    return {"event_id": payload.get("event_id"), "event_type": payload.get("event_type"),
            "session_id": payload.get("session_id"), "sequence": payload.get("sequence"),
            "round": message.round, "message_id": message.message_id, "endpoint_id": message.endpoint_id}


def _report(message: Envelope, decision: delivery_policy.Decision, result: webhooks.Attempt,
            fields: dict[str, Any]) -> None:
    """One log record per attempt (INFO delivered, WARNING retried or gone, ERROR
    dead-lettered) and its metrics."""
    fields = {**fields, "attempt": decision.attempt, "max_attempts": decision.of,
              "outcome": decision.outcome, "status": result.status_code, "error": result.error,
              "latency_ms": result.latency_ms}
    count(WEBHOOK_ATTEMPTS, Outcome=decision.outcome)
    count(WEBHOOK_LATENCY, result.latency_ms, Unit.Milliseconds)
    if decision.outcome == "delivered":
        assert message.payload is not None
        lag = max(0.0, (utcnow() - from_iso(message.payload["occurred_at"])).total_seconds())
        count(WEBHOOK_LAG, round(lag, 3), Unit.Seconds)
        logger.info("webhook delivered", extra={**fields, "lag_ms": int(lag * 1000)})
    elif decision.outcome == "failed":
        logger.error("webhook dead-lettered: its attempts are spent", extra=fields)
    elif decision.outcome == "gone":
        logger.warning("webhook refused for good (410 Gone): not retried", extra=fields)
    else:
        logger.warning(f"webhook attempt {decision.outcome}; next in {decision.delay} s",
                       extra={**fields, "retry_in_seconds": decision.delay})


# ---- a batch -------------------------------------------------------------------------------


def handle_delivery_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Process an SQS FIFO batch in order; returns Lambda's partial batch response. A
    message still being retried holds back the rest of its session's messages in the batch
    (they must not overtake it); other sessions keep flowing."""
    settings = get_settings()
    messages = [Envelope.of(r) for r in event.get("Records", [])]
    states = events.delivery_states([m.ref for m in messages if m.payload and not m.is_ping])
    pings = endpoint_records.pings([m.payload["event_id"] for m in messages if m.is_ping and m.payload])
    stats = Stats()
    failed: list[str] = []
    blocked: dict[str, str] = {}  # group -> the message id of its head, still being retried
    hidden: list[tuple[str, int]] = []  # (receipt handle, seconds): retries back off, followers come back at once
    for message in messages:
        if message.group in blocked:
            hidden.append((message.receipt_handle, 0))
            failed.append(message.message_id)
            continue
        if message.payload is None:  # can never be delivered: out of the way, loudly
            logger.error("undeliverable message (not a webhook payload) dead-lettered",
                         extra={"message_id": message.message_id})
            _dead_letter(message, delivery_policy.Decision("failed", 0, settings.max_attempts), settings)
            continue
        try:
            state = pings.get(message.payload["event_id"]) if message.is_ping else states.get(message.ref)
            decision = deliver(message, state, settings, stats)
        except Exception:  # noqa: BLE001 - one broken message must not stop other sessions
            # Nothing (or not all) was recorded: the message comes back after the visibility
            # timeout and repeats this attempt; a message that keeps crashing its invocation
            # reaches maxReceiveCount and the sweep records it.
            logger.exception("delivery of a message failed unexpectedly", extra=_log_fields(message))
            decision = None
            blocked[message.group] = message.message_id
            failed.append(message.message_id)
            continue
        if decision is not None and not decision.settled:
            blocked[message.group] = message.message_id
            failed.append(message.message_id)
            hidden.append((message.receipt_handle, decision.delay))
    # One ChangeMessageVisibilityBatch for the whole batch (Lambda's SQS batches hold at most
    # ten). Messages reported in batchItemFailures are left alone by the event source, so
    # their visibility is ours to set; the ones that succeeded it deletes itself. A message
    # SQS refuses here (or all of them, if the invocation dies before this line) comes back
    # when its visibility timeout runs out: a retry sooner than its schedule, never a loss.
    stats.write(settings)
    if hidden:
        refused = queue.change_visibility(hidden)
        if refused:
            logger.warning("could not change the visibility of received messages", extra={"refused": len(refused)})
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


# ---- the dead-letter queue -----------------------------------------------------------------


def sweep_dead_letters(seconds: float = SWEEP_SECONDS) -> dict[str, int]:
    """Record as failed every dead letter that SQS moved by itself (the safety net: no
    `dead_lettered` attribute), so GET /v1/deliveries?status=failed lists everything the
    dead-letter queue holds. The messages stay where they are, for a redrive.

    Received messages are held (hidden) while the sweep walks the queue, so it sees each
    once and gets past a session's first ten, then all are released at once."""
    settings = get_settings()
    deadline = time.monotonic() + seconds
    held: list[str] = []
    unrecorded: list[Envelope] = []
    seen = 0
    while time.monotonic() < deadline:
        batch = queue.receive(settings.dead_letter_queue_url, visibility_timeout=int(seconds) + 40)
        if not batch:
            break
        for raw in batch:
            held.append(raw["ReceiptHandle"])
            seen += 1
            if queue.attribute(raw, DEAD_LETTERED) is None:
                unrecorded.append(Envelope.of({
                    "messageId": raw["MessageId"], "receiptHandle": raw["ReceiptHandle"],
                    "attributes": raw.get("Attributes", {}), "body": raw["Body"],
                    "messageAttributes": raw.get("MessageAttributes", {})}))
    recorded = 0
    for message in unrecorded:
        if message.payload is not None and not message.is_ping and _record_safety_net(message):
            recorded += 1
    queue.release(held, settings.dead_letter_queue_url)
    for endpoint_id in endpoint_records.tombstones():  # deletions that ran out of time
        if time.monotonic() < deadline and forget_endpoint(endpoint_id, max(0.0, deadline - time.monotonic())):
            endpoint_records.drop_tombstone(endpoint_id)
    if recorded:
        count(WEBHOOK_DEAD_LETTERED, recorded, Source="sqs")
        logger.error("webhooks dead-lettered by SQS's receive limit recorded as failed",
                     extra={"recorded": recorded})
    return {"seen": seen, "recorded": recorded}


def _record_safety_net(message: Envelope) -> bool:
    assert message.payload is not None
    now = to_iso(utcnow())
    entry = {"attempt": None, "round": message.round, "outcome": "failed", "status_code": None,
             "error": "dead-lettered by SQS after its receive limit (the delivery function kept failing)",
             "latency_ms": 0, "at": now}
    # False: already listed, or deleted with its session
    return events.record_failed_once(*message.ref, endpoint_id=message.endpoint_id, entry=entry, now=now,
                                     event_id=message.payload["event_id"], round_id=message.round)


# ---- operator actions ----------------------------------------------------------------------


def new_round() -> str:
    return fanout.new_round()


def find_event(event_id: str) -> dict[str, Any]:
    item = events.find(event_id)
    if item is None:
        raise EventNotFound(f"Event '{event_id}' not found", event_id=event_id)
    return item


def redeliver(event_id: str, endpoint_id: str | None = None) -> dict[str, Any]:
    """Queue one event's webhook again (same webhook-id, so receivers can de-duplicate), in
    a new delivery round with a fresh attempt budget: to `endpoint_id`, or else to every
    endpoint it failed at, or (none failed) to every enabled endpoint that takes it."""
    event = find_event(event_id)
    if endpoint_id is not None:
        if targets.by_id(endpoint_id) is None:
            raise EndpointNotFound(f"No webhook endpoint '{endpoint_id}'.", endpoint_id=endpoint_id)
        chosen = [endpoint_id]
    else:
        failed_at = list(event.get("failed_endpoints") or [])
        chosen = [e for e in failed_at if targets.by_id(e) is not None]
        if failed_at and not chosen:
            raise EndpointNotFound(f"Event '{event_id}' failed only at deleted webhook endpoints "
                                   f"({', '.join(failed_at)}); name another with endpoint_id.",
                                   endpoint_id=failed_at[0])
        chosen = chosen or [
            e["endpoint_id"] for e in targets.every()
            if e.get("enabled", True) and endpoint_rules.matches(e.get("event_types"), event)]
    body = webhooks.dumps(webhooks.payload(event))
    for target in chosen:
        round_id = new_round()
        if not events.mark_pending(event["session_id"], event["sequence"], target, round_id, to_iso(utcnow())):
            raise EventNotFound(f"Event '{event_id}' not found", event_id=event_id)
        fanout.enqueue(fanout.message(target, event["session_id"], event_id, body, round_id))
    return {"event_id": event_id, "status": "queued", "endpoints": chosen}


FAILED_READS = 3  # reads of one endpoint's failed list per request, when stale entries are met


def list_failed(limit: int, cursor: str | None, endpoint_id: str | None = None) -> Page:
    """Events whose delivery failed for good, newest first: one Query on GSI1 + one BatchGet.
    With `endpoint_id`, those that failed at that endpoint, from its own failed list (the
    same two calls, full pages): an entry whose event is gone (its session deleted) is
    removed when met and the page read on, at most FAILED_READS times per request."""
    if endpoint_id is None:
        items, next_cursor = events.failed_page(limit, cursor)
        return Page(items=[delivery_view(e) for e in items], next_cursor=next_cursor)
    items = []
    next_cursor = cursor
    for _ in range(FAILED_READS):
        found, stale, next_cursor = events.failed_page_at(endpoint_id, limit - len(items), next_cursor)
        items += found
        if stale:
            events.drop_markers(stale)
        if not stale or next_cursor is None or len(items) >= limit:
            break
    return Page(items=[delivery_view(e) for e in items], next_cursor=next_cursor)


FORGET_SECONDS = 10.0  # per API request (DELETE of an endpoint) or sweep


def forget_endpoint(endpoint_id: str, seconds: float = FORGET_SECONDS) -> bool:
    """After an endpoint's deletion: every event it had failed leaves its failed list (and
    the failed list, unless another endpoint failed it too), its state there reading
    `endpoint_deleted`. Bounded by `seconds`; True once nothing is left (else the scheduled
    sweep goes on)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        markers = events.failed_markers(endpoint_id, 25)
        if not markers:
            return True
        found = events.delivery_states([(m["session_id"], int(m["sequence"])) for m in markers])
        now = to_iso(utcnow())
        for marker in markers:
            ref = (marker["session_id"], int(marker["sequence"]))
            event = found.get(ref)
            if event is None:
                events.drop_markers([marker])
                continue
            events.forget_endpoint(*ref, endpoint_id, now, _summary_without(event, endpoint_id))
    return False


def _summary_without(event: dict[str, Any], endpoint_id: str) -> str:
    """An event's delivery_status once `endpoint_id` is forgotten: the latest of the others."""
    others = [v for k, v in (event.get("deliveries") or {}).items()
              if k != endpoint_id and isinstance(v, dict) and v.get("status") != "endpoint_deleted"]
    latest = max(others, key=lambda v: str(v.get("at") or ""), default=None)
    return str(latest["status"]) if latest and latest.get("status") else "endpoint_deleted"


def delivery_view(event: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event["event_id"], "event_type": event["event_type"],
            "session_id": event["session_id"], "occurred_at": event["occurred_at"],
            "delivery_status": event.get("delivery_status", "pending"),
            "delivery_attempts": event.get("delivery_attempts", []),
            "failed_endpoints": list(event.get("failed_endpoints") or []),
            "deliveries": targets.deliveries_of(event)}


def redrive(dead_letter_url: str, queue_url: str, progress: Any = None, *,
            limit: int | None = None, seconds: float | None = None, endpoint_id: str | None = None,
            walk: dict[str, int] | None = None) -> int:
    """Move dead-lettered messages back to the delivery queue, in order, keeping each
    message's group (and endpoint); each starts a new delivery round (a fresh attempt budget).
    Returns how many moved. Works on moto (no StartMessageMoveTask) and AWS alike. Without
    `limit` and `seconds` it empties the queue; with them it stops after `limit` messages or
    once `seconds` have passed (checked before each receive of at most 10, so a call stays
    bounded), and a later call continues where it stopped. With `endpoint_id`, only that
    endpoint's messages move: the others received on the way are held and released at the
    end (`walk` then says how many were passed over, and whether the queue's end was reached)."""
    moved = dropped = 0
    held: list[str] = []
    reached_end = False
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while limit is None or moved < limit:
            if deadline is not None and time.monotonic() >= deadline:
                break
            # Never receive more than we will move: a received message stays hidden (and its
            # FIFO group blocked) for the visibility timeout.
            wanted = 10 if limit is None or endpoint_id is not None else min(10, limit - moved)
            received = queue.receive(dead_letter_url, max_messages=wanted, visibility_timeout=120)
            if not received:
                reached_end = True
                break
            messages = [m for m in received
                        if endpoint_id is None or (queue.attribute(m, ENDPOINT) or DEFAULT_ENDPOINT) == endpoint_id]
            held += [m["ReceiptHandle"] for m in received if m not in messages]
            # a deleted endpoint's dead letters are deleted, not moved (delivery would drop them);
            # not the default endpoint's: WEBHOOK_URL brings it back whenever it is set
            orphans = [m for m in messages if (queue.attribute(m, ENDPOINT) or DEFAULT_ENDPOINT) != DEFAULT_ENDPOINT
                       and targets.by_id(queue.attribute(m, ENDPOINT) or DEFAULT_ENDPOINT) is None]
            if orphans:
                queue.delete_batch(dead_letter_url, [m["ReceiptHandle"] for m in orphans])
                dropped += len(orphans)
                messages = [m for m in messages if m not in orphans]
            # Sent one by one, in order (a partly failed SendMessageBatch could store a group's
            # later message without its earlier one), then deleted together: a redrive that dies
            # in between leaves copies in both queues, delivered again under the same webhook-id.
            for message in messages:
                attributes = message.get("Attributes", {})
                group = attributes.get("MessageGroupId", "redrive")
                dedup = attributes.get("MessageDeduplicationId", message["MessageId"])
                round_id = new_round()
                target = queue.attribute(message, ENDPOINT) or DEFAULT_ENDPOINT
                queue.enqueue(message["Body"], group=group, queue_url=queue_url,
                              dedup_id=f"{dedup[:80]}:redrive:{round_id}",
                              attributes={ROUND: round_id, ENDPOINT: target})
            refused = queue.delete_batch(dead_letter_url, [m["ReceiptHandle"] for m in messages])
            if refused:
                logger.warning("redriven messages not deleted from the dead-letter queue",
                               extra={"refused": len(refused)})
            for _ in messages:
                moved += 1
                if progress:
                    progress(moved)
    finally:
        if held:
            queue.release(held, dead_letter_url)
    if walk is not None:
        walk.update(passed=len(held), reached_end=int(reached_end), dropped=dropped)
    return moved


def redrive_step(limit: int, seconds: float = REDRIVE_SECONDS, endpoint_id: str | None = None) -> RedriveResult:
    """One bounded step of a redrive (POST /v1/deliveries/redrive): move up to `limit`
    dead-lettered messages within `seconds`, and say how many are still dead-lettered
    (approximate, as SQS counts; the caller repeats until it is 0). With `endpoint_id`, only
    that endpoint's; `remaining` is then 0 once a step has walked the whole queue, and
    otherwise what the queue holds besides the other endpoints' messages it passed over."""
    settings = get_settings()
    walk: dict[str, int] = {}
    moved = redrive(settings.dead_letter_queue_url, settings.delivery_queue_url,
                    limit=limit, seconds=seconds, endpoint_id=endpoint_id, walk=walk)
    depth = queue.depth(settings.dead_letter_queue_url)
    if endpoint_id is not None:
        depth = 0 if walk["reached_end"] else max(0, depth - walk["passed"])
    return RedriveResult(moved=moved, remaining=depth, dropped=walk.get("dropped", 0))


# ---- inbox forwards share the delivery queue (chalicelib/inbox/forwarding.py) --------------


def handle_queue_batch(event: dict[str, Any]) -> dict[str, Any]:
    """The delivery queue's two kinds of message, dispatched by kind: inbox forwards
    (forwarding.handle_batch) and webhooks (handle_delivery_batch). Their FIFO groups never
    mix (inbox:<id>:<destination> vs a session id), so each part keeps its own order."""
    records = event.get("Records", [])
    forwards = [r for r in records if forwarding.is_forward(r.get("body", ""))]
    if not forwards:
        return handle_delivery_batch(event)
    settings = get_settings()
    failed = forwarding.handle_batch(forwards, forwarding.Channel(
        send=lambda url, method, body, headers: webhooks.send(
            url, method, body, headers, settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private_targets),
        hide=queue.change_visibility,
        dead_letter=lambda record, attempts: _dead_letter_forward(record, attempts, settings),
        round_of=lambda record: queue.attribute(record, ROUND) or ORIGINAL_ROUND,
        schedule=settings.retry_schedule))
    rest = [r for r in records if not forwarding.is_forward(r.get("body", ""))]
    result = handle_delivery_batch({**event, "Records": rest}) if rest else {"batchItemFailures": []}
    return {"batchItemFailures": result["batchItemFailures"] + [{"itemIdentifier": m} for m in failed]}


def _dead_letter_forward(record: dict[str, Any], attempts: int, settings: Settings) -> None:
    round_id = queue.attribute(record, ROUND) or ORIGINAL_ROUND
    queue.enqueue(record["body"], group=record.get("attributes", {}).get("MessageGroupId") or "unknown",
                  queue_url=settings.dead_letter_queue_url, dedup_id=f"{record['messageId']}:{round_id}:dead",
                  attributes={ROUND: round_id, DEAD_LETTERED: "delivery", "attempts": str(attempts)})
    count(WEBHOOK_DEAD_LETTERED, Source="delivery")
