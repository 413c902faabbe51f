"""Event items: a session's audit record and webhook outbox, with their delivery log.

    SESSION#<id> / EVT#<nnnnnnnnnn>   the event (found by id through its GSI4 entry, which its
                                      id locates; events stored before that: + GSI2 EVENT#<event_id>;
                                      + GSI1 DELIVERIES#failed / <failed at>#<event_id>
                                      while its delivery to some endpoint has failed for good;
                                      + GSI4 EVENTS#<hour>#<shard> / <occurred_at>#<session>#<seq>:
                                      the events of a time window, for an endpoint's replay)
    FAILED#<endpoint_id> / SESSION#<id>|EVT#<nnnnnnnnnn>
                                      one endpoint's failed delivery of that event (+ GSI1
                                      DELIVERIES#failed#<endpoint_id> / <failed at>#<event_id>):
                                      the failed list of one endpoint, full pages by one Query

Delivery state is kept per webhook endpoint, on the event: `deliveries` maps an endpoint id
to {status, round, attempt_count, at} (one writer per endpoint and event at a time: the FIFO
group (endpoint, session)); `delivery_attempts` is the log of every endpoint's attempts (each
entry names its endpoint); `failed_endpoints` is the set of endpoints it failed at, and the
event is on the failed list while that set is not empty. `delivery_status` sums it up: `failed`
while any endpoint failed it, otherwise the status of the latest attempt.

Written once, in the transaction of the change it records (chalicelib/db/sessions.py); the
delivery function then updates only its delivery fields.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.db import table
from chalicelib.domain import stepset
from chalicelib.domain.clock import from_iso, to_iso
from chalicelib.domain.models import Event

FAILED = "DELIVERIES#failed"
FAILED_AT = "FAILED#"  # the partition of one endpoint's failed deliveries (marker items)
_stored = "attribute_exists(PK)"
_not_yet_failed = ("attribute_exists(PK) AND (attribute_not_exists(delivery_status)"
                   " OR delivery_status <> :failed)")
_LOG = "delivery_attempts = list_append(if_not_exists(delivery_attempts, :empty), :entry)"


def key(session_id: str, sequence: int) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": f"EVT#{sequence:010d}"}


EVENT_SHARDS = 4  # the window index's partitions per hour, so no hour is one hot partition


def window_partition(hour: str, shard: int) -> str:
    return f"EVENTS#{hour}#{shard}"


def window_shard(session_id: str) -> int:
    return int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16) % EVENT_SHARDS


def window_keys(occurred_at: str, session_id: str, sequence: int) -> dict[str, str]:
    """An event's entry in the time-window index (GSI4)."""
    return {"GSI4PK": window_partition(occurred_at[:13], window_shard(session_id)),
            # by time, then (events of one instant, e.g. a last DONE and its session_ended) by sequence
            "GSI4SK": f"{occurred_at}#{session_id}#{sequence:010d}"}


