"""The cheap re-reads a live page polls: a session's events after a sequence number and its
messages since a moment, each one Query (counted like tests/api/test_round_trips.py)."""

from __future__ import annotations

import time

from tests.api.test_round_trips import calls, measure  # noqa: F401  (the `calls` fixture)


def test_events_after_a_sequence_are_only_the_newer_ones_in_one_query(api, make_session, calls) -> None:  # noqa: F811
    # GIVEN a session with 4 events (created, then 3 progress reports)
    sid = make_session(steps=5)["session_id"]
    for step in (1, 2, 3):
        assert api.post(f"/v1/sessions/{sid}/progress",
                        {"user_id": "user-1", "current_step": step, "step_status": "DONE"}).status_code == 200
    everything = api.get(f"/v1/sessions/{sid}/events").json["items"]
    assert [e["sequence"] for e in everything] == [1, 2, 3, 4]
    # WHEN a page that has seen up to #2 asks for what came after
    used, r = measure(calls, lambda: api.get(f"/v1/sessions/{sid}/events?after_sequence=2"))
    # THEN it gets #3 and #4 only, as the full list has them, in one Query
    assert r.status_code == 200, r.json
    assert r.json["items"] == everything[2:] and r.json["next_cursor"] is None
    assert dict(used) == {"Query": 1}
    # and nothing new: an empty page, still answered from that one Query plus the check
    # that tells "no new event" from "no such session"
    used, r = measure(calls, lambda: api.get(f"/v1/sessions/{sid}/events?after_sequence=4"))
    assert (r.status_code, r.json["items"]) == (200, [])
    assert sum(used.values()) <= 2, dict(used)
    assert api.get(f"/v1/sessions/{sid}/events?after_sequence=0").json["items"] == everything
    # pages of a narrowed read go on with their cursor
    first = api.get(f"/v1/sessions/{sid}/events?after_sequence=1&limit=2").json
    assert [e["sequence"] for e in first["items"]] == [2, 3] and first["next_cursor"]
    rest = api.get(f"/v1/sessions/{sid}/events?after_sequence=1&limit=2&cursor={first['next_cursor']}").json
    assert [e["sequence"] for e in rest["items"]] == [4]


def test_messages_since_a_moment_in_one_query(api, make_session, calls) -> None:  # noqa: F811
    sid = make_session(steps=2)["session_id"]
    posted = []
    for n in range(3):
        r = api.post(f"/v1/sessions/{sid}/messages", {"user_id": "user-1", "sender": "user", "message": f"m{n}"})
        assert r.status_code == 201
        posted.append(r.json)
        time.sleep(0.002)
    # WHEN a page asks for the messages since the second one's moment
    used, r = measure(calls, lambda: api.get(f"/v1/sessions/{sid}/messages?since={posted[1]['created_at']}"))
    # THEN it gets the second (at that moment) and the third, in one Query
    assert r.status_code == 200, r.json
    assert [m["message_id"] for m in r.json["items"]] == [posted[1]["message_id"], posted[2]["message_id"]]
    assert dict(used) == {"Query": 1}
    # a moment without microseconds or in another zone means the same instant
    whole_second = posted[0]["created_at"][:19]
    r = api.get(f"/v1/sessions/{sid}/messages?since={whole_second}%2B00:00")
    assert [m["message"] for m in r.json["items"]] == ["m0", "m1", "m2"]
    r = api.get(f"/v1/sessions/{sid}/messages?since=2999-01-01T00:00:00Z")
    assert (r.status_code, r.json["items"]) == (200, [])


def test_bad_since_reads_are_400_and_a_missing_session_404(api, make_session) -> None:
    sid = make_session(steps=2)["session_id"]
    for path, field in ((f"/v1/sessions/{sid}/events?after_sequence=-1", "after_sequence"),
                        (f"/v1/sessions/{sid}/events?after_sequence=two", "after_sequence"),
                        (f"/v1/sessions/{sid}/messages?since=yesterday", "since"),
                        (f"/v1/sessions/{sid}/messages?since=2026-01-01T10:00:00", "since"),  # no zone
                        (f"/v1/sessions/{sid}/messages?since=2026-02-30T10:00:00Z", "since")):
        r = api.get(path)
        assert r.status_code == 400 and r.json["error"] == "validation_error", (path, r.json)
        assert [f["field"] for f in r.json["fields"]] == [field], (path, r.json)
    for path in ("/v1/sessions/nope/events?after_sequence=3", "/v1/sessions/nope/messages?since=2026-01-01T00:00:00Z"):
        r = api.get(path)
        assert (r.status_code, r.json["error"]) == (404, "session_not_found"), (path, r.json)
