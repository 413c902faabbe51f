"""Who may call which route: the authorizer's side of API keys (minting, storing and resolving
keys is chalicelib/services/keys.py).

Scopes: `read` (every GET), `agent` (read + what a tutor does: sessions, messages, progress),
`admin` (everything: manuals, deletes, redelivery, redrive, inboxes, keys). Each route
declares the scope it needs (`route(..., scope=)` in chalicelib/api/routes/), and the Chalice
authorizer turns a key's scopes into the list of routes it may call: API Gateway caches that answer per key,
and the keys service caches lookups per process, so a request usually costs no extra round
trip. A revoked key stops working when those caches expire (keys.CACHE_SECONDS in the
function, AUTH_TTL_SECONDS at API Gateway).

A key bound to a user_id (per-user isolation) can only touch that user's sessions: it reaches
only the routes declared per-user (`route(..., per_user=True)`), whose handlers narrow
to its user. Binding is for read and agent keys: an admin key cannot be bound (it would hold
routes, such as keys, redrive and analytics, that no user's binding can narrow). Only an admin
key reaches POST /v1/keys, and no key mints a key wider than itself (`check_can_mint`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chalice import AuthResponse

from chalicelib.api.lazy import lazy
from chalicelib.domain.errors import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from chalicelib.services import keys
    from chalicelib.services.keys import GRANTS, KeyCreate, Principal
else:  # imported by the first request with a key (chalicelib/api/lazy.py)
    keys = lazy("chalicelib.services", "keys")
    GRANTS, KeyCreate, Principal = lazy("chalicelib.services.keys", "GRANTS", "KeyCreate", "Principal")

AUTH_TTL_SECONDS = 300
MAX_TOKEN_CHARS = 256
_BEARER = re.compile(r"^Bearer ([\x21-\x7e]{1,256})$", re.IGNORECASE)
# The bodies API Gateway answers with (GatewayResponses in the packaged template, and the
# local gateway emulation in local/gateway.py): one error shape everywhere.
UNAUTHORIZED_BODY = ('{"error": "unauthorized", "message": "A valid API key is required: '
                     'send Authorization: Bearer <key>."}')
FORBIDDEN_BODY = ('{"error": "forbidden", "message": "This API key\'s scopes (or its binding to '
                  'one user) do not allow this request."}')


class Unauthorized(Exception):
    """Raised by the authorizer: API Gateway answers 401 when its message is 'Unauthorized'."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class UsageAuthResponse(AuthResponse):
    """Chalice's AuthResponse plus `usageIdentifierKey`, which Chalice has no field for: the
    API Gateway API key whose usage plan limits this caller (the API's key source is
    AUTHORIZER, see infra/package.py and chalicelib/services/usage_plans.py)."""

    def __init__(self, routes: list[Any], principal_id: str, context: dict[str, str],
                 usage_identifier_key: str) -> None:
        super().__init__(routes=routes, principal_id=principal_id, context=context)
        self.usage_identifier_key = usage_identifier_key

    def to_dict(self, request: Any) -> dict[str, Any]:
        return {**super().to_dict(request), "usageIdentifierKey": self.usage_identifier_key}


# ---- checking a request --------------------------------------------------------------------


def bearer_token(header_value: str | None) -> str | None:
    match = _BEARER.match(header_value or "")
    return match.group(1) if match else None


def authenticate(header_value: str | None) -> Principal:
    """The key's principal; Unauthorized for a missing, malformed, unknown or revoked key."""
    token = bearer_token(header_value)
    principal = keys.principal_for(token) if token is not None else None
    if principal is None:
        raise Unauthorized()
    return principal


def policy_routes(principal: Principal,
                  routes: list[tuple[str, str, str, bool]]) -> list[tuple[str, list[str]]]:
    """(path, methods) the principal may call, from (path, method, scope, bound keys allowed)
    of every route; path parameters become `*` as in an execute-api ARN."""
    allowed: dict[str, list[str]] = {}
    for path, method, scope, bound_keys in routes:
        if principal.user_id and not bound_keys:
            continue
        if scope != "public" and principal.allows(scope):
            allowed.setdefault(re.sub(r"\{[^}]+\}", "*", path), []).append(method)
    return sorted(allowed.items())


def caller(request: Any) -> Principal | None:
    """The principal the authorizer admitted for this request (None on public routes)."""
    context = (getattr(request, "context", None) or {}).get("authorizer") or {}
    if not context.get("key_id"):
        return None
    return Principal(context["key_id"], frozenset(context.get("scopes", "").split()),
                     context.get("user_id") or None)


def check_can_mint(principal: Principal | None, body: KeyCreate) -> None:
    """No key mints a key wider than itself: every scope asked for must be one the caller's
    scopes grant, and a caller bound to a user mints only keys bound to the same user."""
    if principal is None:
        raise NotAuthenticated("A valid API key is required to create keys.")
    granted = set().union(*(GRANTS[s] for s in principal.scopes))
    if not set(body.scopes) <= granted:
        raise Forbidden("An API key cannot create a key with scopes wider than its own.")
    if principal.user_id and body.user_id != principal.user_id:
        raise Forbidden("A key bound to a user can only create keys bound to the same user.")


def check_user(principal: Principal | None, user_id: str | None) -> None:
    """A key bound to a user may only touch that user's sessions (403 otherwise)."""
    if principal is not None and principal.user_id and principal.user_id != user_id:
        raise Forbidden("This API key is bound to another user.")
