"""Sessions: start, read, list, end, delete, and the transactional write of a state change.

Every accepted change is ONE TransactWriteItems (`change_transaction`): the session update
(conditional on its version), its event item(s) (the outbox the feedback pipeline reads from
the stream), the idempotency record when the caller sent a key, and the manual's
active-session counter when the session starts or ends. The items and their conditions are
the repository's (chalicelib/db/sessions.py); this module decides what to write.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib.config import get_settings
from chalicelib.db import events
from chalicelib.db import manuals as manual_items
from chalicelib.db import sessions as repository
from chalicelib.db.sessions import EVENTS
from chalicelib.db.table import Transaction, TransactionCanceled
from chalicelib.domain import rules
from chalicelib.domain.clock import seconds_between, to_iso, utcnow
from chalicelib.domain.errors import (
    ConcurrentUpdate,
    ManualNotFound,
    SessionDeleting,
    SessionEnded,
    SessionExists,
    SessionNotFound,
)
from chalicelib.domain.models import Event, NextStep, NextStepOut, Page, Session, SessionCreate, SessionOut
from chalicelib.lru import LRU
from chalicelib.pipeline import targets
from chalicelib.services import manuals

T = TypeVar("T")

# session_id -> (manual_id, manual_rev): lets the progress read fetch the next step together
# with the session. A session's binding never changes; a stale entry (session deleted and
# re-created) is detected after the read and costs one extra GetItem.
_bindings: LRU[str, tuple[str, str]] = LRU(50_000)


def binding(session_id: str) -> tuple[str, str] | None:
    """The (manual_id, manual_rev) this process last saw the session bound to, if any."""
    return _bindings.get(session_id)


def remember(session: Session) -> None:
    _bindings.put(session.session_id, (session.manual_id, session.manual_rev))


def forget_bindings() -> None:
    _bindings.clear()


def new_event_id(session_id: str, occurred_at: str) -> str:
    return events.new_id(session_id, occurred_at)


def public(session: Session, now: str | None = None) -> SessionOut:
    """The session as the API shows it, with its duration computed server-side (UTC)."""
    end = session.ended_at or now or to_iso(utcnow())
    return SessionOut(**session.model_dump(), duration_seconds=max(0.0, seconds_between(session.started_at, end)))


def change_transaction(old: Session, change: rules.Change,
                       activity_unchanged: bool = False) -> Transaction:
    """The transaction of a state change: session update + events (+ manual counter when
    the session ends). `activity_unchanged` also requires that no message arrived since `old`
    was read. The caller may add items (an idempotency record) before committing."""
    tx = Transaction()
    repository.add_change(tx, old, change.session, activity_unchanged=activity_unchanged)
    repository.add_events(tx, change.events)
    if old.status == rules.ACTIVE and change.session.status != rules.ACTIVE:
        manual_items.add_active_sessions(tx, change.session.manual_id, -1)
    return tx


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
        except TransactionCanceled as exc:
            if not (exc.failed("session") or exc.conflict_only):
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


def not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(f"Session '{session_id}' not found", session_id=session_id)


def load(session_id: str) -> Session:
    session = repository.load(session_id)
    if session is None:
        raise not_found(session_id)
    remember(session)
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
    """A page of sessions, newest first: one Query + one BatchGetItem."""
    found, next_cursor = repository.list_page(status=status, user_id=user_id, manual_id=manual_id,
                                              limit=limit, cursor=cursor)
    now = to_iso(utcnow())
    return Page(items=[public(s, now).model_dump() for s in found], next_cursor=next_cursor)


def list_events(session_id: str, limit: int, cursor: str | None, after_sequence: int | None = None) -> Page:
    """The audit trail, oldest first, each event with its webhook delivery status:
    `pending` (queued or on its way), `retrying`, `delivered`, `failed` (dead-lettered),
    `gone` (receiver answered 410) or `not_sent` (its type is not configured for webhooks).
    With `after_sequence`, only the events after that one (still one Query)."""
    start = None if after_sequence is None else repository.event_position(after_sequence + 1)
    page = list_children(session_id, EVENTS, limit, cursor, Event, start)
    for event in page.items:
        event["deliveries"] = targets.deliveries_of(event)
        if event["delivery_status"] is None:
            event["delivery_status"] = "pending" if targets.wanted_anywhere(event) else "not_sent"
    return page


def list_children(session_id: str, prefix: str, limit: int, cursor: str | None, model: Any,
                  start: str | None = None) -> Page:
    """One Query per page of a session's child items, oldest first (from `start` on, if
    given); a session with none is told apart from a missing session by one GetItem (only then)."""
    items, next_cursor = repository.children_page(session_id, prefix, limit, cursor, start)
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
        tx = Transaction()
        repository.add_start(tx, session)
        manual_items.add_active_sessions(tx, session.manual_id, +1)
        repository.add_events(tx, change.events)
        try:
            tx.commit()
        except TransactionCanceled as exc:
            if exc.failed("session"):
                return _existing(exc.item("session") or {}, body), False
            if exc.failed("manual"):
                raise ManualNotFound(f"Manual '{body.manual_id}' not found",
                                     manual_id=body.manual_id) from exc
            raise  # a conflict is retried; any other refusal is a 409
        remember(session)
        return public(session, now), True

    return run_with_retries(attempt, session.session_id)


def _existing(item: dict[str, Any], body: SessionCreate) -> SessionOut:
    if repository.is_deleting(item):
        raise SessionDeleting(
            f"Session '{body.session_id}' is being deleted; its id is free once that finishes "
            "(if a delete stopped midway, send the DELETE again).", session_id=body.session_id)
    existing = Session.model_validate(item)
    if existing.user_id != body.user_id or existing.manual_id != body.manual_id:
        raise SessionExists(
            f"Session '{existing.session_id}' already exists for another user or manual.",
            session_id=existing.session_id)
    return public(existing)


def summarised(change: rules.Change) -> rules.Change:
    """An ending change with its summary (reads the session's event trail: once per session)."""
    if change.session.status == rules.ACTIVE:
        return change
    return rules.with_summary(change, repository.all_events(change.session.session_id))


def end_session(session_id: str, status: str, reason: str | None = None) -> SessionOut:
    """End an active session (`ended` or `abandoned` by the caller)."""

    def attempt() -> SessionOut:
        session = load(session_id)
        now = to_iso(utcnow())
        change = summarised(rules.end_session(session, status=status, reason=reason or status,
                                              now=now, new_id=new_event_id))
        change_transaction(session, change).commit()
        return public(change.session, now)

    return run_with_retries(attempt, session_id)


def abandon_if_idle(session: Session, now: str) -> bool:
    """End a session the idle job found, unless anything touched it since it was read
    (a progress report bumps the version, a message moves last_activity_at): then the
    update wins and the session stays active. Returns whether it was abandoned."""
    try:
        change = summarised(rules.end_session(session, status="abandoned", reason="idle_timeout",
                                              now=now, new_id=new_event_id))
        change_transaction(session, change, activity_unchanged=True).commit()
    except (TransactionCanceled, SessionEnded):
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
    session = repository.mark_deleting(session_id, to_iso(utcnow()))
    if session is None:
        raise not_found(session_id)
    repository.delete_children(session_id)

    def attempt() -> None:
        tx = Transaction()
        repository.add_delete_marked(tx, session_id)
        if session["status"] == rules.ACTIVE:  # frozen by the mark: no writer can change it
            manual_items.add_active_sessions(tx, session["manual_id"], -1)
        try:
            tx.commit()
        except TransactionCanceled as exc:
            if not exc.failed("session"):
                raise  # a conflict on the counter: retried
            # already removed by a concurrent delete, which dropped the counter: done

    run_with_retries(attempt, session_id)
