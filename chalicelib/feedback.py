"""The feedback function: event items from the table's stream -> webhook messages on the
FIFO delivery queue (group = session, dedup id = event id).

Records are handled in stream order. A record that cannot be sent (SQS unavailable) stops the
batch there and is reported in `batchItemFailures`: Lambda resumes from it, so nothing before
it is sent twice and nothing after it overtakes it. A record that can never be sent (not an
event item, an event type nobody asked for, a malformed item) is skipped, so it cannot block
the stream.
"""

from __future__ import annotations

from typing import Any

from . import queue, store, webhooks
from .observability import STREAM_BATCH_FAILURES, count, logger
from .config import get_settings



def event_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """The event item a stream record inserted, or None for any other record."""
    if record.get("eventName") != "INSERT":
        return None
    image = record.get("dynamodb", {}).get("NewImage") or {}
    if image.get("type", {}).get("S") != "event":
        return None
    return store.from_item(image)


def forward(record: dict[str, Any]) -> str | None:
    """Send one record's webhook message; returns the event id sent, if any."""
    try:
        event = event_of(record)
        if event is None or not webhooks.wanted(event, get_settings().event_types):
            return None
        body = webhooks.dumps(webhooks.payload(event))
    except (KeyError, TypeError, ValueError):
        logger.exception("skipping a malformed stream record", extra={"stream_event_id": record.get("eventID")})
        return None
    queue.enqueue(body, group=event["session_id"], dedup_id=event["event_id"])
    return event["event_id"]


def handle_stream_batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Process a stream batch; returns Lambda's partial batch response."""
    for record in records:
        try:
            forward(record)
        except Exception:  # noqa: BLE001 - any failure to send is retried from this record
            sequence = record.get("dynamodb", {}).get("SequenceNumber")
            logger.exception("could not enqueue a stream record; retrying from it",
                             extra={"sequence_number": sequence})
            count(STREAM_BATCH_FAILURES, Function="feedback")
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}
