"""Webhook endpoint items: all in one small partition (at most MAX_ENDPOINTS of them).

    WEBHOOKS / EP#<endpoint_id>      the endpoint: url, filter, enabled, signing secrets
    WEBHOOKS / #COUNT                how many endpoints exist (the limit, kept in the
                                     same transaction as each create and delete)
    WEBHOOKS / STATS#<endpoint_id>   its delivery stats: counters, a latency histogram,
                                     last error / success, failing since, and its last
                                     RECENT_SLOTS attempts in a ring of slots r0..r19
                                     (written by the delivery function once per batch,
                                     never by the API)
    WEBHOOKS / DELETED#<endpoint_id> a deleted endpoint whose failed deliveries are still
                                     being taken off the failed list (the DELETE request
                                     and then the scheduled sweep do it; then it goes)
    PING#<event_id> / PING           a test ping: its endpoint, status, attempts (expires
                                     after PING_DAYS: DynamoDB's TTL on expires_at)

The signing secrets (`secret`, `previous_secret`) are stored encrypted with the stack's KMS
key ({"scheme": "kms-v1", "ciphertext": ...}, chalicelib/sealing.py): a signature
needs the secret itself (an HMAC), so it cannot be hashed. The API shows a secret only in
the answer that created it.
"""

from __future__ import annotations

from typing import Any

from chalicelib.db import table
from chalicelib.domain.endpoints import LATENCY_BUCKETS, MAX_ENDPOINTS
from chalicelib.domain.errors import ConcurrentUpdate

PARTITION = "WEBHOOKS"
PREFIX = "EP#"
_stored = "attribute_exists(PK)"
_absent = "attribute_not_exists(PK)"
_room_left = "attribute_not_exists(#n) OR #n < :max"
_is_enabled = "attribute_exists(PK) AND enabled = :yes"
_ring_is_new = "attribute_not_exists(recent_next)"
_ring_is_at = "recent_next = :expected"

RECENT_SLOTS = 20  # an endpoint's last attempts kept on its stats item, across batches
PING_DAYS = 7


def key(endpoint_id: str) -> dict[str, str]:
    return {"PK": PARTITION, "SK": f"{PREFIX}{endpoint_id}"}


def stats_key(endpoint_id: str) -> dict[str, str]:
    return {"PK": PARTITION, "SK": f"STATS#{endpoint_id}"}


def tombstone_key(endpoint_id: str) -> dict[str, str]:
    return {"PK": PARTITION, "SK": f"DELETED#{endpoint_id}"}


_COUNT = {"PK": PARTITION, "SK": "#COUNT"}


def tombstones() -> list[str]:
    """Deleted endpoints whose failed deliveries are not all forgotten yet (one Query)."""
    found, _ = table.query_page(key_condition="PK = :pk AND begins_with(SK, :prefix)",
                                vals=table.values(pk=PARTITION, prefix="DELETED#"), limit=MAX_ENDPOINTS * 5,
                                cursor=None, cursor_scope="tombstones")
    return [t["endpoint_id"] for t in found]


def drop_tombstone(endpoint_id: str) -> None:
    table.batch_write(deletes=[tombstone_key(endpoint_id)])


def create(record: dict[str, Any]) -> str:
    """Store a new endpoint and count it, in one transaction. Returns "created", "exists"
    (that id is taken) or "full" (MAX_ENDPOINTS exist)."""
    tx = table.Transaction()
    # an Update that creates (not a Put): the delivery function, which may create the default
    # endpoint, is allowed UpdateItem only
    fields = {"type": "endpoint", **record}
    tx.update("endpoint", key(record["endpoint_id"]), "SET " + ", ".join(f"#{k} = :{k}" for k in fields),
              condition=_absent, names={f"#{k}": k for k in fields}, vals=table.values(**fields))
    tx.update("count", _COUNT, "ADD #n :one", condition=_room_left, names={"#n": "n"},
              vals=table.values(one=1, max=MAX_ENDPOINTS))
    try:
        tx.commit()
    except table.TransactionCanceled as exc:
        if exc.failed("endpoint"):
            return "exists"
        if exc.failed("count"):
            return "full"
        raise
    return "created"


def get(endpoint_id: str) -> dict[str, Any] | None:
    return table.get_item(key(endpoint_id))


