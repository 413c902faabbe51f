"""The scheduled cleanup job and session summaries, against moto."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.models import SessionCreate
from chalicelib.jobs import cleanup
from chalicelib.services import sessions
from tests.conftest import manual_body

LATER = timedelta(hours=1)  # the job runs "an hour from now": every session is idle by then


def start(api, n: int, manual: str = "m-1") -> list[str]:
    if api.get(f"/v1/manuals/{manual}").status_code == 404:
        api.post("/v1/manuals", manual_body(manual, steps=3))
    ids = []
    for i in range(n):
        session, _ = sessions.create_session(SessionCreate(session_id=f"s-{i}", user_id="u", manual_id=manual))
        ids.append(session.session_id)
    return ids


def test_idle_sessions_are_abandoned_with_an_event(api) -> None:
    ids = start(api, 3)
    api.patch("/v1/sessions/s-2", {"status": "ended"})
    report = cleanup.run(now=utcnow() + LATER)
    assert (report.abandoned, report.complete) == (2, True)
    for sid in ids[:2]:
        s = api.get(f"/v1/sessions/{sid}").json
        assert (s["status"], s["end_reason"]) == ("abandoned", "idle_timeout")
        assert s["ended_at"] is not None and s["summary"]["end_reason"] == "idle_timeout"
        last = api.get(f"/v1/sessions/{sid}/events").json["items"][-1]
        assert (last["event_type"], last["reason"]) == ("session_ended", "idle_timeout")
    assert api.get("/v1/sessions/s-2").json["status"] == "ended"
    # the manual is free again: no active session counts against it
    assert api.get("/v1/manuals/m-1").json["active_sessions"] == 0


def test_recent_activity_keeps_a_session_active(api, monkeypatch) -> None:
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT_SECONDS", "1800")
    from chalicelib.config import get_settings
    get_settings.cache_clear()
    start(api, 2)
    # s-1 was active 20 minutes ago, s-0 45 minutes ago (from the job's point of view)
    api.post("/v1/sessions/s-1/messages", {"user_id": "u", "message": "still here", "sender": "user"})
    report = cleanup.run(now=utcnow() + timedelta(minutes=20))
    assert report.abandoned == 0
    report = cleanup.run(now=utcnow() + timedelta(minutes=45))
    assert report.abandoned == 2


def test_an_update_racing_the_job_wins(api) -> None:
    start(api, 2)
    # the job read both sessions...
    seen = {sid: sessions.load(sid) for sid in ("s-0", "s-1")}
    # ...then the learner moved on in s-0 (progress) and wrote in s-1 (a message)
    api.post("/v1/sessions/s-0/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"})
    api.post("/v1/sessions/s-1/messages", {"user_id": "u", "message": "hi", "sender": "user"})
    now = to_iso(utcnow())
    assert sessions.abandon_if_idle(seen["s-0"], now) is False
    assert sessions.abandon_if_idle(seen["s-1"], now) is False
    assert {api.get(f"/v1/sessions/{s}").json["status"] for s in seen} == {"active"}


def test_running_twice_at_once_abandons_once(api) -> None:
    start(api, 20)
    reports = []
    later = utcnow() + LATER
    threads = [threading.Thread(target=lambda: reports.append(cleanup.run(now=later))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.abandoned for r in reports) == 20
    assert cleanup.run(now=later).abandoned == 0
    for sid in ("s-0", "s-19"):
        ended = [e for e in api.get(f"/v1/sessions/{sid}/events").json["items"] if e["event_type"] == "session_ended"]
        assert len(ended) == 1


def test_five_hundred_idle_sessions_across_pages_and_runs(api, monkeypatch) -> None:
    monkeypatch.setattr(cleanup, "PAGE", 10)
    start(api, 500)
    later = utcnow() + LATER
    # a first run with little time left stops early and says so; the next run finishes
    budget = iter([60.0] * 25 + [1.0] * 10_000)
    first = cleanup.run(time_left=lambda: next(budget), now=later)
    assert first.complete is False and 0 < first.abandoned < 500
    second = cleanup.run(now=later)
    assert second.complete is True
    assert first.abandoned + second.abandoned == 500
    assert api.get("/v1/sessions?status=active&limit=1").json["items"] == []
    assert api.get("/v1/manuals/m-1").json["active_sessions"] == 0


def test_retention_deletes_old_ended_sessions_when_enabled(api, monkeypatch) -> None:
    from chalicelib.config import get_settings

    start(api, 3)
    api.patch("/v1/sessions/s-0", {"status": "ended"})
    api.post("/v1/sessions/s-0/messages", {"user_id": "u", "message": "bye", "sender": "user"})
    assert cleanup.run(now=utcnow() + timedelta(days=40)).deleted == 0  # off by default
    monkeypatch.setenv("RETENTION_DAYS", "30")
    get_settings.cache_clear()
    report = cleanup.run(now=utcnow() + timedelta(days=40))
    # s-1 and s-2 are abandoned by this run and kept; s-0 ended long ago and goes
    assert report.deleted == 1
    assert api.get("/v1/sessions/s-0").status_code == 404
    assert api.get("/v1/sessions/s-1").json["status"] == "abandoned"


def test_summary_when_a_session_completes(api) -> None:
    api.post("/v1/manuals", manual_body("m-s", steps=3))
    api.post("/v1/sessions", {"session_id": "sum", "user_id": "u", "manual_id": "m-s"})
    for text, sender in [("hi", "user"), ("hello", "agent"), ("done?", "user")]:
        api.post("/v1/sessions/sum/messages", {"user_id": "u", "message": text, "sender": sender})
    for step in (1, 1, 2, 3):
        api.post("/v1/sessions/sum/progress", {"user_id": "u", "current_step": step, "step_status": "DONE"})
    session = api.get("/v1/sessions/sum").json
    summary = session["summary"]
    assert summary["steps_completed"] == summary["total_steps"] == 3
    assert summary["completion_ratio"] == 1.0
    assert [p["step"] for p in summary["time_per_step"]] == [1, 2, 3]  # the duplicate DONE is not a step
    assert all(p["seconds"] >= 0 for p in summary["time_per_step"])
    assert summary["messages"] == {"user": 2, "agent": 1, "total": 3}
    assert summary["duration_seconds"] == session["duration_seconds"]
    assert summary["first_activity_at"] == session["started_at"]
    assert summary["end_reason"] == "completed"
    ended = api.get("/v1/sessions/sum/events").json["items"][-1]
    assert ended["event_type"] == "session_ended" and ended["summary"] == summary


def test_active_sessions_have_no_summary(api) -> None:
    start(api, 1)
    assert api.get("/v1/sessions/s-0").json["summary"] is None


@pytest.mark.parametrize("stack_parameters", [{"MaxReceiveCount": "3"}], indirect=True)
def test_abandonment_reaches_the_webhook(api, aws, monkeypatch) -> None:
    import app as app_module
    from chalicelib.config import get_settings
    from local.runner import Runner
    from tests.receiver import Receiver

    receiver = Receiver()
    try:
        monkeypatch.setenv("WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0,0")
        get_settings.cache_clear()
        start(api, 1)
        cleanup.run(now=utcnow() + LATER)
        runner = Runner(app_module, aws.stream_arn, aws.delivery_queue_url)
        for _ in range(50):
            runner.pump()
            if len(receiver.delivered()) == 2:
                break
        kinds = [(r.json["event_type"], r.json["reason"]) for r in receiver.delivered()]
        assert kinds == [("session_created", None), ("session_ended", "idle_timeout")]
        assert receiver.delivered()[1].json["summary"]["end_reason"] == "idle_timeout"
        assert receiver.delivered()[1].json["session_status"] == "abandoned"
    finally:
        receiver.stop()


def test_the_index_of_active_sessions_keeps_buckets_so_reports_in_one_bucket_cost_no_index_write(
        api, aws, monkeypatch) -> None:
    import boto3

    from chalicelib.db.sessions import activity_bucket
    from chalicelib.domain.clock import from_iso

    monkeypatch.setenv("SESSION_IDLE_TIMEOUT_SECONDS", "1800")
    from chalicelib.config import get_settings
    get_settings.cache_clear()
    (sid,) = start(api, 1)
    client = boto3.client("dynamodb")

    def index_entry() -> str:
        item = client.get_item(TableName=get_settings().table_name,
                               Key={"PK": {"S": f"SESSION#{sid}"}, "SK": {"S": "#META"}})["Item"]
        return str(item["GSI5SK"]["S"])

    before = api.get(f"/v1/sessions/{sid}").json["last_activity_at"]
    bucket = from_iso(activity_bucket(before))
    # the start of a 5-minute bucket (a sixth of the timeout), not the instant
    assert bucket.minute % 5 == 0 and bucket.second == 0 and bucket <= from_iso(before)
    assert (from_iso(before) - bucket).total_seconds() < 300
    assert index_entry() == f"{activity_bucket(before)}#{sid}"
    api.post(f"/v1/sessions/{sid}/progress", {"user_id": "u", "current_step": 1, "step_status": "ONGOING"})
    api.post(f"/v1/sessions/{sid}/messages", {"user_id": "u", "message": "hi", "sender": "user"})
    after = api.get(f"/v1/sessions/{sid}").json["last_activity_at"]
    assert after > before
    # same bucket (unless the report crossed its boundary): the same index key, no index write
    assert index_entry() == f"{activity_bucket(after)}#{sid}"
    assert activity_bucket(after) == activity_bucket(before) or from_iso(activity_bucket(after)) > bucket
    # GSI5 holds keys only: its entries change with the key, never with a report's other fields
    table = client.describe_table(TableName=get_settings().table_name)["Table"]
    (gsi5,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "GSI5"]
    assert gsi5["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # not idle for the timeout yet: kept; idle for the timeout plus a bucket: abandoned
    last = from_iso(sessions.load(sid).last_activity_at)
    assert cleanup.run(now=last + timedelta(minutes=29)).abandoned == 0
    assert cleanup.run(now=last + timedelta(minutes=36)).abandoned == 1
    get_settings.cache_clear()
