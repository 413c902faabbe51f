"""Analytics: totals, popular manuals, activity per hour (fixed-cost reads of counters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api.http import json_response, parse_query
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource

if TYPE_CHECKING:
    from chalicelib.api.schemas import ActivityQuery, Overview, PopularManuals, PopularQuery, RecentActivity
    from chalicelib.jobs import analytics
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    ActivityQuery, Overview, PopularManuals, PopularQuery, RecentActivity = lazy(
        "chalicelib.api.schemas", "ActivityQuery", "Overview", "PopularManuals", "PopularQuery", "RecentActivity")
    analytics = lazy("chalicelib.jobs", "analytics")

bp = Resource(__name__)
route = bp.declare


@route("/v1/analytics/overview", "GET", summary="Totals and completion", responses={200: Overview})
def analytics_overview() -> Response:
    """Sessions by status, manuals, messages, failed webhooks, completion rate and times."""
    return json_response(analytics.overview())


@route("/v1/analytics/popular-manuals", "GET", summary="Manuals by sessions started",
       responses={200: PopularManuals}, query=PopularQuery)
def analytics_popular_manuals() -> Response:
    """The manuals with the most sessions started, with their completion rates."""
    query = parse_query(bp.current_request, PopularQuery)
    return json_response({"items": analytics.popular_manuals(query.limit)})


@route("/v1/analytics/recent-activity", "GET", summary="Activity per hour",
       responses={200: RecentActivity}, query=ActivityQuery)
def analytics_recent_activity() -> Response:
    """Per hour over the last `hours`: sessions started and ended, steps completed, messages."""
    query = parse_query(bp.current_request, ActivityQuery)
    return json_response(analytics.recent_activity(query.hours))
