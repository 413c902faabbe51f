"""API keys: mint (shown once), list, change limits, revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.api import auth
from chalicelib.api.http import json_response, parse_body, parse_query, path_id
from chalicelib.api.lazy import lazy
from chalicelib.api.routing import Resource, caller, no_content
from chalicelib.domain.errors import KeyExists, KeyNotFound

if TYPE_CHECKING:
    from chalicelib.api.schemas import PageQuery
    from chalicelib.services import keys
    from chalicelib.services.keys import ApiKey, ApiKeyCreated, ApiKeyPage, KeyCreate, KeyPatch
else:  # imported by the first request that uses them (chalicelib/api/lazy.py)
    PageQuery = lazy("chalicelib.api.schemas", "PageQuery")
    keys = lazy("chalicelib.services", "keys")
    ApiKey, ApiKeyCreated, ApiKeyPage, KeyCreate, KeyPatch = lazy(
        "chalicelib.services.keys", "ApiKey", "ApiKeyCreated", "ApiKeyPage", "KeyCreate", "KeyPatch")

bp = Resource(__name__)
route = bp.declare


@route("/v1/keys", "POST", summary="Create an API key (the key is shown only in this answer)",
       body=KeyCreate, responses={201: ApiKeyCreated}, scope="admin", errors=(KeyExists,))
def create_key() -> Response:
    """Mint an API key with scopes (read < agent < admin), optionally bound to one user (then
    it calls only the per-user operations, for that user) and with its own limits. The key
    itself is in this answer only: store it."""
    body = parse_body(bp.current_request, KeyCreate)
    auth.check_can_mint(caller(bp.current_request), body)
    return json_response(keys.create_key(body), 201)


@route("/v1/keys", "GET", summary="List API keys (never their values)", responses={200: ApiKeyPage},
       query=PageQuery, scope="admin")
def list_keys() -> Response:
    """Every API key (id, scopes, binding, limits, revocation), never the key itself."""
    page = parse_query(bp.current_request, PageQuery)
    return json_response(keys.list_keys(page.limit, page.cursor))


@route("/v1/keys/{key_id}", "PATCH", summary="Set or clear an API key's own limits (rate, burst, daily quota)",
       body=KeyPatch, responses={200: ApiKey}, scope="admin", errors=(KeyNotFound,))
def update_key(key_id: str) -> Response:
    """Set a key's own rate, burst or daily quota (a number), or clear one (null: back to the
    default plan's); a field left out is unchanged."""
    body = parse_body(bp.current_request, KeyPatch)
    return json_response(keys.update_limits(path_id(key_id, "key_id"), body))


@route("/v1/keys/{key_id}", "DELETE", summary="Revoke an API key", responses={204: None}, scope="admin",
       errors=(KeyNotFound,))
def revoke_key(key_id: str) -> Response:
    """Revoke a key: refused from then on (within the authorizer's cache time)."""
    keys.revoke_key(path_id(key_id, "key_id"))
    return no_content()
