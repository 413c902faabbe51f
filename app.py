"""Session service API: routes and event handlers, wiring only (rules live in chalicelib)."""

from __future__ import annotations

from typing import Any

from chalice import AuthResponse, AuthRoute, Chalice, Rate, Response

from chalicelib.services import health, keys, manuals, messages, progress, sessions
from chalicelib.api import auth, openapi
from chalicelib.inbox import captures as inbox
from chalicelib.jobs import analytics, cleanup
from chalicelib.pipeline import delivery, feedback
from chalicelib import observability
from chalicelib.api import dashboard
from chalicelib.domain.errors import ValidationFailed
from chalicelib.api.http import (
    MAX_MANUAL_BODY_BYTES, api_route, header, json_response, normalise_chalice_errors,
    parse_body, parse_query, path_id, validate,
)
from chalicelib.domain.models import (
    Manual, ManualCreate, Message, MessageIn, NextStepOut, ProgressIn, ProgressOut, RedriveResult,
    SessionCreate, SessionOut,
)
from chalicelib.api.schemas import (
    ActivityQuery, AlreadyProcessed, CaptureListQuery, ChildPageQuery, DeliveryListQuery,
    DeliveryPage, EventPage, HealthSummary, Live, ManualPage, MessagePage, MessageWithSession,
    Overview, PageQuery, PopularManuals, PopularQuery, Query, Ready, RecentActivity, Redelivery,
    RedriveQuery, SessionListQuery, SessionPage, SessionPatch,
)

# Powertools owns the "session-service" logger (JSON): Chalice must not reconfigure it.
app = Chalice(app_name="session-service", configure_logs=False)
# Event sources are declared here with placeholders; infra/ wires the real stream and queue
# by reference when `chalice package` merges it (and the local runner calls these handlers).
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/session-service/stream/local"
DELIVERY_QUEUE = "session-service-deliveries.fifo"
app.register_middleware(normalise_chalice_errors, "http")
app.register_middleware(observability.observe, "all")  # JSON logs with Lambda context, EMF metrics


@app.authorizer(ttl_seconds=auth.AUTH_TTL_SECONDS)
def api_key_authorizer(auth_request: Any) -> AuthResponse:
    """API Gateway asks this once per key per AUTH_TTL_SECONDS: the routes the key's scopes
    allow (401 for a missing/unknown/revoked key, 403 for a route outside its scopes)."""
    principal = auth.authenticate(auth_request.token)
    routes = auth.policy_routes(principal, openapi.route_policies())
    return AuthResponse(routes=[AuthRoute(path, methods) for path, methods in routes],
                        principal_id=principal.key_id, context=principal.context())


def route(path: str, *methods: str, summary: str, body: Any = None,
          responses: dict[int, Any] | None = None, query: type[Query] | None = None,
          headers: tuple[str, ...] = (), content_types: list[str] | None = None,
          scope: str | None = None, per_user: bool = False) -> Any:
    """Register a route and document it in the OpenAPI document (one declaration).

    `scope` is the API-key scope the route needs: "read" (the default for GET), "agent",
    "admin", or "public" (no key). Any other method must say which. `per_user` says that a
    key bound to a user may call it: the route narrows to that user's sessions (or holds no
    user's data); every other route answers such a key 403."""
    if scope is None:
        if set(methods) - {"GET", "HEAD"}:
            raise ValueError(f"{path} {methods}: say which scope may call it")
        scope = "read"
    for method in methods:
        openapi.register(openapi.Operation(
            method, path, summary, body, responses or {}, query, headers,
            raw_body=content_types is not None, scope=scope, bound_keys=per_user))
    return api_route(app, path, list(methods), content_types, scope=scope, bound_keys=per_user,
                     authorizer=None if scope == "public" else api_key_authorizer)



def no_content() -> Response:
    return Response(body="", status_code=204)


# ---- manuals -------------------------------------------------------------------------------