# An event's id says where its window index entry (GSI4) is: "evt_", the instant it occurred
# (microseconds since the epoch, 14 hex digits), its session's window shard (1 hex digit),
# then 64 random bits. Finding an event by id is one Query of the entries of that instant in
# that shard (almost always one; two for a last DONE and its session_ended) and needs no index
# of its own: the GSI2 entry each event had cost a write unit per event for a lookup only
# operators make (redeliver, GET by id). Ids of 32 hex digits (uuid4) are events stored before
# this: they keep their GSI2 entry and are found by it.
_LOCATED = re.compile(r"evt_([0-9a-f]{14})([0-9a-f])[0-9a-f]{16}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def new_id(session_id: str, occurred_at: str) -> str:
    micros = (from_iso(occurred_at) - _EPOCH) // _MICROSECOND
    return f"evt_{micros:014x}{window_shard(session_id):x}{secrets.randbits(64):016x}"


def located(event_id: str) -> tuple[str, int] | None:
    """Where an event of this id has its window entry: (occurred_at, shard), or None for an
    id that does not say (an event stored before ids did, or not an event id)."""
    found = _LOCATED.fullmatch(event_id)
    if found is None:
        return None
    return to_iso(_EPOCH + int(found.group(1), 16) * _MICROSECOND), int(found.group(2), 16)


def item(event: Event) -> dict[str, Any]:
    return {**key(event.session_id, event.sequence), "type": "event",
            **event.model_dump(exclude={"delivery_status", "delivery_attempts", "deliveries"}),
            "completed_steps": stepset.encode(event.completed_steps), "deliveries": {},
            **({} if located(event.event_id) else {"GSI2PK": f"EVENT#{event.event_id}", "GSI2SK": "EVENT"}),
            **window_keys(event.occurred_at, event.session_id, event.sequence)}


# ---- the replay index's backfill (events stored before the index existed) -----------------

_event_without_window_key = "#type = :event AND attribute_not_exists(GSI4PK)"
_still_without_window_key = "attribute_exists(PK) AND attribute_not_exists(GSI4PK)"


def unindexed_page(limit: int, start: dict[str, Any] | None
                   ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    """Of the next `limit` items of the table (one Scan page), the events without a window
    index entry (only the fields that entry is made of), where the next page starts, and how
    many items the page evaluated."""
    return table.scan_page(filter_expression=_event_without_window_key,
                           names={"#type": "type", "#seq": "sequence"},
                           vals=table.values(event="event"),
                           projection="PK, SK, session_id, #seq, occurred_at", limit=limit, start=start)


def add_window_keys(event: dict[str, Any]) -> bool:
    """Give a stored event its window index entry (one conditional UpdateItem). False when it
    has one already (another run was first) or is gone (its session was deleted meanwhile):
    the update never creates an item nor changes an entry."""
    keys = window_keys(event["occurred_at"], event["session_id"], int(event["sequence"]))
    try:
        table.update_item(key(event["session_id"], int(event["sequence"])), "SET GSI4PK = :pk, GSI4SK = :sk",
                          condition=_still_without_window_key, vals=table.values(pk=keys["GSI4PK"], sk=keys["GSI4SK"]))
    except table.ConditionFailed:
        return False
    return True


def delivery_states(refs: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The stored events of (session_id, sequence) pairs, in one BatchGetItem."""
    found = table.batch_get([key(s, n) for s, n in refs])
    return {(s, n): found[table.ident(key(s, n))] for s, n in refs if table.ident(key(s, n)) in found}


_only_this_one_failed = ("attribute_exists(PK) AND (attribute_not_exists(failed_endpoints)"
                         " OR (size(failed_endpoints) = :one AND contains(failed_endpoints, :endpoint)))")
_not_failed_here = ("attribute_exists(PK) AND (attribute_not_exists(failed_endpoints)"
                    " OR NOT contains(failed_endpoints, :endpoint))")
_none_failed = "attribute_exists(PK) AND attribute_not_exists(failed_endpoints)"
_failed_nowhere_else = ("attribute_exists(PK) AND attribute_not_exists(failed_endpoints)"
                        " AND delivery_status = :failed")
_add_deliveries = "SET deliveries = if_not_exists(deliveries, :nothing)"


def _update(session_id: str, sequence: int, expression: str, condition: str, vals: dict[str, Any],
            endpoint_id: str) -> None:
    """One UpdateItem of an endpoint's delivery state (`deliveries.#ep`); an event stored
    before per-endpoint state existed first gets its empty `deliveries` map."""
    names = {"#ep": endpoint_id}
    values = {**table.values(**{k: v for k, v in vals.items() if k != "endpoints"}),
              ":endpoints": table.string_set(endpoint_id)}
    if ":endpoints" not in expression:
        values.pop(":endpoints")
    try:
        table.update_item(key(session_id, sequence), expression, condition=condition, names=names, vals=values)
    except table.PathMissing:
        table.update_item(key(session_id, sequence), _add_deliveries, condition=_stored,
                          vals=table.values(nothing={}))
        table.update_item(key(session_id, sequence), expression, condition=condition, names=names, vals=values)


def record_attempt(session_id: str, sequence: int, *, endpoint_id: str, status: str, entry: dict[str, Any],
                   round_id: str, attempt: int, now: str, event_id: str, was_failed: bool = False) -> bool:
    """Append one attempt to the log with the endpoint's new delivery status (one UpdateItem;
    two when another endpoint has failed this event, which keeps it listed as failed).
    `failed` lists the event under FAILED and in the endpoint's own failed list (one PutItem
    more); any other status takes this endpoint off them (`was_failed`: it was on its own
    list, e.g. a redriven message: one DeleteItem more). False when the event is no longer
    stored (its session was deleted)."""
    state = {"status": status, "round": round_id, "attempt_count": attempt, "at": now}
    if status == "delivered":
        state["delivered_at"] = now
    vals: dict[str, Any] = {"state": state, "now": now, "empty": [], "entry": [{**entry, "endpoint_id": endpoint_id}],
                            "status": status, "endpoint": endpoint_id, "one": 1}
    try:
        if status == "failed":
            vals.update(failed_pk=FAILED, failed_sk=f"{now}#{event_id}")
            _update(session_id, sequence,
                    "SET deliveries.#ep = :state, delivery_status = :status, last_attempt_at = :now,"
                    f" GSI1PK = :failed_pk, GSI1SK = :failed_sk, {_LOG} ADD failed_endpoints :endpoints",
                    _stored, {k: v for k, v in vals.items() if k not in ("endpoint", "one")}, endpoint_id)
            list_failed_at(session_id, sequence, endpoint_id, event_id, now)
            return True
        try:
            _update(session_id, sequence,
                    "SET deliveries.#ep = :state, delivery_status = :status, last_attempt_at = :now,"
                    f" {_LOG} REMOVE GSI1PK, GSI1SK, failed_endpoints",
                    _only_this_one_failed, vals, endpoint_id)
        except table.ConditionFailed as refused:
            if refused.item is None:
                raise
            # another endpoint failed it: the event stays failed (and listed)
            _update(session_id, sequence,
                    f"SET deliveries.#ep = :state, last_attempt_at = :now, {_LOG} DELETE failed_endpoints :endpoints",
                    _stored, {k: v for k, v in vals.items() if k not in ("status", "endpoint", "one")}, endpoint_id)
    except table.ConditionFailed:
        return False
    if was_failed:
        unlist_failed_at(session_id, sequence, endpoint_id)
    return True


def record_failed_once(session_id: str, sequence: int, *, endpoint_id: str, entry: dict[str, Any], now: str,
                       event_id: str, round_id: str) -> bool:
    """Mark an event failed at an endpoint (listed under FAILED) unless it already is or is gone."""
    try:
        _update(session_id, sequence,
                "SET delivery_status = :failed, deliveries.#ep = :state, last_attempt_at = :now,"
                f" GSI1PK = :pk, GSI1SK = :sk, {_LOG} ADD failed_endpoints :endpoints",
                _not_failed_here, {"failed": "failed", "now": now, "pk": FAILED, "sk": f"{now}#{event_id}",
                                   "empty": [], "entry": [{**entry, "endpoint_id": endpoint_id}],
                                   "endpoint": endpoint_id,
                                   "state": {"status": "failed", "round": round_id, "attempt_count": 0,
                                             "at": now}}, endpoint_id)
    except table.ConditionFailed:
        return False
    list_failed_at(session_id, sequence, endpoint_id, event_id, now)
    return True


def mark_pending(session_id: str, sequence: int, endpoint_id: str, round_id: str, now: str) -> bool:
    """An endpoint's delivery back to `pending` in a new round and off the failed list (a
    redelivery or replay); the event leaves the failed list once no endpoint has it failed.
    False if it is gone (conditional: a deleted event must not come back as a stub item)."""
    try:
        _update(session_id, sequence, "SET deliveries.#ep = :state DELETE failed_endpoints :endpoints", _stored,
                {"state": {"status": "pending", "round": round_id, "attempt_count": 0, "at": now}}, endpoint_id)
    except table.ConditionFailed:
        return False
    try:
        table.update_item(key(session_id, sequence), "SET delivery_status = :pending REMOVE GSI1PK, GSI1SK",
                          condition=_none_failed, vals=table.values(pending="pending"))
    except table.ConditionFailed:
        pass  # another endpoint still has it failed: it stays listed
    unlist_failed_at(session_id, sequence, endpoint_id)
    return True


def forget_endpoint(session_id: str, sequence: int, endpoint_id: str, now: str, summary: str) -> bool:
    """A deleted endpoint's failed delivery of an event: its state becomes `endpoint_deleted`,
    it leaves `failed_endpoints` (the event leaves the failed list once no other endpoint has
    it failed, its `delivery_status` then `summary`) and its marker is deleted. False if the
    event is gone (the marker is deleted all the same)."""
    try:
        _update(session_id, sequence, "SET deliveries.#ep = :state DELETE failed_endpoints :endpoints", _stored,
                {"state": {"status": "endpoint_deleted", "at": now}}, endpoint_id)
    except table.ConditionFailed:
        unlist_failed_at(session_id, sequence, endpoint_id)
        return False
    try:
        table.update_item(key(session_id, sequence), "SET delivery_status = :deleted REMOVE GSI1PK, GSI1SK",
                          condition=_failed_nowhere_else, vals=table.values(deleted=summary, failed="failed"))
    except table.ConditionFailed:
        pass  # another endpoint still has it failed (it stays listed), or it was not failed
    unlist_failed_at(session_id, sequence, endpoint_id)
    return True


# ---- one endpoint's failed list (marker items, listed in GSI1 by failure time) --------------


def marker_key(session_id: str, sequence: int, endpoint_id: str) -> dict[str, str]:
    event = key(session_id, sequence)
    return {"PK": f"{FAILED_AT}{endpoint_id}", "SK": f"{event['PK']}|{event['SK']}"}


def _event_key(marker: dict[str, Any]) -> dict[str, str]:
    pk, sk = marker["SK"].rsplit("|", 1)  # an event's SK never holds "|"
    return {"PK": pk, "SK": sk}


def list_failed_at(session_id: str, sequence: int, endpoint_id: str, event_id: str, failed_at: str) -> None:
    """Put an event on one endpoint's failed list (idempotent: the key is the pair)."""
    table.put_item({**marker_key(session_id, sequence, endpoint_id), "type": "failed_delivery",
                    "endpoint_id": endpoint_id, "session_id": session_id, "sequence": sequence,
                    "event_id": event_id, "GSI1PK": f"{FAILED}#{endpoint_id}", "GSI1SK": f"{failed_at}#{event_id}"})


