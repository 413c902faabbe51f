"""The conversation: store a chat message (idempotent by message_id), read it back in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api import auth
from chalicelib.api.http import header, json_response, parse_body, parse_query, path_id, validate
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, caller, check_owner
from chalicelib.domain.errors import Forbidden, IdempotencyKeyReused, MessageTooLarge, SessionNotFound, UserMismatch

if TYPE_CHECKING:
    from chalicelib.api.schemas import MessageListQuery, MessagePage, MessageWithSession
    from chalicelib.domain.models import Message, MessageIn
    from chalicelib.domain.vocabulary import ResourceId
    from chalicelib.services import messages
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    MessageListQuery, MessagePage, MessageWithSession = lazy(
        "chalicelib.api.schemas", "MessageListQuery", "MessagePage", "MessageWithSession")
    Message, MessageIn = lazy("chalicelib.domain.models", "Message", "MessageIn")
    ResourceId = lazy("chalicelib.domain.vocabulary", "ResourceId")
    messages = lazy("chalicelib.services", "messages")

bp = Resource(__name__)
route = bp.declare
_KEY_TEXT = ("Optional: the message's id when the body has no `message_id` (a retry with the same "
             "key and content is answered the stored message).")
_ERRORS = (SessionNotFound, UserMismatch, Forbidden, IdempotencyKeyReused, MessageTooLarge)


@route("/v1/messages", "POST", summary="Store a chat message", body=MessageWithSession,
       responses={201: Message, 200: Message}, headers=(("Idempotency-Key", ResourceId, _KEY_TEXT),),
       scope="agent", per_user=True, operation_id="record_message", errors=_ERRORS)
def post_message() -> Response:
    """Store one chat message of a session (`session_id` in the body); the same as
    recordSessionMessage. 201 with the stored message; a retry with the same `message_id` (or
    Idempotency-Key) and content answers 200 with the first one and `Idempotent-Replayed:
    true`; the same id with other content is 422 idempotency_key_reused."""
    request = bp.current_request
    body = parse_body(request, MessageWithSession)
    return _append(body.session_id, body, header(request, "Idempotency-Key"))


@route("/v1/sessions/{session_id}/messages", "POST", summary="Store a chat message", body=MessageIn,
       responses={201: Message, 200: Message}, headers=(("Idempotency-Key", ResourceId, _KEY_TEXT),),
       scope="agent", per_user=True, operation_id="record_session_message", errors=_ERRORS)
def post_session_message(session_id: str) -> Response:
    """Store one chat message of the session in the path: 201 with the stored message; a retry
    with the same `message_id` (or Idempotency-Key) and content answers 200 with the first one
    and `Idempotent-Replayed: true`; the same id with other content is 422
    idempotency_key_reused."""
    request = bp.current_request
    body = parse_body(request, MessageIn)
    return _append(path_id(session_id, "session_id"), body, header(request, "Idempotency-Key"))


@route("/v1/sessions/{session_id}/messages", "GET", summary="The conversation, oldest first",
       responses={200: MessagePage}, query=MessageListQuery, per_user=True, operation_id="get_conversation",
       errors=(SessionNotFound, UserMismatch))
def list_messages(session_id: str) -> Response:
    """The session's conversation, oldest first, one page at a time (`next_cursor`)."""
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    page = parse_query(bp.current_request, MessageListQuery)
    return json_response(messages.list_messages(session_id, page.limit, page.cursor, page.since))


def _append(session_id: str, body: MessageIn, key: str | None) -> Response:
    # the session must be body.user_id's (checked in the write)
    auth.check_user(caller(bp.current_request), body.user_id)
    if key:  # checked even when the body's message_id wins: the document says what it may be
        path_id(key, "Idempotency-Key")
    if key and not body.message_id:
        body = validate(MessageIn, {**body.model_dump(exclude={"session_id"}), "message_id": key})
    message, stored = messages.append_message(session_id, body)
    return json_response(message, 201 if stored else 200,
                         None if stored else {"Idempotent-Replayed": "true"})
