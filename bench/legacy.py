"""Today's (before issue #17) stream handlers, kept for bench/bench_cost.py only: analytics
counted per RECORD (one transaction each: a marker item keyed by the record's eventID plus the
counter ADDs, counters under one partition key per kind) and feedback sending one SendMessage
per event. Copied from chalicelib at commit ae6a084; never shipped, never imported by the app.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from typing import Any

from chalicelib.db import table
from chalicelib.db.table import from_item
from chalicelib.domain.clock import seconds_between
from chalicelib.jobs.analytics import completion_bucket, hour_of
from chalicelib.observability import STREAM_BATCH_FAILURES, logger
from chalicelib.observability import count as metric
from chalicelib.pipeline import feedback, queue

STATS_SHARDS = 4
MARKER_TTL_SECONDS = 2 * 86400
GLOBAL = "LEGACY#STATS#GLOBAL"  # prefixed: the bench runs both designs on one table
MANUALS = "LEGACY#STATS#MANUALS"

Deltas = dict[tuple[str, str], dict[str, float]]


def global_key(shard: int) -> tuple[str, str]:
    return GLOBAL, f"SHARD#{shard}"


def manual_key(manual_id: str, shard: int) -> tuple[str, str]:
    return MANUALS, f"{manual_id}#{shard}"


def hour_key(hour: str, shard: int) -> tuple[str, str]:
    return f"LEGACY#STATS#HOUR#{hour}", f"SHARD#{shard}"


def apply_once(record_id: str, deltas: Deltas) -> bool:
    tx = table.Transaction()
    tx.put("marker", {"PK": f"LEGACY#STATSEVT#{record_id}", "SK": "#", "type": "stats_marker",
                      "expires_at": int(time.time()) + MARKER_TTL_SECONDS},
           condition="attribute_not_exists(PK)")
    for (pk, sk), attrs in deltas.items():
        names = {f"#a{i}": a for i, a in enumerate(attrs)}
        vals: dict[str, Any] = {f"v{i}": v for i, v in enumerate(attrs.values())}
        expression = "ADD " + ", ".join(f"#a{i} :v{i}" for i in range(len(attrs)))
        if pk == MANUALS:
            names["#m"], vals["m"] = "manual_id", sk.rsplit("#", 1)[0]
            expression += " SET #m = :m"
        tx.update(f"{pk}/{sk}", {"PK": pk, "SK": sk}, expression, names=names, vals=table.values(**vals))
    try:
        tx.commit()
    except table.TransactionCanceled as exc:
        if exc.failed("marker"):
            return False
        raise
    return True


def _shard(record_id: str) -> int:
    return int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16) % STATS_SHARDS


def deltas_for(record: dict[str, Any]) -> Deltas:
    """What one stream record adds to which counters (pure)."""
    name = record.get("eventName")
    data = record.get("dynamodb", {})
    image = from_item(data.get("OldImage") if name == "REMOVE" else data.get("NewImage")) or {}
    kind = image.get("type")
    n = _shard(record.get("eventID", ""))
    glob = global_key(n)
    out: Deltas = defaultdict(dict)

    def add(key: tuple[str, str], attr: str, value: float = 1) -> None:
        out[key][attr] = out[key].get(attr, 0) + value

    if name == "MODIFY" and kind == "event":  # a delivery's status moved into or out of failed
        before = (from_item(data.get("OldImage")) or {}).get("delivery_status")
        after = (from_item(data.get("NewImage")) or {}).get("delivery_status")
        if before != after and "failed" in (before, after):
            add(glob, "deliveries_failed", 1 if after == "failed" else -1)
    elif name == "REMOVE" and kind == "event":  # deleted with its session
        if image.get("delivery_status") == "failed":
            add(glob, "deliveries_failed", -1)
    elif name == "INSERT" and kind == "event":
        hour = hour_key(hour_of(image["occurred_at"]), n)
        manual = manual_key(image["manual_id"], n)
        if image["event_type"] == "session_created":
            add(glob, "sessions_active")
            add(glob, "sessions_started")
            add(manual, "started")
            add(hour, "sessions_started")
        elif image["event_type"] == "progress_update":
            if image.get("step_status") == "DONE" and image.get("applied"):
                add(hour, "steps_completed")
        elif image["event_type"] == "session_ended":
            status = image["session_status"]
            add(glob, "sessions_active", -1)
            add(glob, f"sessions_{status}")
            add(hour, "sessions_ended")
            if status == "completed":
                seconds = seconds_between(image["started_at"], image["ended_at"])
                add(glob, "completion_ms_sum", round(seconds * 1000))
                add(glob, completion_bucket(seconds))
                add(manual, "completed")
    elif kind == "message" and name in ("INSERT", "REMOVE"):
        add(glob, "messages", 1 if name == "INSERT" else -1)
        if name == "INSERT":
            add(hour_key(hour_of(image["created_at"]), n), "messages")
    elif kind == "manual" and name in ("INSERT", "REMOVE"):
        add(glob, "manuals", 1 if name == "INSERT" else -1)
    elif kind == "session" and name == "REMOVE":  # a deleted session leaves the numbers
        status = image["status"]
        add(glob, f"sessions_{status}", -1)
        manual = manual_key(image["manual_id"], n)
        add(manual, "started", -1)
        if status == "completed":
            seconds = seconds_between(image["started_at"], image["ended_at"])
            add(glob, "completion_ms_sum", -round(seconds * 1000))
            add(glob, completion_bucket(seconds), -1)
            add(manual, "completed", -1)
    return {k: v for k, v in out.items() if v}


def count(record: dict[str, Any]) -> bool:
    """Apply one record's deltas exactly once; returns False if it was already counted."""
    deltas = deltas_for(record)
    if not deltas:
        return False
    return apply_once(record["eventID"], deltas)


def handle_stream_batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Count a stream batch in order; a failure stops there and is retried from it."""
    for record in records:
        try:
            count(record)
        except Exception:  # noqa: BLE001 - retried from this record, like the feedback function
            sequence = record.get("dynamodb", {}).get("SequenceNumber")
            logger.exception("could not count a stream record; retrying from it",
                             extra={"sequence_number": sequence})
            metric(STREAM_BATCH_FAILURES, Function="analytics")
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}


def handle_feedback_batch(records: list[dict[str, Any]], queue_url: str | None = None) -> dict[str, Any]:
    """One SendMessage per event, in stream order; a failure stops there and is retried from it."""
    from chalicelib.pipeline import targets

    every = targets.every(configure=False)  # today's fan-out: one message per endpoint that wants it
    for record in records:
        for message in feedback.messages_of(record, every):
            try:
                queue.enqueue(message.body, group=message.group, dedup_id=message.dedup_id, queue_url=queue_url,
                              attributes=message.attributes)
            except Exception:  # noqa: BLE001 - retried from this record
                return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}
