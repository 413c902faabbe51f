"""Session items and their children: the session repository.

    SESSION#<id> / #table.META                   session state (+ GSI1 status, GSI2 user, GSI3 manual,
                                           GSI4 all sessions, each sorted by start time;
                                           + GSI5 ACTIVE#<shard> by last activity while active)
    SESSION#<id> / EVT#<nnnnnnnnnn>        event (chalicelib/db/events.py)
    SESSION#<id> / IDEM#<key>              idempotency record of a progress request (TTL)
    SESSION#<id> / MSG#<created_at>#<id>   chat message (chalicelib/db/messages.py)
    SESSION#<id> / MSGID#<id>              message-id claim (chalicelib/db/messages.py)

A session being deleted carries `deleting_at` (a tombstone): every writer's condition refuses
it, so nothing can be added under a session while its children are being removed, and every
read here treats it as absent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import get_settings
from chalicelib.db import events, table
from chalicelib.domain import rules, stepset
from chalicelib.domain.clock import from_iso, to_iso
from chalicelib.domain.models import Event, Session

EVENTS = "EVT#"
MESSAGES = "MSG#"
IDEMPOTENCY = "IDEM#"
# after the prefix, child keys go on with digits (a zero-padded sequence, a timestamp): "~"
# sorts after every one of them (keys compare as bytes)
_LAST = "~"

_absent = "attribute_not_exists(PK)"
_exists = "attribute_exists(PK)"
_not_deleting = "attribute_not_exists(deleting_at)"
_deleting = "attribute_exists(deleting_at)"
_idempotency_unclaimed = "attribute_not_exists(PK) OR expires_at < :now_epoch"

# Active sessions are spread over shards of a sparse index (GSI5, keyed by last activity) so
# the writes every progress report makes to it do not all land on one partition.
ACTIVE_SHARDS = 16


def partition(session_id: str) -> str:
    return f"SESSION#{session_id}"


def key(session_id: str) -> dict[str, str]:
    return {"PK": partition(session_id), "SK": table.META}


def idempotency_key(session_id: str, idempotency: str) -> dict[str, str]:
    return {"PK": partition(session_id), "SK": f"{IDEMPOTENCY}{idempotency}"}


def active_shard(session_id: str) -> int:
    return int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16) % ACTIVE_SHARDS


def activity_bucket(timestamp: str) -> str:
    """The last activity as GSI5 keeps it: the start of its bucket, a sixth of the idle
    timeout wide (5 minutes at the default 30; the exact instant under 6 s). Reports and
    messages within one bucket write the same GSI5SK, and DynamoDB writes an index only when
    its key or projected attributes change (GSI5 projects keys only): they cost no GSI5 write,
    where the exact instant cost two (delete and put) on each. The idle job finds a session
    at most one bucket late (see `idle_page`)."""
    width = get_settings().idle_timeout_seconds // 6
    if width < 1:
        return timestamp
    epoch = int(from_iso(timestamp).timestamp())
    return to_iso(datetime.fromtimestamp(epoch - epoch % width, UTC))


def activity_key(last_activity_at: str, session_id: str) -> str:
    return f"{activity_bucket(last_activity_at)}#{session_id}"


def item(session: Session) -> dict[str, Any]:
    order = f"{session.started_at}#{session.session_id}"
    return {
        **key(session.session_id), "type": "session", **session.model_dump(),
        "completed_steps": stepset.encode(session.completed_steps),
        "GSI1PK": f"SESSIONS#{session.status}", "GSI1SK": order,
        "GSI2PK": f"USER#{session.user_id}", "GSI2SK": order,
        "GSI3PK": f"MANUAL#{session.manual_id}", "GSI3SK": order,
        "GSI4PK": "SESSIONS", "GSI4SK": order,
        **({"GSI5PK": f"ACTIVE#{active_shard(session.session_id)}",
            "GSI5SK": activity_key(session.last_activity_at, session.session_id)}
           if session.status == rules.ACTIVE else {}),
    }


def is_deleting(found: dict[str, Any]) -> bool:
    """A session marked for deletion: gone for readers and writers alike."""
    return "deleting_at" in found


def live(found: dict[str, Any] | None) -> Session | None:
    """The session behind a stored item, or None when absent or being deleted."""
    if found is None or is_deleting(found):
        return None
    return Session.model_validate(found)


def load(session_id: str) -> Session | None:
    return live(table.get_item(key(session_id)))


# ---- writes (transaction items named "session", "event:<n>", "idempotency") --------------


def add_start(tx: table.Transaction, session: Session) -> None:
    """A new session: refused (item "session" failed) when the id is taken."""
    tx.put("session", item(session), condition=_absent)


def add_change(tx: table.Transaction, old: Session, new: Session, *,
               activity_unchanged: bool = False) -> None:
    """A state change conditional on the version read (and, with `activity_unchanged`, on no
    message having arrived since), refused for a session being deleted."""
    condition = f"version = :expected AND {_not_deleting}" + (
        " AND last_activity_at = :seen_activity" if activity_unchanged else "")
    vals: dict[str, Any] = dict(
        status=new.status, current_step=new.current_step, completed=stepset.encode(new.completed_steps),
        ended_at=new.ended_at, end_reason=new.end_reason, last_activity=new.last_activity_at,
        version=new.version, event_seq=new.event_seq, gsi1pk=f"SESSIONS#{new.status}",
        expected=old.version)
    if activity_unchanged:
        vals["seen_activity"] = old.last_activity_at
    expression = (
        "SET #status = :status, current_step = :current_step, completed_steps = :completed,"
        " ended_at = :ended_at, end_reason = :end_reason, last_activity_at = :last_activity,"
        " version = :version, event_seq = :event_seq, GSI1PK = :gsi1pk")
    if new.status != rules.ACTIVE:  # leave the index of active sessions; keep the summary
        expression += ", summary = :summary REMOVE GSI5PK, GSI5SK"
        vals["summary"] = new.summary
    else:
        expression += ", GSI5SK = :activity_key"
        vals["activity_key"] = activity_key(new.last_activity_at, new.session_id)
    tx.update("session", key(new.session_id), expression, condition=condition,
              names={"#status": "status"}, vals=table.values(**vals))


def add_events(tx: table.Transaction, new_events: Sequence[Event]) -> None:
    for event in new_events:
        tx.put(f"event:{event.sequence}", events.item(event), condition=_absent)


def add_idempotency_claim(tx: table.Transaction, session_id: str, idempotency: str,
                          record: dict[str, Any], now_epoch: int) -> None:
    """The record of a progress request, unless a live one exists (item "idempotency")."""
    tx.put("idempotency", {**idempotency_key(session_id, idempotency), "type": "idempotency",
                           **record}, condition=_idempotency_unclaimed,
           vals=table.values(now_epoch=now_epoch))


def touch_for_message(tx: table.Transaction, session_id: str, user_id: str, sender: str,
                      at: str) -> None:
    """A message's effect on its session (item "session"): refused when the session is
    absent, being deleted, or another user's. GSI5SK moves the session in the index of active
    sessions (an ended session has no GSI5PK, so this does not bring it back)."""
    tx.update("session", key(session_id),
              f"SET last_activity_at = :now, GSI5SK = :activity ADD message_count :one, messages_{sender} :one",
              condition=f"{_exists} AND {_not_deleting} AND user_id = :user_id",
              vals=table.values(now=at, one=1, user_id=user_id, activity=activity_key(at, session_id)))


# ---- deletion ------------------------------------------------------------------------------


def mark_deleting(session_id: str, now: str) -> dict[str, Any] | None:
    """Step 1 of a delete: the session as marked, or None if there is no session."""
    try:
        return table.update_item(key(session_id), "SET deleting_at = if_not_exists(deleting_at, :now)",
                           condition=_exists, vals=table.values(now=now), returning=True)
    except table.ConditionFailed:
        return None


def delete_children(session_id: str) -> None:
    """Step 2: every child item, found by a consistent query (nothing written before the
    mark is missed, nothing can be written after it)."""
    children = [k for k in table.query_all(
        key_condition="PK = :pk", vals=table.values(pk=partition(session_id)),
        projection="PK, SK", consistent=True) if k["SK"] != table.META]
    table.batch_write(deletes=children)


def add_delete_marked(tx: table.Transaction, session_id: str) -> None:
    """Step 3: the marked session item (item "session" fails if it is already gone)."""
    tx.delete("session", key(session_id), condition=_deleting)


# ---- reads ---------------------------------------------------------------------------------


def list_page(*, status: str | None, user_id: str | None, manual_id: str | None,
              limit: int, cursor: str | None) -> tuple[list[Session], str | None]:
    """One Query on the index that matches the most selective filter, then one BatchGetItem
    for the page's sessions (indexes project only stable attributes, so progress updates do
    not rewrite index entries). Newest first."""
    filters: dict[str, str | None] = {}
    if user_id is not None:
        index, pk = "GSI2", f"USER#{user_id}"
        filters = {"status": status, "manual_id": manual_id}
    elif manual_id is not None:
        index, pk = "GSI3", f"MANUAL#{manual_id}"
        filters = {"status": status}
    elif status is not None:
        index, pk = "GSI1", f"SESSIONS#{status}"
    else:
        index, pk = "GSI4", "SESSIONS"
    active = {k: v for k, v in filters.items() if v is not None}
    names = {f"#{k}": k for k in active}
    entries, next_cursor = table.query_page(
        index=index, key_condition=f"{index}PK = :pk", vals=table.values(pk=pk, **active),
        filter_expression=" AND ".join(f"#{k} = :{k}" for k in active) or None,
        names=names or None, limit=limit, cursor=cursor, forward=False,
        cursor_scope=f"sessions:{pk}:{sorted(active.items())}")
    found = [live(i) for i in table.full_items(entries)]
    return [s for s in found if s is not None], next_cursor


def event_position(sequence: int) -> str:
    """Where an event's key sorts among EVENTS (its sequence, zero-padded as in db/events.py)."""
    return f"{sequence:010d}"


