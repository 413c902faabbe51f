"""Session service: the Chalice app, wiring only.

The routes are Blueprints, one per resource (chalicelib/api/routes/); the API-key authorizer
and the event handlers (stream, queue, schedules) are declared here, because Chalice names
each Lambda function after its handler in this module. Behaviour lives in chalicelib/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import AuthRoute, Chalice, Rate

from chalicelib import observability
from chalicelib.api import auth, headers, routing
from chalicelib.api.http import normalise_chalice_errors
from chalicelib.api.lazy import lazy
from chalicelib.api.routes import analytics as analytics_routes
from chalicelib.api.routes import (
    dashboard,
    deliveries,
    docs,
    endpoints,
    health,
    inbox,
    keys,
    manuals,
    mcp,
    messages,
    sessions,
)

# Each event handler is a Lambda function of its own: its modules are imported by its first
# event, not by every function's cold start (the API's included).
if TYPE_CHECKING:
    from chalicelib.jobs import analytics, cleanup
    from chalicelib.pipeline import delivery, feedback
else:
    analytics, cleanup = lazy("chalicelib.jobs", "analytics", "cleanup")
    delivery, feedback = lazy("chalicelib.pipeline", "delivery", "feedback")

# Powertools owns the "session-service" logger (JSON): Chalice must not reconfigure it.
app = Chalice(app_name="session-service", configure_logs=False)
# Event sources are declared here with placeholders; infra/ wires the real stream and queue
# by reference when `chalice package` merges it (and the local runner calls these handlers).
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/session-service/stream/local"
DELIVERY_QUEUE = "session-service-deliveries.fifo"
app.register_middleware(normalise_chalice_errors, "http")
app.register_middleware(headers.security_headers, "http")  # CSP, nosniff, framing, caching
app.register_middleware(observability.observe, "all")  # JSON logs with Lambda context, EMF metrics


@app.authorizer(ttl_seconds=auth.AUTH_TTL_SECONDS)
def api_key_authorizer(auth_request: Any) -> auth.UsageAuthResponse:
    """API Gateway asks this once per key per AUTH_TTL_SECONDS: the routes the key's scopes
    allow (401 for a missing/unknown/revoked key, 403 for a route outside its scopes), and the
    key's usage identifier, which picks the usage plan that limits it."""
    principal = auth.authenticate(auth_request.token)
    routes = auth.policy_routes(principal, routing.route_policies())
    return auth.UsageAuthResponse(routes=[AuthRoute(path, methods) for path, methods in routes],
                                  principal_id=principal.key_id, context=principal.context(),
                                  usage_identifier_key=principal.usage_identifier)


for resource in (manuals, sessions, messages, analytics_routes, deliveries, endpoints, inbox, keys, health,
                 docs, dashboard, mcp):
    app.register_blueprint(resource.bp.bind(api_key_authorizer))


# ---- event handlers ------------------------------------------------------------------------


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def feedback_handler(event: Any) -> dict[str, Any]:
    """Stream -> delivery queue (event items; inbox captures to forward)."""
    return feedback.handle_records(event.to_dict()["Records"])


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def analytics_handler(event: Any) -> dict[str, Any]:
    """Stream -> exact, sharded analytics counters. Its packaged mapping has a tumbling window
    (infra/package.py) for the shard id alone: such an invocation must answer a `state`."""
    raw = event.to_dict()
    answer = analytics.handle_stream_batch(raw.get("Records", []), shard_id=raw.get("shardId"))
    return {**answer, "state": {}} if "window" in raw else answer


@app.on_sqs_message(queue=DELIVERY_QUEUE, batch_size=10)
def delivery_handler(event: Any) -> dict[str, Any]:
    """Delivery queue -> signed webhook POSTs; inbox captures forwarded."""
    return delivery.handle_queue_batch(event.to_dict())


@app.schedule(Rate(5, unit=Rate.MINUTES))
def dead_letter_handler(event: Any) -> dict[str, Any]:
    """Dead-letter queue -> every message SQS moved there by itself recorded as failed."""
    return delivery.sweep_dead_letters()


@app.schedule(Rate(5, unit=Rate.MINUTES))
def cleanup_handler(event: Any) -> dict[str, Any]:
    """Idle sessions -> abandoned; optional retention. Stops before the Lambda timeout."""
    context = event.context
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context else None
    return cleanup.run(time_left).as_dict()
