"""Webhook endpoints as a resource: create (secret shown once), list (paginated), read,
change, delete, rotate; admin only; refused URLs (SSRF guard, https on AWS); at most 20."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from chalicelib.config import get_settings
from chalicelib.db import table as store


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"))


def new_endpoint(api, url: str = "http://127.0.0.1:9/hook", **fields) -> dict:
    response = api.post("/v1/webhook-endpoints", {"url": url, **fields})
    assert response.status_code == 201, response.json
    return response.json


def test_an_endpoint_is_created_read_changed_and_deleted(api) -> None:
    # WHEN an endpoint is registered
    created = new_endpoint(api, description="LMS", event_types=["session_ended", "session_created"])
    # THEN its secret is whsec_ + base64 of 24 random bytes, shown in this answer only
    assert len(secret_bytes(created["secret"])) >= 24
    endpoint_id = created["endpoint_id"]
    assert endpoint_id.startswith("ep_") and created["enabled"] is True
    assert created["event_types"] == ["session_created", "session_ended"]
    read = api.get(f"/v1/webhook-endpoints/{endpoint_id}")
    assert read.status_code == 200 and "secret" not in read.json
    assert read.json["stats"] == {"attempts": 0, "delivered": 0, "success_rate": None, "p50_latency_ms": None,
                                  "p99_latency_ms": None, "last_error": None, "last_error_at": None,
                                  "last_success_at": None, "failing_since": None,
                                  "recent_attempts": []}
    # AND it can be changed: url, description, filter (null: every event), enabled
    changed = api.patch(f"/v1/webhook-endpoints/{endpoint_id}", {"event_types": None, "enabled": False,
                                                                  "url": "http://127.0.0.1:10/other"})
    assert changed.status_code == 200, changed.json
    assert changed.json["event_types"] is None and changed.json["enabled"] is False
    assert changed.json["disabled_reason"] == "disabled through the API"
    assert changed.json["url"] == "http://127.0.0.1:10/other" and changed.json["description"] == "LMS"
    # re-enabling offers the replay of what it missed
    enabled = api.patch(f"/v1/webhook-endpoints/{endpoint_id}", {"enabled": True})
    assert enabled.json["enabled"] is True and enabled.json["disabled_reason"] is None
    assert enabled.json["replay_hint"] == {"since": changed.json["disabled_at"]}
    # AND deleted
    assert api.delete(f"/v1/webhook-endpoints/{endpoint_id}").status_code == 204
    gone = api.get(f"/v1/webhook-endpoints/{endpoint_id}")
    assert gone.status_code == 404 and gone.json["error"] == "endpoint_not_found"
    assert api.delete(f"/v1/webhook-endpoints/{endpoint_id}").json["error"] == "endpoint_not_found"


def test_the_list_is_paginated(api) -> None:
    made = {new_endpoint(api)["endpoint_id"] for _ in range(3)}
    seen, cursor = [], None
    while True:
        page = api.get("/v1/webhook-endpoints?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["items"]) <= 2
        seen += [e["endpoint_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(seen) == made and len(seen) == 3
    assert api.get("/v1/webhook-endpoints?cursor=bogus").json["error"] == "invalid_cursor"


def test_only_admin_keys_manage_endpoints(api) -> None:
    read_key = api.post("/v1/keys", {"scopes": ["read", "agent"]}).json["key"]
    for method, path in [("GET", "/v1/webhook-endpoints"), ("POST", "/v1/webhook-endpoints"),
                         ("GET", "/v1/webhook-endpoints/default")]:
        response = api.as_key(read_key).request(method, path, {"url": "http://127.0.0.1:9/x"})
        assert response.status_code == 403, (method, path, response.json)
        assert response.json["error"] == "forbidden"
    assert api.as_key(None).get("/v1/webhook-endpoints").status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"url": "http://127.0.0.1:9/x", "event_types": ["progress_update:ONGOING"]}, "event_types.0"),
    ({"url": "http://127.0.0.1:9/x", "event_types": []}, "event_types"),
    ({"url": "http://127.0.0.1:9/x", "secret": "whsec_mine"}, "secret"),
    ({"url": "not a url"}, "url"),
    ({}, "url"),
])
def test_bad_bodies_are_refused_field_by_field(api, body, field) -> None:
    response = api.post("/v1/webhook-endpoints", body)
    assert response.status_code == 400 and response.json["error"] == "validation_error"
    assert field in [f["field"] for f in response.json["fields"]], response.json


@pytest.mark.parametrize("url, why", [
    ("http://169.254.169.254/latest/meta-data", "metadata"),  # refused even locally
    ("ftp://127.0.0.1/x", "scheme"),
    ("http://no-such-host.invalid/x", "did not resolve"),
])
def test_refused_urls_answer_400(api, url, why) -> None:
    response = api.post("/v1/webhook-endpoints", {"url": url})
    assert response.status_code == 400 and response.json["error"] == "endpoint_url_refused", response.json
    assert why in response.json["message"]
    assert api.get("/v1/webhook-endpoints").json["items"] == []


def test_on_aws_only_https_to_public_addresses(api, monkeypatch) -> None:
    # GIVEN the configuration of AWS (no private targets: the SSRF guard refuses them)
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    get_settings.cache_clear()
    for url, why in [("http://127.0.0.1:9/x", "https"), ("https://127.0.0.1:9/x", "private"),
                     ("https://10.1.2.3/x", "private")]:
        response = api.post("/v1/webhook-endpoints", {"url": url})
        assert response.status_code == 400 and response.json["error"] == "endpoint_url_refused", url
        assert why in response.json["message"], response.json
    # and a change of URL is checked the same way
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")
    get_settings.cache_clear()
    endpoint_id = new_endpoint(api)["endpoint_id"]
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    get_settings.cache_clear()
    response = api.patch(f"/v1/webhook-endpoints/{endpoint_id}", {"url": "http://127.0.0.1:9/y"})
    assert response.status_code == 400 and response.json["error"] == "endpoint_url_refused"


def test_at_most_twenty_endpoints(api) -> None:
    made = [new_endpoint(api)["endpoint_id"] for _ in range(20)]
    refused = api.post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/x"})
    assert refused.status_code == 409 and refused.json["error"] == "endpoint_limit_reached"
    assert api.delete(f"/v1/webhook-endpoints/{made[0]}").status_code == 204
    assert api.post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/x"}).status_code == 201


def test_rotation_answers_a_new_secret_and_the_grace(api) -> None:
    created = new_endpoint(api)
    path = f"/v1/webhook-endpoints/{created['endpoint_id']}/rotate-secret"
    rotated = api.post(path)  # no body: the default grace, a day
    assert rotated.status_code == 200, rotated.json
    assert rotated.json["secret"] != created["secret"] and len(secret_bytes(rotated.json["secret"])) >= 24
    assert rotated.json["previous_secret_expires_at"] > created["created_at"]
    assert api.post(path, {"grace_seconds": 0}).json["previous_secret_expires_at"] is None
    assert api.post(path, {"grace_seconds": -1}).json["error"] == "validation_error"
    assert api.post("/v1/webhook-endpoints/ep_0000000000000000/rotate-secret").json["error"] == "endpoint_not_found"


def test_a_replay_window_is_checked(api) -> None:
    endpoint_id = new_endpoint(api)["endpoint_id"]
    path = f"/v1/webhook-endpoints/{endpoint_id}/replay"
    for body in [{"since": "yesterday"}, {"since": "2026-11-22T10:00:00.000000Z", "until": "2026-11-22T09:00:00.000000Z"},
                 {"since": "2026-01-01T00:00:00.000000Z", "until": "2026-11-22T09:00:00.000000Z"}, {}]:
        response = api.post(path, body)
        assert response.status_code == 400 and response.json["error"] == "validation_error", (body, response.json)
    bad_cursor = api.post(path, {"since": "2026-11-22T10:00:00.000000Z", "cursor": "bogus"})
    assert bad_cursor.json["error"] == "invalid_cursor"


def test_managing_endpoints_never_touches_the_progress_path(api, make_session) -> None:
    """The progress route's round trips are the same with endpoints registered."""
    for _ in range(3):
        new_endpoint(api)
    session = make_session()
    calls: Counter = Counter()
    store.get_client().meta.events.register("before-call.dynamodb",
                                            lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    response = api.post(f"/v1/sessions/{session['session_id']}/progress",
                        {"user_id": "user-1", "current_step": 1, "step_status": "DONE"})
    assert response.status_code == 200
    assert dict(calls) == {"BatchGetItem": 1, "TransactWriteItems": 1}
