"""The local stack enforces API Gateway's limits: per key (its own limits, set through the
keys API) and per route, answering 429 JSON with Retry-After, and recovering after it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from chalicelib.domain import limits


def call(method: str, url: str, key: str | None = None, body: object = None) -> tuple[int, dict, object]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


@pytest.fixture(scope="module")
def base(local_stack) -> str:
    return local_stack["api"] + "/v1"


@pytest.fixture(scope="module")
def admin(local_stack) -> str:
    return local_stack["api_key"]


def test_a_key_past_its_burst_gets_429_with_retry_after_and_recovers(base, admin) -> None:
    # GIVEN a key allowed 1 request/s with a burst of 3
    status, _, created = call("POST", f"{base}/keys", admin, {"scopes": ["read"], "rate_per_second": 1, "burst": 3})
    assert status == 201, created
    key = created["key"]
    # WHEN it sends 5 requests at once
    answers = [call("GET", f"{base}/manuals", key) for _ in range(5)]
    # THEN its burst passes, the rest are 429 in the API's error shape with Retry-After
    assert [a[0] for a in answers[:3]] == [200, 200, 200], answers[:3]
    status, headers, body = answers[3]
    assert status == 429 and body == json.loads(limits.THROTTLED_BODY)
    assert headers["Retry-After"] == "1" and headers["Content-Type"] == "application/json"
    # another key is not affected
    assert call("GET", f"{base}/manuals", admin)[0] == 200
    # AND after Retry-After it is let through again
    time.sleep(1.1)
    assert call("GET", f"{base}/manuals", key)[0] == 200
    # a PATCH raises its limits at once
    assert call("PATCH", f"{base}/keys/{created['key_id']}", admin, {"burst": 50})[0] == 200
    assert [call("GET", f"{base}/manuals", key)[0] for _ in range(10)] == [200] * 10


def test_a_key_past_its_daily_quota_gets_429_quota_exceeded_until_midnight_utc(base, admin) -> None:
    created = call("POST", f"{base}/keys", admin, {"scopes": ["read"], "daily_quota": 2})[2]
    assert [call("GET", f"{base}/manuals", created["key"])[0] for _ in range(2)] == [200, 200]
    status, headers, body = call("GET", f"{base}/manuals", created["key"])
    assert status == 429 and body["error"] == "quota_exceeded"
    assert 1 <= int(headers["Retry-After"]) <= 86400


def test_health_routes_are_not_limited(local_stack) -> None:
    statuses = {call("GET", f"{local_stack['api']}/health/live")[0] for _ in range(limits.ROUTE_BURST // 2 + 1)}
    assert statuses == {200}


def test_the_defaults_leave_a_busy_key_alone(base, admin) -> None:
    # a full default burst from one fresh key: nothing refused
    key = call("POST", f"{base}/keys", admin, {"scopes": ["read"]})[2]["key"]
    statuses = [call("GET", f"{base}/manuals?limit=1", key)[0] for _ in range(limits.KEY_BURST)]
    assert statuses == [200] * limits.KEY_BURST


def test_the_per_route_limit_answers_the_same_429(local_stack) -> None:
    """The route buckets of the local gateway itself, with a small limit (the stack's own are
    the defaults above): a public route, so no key is involved."""
    from app import app
    from local.limits import LocalLimits, Throttled

    now = [0.0]
    gate = LocalLimits(app, route_limit=lambda method, path: limits.RouteLimit(1.0, 2), clock=lambda: now[0])
    gate.admit("POST", "/v1/hooks/some-inbox", {})
    gate.admit("POST", "/v1/hooks/some-inbox", {})
    with pytest.raises(Throttled) as refused:
        gate.admit("POST", "/v1/hooks/some-inbox", {})
    assert refused.value.CODE == 429 and json.loads(refused.value.body) == json.loads(limits.THROTTLED_BODY)
    assert refused.value.headers["Retry-After"] == "1"
    gate.admit("GET", "/v1/hooks/some-inbox", {})  # each method of a route has its own limit
    now[0] += 1.0
    gate.admit("POST", "/v1/hooks/some-inbox", {})  # recovered
    assert LocalLimits(app, enabled=False).describe().startswith("off")


def test_a_refused_request_leaves_its_keep_alive_connection_usable(local_stack, base, admin) -> None:
    """The gateway refuses before reading a body: a small one is skipped (the next request on
    the connection is read correctly), a large one closes the connection; every 429 carries the
    security headers, a HEAD's has no body."""
    import http.client
    from urllib.parse import urlsplit

    from chalicelib.api.headers import API_HEADERS

    key = call("POST", f"{base}/keys", admin, {"scopes": ["agent"], "rate_per_second": 0.01, "burst": 1})[2]["key"]
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def send(method: str, path: str, body: bytes | None = None) -> http.client.HTTPResponse:
        connection.request(method, parts.path + path, body=body, headers=auth)
        answer = connection.getresponse()
        answer.body = answer.read()  # type: ignore[attr-defined]
        return answer

    assert send("GET", "/manuals").status == 200  # its burst
    refused = send("POST", "/sessions", json.dumps({"user_id": "u", "manual_id": "m"}).encode())
    assert refused.status == 429 and json.loads(refused.body) == json.loads(limits.THROTTLED_BODY)  # type: ignore[attr-defined]
    assert int(refused.getheader("Retry-After")) >= 1 and refused.getheader("Connection") != "close"
    assert {name: refused.getheader(name) for name in API_HEADERS} == API_HEADERS
    head = send("HEAD", "/manuals")
    assert head.status == 429 and head.body == b"" and int(head.getheader("Content-Length")) > 0  # type: ignore[attr-defined]
    # the same connection, the refused body skipped: the next request is read as sent
    connection.request("GET", f"{parts.path.rsplit('/v1', 1)[0]}/health/live")
    live = connection.getresponse()
    assert live.status == 200 and json.loads(live.read())
    # a large body is not read: the 429 closes the connection
    big = send("POST", "/sessions", b"{" + b" " * (128 * 1024) + b"}")
    assert big.status == 429 and big.getheader("Connection") == "close"
    connection.close()


def test_each_429_in_a_row_on_a_connection_is_held_twice_as_long_up_to_1_s() -> None:
    from app import app
    from local.limits import LocalLimits

    gate = LocalLimits(app, refusal_delay=0.1)
    assert [gate.hold(streak, 1.0) for streak in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert gate.hold(1, 0.15) == 0.15  # never past its Retry-After
    assert gate.hold(1000, 3600.0) == 1.0  # nor past 1 s (a quota's Retry-After is hours)
    assert LocalLimits(app, refusal_delay=0.0).hold(10, 1.0) == 0.0
