"""Inboxes as the inspector and the connector we replace: destinations (validated, SSRF
guard at registration), deduplication by webhook-id / Idempotency-Key, conflicts, and the
per-hour metrics, through chalice.test.Client against moto."""

from __future__ import annotations

import base64
import hashlib

import pytest

from chalicelib.config import get_settings
from chalicelib.pipeline import webhooks

SECRET = "whsec_" + base64.b64encode(b"relay-secret-relay-secret-123456").decode()


@pytest.fixture
def box(api):
    response = api.post("/v1/inboxes", {"name": "relay", "signing_secret": SECRET})
    assert response.status_code == 201
    return response.json


def reads(api, box, path: str = ""):
    return api.get(f"/v1/inboxes/{box['inbox_id']}{path}", headers={"X-Inbox-Token": box["read_token"]})


def send(api, box, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"):
    return api.client.http.request(method, f"/v1/hooks/{box['inbox_id']}", headers=headers or {}, body=body)


def test_destinations_are_listed_set_and_cleared(api, box) -> None:
    # GIVEN an inbox without destinations
    assert box["forward_to"] == []
    urls = [f"http://127.0.0.1:{9000 + n}/in" for n in range(5)]
    # WHEN five are set, THEN the inbox lists them; [] clears them
    patched = api.patch(f"/v1/inboxes/{box['inbox_id']}", {"forward_to": urls},
                        headers={"X-Inbox-Token": box["read_token"]})
    assert patched.status_code == 200 and patched.json["forward_to"] == urls
    assert reads(api, box).json["forward_to"] == urls
    cleared = api.patch(f"/v1/inboxes/{box['inbox_id']}", {"forward_to": []},
                        headers={"X-Inbox-Token": box["read_token"]})
    assert cleared.json["forward_to"] == []
    created = api.post("/v1/inboxes", {"forward_to": urls[:2]})
    assert created.status_code == 201 and created.json["forward_to"] == urls[:2]


@pytest.mark.parametrize(("urls", "words"), [
    ([f"http://127.0.0.1:{9000 + n}/in" for n in range(6)], "at most 5"),
    (["http://127.0.0.1:9000/a", "http://127.0.0.1:9000/a"], "listed twice"),
    (["file:///etc/passwd"], "http or https"),
    (["http://169.254.169.254/latest/meta-data/"], "metadata"),
    (["http://[::ffff:169.254.169.254]/"], "metadata"),
    (["http://user:pw@127.0.0.1/"], "credentials"),
    (["http://127.0.0.1:99999/"], "port"),
    (["http:///nohost"], "host"),
    (["http://127.0.0.1/a b"], "spaces"),
])
def test_refused_destinations_are_a_400_naming_the_field(api, box, urls, words) -> None:
    for response in (api.post("/v1/inboxes", {"forward_to": urls}),
                     api.patch(f"/v1/inboxes/{box['inbox_id']}", {"forward_to": urls},
                               headers={"X-Inbox-Token": box["read_token"]})):
        assert response.status_code == 400, response.json
        assert response.json["error"] == "validation_error"
        text = str(response.json)
        assert "forward_to" in text and words in text, text
    assert reads(api, box).json["forward_to"] == []


@pytest.mark.parametrize("url", ["http://example.com/hook", "https://10.0.0.7/hook", "https://127.0.0.1/",
                                 "https://localhost:8443/", "https://[fd00::1]/", "https://192.168.1.1/"])
def test_on_aws_destinations_must_be_https_and_outside_the_network(api, monkeypatch, url) -> None:
    # GIVEN the setting of a deployed stack: no private targets
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    get_settings.cache_clear()
    response = api.post("/v1/inboxes", {"forward_to": [url]})
    assert (response.status_code, response.json["error"]) == (400, "validation_error"), response.json
    assert api.post("/v1/inboxes", {"forward_to": ["https://hooks.example.com/in"]}).status_code == 201


def test_same_key_same_body_is_counted_not_stored(api, box) -> None:
    # GIVEN a sender retrying one webhook three times (same webhook-id, same body)
    for _ in range(3):
        assert send(api, box, b'{"n": 1}', {"webhook-id": "msg_1", "Content-Type": "application/json"}).status_code == 200
    # THEN one capture is stored, and it says it arrived twice more
    items = reads(api, box, "/requests").json["items"]
    assert len(items) == 1
    first = items[0]
    assert (first["idempotency_key"], first["duplicates"], first["conflict"], first["conflict_with"]) == (
        "msg_1", 2, False, None)
    assert reads(api, box, f"/requests/{first['request_id']}").json["duplicates"] == 2


def test_same_key_other_body_is_stored_and_flagged_conflict(api, box) -> None:
    assert send(api, box, b"first", {"Idempotency-Key": "order-7"}).status_code == 200
    assert send(api, box, b"changed", {"Idempotency-Key": "order-7"}).status_code == 200
    assert send(api, box, b"changed", {"Idempotency-Key": "order-7"}).status_code == 200  # a retry of the change
    assert send(api, box, b"first", {"Idempotency-Key": "order-7"}).status_code == 200
    newest, oldest = reads(api, box, "/requests").json["items"]
    assert (oldest["body"], oldest["conflict"], oldest["duplicates"]) == ("first", False, 1)
    assert (newest["body"], newest["conflict"], newest["conflict_with"], newest["duplicates"]) == (
        "changed", True, oldest["request_id"], 1)
    one = reads(api, box, f"/requests/{newest['request_id']}").json
    assert one["conflict"] is True and one["conflict_with"] == oldest["request_id"]


def test_without_a_key_every_request_is_stored(api, box) -> None:
    for _ in range(2):
        send(api, box, b"same")
    send(api, box, b"same", {"webhook-id": "  "})  # a blank key is none
    items = reads(api, box, "/requests").json["items"]
    assert len(items) == 3 and all(i["idempotency_key"] is None and i["duplicates"] == 0 for i in items)


def test_keys_are_per_inbox(api, box) -> None:
    other = api.post("/v1/inboxes", {}).json
    send(api, box, b"x", {"webhook-id": "shared"})
    send(api, other, b"x", {"webhook-id": "shared"})
    assert len(reads(api, box, "/requests").json["items"]) == 1
    assert len(reads(api, other, "/requests").json["items"]) == 1


def test_metrics_count_captures_answers_verdicts_duplicates_and_conflicts(api, box) -> None:
    body = webhooks.dumps({"event_id": "evt_9"})
    signed = webhooks.signed_headers(SECRET, "evt_9", body)
    send(api, box, body.encode(), signed)
    send(api, box, body.encode(), signed)  # duplicate
    send(api, box, b'{"x": 2}', signed)  # conflict (and a bad signature)
    send(api, box, b"no signature")  # missing headers
    # a paused inbox answers 410 and counts nothing (it costs no write)
    token = {"X-Inbox-Token": box["read_token"]}
    api.patch(f"/v1/inboxes/{box['inbox_id']}", {"paused": True}, headers=token)
    from chalicelib.inbox import captures

    captures.forget_inboxes()
    assert send(api, box, b"paused").status_code == 410
    metrics = reads(api, box, "/metrics?hours=3").json
    assert [h["hour"] for h in metrics["hours"]] == sorted(h["hour"] for h in metrics["hours"])
    assert len(metrics["hours"]) == 3 and metrics["hours"][0]["captures"] == 0
    now = metrics["hours"][-1]
    assert (now["captures"], now["duplicates"], now["conflicts"]) == (4, 1, 1)
    assert now["answered"] == {"200": 4}
    assert now["signatures"] == {"verified": 2, "bad_signature": 1, "missing_headers": 1}
    assert metrics["totals"]["captures"] == 4
    assert api.get(f"/v1/inboxes/{box['inbox_id']}/metrics").status_code == 401
    assert reads(api, box, "/metrics?hours=0").status_code == 400


def test_past_the_bodies_a_key_records_each_new_body_is_still_a_conflict(api, box, monkeypatch) -> None:
    from chalicelib.db import inbox as records

    monkeypatch.setattr(records, "MAX_BODIES_PER_KEY", 2)
    for body in (b"a", b"b", b"c", b"c"):
        send(api, box, body, {"webhook-id": "k"})
    items = {i["body"]: i for i in reads(api, box, "/requests").json["items"]}
    # the third body is not recorded under the key: stored (each time), flagged against the first
    assert [items[b]["conflict"] for b in ("a", "b", "c")] == [False, True, True]
    assert items["c"]["conflict_with"] == items["a"]["request_id"]
    assert len(reads(api, box, "/requests").json["items"]) == 4  # a, b, c, c


def test_a_key_outliving_its_first_capture_starts_afresh(api, aws, box) -> None:
    import boto3

    from chalicelib.db import inbox as records

    # GIVEN a key whose first capture has expired (DynamoDB's TTL has not deleted its marker yet)
    send(api, box, b"old", {"webhook-id": "k2"})
    (old,) = reads(api, box, "/requests").json["items"]
    marker = records.dedup_key(box["inbox_id"], hashlib.sha256(b"k2").hexdigest()[:32])
    boto3.client("dynamodb").update_item(
        TableName=aws.environment()["TABLE_NAME"], Key={k: {"S": v} for k, v in marker.items()},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "1"}})
    # WHEN the same key arrives again, with the same body
    send(api, box, b"old", {"webhook-id": "k2"})
    # THEN it is stored as new: nothing to be a duplicate of
    newest = reads(api, box, "/requests").json["items"][0]
    assert newest["request_id"] != old["request_id"]
    assert (newest["duplicates"], newest["conflict"]) == (0, False)


