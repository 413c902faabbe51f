"""Analytics counter items, sharded so no single item takes every write.

    STATS#GLOBAL        / SHARD#<n>         sessions by status, started, manuals, messages,
                                            webhooks failed for good (listed now),
                                            completion time sum and histogram (h_*)
    STATS#MANUALS       / <manual_id>#<n>   sessions started and completed per manual
    STATS#HOUR#<hour>   / SHARD#<n>         activity per UTC hour
    STATSEVT#<eventID>  / #                 marker: this stream record was counted (TTL 2 days)
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.db import table

SHARDS = 4
MARKER_TTL_SECONDS = 2 * 86400  # longer than a stream keeps records (24 h)
GLOBAL = "STATS#GLOBAL"
MANUALS = "STATS#MANUALS"

Deltas = dict[tuple[str, str], dict[str, float]]


def global_key(shard: int) -> tuple[str, str]:
    return GLOBAL, f"SHARD#{shard}"


def manual_key(manual_id: str, shard: int) -> tuple[str, str]:
    return MANUALS, f"{manual_id}#{shard}"


def hour_key(hour: str, shard: int) -> tuple[str, str]:
    return f"STATS#HOUR#{hour}", f"SHARD#{shard}"


def apply_once(record_id: str, deltas: Deltas) -> bool:
    """Add `deltas` to the counters in one transaction with a marker for `record_id`; False
    (nothing added) when the marker exists: a redelivered record is counted once."""
    tx = table.Transaction()
    tx.put("marker", {"PK": f"STATSEVT#{record_id}", "SK": "#", "type": "stats_marker",
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


def counters(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Counter items by (PK, SK), in one BatchGetItem (per 100)."""
    return table.batch_get([{"PK": pk, "SK": sk} for pk, sk in keys])


def per_manual() -> list[dict[str, Any]]:
    """Every per-manual counter item: one Query (their number grows with manuals, not sessions)."""
    return list(table.query_all(key_condition="PK = :pk", vals=table.values(pk=MANUALS)))
