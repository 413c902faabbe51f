"""`make run`'s stack (python -m infra.local) in a subprocess, used over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


AUTH: dict[str, str] = {}  # the local stack's dev admin key, set by the `stack` fixture


def call(method: str, url: str, body: object = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def stack(local_stack) -> dict[str, str]:
    AUTH["Authorization"] = f"Bearer {local_stack['api_key']}"
    return local_stack


@pytest.fixture(scope="module")
def base_url(stack) -> str:
    return stack["api"]


def test_walkthrough_over_http(base_url: str, stack) -> None:
    manual = {"manual_id": "walk-m1", "title": "Demo", "steps": [
        {"step_number": 1, "title": "One", "content": "first"},
        {"step_number": 2, "title": "Two", "content": "second"}]}
    assert call("POST", f"{base_url}/v1/manuals", manual)[0] == 201
    status, session = call("POST", f"{base_url}/v1/sessions", {"session_id": "walk-s1", "user_id": "u1", "manual_id": "walk-m1"})
    assert status == 201 and session["status"] == "active"
    assert call("POST", f"{base_url}/v1/messages", {"session_id": "walk-s1", "user_id": "u1", "message": "hi", "sender": "user"})[0] == 201
    status, result = call("POST", f"{base_url}/v1/sessions/walk-s1/progress",
                          {"user_id": "u1", "current_step": 1, "step_status": "DONE"},
                          headers={"Idempotency-Key": "k1"})
    assert status == 200 and result["next_step"]["title"] == "Two"
    status, replay = call("POST", f"{base_url}/v1/sessions/walk-s1/progress",
                          {"user_id": "u1", "current_step": 1, "step_status": "DONE"},
                          headers={"Idempotency-Key": "k1"})
    assert replay["status"] == "already_processed"
    status, nxt = call("GET", f"{base_url}/v1/sessions/walk-s1/next-step")
    assert nxt["next_step"]["step_number"] == 2
    status, done = call("POST", f"{base_url}/v1/sessions/walk-s1/progress", {"user_id": "u1", "current_step": 2, "step_status": "DONE"})
    assert done["session"]["status"] == "completed"
    # the same paths answer without the /api stage prefix too
    root = base_url.removesuffix("/api")
    assert call("GET", f"{root}/v1/sessions/walk-s1")[1]["status"] == "completed"
    # the pipeline runs too: the app's own inbox `local` got every webhook, signed, in order
    token = {"X-Inbox-Token": "test-token"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        everything = call("GET", stack["webhooks"] + "?limit=100", headers=token)[1]["items"]
        received = [w for w in everything if '"session_id":"walk-s1"' in (w["body"] or "")]
        if len(received) >= 4:
            break
        time.sleep(0.2)
    oldest_first = list(reversed(received))
    assert [json.loads(w["body"])["event_type"] for w in oldest_first] == [
        "session_created", "progress_update", "progress_update", "session_ended"]
    assert all(w["signature"] == {"verified": True, "reason": None} for w in received)
    assert all(w["method"] == "POST" and w["headers"]["webhook-id"].startswith("evt_") for w in received)
    events = call("GET", f"{base_url}/v1/sessions/walk-s1/events")[1]["items"]
    assert {e["delivery_status"] for e in events} == {"delivered"}


def test_unknown_route_and_bad_json_are_json_4xx(base_url: str) -> None:
    status, body = call("GET", f"{base_url}/v1/nothing-here")
    assert status == 404 and body["error"] == "route_not_found"
    request = urllib.request.Request(f"{base_url}/v1/sessions", data=b"{oops", method="POST",
                                     headers={"Content-Type": "application/json", **AUTH})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and json.loads(err.value.read())["error"] == "invalid_json"


def test_api_keys_over_http_401_403_as_deployed(base_url: str) -> None:
    """The local gateway answers 401/403 with the same JSON bodies as the deployed
    GatewayResponses (infra/package.py), and a 403 is not mistaken for a missing route."""
    status, body = call("GET", f"{base_url}/v1/sessions", headers={"Authorization": ""})
    assert status == 401 and body["error"] == "unauthorized"
    status, body = call("GET", f"{base_url}/v1/sessions", headers={"Authorization": "Bearer ssk_nope"})
    assert status == 401 and body["error"] == "unauthorized"
    status, created = call("POST", f"{base_url}/v1/keys", {"scopes": ["read"], "name": "ro"})
    assert status == 201
    reader = {"Authorization": f"Bearer {created['key']}"}
    assert call("GET", f"{base_url}/v1/sessions", headers=reader)[0] == 200
    status, body = call("POST", f"{base_url}/v1/manuals", {"manual_id": "x"}, headers=reader)
    assert status == 403 and body["error"] == "forbidden"
    assert call("DELETE", f"{base_url}/v1/keys/{created['key_id']}")[0] == 204
    assert call("GET", f"{base_url}/v1/sessions", headers=reader)[0] == 401
    # health and capture stay open
    assert call("GET", f"{base_url}/health/live", headers={"Authorization": ""})[0] == 200
