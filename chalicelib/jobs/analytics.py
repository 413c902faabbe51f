"""Analytics maintained from the table's stream: exact, write-sharded counters, counted once
per stream BATCH; reads never scan. The items are described in chalicelib/db/stats.py.

A batch's records are turned into counter deltas in memory (`deltas_for`, pure), summed, and
applied in as few transactions as fit (TransactWriteItems takes 100 items): each transaction
adds its records' sums to the counters of ONE shard and moves the checkpoints its records
fall under, conditional on the checkpoints it read. A record is counted when its sequence
number is above its checkpoint, so a record Lambda delivers again (a retried batch, a
bisected half, a batch overlapping one partly counted) is never counted twice.

Which checkpoint: the stream SHARD's, when Lambda says which shard the batch is from. It says
so only to a mapping with a tumbling window (infra/package.py gives the analytics mapping one;
the window's state is not used: the function answers `"state": {}` as such a mapping
requires). A shard's sequence numbers increase, and with ParallelizationFactor 1 (as
packaged) Lambda hands a shard over in order, one batch at a time, finishing a parent shard
before its children; so one checkpoint per shard is exact, and a batch costs one read and
(usually) one transaction: the counters it touches and the checkpoint.

Without a shard id (a mapping without the window), the checkpoint is per table partition KEY
(a session's, a manual's): one checkpoint for the whole stream would be wrong, since a table
has several shards at once (one per DynamoDB partition), their pollers run concurrently and
their sequence numbers interleave. The records of one partition key reach the function in
increasing sequence order: every item of one key lives in one partition, hence one shard at a
time, and DynamoDB keeps each item's records in order across shards. That mode's limits, and
its cost (a checkpoint write per key per batch, about one per progress update when sessions
interleave), are why the packaged mapping has the window:
  - comparing sequence numbers across a parent shard and its child relies on them growing
    along the lineage, which AWS does not document (a checkpoint belongs to the stream ARN it
    was written on: numbers of two streams are never compared);
  - DynamoDB may split ONE partition key's items over two partitions (only under traffic to
    that key beyond what a partition takes; a session's own writes are kept well under that,
    see bench/capacity.py); two sibling shards could then carry one key's records at once;
  - in both cases the failure is a record missed, never one counted twice: a checkpoint only
    moves up, and every move is conditional on the value read.
Records that change no number (most progress reports: ONGOING, repeated DONE) cost nothing but
the read.

Switching from per key to per shard (the deploy that adds the window) stays exact: records
created before a shard's checkpoint existed are also checked against their keys' checkpoints
(`_without_counted_per_key`), however Lambda hands them over. The other way is not handled:
per-key counting never reads shard checkpoints, so the window must not be removed again.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.db import stats
from chalicelib.db.table import TransactionCanceled, from_item
from chalicelib.domain.clock import seconds_between
from chalicelib.domain.vocabulary import SESSION_STATUSES
from chalicelib.observability import STREAM_BATCH_FAILURES, logger
from chalicelib.observability import count as metric

STATS_SHARDS = stats.SHARDS
ATTEMPTS = 5  # a batch whose checkpoints moved meanwhile, or whose transaction met another, is re-read this often

# What a record adds, before a shard is picked: ("global", ""), ("hour", <hour>) or
# ("manual", <manual_id>) -> attribute -> delta.
Deltas = dict[tuple[str, str], dict[str, float]]


def completion_bucket(seconds: float) -> str:
    """Completion times are kept to the second under an hour, to the minute beyond."""
    return f"h_s{int(seconds)}" if seconds < 3600 else f"h_m{int(seconds // 60)}"


def bucket_value(name: str) -> int:
    unit, number = name[2], int(name[3:])
    return number if unit == "s" else number * 60


def hour_of(iso: str) -> str:
    return iso[:13]  # 2026-11-22T10


def deltas_for(record: dict[str, Any]) -> Deltas:
    """What one stream record adds to which counters, before a shard is picked (pure)."""
    name = record.get("eventName")
    data = record.get("dynamodb", {})
    image = from_item(data.get("OldImage") if name == "REMOVE" else data.get("NewImage")) or {}
    kind = image.get("type")
    glob = ("global", "")
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
        hour = ("hour", hour_of(image["occurred_at"]))
        manual = ("manual", image["manual_id"])
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
            add(("hour", hour_of(image["created_at"])), "messages")
    elif kind == "manual" and name in ("INSERT", "REMOVE"):
        add(glob, "manuals", 1 if name == "INSERT" else -1)
    elif kind == "session" and name == "REMOVE":  # a deleted session leaves the numbers
        status = image["status"]
        add(glob, f"sessions_{status}", -1)
        manual = ("manual", image["manual_id"])
        add(manual, "started", -1)
        if status == "completed":
            seconds = seconds_between(image["started_at"], image["ended_at"])
            add(glob, "completion_ms_sum", -round(seconds * 1000))
            add(glob, completion_bucket(seconds), -1)
            add(manual, "completed", -1)
    return {k: v for k, v in out.items() if v}


def placed(deltas: Deltas, shard: int) -> stats.Deltas:
    """The counter items of `shard` that `deltas` go to."""
    out: stats.Deltas = {}
    for (kind, name), attrs in deltas.items():
        key = (stats.global_key(shard) if kind == "global" else stats.hour_key(name, shard)
               if kind == "hour" else stats.manual_key(name, shard))
        out[key] = attrs
    return out


def summed(into: Deltas, more: Deltas) -> None:
    for key, attrs in more.items():
        target = into.setdefault(key, {})
        for attr, value in attrs.items():
            target[attr] = target.get(attr, 0) + value


def _nonzero(deltas: Deltas) -> Deltas:
    cleaned = {key: {a: v for a, v in attrs.items() if v} for key, attrs in deltas.items()}
    return {key: attrs for key, attrs in cleaned.items() if attrs}


@dataclass
class _Counted:
    """One record that changes a number: where it is in the batch, its checkpoint (the
    shard's, or its table partition key's) and its table partition key."""

    position: int
    partition: str
    sequence: int
    deltas: Deltas
    key: str
    created: float  # ApproximateCreationDateTime (epoch seconds)


@dataclass
class _Transaction:
    """Records counted together: their deltas and the checkpoints they move (by checkpoint)."""

    advances: dict[str, tuple[stats.Checkpoint, int]] = field(default_factory=dict)
    deltas: Deltas = field(default_factory=dict)
    records: list[_Counted] = field(default_factory=list)

    def items_with(self, record: _Counted) -> int:
        """Its items (checkpoints + counters) with `record` added."""
        return (len(self.advances) + (record.partition not in self.advances)
                + len(set(self.deltas) | set(record.deltas)))

    def add(self, record: _Counted, checkpoint: stats.Checkpoint) -> None:
        self.advances[record.partition] = (checkpoint, record.sequence)
        summed(self.deltas, record.deltas)
        self.records.append(record)

    def shard(self, attempt: int) -> int:
        """The counters' shard for this transaction: spread by its first record, and moved
        on each attempt (a transaction that met another one on a counter tries another)."""
        seed = f"{self.records[0].partition}:{self.records[0].sequence}:{attempt}"
        return int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % STATS_SHARDS


def _counted_records(records: list[dict[str, Any]],
                     shard_id: str | None) -> tuple[list[_Counted], dict[str, Any] | None]:
    """The records that change a number, in batch order, each under its checkpoint (the
    shard's, else its partition key's); stops at a record that cannot be read (returned
    second: the batch is retried from it)."""
    found: list[_Counted] = []
    for position, record in enumerate(records):
        try:
            deltas = deltas_for(record)
            if not deltas:
                continue
            data = record["dynamodb"]
            key = data["Keys"]["PK"]["S"]
            found.append(_Counted(position, f"SHARD#{shard_id}" if shard_id else key,
                                  int(data["SequenceNumber"]), deltas, key,
                                  float(data.get("ApproximateCreationDateTime") or 0)))
        except (KeyError, TypeError, ValueError):
            logger.exception("could not read a stream record; retrying from it",
                             extra={"sequence_number": record.get("dynamodb", {}).get("SequenceNumber")})
            return found, record
    return found, None


def plan(counted: list[_Counted], checkpoints: dict[str, stats.Checkpoint]) -> tuple[list[_Transaction], int]:
    """The transactions that count what the checkpoints do not cover yet, in batch order,
    each within TransactWriteItems' limit; and how many records were skipped as already
    counted. A checkpoint's records go in sequence order; when they do not fit one
    transaction (a shard's batch touching many manuals) they are split, and each later part
    is conditional on the checkpoint the part before it leaves."""
    fresh: dict[str, list[_Counted]] = {}
    skipped = 0
    for record in counted:
        if checkpoints[record.partition].counted(record.sequence):
            skipped += 1
        else:
            fresh.setdefault(record.partition, []).append(record)
    transactions: list[_Transaction] = []
    current = _Transaction()
    for partition, group in fresh.items():  # dicts keep insertion order: batch order
        checkpoint = checkpoints[partition]
        for record in sorted(group, key=lambda r: r.sequence):
            if current.records and current.items_with(record) > stats.MAX_TRANSACTION_ITEMS:
                if partition in current.advances:  # the next part starts where this one ends
                    checkpoint = checkpoint.moved_to(current.advances[partition][1], int(time.time()))
                transactions.append(current)
                current = _Transaction()
            current.add(record, checkpoint)
    if current.records:
        transactions.append(current)
    return transactions, skipped


# A record counted under a per-key checkpoint (by this function before its mapping had the
# window) was read by an invocation that started before the mapping changed, so it was created
# before the shard's first windowed invocation, hence before its checkpoint was first written.
# The margin covers the clocks (DynamoDB's creation time against the function's).
PER_KEY_HORIZON_SECONDS = 60


def _without_counted_per_key(pending: list[_Counted], checkpoints: dict[str, stats.Checkpoint],
                             stream: str) -> tuple[list[_Counted], int]:
    """Records of a shard created before its checkpoint existed (plus the horizon) may have
    been counted under per-key checkpoints, before the mapping had the window: a batch partly
    counted then comes back after the deploy that added it, whole or in several invocations.
    Their keys' checkpoints are read (one more BatchGetItem per 100 keys, only for such records:
    a shard's first minute or so, its backlog included), and the records they
    cover add nothing but stay in the batch, so the shard's checkpoint moves past them too."""

    def at_risk(record: _Counted) -> bool:
        if record.partition == record.key:  # per-key mode: its own checkpoint decides
            return False
        born = checkpoints[record.partition].born
        return born is None or record.created <= born + PER_KEY_HORIZON_SECONDS

    risky = [at_risk(r) for r in pending]
    if not any(risky):
        return pending, 0
    per_key = stats.checkpoints(list(dict.fromkeys(r.key for r, x in zip(pending, risky, strict=True) if x)), stream)
    counted = [x and per_key[r.key].counted(r.sequence) for r, x in zip(pending, risky, strict=True)]
    return [replace(r, deltas={}) if done else r for r, done in zip(pending, counted, strict=True)], sum(counted)


def handle_stream_batch(records: list[dict[str, Any]], shard_id: str | None = None) -> dict[str, Any]:
    """Count a stream batch exactly once: one BatchGetItem of its checkpoints (the shard's
    when `shard_id` is given, else its partition keys'), then one transaction per up to 100
    items (usually one). A failure reports the earliest record not counted; Lambda resumes
    from it, and what was counted after it is skipped then by its checkpoint."""
    counted, unreadable = _counted_records(records, shard_id)
    stream = records[0].get("eventSourceARN", "") if records else ""
    pending = counted
    failure: str | None = None
    for attempt in range(ATTEMPTS):
        if not pending:
            break
        try:
            checkpoints = stats.checkpoints(list(dict.fromkeys(r.partition for r in pending)), stream)
            pending, skipped = _without_counted_per_key(pending, checkpoints, stream)
            transactions, more = plan(pending, checkpoints)
            skipped += more
            if skipped:
                logger.info("stream records already counted, skipped", extra={"skipped": skipped})
            moved = False
            for tx in transactions:
                if not stats.apply_batch(_nonzero(placed(tx.deltas, tx.shard(attempt))),
                                         list(tx.advances.values())):
                    moved = True  # counted meanwhile by another invocation: read again
                    break
                done = {id(r) for r in tx.records}
                pending = [r for r in pending if id(r) not in done]
            if not moved:
                pending = []
        except TransactionCanceled as exc:
            if not exc.conflict_only:
                failure = "refused"
                break
            time.sleep(0.01 * (attempt + 1))  # met another transaction on a counter: try another shard
        except Exception:  # noqa: BLE001 - retried from the earliest record not counted
            logger.exception("could not count a stream batch; retrying from its earliest record not counted")
            failure = "error"
            break
    if pending or unreadable is not None:
        first = min([records[r.position] for r in pending] + ([unreadable] if unreadable else []),
                    key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
        sequence = first["dynamodb"]["SequenceNumber"]
        logger.error("could not count stream records; retrying from the earliest not counted",
                     extra={"sequence_number": sequence, "not_counted": len(pending), "reason": failure})
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