@route("/v1/manuals", "POST", summary="Create a manual (same body again: 200)", body=ManualCreate,
       responses={201: Manual, 200: Manual}, scope="admin")
def create_manual() -> Response:
    body = parse_body(app.current_request, ManualCreate, max_bytes=MAX_MANUAL_BODY_BYTES)
    manual, created = manuals.create_manual(body)
    return json_response(manual, 201 if created else 200)


@route("/v1/manuals", "GET", summary="List manuals", responses={200: ManualPage}, query=PageQuery, per_user=True)
def list_manuals() -> Response:
    page = parse_query(app.current_request, PageQuery)
    return json_response(manuals.list_manuals(page.limit, page.cursor))


@route("/v1/manuals/{manual_id}", "GET", summary="A manual with its steps", responses={200: Manual}, per_user=True)
def get_manual(manual_id: str) -> Response:
    return json_response(manuals.get_manual(path_id(manual_id, "manual_id")))


@route("/v1/manuals/{manual_id}", "DELETE", summary="Delete a manual no active session uses",
       responses={204: None}, scope="admin")
def delete_manual(manual_id: str) -> Response:
    manuals.delete_manual(path_id(manual_id, "manual_id"))
    return no_content()


# ---- sessions ------------------------------------------------------------------------------


@route("/v1/sessions", "POST", summary="Start a session (same id, user and manual again: 200)",
       body=SessionCreate, responses={201: SessionOut, 200: SessionOut}, scope="agent", per_user=True)
def create_session() -> Response:
    body = parse_body(app.current_request, SessionCreate)
    auth.check_user(_caller(), body.user_id)
    session, created = sessions.create_session(body)
    return json_response(session, 201 if created else 200)


@route("/v1/sessions", "GET", summary="List sessions, newest first", responses={200: SessionPage},
       query=SessionListQuery, per_user=True)
def list_sessions() -> Response:
    query = parse_query(app.current_request, SessionListQuery)
    user_id = query.user_id
    bound = _caller()
    if bound is not None and bound.user_id:  # a key bound to a user lists that user's only
        auth.check_user(bound, user_id or bound.user_id)
        user_id = bound.user_id
    return json_response(sessions.list_sessions(
        status=query.status, user_id=user_id, manual_id=query.manual_id,
        limit=query.limit, cursor=query.cursor))


@route("/v1/sessions/{session_id}", "GET", summary="A session", responses={200: SessionOut}, per_user=True)
def get_session(session_id: str) -> Response:
    session = sessions.get_session(path_id(session_id, "session_id"))
    auth.check_user(_caller(), session.user_id)
    return json_response(session)


@route("/v1/sessions/{session_id}", "PATCH", summary="End an active session", body=SessionPatch,
       responses={200: SessionOut}, scope="agent", per_user=True)
def update_session(session_id: str) -> Response:
    body = parse_body(app.current_request, SessionPatch)
    _check_owner(path_id(session_id, "session_id"))
    return json_response(sessions.end_session(session_id, body.status))


@route("/v1/sessions/{session_id}", "DELETE", summary="Delete a session with its messages and events",
       responses={204: None}, scope="admin")
def delete_session(session_id: str) -> Response:
    _check_owner(path_id(session_id, "session_id"))
    sessions.delete_session(session_id)
    return no_content()


@route("/v1/sessions/{session_id}/progress", "POST", summary="Report progress: DONE or ONGOING on a step",
       body=ProgressIn, responses={200: [ProgressOut, AlreadyProcessed]}, headers=("Idempotency-Key",),
       scope="agent", per_user=True)
def report_progress(session_id: str) -> Response:
    request = app.current_request
    with observability.rejections_counted(observability.PROGRESS_REJECTED, session_id=session_id):
        body = parse_body(request, ProgressIn)
        body = _with_header_key(body, header(request, "Idempotency-Key"))
        auth.check_user(_caller(), body.user_id)  # the session must be body.user_id's (checked in the write)
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
    _check_owner(path_id(session_id, "session_id"))
    return json_response(sessions.get_next_step(session_id))


