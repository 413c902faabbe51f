"""Request limits: the defaults (one place: the packaged template's parameters, the local
gateway and the capture route all read them here), a key's own limits, and a token bucket.

On AWS, API Gateway enforces the per-key limits (usage plans) and the per-route limits (stage
method throttling) before our code runs; the local stack enforces the same numbers with the
bucket below (local/limits.py). The capture route's per-inbox and per-address limits are
enforced by the function itself (chalicelib/inbox/captures.py), in memory, before any read.
Nothing here counts requests in DynamoDB.

Pure: no I/O; time is passed in.
"""

from __future__ import annotations

import math
import threading
from typing import Annotated, NamedTuple

from pydantic import Field

from chalicelib.domain.models import Model
from chalicelib.domain.vocabulary import INTEGRAL

# ---- defaults (also the template's parameter defaults, see infra/package.py) ---------------
# Far above what a tutoring agent sends (a few requests a minute) and what the test suite
# sends to the local stack (which serves ~25-40 requests/s in all, bench/RESULTS.md).
KEY_RATE_PER_SECOND = 50.0
KEY_BURST = 100
KEY_DAILY_QUOTA = 200_000
# per route (API Gateway: per method of the stage, across all callers)
ROUTE_RATE_PER_SECOND, ROUTE_BURST = 200.0, 400
WRITE_RATE_PER_SECOND, WRITE_BURST = 100.0, 200  # POST, PUT, PATCH, DELETE
HOOK_RATE_PER_SECOND, HOOK_BURST = 50.0, 100  # /v1/hooks/{inbox_id}: public
# the capture route, per inbox and per source address (in the function, per instance)
INBOX_RATE_PER_SECOND, INBOX_BURST = 50.0, 100
SOURCE_RATE_PER_SECOND, SOURCE_BURST = 50.0, 100
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOOK_ROUTE = "/v1/hooks/{inbox_id}"
UNLIMITED_PREFIX = "/health"
# an API Gateway API key's value must be at least 20 characters
USAGE_ID_PREFIX = "ssk-usage-"

# The 429 bodies: API Gateway's GatewayResponses (THROTTLED, QUOTA_EXCEEDED) and the local
# gateway answer exactly these. One static text each, since API Gateway cannot fill in which
# limit it was (a key's, or the route's).
THROTTLED_BODY = ('{"error": "rate_limited", "message": "Too many requests: slow down and retry '
                  'after the seconds in the Retry-After header."}')
QUOTA_BODY = ('{"error": "quota_exceeded", "message": "This API key has used its daily request '
              'quota; it renews at 00:00 UTC (see Retry-After)."}')
THROTTLED_RETRY_AFTER = 1
# API Gateway's header is static; the local gateway counts the seconds to midnight UTC
QUOTA_RETRY_AFTER = 3600

# at least 0.01/s (a value DynamoDB and API Gateway store exactly enough), at most 10,000/s
RatePerSecond = Annotated[float, Field(strict=False, ge=0.01, le=10_000, allow_inf_nan=False)]
Burst = Annotated[int, Field(strict=True, ge=1, le=5_000), INTEGRAL]
DailyQuota = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000), INTEGRAL]


class KeyLimits(Model):
    """A key's own limits; None = the default plan's value."""

    rate_per_second: RatePerSecond | None = None
    burst: Burst | None = None
    daily_quota: DailyQuota | None = None

    def overridden(self) -> bool:
        return any(v is not None for v in (self.rate_per_second, self.burst, self.daily_quota))

    def effective(self) -> EffectiveLimits:
        return EffectiveLimits(
            self.rate_per_second if self.rate_per_second is not None else KEY_RATE_PER_SECOND,
            self.burst if self.burst is not None else KEY_BURST,
            self.daily_quota if self.daily_quota is not None else KEY_DAILY_QUOTA)


class EffectiveLimits(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    rate_per_second: float
    burst: int
    daily_quota: int


class RouteLimit(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    rate_per_second: float
    burst: int


def route_limit(method: str, path: str) -> RouteLimit | None:
    """The per-route limit of `method path` (a route template); None: unlimited (health)."""
    if path.startswith(UNLIMITED_PREFIX):
        return None
    if path == HOOK_ROUTE:
        return RouteLimit(HOOK_RATE_PER_SECOND, HOOK_BURST)
    if method.upper() in WRITE_METHODS:
        return RouteLimit(WRITE_RATE_PER_SECOND, WRITE_BURST)
    return RouteLimit(ROUTE_RATE_PER_SECOND, ROUTE_BURST)


def usage_identifier(key_id: str) -> str:
    """The value of the API Gateway API key that stands for our key in usage plans. Not a
    secret: with API keys sourced from the authorizer, a caller cannot send one."""
    return USAGE_ID_PREFIX + key_id


def seconds_to_utc_midnight(now_epoch: float) -> int:
    return max(1, math.ceil(86400 - now_epoch % 86400))


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; each request takes one. Thread-safe."""

    __slots__ = ("rate", "burst", "_tokens", "_at", "_lock")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = float(burst), now
        self._lock = threading.Lock()

    def take(self, now: float) -> float:
        """0 when admitted (a token taken); else the seconds until a token is there."""
        with self._lock:
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


def retry_after(wait_seconds: float) -> int:
    """A Retry-After value (whole seconds, at least 1) for a bucket's wait."""
    return max(1, math.ceil(wait_seconds))


class Buckets:
    """Token buckets by name, created on first use, bounded in number (the least recently
    created go first: a flood of distinct names cannot grow memory without bound)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def take(self, name: str, rate: float, burst: int, now: float) -> float:
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
                if len(self._buckets) >= self._capacity:
                    del self._buckets[next(iter(self._buckets))]
                bucket = self._buckets[name] = TokenBucket(rate, burst, now)
        return bucket.take(now)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
