"""Sessions through chalice.test.Client against moto."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from chalicelib.db import table as store
from tests.conftest import manual_body


def test_create_session_returns_the_full_state(api) -> None:
    api.post("/v1/manuals", manual_body("m-1", steps=4))
    response = api.post("/v1/sessions", {"user_id": "u-1", "manual_id": "m-1"})
    assert response.status_code == 201
    s = response.json
    assert s["session_id"]  # generated
    assert (s["status"], s["current_step"], s["total_steps"], s["completed_steps"]) == ("active", 1, 4, [])
    assert s["ended_at"] is None and s["version"] == 1
    assert api.get(f"/v1/sessions/{s['session_id']}").json["session_id"] == s["session_id"]


def test_double_click_creates_one_session(api) -> None:
    api.post("/v1/manuals", manual_body("m-1"))
    body = {"session_id": "s-1", "user_id": "u-1", "manual_id": "m-1"}
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(r.status_code for r in pool.map(lambda _: api.post("/v1/sessions", body), range(8)))
    assert codes == [200] * 7 + [201]
    assert len(api.get("/v1/sessions").json["items"]) == 1
    assert api.get("/v1/manuals/m-1").json["active_sessions"] == 1
    assert len(api.get("/v1/sessions/s-1/events").json["items"]) == 1


def test_same_session_id_for_another_user_conflicts(api) -> None:
    api.post("/v1/manuals", manual_body("m-1"))
    api.post("/v1/manuals", manual_body("m-2"))
    assert api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u-1", "manual_id": "m-1"}).status_code == 201
    for other in [{"user_id": "u-2", "manual_id": "m-1"}, {"user_id": "u-1", "manual_id": "m-2"}]:
        response = api.post("/v1/sessions", {"session_id": "s-1", **other})
        assert (response.status_code, response.json["error"]) == (409, "session_exists")
    assert api.get("/v1/sessions/s-1").json["user_id"] == "u-1"


def test_session_on_unknown_manual(api) -> None:
    response = api.post("/v1/sessions", {"user_id": "u-1", "manual_id": "missing"})
    assert (response.status_code, response.json["error"]) == (404, "manual_not_found")
    assert api.get("/v1/sessions").json["items"] == []


def test_unknown_session(api) -> None:
    for path in ["/v1/sessions/nope", "/v1/sessions/nope/next-step", "/v1/sessions/nope/events",
                 "/v1/sessions/nope/messages"]:
        response = api.get(path)
        assert (response.status_code, response.json["error"]) == (404, "session_not_found"), path
    assert api.patch("/v1/sessions/nope", {"status": "ended"}).status_code == 404
    assert api.delete("/v1/sessions/nope").status_code == 404


def test_duration_is_computed_server_side(api, make_session) -> None:
    s = make_session()
    time.sleep(1.1)
    live = api.get(f"/v1/sessions/{s['session_id']}").json
    assert 1.1 <= live["duration_seconds"] < 5
    ended = api.patch(f"/v1/sessions/{s['session_id']}", {"status": "ended"}).json
    time.sleep(0.3)
    later = api.get(f"/v1/sessions/{s['session_id']}").json
    assert later["duration_seconds"] == ended["duration_seconds"] >= 1.1


def test_end_session_then_refuse_changes(api, make_session) -> None:
    s = make_session()
    sid = s["session_id"]
    ended = api.patch(f"/v1/sessions/{sid}", {"status": "abandoned"})
    assert ended.status_code == 200
    assert (ended.json["status"], ended.json["end_reason"]) == ("abandoned", "abandoned")
    assert ended.json["ended_at"] is not None
    again = api.patch(f"/v1/sessions/{sid}", {"status": "ended"})
    assert (again.status_code, again.json["error"], again.json["session_status"]) == (
        400, "session_ended", "abandoned")
    assert api.patch(f"/v1/sessions/{sid}", {"status": "completed"}).status_code == 400
    events = api.get(f"/v1/sessions/{sid}/events").json["items"]
    assert [e["event_type"] for e in events] == ["session_created", "session_ended"]


def test_list_sessions_with_filters(api) -> None:
    api.post("/v1/manuals", manual_body("m-a", steps=2))
    api.post("/v1/manuals", manual_body("m-b", steps=2))
    for n, (user, manual) in enumerate([("u-1", "m-a"), ("u-1", "m-b"), ("u-2", "m-a"), ("u-2", "m-b")]):
        assert api.post("/v1/sessions", {"session_id": f"s-{n}", "user_id": user, "manual_id": manual}).status_code == 201
    api.patch("/v1/sessions/s-0", {"status": "ended"})

    def ids(query: str) -> list[str]:
        response = api.get(f"/v1/sessions{query}")
        assert response.status_code == 200, response.json
        return sorted(s["session_id"] for s in response.json["items"])

    assert ids("") == ["s-0", "s-1", "s-2", "s-3"]
    assert ids("?status=active") == ["s-1", "s-2", "s-3"]
    assert ids("?status=ended") == ["s-0"]
    assert ids("?user_id=u-1") == ["s-0", "s-1"]
    assert ids("?manual_id=m-a") == ["s-0", "s-2"]
    assert ids("?user_id=u-1&status=active") == ["s-1"]
    assert ids("?user_id=u-2&manual_id=m-b") == ["s-3"]
    assert ids("?manual_id=m-a&status=ended") == ["s-0"]
    bad = api.get("/v1/sessions?status=sleeping")
    assert (bad.status_code, bad.json["error"]) == (400, "validation_error")


def test_list_sessions_pages_newest_first(api) -> None:
    api.post("/v1/manuals", manual_body("m-1", steps=2))
    for n in range(7):
        api.post("/v1/sessions", {"session_id": f"s-{n}", "user_id": "u", "manual_id": "m-1"})
    seen, cursor = [], None
    for _ in range(10):
        page = api.get("/v1/sessions?status=active&limit=3" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [s["session_id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"s-{n}" for n in reversed(range(7))]
    # a cursor of one listing is refused by another
    first = api.get("/v1/sessions?status=active&limit=3").json["next_cursor"]
    assert api.get(f"/v1/sessions?status=ended&cursor={first}").json["error"] == "invalid_cursor"


def test_delete_session_removes_everything(api, make_session) -> None:
    s = make_session(manual_id="m-del")
    sid = s["session_id"]
    api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "message": "hi", "sender": "user"})
    api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": 1,
                                             "step_status": "DONE", "idempotency_key": "k1"})
    assert api.delete(f"/v1/sessions/{sid}").status_code == 204
    assert api.get(f"/v1/sessions/{sid}").status_code == 404
    # the manual's active counter dropped: it can be deleted now
    assert api.delete("/v1/manuals/m-del").status_code == 204
    # a new session under the same id starts clean (no old messages, events or idempotency)
    api.post("/v1/manuals", manual_body("m-del"))
    api.post("/v1/sessions", {"session_id": sid, "user_id": "user-1", "manual_id": "m-del"})
    assert api.get(f"/v1/sessions/{sid}/messages").json["items"] == []
    assert len(api.get(f"/v1/sessions/{sid}/events").json["items"]) == 1
    replay = api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": 1,
                                                      "step_status": "DONE", "idempotency_key": "k1"})
    assert "status" not in replay.json and replay.json["applied"] is True


def test_next_step(api, make_session) -> None:
    s = make_session(steps=2)
    sid = s["session_id"]
    first = api.get(f"/v1/sessions/{sid}/next-step").json
    assert first["is_completed"] is False
    assert first["next_step"] == {"step_number": 1, "title": "Step 1", "content": "Do thing 1.", "total_steps": 2}
    for step in (1, 2):
        api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": step, "step_status": "DONE"})
    done = api.get(f"/v1/sessions/{sid}/next-step").json
    assert done["is_completed"] is True and done["next_step"] is None


def stored_under(aws, session_id: str) -> list[str]:
    """Every item left in the session's partition (sort keys), read straight from the table."""
    items = boto3.client("dynamodb").query(
        TableName=aws.table_name, KeyConditionExpression="PK = :pk", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}})["Items"]
    return [i["SK"]["S"] for i in items]