def test_round_trips_per_capture_stay_few_and_a_paused_inbox_writes_nothing(api, box) -> None:
    from collections import Counter

    from chalicelib.db import table as store
    from chalicelib.inbox import captures

    used: Counter = Counter()
    store.get_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: used.update([event_name.rsplit(".", 1)[-1]]))
    send(api, box, b"warm")  # the inbox's record is read once, then cached

    def measure(*args) -> Counter:
        used.clear()
        assert send(api, box, *args).status_code in (200, 410)
        return Counter(used)

    # a capture: its PutItem and the hour's counter; with a key, the key's marker first
    assert measure(b"a") == {"PutItem": 1, "UpdateItem": 1}
    assert measure(b"b", {"webhook-id": "rt"}) == {"UpdateItem": 2, "PutItem": 1}
    # a duplicate: the marker and the counter, no capture written
    assert measure(b"b", {"webhook-id": "rt"}) == {"UpdateItem": 2}
    # a paused inbox: nothing at all once its record is cached
    api.patch(f"/v1/inboxes/{box['inbox_id']}", {"paused": True}, headers={"X-Inbox-Token": box["read_token"]})
    captures.forget_inboxes()
    send(api, box, b"warm")
    assert measure(b"c", {"webhook-id": "rt2"}) == {}
    # reading: one Query and one BatchGetItem for the page's markers and forward logs
    used.clear()
    assert reads(api, box, "/requests").status_code == 200
    assert used == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
