"""Analytics counter items, write-sharded, and the stream checkpoints that make them exact.

    STATS#GLOBAL#<n>        / #                 sessions by status, started, manuals, messages,
                                                webhooks failed for good (listed now),
                                                completion time sum and histogram (h_*)
    STATS#HOUR#<hour>#<n>   / #                 activity per UTC hour
    STATS#MANUALS           / <manual_id>#<n>   sessions started and completed per manual
    STATSCHK#SHARD#<shard>  / #                 the stream checkpoint of one stream shard (or,
    STATSCHK#<partition>    / #                 without a shard id, of one table partition
                                                key): the sequence number of the last record
                                                counted (TTL 2 days)

The shard `n` is part of the partition key of the global and hourly items (AWS's write
sharding: items under one partition key share one partition's 1,000 WCU/s until DynamoDB
splits it for heat, which takes time), so the n shards are n partitions. Per-manual counters
stay under one partition key so that popular manuals remain ONE Query; they are written only
by sessions starting, completing or being deleted (see bench/capacity.py for the rates).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from chalicelib.db import table

# Chosen in bench/capacity.py from the target of 50,000 progress updates/s: each counter item
# is written once per analytics transaction that picks its shard (a stream batch takes one,
# more only when it touches over ~98 counter items), so its writes/s are the transactions/s
# over SHARDS. At 50,000/s (about 300 stream shards, each polled 4 times a second) that is about
# 1,200 transactions/s: 300 WCU/s per counter item with 8 shards, under half of an item's
# 1,000; 4 shards gave 600. Never lower it (reads merge the shards 0..SHARDS-1: items of a
# higher shard would be lost); raising it is safe (new shards start empty). It costs reads:
# recent-activity reads hours x SHARDS items (24 h x 8 = 192: two BatchGetItems of 100).
SHARDS = 8
GLOBAL = "STATS#GLOBAL"
MANUALS = "STATS#MANUALS"
CHECKPOINT = "STATSCHK#"
# A checkpoint is needed while Lambda may still deliver a record it covers: DynamoDB keeps
# stream records 24 h (and the event sources give up on records older than that), so 2 days
# after its last write a checkpoint can only ever be compared with newer records.
CHECKPOINT_TTL_SECONDS = 2 * 86400
MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit (and 4 MB, far off for these items)

Deltas = dict[tuple[str, str], dict[str, float]]


def global_key(shard: int) -> tuple[str, str]:
    return f"{GLOBAL}#{shard}", "#"


def manual_key(manual_id: str, shard: int) -> tuple[str, str]:
    return MANUALS, f"{manual_id}#{shard}"


def hour_key(hour: str, shard: int) -> tuple[str, str]:
    return f"STATS#HOUR#{hour}#{shard}", "#"


class Checkpoint(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    """What the analytics function has counted of one shard's (or table partition key's)
    records, as read.
    `sequence` is None when nothing was counted yet (or only on another stream: a stream
    disabled and enabled again is a new stream with sequence numbers of its own)."""

    partition: str
    stream: str
    sequence: int | None
    stored: dict[str, str] | None  # the stored (stream, sequence) the next write is conditional on
    born: int | None = None  # when it was first written (epoch seconds); kept by every move

    def counted(self, sequence: int) -> bool:
        return self.sequence is not None and sequence <= self.sequence

    def moved_to(self, sequence: int, born: int) -> Checkpoint:
        """This checkpoint as a transaction that moves it to `sequence` leaves it."""
        return Checkpoint(self.partition, self.stream, sequence,
                          {"stream": self.stream, "sequence": str(sequence)}, self.born or born)


def _checkpoint_key(partition: str) -> dict[str, str]:
    return {"PK": f"{CHECKPOINT}{partition}", "SK": "#"}


def checkpoints(partitions: list[str], stream: str) -> dict[str, Checkpoint]:
    """The checkpoints of `partitions` on `stream`, in one BatchGetItem per 100 (strongly
    consistent: a checkpoint written a moment ago by the previous batch must be seen)."""
    found = table.batch_get([_checkpoint_key(p) for p in partitions])
    out: dict[str, Checkpoint] = {}
    for partition in partitions:
        item = found.get(table.ident(_checkpoint_key(partition)))
        stored = None if item is None else {"stream": str(item["stream"]), "sequence": str(item["sequence"])}
        same_stream = stored is not None and stored["stream"] == stream
        born = int(item["born"]) if item is not None and item.get("born") is not None else None
        out[partition] = Checkpoint(partition, stream, int(stored["sequence"]) if stored and same_stream else None,
                                    stored, born if same_stream else None)
    return out


# checkpoint conditions, by name
checkpoint_absent = "attribute_not_exists(PK)"
checkpoint_unchanged = "#stream = :stream AND #sequence = :sequence"


def apply_batch(deltas: Deltas, advances: list[tuple[Checkpoint, int]]) -> bool:
    """Add `deltas` to the counters and move each checkpoint to its new sequence number, in
    ONE transaction conditional on every checkpoint being as it was read. False (nothing
    written) when one had moved: another invocation counted some of these records meanwhile,
    so the caller reads the checkpoints again. At most MAX_TRANSACTION_ITEMS items."""
    if len(deltas) + len(advances) > MAX_TRANSACTION_ITEMS:
        raise ValueError(f"{len(deltas) + len(advances)} items do not fit one transaction")
    tx = table.Transaction()
    now = int(time.time())
    expires = now + CHECKPOINT_TTL_SECONDS
    for checkpoint, sequence in advances:
        item = {**_checkpoint_key(checkpoint.partition), "type": "stats_checkpoint",
                "stream": checkpoint.stream, "sequence": str(sequence), "expires_at": expires,
                "born": checkpoint.born or now}
        if checkpoint.stored is None:
            tx.put(f"checkpoint/{checkpoint.partition}", item, condition=checkpoint_absent)
        else:
            tx.put(f"checkpoint/{checkpoint.partition}", item, condition=checkpoint_unchanged,
                   names={"#stream": "stream", "#sequence": "sequence"},
                   vals=table.values(**checkpoint.stored))
    for (pk, sk), attrs in deltas.items():
        names = {f"#a{i}": a for i, a in enumerate(attrs)}
        vals: dict[str, Any] = {f"v{i}": v for i, v in enumerate(attrs.values())}
        expression = "ADD " + ", ".join(f"#a{i} :v{i}" for i in range(len(attrs)))
        if pk == MANUALS:
            names["#m"], vals["m"] = "manual_id", sk.rsplit("#", 1)[0]
            expression += " SET #m = :m"
        tx.update(f"{pk}/{sk}", {"PK": pk, "SK": sk}, expression, names=names, vals=table.values(**vals))
    if not len(tx):
        return True
    try:
        tx.commit()
    except table.TransactionCanceled as exc:
        if any(exc.failed(f"checkpoint/{c.partition}") for c, _ in advances):
            return False
        raise
    return True


def counters(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Counter items by (PK, SK), in one BatchGetItem (per 100)."""
    return table.batch_get([{"PK": pk, "SK": sk} for pk, sk in keys])


def per_manual() -> list[dict[str, Any]]:
    """Every per-manual counter item: one Query (their number grows with manuals, not sessions)."""
    return list(table.query_all(key_condition="PK = :pk", vals=table.values(pk=MANUALS)))
