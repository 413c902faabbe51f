"""Webhook inboxes: create and manage a capture URL, and read what it captured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api.headers import API_HEADERS
from chalicelib.api.http import header, json_response, parse_body, parse_query
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, no_content
from chalicelib.domain.errors import CaptureNotFound, InboxExists, InboxNotFound, TokenRequired

if TYPE_CHECKING:
    from chalicelib.api.schemas import ActivityQuery, CaptureListQuery
    from chalicelib.inbox import captures as inbox
    from chalicelib.inbox.captures import (
        Capture,
        CapturePage,
        Inbox,
        InboxCreate,
        InboxCreated,
        InboxMetrics,
        InboxPatch,
    )
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    ActivityQuery, CaptureListQuery = lazy("chalicelib.api.schemas", "ActivityQuery", "CaptureListQuery")
    inbox = lazy("chalicelib.inbox", "captures")
    Capture, CapturePage, Inbox, InboxCreate, InboxCreated, InboxMetrics, InboxPatch = lazy(
        "chalicelib.inbox.captures", "Capture", "CapturePage", "Inbox", "InboxCreate", "InboxCreated",
        "InboxMetrics", "InboxPatch")

bp = Resource(__name__)
route = bp.declare
# a missing token is 401 token_required; a wrong one is 404, as an unknown inbox (no probing)
_TOKEN_ERRORS = (TokenRequired, InboxNotFound)


@route("/v1/inboxes", "POST", summary="Create a webhook inbox", body=InboxCreate,
       responses={201: InboxCreated}, scope="admin", errors=(InboxExists,))
def create_inbox() -> Response:
    """Create a webhook inbox: a public capture URL (`capture_url`) that stores every request
    sent to it and answers with the configured `response`. The `read_token` is answered only
    here: send it as X-Inbox-Token to read or change the inbox."""
    request = bp.current_request
    created, token = inbox.create_inbox(parse_body(request, InboxCreate))
    return json_response({**created.model_dump(), "read_token": token,
                          "capture_url": inbox.capture_url(created, request.context)}, 201)


@route("/v1/inboxes/{inbox_id}", "GET", summary="An inbox", responses={200: Inbox},
       headers=("X-Inbox-Token",), errors=_TOKEN_ERRORS)
def get_inbox(inbox_id: str) -> Response:
    """An inbox: its capture path, configured response, retention and whether it is paused."""
    return json_response(inbox.get_inbox(inbox_id, _inbox_token()))


@route("/v1/inboxes/{inbox_id}", "PATCH", summary="Pause, resume, rename an inbox or set its destinations",
       body=InboxPatch, responses={200: Inbox}, headers=("X-Inbox-Token",),
       scope="admin", errors=_TOKEN_ERRORS)
def update_inbox(inbox_id: str) -> Response:
    """Pause (captures then answer 410 and store nothing), resume, rename an inbox or change
    what its capture URL answers."""
    body = parse_body(bp.current_request, InboxPatch)
    return json_response(inbox.update_inbox(inbox_id, _inbox_token(), body))


@route("/v1/inboxes/{inbox_id}", "DELETE", summary="Delete an inbox and its captures",
       responses={204: None}, headers=("X-Inbox-Token",), scope="admin", errors=_TOKEN_ERRORS)
def delete_inbox(inbox_id: str) -> Response:
    """Delete an inbox and everything it captured."""
    inbox.delete_inbox(inbox_id, _inbox_token())
    return no_content()


@route("/v1/inboxes/{inbox_id}/requests", "GET", summary="Captured requests, newest first",
       responses={200: CapturePage}, query=CaptureListQuery, headers=("X-Inbox-Token",),
       errors=_TOKEN_ERRORS)
def list_inbox_requests(inbox_id: str) -> Response:
    """The requests the inbox captured, newest first (optionally of one method), one page at a time."""
    query = parse_query(bp.current_request, CaptureListQuery)
    return json_response(inbox.list_requests(inbox_id, _inbox_token(), query.limit, query.cursor,
                                             method=query.method))


@route("/v1/inboxes/{inbox_id}/requests/{request_id}", "GET", summary="One captured request",
       responses={200: Capture}, headers=("X-Inbox-Token",), errors=(*_TOKEN_ERRORS, CaptureNotFound))
def get_inbox_request(inbox_id: str, request_id: str) -> Response:
    """One captured request: method, path, query, headers (secrets masked), body, signature check."""
    return json_response(inbox.get_request(inbox_id, _inbox_token(), request_id))


@route("/v1/inboxes/{inbox_id}/metrics", "GET", summary="An inbox's counters per hour",
       responses={200: InboxMetrics}, query=ActivityQuery, headers=("X-Inbox-Token",),
       errors=_TOKEN_ERRORS)
def get_inbox_metrics(inbox_id: str) -> Response:
    query = parse_query(bp.current_request, ActivityQuery)
    return json_response(inbox.metrics(inbox_id, _inbox_token(), query.hours))


@route("/v1/hooks/{inbox_id}", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD",
       summary="Capture any request (answers with the inbox's configured response)",
       responses={}, content_types=["*/*"], scope="public", operation_id="capture")
def capture_hook(inbox_id: str) -> Response:
    """The public capture URL of an inbox (no API key): any method, any body and content type.
    The request is stored (read it back with listInboxRequests) and answered with the status,
    content type and body the inbox is configured with (createInbox / updateInbox `response`):
    any status from 200 to 599 but 204, 205 and 304, and a type a browser never runs (plain
    text, CSV, JSON, form data or application/*+json). A paused inbox answers 410
    inbox_paused; an unknown one 404 inbox_not_found; too many requests 429 rate_limited."""
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
