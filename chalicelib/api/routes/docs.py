"""The OpenAPI document and the documentation page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api import dashboard
from chalicelib.api.http import json_response
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource

if TYPE_CHECKING:
    from chalicelib.api import openapi
else:  # the document's module (and every model) imported by the first request for it
    openapi = lazy("chalicelib.api", "openapi")

bp = Resource(__name__)
route = bp.declare


@route("/v1/openapi.json", "GET", summary="This document (OpenAPI 3.1)", responses={200: None}, per_user=True,
       operation_id="get_openapi_document")
def openapi_document() -> Response:
    """This OpenAPI 3.1 document: every operation, its parameters, bodies, statuses and links."""
    return json_response(openapi.document())


@route("/docs", "GET", summary="The API documentation page (HTML)", responses={200: None},
       scope="public")
def docs_page() -> Response:
    """The documentation page, rendered from this document in the browser (it asks for a key)."""
    body, headers = dashboard.page("docs.html")  # its script and style: dashboard/docs.{js,css}
    return Response(body=body, status_code=200, headers=headers)
