"""The attempt budget belongs to the application: held-back followers keep their attempts,
SQS's own limit is a safety net whose dead letters are still listed, and every attempt is
observable (a JSON log record with correlation fields, EMF metrics). In-process: the API via
chalice.test.Client on moto, the local event-source runner, a receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from chalicelib.db import table as store
from chalicelib.domain.delivery_policy import safety_net_receive_count
from chalicelib.pipeline import delivery, queue
from local.runner import lambda_sqs_record
from tests.conftest import drain, event_ids, queue_depth, run_session
from tests.receiver import always


def record_batches(runner: Any) -> list[list[str]]:
    """The webhook ids of each batch the runner hands to the delivery function."""
    batches: list[list[str]] = []
    invoke = runner._invoke

    def spy(name: str, event: dict, **kw: Any) -> Any:
        if name == "delivery_handler":
            batches.append([json.loads(r["body"])["event_id"] for r in event["Records"]])
        return invoke(name, event, **kw)

    runner._invoke = spy
    return batches


@pytest.mark.parametrize("attempts", [3], indirect=True)
def test_a_follower_held_back_behind_its_failing_head_keeps_all_its_attempts(api, aws, runner, receiver) -> None:
    # GIVEN a session of four webhooks, whose head fails every attempt and whose followers
    # then succeed
    run_session(api, "s-1", 2)
    ids = event_ids(api, "s-1")
    receiver.behaviour = lambda n, body: (500, {}) if json.loads(body)["event_id"] == ids[0] else (200, {})
    batches = record_batches(runner)
    # WHEN the pipeline runs
    drain(runner, lambda: len(receiver.delivered()) == 3 and queue_depth(aws.delivery_queue_url) == 0)
    # THEN the followers were received (and put back) with each of the head's attempts ...
    received = Counter(i for batch in batches for i in batch)
    assert received[ids[1]] > 1, batches
    # ... yet each was delivered at its own first attempt, in order, after the head failed
    events = api.get("/v1/sessions/s-1/events").json["items"]
    assert [len(e["delivery_attempts"]) for e in events] == [3, 1, 1, 1]
    assert [e["delivery_status"] for e in events] == ["failed", "delivered", "delivered", "delivered"]
    assert [r.headers["webhook-id"] for r in receiver.delivered()] == ids[1:]
    # and the head is listed as failed with its whole log, and sits in the DLQ with its group
    failed = api.get("/v1/deliveries?status=failed").json["items"]
    assert [f["event_id"] for f in failed] == [ids[0]]
    assert [a["outcome"] for a in failed[0]["delivery_attempts"]] == ["retrying", "retrying", "failed"]
    dead = queue.receive(aws.dead_letter_queue_url)
    assert len(dead) == 1 and dead[0]["Attributes"]["MessageGroupId"] == "s-1"
    assert queue.attribute(dead[0], delivery.DEAD_LETTERED) == "delivery"


@pytest.mark.parametrize("attempts", [4], indirect=True)
@pytest.mark.parametrize("stack_parameters", [{"MaxReceiveCount": "2"}], indirect=True)
def test_what_sqs_dead_letters_by_itself_is_still_listed(api, aws, runner, receiver) -> None:
    # GIVEN a queue whose own receive limit (forced low here) is below the attempt budget,
    # and a receiver that is down
    receiver.behaviour = always(500)
    run_session(api, "s-1", 2)
    ids = event_ids(api, "s-1")
    # WHEN SQS moves the messages to the dead-letter queue before their budget is spent
    drain(runner, lambda: queue_depth(aws.dead_letter_queue_url) == len(ids)
          and queue_depth(aws.delivery_queue_url) == 0)
    assert api.get("/v1/deliveries?status=failed").json["items"] == []  # nobody told us yet
    # AND the scheduled sweep runs
    assert runner.run_scheduled("dead_letter_handler") == set()  # ran, and did not fail
    # THEN every dead letter is listed, saying what happened, and still sits in the DLQ
    failed = api.get("/v1/deliveries?status=failed").json["items"]
    assert {f["event_id"] for f in failed} == set(ids)
    assert all("receive limit" in f["delivery_attempts"][-1]["error"] for f in failed)
    assert queue_depth(aws.dead_letter_queue_url) == len(ids)
    # a second sweep changes nothing (they are listed already)
    assert delivery.sweep_dead_letters() == {"seen": len(ids), "recorded": 0}
    # WHEN the receiver is back and the DLQ is redriven, THEN all are delivered, in order
    receiver.behaviour = always(200)
    assert delivery.redrive(aws.dead_letter_queue_url, aws.delivery_queue_url) == len(ids)
    drain(runner, lambda: len(receiver.delivered()) == len(ids))
    assert [r.headers["webhook-id"] for r in receiver.delivered()] == ids
    assert api.get("/v1/deliveries?status=failed").json["items"] == []


@pytest.mark.parametrize("stack_parameters", [{"MaxReceiveCount": "3"}], indirect=True)
def test_a_delivery_function_that_keeps_crashing_ends_in_the_failed_list(api, aws, runner, receiver,
                                                                          monkeypatch) -> None:
    # GIVEN the delivery log cannot be written (every attempt's bookkeeping crashes)
    original = store.update_item

    def broken(key, expression, **kwargs):
        if "delivery_attempts" in expression and "attempt_count" in expression:
            raise RuntimeError("the table is unreachable")
        return original(key, expression, **kwargs)

    monkeypatch.setattr(store, "update_item", broken)
    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})
    # WHEN SQS keeps offering the message (made visible again at once here) until its limit
    for _ in range(40):
        runner.pump_stream()
        for message in queue.receive(aws.delivery_queue_url, visibility_timeout=0):
            runner._invoke("delivery_handler", {"Records": [lambda_sqs_record(message, "arn:aws:sqs:q")]})
        if queue_depth(aws.dead_letter_queue_url):
            break
    assert queue_depth(aws.dead_letter_queue_url) == 1
    # THEN the sweep lists it as failed, although no attempt could be recorded
    delivery.sweep_dead_letters()
    failed = api.get("/v1/deliveries?status=failed").json["items"]
    assert [f["event_id"] for f in failed] == event_ids(api, "s-1")


def test_the_queue_limit_is_derived_from_the_schedule(aws) -> None:
    # the stack the tests and `make run` deploy: no hand-kept second setting
    from chalicelib.config import retry_schedule_from_env

    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.delivery_queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    limit = json.loads(attributes["RedrivePolicy"])["maxReceiveCount"]
    assert int(limit) == safety_net_receive_count(retry_schedule_from_env())


def test_the_packaged_queue_limit_follows_the_packaged_schedule(monkeypatch) -> None:
    from infra.package import merge_template

    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "1,2,3")
    template = merge_template()
    env = template["Resources"]["DeliveryHandler"]["Properties"]["Environment"]["Variables"]
    assert env["WEBHOOK_RETRY_SCHEDULE"] == "1,2,3"
    policy = template["Resources"]["DeliveryQueue"]["Properties"]["RedrivePolicy"]
    assert policy["maxReceiveCount"] == safety_net_receive_count((1, 2, 3)) == 50
    assert "MaxReceiveCount" not in template["Parameters"]


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("attempts", [3], indirect=True)
def test_each_attempt_logs_one_json_record_with_its_correlation_fields(api, aws, runner, receiver, capfd) -> None:
    receiver.behaviour = lambda n, body: (503, {"Retry-After": "0"}) if n == 1 else (200, {})
    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})
    capfd.readouterr()
    drain(runner, lambda: len(receiver.delivered()) == 1)
    records = [r for r in _lines(capfd.readouterr().out) if "_aws" not in r]
    attempts = [r for r in records if r.get("outcome")]
    assert [(r["level"], r["outcome"], r["attempt"], r["max_attempts"], r["status"]) for r in attempts] == [
        ("WARNING", "throttled", 1, 3, 503), ("INFO", "delivered", 2, 3, 200)]
    event_id = event_ids(api, "s-1")[0]
    for record in attempts:
        assert record["service"] == "session-service"
        assert record["function_name"] == "delivery_handler" and record["function_request_id"]
        assert record["session_id"] == "s-1" and record["event_id"] == event_id
        assert record["event_type"] == "session_created" and isinstance(record["latency_ms"], int)
    assert attempts[1]["lag_ms"] >= 0


def test_a_delivery_emits_its_metrics_as_emf(api, aws, runner, receiver, capfd) -> None:
    api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [{"step_number": 1, "title": "a"}]})
    api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"})
    capfd.readouterr()
    drain(runner, lambda: len(receiver.delivered()) == 1)
    blobs = [r for r in _lines(capfd.readouterr().out) if "_aws" in r]
    by_metric: dict[str, dict[str, Any]] = {}
    for blob in blobs:
        directive = blob["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "SessionService"
        for metric in directive["Metrics"]:
            by_metric[metric["Name"]] = {"unit": metric["Unit"], "dimensions": directive["Dimensions"][0],
                                         "blob": blob}
    attempt = by_metric["WebhookAttempts"]
    assert sorted(attempt["dimensions"]) == ["Outcome", "service"] and attempt["blob"]["Outcome"] == "delivered"
    assert attempt["blob"]["service"] == "session-service" and attempt["blob"]["WebhookAttempts"] == [1.0]
    assert by_metric["WebhookLatency"]["unit"] == "Milliseconds"
    assert by_metric["WebhookDeliveryLag"]["unit"] == "Seconds"
    assert by_metric["WebhookDeliveryLag"]["blob"]["WebhookDeliveryLag"][0] >= 0


def test_progress_reports_are_counted_by_outcome(api, make_session, capfd) -> None:
    session = make_session(steps=3)
    sid = session["session_id"]
    body = {"user_id": "user-1", "current_step": 1, "step_status": "DONE"}
    capfd.readouterr()
    assert api.post(f"/v1/sessions/{sid}/progress", body, headers={"Idempotency-Key": "k1"}).status_code == 200
    assert api.post(f"/v1/sessions/{sid}/progress", body, headers={"Idempotency-Key": "k1"}).status_code == 200
    assert api.post(f"/v1/sessions/{sid}/progress", {**body, "current_step": 9}).status_code == 400
    names = [(m["Name"], tuple(sorted(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])), b.get("ErrorCode"))
             for b in _lines(capfd.readouterr().out) if "_aws" in b
             for m in b["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert ("ProgressAccepted", ("service",), None) in names
    assert ("ProgressReplayed", ("service",), None) in names
    assert ("ProgressRejected", ("ErrorCode", "service"), "invalid_step") in names


@pytest.mark.parametrize("attempts", [2], indirect=True)
def test_the_overview_counts_failed_deliveries_exactly(api, aws, runner, receiver) -> None:
    # GIVEN two sessions' webhooks that all fail for good
    receiver.behaviour = always(500)
    run_session(api, "s-1", 1)
    run_session(api, "s-2", 1)
    ids = event_ids(api, "s-1") + event_ids(api, "s-2")
    drain(runner, lambda: queue_depth(aws.dead_letter_queue_url) == len(ids))
    drain(runner, lambda: runner.pump() == 0)  # the analytics consumer caught up
    # THEN the overview counts each once
    assert api.get("/v1/analytics/overview").json["deliveries_failed"] == len(ids) == 6
    # WHEN one session is deleted and the other's webhooks are redriven and delivered
    assert api.delete("/v1/sessions/s-2").status_code == 204
    receiver.behaviour = always(200)
    delivery.redrive(aws.dead_letter_queue_url, aws.delivery_queue_url)
    drain(runner, lambda: len(receiver.delivered()) == 3)
    drain(runner, lambda: runner.pump() == 0)
    # THEN none is counted any more (the deleted ones are dropped, not delivered)
    assert api.get("/v1/analytics/overview").json["deliveries_failed"] == 0


def test_a_progress_report_logs_one_json_record_with_the_key_and_the_session(api, make_session, capfd) -> None:
    from chalicelib.api import auth

    session = make_session(steps=3)
    sid = session["session_id"]
    capfd.readouterr()
    answer = api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": 1, "step_status": "DONE"})
    refused = api.post(f"/v1/sessions/{sid}/progress", {"user_id": "user-1", "current_step": 7, "step_status": "DONE"})
    records = [r for r in _lines(capfd.readouterr().out) if "_aws" not in r]
    accepted = [r for r in records if r["message"] == "progress accepted"]
    rejected = [r for r in records if r["message"] == "request refused"]
    assert len(accepted) == 1 and len(rejected) == 1, records
    key_id = auth.authenticate(f"Bearer {api.key}").key_id
    assert accepted[0]["api_key_id"] == key_id and accepted[0]["session_id"] == sid
    assert accepted[0]["event_id"] == answer.json["event_id"] and accepted[0]["level"] == "INFO"
    assert accepted[0]["function_name"] and accepted[0]["function_request_id"]
    assert rejected[0]["error_code"] == refused.json["error"] == "invalid_step" and rejected[0]["status"] == 400
    assert rejected[0]["api_key_id"] == key_id


def sqs_calls() -> Counter:
    calls: Counter = Counter()
    queue.get_client().meta.events.register(
        "before-call.sqs", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    return calls


def test_a_batch_hides_its_retries_and_releases_their_followers_in_one_request(api, aws, runner, receiver,
                                                                              monkeypatch) -> None:
    from chalicelib.config import get_settings

    # GIVEN a receiver that is down, retries 30 s apart, and a session of four webhooks
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "30,30")
    get_settings.cache_clear()
    receiver.behaviour = always(500)
    run_session(api, "s-1", 2)
    runner.pump_stream()
    calls = sqs_calls()
    # WHEN one queue batch holds the head and its followers
    assert runner.pump_queue() == 4
    # THEN one attempt was made, and the head hidden for 30 s with the followers released,
    # all in the function's one SQS request (the runner's receive is the event source's)
    assert len(receiver.requests) == 1
    assert calls == {"ChangeMessageVisibilityBatch": 1}, calls
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.delivery_queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                         "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessagesNotVisible"], attributes["ApproximateNumberOfMessages"]) == ("1", "3")
    assert runner.pump_queue() == 0  # FIFO: nothing of the session while its head waits out its delay


def test_a_redrive_deletes_what_it_moved_in_batches(aws) -> None:
    for n in range(12):
        queue.enqueue(json.dumps({"n": n}), group=f"g-{n % 3}", dedup_id=f"d-{n}", queue_url=aws.dead_letter_queue_url)
    calls = sqs_calls()
    assert delivery.redrive(aws.dead_letter_queue_url, aws.delivery_queue_url) == 12
    # one DeleteMessageBatch per receive that returned messages (the last one returns none)
    assert calls["DeleteMessageBatch"] == calls["ReceiveMessage"] - 1 < 12 and calls["SendMessage"] == 12, calls
    assert "DeleteMessage" not in calls
    assert queue_depth(aws.dead_letter_queue_url) == 0 and queue_depth(aws.delivery_queue_url) == 12
