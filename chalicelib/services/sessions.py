"""Sessions: start, read, list, end, delete, and the transactional write of a state change.

Every accepted change is ONE TransactWriteItems: the session update (conditional on its
version), its event item(s) (the outbox the feedback pipeline reads from the stream), the
idempotency record when the caller sent a key, and the manual's active-session counter when
the session starts or ends.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib.services import manuals
from chalicelib.db import table as store
from chalicelib.pipeline import webhooks
from chalicelib.domain import rules
from chalicelib.domain.clock import seconds_between, to_iso, utcnow
from chalicelib.config import get_settings
from chalicelib.domain.errors import (
    ConcurrentUpdate, ManualNotFound, SessionDeleting, SessionEnded, SessionExists, SessionNotFound,
)
from chalicelib.lru import LRU
from chalicelib.domain.models import Event, NextStep, NextStepOut, Page, Session, SessionCreate, SessionOut

T = TypeVar("T")

# session_id -> (manual_id, manual_rev): lets the progress read fetch the next step together
# with the session. A session's binding never changes; a stale entry (session deleted and
# re-created) is detected after the read and costs one extra GetItem.
bindings: LRU[str, tuple[str, str]] = LRU(50_000)

session_absent = "attribute_not_exists(PK)"
session_exists = "attribute_exists(PK)"
version_unchanged = "version = :expected"
# A session being deleted carries `deleting_at` (a tombstone): every writer refuses it, so
# nothing can be added under a session while its children are being removed.
deletion_not_started = "attribute_not_exists(deleting_at)"
deletion_started = "attribute_exists(deleting_at)"
event_absent = "attribute_not_exists(PK)"
manual_exists = "attribute_exists(PK)"


# Active sessions are spread over shards of a sparse index (GSI5, keyed by last activity) so
# the writes every progress report makes to it do not all land on one partition.
ACTIVE_SHARDS = 16


def active_shard(session_id: str) -> int:
    return int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16) % ACTIVE_SHARDS


def activity_key(session: Session) -> str:
    return f"{session.last_activity_at}#{session.session_id}"


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


# ---- items ---------------------------------------------------------------------------------


def session_item(session: Session) -> dict[str, Any]:
    order = f"{session.started_at}#{session.session_id}"
    return {
        **store.session_key(session.session_id), "type": "session", **session.model_dump(),
        "GSI1PK": f"SESSIONS#{session.status}", "GSI1SK": order,
        "GSI2PK": f"USER#{session.user_id}", "GSI2SK": order,
        "GSI3PK": f"MANUAL#{session.manual_id}", "GSI3SK": order,
        "GSI4PK": "SESSIONS", "GSI4SK": order,
        **({"GSI5PK": f"ACTIVE#{active_shard(session.session_id)}", "GSI5SK": activity_key(session)}
           if session.status == rules.ACTIVE else {}),
    }


def to_session(item: dict[str, Any]) -> Session:
    return Session.model_validate(item)


def public(session: Session, now: str | None = None) -> SessionOut:
    """The session as the API shows it, with its duration computed server-side (UTC)."""
    end = session.ended_at or now or to_iso(utcnow())
    return SessionOut(**session.model_dump(), duration_seconds=max(0.0, seconds_between(session.started_at, end)))


def change_items(old: Session, change: rules.Change,
                 activity_unchanged: bool = False) -> list[dict[str, Any]]:
    """The transaction items of a state change: session update + events (+ manual counter).
    `activity_unchanged` also requires that no message arrived since `old` was read."""
    new = change.session
    ending = new.status != rules.ACTIVE
    condition = f"{version_unchanged} AND {deletion_not_started}" + (
        " AND last_activity_at = :seen_activity" if activity_unchanged else "")
    vals = dict(
        status=new.status, current_step=new.current_step, completed=new.completed_steps,
        ended_at=new.ended_at, end_reason=new.end_reason, last_activity=new.last_activity_at,
        version=new.version, event_seq=new.event_seq, gsi1pk=f"SESSIONS#{new.status}",
        expected=old.version)
    if activity_unchanged:
        vals["seen_activity"] = old.last_activity_at
    expression = (
        "SET #status = :status, current_step = :current_step, completed_steps = :completed,"
        " ended_at = :ended_at, end_reason = :end_reason, last_activity_at = :last_activity,"
        " version = :version, event_seq = :event_seq, GSI1PK = :gsi1pk")
    if ending:  # leave the index of active sessions; keep the summary
        expression += ", summary = :summary REMOVE GSI5PK, GSI5SK"
        vals["summary"] = new.summary
    else:
        expression += ", GSI5SK = :activity_key"
        vals["activity_key"] = activity_key(new)
    items: list[dict[str, Any]] = [{"Update": {
        "Key": store.to_item(store.session_key(new.session_id)),
        "UpdateExpression": expression, "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": store.values(**vals),
    }}]
    items += [event_put(e) for e in change.events]
    if old.status == rules.ACTIVE and new.status != rules.ACTIVE:
        items.append(manual_counter(new.manual_id, -1))
    return items


def event_put(event: Event) -> dict[str, Any]:
    item = {**store.event_key(event.session_id, event.sequence), "type": "event",
            **event.model_dump(exclude={"delivery_status", "delivery_attempts"}),
            "GSI2PK": f"EVENT#{event.event_id}", "GSI2SK": "EVENT"}
    return {"Put": {"Item": store.to_item(item), "ConditionExpression": event_absent}}


def manual_counter(manual_id: str, delta: int) -> dict[str, Any]:
    update: dict[str, Any] = {
        "Key": store.to_item(store.manual_key(manual_id)),
        "UpdateExpression": "ADD active_sessions :delta",
        "ExpressionAttributeValues": store.values(delta=delta),
    }
    if delta > 0:  # a session may only start on a manual that exists (deletes race with this)
        update["ConditionExpression"] = manual_exists
    return {"Update": update}


# Backoff between optimistic-locking attempts. With N writers on one session one wins per
# round and the rest lose, so the losers must spread out over about N times the length of an
# attempt (its read-to-write window) or they collide again. The pause is therefore measured
# in attempts as long as the last one took (a few ms on DynamoDB; far more on a busy local
# moto, where queueing stretches every call), doubling per lost race (full jitter), capped.
BACKOFF_CAP_SECONDS = 1.0


def backoff_seconds(attempt: int, attempt_seconds: float) -> float:
    """Full-jitter pause after the `attempt`-th lost race of an attempt that took
    `attempt_seconds` (at least 5 ms, so a fast store still spreads writers out)."""
    unit = max(attempt_seconds, 0.005)
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, unit * 2 ** min(attempt, 10)))


def run_with_retries(attempt_once: Callable[[], T], session_id: str) -> T:
    """Run a read-decide-write attempt until it stops losing version races. Each attempt
    reads afresh after its pause: the window between its read and its write, in which
    another writer makes it lose, stays as short as the two calls.

    Bounded by time, not by a small count: 32 concurrent reports on one session need up to
    32 rounds for the last one to win, which a fixed 10 attempts could not give over HTTP
    (18-20 of 32 landed). UPDATE_RETRY_SECONDS (20 s, inside API Gateway's 29 s and the
    function's 30 s) is the budget; MAX_UPDATE_ATTEMPTS, when set, also caps the attempts.
    409 `concurrent_update` only after that."""
    settings = get_settings()
    deadline = time.monotonic() + settings.update_retry_seconds
    attempt = 0
    while True:
        began = time.monotonic()
        try:
            return attempt_once()
        except store.TransactionCanceled as exc:
            if not (exc.failed(0) or exc.conflict_only):
                raise
        attempt += 1
        pause = backoff_seconds(attempt, time.monotonic() - began)
        if (settings.max_update_attempts and attempt >= settings.max_update_attempts) or \
                time.monotonic() + pause > deadline:
            raise ConcurrentUpdate(
                "Session was modified by concurrent requests; retries ran out. Please retry.",
                session_id=session_id)
        time.sleep(pause)


# ---- reads ---------------------------------------------------------------------------------


def is_deleting(item: dict[str, Any]) -> bool:
    """A session marked for deletion: gone for readers and writers alike."""
    return "deleting_at" in item


def not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(f"Session '{session_id}' not found", session_id=session_id)


def load(session_id: str) -> Session:
    item = store.get_item(store.session_key(session_id))
    if item is None or is_deleting(item):
        raise not_found(session_id)
    session = to_session(item)
    bindings.put(session_id, (session.manual_id, session.manual_rev))
    return session


def get_session(session_id: str) -> SessionOut:
    return public(load(session_id))


def next_step(session: Session) -> NextStep | None:
    if session.status != rules.ACTIVE:
        return None
    step = manuals.fetch_step(session.manual_id, session.manual_rev, session.current_step)
    if step is None:
        return None
    return NextStep(**step.model_dump(), total_steps=session.total_steps)


def get_next_step(session_id: str) -> NextStepOut:
    session = load(session_id)
    step = next_step(session)
    return NextStepOut(session_id=session_id, is_completed=session.status == "completed",
                       total_steps=session.total_steps, completed_steps=session.completed_steps,
                       next_step=step)


def list_sessions(*, status: str | None, user_id: str | None, manual_id: str | None,
                  limit: int, cursor: str | None) -> Page:
    """One Query on the index that matches the most selective filter, then one BatchGetItem
    for the page's sessions (indexes project only stable attributes, so progress updates do
    not rewrite index entries)."""
    filters: dict[str, str] = {}
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
    items, next_cursor = store.query_page(
        index=index, key_condition=f"{index}PK = :pk", vals=store.values(pk=pk, **active),
        filter_expression=" AND ".join(f"#{k} = :{k}" for k in active) or None,
        names=names or None, limit=limit, cursor=cursor, forward=False,
        cursor_scope=f"sessions:{pk}:{sorted(active.items())}")
    now = to_iso(utcnow())
    page = [public(to_session(item), now).model_dump() for item in store.full_items(items)
            if not is_deleting(item)]
    return Page(items=page, next_cursor=next_cursor)


def list_events(session_id: str, limit: int, cursor: str | None) -> Page:
    """The audit trail, oldest first, each event with its webhook delivery status:
    `pending` (queued or on its way), `retrying`, `delivered`, `failed` (dead-lettered),
    `gone` (receiver answered 410) or `not_sent` (its type is not configured for webhooks)."""
    page = list_children(session_id, "EVT#", limit, cursor, Event)
    types = get_settings().event_types
    for event in page.items:
        if event["delivery_status"] is None:
            event["delivery_status"] = "pending" if webhooks.wanted(event, types) else "not_sent"
    return page


def list_children(session_id: str, prefix: str, limit: int, cursor: str | None, model: Any) -> Page:
    """One Query per page of a session's child items, oldest first; a session with none is
    told apart from a missing session by one GetItem (only then)."""
    items, next_cursor = store.query_page(
        key_condition="PK = :pk AND begins_with(SK, :prefix)",
        vals=store.values(pk=f"SESSION#{session_id}", prefix=prefix),
        limit=limit, cursor=cursor, cursor_scope=f"{prefix}{session_id}")
    if not items and cursor is None:
        load(session_id)
    return Page(items=[model.model_validate(i).model_dump() for i in items], next_cursor=next_cursor)


# ---- writes --------------------------------------------------------------------------------


def create_session(body: SessionCreate) -> tuple[SessionOut, bool]:
    """Start a session. Returns it and whether it was created: the same session_id with the
    same user and manual is a safe retry (double click) and returns the existing session."""
    manual = manuals.get_meta(body.manual_id)
    now = to_iso(utcnow())
    change = rules.start_session(
        session_id=body.session_id or str(uuid.uuid4()), user_id=body.user_id,
        manual_id=body.manual_id, manual_rev=manual["rev"], total_steps=manual["total_steps"],
        now=now, new_id=new_event_id)
    session = change.session

    def attempt() -> tuple[SessionOut, bool]:
        try:
            store.transact_write([
                {"Put": {"Item": store.to_item(session_item(session)),
                         "ConditionExpression": session_absent}},
                manual_counter(session.manual_id, +1),
                *(event_put(e) for e in change.events),
            ])
        except store.TransactionCanceled as exc:
            if exc.failed(0):
                return _existing(exc.items[0] or {}, body), False
            if exc.failed(1):
                raise ManualNotFound(f"Manual '{body.manual_id}' not found",
                                     manual_id=body.manual_id) from exc
            raise  # a conflict is retried; any other refusal is a 409
        bindings.put(session.session_id, (session.manual_id, session.manual_rev))
        return public(session, now), True

    return run_with_retries(attempt, session.session_id)


def _existing(item: dict[str, Any], body: SessionCreate) -> SessionOut:
    if is_deleting(item):
        raise SessionDeleting(
            f"Session '{body.session_id}' is being deleted; its id is free once that finishes "
            "(if a delete stopped midway, send the DELETE again).", session_id=body.session_id)
    existing = to_session(item)
    if existing.user_id != body.user_id or existing.manual_id != body.manual_id:
        raise SessionExists(
            f"Session '{existing.session_id}' already exists for another user or manual.",
            session_id=existing.session_id)
    return public(existing)


def summarised(change: rules.Change) -> rules.Change:
    """An ending change with its summary (reads the session's event trail: once per session)."""
    if change.session.status == rules.ACTIVE:
        return change
    history = [Event.model_validate(e) for e in store.query_all(
        key_condition="PK = :pk AND begins_with(SK, :prefix)",
        vals=store.values(pk=f"SESSION#{change.session.session_id}", prefix="EVT#"))]
    return rules.with_summary(change, history)


def end_session(session_id: str, status: str, reason: str | None = None) -> SessionOut:
    """End an active session (`ended` or `abandoned` by the caller)."""

    def attempt() -> SessionOut:
        session = load(session_id)
        now = to_iso(utcnow())
        change = summarised(rules.end_session(session, status=status, reason=reason or status,
                                              now=now, new_id=new_event_id))
        store.transact_write(change_items(session, change))
        return public(change.session, now)

    return run_with_retries(attempt, session_id)


def abandon_if_idle(session: Session, now: str) -> bool:
    """End a session the idle job found, unless anything touched it since it was read
    (a progress report bumps the version, a message moves last_activity_at): then the
    update wins and the session stays active. Returns whether it was abandoned."""
    try:
        change = summarised(rules.end_session(session, status="abandoned", reason="idle_timeout",
                                              now=now, new_id=new_event_id))
        store.transact_write(change_items(session, change, activity_unchanged=True))
    except (store.TransactionCanceled, SessionEnded):
        return False
    return True


def delete_session(session_id: str) -> None:
    """Delete a session with its messages, events and idempotency records, whatever races it.

    1. Mark it deleting, in one conditional update that returns the session as marked. From
       then on every writer's condition refuses it (progress, end, messages, the idle job, a
       create with the same id) and every read answers 404.
    2. Remove its children, found by a consistent query: nothing written before the mark is
       missed, and nothing can be written after it.
    3. Remove the session item, conditional on the mark, together with the manual's
       active-session counter if it was active: exactly once, even with two deletes at once.

    A crash between the steps leaves a marked session (404; a create with its id answers 409
    `session_deleting`) that the next DELETE finishes."""
    try:
        session = store.update_item(
            store.session_key(session_id), "SET deleting_at = if_not_exists(deleting_at, :now)",
            condition=session_exists, vals=store.values(now=to_iso(utcnow())), returning=True)
    except store.ConditionFailed as exc:
        raise not_found(session_id) from exc
    assert session is not None
    children = [k for k in store.query_all(
        key_condition="PK = :pk", vals=store.values(pk=f"SESSION#{session_id}"),
        projection="PK, SK", consistent=True) if k["SK"] != store.META]
    store.batch_write(deletes=children)

    def attempt() -> None:
        items: list[dict[str, Any]] = [{"Delete": {
            "Key": store.to_item(store.session_key(session_id)),
            "ConditionExpression": deletion_started,
        }}]
        if session["status"] == rules.ACTIVE:  # frozen by the mark: no writer can change it
            items.append(manual_counter(session["manual_id"], -1))
        try:
            store.transact_write(items)
        except store.TransactionCanceled as exc:
            if not exc.failed(0):
                raise  # a conflict on the counter: retried
            # already removed by a concurrent delete, which dropped the counter: done

    run_with_retries(attempt, session_id)
