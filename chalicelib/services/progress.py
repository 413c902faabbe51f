"""Progress reports (DONE / ONGOING) with idempotency inside the transaction.

Happy path: one BatchGetItem (session + idempotency record + the step the learner will be
on next, when this process knows the session's manual) and one TransactWriteItems.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from chalicelib.config import get_settings
from chalicelib.db import manuals as manual_items
from chalicelib.db import sessions as repository
from chalicelib.db.table import TransactionCanceled, batch_get, ident
from chalicelib.domain import rules
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import IdempotencyKeyReused
from chalicelib.domain.models import NextStep, ProgressIn, ProgressOut, Session
from chalicelib.services import manuals, sessions


class Replay(Exception):
    """The request was already processed: answer with the first response."""

    def __init__(self, original: dict[str, Any]) -> None:
        super().__init__("already processed")
        self.original = original


def fingerprint(body: ProgressIn) -> str:
    canonical = json.dumps(
        [body.user_id, body.current_step, body.step_status], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def report_progress(session_id: str, body: ProgressIn) -> ProgressOut:
    """Apply one progress report. Raises Replay for a repeated idempotency key."""
    key = body.idempotency_key
    digest = fingerprint(body)

    def attempt() -> ProgressOut:
        session, record, prefetched = _read(session_id, body, key)
        rules.ensure_owner(session, body.user_id)
        if record is not None:
            _check_replay(record, digest, key or "")
        now = to_iso(utcnow())
        change = sessions.summarised(rules.apply_progress(
            session, user_id=body.user_id, step=body.current_step, step_status=body.step_status,
            now=now, new_id=sessions.new_event_id))
        new = change.session
        step = prefetched if prefetched and prefetched.step_number == new.current_step else None
        if step is None and new.status == rules.ACTIVE:
            step = manuals.fetch_step(new.manual_id, new.manual_rev, new.current_step)
        result = ProgressOut(
            session=sessions.public(new, now), applied=change.event.applied,
            out_of_order=change.event.out_of_order, event_id=change.event.event_id,
            next_step=NextStep(**step.model_dump(), total_steps=new.total_steps)
            if step and new.status == rules.ACTIVE else None,
        )
        tx = sessions.change_transaction(session, change)
        if key:
            now_epoch = time.time()
            repository.add_idempotency_claim(tx, session_id, key, {
                "fingerprint": digest, "response": result.model_dump_json(), "created_at": now,
                "expires_at": int(now_epoch + get_settings().idempotency_ttl_seconds),
            }, now_epoch=int(now_epoch))
        try:
            tx.commit()
        except TransactionCanceled as exc:
            if key and exc.failed("idempotency"):
                # A concurrent request with the same key won: answer as it did.
                _check_replay(exc.item("idempotency") or {}, digest, key)
            raise
        return result

    return sessions.run_with_retries(attempt, session_id)


def _read(session_id: str, body: ProgressIn,
          key: str | None) -> tuple[Session, dict[str, Any] | None, Any]:
    """One BatchGetItem: the session, the idempotency record, and the likely next step."""
    keys = [repository.key(session_id)]
    if key:
        keys.append(repository.idempotency_key(session_id, key))
    binding = sessions.binding(session_id)
    guess = body.current_step + 1 if body.step_status == "DONE" else body.current_step
    prefetched = None
    if binding:
        prefetched = manuals.cached_step(binding[0], binding[1], guess)
        if prefetched is None:
            keys.append(manual_items.step_key(binding[0], binding[1], guess))
    found = batch_get(keys)
    session = repository.live(found.get(ident(repository.key(session_id))))
    if session is None:
        raise sessions.not_found(session_id)
    sessions.remember(session)
    if prefetched is None and binding == (session.manual_id, session.manual_rev):
        step_item = found.get(ident(manual_items.step_key(*binding, guess)))
        if step_item:
            prefetched = manuals.remember_step(session.manual_id, session.manual_rev, step_item)
    record = found.get(ident(repository.idempotency_key(session_id, key))) if key else None
    if record is not None and record.get("expires_at", 0) < time.time():
        record = None  # expired: DynamoDB's TTL deletion can lag by days
    return session, record, prefetched


def _check_replay(record: dict[str, Any], digest: str, key: str) -> None:
    if record.get("fingerprint") != digest:
        raise IdempotencyKeyReused(
            f"Idempotency key '{key}' was already used with a different request.",
            idempotency_key=key)
    raise Replay(json.loads(record["response"]))
