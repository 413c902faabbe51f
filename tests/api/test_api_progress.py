"""Progress reports and the seed's six edge cases, through chalice.test.Client against moto."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3


def progress(api, sid: str, step: int, status: str = "DONE", user: str = "user-1", **extra):
    return api.post(f"/v1/sessions/{sid}/progress",
                    {"user_id": user, "current_step": step, "step_status": status, **extra},
                    headers=extra.pop("headers", None))


def stored_events(aws, sid: str) -> list[dict]:
    items = boto3.client("dynamodb").query(
        TableName=aws.table_name, KeyConditionExpression="PK = :pk AND begins_with(SK, :e)",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{sid}"}, ":e": {"S": "EVT#"}})["Items"]
    return items


def test_done_moves_forward_and_returns_next_step(api, make_session) -> None:
    sid = make_session(steps=3)["session_id"]
    response = progress(api, sid, 1)
    assert response.status_code == 200
    body = response.json
    assert body["applied"] is True and body["out_of_order"] is False
    assert body["session"]["current_step"] == 2 and body["session"]["completed_steps"] == [1]
    assert body["next_step"]["step_number"] == 2 and body["next_step"]["title"] == "Step 2"
    assert body["event_id"].startswith("evt_")


def test_ongoing_records_activity_without_moving(api, make_session) -> None:
    sid = make_session(steps=3)["session_id"]
    before = api.get(f"/v1/sessions/{sid}").json
    body = progress(api, sid, 1, "ONGOING").json
    assert body["session"]["current_step"] == 1 and body["applied"] is False
    assert body["session"]["last_activity_at"] > before["last_activity_at"]
    assert progress(api, sid, 3, "ONGOING").json["session"]["current_step"] == 3


def test_final_done_completes_the_session(api, make_session) -> None:
    sid = make_session(steps=2)["session_id"]
    progress(api, sid, 1)
    body = progress(api, sid, 2).json
    assert body["session"]["status"] == "completed"
    assert body["session"]["ended_at"] is not None
    assert body["next_step"] is None
    events = api.get(f"/v1/sessions/{sid}/events").json["items"]
    assert [e["event_type"] for e in events] == ["session_created", "progress_update", "progress_update", "session_ended"]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4]


def test_edge_invalid_step(api, make_session) -> None:
    sid = make_session(steps=5)["session_id"]
    response = progress(api, sid, 10)
    assert response.status_code == 400
    assert response.json == {"error": "invalid_step", "message": "Step 10 exceeds total steps (5)",
                             "session_id": sid, "total_steps": 5}
    for bad in [0, -1, "2", 2.5, None]:
        r = progress(api, sid, bad)
        assert (r.status_code, r.json["error"]) == (400, "validation_error"), bad
    r = progress(api, sid, 1, "FINISHED")
    assert (r.status_code, r.json["error"]) == (400, "validation_error")
    assert api.get(f"/v1/sessions/{sid}").json["version"] == 1


def test_edge_duplicate_with_key_applies_once(api, aws, make_session) -> None:
    sid = make_session(steps=5)["session_id"]
    first = progress(api, sid, 1, idempotency_key="key-1")
    assert first.status_code == 200
    for _ in range(9):
        again = progress(api, sid, 1, idempotency_key="key-1")
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json == {"status": "already_processed", "original_result": first.json}
    session = api.get(f"/v1/sessions/{sid}").json
    assert session["version"] == 2 and session["completed_steps"] == [1]
    assert len(stored_events(aws, sid)) == 2  # session_created + one progress_update


def test_idempotency_key_from_header_and_concurrent_duplicates(api, aws, make_session) -> None:
    sid = make_session(steps=5)["session_id"]
    body = {"user_id": "user-1", "current_step": 1, "step_status": "DONE"}
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: api.post(
            f"/v1/sessions/{sid}/progress", body, headers={"Idempotency-Key": "hdr-1"}), range(10)))
    assert all(r.status_code == 200 for r in responses)
    originals = [r.json for r in responses if "status" not in r.json]
    replays = [r.json["original_result"] for r in responses if "status" in r.json]
    assert len(originals) == 1 and all(r == originals[0] for r in replays)
    assert len(stored_events(aws, sid)) == 2
    differing = api.post(f"/v1/sessions/{sid}/progress", {**body, "idempotency_key": "other"},
                         headers={"Idempotency-Key": "hdr-1"})
    assert differing.status_code == 400


def test_same_key_other_payload_is_422(api, make_session) -> None:
    sid = make_session(steps=5)["session_id"]
    progress(api, sid, 1, idempotency_key="key-1")
    reused = progress(api, sid, 2, idempotency_key="key-1")
    assert (reused.status_code, reused.json["error"]) == (422, "idempotency_key_reused")
    assert api.get(f"/v1/sessions/{sid}").json["completed_steps"] == [1]


def test_replay_survives_session_completion(api, make_session) -> None:
    # the retry of the request that completed the session still gets its first answer
    sid = make_session(steps=1)["session_id"]
    first = progress(api, sid, 1, idempotency_key="last")
    assert first.json["session"]["status"] == "completed"
    again = progress(api, sid, 1, idempotency_key="last")
    assert again.json["original_result"] == first.json


def test_expired_idempotency_record_is_not_replayed(api, aws, make_session) -> None:
    sid = make_session(steps=5)["session_id"]
    progress(api, sid, 1, idempotency_key="old")
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name, Key={"PK": {"S": f"SESSION#{sid}"}, "SK": {"S": "IDEM#old"}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "1"}})
    fresh = progress(api, sid, 2, idempotency_key="old")
    assert fresh.status_code == 200 and fresh.json["session"]["completed_steps"] == [1, 2]


def test_edge_out_of_order(api, make_session) -> None:
    sid = make_session(steps=5)["session_id"]
    progress(api, sid, 3, "ONGOING")
    body = progress(api, sid, 2).json
    assert body["out_of_order"] is True and body["applied"] is True
    assert body["session"]["current_step"] == 3 and body["session"]["completed_steps"] == [2]
    assert body["next_step"]["step_number"] == 3
    events = api.get(f"/v1/sessions/{sid}/events").json["items"]
    assert events[-1]["out_of_order"] is True and events[-1]["step"] == 2


def test_edge_session_ended(api, make_session) -> None:
    sid = make_session(steps=2)["session_id"]
    progress(api, sid, 1)
    progress(api, sid, 2)
    response = progress(api, sid, 1)
    assert response.status_code == 400
    assert response.json["error"] == "session_ended"
    assert response.json["session_status"] == "completed"


def test_edge_unknown_session(api) -> None:
    response = progress(api, "ghost", 1)
    assert (response.status_code, response.json["error"]) == (404, "session_not_found")


def test_user_mismatch(api, make_session) -> None:
    sid = make_session(steps=3)["session_id"]
    response = progress(api, sid, 1, user="someone-else")
    assert (response.status_code, response.json["error"]) == (403, "user_mismatch")
    assert api.get(f"/v1/sessions/{sid}").json["completed_steps"] == []


def test_edge_concurrent_done_on_twenty_steps(api, aws, make_session) -> None:
    # GIVEN a 25-step session, WHEN 20 threads report DONE for steps 1..20 at once
    sid = make_session(steps=25)["session_id"]
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda step: progress(api, sid, step), range(1, 21)))
    # THEN every update lands without a client retry, none is lost, no 5xx
    assert [r.status_code for r in responses] == [200] * 20, [r.json for r in responses if r.status_code != 200]
    session = api.get(f"/v1/sessions/{sid}").json
    assert session["completed_steps"] == list(range(1, 21))
    assert session["current_step"] == 21
    assert session["version"] == 21
    assert len(stored_events(aws, sid)) == 21
    assert len({r.json["event_id"] for r in responses}) == 20


def test_concurrent_update_when_retries_run_out(api, make_session, monkeypatch) -> None:
    sid = make_session(steps=25)["session_id"]
    monkeypatch.setenv("MAX_UPDATE_ATTEMPTS", "1")
    from chalicelib.config import get_settings
    get_settings.cache_clear()
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda step: progress(api, sid, step), range(1, 17)))
    get_settings.cache_clear()
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 409} and 409 in codes
    conflicts = [r.json for r in responses if r.status_code == 409]
    assert all(c["error"] == "concurrent_update" for c in conflicts)
    # the client is told when to try again
    assert all(r.headers.get("Retry-After") == "1" for r in responses if r.status_code == 409)
    # nothing lost: exactly the accepted steps are recorded
    accepted = sorted(step for step, r in zip(range(1, 17), responses, strict=True) if r.status_code == 200)
    assert api.get(f"/v1/sessions/{sid}").json["completed_steps"] == accepted


def test_malformed_requests_get_json_errors(api, make_session) -> None:
    sid = make_session(steps=3)["session_id"]
    path = f"/v1/sessions/{sid}/progress"
    cases = [
        (api.post(path, raw="{not json"), 400, "invalid_json"),
        (api.post(path, raw="[1, 2]"), 400, "invalid_json"),
        (api.post(path, raw=""), 400, "invalid_json"),
        (api.post(path, raw="x", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"),
        (api.post(path, {"user_id": "user-1", "current_step": 1, "step_status": "DONE", "extra": 1}), 400, "validation_error"),
        (api.request("PUT", path, {}), 405, "method_not_allowed"),
        (api.post("/v1/sessions/bad%20id/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"}), 400, "validation_error"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json["error"]) == (status, code), response.json
        assert "message" in response.json
    assert api.get(f"/v1/sessions/{sid}").json["version"] == 1


def test_completed_steps_are_stored_as_a_bitmap_and_old_lists_still_read(api, aws, make_session) -> None:
    from chalicelib.domain import stepset
    from chalicelib.pipeline import webhooks

    ddb = boto3.client("dynamodb")
    sid = make_session(steps=1000)["session_id"]
    for step in (1, 2, 3, 999):
        assert progress(api, sid, step).status_code == 200
    key = {"PK": {"S": f"SESSION#{sid}"}, "SK": {"S": "#META"}}
    stored = ddb.get_item(TableName=aws.table_name, Key=key)["Item"]
    # the session item and its events hold the bitmap (a few bytes, whatever the manual's size)
    assert stored["completed_steps"]["S"].startswith("bits:") and len(stored["completed_steps"]["S"]) <= 173
    assert stepset.decode(stored["completed_steps"]["S"]) == [1, 2, 3, 999]
    last = max(stored_events(aws, sid), key=lambda e: int(e["sequence"]["N"]))
    assert stepset.decode(last["completed_steps"]["S"]) == [1, 2, 3, 999]
    # the API, the events and the webhooks show the list
    assert api.get(f"/v1/sessions/{sid}").json["completed_steps"] == [1, 2, 3, 999]
    assert api.get(f"/v1/sessions/{sid}/events?limit=100").json["items"][-1]["completed_steps"] == [1, 2, 3, 999]
    from chalicelib.db.table import from_item

    assert webhooks.payload(from_item(last))["completed_steps"] == [1, 2, 3, 999]

    # GIVEN items written before the bitmap (a list of numbers)
    ddb.update_item(TableName=aws.table_name, Key=key, UpdateExpression="SET completed_steps = :l",
                    ExpressionAttributeValues={":l": {"L": [{"N": "1"}, {"N": "2"}]}})
    ddb.update_item(TableName=aws.table_name, Key={"PK": last["PK"], "SK": last["SK"]},
                    UpdateExpression="SET completed_steps = :l",
                    ExpressionAttributeValues={":l": {"L": [{"N": "1"}, {"N": "2"}]}})
    # THEN they read as before, and the next write stores the bitmap
    assert api.get(f"/v1/sessions/{sid}").json["completed_steps"] == [1, 2]
    assert api.get(f"/v1/sessions/{sid}/events?limit=100").json["items"][-1]["completed_steps"] == [1, 2]
    relisted = max(stored_events(aws, sid), key=lambda e: int(e["sequence"]["N"]))
    assert webhooks.payload(from_item(relisted))["completed_steps"] == [1, 2]
    assert progress(api, sid, 5).json["session"]["completed_steps"] == [1, 2, 5]
    stored = ddb.get_item(TableName=aws.table_name, Key=key)["Item"]
    assert stepset.decode(stored["completed_steps"]["S"]) == [1, 2, 5]
