"""Analytics from the stream, checked against the truth computed by brute force."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict

import boto3
import pytest

from chalicelib.db.table import from_item
from chalicelib.domain.clock import seconds_between
from chalicelib.jobs.analytics import bucket_value, completion_bucket, deltas_for
from local.runner import Runner, lambda_stream_record, windowed
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
    batch = {"Records": [lambda_stream_record(r, aws.stream_arn) for r in records],
             **windowed(shard["ShardId"], aws.stream_arn, 900)}  # as the packaged mapping does
    assert app_module.analytics_handler(batch, None) == {"batchItemFailures": [], "state": {}}
    check(api, aws)


def test_analytics_parameters(api) -> None:
    assert api.get("/v1/analytics/recent-activity?hours=0").status_code == 400
    assert api.get("/v1/analytics/recent-activity?hours=169").status_code == 400
    assert api.get("/v1/analytics/popular-manuals?limit=0").status_code == 400
    empty = api.get("/v1/analytics/overview").json
    assert empty["sessions"]["total"] == 0 and empty["median_completion_seconds"] is None


# ---- exactly once per batch, under every way Lambda hands records over again ---------------


def recorded(aws) -> list[dict]:
    """Every record of the table's stream so far, Lambda-shaped, in stream order (moto: one shard)."""
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=aws.stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict] = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records += [lambda_stream_record(r, aws.stream_arn) for r in page["Records"]]
        if not page["Records"]:
            return records
        iterator = page["NextShardIterator"]


SHARD = "shardId-00000001764000000000-0a1b2c3d"


@pytest.fixture(params=["per shard", "per key"])
def count(request, aws):
    """Hand records to the analytics handler as Lambda does: with the shard id and a tumbling
    window, as the packaged mapping has ("per shard": one checkpoint per shard), or without
    (a mapping without the window: a checkpoint per table partition key)."""
    import app as app_module

    def counted(records: list[dict]) -> dict:
        event: dict = {"Records": records}
        if request.param == "per shard":
            event.update(windowed(SHARD, aws.stream_arn, 900))
        answer = app_module.analytics_handler(event, None)
        if request.param == "per shard":
            assert answer.pop("state") == {}  # Lambda fails a windowed invocation without it
        return answer

    counted.mode = request.param  # type: ignore[attr-defined]
    return counted


def data_records(api, aws) -> list[dict]:
    """The records of build_data (and nothing counted yet: the runner is not pumped)."""
    build_data(api)
    records = recorded(aws)
    assert len(records) > 50
    return records


def check_all(api, aws) -> None:
    check(api, aws)
    expected = truth(aws)
    totals = api.get("/v1/analytics/recent-activity?hours=3").json["totals"]
    assert totals["messages"] == len(expected["message_items"])
    assert totals["steps_completed"] == sum(
        e["event_type"] == "progress_update" and e["step_status"] == "DONE" and e["applied"]
        for e in expected["events"])


def test_a_batch_redelivered_after_it_was_counted_counts_once(api, aws, count) -> None:
    records = data_records(api, aws)
    # GIVEN a batch counted, whose invocation then timed out (Lambda never saw the answer)
    assert count(records) == {"batchItemFailures": []}
    # WHEN Lambda delivers it again, twice
    assert count(records) == {"batchItemFailures": []}
    assert count(records) == {"batchItemFailures": []}
    # THEN every number is counted once
    check_all(api, aws)


def test_bisected_halves_of_a_counted_batch_count_once(api, aws, count) -> None:
    records = data_records(api, aws)
    half = len(records) // 2
    # GIVEN the first half counted, then the whole batch (whose invocation failed after counting)
    assert count(records[:half]) == {"batchItemFailures": []}
    assert count(records) == {"batchItemFailures": []}
    # WHEN Lambda bisects the batch and retries each half
    assert count(records[:half]) == {"batchItemFailures": []}
    assert count(records[half:]) == {"batchItemFailures": []}
    check_all(api, aws)


