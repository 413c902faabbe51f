"""The delivery function: webhook messages from the FIFO queue -> signed POSTs.

2xx: delivered. 410 Gone: the receiver asked us to stop; not retried. Anything else (other
status, timeout, connection or TLS error): the message is hidden for the next delay of the
retry schedule (or the receiver's Retry-After on 429/503) and reported in batchItemFailures;
after the last attempt SQS moves it to the dead-letter queue. Every attempt is logged on the
event item, so the events listing shows each event's delivery status.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from . import queue, store, webhooks
from .clock import to_iso, utcnow
from .config import Settings, get_settings
from .errors import ServiceError
from .models import Page, RedriveResult

log = logging.getLogger(__name__)
MAX_RETRY_AFTER = 43_200  # SQS visibility timeout ceiling: 12 hours
REDRIVE_SECONDS = 10.0  # per API request: well under API Gateway's 29 s integration timeout


class DeliveryFailed(Exception):
    """This attempt failed; SQS will offer the message again after the back-off."""


class EventNotFound(ServiceError):
    status, code = 404, "event_not_found"


def retry_delay(settings: Settings, attempt: int, result: webhooks.Attempt) -> int:
    """Seconds to wait before attempt `attempt + 1`."""
    if result.status_code in (429, 503) and result.retry_after is not None:
        return int(min(result.retry_after, MAX_RETRY_AFTER))
    schedule = settings.retry_schedule
    return schedule[min(attempt - 1, len(schedule) - 1)] if schedule else 0


def deliver(body: str, attempt: int, receipt_handle: str) -> str:
    """Deliver one message (attempt number = SQS's receive count). Returns the outcome
    ('delivered', 'gone'); raises DeliveryFailed when SQS should offer it again."""
    settings = get_settings()
    message = json.loads(body)
    if not settings.webhook_url:
        raise DeliveryFailed("WEBHOOK_URL is not configured")
    headers = webhooks.signed_headers(settings.webhook_secret, message["event_id"], body)
    result = webhooks.post(settings.webhook_url, body, headers, settings.webhook_timeout_seconds,
                           allow_private=settings.webhook_allow_private_targets)
    final = attempt >= settings.max_attempts
    outcome = ("delivered" if result.delivered else "gone" if result.gone
               else "failed" if final else "retrying")
    record_attempt(message, attempt, result, outcome)
    log.info("webhook %s attempt %d: %s (%s)", message["event_id"], attempt, outcome,
             result.status_code or result.error)
    if outcome in ("delivered", "gone"):
        return outcome
    # On the last attempt hide it for no time: the next receive moves it to the DLQ.
    queue.delay(receipt_handle, 0 if final else retry_delay(settings, attempt, result))
    raise DeliveryFailed(f"{message['event_id']}: {result.status_code or result.error}")


def record_attempt(message: dict[str, Any], attempt: int, result: webhooks.Attempt,
                   outcome: str) -> None:
    """Append the attempt to the event item's delivery log and set its status; an event
    whose status is `failed` is listed in GSI1 under DELIVERIES#failed."""
    now = to_iso(utcnow())
    status = {"delivered": "delivered", "gone": "gone", "failed": "failed"}.get(outcome, "retrying")
    entry = {"attempt": attempt, "status_code": result.status_code, "error": result.error,
             "latency_ms": result.latency_ms, "at": now, "outcome": outcome}
    expression = ("SET delivery_status = :status, last_attempt_at = :now,"
                  " delivery_attempts = list_append(if_not_exists(delivery_attempts, :empty), :entry)")
    vals = {"status": status, "now": now, "empty": [], "entry": [entry]}
    if status == "failed":
        expression += ", GSI1PK = :failed_pk, GSI1SK = :failed_sk"
        vals.update(failed_pk="DELIVERIES#failed", failed_sk=f"{now}#{message['event_id']}")
    else:
        if status == "delivered":
            expression += ", delivered_at = :now"
        expression += " REMOVE GSI1PK, GSI1SK"
    try:
        store.update_item(store.event_key(message["session_id"], message["sequence"]), expression,
                          condition="attribute_exists(PK)", vals=store.values(**vals))
    except store.ConditionFailed:
        log.info("event %s no longer stored (session deleted)", message["event_id"])


def handle_delivery_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Process an SQS FIFO batch in order. A failed message fails the rest of its session's
    messages in the batch (they must not overtake it); other sessions keep flowing.

    The followers are made visible again at once: FIFO will not hand them out while the
    failed head of their group is hidden for its back-off, and without this they would stay
    hidden for the queue's whole visibility timeout after the head is retried. (Powertools'
    SqsFifoPartialProcessor skips a failed group the same way but leaves followers hidden.)
    """
    failed: list[str] = []
    blocked: dict[str, str] = {}  # group -> the message id of its failed head
    for record in event.get("Records", []):
        group = record.get("attributes", {}).get("MessageGroupId", "")
        if group in blocked:
            _held_back(record, blocked[group])
            failed.append(record["messageId"])
            continue
        try:
            deliver(record["body"], int(record["attributes"]["ApproximateReceiveCount"]),
                    record["receiptHandle"])
        except DeliveryFailed:
            blocked[group] = record["messageId"]
            failed.append(record["messageId"])
        except Exception:  # noqa: BLE001 - one bad message must not fail other sessions
            log.exception("delivery of message %s failed", record.get("messageId"))
            blocked[group] = record["messageId"]
            failed.append(record["messageId"])
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def _held_back(record: dict[str, Any], head: str) -> None:
    """A message waiting behind its session's failed head goes back at once. Each such
    receive counts towards its maxReceiveCount too, so when this was its last one SQS
    dead-letters it with its head: record it as failed (never sent), so that
    GET /v1/deliveries?status=failed lists every webhook that needs a redrive."""
    queue.delay(record["receiptHandle"], 0)
    count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    if count < get_settings().max_attempts:
        return
    try:
        message = json.loads(record["body"])
        record_attempt(message, count, webhooks.Attempt(
            None, f"not sent: waiting behind message {head}, which failed", 0), "failed")
    except Exception:  # noqa: BLE001 - the bookkeeping must not block the batch
        log.exception("could not record held-back message %s as failed", record.get("messageId"))


# ---- operator actions ----------------------------------------------------------------------


def find_event(event_id: str) -> dict[str, Any]:
    items, _ = store.query_page(index="GSI2", key_condition="GSI2PK = :pk",
                                vals=store.values(pk=f"EVENT#{event_id}"), limit=1, cursor=None,
                                cursor_scope="event")
    item = store.get_item({"PK": items[0]["PK"], "SK": items[0]["SK"]}) if items else None
    if item is None:
        raise EventNotFound(f"Event '{event_id}' not found", event_id=event_id)
    return item


def redeliver(event_id: str) -> dict[str, Any]:
    """Queue one event's webhook again (same webhook-id, so receivers can de-duplicate)."""
    event = find_event(event_id)
    body = webhooks.dumps(webhooks.payload(event))
    queue.enqueue(body, group=event["session_id"], dedup_id=f"{event_id}:r{time.time_ns()}")
    try:  # conditional: an event deleted meanwhile must not come back as a stub item
        store.update_item(store.event_key(event["session_id"], event["sequence"]),
                          "SET delivery_status = :pending REMOVE GSI1PK, GSI1SK",
                          condition="attribute_exists(PK)", vals=store.values(pending="pending"))
    except store.ConditionFailed as exc:
        raise EventNotFound(f"Event '{event_id}' not found", event_id=event_id) from exc
    return {"event_id": event_id, "status": "queued"}