def children_page(session_id: str, prefix: str, limit: int, cursor: str | None,
                  start: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One Query: a page of a session's child items of one kind (EVENTS, MESSAGES), oldest
    first; with `start`, only those whose key after the prefix sorts at or after it (a live
    view's re-read of what is new: the key range is narrowed, nothing is read and dropped)."""
    if start is None:
        return table.query_page(
            key_condition="PK = :pk AND begins_with(SK, :prefix)",
            vals=table.values(pk=partition(session_id), prefix=prefix),
            limit=limit, cursor=cursor, cursor_scope=f"{prefix}{session_id}")
    return table.query_page(
        key_condition="PK = :pk AND SK BETWEEN :start AND :end",
        vals=table.values(pk=partition(session_id), start=prefix + start, end=prefix + _LAST),
        limit=limit, cursor=cursor, cursor_scope=f"{prefix}{session_id}")


def all_events(session_id: str) -> list[Event]:
    """The whole event trail (to summarise a session as it ends: once per session)."""
    return [Event.model_validate(e) for e in table.query_all(
        key_condition="PK = :pk AND begins_with(SK, :prefix)",
        vals=table.values(pk=partition(session_id), prefix=EVENTS))]


def idle_page(shard: int, cutoff: str, limit: int,
              cursor: str | None) -> tuple[list[Session], int, str | None]:
    """Active sessions of one shard whose last activity is before `cutoff` (entries are
    "<activity bucket>#<session id>"): the live sessions, how many entries were skipped
    (deleted or being deleted since), and the cursor. Only buckets wholly before the cutoff's
    are read, so every session found was idle before `cutoff`; one idle since within the
    cutoff's own bucket is found by a later run. Entries of another width (written under
    another idle timeout) may be found early: the caller checks `last_activity_at` again."""
    entries, next_cursor = table.query_page(
        index="GSI5", key_condition="GSI5PK = :pk AND GSI5SK < :cutoff",
        vals=table.values(pk=f"ACTIVE#{shard}", cutoff=activity_bucket(cutoff)), limit=limit,
        cursor=cursor, cursor_scope=f"idle:{shard}")
    found = [s for s in map(live, table.full_items(entries)) if s is not None]
    return found, len(entries) - len(found), next_cursor


def ended_before(status: str, cutoff: str, limit: int,
                 cursor: str | None) -> tuple[list[str], str | None]:
    """Ids of sessions of an ended `status` that ended before `cutoff`: a Query on the status
    index (sorted by start, which precedes the end)."""
    entries, next_cursor = table.query_page(
        index="GSI1", key_condition="GSI1PK = :pk AND GSI1SK < :cutoff",
        vals=table.values(pk=f"SESSIONS#{status}", cutoff=cutoff), limit=limit,
        filter_expression="ended_at < :cutoff", cursor=cursor,
        cursor_scope=f"retention:{status}")
    return [e["PK"].removeprefix("SESSION#") for e in entries], next_cursor
