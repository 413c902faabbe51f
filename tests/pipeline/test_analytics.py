"""Analytics from the stream, checked against the truth computed by brute force."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import boto3
import pytest

from chalicelib.db.table import from_item
from chalicelib.domain.clock import seconds_between
from chalicelib.jobs.analytics import bucket_value, completion_bucket
from local.runner import Runner, lambda_stream_record
from tests.conftest import manual_body


@pytest.fixture
def runner(api, aws):
    import app as app_module

    return Runner(app_module, aws.stream_arn, aws.delivery_queue_url,
                  stream_handlers=("analytics_handler",))


def settle(runner: Runner) -> None:
    idle = 0
    while idle < 2:
        idle = idle + 1 if runner.pump_stream() == 0 else 0


def everything(aws) -> list[dict]:
    """Test-only brute force: every item of the table."""
    client, items, kwargs = boto3.client("dynamodb"), [], {"TableName": aws.table_name}
    while True:
        page = client.scan(**kwargs)
        items += [from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def truth(aws) -> dict:
    items = everything(aws)
    sessions = [i for i in items if i.get("type") == "session"]
    by_status = Counter(s["status"] for s in sessions)
    durations = [seconds_between(s["started_at"], s["ended_at"]) for s in sessions if s["status"] == "completed"]
    bucketed = sorted(bucket_value(completion_bucket(d)) for d in durations)
    per_manual = defaultdict(lambda: [0, 0])
    for s in sessions:
        per_manual[s["manual_id"]][0] += 1
        per_manual[s["manual_id"]][1] += s["status"] == "completed"
    return {
        "sessions": {"total": len(sessions), "by_status": {k: by_status.get(k, 0) for k in ("active", "completed", "ended", "abandoned")}},
        "manuals": sum(1 for i in items if i.get("type") == "manual"),
        "messages": sum(1 for i in items if i.get("type") == "message"),
        "completion_rate": round(by_status["completed"] / len(sessions), 4) if sessions else 0.0,
        "average_completion_seconds": round(sum(round(d * 1000) for d in durations) / len(durations) / 1000, 3) if durations else None,
        "median_completion_seconds": statistics.median(bucketed) if bucketed else None,
        "popular": sorted(((m, c[0], c[1]) for m, c in per_manual.items()), key=lambda t: (-t[1], -t[2], t[0])),
        "events": [i for i in items if i.get("type") == "event"],
        "message_items": [i for i in items if i.get("type") == "message"],
    }


def build_data(api) -> None:
    for m, steps in (("m-a", 2), ("m-b", 3), ("m-unused", 2)):
        api.post("/v1/manuals", manual_body(m, steps=steps))
    plan = [("s-1", "m-a", "complete"), ("s-2", "m-a", "complete"), ("s-3", "m-a", "end"),
            ("s-4", "m-b", "complete"), ("s-5", "m-b", "abandon"), ("s-6", "m-b", "active"),
            ("s-7", "m-a", "active")]
    for sid, manual, outcome in plan:
        api.post("/v1/sessions", {"session_id": sid, "user_id": "u", "manual_id": manual})
        api.post(f"/v1/sessions/{sid}/messages", {"user_id": "u", "message": "hi", "sender": "user"})
        api.post(f"/v1/sessions/{sid}/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"})
        api.post(f"/v1/sessions/{sid}/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"})  # duplicate
        if outcome == "complete":
            total = 2 if manual == "m-a" else 3
            for step in range(2, total + 1):
                api.post(f"/v1/sessions/{sid}/progress", {"user_id": "u", "current_step": step, "step_status": "DONE"})
        elif outcome in ("end", "abandon"):
            api.patch(f"/v1/sessions/{sid}", {"status": "ended" if outcome == "end" else "abandoned"})


def check(api, aws) -> None:
    expected = truth(aws)
    overview = api.get("/v1/analytics/overview").json
    for key in ("sessions", "manuals", "messages", "completion_rate", "average_completion_seconds",
                "median_completion_seconds"):
        assert overview[key] == expected[key], key
    popular = api.get("/v1/analytics/popular-manuals?limit=10").json["items"]
    assert [(p["manual_id"], p["sessions_started"], p["sessions_completed"]) for p in popular] == expected["popular"]


def test_analytics_equal_the_truth_even_when_the_stream_repeats(api, aws, runner) -> None:
    build_data(api)
    settle(runner)
    check(api, aws)
    # recent activity: hour buckets match the events and messages stored
    expected = truth(aws)
    activity = api.get("/v1/analytics/recent-activity?hours=3").json
    assert len(activity["buckets"]) == 3
    events = expected["events"]
    assert activity["totals"] == {
        "sessions_started": sum(e["event_type"] == "session_created" for e in events),
        "steps_completed": sum(e["event_type"] == "progress_update" and e["step_status"] == "DONE" and e["applied"] for e in events),
        "messages": len(expected["message_items"]),
        "sessions_ended": sum(e["event_type"] == "session_ended" for e in events),
    }
    # deletes leave the numbers too
    assert api.delete("/v1/sessions/s-1").status_code == 204
    assert api.delete("/v1/sessions/s-3").status_code == 204
    assert api.delete("/v1/manuals/m-unused").status_code == 204
    settle(runner)
    check(api, aws)
    # WHEN Lambda delivers the whole stream again (a retried batch), THEN nothing counts twice
    import app as app_module

    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=aws.stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    assert len(records) > 50
    batch = {"Records": [lambda_stream_record(r, aws.stream_arn) for r in records]}
    assert app_module.analytics_handler(batch, None) == {"batchItemFailures": []}
    check(api, aws)


def test_analytics_parameters(api) -> None:
    assert api.get("/v1/analytics/recent-activity?hours=0").status_code == 400
    assert api.get("/v1/analytics/recent-activity?hours=169").status_code == 400
    assert api.get("/v1/analytics/popular-manuals?limit=0").status_code == 400
    empty = api.get("/v1/analytics/overview").json
    assert empty["sessions"]["total"] == 0 and empty["median_completion_seconds"] is None
