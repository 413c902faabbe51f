"""Webhook inboxes and health through chalice.test.Client against moto."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.pipeline import webhooks

SECRET = "whsec_" + base64.b64encode(b"inbox-secret-inbox-secret-123456").decode()


PUBLIC_URL = "https://hooks.example.test/api"


@pytest.fixture
def box(api, monkeypatch):
    monkeypatch.setenv("PUBLIC_API_URL", PUBLIC_URL)
    response = api.post("/v1/inboxes", {"name": "mine", "signing_secret": SECRET})
    assert response.status_code == 201
    return response.json


def reads(api, box, path: str = "", **kw):
    return api.get(f"/v1/inboxes/{box['inbox_id']}{path}", headers={"X-Inbox-Token": box["read_token"]}, **kw)


def capture(api, box, method: str, body=b"", headers=None, query: str = ""):
    return api.client.http.request(method, f"/v1/hooks/{box['inbox_id']}{query}",
                                   headers=headers or {}, body=body)


def test_create_inbox_ids_and_conflicts(api, box) -> None:
    assert len(box["inbox_id"]) >= 22  # 128 random bits, url-safe
    assert box["capture_url"] == f"{PUBLIC_URL}/v1/hooks/{box['inbox_id']}"
    assert box["read_token"] and box["verifies_signatures"] is True
    custom = api.post("/v1/inboxes", {"inbox_id": "my-box"})
    assert custom.status_code == 201 and custom.json["inbox_id"] == "my-box"
    taken = api.post("/v1/inboxes", {"inbox_id": "my-box"})
    assert (taken.status_code, taken.json["error"]) == (409, "inbox_exists")
    for bad in ["ab", "has space", "x" * 65, "a/b"]:
        assert api.post("/v1/inboxes", {"inbox_id": bad}).status_code == 400
    assert api.post("/v1/inboxes", {"ttl_days": 31}).status_code == 400


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_every_method_is_captured(api, box, method) -> None:
    response = capture(api, box, method, b"" if method in ("GET", "HEAD") else b'{"a": 1}',
                       {"Content-Type": "application/json", "User-Agent": "tester/1"}, "?x=1&y=two")
    assert response.status_code == 200
    items = reads(api, box, "/requests").json["items"]
    assert len(items) == 1
    captured = items[0]
    assert captured["method"] == method
    assert captured["path"] == f"/v1/hooks/{box['inbox_id']}"  # the real path, not the route
    assert captured["query"] == {"x": "1", "y": "two"}
    assert captured["user_agent"] == "tester/1"
    assert captured["received_at"] and captured["source_ip"]


def test_text_and_binary_bodies(api, box) -> None:
    capture(api, box, "POST", "héllo".encode(), {"Content-Type": "text/plain"})
    blob = bytes(range(256))
    capture(api, box, "POST", blob, {"Content-Type": "application/octet-stream"})
    binary, text = reads(api, box, "/requests").json["items"]
    assert (text["body_encoding"], text["body"], text["size_bytes"]) == ("text", "héllo", 6)
    assert binary["body_encoding"] == "base64" and base64.b64decode(binary["body"]) == blob
    assert binary["size_bytes"] == 256


def test_size_limit_and_large_bodies(api, box) -> None:
    big = b"x" * (1024 * 1024)
    assert capture(api, box, "POST", big, {"Content-Type": "text/plain"}).status_code == 200
    full = reads(api, box, f"/requests/{reads(api, box, '/requests').json['items'][0]['request_id']}").json
    assert full["body"] == big.decode() and full["size_bytes"] == len(big)
    too_big = capture(api, box, "POST", big + b"x", {"Content-Type": "text/plain"})
    assert too_big.status_code == 413
    assert json.loads(too_big.body)["error"] == "payload_too_large"
    assert len(reads(api, box, "/requests").json["items"]) == 1


def test_sensitive_headers_are_masked(api, box, monkeypatch) -> None:
    monkeypatch.setenv("INBOX_MASKED_HEADERS", "X-Secret-Thing")
    capture(api, box, "POST", b"{}", {"Content-Type": "application/json", "Authorization": "Bearer abc",
                                      "Cookie": "s=1", "X-Api-Key": "k", "X-Secret-Thing": "v",
                                      "X-Visible": "shown"})
    headers = {k.lower(): v for k, v in reads(api, box, "/requests").json["items"][0]["headers"].items()}
    assert headers["authorization"] == headers["cookie"] == headers["x-api-key"] == headers["x-secret-thing"] == "***"
    assert headers["x-visible"] == "shown"


def test_newest_first_with_pagination_and_method_filter(api, box) -> None:
    for n in range(12):
        capture(api, box, "POST" if n % 3 else "PUT", json.dumps({"n": n}).encode(), {"Content-Type": "application/json"})
    seen, cursor = [], None
    while True:
        page = reads(api, box, "/requests?limit=5" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [json.loads(i["body"])["n"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(range(12)))
    puts = reads(api, box, "/requests?method=put&limit=100").json["items"]
    assert [json.loads(i["body"])["n"] for i in puts] == [9, 6, 3, 0]


def test_custom_response(api) -> None:
    box = api.post("/v1/inboxes", {"response": {"status": 202, "body": "accepted", "content_type": "text/plain"}}).json
    response = capture(api, box, "POST", b"x", {"Content-Type": "text/plain"})
    assert (response.status_code, response.body, response.headers["Content-Type"]) == (202, b"accepted", "text/plain")


def test_read_token_is_required_and_reveals_nothing(api, box) -> None:
    path = f"/v1/inboxes/{box['inbox_id']}/requests"
    missing = api.get(path)
    assert (missing.status_code, missing.json["error"]) == (401, "token_required")
    wrong = api.get(path, headers={"X-Inbox-Token": "guess"})
    nobody = api.get("/v1/inboxes/no-such-box/requests", headers={"X-Inbox-Token": "guess"})
    # a wrong token and a missing inbox get the same answer
    assert wrong.status_code == nobody.status_code == 404
    assert wrong.json["error"] == nobody.json["error"] == "inbox_not_found"
    assert wrong.json["message"].replace(box["inbox_id"], "X") == nobody.json["message"].replace("no-such-box", "X")


def test_pause_resume_and_delete(api, box) -> None:
    token = {"X-Inbox-Token": box["read_token"]}
    paused = api.patch(f"/v1/inboxes/{box['inbox_id']}", {"paused": True}, headers=token)
    assert paused.status_code == 200 and paused.json["paused"] is True
    assert capture(api, box, "POST", b"{}", {"Content-Type": "application/json"}).status_code == 410
    assert reads(api, box, "/requests").json["items"] == []
    api.patch(f"/v1/inboxes/{box['inbox_id']}", {"paused": False}, headers=token)
    assert capture(api, box, "POST", b"{}", {"Content-Type": "application/json"}).status_code == 200
    assert api.delete(f"/v1/inboxes/{box['inbox_id']}", headers=token).status_code == 204
    assert capture(api, box, "POST", b"{}", {"Content-Type": "application/json"}).status_code == 404
    assert reads(api, box, "/requests").status_code == 404


def test_expired_captures_are_never_returned(api, aws, box) -> None:
    capture(api, box, "POST", b"old", {"Content-Type": "text/plain"})
    capture(api, box, "POST", b"new", {"Content-Type": "text/plain"})
    old = reads(api, box, "/requests").json["items"][1]
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name, Key={"PK": {"S": f"INBOX#{box['inbox_id']}"}, "SK": {"S": f"REQ#{old['request_id']}"}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "1"}})
    assert [i["body"] for i in reads(api, box, "/requests").json["items"]] == ["new"]
    assert reads(api, box, f"/requests/{old['request_id']}").status_code == 404


def test_signature_verdicts(api, box) -> None:
    # each with its own webhook-id: a repeated id with the same body is a duplicate, not stored
    body = webhooks.dumps({"event_type": "session_created", "event_id": "evt_1"})
    good = webhooks.signed_headers(SECRET, "evt_1", body)
    stale_body = body.replace("evt_1", "evt_3")
    stale = webhooks.signed_headers(SECRET, "evt_3", stale_body, now=datetime.now(UTC) - timedelta(minutes=10))
    cases = [
        (body, good, {"verified": True, "reason": None}),
        (body.replace("created", "hacked"), good, {"verified": False, "reason": "bad_signature"}),
        (stale_body, stale, {"verified": False, "reason": "stale_timestamp"}),
        (body.replace("evt_1", "evt_4"), {"webhook-id": "evt_4"}, {"verified": False, "reason": "missing_headers"}),
    ]
    for payload, headers, _ in cases:
        capture(api, box, "POST", payload.encode(), {"Content-Type": "application/json", **headers})
    verdicts = [i["signature"] for i in reversed(reads(api, box, "/requests").json["items"])]
    assert verdicts == [expected for _, _, expected in cases]


def test_health(api, aws) -> None:
    assert api.get("/health/live").json == {"status": "ok"}
    ready = api.get("/health/ready")
    assert ready.status_code == 200 and ready.json["checks"] == {"table": "ok", "queue": "ok"}
    summary = api.get("/health").json
    assert summary["status"] == "ok" and summary["version"]
    boto3.client("sqs").delete_queue(QueueUrl=aws.delivery_queue_url)
    down = api.get("/health/ready")
    assert down.status_code == 503 and down.json["checks"]["queue"].startswith("error")
    assert down.json["checks"]["table"] == "ok"


@pytest.mark.parametrize("text", ["€" * 150_000, "€" * 349_525, "é" * 524_288, "😀" * 262_144])
def test_multi_byte_bodies_up_to_1_mb_are_stored_whole(api, box, text) -> None:
    # GIVEN a text body of up to 1 MB whose characters are 2-4 bytes each
    body = text.encode()
    assert len(body) <= 1024 * 1024
    # WHEN it is captured THEN it is stored (items are sized in bytes, not characters)
    response = capture(api, box, "POST", body, {"Content-Type": "text/plain; charset=utf-8"})
    assert response.status_code == 200, response.body[:300]
    request_id = reads(api, box, "/requests").json["items"][0]["request_id"]
    full = reads(api, box, f"/requests/{request_id}").json
    assert full["body"] == text and full["size_bytes"] == len(body)


def test_large_headers_count_towards_the_item_size(api, box) -> None:
    # GIVEN a 300 KB body with three 60 KB headers
    headers = {"Content-Type": "text/plain", **{f"X-Big-{n}": "h" * 60_000 for n in range(3)}}
    response = capture(api, box, "POST", b"b" * 300_000, headers)
    # THEN it is stored whole, headers included
    assert response.status_code == 200, response.body[:300]
    request_id = reads(api, box, "/requests").json["items"][0]["request_id"]
    full = reads(api, box, f"/requests/{request_id}").json
    stored = {k.lower(): v for k, v in full["headers"].items()}
    assert full["body"] == "b" * 300_000 and stored["x-big-2"] == "h" * 60_000


def test_headers_too_large_for_any_item_are_a_431(api, box) -> None:
    headers = {"Content-Type": "text/plain", **{f"X-Big-{n}": "h" * 60_000 for n in range(8)}}
    response = capture(api, box, "POST", b"small", headers)
    assert response.status_code == 431, response.body[:300]
    assert json.loads(response.body)["error"] == "headers_too_large"
    assert reads(api, box, "/requests").json["items"] == []


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example:666", "X-Forwarded-Proto": "javascript"},
    {"Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
])
def test_capture_url_never_comes_from_request_headers(api, monkeypatch, headers) -> None:
    # GIVEN the API's public URL in configuration, WHEN a request names another host
    monkeypatch.setenv("PUBLIC_API_URL", PUBLIC_URL)
    created = api.post("/v1/inboxes", {}, headers=headers).json
    # THEN the capture URL is built from configuration alone
    assert created["capture_url"] == f"{PUBLIC_URL}/v1/hooks/{created['inbox_id']}"
    # AND without configuration nor an API Gateway context there is no URL to give, not a guess
    monkeypatch.delenv("PUBLIC_API_URL")
    unknown = api.post("/v1/inboxes", {}, headers=headers).json
    assert unknown["capture_url"] is None
    assert unknown["capture_path"] == f"/v1/hooks/{unknown['inbox_id']}"


@pytest.mark.parametrize("configured,context,expected", [
    (None, {"domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "stage": "api"},
     "https://abc123.execute-api.eu-west-1.amazonaws.com/api"),
    ("https://hooks.example.com/api/", {"domainName": "abc.execute-api.eu-west-1.amazonaws.com", "stage": "api"},
     "https://hooks.example.com/api"),
    ("http://127.0.0.1:8000/api", {}, "http://127.0.0.1:8000/api"),
    (None, {"domainName": "evil.example:666/x", "stage": "api"}, None),
    (None, {"domainName": "abc.example", "stage": "api/../x"}, None),
    ("javascript://evil.example/api", {}, None),
    ("https://user:pw@hooks.example.com/api", {}, None),
    ("https://hooks.example.com/api?x=1", {}, None),
    (None, {}, None),
])
def test_capture_base_url_is_http_s_from_configuration_or_the_gateway(configured, context, expected) -> None:
    from chalicelib.inbox import captures as inbox

    assert inbox.public_base_url(configured, context) == expected
