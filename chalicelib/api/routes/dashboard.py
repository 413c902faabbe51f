"""The operator dashboard: a static shell with no data (public); its API calls carry the key."""

from __future__ import annotations

from urllib.parse import urlencode

from chalice import Response

from chalicelib.api import dashboard
from chalicelib.api.routing import Resource
from chalicelib.domain.errors import AssetNotFound

bp = Resource(__name__)
route = bp.declare


@route("/dashboard", "GET", summary="The operator dashboard (HTML)", responses={200: None, 308: None},
       scope="public")
def dashboard_page() -> Response:
    """The operator dashboard's page (it asks for an API key, kept in the tab); `.../dashboard/`
    redirects to `.../dashboard`."""
    request = bp.current_request
    if (request.context.get("path") or "").endswith("/"):
        # .../dashboard/ would resolve the page's relative URLs one level too deep: send the
        # browser to .../dashboard (the fragment, the dashboard's own route, is kept by it)
        query = urlencode(request.query_params or {})
        return Response(body="", status_code=308,
                        headers={"Location": "../dashboard" + (f"?{query}" if query else "")})
    body, headers = dashboard.page()
    return Response(body=body, status_code=200, headers=headers)


@route("/dashboard/{asset}", "GET", responses={200: None}, scope="public", errors=(AssetNotFound,),
       summary="A file of the dashboard or the docs page (app.js, style.css, docs.js, docs.css)")
def dashboard_asset(asset: str) -> Response:
    """A script or style sheet of the dashboard or the docs page (404 asset_not_found otherwise)."""
    body, headers = dashboard.asset(asset)
    return Response(body=body, status_code=200, headers=headers)
