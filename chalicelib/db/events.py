"""Event items: a session's audit record and webhook outbox, with their delivery log.

    SESSION#<id> / EVT#<nnnnnnnnnn>   the event (+ GSI2 EVENT#<event_id>: found by id;
                                      + GSI1 DELIVERIES#failed / <failed at>#<event_id>
                                      while its delivery has failed for good)

Written once, in the transaction of the change it records (chalicelib/db/sessions.py); the
delivery function then updates only its delivery fields.
"""

from __future__ import annotations

from typing import Any

from chalicelib.db import table
from chalicelib.domain.models import Event

FAILED = "DELIVERIES#failed"
_stored = "attribute_exists(PK)"
_not_yet_failed = ("attribute_exists(PK) AND (attribute_not_exists(delivery_status)"
                   " OR delivery_status <> :failed)")
_LOG = "delivery_attempts = list_append(if_not_exists(delivery_attempts, :empty), :entry)"


def key(session_id: str, sequence: int) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": f"EVT#{sequence:010d}"}


def item(event: Event) -> dict[str, Any]:
    return {**key(event.session_id, event.sequence), "type": "event",
            **event.model_dump(exclude={"delivery_status", "delivery_attempts"}),
            "GSI2PK": f"EVENT#{event.event_id}", "GSI2SK": "EVENT"}


def delivery_states(refs: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The stored events of (session_id, sequence) pairs, in one BatchGetItem."""
    found = table.batch_get([key(s, n) for s, n in refs])
    return {(s, n): found[table.ident(key(s, n))] for s, n in refs if table.ident(key(s, n)) in found}


def record_attempt(session_id: str, sequence: int, *, status: str, entry: dict[str, Any],
                   round_id: str, attempt: int, now: str, event_id: str) -> bool:
    """Append one attempt to the log with the event's new delivery status (one UpdateItem);
    a `failed` event is listed under FAILED, any other status leaves that list. False when the
    event is no longer stored (its session was deleted)."""
    expression = ("SET delivery_status = :status, last_attempt_at = :now, delivery_round = :round,"
                  f" attempt_count = :n, {_LOG}")
    vals: dict[str, Any] = {"status": status, "now": now, "round": round_id, "n": attempt,
                            "empty": [], "entry": [entry]}
    if status == "failed":
        expression += ", GSI1PK = :failed_pk, GSI1SK = :failed_sk"
        vals.update(failed_pk=FAILED, failed_sk=f"{now}#{event_id}")
    else:
        if status == "delivered":
            expression += ", delivered_at = :now"
        expression += " REMOVE GSI1PK, GSI1SK"
    try:
        table.update_item(key(session_id, sequence), expression, condition=_stored, vals=table.values(**vals))
    except table.ConditionFailed:
        return False
    return True


def record_failed_once(session_id: str, sequence: int, *, entry: dict[str, Any], now: str,
                       event_id: str) -> bool:
    """Mark an event failed (listed under FAILED) unless it already is or is gone."""
    try:
        table.update_item(
            key(session_id, sequence),
            f"SET delivery_status = :failed, last_attempt_at = :now, GSI1PK = :pk, GSI1SK = :sk, {_LOG}",
            condition=_not_yet_failed, vals=table.values(
                failed="failed", now=now, pk=FAILED, sk=f"{now}#{event_id}", empty=[], entry=[entry]))
    except table.ConditionFailed:
        return False
    return True


def mark_pending(session_id: str, sequence: int) -> bool:
    """Back to `pending` and off the failed list (a redelivery); False if it is gone
    (conditional: a deleted event must not come back as a stub item)."""
    try:
        table.update_item(key(session_id, sequence), "SET delivery_status = :pending REMOVE GSI1PK, GSI1SK",
                    condition=_stored, vals=table.values(pending="pending"))
    except table.ConditionFailed:
        return False
    return True


def find(event_id: str) -> dict[str, Any] | None:
    """An event by its id: one Query on GSI2, then one GetItem for the whole item."""
    entries, _ = table.query_page(index="GSI2", key_condition="GSI2PK = :pk",
                            vals=table.values(pk=f"EVENT#{event_id}"), limit=1, cursor=None,
                            cursor_scope="event")
    return table.get_item({"PK": entries[0]["PK"], "SK": entries[0]["SK"]}) if entries else None


def failed_page(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Events whose delivery failed for good, newest first: one Query on GSI1 + one BatchGet."""
    entries, next_cursor = table.query_page(
        index="GSI1", key_condition="GSI1PK = :pk", vals=table.values(pk=FAILED),
        limit=limit, cursor=cursor, forward=False, cursor_scope="deliveries:failed")
    return table.full_items(entries), next_cursor