def test_overlapping_batches_count_once(api, aws, count) -> None:
    records = data_records(api, aws)
    n = len(records)
    for start, end in ((0, n // 3), (n // 4, 2 * n // 3), (n // 2, n), (0, n)):
        assert count(records[start:end]) == {"batchItemFailures": []}
    check_all(api, aws)
    # and nothing is left of the per-record markers: one checkpoint per shard (or per
    # partition key counted)
    items = everything(aws)
    assert not [i for i in items if str(i["PK"]).startswith("STATSEVT#")]
    checkpoints = [i for i in items if i.get("type") == "stats_checkpoint"]
    if count.mode == "per shard":
        (only,) = checkpoints
        assert only["PK"] == f"STATSCHK#SHARD#{SHARD}"
        assert only["sequence"] == str(max(int(r["dynamodb"]["SequenceNumber"]) for r in records
                                           if deltas_for(r)))
    else:
        partitions = {r["dynamodb"]["Keys"]["PK"]["S"] for r in records}
        assert {i["PK"].removeprefix("STATSCHK#") for i in checkpoints} <= partitions
    assert all(i["expires_at"] > 0 and i["stream"] == aws.stream_arn for i in checkpoints)


def _lose_transaction_answers() -> None:
    """Every TransactWriteItems from now on is applied, but its answer is a 500 (tests/faults.py)."""
    from tests.faults import fail_with

    fail_with("InternalServerError", "TransactWriteItems")


def _refuse_transactions_after(passes: int, monkeypatch) -> None:
    """Every TransactWriteItems after the first `passes` is refused (throttled), unapplied."""
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.models import DynamoDBBackend

    original, calls = DynamoDBBackend.transact_write_items, {"n": 0}

    def refusing(self, items):
        calls["n"] += 1
        if calls["n"] > passes:
            raise JsonRESTError("ProvisionedThroughputExceededException", "injected")
        return original(self, items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", refusing)


def many_sessions(api, aws, mode: str, n: int = 110) -> list[dict]:
    """A batch more than one transaction holds (100 items): per key, its records touch 111
    partition keys (a session each and the manual); per shard, 112 counters (a manual each)."""
    manuals = [f"m-many-{k}" for k in range(n)] if mode == "per shard" else ["m-many"]
    for manual in manuals:
        api.post("/v1/manuals", manual_body(manual, steps=2))
    for k in range(n):
        assert api.post("/v1/sessions", {"session_id": f"w-{k}", "user_id": "u",
                                         "manual_id": manuals[k % len(manuals)]}).status_code == 201
    return recorded(aws)


def resume_point(records: list[dict], answer: dict) -> int:
    (failure,) = answer["batchItemFailures"]
    return next(n for n, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == failure["itemIdentifier"])


def check_many(api, mode: str, n: int = 110) -> None:
    manuals = n if mode == "per shard" else 1
    overview = api.get("/v1/analytics/overview").json
    assert overview["sessions"] == {"total": n, "by_status": {"active": n, "completed": 0, "ended": 0, "abandoned": 0}}
    assert overview["manuals"] == manuals
    popular = api.get("/v1/analytics/popular-manuals?limit=100").json["items"]
    assert len(popular) == min(manuals, 100) and all(p["sessions_started"] == n // manuals for p in popular)


def test_a_batch_over_one_transaction_fails_midway_and_resumes_exactly(api, aws, monkeypatch, count) -> None:
    from chalicelib.db import table as store

    records = many_sessions(api, aws, count.mode)
    calls: Counter = Counter()
    store.get_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    # WHEN its first transaction lands and the second is refused
    with monkeypatch.context() as patched:
        _refuse_transactions_after(1, patched)
        answer = count(records)
    assert calls["TransactWriteItems"] == 2, dict(calls)
    # THEN what landed is counted, and Lambda is told to resume from the earliest record not counted
    resume = resume_point(records, answer)
    assert records[resume]["dynamodb"]["NewImage"]["event_type"]["S"] == "session_created"
    assert 0 < api.get("/v1/analytics/overview").json["sessions"]["total"] < 110
    # ... and resuming there (records already counted after it included) is exact, in one transaction
    calls.clear()
    assert count(records[resume:]) == {"batchItemFailures": []}
    # the checkpoints (per shard, also the per-key ones of records older than the shard's)
    assert calls["BatchGetItem"] == (1 if count.mode == "per key" else 2), dict(calls)
    assert calls["TransactWriteItems"] == 1, dict(calls)
    check_many(api, count.mode)
    assert count(records) == {"batchItemFailures": []}  # and the whole batch again
    check_many(api, count.mode)


def test_a_shard_moves_past_records_counted_per_key_above_the_ones_it_counts(api, aws) -> None:
    # GIVEN the latest counted record's partition key counted per key before the window (its
    # part of a batch landed; the rest had not when the deploy went out)
    import app as app_module

    records = [r for r in data_records(api, aws) if deltas_for(r)]
    last_key = records[-1]["dynamodb"]["Keys"]["PK"]["S"]
    mine = [r for r in records if r["dynamodb"]["Keys"]["PK"]["S"] == last_key]
    assert 0 < len(mine) < len(records)
    assert app_module.analytics_handler({"Records": mine}, None) == {"batchItemFailures": []}
    # WHEN the windowed mapping delivers the batch, and then again (its answer lost)
    event = {"Records": records, **windowed(SHARD, aws.stream_arn, 900)}
    for _ in range(2):
        assert app_module.analytics_handler(event, None) == {"batchItemFailures": [], "state": {}}
    # THEN every number is counted once: the shard's checkpoint is past the last record
    check_all(api, aws)
    (checkpoint,) = [i for i in everything(aws) if i.get("PK") == f"STATSCHK#SHARD#{SHARD}"]
    assert checkpoint["sequence"] == records[-1]["dynamodb"]["SequenceNumber"]


def test_records_counted_per_key_come_back_over_several_windowed_invocations(api, aws) -> None:
    # GIVEN a batch counted per key whose answer was lost as the window was deployed
    import app as app_module

    records = data_records(api, aws)
    assert app_module.analytics_handler({"Records": records}, None) == {"batchItemFailures": []}
    # WHEN the windowed mapping hands it over again in three invocations (a window's end, the
    # payload limit), and the last one twice
    third = len(records) // 3
    for part in (records[:third], records[third:2 * third], records[2 * third:], records[2 * third:]):
        event = {"Records": part, **windowed(SHARD, aws.stream_arn, 900)}
        assert app_module.analytics_handler(event, None) == {"batchItemFailures": [], "state": {}}
    # THEN nothing is counted twice
    check_all(api, aws)


def test_a_first_windowed_batch_over_one_transaction_fails_midway_after_per_key(api, aws, monkeypatch) -> None:
    # GIVEN a batch over one transaction per shard, half of whose partition keys (every other
    # session and its manual, all through the batch) were counted per key before the deploy
    import app as app_module

    records = many_sessions(api, aws, "per shard", n=220)
    even = {f"SESSION#w-{k}" for k in range(0, 220, 2)} | {f"MANUAL#m-many-{k}" for k in range(0, 220, 2)}
    half = [r for r in records if r["dynamodb"]["Keys"]["PK"]["S"] in even]
    assert app_module.analytics_handler({"Records": half}, None) == {"batchItemFailures": []}

    def windowed_batch(part: list[dict]) -> dict:
        answer = app_module.analytics_handler({"Records": part, **windowed(SHARD, aws.stream_arn, 900)}, None)
        assert answer.pop("state") == {}
        return answer

    # WHEN the windowed mapping's first transaction lands and its second is refused
    with monkeypatch.context() as patched:
        _refuse_transactions_after(1, patched)
        answer = windowed_batch(records)
    resume = resume_point(records, answer)
    # ... and Lambda resumes there (the shard has a checkpoint now), twice
    assert windowed_batch(records[resume:]) == {"batchItemFailures": []}
    assert windowed_batch(records[resume:]) == {"batchItemFailures": []}
    # THEN every number is counted once
    check_many(api, "per shard", n=220)


def test_the_local_runner_hands_windows_over_as_lambda_does(api, aws) -> None:
    """A batch never spans two tumbling windows (by the records' creation time), a window ends
    with an invocation of its own (no records, its last state, the flag), and the numbers come
    out exact through it."""
    import types

    import app as app_module

    seen: list[dict] = []

    def spy(event, context):
        seen.append(event)
        return app_module.analytics_handler(event, context)

    runner = Runner(types.SimpleNamespace(analytics_handler=spy, app=app_module.app), aws.stream_arn,
                    aws.delivery_queue_url, stream_handlers=("analytics_handler",),
                    windowed_handlers={"analytics_handler": 1})
    api.post("/v1/manuals", manual_body("m-w", steps=2))
    assert api.post("/v1/sessions", {"session_id": "w-1", "user_id": "u", "manual_id": "m-w"}).status_code == 201
    time.sleep(1.2)  # the next records fall in a later 1-second window
    assert api.post("/v1/sessions", {"session_id": "w-2", "user_id": "u", "manual_id": "m-w"}).status_code == 201
    settle(runner)
    batches = [e for e in seen if e["Records"]]
    finals = [e for e in seen if e["isFinalInvokeForWindow"]]
    assert len(batches) >= 2 and finals and all(not e["Records"] and e["state"] == {} for e in finals)
    for event in batches:
        windows = {int(r["dynamodb"]["ApproximateCreationDateTime"]) for r in event["Records"]}
        assert len(windows) == 1 and event["shardId"] and not event["isFinalInvokeForWindow"], windows
    # the end-of-window invocation comes between the windows' batches
    assert seen.index(finals[0]) > seen.index(batches[0])
    assert api.get("/v1/analytics/overview").json["sessions"]["total"] == 2


def test_the_end_of_window_invocation_counts_nothing_and_answers_a_state(api, aws) -> None:
    import app as app_module

    build_data(api)
    final = {"Records": [], **windowed(SHARD, aws.stream_arn, 900), "isFinalInvokeForWindow": True}
    assert app_module.analytics_handler(final, None) == {"batchItemFailures": [], "state": {}}
    assert api.get("/v1/analytics/overview").json["sessions"]["total"] == 0


def test_a_batch_over_one_transaction_lands_whole_in_order(api, aws, count) -> None:
    from chalicelib.db import table as store

    records = many_sessions(api, aws, count.mode)
    calls: Counter = Counter()
    store.get_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    assert count(records) == {"batchItemFailures": []}
    # two transactions; per shard the second is conditional on the checkpoint the first left
    assert calls["TransactWriteItems"] == 2, dict(calls)
    check_many(api, count.mode)
    calls.clear()
    assert count(records) == {"batchItemFailures": []}
    # the checkpoints read: 111 keys' in BatchGetItems of 100; per shard, the shard's, and the
    # 220 keys' too (records created before the shard's checkpoint may be counted per key)
    assert dict(calls) == {"BatchGetItem": 4 if count.mode == "per shard" else 2}, dict(calls)
    check_many(api, count.mode)


def test_records_counted_per_key_are_not_counted_again_per_shard(api, aws) -> None:
    # GIVEN a batch counted by a mapping without the window (per key), whose invocation timed
    # out as the deploy that added the window went out
    import app as app_module

    records = data_records(api, aws)
    half = len(records) // 2
    assert app_module.analytics_handler({"Records": records[:half]}, None) == {"batchItemFailures": []}
    # WHEN the windowed mapping delivers it again, and goes on
    event = {"Records": records, **windowed(SHARD, aws.stream_arn, 900)}
    assert app_module.analytics_handler(event, None) == {"batchItemFailures": [], "state": {}}
    # THEN every number is counted once
    check_all(api, aws)


def test_a_transaction_whose_answer_was_lost_is_not_counted_again(api, aws, count) -> None:
    from tests.faults import heal

    records = many_sessions(api, aws, count.mode)
    # GIVEN the first transaction applied but its answer lost: the function stops there and
    # reports its first record as not counted
    _lose_transaction_answers()
    answer = count(records)
    heal("TransactWriteItems")
    assert 0 < api.get("/v1/analytics/overview").json["sessions"]["total"] < 110
    resume = resume_point(records, answer)
    assert records[resume]["dynamodb"]["NewImage"]["type"]["S"] == "manual"  # the batch's first counted record
    # WHEN Lambda resumes from it
    assert count(records[resume:]) == {"batchItemFailures": []}
    # THEN nothing counts twice
    check_many(api, count.mode)


def test_a_checkpoint_moved_by_a_concurrent_invocation_is_read_again(api, aws, monkeypatch, count) -> None:
    from chalicelib.db import stats

    records = data_records(api, aws)
    read = stats.checkpoints
    raced = {"done": False}

    def racing(partitions, stream):
        found = read(partitions, stream)
        if not raced["done"]:  # another invocation counts the same records between our read and write
            raced["done"] = True
            assert count(records) == {"batchItemFailures": []}
        return found

    monkeypatch.setattr(stats, "checkpoints", racing)
    assert count(records) == {"batchItemFailures": []}
    assert raced["done"]
    check_all(api, aws)


def test_the_packaged_analytics_mapping_hands_a_shard_over_in_order() -> None:
    # The checkpoints were reasoned for one batch per shard at a time, in order
    # (chalicelib/jobs/analytics.py): the packaged mapping keeps ParallelizationFactor at 1.
    from infra.package import merge_template

    (mapping,) = merge_template()["Resources"]["AnalyticsHandler"]["Properties"]["Events"].values()
    properties = mapping["Properties"]
    assert properties.get("ParallelizationFactor", 1) == 1
    # the window (for the shard id: a checkpoint per shard), as the local runner hands it over
    assert properties["TumblingWindowInSeconds"] == Runner.__dataclass_fields__[
        "windowed_handlers"].default_factory()["analytics_handler"] == 900  # type: ignore[misc]
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