@route("/v1/sessions/{session_id}/events", "GET", summary="The audit trail with delivery status",
       responses={200: EventPage}, query=ChildPageQuery, per_user=True)
def list_events(session_id: str) -> Response:
    _check_owner(path_id(session_id, "session_id"))
    page = parse_query(app.current_request, ChildPageQuery)
    return json_response(sessions.list_events(session_id, page.limit, page.cursor))


# ---- messages ------------------------------------------------------------------------------


@route("/v1/messages", "POST", summary="Store a chat message", body=MessageWithSession,
       responses={201: Message, 200: Message}, headers=("Idempotency-Key",), scope="agent", per_user=True)
def post_message() -> Response:
    request = app.current_request
    body = parse_body(request, MessageWithSession)
    return _append(body.session_id, body, header(request, "Idempotency-Key"))


@route("/v1/sessions/{session_id}/messages", "POST", summary="Store a chat message", body=MessageIn,
       responses={201: Message, 200: Message}, headers=("Idempotency-Key",), scope="agent", per_user=True)
def post_session_message(session_id: str) -> Response:
    request = app.current_request
    body = parse_body(request, MessageIn)
    return _append(path_id(session_id, "session_id"), body, header(request, "Idempotency-Key"))


@route("/v1/sessions/{session_id}/messages", "GET", summary="The conversation, oldest first",
       responses={200: MessagePage}, query=ChildPageQuery, per_user=True)
def list_messages(session_id: str) -> Response:
    _check_owner(path_id(session_id, "session_id"))
    page = parse_query(app.current_request, ChildPageQuery)
    return json_response(messages.list_messages(session_id, page.limit, page.cursor))


# ---- analytics -----------------------------------------------------------------------------


@route("/v1/analytics/overview", "GET", summary="Totals and completion", responses={200: Overview})
def analytics_overview() -> Response:
    return json_response(analytics.overview())


@route("/v1/analytics/popular-manuals", "GET", summary="Manuals by sessions started",
       responses={200: PopularManuals}, query=PopularQuery)
def analytics_popular_manuals() -> Response:
    query = parse_query(app.current_request, PopularQuery)
    return json_response({"items": analytics.popular_manuals(query.limit)})


@route("/v1/analytics/recent-activity", "GET", summary="Activity per hour",
       responses={200: RecentActivity}, query=ActivityQuery)
def analytics_recent_activity() -> Response:
    query = parse_query(app.current_request, ActivityQuery)
    return json_response(analytics.recent_activity(query.hours))


# ---- feedback pipeline ---------------------------------------------------------------------


@route("/v1/events/{event_id}/redeliver", "POST", summary="Queue one event's webhook again",
       responses={202: Redelivery}, scope="admin")
def redeliver_event(event_id: str) -> Response:
    return json_response(delivery.redeliver(path_id(event_id, "event_id")), 202)


@route("/v1/deliveries", "GET", summary="Webhooks that failed for good", responses={200: DeliveryPage},
       query=DeliveryListQuery)
def list_deliveries() -> Response:
    query = parse_query(app.current_request, DeliveryListQuery)
    return json_response(delivery.list_failed(query.limit, query.cursor))


@route("/v1/deliveries/redrive", "POST",
       summary="Move dead-lettered webhooks back to the delivery queue, in order (a bounded step: "
               "repeat until remaining is 0)",
       responses={200: RedriveResult}, query=RedriveQuery, scope="admin")
def redrive_deliveries() -> Response:
    query = parse_query(app.current_request, RedriveQuery)
    return json_response(delivery.redrive_step(query.limit))


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def feedback_handler(event: Any) -> dict:
    """Stream -> delivery queue (event items only)."""
    return feedback.handle_stream_batch(event.to_dict()["Records"])


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def analytics_handler(event: Any) -> dict:
    """Stream -> exact, sharded analytics counters."""
    return analytics.handle_stream_batch(event.to_dict()["Records"])


