"""API keys: who may call which route.

A key is `ssk_` + 256 random bits, shown once and stored only as its SHA-256 (a fast hash is
right for high-entropy secrets: there is nothing to brute-force). The item's key is derived
from the hash, so checking a key is one GetItem, and the key_id (a prefix of the hash) names
it for `keys list` / `keys revoke` without revealing it.

Scopes: `read` (every GET), `agent` (read + what a tutor does: sessions, messages, progress),
`admin` (everything: manuals, deletes, redelivery, redrive, inboxes, keys). Each route
declares the scope it needs (app.py's `route(..., scope=)`), and the Chalice authorizer turns
a key's scopes into the list of routes it may call: API Gateway caches that answer per key,
and this module caches lookups per process, so a request usually costs no extra round trip.
A revoked key stops working when those caches expire (CACHE_SECONDS here, AUTH_TTL_SECONDS at
API Gateway).

A key bound to a user_id (per-user isolation) can only touch that user's sessions: it reaches
only the routes declared per-user (app.py's `route(..., per_user=True)`), whose handlers narrow
to its user. Binding is for read and agent keys: an admin key cannot be bound (it would hold
routes, such as keys, redrive and analytics, that no user's binding can narrow). Only an admin
key reaches POST /v1/keys, and no key mints a key wider than itself (`check_can_mint`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from chalicelib.db import keys as records
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import ServiceError
from chalicelib.domain.models import KeyId, Name, Request, UserId, conforms

SCOPES = ("read", "agent", "admin")
# what each scope grants, as the route scopes it covers
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "agent": frozenset({"read", "agent"}),
    "admin": frozenset({"read", "agent", "admin"}),
}
KEY_PREFIX = "ssk_"
CACHE_SECONDS = 60.0
AUTH_TTL_SECONDS = 300
MAX_TOKEN_CHARS = 256
_BEARER = re.compile(r"^Bearer ([\x21-\x7e]{1,256})$", re.IGNORECASE)
# The bodies API Gateway answers with (GatewayResponses in the packaged template, and the
# local gateway emulation in infra/gateway.py): one error shape everywhere.
UNAUTHORIZED_BODY = ('{"error": "unauthorized", "message": "A valid API key is required: '
                     'send Authorization: Bearer <key>."}')
FORBIDDEN_BODY = ('{"error": "forbidden", "message": "This API key\'s scopes (or its binding to '
                  'one user) do not allow this request."}')

Scope = Literal["read", "agent", "admin"]


class Unauthorized(Exception):
    """Raised by the authorizer: API Gateway answers 401 when its message is 'Unauthorized'."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class KeyNotFound(ServiceError):
    status, code = 404, "key_not_found"


class KeyExists(ServiceError):
    """Only a token the operator chose can collide (ensure_key); a random one never does."""
    status, code = 409, "key_exists"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotAuthenticated(ServiceError):
    status, code = 401, "unauthorized"


class KeyCreate(Request):
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    name: Name | None = None
    user_id: UserId | None = None

    @model_validator(mode="after")
    def _admin_is_never_bound(self) -> KeyCreate:
        if self.user_id is not None and "admin" in self.scopes:
            raise ValueError("an admin key cannot be bound to a user (bind read or agent keys)")
        return self


class ApiKey(BaseModel):
    key_id: str
    name: str | None
    scopes: list[str]
    user_id: str | None
    created_at: str
    revoked_at: str | None


class ApiKeyCreated(ApiKey):
    key: str


class ApiKeyPage(BaseModel):
    items: list[ApiKey]
    next_cursor: str | None


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]
    user_id: str | None

    def allows(self, route_scope: str) -> bool:
        return route_scope == "public" or any(route_scope in GRANTS[s] for s in self.scopes)

    def context(self) -> dict[str, str]:
        """What the authorizer hands to the API function (strings only, as API Gateway wants)."""
        return {"key_id": self.key_id, "scopes": " ".join(sorted(self.scopes)),
                "user_id": self.user_id or ""}


# ---- keys ----------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _view(item: dict[str, Any]) -> ApiKey:
    return ApiKey(key_id=item["key_id"], name=item.get("name"), scopes=list(item["scopes"]),
                  user_id=item.get("user_id"), created_at=item["created_at"],
                  revoked_at=item.get("revoked_at"))


def create_key(body: KeyCreate, token: str | None = None) -> ApiKeyCreated:
    """A new key (or `token` given by the operator, e.g. the local stack's LOCAL_API_KEY)."""
    token = token or KEY_PREFIX + secrets.token_urlsafe(32)
    digest = _digest(token)
    key_id = digest[:16]
    item = {"key_id": key_id, "hash": digest, "scopes": sorted(set(body.scopes)),
            "name": body.name, "user_id": body.user_id, "created_at": to_iso(utcnow())}
    if not records.put_new(item):
        raise KeyExists(f"API key '{key_id}' exists already.")
    _cache.forget(digest)
    return ApiKeyCreated(**_view(item).model_dump(), key=token)


def ensure_key(token: str, scopes: list[str], name: str) -> ApiKey:
    """Create `token` unless it exists already (the local stack's dev key, on every start)."""
    try:
        return create_key(KeyCreate(scopes=scopes, name=name), token=token)  # type: ignore[arg-type]
    except KeyExists:
        return _view(records.get(_digest(token)[:16]) or {})


def list_keys(limit: int, cursor: str | None) -> ApiKeyPage:
    items, next_cursor = records.list_page(limit, cursor)
    return ApiKeyPage(items=[_view(i) for i in items], next_cursor=next_cursor)


def revoke_key(key_id: str) -> None:
    """Revoke (kept, with revoked_at, for the record); 404 for an unknown key."""
    if not conforms(KeyId, key_id):
        raise KeyNotFound(f"No API key '{key_id}'.")
    if not records.revoke(key_id, to_iso(utcnow())):
        raise KeyNotFound(f"No API key '{key_id}'.")
    _cache.clear()  # this process stops honouring it at once; others within CACHE_SECONDS


# ---- checking a request --------------------------------------------------------------------


class _TimedCache:
    """digest -> (Principal or None, expiry). Small, per process (each Lambda instance)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data: dict[str, tuple[Principal | None, float]] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        with self._lock:
            hit = self._data.get(digest)
        if hit is None or hit[1] < time.monotonic():
            return False, None
        return True, hit[0]

    def put(self, digest: str, principal: Principal | None, seconds: float) -> None:
        with self._lock:
            if len(self._data) >= self._capacity:
                self._data.clear()
            self._data[digest] = (principal, time.monotonic() + seconds)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._data.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_cache = _TimedCache()


def forget_cached_keys() -> None:
    _cache.clear()


def bearer_token(header_value: str | None) -> str | None:
    match = _BEARER.match(header_value or "")
    return match.group(1) if match else None


def authenticate(header_value: str | None) -> Principal:
    """The key's principal; Unauthorized for a missing, malformed, unknown or revoked key."""
    token = bearer_token(header_value)
    if token is None:
        raise Unauthorized()
    digest = _digest(token)
    hit, principal = _cache.get(digest)
    if not hit:
        item = records.get(digest[:16], consistent=False)
        principal = None
        if item and hmac.compare_digest(item["hash"], digest) and not item.get("revoked_at"):
            principal = Principal(item["key_id"], frozenset(item["scopes"]), item.get("user_id"))
        # unknown keys are remembered briefly too, so a flood of bad keys costs few reads
        _cache.put(digest, principal, CACHE_SECONDS if principal else 5.0)
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
