"""Sessions: start, list, read, end, delete, report progress, the next step and the event trail."""

from __future__ import annotations

from chalice import Response

from chalicelib import observability
from chalicelib.api import auth
from chalicelib.api.http import header, json_response, parse_body, parse_query, path_id, validate
from chalicelib.api.routing import Resource, caller, check_owner, no_content
from chalicelib.api.schemas import (
    AlreadyProcessed,
    EventListQuery,
    EventPage,
    SessionListQuery,
    SessionPage,
    SessionPatch,
)
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.models import NextStepOut, ProgressIn, ProgressOut, SessionCreate, SessionOut
from chalicelib.domain.vocabulary import IdempotencyKey
from chalicelib.services import progress, sessions

bp = Resource(__name__)
route = bp.declare


@route("/v1/sessions", "POST", summary="Start a session (same id, user and manual again: 200)",
       body=SessionCreate, responses={201: SessionOut, 200: SessionOut}, scope="agent", per_user=True)
def create_session() -> Response:
    body = parse_body(bp.current_request, SessionCreate)
    auth.check_user(caller(bp.current_request), body.user_id)
    session, created = sessions.create_session(body)
    return json_response(session, 201 if created else 200)


@route("/v1/sessions", "GET", summary="List sessions, newest first", responses={200: SessionPage},
       query=SessionListQuery, per_user=True)
def list_sessions() -> Response:
    query = parse_query(bp.current_request, SessionListQuery)
    user_id = query.user_id
    bound = caller(bp.current_request)
    if bound is not None and bound.user_id:  # a key bound to a user lists that user's only
        auth.check_user(bound, user_id or bound.user_id)
        user_id = bound.user_id
    return json_response(sessions.list_sessions(
        status=query.status, user_id=user_id, manual_id=query.manual_id,
        limit=query.limit, cursor=query.cursor))


@route("/v1/sessions/{session_id}", "GET", summary="A session", responses={200: SessionOut}, per_user=True)
def get_session(session_id: str) -> Response:
    session = sessions.get_session(path_id(session_id, "session_id"))
    auth.check_user(caller(bp.current_request), session.user_id)
    return json_response(session)


@route("/v1/sessions/{session_id}", "PATCH", summary="End an active session", body=SessionPatch,
       responses={200: SessionOut}, scope="agent", per_user=True)
def update_session(session_id: str) -> Response:
    body = parse_body(bp.current_request, SessionPatch)
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    return json_response(sessions.end_session(session_id, body.status))


@route("/v1/sessions/{session_id}", "DELETE", summary="Delete a session with its messages and events",
       responses={204: None}, scope="admin")
def delete_session(session_id: str) -> Response:
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    sessions.delete_session(session_id)
    return no_content()


@route("/v1/sessions/{session_id}/progress", "POST", summary="Report progress: DONE or ONGOING on a step",
       body=ProgressIn, responses={200: [ProgressOut, AlreadyProcessed]},
       headers=(("Idempotency-Key", IdempotencyKey),), scope="agent", per_user=True)
def report_progress(session_id: str) -> Response:
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
       responses={200: NextStepOut}, per_user=True)
def get_next_step(session_id: str) -> Response:
    check_owner(bp.current_request, path_id(session_id, "session_id"))
    return json_response(sessions.get_next_step(session_id))


@route("/v1/sessions/{session_id}/events", "GET", summary="The audit trail with delivery status",
       responses={200: EventPage}, query=EventListQuery, per_user=True)
def list_events(session_id: str) -> Response:
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
