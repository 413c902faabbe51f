"""Webhook inboxes: create and manage a capture URL, and read what it captured."""

from __future__ import annotations

from chalice import Response

from chalicelib.api.headers import API_HEADERS
from chalicelib.api.http import header, json_response, parse_body, parse_query
from chalicelib.api.routing import Resource, no_content
from chalicelib.api.schemas import ActivityQuery, CaptureListQuery
from chalicelib.inbox import captures as inbox

bp = Resource(__name__)
route = bp.declare


@route("/v1/inboxes", "POST", summary="Create a webhook inbox", body=inbox.InboxCreate,
       responses={201: inbox.InboxCreated}, scope="admin")
def create_inbox() -> Response:
    request = bp.current_request
    created, token = inbox.create_inbox(parse_body(request, inbox.InboxCreate))
    return json_response({**created.model_dump(), "read_token": token,
                          "capture_url": inbox.capture_url(created, request.context)}, 201)


@route("/v1/inboxes/{inbox_id}", "GET", summary="An inbox", responses={200: inbox.Inbox},
       headers=("X-Inbox-Token",))
def get_inbox(inbox_id: str) -> Response:
    return json_response(inbox.get_inbox(inbox_id, _inbox_token()))


@route("/v1/inboxes/{inbox_id}", "PATCH", summary="Pause, resume, rename an inbox or set its destinations",
       body=inbox.InboxPatch, responses={200: inbox.Inbox}, headers=("X-Inbox-Token",),
       scope="admin")
def update_inbox(inbox_id: str) -> Response:
    body = parse_body(bp.current_request, inbox.InboxPatch)
    return json_response(inbox.update_inbox(inbox_id, _inbox_token(), body))


@route("/v1/inboxes/{inbox_id}", "DELETE", summary="Delete an inbox and its captures",
       responses={204: None}, headers=("X-Inbox-Token",), scope="admin")
def delete_inbox(inbox_id: str) -> Response:
    inbox.delete_inbox(inbox_id, _inbox_token())
    return no_content()


@route("/v1/inboxes/{inbox_id}/requests", "GET", summary="Captured requests, newest first",
       responses={200: inbox.CapturePage}, query=CaptureListQuery, headers=("X-Inbox-Token",))
def list_inbox_requests(inbox_id: str) -> Response:
    query = parse_query(bp.current_request, CaptureListQuery)
    return json_response(inbox.list_requests(inbox_id, _inbox_token(), query.limit, query.cursor,
                                             method=query.method))


@route("/v1/inboxes/{inbox_id}/requests/{request_id}", "GET", summary="One captured request",
       responses={200: inbox.Capture}, headers=("X-Inbox-Token",))
def get_inbox_request(inbox_id: str, request_id: str) -> Response:
    return json_response(inbox.get_request(inbox_id, _inbox_token(), request_id))


@route("/v1/inboxes/{inbox_id}/metrics", "GET", summary="An inbox's counters per hour",
       responses={200: inbox.InboxMetrics}, query=ActivityQuery, headers=("X-Inbox-Token",))
def get_inbox_metrics(inbox_id: str) -> Response:
    query = parse_query(bp.current_request, ActivityQuery)
    return json_response(inbox.metrics(inbox_id, _inbox_token(), query.hours))


@route("/v1/hooks/{inbox_id}", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD",
       summary="Capture any request (answers with the inbox's configured response)",
       responses={200: None, 410: None}, content_types=["*/*"], scope="public")
def capture_hook(inbox_id: str) -> Response:
    request = bp.current_request
    status, body, content_type = inbox.capture(
        inbox_id, method=request.method, path=request.context.get("path") or f"/v1/hooks/{inbox_id}",
        query=dict(request.query_params or {}),
        headers=dict(request.headers), body=_bytes(request.raw_body),
        source_ip=(request.context.get("identity") or {}).get("sourceIp"))
    # inert whatever the inbox says: sandboxed, nosniff, never cached (API_HEADERS)
    return Response(body=body, status_code=status, headers={**API_HEADERS, "Content-Type": content_type})


def _inbox_token() -> str | None:
    return header(bp.current_request, "X-Inbox-Token")


def _bytes(raw: str | bytes | None) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw or b""
