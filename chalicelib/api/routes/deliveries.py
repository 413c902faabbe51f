"""Webhook deliveries: the failed list, one event redelivered, the dead-letter queue redriven."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api.http import json_response, parse_query, path_id
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource
from chalicelib.domain.errors import EndpointNotFound, EventNotFound

if TYPE_CHECKING:
    from chalicelib.api.schemas import DeliveryListQuery, DeliveryPage, RedeliverQuery, Redelivery, RedriveQuery
    from chalicelib.domain.models import RedriveResult
    from chalicelib.pipeline import delivery
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    DeliveryListQuery, DeliveryPage, RedeliverQuery, Redelivery, RedriveQuery = lazy(
        "chalicelib.api.schemas", "DeliveryListQuery", "DeliveryPage", "RedeliverQuery", "Redelivery", "RedriveQuery")
    RedriveResult = lazy("chalicelib.domain.models", "RedriveResult")
    delivery = lazy("chalicelib.pipeline", "delivery")

bp = Resource(__name__)
route = bp.declare


@route("/v1/events/{event_id}/redeliver", "POST", summary="Queue one event's webhook again",
       responses={202: Redelivery}, query=RedeliverQuery, scope="admin", errors=(EventNotFound, EndpointNotFound))
def redeliver_event(event_id: str) -> Response:
    """Queue an event's webhook again (202), e.g. after fixing the receiver of a failed one:
    to every endpoint it is meant for, or with `endpoint_id` to that endpoint only."""
    query = parse_query(bp.current_request, RedeliverQuery)
    return json_response(delivery.redeliver(path_id(event_id, "event_id"), query.endpoint_id), 202)


@route("/v1/deliveries", "GET", summary="Webhooks that failed for good", responses={200: DeliveryPage},
       query=DeliveryListQuery)
def list_deliveries() -> Response:
    """Webhooks that spent every attempt and failed, newest first, with their attempts."""
    query = parse_query(bp.current_request, DeliveryListQuery)
    return json_response(delivery.list_failed(query.limit, query.cursor, query.endpoint_id))


@route("/v1/deliveries/redrive", "POST",
       summary="Move dead-lettered webhooks back to the delivery queue, in order (a bounded step: "
               "repeat until remaining is 0)",
       responses={200: RedriveResult}, query=RedriveQuery, scope="admin")
def redrive_deliveries() -> Response:
    """Move up to `limit` dead-lettered webhooks back to the delivery queue, in order; call
    again until `remaining` is 0."""
    query = parse_query(bp.current_request, RedriveQuery)
    return json_response(delivery.redrive_step(query.limit, endpoint_id=query.endpoint_id))
