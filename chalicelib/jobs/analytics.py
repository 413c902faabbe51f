"""Analytics maintained from the table's stream: exact, sharded counters; reads never scan.

Every stream record that changes a number (an event item, a message, a manual, a deleted
session) becomes ONE transaction: a marker item keyed by the record's eventID (conditional
put: a record Lambda delivers twice is counted once) plus ADDs on counter items. Counters are
split over STATS_SHARDS items picked by the record's id, so no single item takes every write
(one item sustains ~1000 writes/s; with 4 shards the busiest counter sustains ~4000 events/s).
Reads merge the shards: a fixed number of items, whatever the table's size. The counter
items are described in chalicelib/db/stats.py.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.db import stats
from chalicelib.db.table import from_item
from chalicelib.domain.clock import seconds_between
from chalicelib.domain.vocabulary import SESSION_STATUSES
from chalicelib.observability import STREAM_BATCH_FAILURES, logger
from chalicelib.observability import count as metric

STATS_SHARDS = stats.SHARDS

Deltas = stats.Deltas


def completion_bucket(seconds: float) -> str:
    """Completion times are kept to the second under an hour, to the minute beyond."""
    return f"h_s{int(seconds)}" if seconds < 3600 else f"h_m{int(seconds // 60)}"


def bucket_value(name: str) -> int:
    unit, number = name[2], int(name[3:])
    return number if unit == "s" else number * 60


def hour_of(iso: str) -> str:
    return iso[:13]  # 2026-11-22T10


def _shard(record_id: str) -> int:
    return int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16) % STATS_SHARDS


def deltas_for(record: dict[str, Any]) -> Deltas:
    """What one stream record adds to which counters (pure)."""
    name = record.get("eventName")
    data = record.get("dynamodb", {})
    image = from_item(data.get("OldImage") if name == "REMOVE" else data.get("NewImage")) or {}
    kind = image.get("type")
    n = _shard(record.get("eventID", ""))
    glob = stats.global_key(n)
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
        hour = stats.hour_key(hour_of(image["occurred_at"]), n)
        manual = stats.manual_key(image["manual_id"], n)
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
            add(stats.hour_key(hour_of(image["created_at"]), n), "messages")
    elif kind == "manual" and name in ("INSERT", "REMOVE"):
        add(glob, "manuals", 1 if name == "INSERT" else -1)
    elif kind == "session" and name == "REMOVE":  # a deleted session leaves the numbers
        status = image["status"]
        add(glob, f"sessions_{status}", -1)
        manual = stats.manual_key(image["manual_id"], n)
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
    return stats.apply_once(record["eventID"], deltas)


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


# ---- reads ---------------------------------------------------------------------------------


def _merged(items: list[dict[str, Any]]) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for item in items:
        for key, value in item.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "expires_at":
                total[key] += value
    return total


def overview() -> dict[str, Any]:
    """One BatchGetItem of the global shards."""
    found = stats.counters([stats.global_key(n) for n in range(STATS_SHARDS)])
    total = _merged(list(found.values()))
    by_status = {s: int(total.get(f"sessions_{s}", 0)) for s in SESSION_STATUSES}
    sessions = sum(by_status.values())
    completed = by_status["completed"]
    histogram = sorted((bucket_value(k), int(v)) for k, v in total.items() if k.startswith("h_") and v > 0)
    values = [value for value, times in histogram for _ in range(times)]
    return {
        "sessions": {"total": sessions, "by_status": by_status},
        "manuals": int(total.get("manuals", 0)),
        "messages": int(total.get("messages", 0)),
        "deliveries_failed": int(total.get("deliveries_failed", 0)),
        "completion_rate": round(completed / sessions, 4) if sessions else 0.0,
        # sums are kept in whole milliseconds: exact under any order of additions
        "average_completion_seconds": round(total["completion_ms_sum"] / completed / 1000, 3) if completed else None,
        "median_completion_seconds": statistics.median(values) if values else None,
    }


def popular_manuals(limit: int) -> list[dict[str, Any]]:
    """One Query over the per-manual counters (their number grows with manuals, not sessions)."""
    per_manual: dict[str, dict[str, int]] = defaultdict(lambda: {"started": 0, "completed": 0})
    for item in stats.per_manual():
        entry = per_manual[item["manual_id"]]
        entry["started"] += int(item.get("started", 0))
        entry["completed"] += int(item.get("completed", 0))
    ranked = sorted(per_manual.items(), key=lambda kv: (-kv[1]["started"], -kv[1]["completed"], kv[0]))
    return [{"manual_id": m, "sessions_started": c["started"], "sessions_completed": c["completed"],
             "completion_rate": round(c["completed"] / c["started"], 4) if c["started"] else 0.0}
            for m, c in ranked if c["started"] > 0][:limit]


def recent_activity(hours: int, now: datetime | None = None) -> dict[str, Any]:
    """Hour buckets for the last `hours` hours (UTC), oldest first: BatchGetItem of
    hours x shards keys (one call up to 25 hours)."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    labels = [(end - timedelta(hours=h)).strftime("%Y-%m-%dT%H") for h in reversed(range(hours))]
    found = stats.counters([stats.hour_key(label, n) for label in labels for n in range(STATS_SHARDS)])
    fields = ("sessions_started", "steps_completed", "messages", "sessions_ended")
    buckets: list[dict[str, Any]] = []
    for label in labels:
        merged = _merged([found[k] for k in (stats.hour_key(label, n)
                                              for n in range(STATS_SHARDS)) if k in found])
        buckets.append({"hour": f"{label}:00:00Z", **{f: int(merged.get(f, 0)) for f in fields}})
    totals = {f: sum(b[f] for b in buckets) for f in fields}
    return {"hours": hours, "buckets": buckets, "totals": totals}

