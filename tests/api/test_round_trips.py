"""DynamoDB round trips per request: the cost of every call on AWS.

Counted with a botocore event hook on the service's own client. Happy path of every route:
at most 2, except the bulk ones (one batch call per 25 items)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from chalicelib.db import table as store
from chalicelib.services import manuals, sessions
from tests.conftest import manual_body


@pytest.fixture
def calls(api) -> Counter:
    counter: Counter = Counter()
    api.get("/v1/manuals")  # the key's lookup is cached from here on (see test_auth.py)

    def count(event_name: str, **_: object) -> None:
        counter[event_name.rsplit(".", 1)[-1]] += 1

    store.get_client().meta.events.register("before-call.dynamodb", count)
    return counter


def measure(calls: Counter, do) -> tuple[Counter, object]:
    calls.clear()
    result = do()
    return Counter(calls), result


def test_round_trips_per_route(api, calls) -> None:
    steps = 60
    used, r = measure(calls, lambda: api.post("/v1/manuals", manual_body("m-1", steps=steps)))
    assert r.status_code == 201
    assert sum(used.values()) <= 2 + math.ceil(steps / 25), used
    assert used["BatchWriteItem"] == math.ceil(steps / 25)

    expectations = [
        ("GET", "/v1/manuals", None, 1),
        ("GET", "/v1/manuals/m-1", None, 1),
        ("POST", "/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m-1"}, 2),
        ("GET", "/v1/sessions/s-1", None, 1),
        ("GET", "/v1/sessions", None, 2),
        ("GET", "/v1/sessions?status=active", None, 2),
        ("GET", "/v1/sessions?user_id=u", None, 2),
        ("POST", "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE", "idempotency_key": "k"}, 2),
        ("POST", "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE", "idempotency_key": "k"}, 1),
        ("POST", "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 2, "step_status": "ONGOING"}, 2),
        ("GET", "/v1/sessions/s-1/next-step", None, 2),
        ("POST", "/v1/sessions/s-1/messages", {"user_id": "u", "message": "hi", "sender": "user"}, 1),
        ("POST", "/v1/messages", {"session_id": "s-1", "user_id": "u", "message": "yo", "sender": "agent"}, 1),
        ("GET", "/v1/sessions/s-1/messages", None, 1),
        # a session's events with their per-endpoint delivery: one Query, plus one for the
        # webhook endpoint list when this process has not read it in the last 10 s
        ("GET", "/v1/sessions/s-1/events", None, 2),
        ("GET", "/v1/sessions/s-1/events", None, 1),
        # ending a session also reads its event trail once, for the session summary
        ("PATCH", "/v1/sessions/s-1", {"status": "ended"}, 3),
    ]
    for method, path, body, limit in expectations:
        used, response = measure(calls, lambda: api.request(method, path, body))
        assert response.status_code in (200, 201), (path, response.json)
        assert sum(used.values()) <= limit, (method, path, dict(used))

    used, response = measure(calls, lambda: api.delete("/v1/sessions/s-1"))
    assert response.status_code == 204
    # get + query of its items + one batch per 25 children + the final transaction
    assert sum(used.values()) <= 4, dict(used)
    used, response = measure(calls, lambda: api.delete("/v1/manuals/m-1"))
    assert response.status_code == 204
    assert sum(used.values()) <= 2 + math.ceil((steps + 1) / 25), dict(used)


def test_progress_is_one_read_and_one_transaction(api, calls) -> None:
    api.post("/v1/manuals", manual_body("m-1", steps=10))
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m-1"})
    for step in range(1, 10):
        used, r = measure(calls, lambda: api.post(
            "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": step, "step_status": "DONE"}))
        assert r.status_code == 200 and r.json["next_step"]["step_number"] == step + 1
        assert dict(used) == {"BatchGetItem": 1, "TransactWriteItems": 1}, (step, dict(used))
    # the last DONE ends the session: one Query of the event trail for its summary
    used, r = measure(calls, lambda: api.post(
        "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 10, "step_status": "DONE"}))
    assert r.json["session"]["summary"]["steps_completed"] == 10
    assert dict(used) == {"BatchGetItem": 1, "Query": 1, "TransactWriteItems": 1}


def test_progress_in_a_cold_process_costs_one_more_read(api, calls) -> None:
    # A process that has never seen the session cannot fetch the step with it: +1 GetItem.
    api.post("/v1/manuals", manual_body("m-1", steps=10))
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m-1"})
    sessions.forget_bindings()
    manuals.forget_steps()
    used, _ = measure(calls, lambda: api.post(
        "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"}))
    assert dict(used) == {"BatchGetItem": 1, "GetItem": 1, "TransactWriteItems": 1}
    used, _ = measure(calls, lambda: api.post(
        "/v1/sessions/s-1/progress", {"user_id": "u", "current_step": 2, "step_status": "DONE"}))
    assert dict(used) == {"BatchGetItem": 1, "TransactWriteItems": 1}


def test_the_pipeline_handlers_pay_per_batch(api, aws, runner, receiver, calls) -> None:
    """Per stream batch (Lambda's, up to 100 records), whatever the number of records in it:
    feedback: one SendMessageBatch per ten sessions' events, no table call; analytics: one
    BatchGetItem (its shard's checkpoint; records older than it also the per-key ones) and one
    TransactWriteItems (up to 100 items), no SQS call. Delivery: one BatchGetItem per queue batch, then one UpdateItem per
    attempt and one per endpoint (its stats), and no SQS call of ours when every message was
    delivered."""
    import boto3

    import app as app_module
    from chalicelib.pipeline import queue
    from local.runner import lambda_stream_record, windowed
    from tests.conftest import run_session

    sqs: Counter = Counter()
    queue.get_client().meta.events.register(
        "before-call.sqs", lambda event_name, **_: sqs.update([event_name.rsplit(".", 1)[-1]]))
    for n in range(12):  # 12 sessions x 3 events (start, DONE, end), one stream batch
        run_session(api, f"rt-{n}", 1)
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=aws.stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = [lambda_stream_record(r, aws.stream_arn)
               for r in streams.get_records(ShardIterator=iterator, Limit=100)["Records"]]
    assert 36 < len(records) <= 100  # one Lambda batch
    batch = {"Records": records}

    from chalicelib.pipeline import targets

    targets.forget()
    calls.clear()
    targets.every(configure=False)  # as a cold feedback instance: reads the endpoint list (cached 10 s)
    assert dict(calls) == {"Query": 1}
    calls.clear()
    assert app_module.feedback_handler(batch, None) == {"batchItemFailures": []}
    # 36 messages, at most one per session in a request: 12 sessions -> 10 + 2, three times
    assert (dict(calls), dict(sqs)) == ({}, {"SendMessageBatch": 6})

    calls.clear()
    sqs.clear()
    # as the packaged mapping (a tumbling window) hands it over: with the shard id
    windowed_batch = {**batch, **windowed(shard["ShardId"], aws.stream_arn, 900)}
    assert app_module.analytics_handler(windowed_batch, None) == {"batchItemFailures": [], "state": {}}
    # 12 sessions' starts, DONEs and ends plus the manual: counted in one transaction with the
    # shard's checkpoint; a shard's first batch also reads the per-key checkpoints once
    assert (dict(calls), dict(sqs)) == ({"BatchGetItem": 2, "TransactWriteItems": 1}, {})
    assert api.get("/v1/analytics/overview").json["sessions"]["by_status"]["completed"] == 12
    calls.clear()
    assert app_module.analytics_handler(windowed_batch, None) == {"batchItemFailures": [], "state": {}}
    # all counted already, nothing written: the shard's checkpoint read, and (these records are
    # older than it) the per-key checkpoints an earlier mapping without the window may have left
    assert dict(calls) == {"BatchGetItem": 2}
    assert api.get("/v1/analytics/overview").json["sessions"]["by_status"]["completed"] == 12

    targets.forget()
    calls.clear()
    targets.every()  # a cold delivery instance applies WEBHOOK_URL (here: stores `default`), reads the list
    assert calls["GetItem"] == 1 and calls["Query"] == 1 and set(calls) <= {"GetItem", "Query", "TransactWriteItems"}
    calls.clear()
    sqs.clear()
    handled = runner.pump_queue()  # one receive: one session's messages (up to ten)
    assert handled == 3
    # one UpdateItem per attempt, and one per endpoint for the batch's stats
    assert calls["BatchGetItem"] == 1 and calls["UpdateItem"] == handled + 1, dict(calls)
    assert set(calls) == {"BatchGetItem", "UpdateItem"}, dict(calls)
    assert not sqs, sqs  # delivered: no SQS call of ours (the event source deletes them)