def test_a_delete_racing_writers_leaves_nothing_and_the_id_starts_clean(api, aws) -> None:
    # GIVEN a session with 30 messages, and 4 threads posting ONGOING progress and messages
    assert api.post("/v1/manuals", manual_body("m-race", steps=40)).status_code == 201
    body = {"session_id": "s-race", "user_id": "u", "manual_id": "m-race"}
    assert api.post("/v1/sessions", body).status_code == 201
    for n in range(30):
        api.post("/v1/sessions/s-race/messages", {"user_id": "u", "message": f"m{n}", "sender": "user"})
    stop, codes = threading.Event(), Counter()

    def writer(n: int) -> None:
        step = 1
        while not stop.is_set():
            codes[api.post("/v1/sessions/s-race/progress",
                           {"user_id": "u", "current_step": step, "step_status": "ONGOING"}).status_code] += 1
            codes[api.post("/v1/sessions/s-race/messages",
                           {"user_id": "u", "message": f"w{n}", "sender": "agent"}).status_code] += 1
            step = step % 40 + 1

    # WHEN the session is deleted while they write
    with ThreadPoolExecutor(4) as pool:
        writers = [pool.submit(writer, n) for n in range(4)]
        time.sleep(0.5)
        deleted = api.delete("/v1/sessions/s-race")
        time.sleep(0.5)
        stop.set()
        for done in writers:
            done.result()
    # THEN nothing of it is left, and writers were answered 2xx or 404, never a 5xx
    assert deleted.status_code == 204
    assert set(codes) <= {200, 201, 404} and codes[404] > 0, codes
    assert stored_under(aws, "s-race") == []
    assert api.get("/v1/sessions/s-race/events").status_code == 404
    assert api.get("/v1/manuals/m-race").json["active_sessions"] == 0
    # WHEN the same id is started again THEN it starts clean and works to the end
    again = api.post("/v1/sessions", body)
    assert again.status_code == 201 and again.json["message_count"] == 0
    for step in range(1, 13):
        response = api.post("/v1/sessions/s-race/progress",
                            {"user_id": "u", "current_step": step, "step_status": "DONE"})
        assert response.status_code == 200, response.json
    assert api.post("/v1/sessions/s-race/messages", {"user_id": "u", "message": "new", "sender": "user"}).status_code == 201
    assert api.patch("/v1/sessions/s-race", {"status": "ended"}).status_code == 200
    assert [m["message"] for m in api.get("/v1/sessions/s-race/messages").json["items"]] == ["new"]
    assert api.get("/v1/sessions/s-race").json["message_count"] == 1
    events = api.get("/v1/sessions/s-race/events?limit=100").json["items"]
    assert [e["sequence"] for e in events] == list(range(1, 15))