def unlist_failed_at(session_id: str, sequence: int, endpoint_id: str) -> None:
    table.batch_write(deletes=[marker_key(session_id, sequence, endpoint_id)])


def failed_page_at(endpoint_id: str, limit: int, cursor: str | None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """One endpoint's failed deliveries, newest first: one Query on GSI1 + one BatchGetItem.
    Returns (events, stale markers: their event is gone or no longer failed there, next cursor)."""
    entries, next_cursor = table.query_page(
        index="GSI1", key_condition="GSI1PK = :pk", vals=table.values(pk=f"{FAILED}#{endpoint_id}"),
        limit=limit, cursor=cursor, forward=False, cursor_scope=f"deliveries:failed:{endpoint_id}")
    found = table.batch_get([_event_key(e) for e in entries]) if entries else {}
    events, stale = [], []
    for entry in entries:
        event = found.get(table.ident(_event_key(entry)))
        if event is not None and endpoint_id in (event.get("failed_endpoints") or []):
            events.append(event)
        else:
            stale.append(entry)
    return events, stale, next_cursor


def failed_markers(endpoint_id: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` of an endpoint's failed-delivery markers (its deletion clears them)."""
    found, _ = table.query_page(key_condition="PK = :pk", vals=table.values(pk=f"{FAILED_AT}{endpoint_id}"),
                                limit=limit, cursor=None, cursor_scope=f"failed-at:{endpoint_id}")
    return found


def drop_markers(markers: list[dict[str, Any]]) -> None:
    table.batch_write(deletes=[{"PK": m["PK"], "SK": m["SK"]} for m in markers])


def window_page(hour: str, shard: int, since: str, until: str, limit: int,
                cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The events of one hour's shard that occurred in [since, until), oldest first: one
    Query on GSI4 and one BatchGetItem for the whole items."""
    entries, next_cursor = table.query_page(
        index="GSI4", key_condition="GSI4PK = :pk AND GSI4SK BETWEEN :since AND :until",
        vals=table.values(pk=window_partition(hour, shard), since=since, until=until),
        limit=limit, cursor=cursor, cursor_scope=f"window:{hour}:{shard}")
    return [e for e in table.full_items(entries) if since <= e["occurred_at"] < until], next_cursor


def find(event_id: str) -> dict[str, Any] | None:
    """An event by its id: one Query (GSI4 at the entry its id locates; GSI2 for an id that
    does not say), then the whole item (one BatchGetItem; one GetItem). At an instant that
    holds over 100 events of one shard (the idle job ends all it finds at its run's instant),
    page after page until it is found."""
    place = located(event_id)
    if place is None:
        entries, _ = table.query_page(index="GSI2", key_condition="GSI2PK = :pk",
                                      vals=table.values(pk=f"EVENT#{event_id}"), limit=1, cursor=None,
                                      cursor_scope="event")
        return table.get_item({"PK": entries[0]["PK"], "SK": entries[0]["SK"]}) if entries else None
    occurred_at, shard = place
    cursor: str | None = None
    while True:  # one page almost always; a job that ends many sessions at one instant makes more
        entries, cursor = table.query_page(
            index="GSI4", key_condition="GSI4PK = :pk AND begins_with(GSI4SK, :instant)",
            vals=table.values(pk=window_partition(occurred_at[:13], shard), instant=f"{occurred_at}#"),
            limit=100, cursor=cursor, cursor_scope="event")
        found = next((e for e in table.full_items(entries) if e.get("event_id") == event_id), None)
        if found is not None or cursor is None:
            return found


def failed_page(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Events whose delivery failed for good, newest first: one Query on GSI1 + one BatchGet."""
    entries, next_cursor = table.query_page(
        index="GSI1", key_condition="GSI1PK = :pk", vals=table.values(pk=FAILED),
        limit=limit, cursor=cursor, forward=False, cursor_scope="deliveries:failed")
    return table.full_items(entries), next_cursor
