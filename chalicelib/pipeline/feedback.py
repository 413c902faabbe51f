"""The feedback function: event items from the table's stream -> webhook messages on the
FIFO delivery queue, ten per SendMessageBatch: one message per webhook endpoint whose filter
takes the event (chalicelib/pipeline/fanout.py: group = (endpoint, session), dedup id =
(endpoint, event)). The endpoint list comes from a per-instance cache (10 s), so a batch
normally reads nothing from the table, and it never writes it (the default endpoint of
WEBHOOK_URL is stored by the API or the delivery function: see targets.every).

Records are handled in stream order. A batch never holds two messages of one FIFO group, so
however SQS treats a partly failed batch, a group's messages are stored in stream order.
When a send fails, the function stops and reports the earliest record not yet sent in
`batchItemFailures`: Lambda resumes from it, so nothing overtakes it, and what was already
sent after it is sent again with the same dedup id, which SQS drops (within its 5-minute
window). A record that can never be sent (not an event item, an event type no endpoint
asked for, a malformed item) is skipped, so it cannot block the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.db.table import from_item
from chalicelib.inbox import forwarding
from chalicelib.observability import STREAM_BATCH_FAILURES, count, logger
from chalicelib.pipeline import fanout, queue, targets

SEND_BATCH = 10  # SendMessageBatch's limit


@dataclass(frozen=True)
class Outgoing:
    """One webhook message to send, and the stream record it came from."""

    position: int  # in the stream batch
    sequence_number: str
    message: queue.Message


def event_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """The event item a stream record inserted, or None for any other record."""
    if record.get("eventName") != "INSERT":
        return None
    image = record.get("dynamodb", {}).get("NewImage") or {}
    if image.get("type", {}).get("S") != "event":
        return None
    return from_item(image)


def messages_of(record: dict[str, Any], every: list[dict[str, Any]]) -> list[queue.Message]:
    """The webhook messages for a record, one per endpoint that wants it (none: a record
    that has none, or can never have one)."""
    try:
        event = event_of(record)
        if event is None:
            return []
        return fanout.messages_for(event, every)
    except (KeyError, TypeError, ValueError):
        logger.exception("skipping a malformed stream record", extra={"stream_event_id": record.get("eventID")})
        return []


def next_batch(pending: list[Outgoing]) -> list[Outgoing]:
    """Up to ten pending messages in stream order, at most one per FIFO group (endpoint and
    session)."""
    batch: list[Outgoing] = []
    groups: set[str] = set()
    for item in pending:
        if item.message.group not in groups:
            batch.append(item)
            groups.add(item.message.group)
            if len(batch) == SEND_BATCH:
                break
    return batch


def handle_stream_batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Process a stream batch; returns Lambda's partial batch response."""
    try:
        every = targets.every(configure=False)  # reads only: this function never writes the table
    except Exception:  # noqa: BLE001 - the endpoint list unreadable: retry the batch from its start
        logger.exception("could not read the webhook endpoints")
        count(STREAM_BATCH_FAILURES, Function="feedback")
        first = records[0].get("dynamodb", {}).get("SequenceNumber", "") if records else ""
        return {"batchItemFailures": [{"itemIdentifier": first}] if records else []}
    pending = [Outgoing(n, r.get("dynamodb", {}).get("SequenceNumber", ""), m)
               for n, r in enumerate(records) for m in messages_of(r, every)]
    while pending:
        batch = next_batch(pending)
        try:
            failed = queue.enqueue_batch([item.message for item in batch])
        except Exception:  # noqa: BLE001 - any failure to send is retried from the record
            logger.exception("could not enqueue webhook messages")
            failed = {item.message.dedup_id for item in batch}
        sent = {id(item) for item in batch if item.message.dedup_id not in failed}
        pending = [item for item in pending if id(item) not in sent]
        if failed:
            first = pending[0]  # the earliest record not sent: Lambda resumes from it
            logger.error("could not enqueue a stream record; retrying from it",
                         extra={"sequence_number": first.sequence_number, "failed": len(failed)})
            count(STREAM_BATCH_FAILURES, Function="feedback")
            return {"batchItemFailures": [{"itemIdentifier": first.sequence_number}]}
    return {"batchItemFailures": []}


# ---- inbox forwarding rides the same stream (chalicelib/inbox/forwarding.py) ---------------


def handle_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream batch's two kinds of record: captures of inboxes with destinations (one
    forward message per destination), then event items (handle_stream_batch). Lambda
    resumes from the earliest record either part could not send."""
    forwards_failed = forwarding.enqueue(records, lambda batch: queue.enqueue_batch(
        [queue.Message(body=m.body, group=m.group, dedup_id=m.dedup_id) for m in batch]))
    result = handle_stream_batch(records)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    if forwards_failed is not None:
        count(STREAM_BATCH_FAILURES, Function="feedback")
        failed.append(forwards_failed)
    if not failed:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": min(failed, key=lambda s: int(s) if s.isdigit() else 0)}]}