@app.on_sqs_message(queue=DELIVERY_QUEUE, batch_size=10)
def delivery_handler(event: Any) -> dict:
    """Delivery queue -> signed webhook POSTs."""
    return delivery.handle_delivery_batch(event.to_dict())


@app.schedule(Rate(5, unit=Rate.MINUTES))
def dead_letter_handler(event: Any) -> dict:
    """Dead-letter queue -> every message SQS moved there by itself recorded as failed."""
    return delivery.sweep_dead_letters()


@app.schedule(Rate(5, unit=Rate.MINUTES))
def cleanup_handler(event: Any) -> dict:
    """Idle sessions -> abandoned; optional retention. Stops before the Lambda timeout."""
    context = event.context
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context else None
    return cleanup.run(time_left).as_dict()


# ---- inboxes (capture and inspect callbacks) -----------------------------------------------


@route("/v1/inboxes", "POST", summary="Create a webhook inbox", body=inbox.InboxCreate,
       responses={201: inbox.InboxCreated}, scope="admin")
def create_inbox() -> Response:
    request = app.current_request
    created, token = inbox.create_inbox(parse_body(request, inbox.InboxCreate))
    return json_response({**created.model_dump(), "read_token": token,
                          "capture_url": inbox.capture_url(created, request.context)}, 201)


@route("/v1/inboxes/{inbox_id}", "GET", summary="An inbox", responses={200: inbox.Inbox},
       headers=("X-Inbox-Token",))
def get_inbox(inbox_id: str) -> Response:
    return json_response(inbox.get_inbox(inbox_id, _inbox_token()))


@route("/v1/inboxes/{inbox_id}", "PATCH", summary="Pause, resume or rename an inbox",
       body=inbox.InboxPatch, responses={200: inbox.Inbox}, headers=("X-Inbox-Token",),
       scope="admin")
def update_inbox(inbox_id: str) -> Response:
    body = parse_body(app.current_request, inbox.InboxPatch)
    return json_response(inbox.update_inbox(inbox_id, _inbox_token(), body))


@route("/v1/inboxes/{inbox_id}", "DELETE", summary="Delete an inbox and its captures",
       responses={204: None}, headers=("X-Inbox-Token",), scope="admin")
def delete_inbox(inbox_id: str) -> Response:
    inbox.delete_inbox(inbox_id, _inbox_token())
    return no_content()


@route("/v1/inboxes/{inbox_id}/requests", "GET", summary="Captured requests, newest first",
       responses={200: inbox.CapturePage}, query=CaptureListQuery, headers=("X-Inbox-Token",))
def list_inbox_requests(inbox_id: str) -> Response:
    query = parse_query(app.current_request, CaptureListQuery)
    return json_response(inbox.list_requests(inbox_id, _inbox_token(), query.limit, query.cursor,
                                             method=query.method))


@route("/v1/inboxes/{inbox_id}/requests/{request_id}", "GET", summary="One captured request",
       responses={200: inbox.Capture}, headers=("X-Inbox-Token",))
def get_inbox_request(inbox_id: str, request_id: str) -> Response:
    return json_response(inbox.get_request(inbox_id, _inbox_token(), request_id))


@route("/v1/hooks/{inbox_id}", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD",
       summary="Capture any request (answers with the inbox's configured response)",
       responses={200: None, 410: None}, content_types=["*/*"], scope="public")
def capture_hook(inbox_id: str) -> Response:
    request = app.current_request
    status, body, content_type = inbox.capture(
        inbox_id, method=request.method, path=request.context.get("path") or f"/v1/hooks/{inbox_id}",
        query=request.query_params,
        headers=dict(request.headers), body=request.raw_body or b"",
        source_ip=(request.context.get("identity") or {}).get("sourceIp"))
    return Response(body=body, status_code=status, headers={"Content-Type": content_type})


# ---- API keys ------------------------------------------------------------------------------


@route("/v1/keys", "POST", summary="Create an API key (the key is shown only in this answer)",
       body=keys.KeyCreate, responses={201: keys.ApiKeyCreated}, scope="admin")
