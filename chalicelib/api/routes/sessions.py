"""Sessions: start, list, read, end, delete, report progress, the next step and the event trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib import observability
from chalicelib.api import auth
from chalicelib.api.http import header, json_response, parse_body, parse_query, path_id, validate
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, caller, check_owner, no_content
from chalicelib.domain.errors import (
    ConcurrentUpdate,
    Forbidden,
    IdempotencyKeyReused,
    InvalidStep,
    ManualNotFound,
    SessionDeleting,
    SessionEnded,
    SessionExists,
    SessionNotFound,
    UserMismatch,
    ValidationFailed,
)

if TYPE_CHECKING:
    from chalicelib.api.schemas import (
        AlreadyProcessed,
        EventListQuery,
        EventPage,
        SessionListQuery,
        SessionPage,
        SessionPatch,
    )
    from chalicelib.domain.models import NextStepOut, ProgressIn, ProgressOut, SessionCreate, SessionOut
    from chalicelib.domain.vocabulary import IdempotencyKey
    from chalicelib.services import progress, sessions
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    AlreadyProcessed, EventListQuery, EventPage, SessionListQuery, SessionPage, SessionPatch = lazy(
        "chalicelib.api.schemas", "AlreadyProcessed", "EventListQuery", "EventPage", "SessionListQuery",
        "SessionPage", "SessionPatch")
    NextStepOut, ProgressIn, ProgressOut, SessionCreate, SessionOut = lazy(
        "chalicelib.domain.models", "NextStepOut", "ProgressIn", "ProgressOut", "SessionCreate", "SessionOut")
    IdempotencyKey = lazy("chalicelib.domain.vocabulary", "IdempotencyKey")
    progress, sessions = lazy("chalicelib.services", "progress", "sessions")

bp = Resource(__name__)
route = bp.declare


@route("/v1/sessions", "POST", summary="Start a session (same id, user and manual again: 200)",
       body=SessionCreate, responses={201: SessionOut, 200: SessionOut}, scope="agent", per_user=True,
       operation_id="start_session", errors=(ManualNotFound, SessionExists, SessionDeleting, Forbidden,
                                             ConcurrentUpdate))
def create_session() -> Response:
    """Start a learner's session on a manual: 201 with the new session (status `active`,
    current_step 1). Send your own `session_id` to make the call safe to retry: the same id,
    user and manual again answers 200 with the existing session; the same id with another user
    or manual is 409 session_exists. A key bound to a user starts sessions for that user only."""
    body = parse_body(bp.current_request, SessionCreate)
    auth.check_user(caller(bp.current_request), body.user_id)
    session, created = sessions.create_session(body)
    return json_response(session, 201 if created else 200)


@route("/v1/sessions", "GET", summary="List sessions, newest first", responses={200: SessionPage},
       query=SessionListQuery, per_user=True, errors=(Forbidden,))
def list_sessions() -> Response:
    """Sessions, newest first, filtered by status, user or manual (combine them), one page
    at a time: pass `next_cursor` as `cursor` until it is null."""
    query = parse_query(bp.current_request, SessionListQuery)
    user_id = query.user_id
    bound = caller(bp.current_request)
    if bound is not None and bound.user_id:  # a key bound to a user lists that user's only
        auth.check_user(bound, user_id or bound.user_id)
        user_id = bound.user_id
    return json_response(sessions.list_sessions(
        status=query.status, user_id=user_id, manual_id=query.manual_id,
        limit=query.limit, cursor=query.cursor))


@route("/v1/sessions/{session_id}", "GET", summary="A session", responses={200: SessionOut}, per_user=True,
       errors=(SessionNotFound, UserMismatch))
def get_session(session_id: str) -> Response:
    """One session: its status, current step, completed steps, message count and timestamps."""
    session = sessions.get_session(path_id(session_id, "session_id"))
    auth.check_user(caller(bp.current_request), session.user_id)
    return json_response(session)


@route("/v1/sessions/{session_id}", "PATCH", summary="End an active session", body=SessionPatch,
       responses={200: SessionOut}, scope="agent", per_user=True, operation_id="end_session",
       errors=(SessionNotFound, SessionEnded, UserMismatch, ConcurrentUpdate))
def update_session(session_id: str) -> Response:
    """End an active session before its last step: `ended` (finished early) or `abandoned`
    (the learner left). A session that is no longer active answers 400 session_ended."""
    body = parse_body(bp.current_request, SessionPatch)
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    return json_response(sessions.end_session(session_id, body.status))


@route("/v1/sessions/{session_id}", "DELETE", summary="Delete a session with its messages and events",
       responses={204: None}, scope="admin", errors=(SessionNotFound, ConcurrentUpdate))
def delete_session(session_id: str) -> Response:
    """Delete a session, its messages and its events, for good. A delete that stopped midway
    is finished by sending it again (meanwhile the id answers 409 session_deleting)."""
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    sessions.delete_session(session_id)
    return no_content()


@route("/v1/sessions/{session_id}/progress", "POST", summary="Report progress: DONE or ONGOING on a step",
       body=ProgressIn, responses={200: [ProgressOut, AlreadyProcessed]},
       headers=(("Idempotency-Key", IdempotencyKey, "Optional, the same as `idempotency_key` in the body "
                 "(send one or the other; both must agree)."),), scope="agent", per_user=True,
       errors=(SessionNotFound, SessionEnded, InvalidStep, UserMismatch, IdempotencyKeyReused,
               ConcurrentUpdate))
def report_progress(session_id: str) -> Response:
    """Report a step: DONE (completed) or ONGOING (being worked on). Steps may be reported out
    of order (`out_of_order: true`; the current step moves to the first step not done). When
    every step is DONE the session becomes `completed` and takes no more progress (400
    session_ended). A step past the manual's last is 400 invalid_step. Send an
    `idempotency_key` (or the Idempotency-Key header) to make a retry safe: the same key and
    payload answer 200 `already_processed` with the first result and the
    `Idempotent-Replayed: true` header; the same key with another payload is 422
    idempotency_key_reused. The answer holds the session and the next step to do."""
    request = bp.current_request
    with observability.rejections_counted(observability.PROGRESS_REJECTED, session_id=session_id):
        body = parse_body(request, ProgressIn)
        body = _with_header_key(body, header(request, "Idempotency-Key"))
        # the session must be body.user_id's (checked in the write)
        auth.check_user(caller(bp.current_request), body.user_id)
        try:
            result = progress.report_progress(path_id(session_id, "session_id"), body)
        except progress.Replay as replay:
            observability.progress_outcome("replayed", session_id=session_id, step=body.current_step)
            return json_response({"status": "already_processed", "original_result": replay.original},
                                 200, {"Idempotent-Replayed": "true"})
    observability.progress_outcome("accepted", session_id=session_id, step=body.current_step,
                                   step_status=body.step_status, event_id=result.event_id,
                                   applied=result.applied)
    return json_response(result)


@route("/v1/sessions/{session_id}/next-step", "GET", summary="The step to do next",
       responses={200: NextStepOut}, per_user=True, errors=(SessionNotFound, UserMismatch))
def get_next_step(session_id: str) -> Response:
    """The first step not yet DONE, with its title and content (null when every step is done),
    and whether the session is completed: what the tutor should teach now."""
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    return json_response(sessions.get_next_step(session_id))


@route("/v1/sessions/{session_id}/events", "GET", summary="The audit trail with delivery status",
       responses={200: EventPage}, query=EventListQuery, per_user=True, errors=(SessionNotFound, UserMismatch))
def list_events(session_id: str) -> Response:
    """Every accepted change to the session, oldest first (session_created, progress_update,
    session_ended), each with its webhook's delivery status and attempts."""
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    page = parse_query(bp.current_request, EventListQuery)
    return json_response(sessions.list_events(session_id, page.limit, page.cursor, page.after_sequence))


def _with_header_key(body: ProgressIn, key: str | None) -> ProgressIn:
    if key is None:
        return body
    if body.idempotency_key not in (None, key):
        raise ValidationFailed(
            "Idempotency-Key header and idempotency_key in the body differ.",
            fields=[{"field": "idempotency_key", "message": "differs from the header"}])
    return validate(ProgressIn, {**body.model_dump(), "idempotency_key": key})
