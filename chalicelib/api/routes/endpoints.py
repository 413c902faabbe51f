"""Webhook endpoints: register (the secret shown once), list, read, change, delete, rotate
the secret, send a test ping, replay a time window. Admin keys only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api.http import json_response, parse_body, parse_query, path_id
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, no_content
from chalicelib.domain.errors import (
    EndpointDisabled,
    EndpointExists,
    EndpointLimitReached,
    EndpointNotFound,
    EndpointUrlRefused,
    InvalidCursor,
    PingNotFound,
)

if TYPE_CHECKING:
    from chalicelib.api.schemas import PageQuery
    from chalicelib.domain.endpoints import (
        Endpoint,
        EndpointCreate,
        EndpointCreated,
        EndpointPage,
        EndpointPatch,
        EndpointUpdated,
        PingStatus,
        ReplayProgress,
        ReplayRequest,
        RotateSecret,
        SecretRotated,
        TestSent,
    )
    from chalicelib.services import endpoints
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    PageQuery = lazy("chalicelib.api.schemas", "PageQuery")
    (Endpoint, EndpointCreate, EndpointCreated, EndpointPage, EndpointPatch, EndpointUpdated, PingStatus,
     ReplayProgress, ReplayRequest, RotateSecret, SecretRotated, TestSent) = lazy(
        "chalicelib.domain.endpoints", "Endpoint", "EndpointCreate", "EndpointCreated", "EndpointPage",
        "EndpointPatch", "EndpointUpdated", "PingStatus", "ReplayProgress", "ReplayRequest", "RotateSecret",
        "SecretRotated", "TestSent")
    endpoints = lazy("chalicelib.services", "endpoints")

bp = Resource(__name__)
route = bp.declare
BASE = "/v1/webhook-endpoints"
ONE = BASE + "/{endpoint_id}"


@route(BASE, "POST", summary="Register a webhook endpoint (its signing secret is shown only in this answer)",
       body=EndpointCreate, responses={201: EndpointCreated}, scope="admin",
       errors=(EndpointUrlRefused, EndpointExists, EndpointLimitReached))
def create_endpoint() -> Response:
    return json_response(endpoints.create(parse_body(bp.current_request, EndpointCreate)), 201)


@route(BASE, "GET", summary="List webhook endpoints with their health and stats", responses={200: EndpointPage},
       query=PageQuery, scope="admin")
def list_endpoints() -> Response:
    page = parse_query(bp.current_request, PageQuery)
    return json_response(endpoints.list_page(page.limit, page.cursor))


@route(ONE, "GET", summary="One webhook endpoint: settings, health, stats", responses={200: Endpoint},
       scope="admin", errors=(EndpointNotFound,))
def get_endpoint(endpoint_id: str) -> Response:
    return json_response(endpoints.get(path_id(endpoint_id, "endpoint_id")))


@route(ONE, "PATCH", summary="Change a webhook endpoint (url, description, event_types, enabled)",
       body=EndpointPatch, responses={200: EndpointUpdated}, scope="admin",
       errors=(EndpointNotFound, EndpointUrlRefused))
def update_endpoint(endpoint_id: str) -> Response:
    body = parse_body(bp.current_request, EndpointPatch)
    return json_response(endpoints.update(path_id(endpoint_id, "endpoint_id"), body))


@route(ONE, "DELETE", summary="Delete a webhook endpoint", responses={204: None}, scope="admin",
       errors=(EndpointNotFound,))
def delete_endpoint(endpoint_id: str) -> Response:
    endpoints.delete(path_id(endpoint_id, "endpoint_id"))
    return no_content()


@route(ONE + "/rotate-secret", "POST",
       summary="A new signing secret; the old one keeps signing too for grace_seconds (default 86400)",
       body=RotateSecret, body_required=False, responses={200: SecretRotated}, scope="admin",
       errors=(EndpointNotFound,))
def rotate_endpoint_secret(endpoint_id: str) -> Response:
    request = bp.current_request
    body = parse_body(request, RotateSecret) if request.raw_body else RotateSecret()
    return json_response(endpoints.rotate_secret(path_id(endpoint_id, "endpoint_id"), body.grace_seconds))


@route(ONE + "/test", "POST",
       summary="Send a ping event to this endpoint through the pipeline (retried like any webhook; its outcome: "
               "GET .../pings/{event_id})",
       responses={202: TestSent}, scope="admin",
       errors=(EndpointNotFound, EndpointDisabled))
def test_endpoint(endpoint_id: str) -> Response:
    return json_response(endpoints.send_test(path_id(endpoint_id, "endpoint_id")), 202)


@route(ONE + "/pings/{event_id}", "GET",
       summary="A test ping's outcome: status, attempts, the next attempt (kept 7 days)",
       responses={200: PingStatus}, scope="admin", errors=(PingNotFound,))
def get_endpoint_ping(endpoint_id: str, event_id: str) -> Response:
    return json_response(endpoints.ping_status(path_id(endpoint_id, "endpoint_id"), path_id(event_id, "event_id")))


@route(ONE + "/replay", "POST",
       summary="Re-send a time window's events to this endpoint only (a bounded step: repeat with next_cursor "
               "until done)",
       body=ReplayRequest, responses={200: ReplayProgress}, scope="admin",
       errors=(EndpointNotFound, EndpointDisabled, InvalidCursor))
def replay_endpoint(endpoint_id: str) -> Response:
    body = parse_body(bp.current_request, ReplayRequest)
    return json_response(endpoints.replay_step(path_id(endpoint_id, "endpoint_id"), body))
