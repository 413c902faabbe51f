"""API keys: minted, listed, revoked, and resolved to who is calling.

A key is `ssk_` + 256 random bits, shown once and stored only as its SHA-256 (a fast hash is
right for high-entropy secrets: there is nothing to brute-force). The item's key is derived
from the hash, so resolving a key is one GetItem, and the key_id (a prefix of the hash) names
it for `keys list` / `keys revoke` without revealing it. Lookups are cached per process
(CACHE_SECONDS; unknown keys briefly too), so a request usually costs no extra round trip.
What a key may call is the API's business (chalicelib/api/auth.py).

Each key has limits (rate, burst, daily quota): the default plan's, or its own, set when it is
minted or with PATCH. They are stored on the key's record and travel with its principal, so
the authorizer hands them on without another read; on AWS, API Gateway enforces them through
the key's API Gateway API key in a usage plan (chalicelib/services/usage_plans.py keeps those
in step when a key is minted, changed or revoked).
"""

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, NamedTuple

from pydantic import ConfigDict, Field, model_validator

from chalicelib.db import keys as records
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import KeyExists, KeyNotFound, ServiceUnavailable
from chalicelib.domain.limits import Burst, DailyQuota, EffectiveLimits, KeyLimits, RatePerSecond, usage_identifier
from chalicelib.domain.models import Model, Request
from chalicelib.domain.vocabulary import KeyId, Name, Scope, Timestamp, UserId, conforms
from chalicelib.services import usage_plans

# what each scope grants, as the route scopes it covers
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "agent": frozenset({"read", "agent"}),
    "admin": frozenset({"read", "agent", "admin"}),
}
KEY_PREFIX = "ssk_"
CACHE_SECONDS = 60.0


class KeyCreate(Request):
    # _admin_is_never_bound, as JSON Schema
    model_config = ConfigDict(json_schema_extra={"not": {
        "required": ["scopes", "user_id"],
        "properties": {"scopes": {"contains": {"const": "admin"}}, "user_id": {"type": "string"}}}})
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    name: Name | None = None
    user_id: UserId | None = None
    rate_per_second: RatePerSecond | None = None
    burst: Burst | None = None
    daily_quota: DailyQuota | None = None

    def limits(self) -> KeyLimits:
        return KeyLimits(rate_per_second=self.rate_per_second, burst=self.burst,
                         daily_quota=self.daily_quota)

    @model_validator(mode="after")
    def _admin_is_never_bound(self) -> "KeyCreate":
        if self.user_id is not None and "admin" in self.scopes:
            raise ValueError("an admin key cannot be bound to a user (bind read or agent keys)")
        return self


class KeyPatch(Request):
    """A key's own limits: a field sent with a number sets it, sent as null goes back to
    the default plan's value, left out stays as it is."""

    rate_per_second: RatePerSecond | None = None
    burst: Burst | None = None
    daily_quota: DailyQuota | None = None


class ApiKey(Model):
    key_id: str
    name: str | None
    scopes: list[str]
    user_id: str | None
    created_at: Timestamp
    revoked_at: Timestamp | None
    # the key's own limits; null: the default plan's (README, "Rate limits")
    rate_per_second: float | None
    burst: int | None
    daily_quota: int | None


class ApiKeyCreated(ApiKey):
    key: str


class ApiKeyPage(Model):
    items: list[ApiKey]
    next_cursor: str | None