def test_a_delete_that_stopped_midway_is_finished_by_the_next_delete(api, aws, make_session, monkeypatch) -> None:
    # GIVEN a delete that crashed after it began (the children were not removed)
    sid = make_session(manual_id="m-crash")["session_id"]
    api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "message": "hi", "sender": "user"})

    def crash(**_: object) -> None:
        raise RuntimeError("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(store, "batch_write", crash)
        assert api.delete(f"/v1/sessions/{sid}").status_code == 500
    # THEN the session is gone for readers and writers, and its id is not yet free
    assert api.get(f"/v1/sessions/{sid}").status_code == 404
    refused = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "message": "x", "sender": "user"})
    assert (refused.status_code, refused.json["error"]) == (404, "session_not_found")
    progress = api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": 1, "step_status": "DONE"})
    assert (progress.status_code, progress.json["error"]) == (404, "session_not_found")
    taken = api.post("/v1/sessions", {"session_id": sid, "user_id": "user-1", "manual_id": "m-crash"})
    assert (taken.status_code, taken.json["error"]) == (409, "session_deleting")
    assert sid not in [s["session_id"] for s in api.get("/v1/sessions").json["items"]]
    # WHEN the delete is sent again THEN it finishes: nothing left, the counter dropped once
    assert api.delete(f"/v1/sessions/{sid}").status_code == 204
    assert stored_under(aws, sid) == []
    assert api.get("/v1/manuals/m-crash").json["active_sessions"] == 0
    assert api.delete(f"/v1/sessions/{sid}").status_code == 404


@pytest.mark.parametrize("blocked", ["event", "message"])
def test_a_write_refused_by_a_leftover_item_is_a_409_not_a_500(api, aws, make_session, blocked) -> None:
    # GIVEN an item in the session's partition where the next write must put its own (as the
    # orphans of a racing delete once were)
    sid = make_session()["session_id"]
    key = {"event": f"EVT#{2:010d}", "message": "MSGID#taken"}[blocked]
    boto3.client("dynamodb").put_item(TableName=aws.table_name, Item={
        "PK": {"S": f"SESSION#{sid}"}, "SK": {"S": key}, "type": {"S": "leftover"}})
    # WHEN a write collides with it THEN a JSON 409 (never a 500), and nothing changed
    if blocked == "event":
        response = api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": 1, "step_status": "DONE"})
        assert (response.status_code, response.json["error"]) == (409, "concurrent_update"), response.json
    else:
        response = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "message": "x",
                                                            "sender": "user", "message_id": "taken"})
        assert (response.status_code, response.json["error"]) == (422, "idempotency_key_reused"), response.json
    assert api.get(f"/v1/sessions/{sid}").json["version"] == 1
