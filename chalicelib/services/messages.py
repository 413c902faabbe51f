"""Chat messages (Type A input): appended in one transaction, idempotent by message_id."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from chalicelib.services import sessions
from chalicelib.db import table as store
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import IdempotencyKeyReused, MessageTooLarge, SessionNotFound, UserMismatch
from chalicelib.domain.models import MAX_MESSAGE_BYTES, Message, MessageIn, Page

# the session exists, is not being deleted (see sessions.delete_session), and is the user's
session_of_user = (f"{sessions.session_exists} AND {sessions.deletion_not_started}"
                   " AND user_id = :user_id")
claim_absent = "attribute_not_exists(PK)"


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
    claim = {**store.message_claim_key(session_id, message.message_id), "type": "message_claim",
             "fingerprint": digest, "created_at": message.created_at}
    item = {**store.message_key(session_id, message.created_at, message.message_id),
            "type": "message", **message.model_dump()}
    try:
        store.transact_write([
            {"Update": {
                "Key": store.to_item(store.session_key(session_id)),
                # GSI5SK moves the session in the index of active sessions (an ended
                # session has no GSI5PK, so this does not bring it back).
                "UpdateExpression": (f"SET last_activity_at = :now, GSI5SK = :activity"
                                     f" ADD message_count :one, messages_{body.sender} :one"),
                "ConditionExpression": session_of_user,
                "ExpressionAttributeValues": store.values(
                    now=message.created_at, one=1, user_id=body.user_id,
                    activity=f"{message.created_at}#{session_id}"),
            }},
            {"Put": {"Item": store.to_item(claim), "ConditionExpression": claim_absent}},
            {"Put": {"Item": store.to_item(item)}},
        ])
    except store.TransactionCanceled as exc:
        if exc.failed(0):
            if exc.items[0] is None or sessions.is_deleting(exc.items[0]):
                raise sessions.not_found(session_id) from exc
            raise UserMismatch(f"Session '{session_id}' does not belong to user '{body.user_id}'.",
                               session_id=session_id) from exc
        if exc.failed(1):
            return _original(session_id, exc.items[1] or {}, digest, message.message_id), False
        raise
    return message, True


def _original(session_id: str, claim: dict[str, Any], digest: str, message_id: str) -> Message:
    if claim.get("fingerprint") != digest:
        raise IdempotencyKeyReused(
            f"message_id '{message_id}' was already used for a different message.",
            message_id=message_id)
    item = store.get_item(store.message_key(session_id, claim["created_at"], message_id))
    if item is None:  # the claim and the message are written together; defensive only
        raise SessionNotFound(f"Session '{session_id}' not found", session_id=session_id)
    return Message.model_validate(item)


def list_messages(session_id: str, limit: int, cursor: str | None) -> Page:
    """Oldest first; messages in the same millisecond keep their order (keys carry
    microseconds, strictly increasing per process, and the message id)."""
    return sessions.list_children(session_id, "MSG#", limit, cursor, Message)
