"""Chat messages (Type A) through chalice.test.Client against moto."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def test_post_message_both_routes(api, make_session) -> None:
    sid = make_session()["session_id"]
    a = api.post("/v1/messages", {"session_id": sid, "user_id": "user-1",
                                  "message": "I have completed the first step.", "sender": "user"})
    assert a.status_code == 201
    assert a.json["message_id"].startswith("msg_") and a.json["created_at"]
    b = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "message": "Great, next.",
                                                 "sender": "agent"})
    assert b.status_code == 201
    listed = api.get(f"/v1/sessions/{sid}/messages").json["items"]
    assert [(m["sender"], m["message"]) for m in listed] == [
        ("user", "I have completed the first step."), ("agent", "Great, next.")]
    assert api.get(f"/v1/sessions/{sid}").json["message_count"] == 2


def test_repeated_message_id_stores_once(api, make_session) -> None:
    sid = make_session()["session_id"]
    body = {"user_id": "user-1", "message": "hello", "sender": "user", "message_id": "m-1"}
    first = api.post(f"/v1/sessions/{sid}/messages", body)
    again = api.post(f"/v1/sessions/{sid}/messages", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    other = api.post(f"/v1/sessions/{sid}/messages", {**body, "message": "different"})
    assert (other.status_code, other.json["error"]) == (422, "idempotency_key_reused")
    # the Idempotency-Key header works the same way
    hdr = {"user_id": "user-1", "message": "retry me", "sender": "agent"}
    h1 = api.post(f"/v1/sessions/{sid}/messages", hdr, headers={"Idempotency-Key": "k-9"})
    h2 = api.post(f"/v1/sessions/{sid}/messages", hdr, headers={"Idempotency-Key": "k-9"})
    assert (h1.status_code, h2.status_code) == (201, 200) and h1.json == h2.json
    assert len(api.get(f"/v1/sessions/{sid}/messages").json["items"]) == 2
    assert api.get(f"/v1/sessions/{sid}").json["message_count"] == 2


def test_a_malformed_idempotency_key_is_refused_even_beside_a_message_id(api, make_session) -> None:
    # GIVEN a message with its own message_id and an Idempotency-Key the document refuses
    sid = make_session()["session_id"]
    body = {"user_id": "user-1", "message": "hello", "sender": "user", "message_id": "m-1"}
    for path, sent in ((f"/v1/sessions/{sid}/messages", body), ("/v1/messages", {**body, "session_id": sid})):
        # WHEN it is sent
        answer = api.post(path, sent, headers={"Idempotency-Key": "has space"})
        # THEN it is a 400 naming the header, and nothing is stored
        assert (answer.status_code, answer.json["error"]) == (400, "validation_error"), answer.json
        assert answer.json["fields"] == [{"field": "Idempotency-Key", "message": "invalid format"}]
    assert api.get(f"/v1/sessions/{sid}/messages").json["items"] == []


def test_concurrent_duplicates_store_once(api, make_session) -> None:
    sid = make_session()["session_id"]
    body = {"user_id": "user-1", "message": "once", "sender": "user", "message_id": "dup"}
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(r.status_code for r in pool.map(
            lambda _: api.post(f"/v1/sessions/{sid}/messages", body), range(8)))
    assert codes == [200] * 7 + [201]
    assert len(api.get(f"/v1/sessions/{sid}/messages").json["items"]) == 1


def test_message_size_limit(api, make_session) -> None:
    sid = make_session()["session_id"]
    ok = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "sender": "user",
                                                  "message": "é" * (16 * 1024)})  # 32 KB in UTF-8
    assert ok.status_code == 201
    big = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "sender": "user",
                                                   "message": "x" * (32 * 1024 + 1)})
    assert (big.status_code, big.json["error"]) == (413, "message_too_large")
    assert len(api.get(f"/v1/sessions/{sid}/messages").json["items"]) == 1


def test_message_errors(api, make_session) -> None:
    sid = make_session()["session_id"]
    missing = api.post("/v1/sessions/ghost/messages", {"user_id": "u", "message": "x", "sender": "user"})
    assert (missing.status_code, missing.json["error"]) == (404, "session_not_found")
    stranger = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "u-2", "message": "x", "sender": "user"})
    assert (stranger.status_code, stranger.json["error"]) == (403, "user_mismatch")
    for bad in [{"user_id": "user-1", "message": "", "sender": "user"},
                {"user_id": "user-1", "message": "x", "sender": "robot"},
                {"user_id": "user-1", "sender": "user"},
                {"user_id": "user-1", "message": 5, "sender": "user"}]:
        response = api.post(f"/v1/sessions/{sid}/messages", bad)
        assert (response.status_code, response.json["error"]) == (400, "validation_error"), bad
    assert api.post("/v1/messages", {"user_id": "user-1", "message": "x", "sender": "user"}).status_code == 400
    assert api.get(f"/v1/sessions/{sid}/messages").json["items"] == []


def test_messages_keep_order_and_paginate(api, make_session) -> None:
    sid = make_session()["session_id"]
    sent = [f"message {n}" for n in range(30)]
    for text in sent:
        assert api.post(f"/v1/sessions/{sid}/messages",
                        {"user_id": "user-1", "message": text, "sender": "user"}).status_code == 201
    got, cursor = [], None
    while True:
        page = api.get(f"/v1/sessions/{sid}/messages?limit=7" + (f"&cursor={cursor}" if cursor else "")).json
        got += [m["message"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == sent
    # re-reading gives the same order: it is stable
    again = [m["message"] for m in api.get(f"/v1/sessions/{sid}/messages?limit=100").json["items"]]
    assert again == sent
