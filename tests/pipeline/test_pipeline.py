"""The feedback pipeline end to end: API -> table stream -> feedback handler -> SQS FIFO ->
delivery handler -> a real HTTP receiver on 127.0.0.1, driven by the local event-source
runner against moto, with signatures verified by the `standardwebhooks` library."""

from __future__ import annotations

import random
import time
from collections import defaultdict

import boto3
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.pipeline import queue
from local.runner import Runner
from tests.conftest import SECRET, drain, event_ids, queue_depth, run_session
from tests.receiver import always


def test_webhooks_arrive_signed_and_in_order(api, runner, receiver) -> None:
    # GIVEN a session that goes from start to completion, with one ONGOING report in between
    run_session(api, "s-1", 2)
    api.post("/v1/sessions", {"session_id": "s-2", "user_id": "u", "manual_id": "man-2"})
    api.post("/v1/sessions/s-2/progress", {"user_id": "u", "current_step": 1, "step_status": "ONGOING"})
    # WHEN the pipeline runs
    drain(runner, lambda: len(receiver.delivered()) == 5)
    # THEN s-1's webhooks arrive in order, each signed
    s1 = [r for r in receiver.requests if r.json["session_id"] == "s-1"]
    assert [r.json["event_type"] for r in s1] == [
        "session_created", "progress_update", "progress_update", "session_ended"]
    assert [r.json["sequence"] for r in s1] == [1, 2, 3, 4]
    verifier = Webhook(SECRET)
    for request in receiver.requests:
        assert verifier.verify(request.body, request.headers) == request.json
        assert request.headers["webhook-id"] == request.json["event_id"]
    last = s1[-1].json
    assert last["is_completed"] is True and last["session_status"] == "completed"
    assert last["total_steps"] == 2 and last["session_duration_seconds"] >= 0
    assert s1[1].json["previous_step"] == 1 and s1[1].json["current_step"] == 2
    assert s1[1].json["step_status"] == "DONE"
    # ONGOING reports are not sent by default: s-2 sent only session_created
    assert [r.json["event_type"] for r in receiver.requests if r.json["session_id"] == "s-2"] == ["session_created"]
    # and the events listing shows each delivery
    events = api.get("/v1/sessions/s-1/events").json["items"]
    assert {e["delivery_status"] for e in events} == {"delivered"}
    assert all(e["delivery_attempts"][0]["status_code"] == 200 for e in events)
    ongoing = api.get("/v1/sessions/s-2/events").json["items"][-1]
    assert ongoing["step_status"] == "ONGOING" and ongoing["delivery_status"] == "not_sent"


def test_a_tampered_body_does_not_verify(api, runner, receiver) -> None:
    run_session(api, "s-1", 1)
    drain(runner, lambda: len(receiver.delivered()) >= 1)
    request = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"s-1", b"s-9"), request.headers)


@pytest.mark.parametrize("attempts", [30], indirect=True)
def test_flaky_receiver_gets_everything_in_order(api, runner, receiver) -> None:
    # GIVEN a receiver that fails about half of all requests, like a flaky third party
    rng = random.Random(42)
    receiver.behaviour = lambda n, body: (200 if rng.random() < 0.5 else 500, {})
    sessions = [f"s-{n}" for n in range(4)]
    for sid in sessions:
        run_session(api, sid, 3)
    expected = {sid: event_ids(api, sid) for sid in sessions}
    total = sum(len(ids) for ids in expected.values())
    # WHEN the pipeline runs until every event got a 2xx
    drain(runner, lambda: len({r.headers["webhook-id"] for r in receiver.delivered()}) == total, 60)
    # THEN every event arrived at least once, nothing else arrived, per-session order held
    assert {r.headers["webhook-id"] for r in receiver.requests} == {i for ids in expected.values() for i in ids}
    assert len(receiver.requests) > total  # there were failures and retries
    delivered_order = defaultdict(list)
    for request in receiver.delivered():
        delivered_order[request.json["session_id"]].append(request.headers["webhook-id"])
    for sid, ids in expected.items():
        firsts = list(dict.fromkeys(delivered_order[sid]))
        assert firsts == ids, sid
        attempts_seen = [r.json["sequence"] for r in receiver.requests if r.json["session_id"] == sid]
        trail = [(r.json["sequence"], r.status, r.headers["webhook-id"][-4:]) for r in receiver.requests if r.json["session_id"] == sid]
        assert attempts_seen == sorted(attempts_seen), str(trail)