def list_failed(limit: int, cursor: str | None) -> Page:
    """Events whose delivery failed for good, newest first: one Query on GSI1 + one BatchGet."""
    items, next_cursor = store.query_page(
        index="GSI1", key_condition="GSI1PK = :pk", vals=store.values(pk="DELIVERIES#failed"),
        limit=limit, cursor=cursor, forward=False, cursor_scope="deliveries:failed")
    return Page(items=[delivery_view(e) for e in store.full_items(items)], next_cursor=next_cursor)


def delivery_view(event: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event["event_id"], "event_type": event["event_type"],
            "session_id": event["session_id"], "occurred_at": event["occurred_at"],
            "delivery_status": event.get("delivery_status", "pending"),
            "delivery_attempts": event.get("delivery_attempts", [])}


def redrive(dead_letter_url: str, queue_url: str, progress: Any = None, *,
            limit: int | None = None, seconds: float | None = None) -> int:
    """Move dead-lettered messages back to the delivery queue, in order, keeping each
    message's group; returns how many moved. Works on moto (no StartMessageMoveTask) and AWS
    alike. Without `limit` and `seconds` it empties the queue; with them it stops after
    `limit` messages or once `seconds` have passed (checked before each receive of at most
    10, so a call stays bounded), and a later call continues where it stopped."""
    moved = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    while limit is None or moved < limit:
        if deadline is not None and time.monotonic() >= deadline:
            break
        # Never receive more than we will move: a received message stays hidden (and its
        # FIFO group blocked) for the visibility timeout.
        wanted = 10 if limit is None else min(10, limit - moved)
        messages = queue.receive(dead_letter_url, max_messages=wanted, visibility_timeout=120)
        if not messages:
            break
        for message in messages:
            attributes = message.get("Attributes", {})
            group = attributes.get("MessageGroupId", "redrive")
            dedup = attributes.get("MessageDeduplicationId", message["MessageId"])
            queue.enqueue(message["Body"], group=group, queue_url=queue_url,
                          dedup_id=f"{dedup[:80]}:redrive:{time.time_ns()}")
            queue.delete(dead_letter_url, message["ReceiptHandle"])
            moved += 1
            if progress:
                progress(moved)
    return moved


def redrive_step(limit: int, seconds: float = REDRIVE_SECONDS) -> RedriveResult:
    """One bounded step of a redrive (POST /v1/deliveries/redrive): move up to `limit`
    dead-lettered messages within `seconds`, and say how many are still dead-lettered
    (approximate, as SQS counts; the caller repeats until it is 0)."""
    settings = get_settings()
    moved = redrive(settings.dead_letter_queue_url, settings.delivery_queue_url,
                    limit=limit, seconds=seconds)
    return RedriveResult(moved=moved, remaining=queue.depth(settings.dead_letter_queue_url))
