"""The limits API Gateway enforces before our code runs, enforced by the local stack too.

On AWS: per key, the key's usage plan (rate, burst, daily quota; the authorizer names the key's
API Gateway key); per route, the stage's method throttling (stricter on writes and on the
public capture route); over either, API Gateway answers 429 with the GatewayResponse bodies
THROTTLED / QUOTA_EXCEEDED (infra/package.py). Here: the same numbers
(chalicelib/domain/limits.py, and each key's own limits from its record), kept in token buckets
in memory, checked before a request takes one of the local API's turns, answering the same
429 JSON with Retry-After. Health routes are not limited. LOCAL_RATE_LIMITS=0 turns it off.

One difference, on purpose: a refused request's 429 is held for LOCAL_REFUSAL_DELAY_MS (100 by
default, set in local/stack.py) before it is sent, twice as long for each further 429 in a row
on the same connection, never longer than its Retry-After or 1 s. API Gateway answers at once, on
machines of its own; the local stack shares a developer's few cores with the client, and a
client in a tight retry loop would otherwise take the CPU that other keys' requests need
(bench/bench_rate_limits.py measures both). The request handler also refuses before it reads a
body or builds the request for the app, with a 429 prepared once (local/stack.py).

Called from local/stack.py's request handler (one call), kept apart from local/gateway.py.
Nothing here ships to Lambda.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalice.local import LocalGatewayException, RouteMatcher

from chalicelib.api import auth
from chalicelib.domain import limits
from chalicelib.services import keys

# the longest a 429 is held, however many came before it on the connection
MAX_HOLD_SECONDS = 1.0


class Throttled(LocalGatewayException):
    CODE = 429


class LocalLimits:
    """Per-key and per-route token buckets for the local stack's API."""

    def __init__(self, app: Any, *, enabled: bool = True,
                 route_limit: Callable[[str, str], limits.RouteLimit | None] = limits.route_limit,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 refusal_delay: float = 0.0) -> None:
        self.enabled = enabled
        self.refusal_delay = refusal_delay
        self._app = app
        self._matcher = RouteMatcher(list(app.routes))
        self._route_limit = route_limit
        self._clock, self._wall = clock, wall
        self._routes, self._keys = limits.Buckets(), limits.Buckets()
        self._used: dict[str, tuple[int, int]] = {}  # key_id -> (UTC day, requests admitted)
        self._lock = threading.Lock()

    def admit(self, method: str, path: str, headers: Mapping[str, str], streak: int = 0) -> None:
        """Raise Throttled (429, Retry-After) if `method path` is over a limit, after holding
        it (the refusal delay, doubled for each of the `streak` 429s in a row before it on the
        connection, at most its Retry-After or 1 s). Unknown routes and keys pass: the gateway answers
        those (404, 401) as usual."""
        if not self.enabled:
            return
        try:
            self._admit(method, path, headers)
        except Throttled as refused:
            time.sleep(self.hold(streak, float(refused.headers["Retry-After"])))
            raise

    def hold(self, streak: int, retry_after: float) -> float:
        """How long a 429 is held: the refusal delay, doubled per earlier 429 in a row on the
        same connection, at most its Retry-After and MAX_HOLD_SECONDS (a quota's Retry-After
        can be hours: a client's timeout must not run out on a held answer)."""
        return min(self.refusal_delay * 2 ** min(streak, 16), retry_after, MAX_HOLD_SECONDS)

    def _admit(self, method: str, path: str, headers: Mapping[str, str]) -> None:
        try:
            route = self._matcher.match_route(path).route
        except ValueError:
            return
        limit = self._route_limit(method, route)
        if limit is None:
            return
        entry = self._app.routes[route].get(method.upper())
        if entry is not None and entry.authorizer is not None:
            # the key's own bucket first: a key over its limit spends no token of the route's
            # (other keys keep the route's capacity)
            self._admit_key(headers)
        wait = self._routes.take(f"{method.upper()} {route}", limit.rate_per_second, limit.burst, self._clock())
        if wait:
            raise _throttled(limits.THROTTLED_BODY, limits.retry_after(wait))

    def _admit_key(self, headers: Mapping[str, str]) -> None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        token = auth.bearer_token(value)
        principal = keys.principal_for(token) if token else None
        if principal is None:
            return
        own = principal.effective_limits()
        wait = self._keys.take(principal.key_id, own.rate_per_second, own.burst, self._clock())
        if wait:
            raise _throttled(limits.THROTTLED_BODY, limits.retry_after(wait))
        now = self._wall()
        day = int(now // 86400)
        with self._lock:
            used_day, used = self._used.get(principal.key_id, (day, 0))
            used = used if used_day == day else 0
            if used >= own.daily_quota:
                raise _throttled(limits.QUOTA_BODY, limits.seconds_to_utc_midnight(now))
            self._used[principal.key_id] = (day, used + 1)

    def describe(self) -> str:
        """The limits in force, for `make run`'s banner."""
        if not self.enabled:
            return "off (LOCAL_RATE_LIMITS=0)"
        return (f"per key {limits.KEY_RATE_PER_SECOND:g}/s, burst {limits.KEY_BURST}, "
                f"{limits.KEY_DAILY_QUOTA:,} a day (a key's own limits: PATCH /v1/keys/{{key_id}});\n"
                f"              per route {limits.ROUTE_RATE_PER_SECOND:g}/s burst {limits.ROUTE_BURST}, "
                f"writes {limits.WRITE_RATE_PER_SECOND:g}/s burst {limits.WRITE_BURST}, "
                f"captures {limits.HOOK_RATE_PER_SECOND:g}/s burst {limits.HOOK_BURST} "
                f"(and per inbox and per source address {limits.INBOX_RATE_PER_SECOND:g}/s "
                f"burst {limits.INBOX_BURST});\n"
                "              health unlimited; LOCAL_RATE_LIMITS=0 turns them off")


def _throttled(body: str, retry_after: int) -> Throttled:
    return Throttled({"Content-Type": "application/json", "Retry-After": str(retry_after)}, body.encode())