@pytest.mark.parametrize("attempts", [3], indirect=True)
def test_dead_receiver_then_redrive_loses_nothing(api, aws, runner, receiver) -> None:
    # GIVEN a receiver that is down for every attempt
    receiver.behaviour = always(500)
    run_session(api, "s-1", 2)
    ids = event_ids(api, "s-1")
    # WHEN every webhook has spent its attempts, THEN each sits in the dead-letter queue
    drain(runner, lambda: queue_depth(aws.dead_letter_queue_url) == len(ids)
          and queue_depth(aws.delivery_queue_url) == 0)
    # each one had its own three attempts, made in the session's order (a follower waits
    # while its head is retried, and loses no attempt by waiting)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [i for i in ids for _ in range(3)]
    failed = api.get("/v1/deliveries?status=failed").json["items"]
    assert {f["event_id"] for f in failed} == set(ids)
    for event in api.get("/v1/sessions/s-1/events").json["items"]:
        assert event["delivery_status"] == "failed"
        assert [(a["attempt"], a["of"], a["outcome"]) for a in event["delivery_attempts"]] == [
            (1, 3, "retrying"), (2, 3, "retrying"), (3, 3, "failed")]
    # WHEN the receiver recovers and the DLQ is redriven
    receiver.behaviour = always(200)
    from chalicelib.pipeline.delivery import redrive

    moved = redrive(aws.dead_letter_queue_url, aws.delivery_queue_url)
    assert moved == len(ids)
    drain(runner, lambda: {r.headers["webhook-id"] for r in receiver.delivered()} == set(ids))
    # THEN every event is delivered, in order, and none is listed as failed any more
    assert [r.headers["webhook-id"] for r in receiver.delivered()] == ids
    assert api.get("/v1/deliveries?status=failed").json["items"] == []
    assert queue_depth(aws.dead_letter_queue_url) == 0
    # the redriven round started a fresh budget: its attempt is number 1 again
    head = api.get("/v1/sessions/s-1/events").json["items"][0]
    assert head["delivery_attempts"][-1]["attempt"] == 1 and head["delivery_status"] == "delivered"


def test_redeliver_one_event(api, runner, receiver) -> None:
    run_session(api, "s-1", 1)
    drain(runner, lambda: len(receiver.delivered()) == 3)
    first = event_ids(api, "s-1")[0]
    response = api.post(f"/v1/events/{first}/redeliver")
    assert response.status_code == 202
    drain(runner, lambda: len(receiver.delivered()) == 4)
    assert receiver.requests[-1].headers["webhook-id"] == first
    assert api.post("/v1/events/evt_missing/redeliver").json["error"] == "event_not_found"


@pytest.mark.parametrize("failure", ["one entry refused", "whole request failed"])
def test_a_failed_send_is_retried_from_its_record_without_reordering(api, aws, runner, receiver, monkeypatch,
                                                                       failure) -> None:
    # GIVEN three sessions whose events share stream batches, and a queue that refuses the
    # send of one session's second event once (one entry of a batch, or the whole request)
    for sid in ("s-1", "s-2", "s-3"):
        run_session(api, sid, 3)
    ids = {sid: event_ids(api, sid) for sid in ("s-1", "s-2", "s-3")}
    victim = ids["s-2"][1]
    original = queue.enqueue_batch
    requests: list[list[str]] = []
    groups: list[list[str]] = []

    def flaky(messages, queue_url=None):
        requests.append([m.dedup_id for m in messages])
        groups.append([m.group for m in messages])
        if victim in requests[-1] and len([r for r in requests if victim in r]) == 1:
            if failure == "whole request failed":
                raise RuntimeError("SQS is briefly unavailable")
            return original([m for m in messages if m.dedup_id != victim], queue_url) | {victim}
        return original(messages, queue_url)

    monkeypatch.setattr(queue, "enqueue_batch", flaky)
    # WHEN the stream is processed
    drain(runner, lambda: len(receiver.delivered()) == sum(len(i) for i in ids.values()))
    # THEN batches held one message per session, up to ten
    assert all(len(g) <= 10 and len(set(g)) == len(g) for g in groups)
    assert max(len(g) for g in groups) == 3
    assert len([r for r in requests if victim in r]) == 2  # refused once, then sent
    # and every event arrived exactly once, each session's in order
    for sid, expected in ids.items():
        got = [r.headers["webhook-id"] for r in receiver.delivered() if r.json["session_id"] == sid]
        assert got == expected, sid


