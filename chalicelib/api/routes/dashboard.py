"""The operator dashboard: a static shell with no data (public); its API calls carry the key."""

from __future__ import annotations

from chalice import Response

from chalicelib.api import dashboard
from chalicelib.api.routing import Resource

bp = Resource(__name__)
route = bp.declare


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