def create_key() -> Response:
    body = parse_body(app.current_request, keys.KeyCreate)
    auth.check_can_mint(_caller(), body)
    return json_response(keys.create_key(body), 201)


@route("/v1/keys", "GET", summary="List API keys (never their values)", responses={200: keys.ApiKeyPage},
       query=PageQuery, scope="admin")
def list_keys() -> Response:
    page = parse_query(app.current_request, PageQuery)
    return json_response(keys.list_keys(page.limit, page.cursor))


@route("/v1/keys/{key_id}", "DELETE", summary="Revoke an API key", responses={204: None}, scope="admin")
def revoke_key(key_id: str) -> Response:
    keys.revoke_key(path_id(key_id, "key_id"))
    return no_content()


# ---- health --------------------------------------------------------------------------------


@route("/health/live", "GET", summary="The process answers", responses={200: Live}, scope="public")
def health_live() -> Response:
    return json_response({"status": "ok"})


@route("/health/ready", "GET", summary="The table and the queue answer",
       responses={200: Ready, 503: Ready}, scope="public")
def health_ready() -> Response:
    ok, checks = health.ready()
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                         200 if ok else 503)


@route("/health", "GET", summary="Health summary with version",
       responses={200: HealthSummary, 503: HealthSummary}, scope="public")
def health_summary() -> Response:
    ok, body = health.summary()
    return json_response(body, 200 if ok else 503)


# ---- documentation -------------------------------------------------------------------------


@route("/v1/openapi.json", "GET", summary="This document (OpenAPI 3.1)", responses={200: None}, per_user=True)
def openapi_document() -> Response:
    return json_response(openapi.document())


@route("/docs", "GET", summary="The API documentation page (HTML)", responses={200: None},
       scope="public")
def docs_page() -> Response:
    return Response(body=openapi.DOCS_PAGE, status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8"})


# ---- dashboard -----------------------------------------------------------------------------
# The operator dashboard: a static shell with no data (public); its API calls carry the key.


@route("/dashboard", "GET", summary="The operator dashboard (HTML)", responses={200: None},
       scope="public")
def dashboard_page() -> Response:
    body, headers = dashboard.page()
    return Response(body=body, status_code=200, headers=headers)


@route("/dashboard/{asset}", "GET", summary="A file of the dashboard (app.js, style.css)",
       responses={200: None}, scope="public")
def dashboard_asset(asset: str) -> Response:
    body, headers = dashboard.asset(asset)
    return Response(body=body, status_code=200, headers=headers)


# ---- helpers -------------------------------------------------------------------------------


def _caller() -> keys.Principal | None:
    return auth.caller(app.current_request)


def _check_owner(session_id: str) -> None:
    """Per-user isolation: a key bound to a user touches only that user's sessions (one
    extra read, for bound keys only)."""
    principal = _caller()
    if principal is not None and principal.user_id:
        auth.check_user(principal, sessions.get_session(session_id).user_id)


def _inbox_token() -> str | None:
    return header(app.current_request, "X-Inbox-Token")



def _append(session_id: str, body: MessageIn, key: str | None) -> Response:
    auth.check_user(_caller(), body.user_id)  # the session must be body.user_id's (checked in the write)
    if key and not body.message_id:
        body = validate(MessageIn, {**body.model_dump(exclude={"session_id"}), "message_id": key})
    message, stored = messages.append_message(session_id, body)
    return json_response(message, 201 if stored else 200,
                         None if stored else {"Idempotent-Replayed": "true"})


def _with_header_key(body: ProgressIn, key: str | None) -> ProgressIn:
    if key is None:
        return body
    if body.idempotency_key not in (None, key):
        raise ValidationFailed(
            "Idempotency-Key header and idempotency_key in the body differ.",
            fields=[{"field": "idempotency_key", "message": "differs from the header"}])
    return validate(ProgressIn, {**body.model_dump(), "idempotency_key": key})