def test_gone_stops_retrying_and_disables_the_endpoint(api, aws, runner, receiver) -> None:
    # GIVEN a receiver that answers 410 Gone (Standard Webhooks: "stop sending")
    receiver.behaviour = always(410)
    run_session(api, "s-1", 1)
    ids = event_ids(api, "s-1")
    # WHEN the pipeline runs
    drain(runner, lambda: len(receiver.requests) == 1 and queue_depth(aws.delivery_queue_url) == 0)
    for _ in range(5):
        runner.pump()
    # THEN the first webhook was tried once, and nothing after it: the endpoint is disabled
    assert len(receiver.requests) == 1
    assert queue_depth(aws.dead_letter_queue_url) == 0
    events = api.get("/v1/sessions/s-1/events").json["items"]
    assert [e["event_id"] for e in events] == ids
    assert events[0]["delivery_status"] == "gone" and events[0]["deliveries"]["default"]["status"] == "gone"
    assert [e["deliveries"]["default"]["status"] for e in events[1:]] == ["endpoint_disabled"] * (len(ids) - 1)
    endpoint = api.get("/v1/webhook-endpoints/default").json
    assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]


def test_retry_after_is_honoured(api, runner, receiver) -> None:
    receiver.behaviour = lambda n, body: (429, {"Retry-After": "2"}) if n == 1 else (200, {})
    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})
    drain(runner, lambda: len(receiver.delivered()) == 1, timeout=20)
    first, second = receiver.requests[0], receiver.requests[1]
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.9


def test_receiver_timeout_counts_as_a_failed_attempt(api, runner, receiver) -> None:
    def slow_first(n, body):
        if n == 1:
            time.sleep(3)  # longer than WEBHOOK_TIMEOUT_SECONDS=2
        return 200, {}

    receiver.behaviour = slow_first
    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})
    drain(runner, lambda: api.get("/v1/sessions/s-1/events").json["items"][0]["delivery_status"] == "delivered")
    attempts = api.get("/v1/sessions/s-1/events").json["items"][0]["delivery_attempts"]
    assert attempts[0]["status_code"] is None and "timed out" in attempts[0]["error"].lower()
    assert attempts[-1]["status_code"] == 200


def test_runner_events_match_lambda_shapes(aws, api, runner) -> None:
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, SqsModel

    from local.runner import lambda_sqs_record, lambda_stream_record

    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=aws.stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    model = DynamoDBStreamModel.model_validate({"Records": [lambda_stream_record(r, aws.stream_arn) for r in records]})
    assert {r.eventName for r in model.Records} >= {"INSERT", "MODIFY"}
    assert all(r.eventSourceARN == aws.stream_arn for r in model.Records)

    for n in range(3):
        queue.enqueue(f'{{"x": {n}}}', group="g-1", dedup_id=f"d-{n}")
    messages = queue.receive(aws.delivery_queue_url)
    sqs_event = SqsModel.model_validate({"Records": [lambda_sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:q.fifo") for m in messages]})
    assert len({r.messageId for r in sqs_event.Records}) == len(messages) >= 1
    assert all(r.attributes.MessageGroupId == "g-1" and r.attributes.ApproximateReceiveCount == "1"
               for r in sqs_event.Records)


def test_runner_runs_scheduled_handlers_on_their_rate(aws, monkeypatch) -> None:
    import types

    from chalice import Chalice, Rate

    demo = Chalice(app_name="demo")
    calls: list[dict] = []

    @demo.schedule(Rate(5, unit=Rate.MINUTES))
    def tick(event):
        calls.append(event.to_dict())

    module = types.SimpleNamespace(app=demo, tick=tick)
    runner = Runner(module, aws.stream_arn, aws.delivery_queue_url)
    assert runner.scheduled_handlers() == [("tick", 300.0)]
    start = 1000.0
    runner.pump_schedules(now=start)          # arms the timer
    runner.pump_schedules(now=start + 299)    # not yet due
    assert calls == []
    runner.pump_schedules(now=start + 300)
    assert len(calls) == 1 and calls[0]["detail-type"] == "Scheduled Event"
    monkeypatch.setenv("SCHEDULE_INTERVAL_SECONDS", "0.5")
    assert runner.scheduled_handlers() == [("tick", 0.5)]
