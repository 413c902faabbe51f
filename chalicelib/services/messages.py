"""Chat messages (Type A input): appended in one transaction, idempotent by message_id."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from chalicelib.db import messages as repository
from chalicelib.db.sessions import MESSAGES, is_deleting
from chalicelib.db.table import TransactionCanceled
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import IdempotencyKeyReused, MessageTooLarge, SessionNotFound, UserMismatch
from chalicelib.domain.models import Message, MessageIn, Page
from chalicelib.domain.vocabulary import MAX_MESSAGE_BYTES
from chalicelib.services import sessions


def append_message(session_id: str, body: MessageIn) -> tuple[Message, bool]:
    """Store a message. Returns it and whether it was stored now (False: a repeat of the same
    message_id, answered with the original). One TransactWriteItems, no read:
    the session's existence and owner are conditions, the message_id claim is a conditional put.
    """
    size = len(body.message.encode())
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"Message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes.",
            limit_bytes=MAX_MESSAGE_BYTES, size_bytes=size)
    message = Message(
        message_id=body.message_id or f"msg_{uuid.uuid4().hex}", session_id=session_id,
        user_id=body.user_id, sender=body.sender, message=body.message,
        created_at=to_iso(utcnow()))
    digest = hashlib.sha256(json.dumps(
        [body.user_id, body.sender, body.message], separators=(",", ":")).encode()).hexdigest()

    def attempt() -> tuple[Message, bool]:
        try:
            repository.append(message.model_dump(), digest)
        except TransactionCanceled as exc:
            if exc.failed("session"):
                current = exc.item("session")
                if current is None or is_deleting(current):
                    raise sessions.not_found(session_id) from exc
                raise UserMismatch(f"Session '{session_id}' does not belong to user '{body.user_id}'.",
                                   session_id=session_id) from exc
            if exc.failed("claim"):
                return _original(session_id, exc.item("claim") or {}, digest, message.message_id), False
            raise  # a race with another transaction on the session item: retried
        return message, True

    return sessions.run_with_retries(attempt, session_id)


def _original(session_id: str, claim: dict[str, Any], digest: str, message_id: str) -> Message:
    if claim.get("fingerprint") != digest:
        raise IdempotencyKeyReused(
            f"message_id '{message_id}' was already used for a different message.",
            message_id=message_id)
    item = repository.get(session_id, claim["created_at"], message_id)
    if item is None:  # the claim and the message are written together; defensive only
        raise SessionNotFound(f"Session '{session_id}' not found", session_id=session_id)
    return Message.model_validate(item)


def list_messages(session_id: str, limit: int, cursor: str | None, since: str | None = None) -> Page:
    """Oldest first; messages in the same millisecond keep their order (keys carry
    microseconds, strictly increasing per process, and the message id). With `since` (a
    moment as the API writes them), only those created at or after it (still one Query)."""
    return sessions.list_children(session_id, MESSAGES, limit, cursor, Message, since)
