"""Manuals: create (idempotent by content), list, read with steps, delete when unused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api.http import MAX_MANUAL_BODY_BYTES, json_response, parse_body, parse_query, path_id
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, no_content
from chalicelib.domain.errors import ManualExists, ManualInUse, ManualNotFound

if TYPE_CHECKING:
    from chalicelib.api.schemas import ManualPage, PageQuery
    from chalicelib.domain.models import Manual, ManualCreate
    from chalicelib.services import manuals
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    ManualPage, PageQuery = lazy("chalicelib.api.schemas", "ManualPage", "PageQuery")
    Manual, ManualCreate = lazy("chalicelib.domain.models", "Manual", "ManualCreate")
    manuals = lazy("chalicelib.services", "manuals")

bp = Resource(__name__)
route = bp.declare


@route("/v1/manuals", "POST", summary="Create a manual (same body again: 200)", body=ManualCreate,
       responses={201: Manual, 200: Manual}, scope="admin", errors=(ManualExists,))
def create_manual() -> Response:
    """Create a manual: an id, a title and its ordered steps. 201 with the manual; the same
    body again answers 200 (safe to retry); the same id with other content is 409
    manual_exists. Bodies up to 5 MB."""
    body = parse_body(bp.current_request, ManualCreate, max_bytes=MAX_MANUAL_BODY_BYTES)
    manual, created = manuals.create_manual(body)
    return json_response(manual, 201 if created else 200)


@route("/v1/manuals", "GET", summary="List manuals", responses={200: ManualPage}, query=PageQuery, per_user=True)
def list_manuals() -> Response:
    """The manuals a session can follow (id, title, number of steps), one page at a time."""
    page = parse_query(bp.current_request, PageQuery)
    return json_response(manuals.list_manuals(page.limit, page.cursor))


@route("/v1/manuals/{manual_id}", "GET", summary="A manual with its steps", responses={200: Manual}, per_user=True,
       errors=(ManualNotFound,))
def get_manual(manual_id: str) -> Response:
    """A manual with every step's number, title and content, and how many active sessions use it."""
    return json_response(manuals.get_manual(path_id(manual_id, "manual_id")))


@route("/v1/manuals/{manual_id}", "DELETE", summary="Delete a manual no active session uses",
       responses={204: None}, scope="admin", errors=(ManualNotFound, ManualInUse))
def delete_manual(manual_id: str) -> Response:
    """Delete a manual that no active session follows (else 409 manual_in_use)."""
    manuals.delete_manual(path_id(manual_id, "manual_id"))
    return no_content()