def get_with_stats(endpoint_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The endpoint and its stats (one BatchGetItem)."""
    found = table.batch_get([key(endpoint_id), stats_key(endpoint_id)])
    return found.get(table.ident(key(endpoint_id))), found.get(table.ident(stats_key(endpoint_id)), {})


def list_page(limit: int, cursor: str | None) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], str | None]:
    """A page of endpoints (by id) with their stats: one Query + one BatchGetItem."""
    items, next_cursor = table.query_page(
        key_condition="PK = :pk AND begins_with(SK, :prefix)", vals=table.values(pk=PARTITION, prefix=PREFIX),
        limit=limit, cursor=cursor, cursor_scope="webhook-endpoints")
    stats = table.batch_get([stats_key(i["endpoint_id"]) for i in items]) if items else {}
    return [(i, stats.get(table.ident(stats_key(i["endpoint_id"])), {})) for i in items], next_cursor


def all_endpoints() -> list[dict[str, Any]]:
    """Every endpoint (at most MAX_ENDPOINTS: one Query page), for the pipeline's fan-out."""
    return list(table.query_all(key_condition="PK = :pk AND begins_with(SK, :prefix)",
                                vals=table.values(pk=PARTITION, prefix=PREFIX), consistent=True))


def update(endpoint_id: str, fields: dict[str, Any], remove: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Set `fields` and remove `remove` on a stored endpoint; the item after it, or None for
    an unknown endpoint."""
    names = {f"#{k}": k for k in (*fields, *remove)}
    expression = ("SET " + ", ".join(f"#{k} = :{k}" for k in fields)) if fields else ""
    if remove:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
    try:
        return table.update_item(key(endpoint_id), expression.strip(), condition=_stored, names=names,
                                 vals=table.values(**fields) if fields else None, returning=True)
    except table.ConditionFailed:
        return None


def disable(endpoint_id: str, reason: str, now: str) -> bool:
    """Disable an enabled endpoint (False: already disabled, or gone)."""
    try:
        table.update_item(key(endpoint_id), "SET enabled = :no, disabled_reason = :reason, disabled_at = :now,"
                          " updated_at = :now", condition=_is_enabled,
                          vals=table.values(no=False, yes=True, reason=reason, now=now))
    except table.ConditionFailed:
        return False
    return True


def delete(endpoint_id: str, now: str) -> bool:
    """Delete an endpoint, uncount it, drop its stats and leave a tombstone until its failed
    deliveries are forgotten (one transaction); False if unknown."""
    tx = table.Transaction()
    tx.delete("endpoint", key(endpoint_id), condition=_stored)
    tx.update("count", _COUNT, "ADD #n :minus", names={"#n": "n"}, vals=table.values(minus=-1))
    tx.delete("stats", stats_key(endpoint_id))
    tx.put("tombstone", {**tombstone_key(endpoint_id), "type": "endpoint_deleted", "endpoint_id": endpoint_id,
                         "deleted_at": now})
    try:
        tx.commit()
    except table.TransactionCanceled as exc:
        if exc.failed("endpoint"):
            return False
        raise
    return True


def record_stats(endpoint_id: str, *, attempts: int, delivered: int, latencies: dict[int, int],
                 last_error: str | None, last_error_at: str | None, last_success_at: str | None,
                 failing_at: str | None, recent: list[dict[str, Any]], ring_at: int | None) -> dict[str, Any] | None:
    """Add one batch's attempts to an endpoint's stats (one UpdateItem; counters and
    histogram buckets are atomic ADDs, so concurrent batches add up). `failing_at`: every
    attempt of the batch failed (failing_since is set if unset); None with a delivery
    clears it. `recent` (the batch's attempts, oldest first) go into the next slots of the
    ring, conditional on the ring's position being `ring_at` (the position this process last
    saw; None: unknown): when another batch moved it, the refusal returns the stored position
    and the update is made again from there (nothing of the refused one was applied). Returns
    the stats after the update."""
    recent = recent[-RECENT_SLOTS:]
    start = ring_at or 0
    for _ in range(8):
        try:
            return _add_stats(endpoint_id, start, attempts=attempts, delivered=delivered, latencies=latencies,
                              last_error=last_error, last_error_at=last_error_at,
                              last_success_at=last_success_at, failing_at=failing_at, recent=recent)
        except table.ConditionFailed as refused:
            start = int((refused.item or {}).get("recent_next", 0))
    raise ConcurrentUpdate("the stats of this endpoint kept changing")


def _add_stats(endpoint_id: str, start: int, *, attempts: int, delivered: int, latencies: dict[int, int],
               last_error: str | None, last_error_at: str | None, last_success_at: str | None,
               failing_at: str | None, recent: list[dict[str, Any]]) -> dict[str, Any] | None:
    adds = {"attempts": attempts, "delivered": delivered,
            **{f"lat_{bound}": n for bound, n in latencies.items() if n}}
    expression = "ADD " + ", ".join(f"#{name} :{name}" for name in adds)
    sets: dict[str, Any] = {"endpoint_id": endpoint_id, "type": "endpoint_stats",
                            "recent_next": start + len(recent),
                            **{f"r{(start + i) % RECENT_SLOTS}": {**entry, "n": start + i}
                               for i, entry in enumerate(recent)}}
    if last_error is not None:
        sets.update(last_error=last_error, last_error_at=last_error_at)
    if last_success_at is not None:
        sets["last_success_at"] = last_success_at
    expression += " SET " + ", ".join(f"#{name} = :{name}" for name in sets)
    vals = {**adds, **sets}
    names = {f"#{name}": name for name in vals}
    removes = ["recent_attempts"]  # the list of one batch kept before the ring
    if failing_at is not None:
        expression += ", failing_since = if_not_exists(failing_since, :failing_at)"
        vals["failing_at"] = failing_at
    elif delivered:
        removes.append("failing_since")
    expression += " REMOVE " + ", ".join(removes)
    condition = _ring_is_new
    if start:
        condition = _ring_is_at
        vals["expected"] = start
    return table.update_item(stats_key(endpoint_id), expression, condition=condition, names=names,
                             vals=table.values(**vals), returning=True)


def recent_attempts(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The ring's attempts, newest first (at most RECENT_SLOTS)."""
    slots = [stats[f"r{i}"] for i in range(RECENT_SLOTS) if isinstance(stats.get(f"r{i}"), dict)]
    return [{k: v for k, v in s.items() if k != "n"} for s in sorted(slots, key=lambda s: -int(s.get("n", 0)))]


# ---- test pings ----------------------------------------------------------------------------


def ping_key(event_id: str) -> dict[str, str]:
    return {"PK": f"PING#{event_id}", "SK": "PING"}


def create_ping(record: dict[str, Any], expires_epoch: int) -> None:
    table.put_item({**ping_key(record["event_id"]), "type": "ping", **record, "attempts": [],
                    "attempt_count": 0, "expires_at": expires_epoch})


def get_ping(event_id: str) -> dict[str, Any] | None:
    return table.get_item(ping_key(event_id))


def pings(event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ping records of a delivery batch's pings (one BatchGetItem)."""
    found = table.batch_get([ping_key(e) for e in event_ids]) if event_ids else {}
    return {e: found[table.ident(ping_key(e))] for e in event_ids if table.ident(ping_key(e)) in found}


def record_ping_attempt(event_id: str, *, status: str, attempt: int, entry: dict[str, Any], now: str,
                        next_attempt_at: str | None) -> bool:
    """Append one attempt to a ping's record with its new status (one UpdateItem); False
    when the record is gone (expired)."""
    expression = ("SET #status = :status, attempt_count = :attempt, updated_at = :now,"
                  " attempts = list_append(if_not_exists(attempts, :empty), :entry)")
    vals: dict[str, Any] = {"status": status, "attempt": attempt, "now": now, "empty": [], "entry": [entry]}
    if next_attempt_at is not None:
        expression += ", next_attempt_at = :next"
        vals["next"] = next_attempt_at
    else:
        expression += " REMOVE next_attempt_at"
    try:
        table.update_item(ping_key(event_id), expression, condition=_stored, names={"#status": "status"},
                          vals=table.values(**vals))
    except table.ConditionFailed:
        return False
    return True


def histogram(stats: dict[str, Any]) -> dict[int, int]:
    """The latency histogram stored on a stats item: bucket bound (ms) -> attempts."""
    return {bound: int(stats.get(f"lat_{bound}", 0)) for bound in (*LATENCY_BUCKETS, LATENCY_BUCKETS[-1] * 2)}


def replace_secrets(endpoint_id: str, fields: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Set `fields` (the secrets re-encrypted) only while each of `expected` still holds the
    value read (a rotation in between wins). False: it changed, or the endpoint is gone."""
    names = {f"#{k}": k for k in (*fields, *expected)}
    vals = {**{f"new_{k}": v for k, v in fields.items()}, **{f"old_{k}": v for k, v in expected.items()}}
    condition = " AND ".join([_stored, *(f"#{k} = :old_{k}" for k in expected)])
    try:
        table.update_item(key(endpoint_id), "SET " + ", ".join(f"#{k} = :new_{k}" for k in fields),
                          condition=condition, names=names, vals=table.values(**vals))
    except table.ConditionFailed:
        return False
    return True
