"""Chat messages and their id claims, under the session's partition.

    SESSION#<id> / MSG#<created_at>#<message_id>   the message, in arrival order
    SESSION#<id> / MSGID#<message_id>              claim: makes an append idempotent

An append is one transaction without a read: the session's existence and owner are its
conditions (item "session"), the claim a conditional put (item "claim"), then the message.
"""

from __future__ import annotations

from typing import Any

from chalicelib.db import sessions, table

_absent = "attribute_not_exists(PK)"


def key(session_id: str, created_at: str, message_id: str) -> dict[str, str]:
    return {"PK": sessions.partition(session_id), "SK": f"MSG#{created_at}#{message_id}"}


def claim_key(session_id: str, message_id: str) -> dict[str, str]:
    return {"PK": sessions.partition(session_id), "SK": f"MSGID#{message_id}"}


def append(message: dict[str, Any], fingerprint: str) -> None:
    """Store `message` (a Message dump). Raises TransactionCanceled: "session" failed (absent,
    being deleted or another user's) or "claim" failed (the message_id was used: its claim,
    with the fingerprint and created_at of the original, is `item("claim")`)."""
    session_id, message_id, at = message["session_id"], message["message_id"], message["created_at"]
    tx = table.Transaction()
    sessions.touch_for_message(tx, session_id, message["user_id"], message["sender"], at)
    tx.put("claim", {**claim_key(session_id, message_id), "type": "message_claim",
                     "fingerprint": fingerprint, "created_at": at}, condition=_absent)
    tx.put("message", {**key(session_id, at, message_id), "type": "message", **message})
    tx.commit()


def get(session_id: str, created_at: str, message_id: str) -> dict[str, Any] | None:
    return table.get_item(key(session_id, created_at, message_id))
