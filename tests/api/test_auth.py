"""API keys: every route but the public ones needs one (enumerated from the app's own route
table, so a new route cannot slip in unprotected), scopes, the key lifecycle, caching, and
per-user isolation."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from chalicelib.api import auth
from chalicelib.db import keys as api_keys
from chalicelib.db import table as store
from chalicelib.domain.vocabulary import SCOPES
from chalicelib.services import keys as key_service
from tests.conftest import ADMIN_KEY, manual_body
from tests.faults import fail_with, heal

# The only routes anyone may call without a key. Adding to this list is a security decision.
PUBLIC = {
    *{(path, method) for path in ("/health", "/health/live", "/health/ready", "/docs", "/dashboard",
                                  "/dashboard/{asset}") for method in ("GET", "HEAD")},
    *{("/v1/hooks/{inbox_id}", m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")},
}


def route_table() -> list[tuple[str, str, object]]:
    from app import app

    return [(path, method, entry) for path, methods in app.routes.items()
            for method, entry in methods.items()]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def required_scope(path: str, method: str) -> str:
    from chalicelib.api import openapi

    scopes = {op.scope for op in openapi.operations if op.path == path and op.method == method}
    assert len(scopes) == 1, (path, method)
    return scopes.pop()


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.body[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["error"] == code and response.json["message"]


@pytest.fixture
def keys(api) -> dict[str, str]:
    return {scope: api.post("/v1/keys", {"scopes": [scope], "name": scope}).json["key"]
            for scope in SCOPES}


def test_every_route_is_public_only_by_decision(api) -> None:
    table = route_table()
    assert len(table) >= 35
    for path, method, entry in table:
        public = (path, method) in PUBLIC
        assert (entry.authorizer is None) == public, f"{method} {path}: authorizer?"
        assert (required_scope(path, method) == "public") == public, f"{method} {path}"


def test_every_protected_route_answers_401_without_a_valid_key(api) -> None:
    revoked = api.post("/v1/keys", {"scopes": ["admin"]}).json
    assert api.delete(f"/v1/keys/{revoked['key_id']}").status_code == 204
    checked = 0
    for path, method, _ in route_table():
        if (path, method) in PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer ssk_not-a-key"},
                        {"Authorization": f"Bearer {revoked['key']}"},
                        {"Authorization": f"Basic {ADMIN_KEY}"}, {"Authorization": "Bearer "}):
            response = api.as_key(None).request(method, concrete(path), {}, headers=headers)
            assert_error(response, 401, "unauthorized")
            checked += 1
    assert checked >= 5 * 28


def test_scopes_allow_exactly_their_routes(api, keys) -> None:
    """read < agent < admin: each key reaches its routes (any answer but 401/403) and gets a
    JSON 403 on every other one."""
    allowed = Counter()
    for path, method, _ in route_table():
        if (path, method) in PUBLIC:
            continue
        needed = required_scope(path, method)
        for scope, key in keys.items():
            # (an inbox token is sent so inbox routes answer 404, not their own 401)
            response = api.as_key(key).request(method, concrete(path), {},
                                               headers={"X-Inbox-Token": "wrong"})
            if needed in auth.GRANTS[scope]:
                assert response.status_code not in (401, 403), (scope, method, path, response.json)
                allowed[scope] += 1
            else:
                assert_error(response, 403, "forbidden")
    assert allowed["read"] < allowed["agent"] < allowed["admin"]
    assert allowed["read"] >= 14


def test_agent_key_runs_a_session_but_cannot_manage(api, keys) -> None:
    assert api.post("/v1/manuals", manual_body("m-1", 3)).status_code == 201
    agent = api.as_key(keys["agent"])
    assert agent.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m-1"}).status_code == 201
    done = agent.post("/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"})
    assert done.status_code == 200
    assert agent.post("/v1/sessions/s-1/messages", {"user_id": "u", "sender": "agent", "message": "hi"}).status_code == 201
    assert agent.get("/v1/sessions/s-1/next-step").json["next_step"]["step_number"] == 2
    assert_error(agent.post("/v1/manuals", manual_body("m-2", 3)), 403, "forbidden")
    assert_error(agent.delete("/v1/sessions/s-1"), 403, "forbidden")
    assert_error(agent.get("/v1/keys"), 403, "forbidden")
    reader = api.as_key(keys["read"])
    assert reader.get("/v1/sessions/s-1").status_code == 200
    assert_error(reader.post("/v1/sessions/s-1/progress",
                             {"user_id": "u", "current_step": 2, "step_status": "DONE"}), 403, "forbidden")


def test_key_lifecycle_shown_once_stored_hashed_listed_revoked(api) -> None:
    created = api.post("/v1/keys", {"scopes": ["agent", "read"], "name": "tutor-prod"})
    assert created.status_code == 201
    key = created.json["key"]
    assert key.startswith("ssk_") and len(key) >= 4 + 43  # 256 random bits, url-safe base64
    assert created.json["scopes"] == ["agent", "read"] and created.json["revoked_at"] is None
    key_id = created.json["key_id"]
    # stored: only the hash; nothing in the item contains the key
    item = store.get_item(api_keys.key(key_id))
    assert key not in repr(item) and item["hash"] != key
    listed = api.get("/v1/keys?limit=100").json["items"]
    mine = next(k for k in listed if k["key_id"] == key_id)
    assert "key" not in mine and "hash" not in mine and mine["name"] == "tutor-prod"
    assert api.as_key(key).get("/v1/sessions").status_code == 200
    assert api.delete(f"/v1/keys/{key_id}").status_code == 204
    assert_error(api.as_key(key).get("/v1/sessions"), 401, "unauthorized")
    listed = api.get("/v1/keys?limit=100").json["items"]
    assert next(k for k in listed if k["key_id"] == key_id)["revoked_at"]
    assert_error(api.delete("/v1/keys/0123456789abcdef"), 404, "key_not_found")
    assert_error(api.delete("/v1/keys/not-hex"), 404, "key_not_found")


@pytest.mark.parametrize("body", [
    {"scopes": []}, {"scopes": ["root"]}, {"scopes": ["read"], "user_id": "a b"},
    {"scopes": ["read"], "name": "x" * 201}, {"scopes": ["read"], "key": "chosen"},
])
def test_bad_key_requests_are_400(api, body) -> None:
    assert_error(api.post("/v1/keys", body), 400, "validation_error")


def test_a_known_key_costs_no_round_trip(api) -> None:
    key = api.post("/v1/keys", {"scopes": ["read"]}).json["key"]
    calls: Counter = Counter()
    store.get_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    api.as_key(key).get("/v1/manuals")
    assert calls == Counter({"GetItem": 1, "Query": 1})  # the key's lookup, then the listing
    calls.clear()
    api.as_key(key).get("/v1/manuals")
    assert calls == Counter({"Query": 1})


def test_key_lookup_outage_is_503_not_401(api) -> None:
    key = api.post("/v1/keys", {"scopes": ["read"]}).json["key"]
    fail_with("InternalServerError", "GetItem")
    try:
        response = api.as_key(key).get("/v1/manuals")
    finally:
        heal("GetItem")
    assert_error(response, 503, "service_unavailable")
    assert response.headers["Retry-After"]
    assert api.as_key(key).get("/v1/manuals").status_code == 200


def test_a_key_bound_to_a_user_touches_only_that_users_sessions(api) -> None:
    api.post("/v1/manuals", manual_body("m-1", 3))
    for sid, user in (("s-mine", "u-1"), ("s-theirs", "u-2")):
        api.post("/v1/sessions", {"session_id": sid, "user_id": user, "manual_id": "m-1"})
    bound = api.as_key(api.post("/v1/keys", {"scopes": ["agent"], "user_id": "u-1"}).json["key"])
    assert bound.get("/v1/sessions/s-mine").status_code == 200
    assert bound.post("/v1/sessions/s-mine/progress",
                      {"user_id": "u-1", "current_step": 1, "step_status": "DONE"}).status_code == 200
    assert [s["session_id"] for s in bound.get("/v1/sessions").json["items"]] == ["s-mine"]
    for response in (
        bound.get("/v1/sessions/s-theirs"),
        bound.get("/v1/sessions/s-theirs/events"),
        bound.get("/v1/sessions/s-theirs/messages"),
        bound.get("/v1/sessions/s-theirs/next-step"),
        bound.patch("/v1/sessions/s-theirs", {"status": "ended"}),
        bound.post("/v1/sessions/s-theirs/progress", {"user_id": "u-2", "current_step": 1, "step_status": "DONE"}),
        bound.post("/v1/sessions/s-theirs/messages", {"user_id": "u-2", "sender": "user", "message": "x"}),
        bound.post("/v1/sessions", {"session_id": "s-new", "user_id": "u-2", "manual_id": "m-1"}),
        bound.get("/v1/sessions?user_id=u-2"),
        bound.get("/v1/deliveries"),
    ):
        assert_error(response, 403, "forbidden")
    # and it cannot claim the other user's session by naming itself in the body
    assert bound.post("/v1/sessions/s-theirs/progress",
                      {"user_id": "u-1", "current_step": 1, "step_status": "DONE"}).status_code in (403, 409)
    assert api.get("/v1/sessions/s-theirs").json["completed_steps"] == []


# ---- keys bound to a user ------------------------------------------------------------------
# The rule (README, Security): binding is for read and agent keys; an admin key cannot be
# bound. A bound key reaches only the routes that narrow to its user's sessions or hold no
# user's data (the manuals catalogue, the OpenAPI document); every other route is a 403.
PER_USER = {
    ("/v1/manuals", "GET"), ("/v1/manuals/{manual_id}", "GET"), ("/v1/openapi.json", "GET"),
    ("/v1/sessions", "POST"), ("/v1/sessions", "GET"), ("/v1/sessions/{session_id}", "GET"),
    ("/v1/sessions/{session_id}", "PATCH"), ("/v1/sessions/{session_id}/progress", "POST"),
    ("/v1/sessions/{session_id}/next-step", "GET"), ("/v1/sessions/{session_id}/events", "GET"),
    ("/v1/messages", "POST"), ("/v1/sessions/{session_id}/messages", "POST"),
    ("/v1/sessions/{session_id}/messages", "GET"),
    # the MCP endpoint: each tool narrows to the key's user as its REST route does (test_mcp.py)
    ("/v1/mcp", "POST"), ("/v1/mcp", "GET"),
}
PER_USER |= {(path, "HEAD") for path, method in PER_USER if method == "GET"}  # HEAD: as GET


def bound_key(api, scopes: list[str], user: str = "u-A") -> str:
    response = api.post("/v1/keys", {"scopes": scopes, "user_id": user})
    assert response.status_code == 201, response.json
    return response.json["key"]


@pytest.mark.parametrize("scopes", [["admin"], ["agent", "admin"], ["admin", "read"]])
def test_an_admin_key_cannot_be_bound_to_a_user(api, scopes) -> None:
    response = api.post("/v1/keys", {"scopes": scopes, "user_id": "u-A"})
    assert_error(response, 400, "validation_error")
    assert "admin key cannot be bound" in response.json["message"]
    assert [k for k in api.get("/v1/keys").json["items"] if k["user_id"]] == []


def test_which_routes_a_bound_key_may_call_is_a_decision_per_route(api) -> None:
    from chalicelib.api import openapi

    for op in openapi.operations:
        if op.scope == "public":
            continue
        assert op.bound_keys == ((op.path, op.method) in PER_USER), f"{op.method} {op.path}"


@pytest.mark.parametrize("scopes", [["read"], ["agent"], ["agent", "read"]])
def test_a_bound_key_gets_403_on_every_route_that_is_not_its_users(api, scopes) -> None:
    """The whole matrix: every protected route, with a bound key of each kind. Per-user routes
    answer (their own checks narrow them); every other route, analytics included, is 403."""
    api.post("/v1/manuals", manual_body("m-1", 3))
    api.post("/v1/sessions", {"session_id": "x-1", "user_id": "u-A", "manual_id": "m-1"})
    bound = api.as_key(bound_key(api, scopes))
    for path, method, _ in route_table():
        if (path, method) in PUBLIC:
            continue
        response = bound.request(method, concrete(path), {}, headers={"X-Inbox-Token": "wrong"})
        in_scope = required_scope(path, method) in auth.GRANTS["agent" if "agent" in scopes else "read"]
        if (path, method) in PER_USER and in_scope:  # x-1 is u-A's: the route answers
            assert response.status_code not in (401, 403), (method, path, response.json)
        else:
            assert_error(response, 403, "forbidden")
        assert response.status_code < 500, (method, path, response.json)


def test_a_bound_key_reads_no_analytics_and_acts_on_no_other_users_data(api) -> None:
    api.post("/v1/manuals", manual_body("m-1", 3))
    api.post("/v1/sessions", {"session_id": "s-B", "user_id": "u-B", "manual_id": "m-1"})
    event_id = api.get("/v1/sessions/s-B/events").json["items"][0]["event_id"]
    bound = api.as_key(bound_key(api, ["agent"]))
    for response in (bound.get("/v1/analytics/overview"), bound.get("/v1/analytics/popular-manuals"),
                     bound.get("/v1/analytics/recent-activity"), bound.get("/v1/deliveries"),
                     bound.post(f"/v1/events/{event_id}/redeliver"), bound.post("/v1/deliveries/redrive"),
                     bound.post("/v1/keys", {"scopes": ["admin"]}), bound.get("/v1/keys"),
                     bound.get("/v1/inboxes/local/requests", headers={"X-Inbox-Token": "t"})):
        assert_error(response, 403, "forbidden")
    assert [k["user_id"] for k in api.get("/v1/keys").json["items"]].count(None) == 1  # the tests' own


def test_a_bound_admin_key_stored_before_the_rule_still_cannot_escape(api) -> None:
    # GIVEN a key bound to u-A with the admin scope, written as the old code allowed
    token = "ssk_legacy_bound_admin_key_0001"
    item = {**api_keys.key(key_service._digest(token)[:16]), "type": "apikey",
            "key_id": key_service._digest(token)[:16], "hash": key_service._digest(token), "scopes": ["admin"],
            "name": "legacy", "user_id": "u-A", "created_at": "2026-11-01T00:00:00.000000Z",
            "GSI1PK": "APIKEYS", "GSI1SK": key_service._digest(token)[:16]}
    store.put_item(item)
    legacy = api.as_key(token)
    api.post("/v1/manuals", manual_body("m-1", 3))
    api.post("/v1/sessions", {"session_id": "s-B", "user_id": "u-B", "manual_id": "m-1"})
    # THEN it mints no key, lists and revokes none, redrives nothing, reads no analytics
    assert_error(legacy.post("/v1/keys", {"scopes": ["admin"]}), 403, "forbidden")
    assert_error(legacy.get("/v1/keys"), 403, "forbidden")
    assert_error(legacy.delete(f"/v1/keys/{item['key_id']}"), 403, "forbidden")
    assert_error(legacy.post("/v1/deliveries/redrive"), 403, "forbidden")
    assert_error(legacy.get("/v1/analytics/overview"), 403, "forbidden")
    assert_error(legacy.delete("/v1/sessions/s-B"), 403, "forbidden")
    assert api.get("/v1/sessions/s-B").status_code == 200


def test_a_key_never_mints_a_wider_key() -> None:
    admin = auth.Principal("k1", frozenset({"admin"}), None)
    agent = auth.Principal("k2", frozenset({"agent"}), None)
    bound = auth.Principal("k3", frozenset({"agent"}), "u-A")
    assert auth.check_can_mint(admin, auth.KeyCreate(scopes=["admin"])) is None
    assert auth.check_can_mint(admin, auth.KeyCreate(scopes=["agent"], user_id="u-B")) is None
    for principal, body in ((agent, auth.KeyCreate(scopes=["admin"])),
                            (agent, auth.KeyCreate(scopes=["read", "admin"])),
                            (bound, auth.KeyCreate(scopes=["agent"])),
                            (bound, auth.KeyCreate(scopes=["read"], user_id="u-B"))):
        with pytest.raises(auth.Forbidden):
            auth.check_can_mint(principal, body)
    assert auth.check_can_mint(bound, auth.KeyCreate(scopes=["read"], user_id="u-A")) is None