class Principal(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    key_id: str
    scopes: frozenset[str]
    user_id: str | None
    limits: KeyLimits = KeyLimits.model_construct()  # no own limits

    @property
    def usage_identifier(self) -> str:
        return usage_identifier(self.key_id)

    def effective_limits(self) -> EffectiveLimits:
        return self.limits.effective()

    def allows(self, route_scope: str) -> bool:
        return route_scope == "public" or any(route_scope in GRANTS[s] for s in self.scopes)

    def context(self) -> dict[str, str]:
        """What the authorizer hands to the API function (strings only, as API Gateway wants)."""
        own = self.limits
        return {"key_id": self.key_id, "scopes": " ".join(sorted(self.scopes)),
                "user_id": self.user_id or "",
                # the key's own limits ("" = the default plan's), for the local gateway
                **{name: "" if value is None else str(value) for name, value in own.model_dump().items()}}


# ---- managing keys ----------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _limits(item: dict[str, Any]) -> KeyLimits:
    return KeyLimits(**{k: v for k, v in (item.get("limits") or {}).items() if v is not None})


def _view(item: dict[str, Any]) -> ApiKey:
    return ApiKey(key_id=item["key_id"], name=item.get("name"), scopes=list(item["scopes"]),
                  user_id=item.get("user_id"), created_at=item["created_at"],
                  revoked_at=item.get("revoked_at"), **_limits(item).model_dump())


def create_key(body: KeyCreate, token: str | None = None) -> ApiKeyCreated:
    """A new key (or `token` given by the operator, e.g. the local stack's LOCAL_API_KEY)."""
    given = token is not None
    token = token or KEY_PREFIX + secrets.token_urlsafe(32)
    digest = _digest(token)
    key_id = digest[:16]
    limits = body.limits()
    item: dict[str, Any] = {"key_id": key_id, "hash": digest, "scopes": sorted(set(body.scopes)),
                            "name": body.name, "user_id": body.user_id, "created_at": to_iso(utcnow())}
    if limits.overridden():
        item["limits"] = limits.model_dump(exclude_none=True)
    if given and records.get(key_id) is not None:  # a random token never collides
        raise KeyExists(f"API key '{key_id}' exists already.")
    # API Gateway's key first: a record without one would be refused by the usage plan
    item.update(usage_plans.attach(key_id, limits))
    if not records.put_new(item):
        usage_plans.detach(item)
        raise KeyExists(f"API key '{key_id}' exists already.")
    _cache.forget(digest)
    return ApiKeyCreated(**_view(item).model_dump(), key=token)


def update_limits(key_id: str, body: KeyPatch) -> ApiKey:
    """Set or clear a key's own limits (PATCH /v1/keys/{key_id}); 404 for an unknown key."""
    item = records.get(key_id) if conforms(KeyId, key_id) else None
    if item is None:
        raise KeyNotFound(f"No API key '{key_id}'.")
    current = _limits(item).model_dump()
    current.update({name: getattr(body, name) for name in body.model_fields_set})
    limits = KeyLimits(**current)
    if not item.get("revoked_at"):
        item.update(usage_plans.attach(key_id, limits, item))
    stored = limits.model_dump(exclude_none=True)
    gateway = {k: item[k] for k in usage_plans.FIELDS if k in item}
    if not records.set_limits(key_id, stored, gateway):
        raise KeyNotFound(f"No API key '{key_id}'.")
    _cache.clear()  # this process applies them at once; others within CACHE_SECONDS
    return _view({**item, "limits": stored})


def ensure_key(token: str, scopes: list[str], name: str) -> ApiKey:
    """Create `token` unless it exists already (the local stack's dev key, on every start)."""
    try:
        return create_key(KeyCreate(scopes=scopes, name=name), token=token)
    except KeyExists:
        return _view(records.get(_digest(token)[:16]) or {})


def list_keys(limit: int, cursor: str | None) -> ApiKeyPage:
    items, next_cursor = records.list_page(limit, cursor)
    return ApiKeyPage(items=[_view(i) for i in items], next_cursor=next_cursor)


def revoke_key(key_id: str) -> None:
    """Revoke (kept, with revoked_at, for the record); 404 for an unknown key."""
    if not conforms(KeyId, key_id):
        raise KeyNotFound(f"No API key '{key_id}'.")
    item = records.get(key_id)
    if item is None or not records.revoke(key_id, to_iso(utcnow())):
        raise KeyNotFound(f"No API key '{key_id}'.")
    usage_plans.detach(item)
    _cache.clear()  # this process stops honouring it at once; others within CACHE_SECONDS



class SyncedKey(NamedTuple):
    """One key's outcome in `sync_usage_plans`."""

    key_id: str
    outcome: str  # "attached" (API Gateway changed), "in place" (nothing to do), "revoked" (skipped)
    usage_plan_id: str | None
    last_of_page: bool
    cursor: str | None  # after the last key of a page: where a later run goes on (None: the end)


def sync_usage_plans(page_size: int = 50, cursor: str | None = None) -> Iterator[SyncedKey]:
    """Give every stored active key its API Gateway key in the plan its limits call for (keys
    minted before usage plans have none, and API Gateway refuses them). A page of keys at a
    time, from `cursor`; idempotent (each key's step looks before it makes), so a run that
    stopped is finished by running it again, from the start or from a page's cursor. Never on
    a request's path."""
    if not usage_plans.enabled():
        raise ServiceUnavailable("No usage plan configured (USAGE_PLAN_NAME): nothing to sync to.")
    while True:
        items, cursor = records.list_page(page_size, cursor)
        for n, item in enumerate(items, 1):
            outcome, plan = _sync_one(item)
            yield SyncedKey(item["key_id"], outcome, plan, n == len(items), cursor)
        if not cursor:
            return


def _sync_one(item: dict[str, Any]) -> tuple[str, str | None]:
    if item.get("revoked_at"):
        return "revoked", None
    fields, changed = usage_plans.sync(item["key_id"], _limits(item), item)
    stored = {k: item.get(k) for k in usage_plans.FIELDS} == fields
    if not stored and not records.set_gateway(item["key_id"], fields):
        usage_plans.detach(fields)  # revoked meanwhile: its API Gateway key goes, as revoking does
        return "revoked", None
    return ("attached" if changed or not stored else "in place"), fields["usage_plan_id"]

# ---- resolving a key -----------------------------------------------------------------------


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


def principal_for(token: str) -> Principal | None:
    """Who `token` is: None for an unknown or revoked key."""
    digest = _digest(token)
    hit, principal = _cache.get(digest)
    if not hit:
        item = records.get(digest[:16], consistent=False)
        principal = None
        if item and hmac.compare_digest(item["hash"], digest) and not item.get("revoked_at"):
            principal = Principal(item["key_id"], frozenset(item["scopes"]), item.get("user_id"),
                                  _limits(item))
        # unknown keys are remembered briefly too, so a flood of bad keys costs few reads
        _cache.put(digest, principal, CACHE_SECONDS if principal else 5.0)
    return principal
