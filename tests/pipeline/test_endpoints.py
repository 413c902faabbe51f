"""Webhook endpoints end to end, in-process: the API via chalice.test.Client on moto, the
event-source runner, one real receiver per endpoint on 127.0.0.1 (fan-out, filters, order,
isolation of a failing endpoint, rotation, 410, replay, test ping, stats, the failed list
and redelivery per endpoint)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.config import get_settings
from tests.conftest import drain, event_ids, queue_depth, run_session
from tests.receiver import Receiver, always


@pytest.fixture
def pipeline(api, aws, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """The runner with no WEBHOOK_URL (so no default endpoint): endpoints come from the API.
    The retry schedule is the test's parameter (default: three attempts, no delay)."""
    import app as app_module
    from local.runner import Runner

    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", getattr(request, "param", "0,0"))
    get_settings.cache_clear()
    return Runner(app_module, aws.stream_arn, aws.delivery_queue_url)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


def endpoint(api, receivers: list[Receiver], **fields: Any) -> tuple[dict, Receiver]:
    """A receiver on 127.0.0.1 and an endpoint for it (the receiver verifies with its secret)."""
    receiver = Receiver()
    receivers.append(receiver)
    created = api.post("/v1/webhook-endpoints", {"url": receiver.url, **fields})
    assert created.status_code == 201, created.json
    receiver.secret = created.json["secret"]
    return created.json, receiver


def events_of(api, sid: str) -> list[dict]:
    return api.get(f"/v1/sessions/{sid}/events?limit=100").json["items"]


def test_two_endpoints_with_different_filters_each_get_exactly_their_events_in_order(api, aws, pipeline,
                                                                                    receivers) -> None:
    # GIVEN an LMS that wants starts and ends, and an analytics sink that wants every report
    lms, lms_receiver = endpoint(api, receivers, event_types=["session_created", "session_ended"])
    sink, sink_receiver = endpoint(api, receivers, event_types=["progress_update"])
    # WHEN two sessions run to the end
    for sid in ("s-a", "s-b"):
        run_session(api, sid, 3)
    expected_lms = {sid: [e["event_id"] for e in events_of(api, sid) if e["event_type"] != "progress_update"]
                    for sid in ("s-a", "s-b")}
    expected_sink = {sid: [e["event_id"] for e in events_of(api, sid) if e["event_type"] == "progress_update"]
                     for sid in ("s-a", "s-b")}
    drain(pipeline, lambda: len(lms_receiver.delivered()) == 4 and len(sink_receiver.delivered()) == 6
          and queue_depth(aws.delivery_queue_url) == 0)
    # THEN each got exactly its events, each session's in order, signed with its own secret
    for receiver, expected in ((lms_receiver, expected_lms), (sink_receiver, expected_sink)):
        assert len(receiver.requests) == sum(len(v) for v in expected.values())
        for sid, ids in expected.items():
            got = [r.headers["webhook-id"] for r in receiver.requests if r.json["session_id"] == sid]
            assert got == ids
        assert all(r.verified for r in receiver.requests)
    # AND each event shows its delivery per endpoint
    events = events_of(api, "s-a")
    assert events[0]["deliveries"] == {lms["endpoint_id"]: events[0]["deliveries"][lms["endpoint_id"]]}
    assert events[0]["deliveries"][lms["endpoint_id"]]["status"] == "delivered"
    assert events[1]["deliveries"][sink["endpoint_id"]]["status"] == "delivered"
    assert {a["endpoint_id"] for e in events for a in e["delivery_attempts"]} == {lms["endpoint_id"],
                                                                                 sink["endpoint_id"]}


@pytest.mark.parametrize("pipeline", ["30,30"], indirect=True)
def test_a_failing_endpoint_delays_nothing_at_the_other(api, aws, pipeline, receivers) -> None:
    # GIVEN two endpoints taking every event, one of them down (its retries wait 30 s)
    down, down_receiver = endpoint(api, receivers)
    down_receiver.behaviour = always(500)
    _, up_receiver = endpoint(api, receivers)
    run_session(api, "s-1", 3)
    ids = event_ids(api, "s-1")
    # WHEN the pipeline runs
    started = time.monotonic()
    drain(pipeline, lambda: len(up_receiver.delivered()) == len(ids) and len(down_receiver.requests) >= 1,
          timeout=20)
    for _ in range(5):
        pipeline.pump()
    # THEN the healthy endpoint got the whole session, in order, at once (well before the
    # failing endpoint's first retry is due)
    assert time.monotonic() - started < 20
    assert [r.headers["webhook-id"] for r in up_receiver.delivered()] == ids
    # while the failing one tried only its head (held back for its 30 s retry), nothing else
    assert [r.headers["webhook-id"] for r in down_receiver.requests] == ids[:1]
    events = events_of(api, "s-1")
    assert events[0]["deliveries"][down["endpoint_id"]]["status"] == "retrying"
    assert events[1]["deliveries"][down["endpoint_id"]] == {"status": "pending"}


def test_rotation_signs_with_both_secrets_during_the_grace_and_only_the_new_after(api, aws, pipeline,
                                                                                   receivers) -> None:
    created, receiver = endpoint(api, receivers, event_types=["session_created"])
    old = created["secret"]
    path = f"/v1/webhook-endpoints/{created['endpoint_id']}/rotate-secret"
    # WHEN the secret is rotated with a grace period
    new = api.post(path, {"grace_seconds": 3600}).json["secret"]
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 1)
    # THEN the webhook carries two signatures: a receiver with either secret verifies
    during = receiver.requests[0]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
    # WHEN the grace period is over (rotated again, with a 1 s grace, which then passes)
    newest = api.post(path, {"grace_seconds": 1}).json["secret"]
    time.sleep(1.2)
    run_session(api, "s-2", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 2)
    # THEN only the newest secret verifies
    after = receiver.requests[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(after.body, after.headers)
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            Webhook(stale).verify(after.body, after.headers)


def test_a_410_disables_that_endpoint_only(api, aws, pipeline, receivers) -> None:
    gone, gone_receiver = endpoint(api, receivers)
    gone_receiver.behaviour = always(410)
    _, other_receiver = endpoint(api, receivers)
    run_session(api, "s-1", 2)
    ids = event_ids(api, "s-1")
    drain(pipeline, lambda: len(other_receiver.delivered()) == len(ids) and queue_depth(aws.delivery_queue_url) == 0)
    for _ in range(5):
        pipeline.pump()
    # THEN the 410 endpoint got one request and is disabled, saying why
    assert len(gone_receiver.requests) == 1
    read = api.get(f"/v1/webhook-endpoints/{gone['endpoint_id']}").json
    assert read["enabled"] is False and "410" in read["disabled_reason"] and read["disabled_at"]
    # AND later events are not queued for it at all
    run_session(api, "s-2", 1)
    drain(pipeline, lambda: len(other_receiver.delivered()) == len(ids) + 3 and queue_depth(aws.delivery_queue_url) == 0)
    assert len(gone_receiver.requests) == 1
    assert events_of(api, "s-2")[0]["deliveries"][gone["endpoint_id"]] == {"status": "endpoint_disabled"}
    # AND a test ping or a replay to it is refused until it is enabled again
    assert api.post(f"/v1/webhook-endpoints/{gone['endpoint_id']}/test").json["error"] == "endpoint_disabled"


def test_replay_resends_the_window_with_the_original_ids_to_that_endpoint_only(api, aws, pipeline,
                                                                               receivers) -> None:
    first, first_receiver = endpoint(api, receivers)
    _, second_receiver = endpoint(api, receivers)
    run_session(api, "s-1", 2)
    run_session(api, "s-2", 2)
    ids = {sid: event_ids(api, sid) for sid in ("s-1", "s-2")}
    total = sum(len(v) for v in ids.values())
    drain(pipeline, lambda: len(first_receiver.delivered()) == total and len(second_receiver.delivered()) == total)
    since = events_of(api, "s-1")[0]["occurred_at"]
    # WHEN the first endpoint replays the window, two events per request
    path = f"/v1/webhook-endpoints/{first['endpoint_id']}/replay"
    steps, body = [], {"since": since, "limit": 2}
    while True:
        step = api.post(path, body)
        assert step.status_code == 200, step.json
        steps.append(step.json)
        if step.json["done"]:
            break
        body = {**body, "cursor": step.json["next_cursor"]}
    assert sum(s["queued"] for s in steps) == total and all(s["queued"] <= 2 for s in steps)
    drain(pipeline, lambda: len(first_receiver.delivered()) == 2 * total and queue_depth(aws.delivery_queue_url) == 0)
    # THEN it got every event again, same webhook-ids, each session in order; the other nothing
    replayed = first_receiver.delivered()[total:]
    for sid, expected in ids.items():
        assert [r.headers["webhook-id"] for r in replayed if r.json["session_id"] == sid] == expected
    assert len(second_receiver.requests) == total
    # AND a window before everything replays nothing
    empty = api.post(path, {"since": "2020-01-01T00:00:00.000000Z", "until": "2020-01-02T00:00:00.000000Z"})
    assert empty.json == {"endpoint_id": first["endpoint_id"], "queued": 0, "scanned": 0,
                          "next_cursor": None, "done": True}


def test_a_test_ping_goes_through_the_pipeline_and_counts_in_the_stats(api, aws, pipeline, receivers) -> None:
    created, receiver = endpoint(api, receivers)
    sent = api.post(f"/v1/webhook-endpoints/{created['endpoint_id']}/test")
    assert sent.status_code == 202 and sent.json["status"] == "queued"
    drain(pipeline, lambda: len(receiver.delivered()) == 1)
    ping = receiver.requests[0]
    assert ping.json["event_type"] == "ping" and ping.headers["webhook-id"] == sent.json["event_id"]
    assert ping.verified
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 4)
    stats = api.get(f"/v1/webhook-endpoints/{created['endpoint_id']}").json["stats"]
    assert stats["attempts"] == 4 and stats["delivered"] == 4 and stats["success_rate"] == 1.0
    assert stats["p50_latency_ms"] is not None and stats["p99_latency_ms"] >= stats["p50_latency_ms"]
    assert stats["last_success_at"] and stats["last_error"] is None


def test_failing_every_attempt_for_the_configured_days_disables(api, aws, pipeline, receivers, monkeypatch) -> None:
    # GIVEN ENDPOINT_DISABLE_AFTER_DAYS=0: failing at all is failing long enough
    monkeypatch.setenv("ENDPOINT_DISABLE_AFTER_DAYS", "0")
    get_settings.cache_clear()
    created, receiver = endpoint(api, receivers, event_types=["session_created"])
    receiver.behaviour = always(500)
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: len(receiver.requests) >= 1 and queue_depth(aws.delivery_queue_url) == 0)
    read = api.get(f"/v1/webhook-endpoints/{created['endpoint_id']}").json
    assert read["enabled"] is False and "ENDPOINT_DISABLE_AFTER_DAYS" in read["disabled_reason"]
    assert read["stats"]["failing_since"] and read["stats"]["last_error"] == "HTTP 500"
    assert read["stats"]["success_rate"] == 0.0


def test_the_failed_list_and_redelivery_are_per_endpoint(api, aws, pipeline, receivers) -> None:
    # GIVEN an endpoint that fails every attempt (three) and one that works
    bad, bad_receiver = endpoint(api, receivers, event_types=["session_created"])
    bad_receiver.behaviour = always(500)
    good, good_receiver = endpoint(api, receivers, event_types=["session_created"])
    run_session(api, "s-1", 1)
    [event_id] = [e["event_id"] for e in events_of(api, "s-1") if e["event_type"] == "session_created"]
    drain(pipeline, lambda: len(bad_receiver.requests) == 3 and len(good_receiver.delivered()) == 1
          and queue_depth(aws.delivery_queue_url) == 0)
    # THEN the event is failed (at one endpoint), listed for it, not for the other
    event = events_of(api, "s-1")[0]
    assert event["delivery_status"] == "failed"
    assert event["deliveries"][bad["endpoint_id"]]["status"] == "failed"
    assert event["deliveries"][good["endpoint_id"]]["status"] == "delivered"
    listed = api.get(f"/v1/deliveries?status=failed&endpoint_id={bad['endpoint_id']}").json["items"]
    assert [(d["event_id"], d["failed_endpoints"]) for d in listed] == [(event_id, [bad["endpoint_id"]])]
    assert api.get(f"/v1/deliveries?status=failed&endpoint_id={good['endpoint_id']}").json["items"] == []
    # WHEN the bad endpoint recovers and the event is redelivered
    bad_receiver.behaviour = always(200)
    again = api.post(f"/v1/events/{event_id}/redeliver")
    assert again.status_code == 202 and again.json["endpoints"] == [bad["endpoint_id"]]
    drain(pipeline, lambda: len(bad_receiver.delivered()) == 1 and queue_depth(aws.delivery_queue_url) == 0)
    # THEN only the endpoint it failed at got it again, and it left the failed list
    assert len(good_receiver.requests) == 1
    assert api.get("/v1/deliveries?status=failed").json["items"] == []
    event = events_of(api, "s-1")[0]
    assert event["delivery_status"] == "delivered"
    assert event["deliveries"][bad["endpoint_id"]]["status"] == "delivered"
    # AND a redelivery to an unknown endpoint is a 404
    unknown = api.post(f"/v1/events/{event_id}/redeliver?endpoint_id=ep_0000000000000000")
    assert unknown.status_code == 404 and unknown.json["error"] == "endpoint_not_found"


def test_webhook_url_creates_and_updates_the_default_endpoint(api, aws, pipeline, receivers, monkeypatch) -> None:
    # GIVEN today's configuration: WEBHOOK_URL / WEBHOOK_SECRET
    receiver = Receiver(secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    receivers.append(receiver)
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("WEBHOOK_SECRET", receiver.secret)
    get_settings.cache_clear()
    # WHEN events flow
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 3)
    # THEN they went to the endpoint `default`, with the configured filter, verified
    default = api.get("/v1/webhook-endpoints/default").json
    assert default["url"] == receiver.url
    assert default["event_types"] == ["progress_update:DONE", "session_created", "session_ended"]
    assert all(r.verified for r in receiver.requests)
    # WHEN the configuration changes (a new URL and secret)
    moved = Receiver(secret="whsec_" + "TmV3U2VjcmV0Rm9yVGhlRGVmYXVsdEVuZHBvaW50IQ==")
    receivers.append(moved)
    monkeypatch.setenv("WEBHOOK_URL", moved.url)
    monkeypatch.setenv("WEBHOOK_SECRET", moved.secret)
    get_settings.cache_clear()
    run_session(api, "s-2", 1)
    drain(pipeline, lambda: len(moved.delivered()) == 3)
    # THEN the default endpoint follows it; the old secret still signs during its grace
    assert api.get("/v1/webhook-endpoints/default").json["url"] == moved.url
    assert all(r.verified for r in moved.requests)
    Webhook(receiver.secret).verify(moved.requests[0].body, moved.requests[0].headers)
    assert len(receiver.requests) == 3


def test_an_event_stored_before_endpoints_existed_gets_per_endpoint_state(api, aws, make_session) -> None:
    """An event item written before per-endpoint state (no `deliveries` map, its delivery in
    the top-level fields) keeps that state as the default endpoint's and takes new attempts."""
    from chalicelib.db import events
    from chalicelib.db import table as store
    from chalicelib.domain.endpoints import delivery_state

    session = make_session()
    sid = session["session_id"]
    key = events.key(sid, 1)
    # GIVEN the event as an older version stored it: delivered once, no `deliveries`
    store.get_client().update_item(
        TableName=aws.table_name, Key=store.to_item(key),
        UpdateExpression="SET delivery_status = :s, delivery_round = :r, attempt_count = :n REMOVE deliveries",
        ExpressionAttributeValues=store.values(s="delivered", r="0", n=1))
    legacy = store.get_item(key)
    assert "deliveries" not in legacy
    assert delivery_state(legacy, "default") == {"status": "delivered", "round": "0", "attempt_count": 1}
    # WHEN another endpoint records an attempt on it
    assert events.record_attempt(sid, 1, endpoint_id="ep_0123456789abcdef", status="delivered",
                                 entry={"attempt": 1, "outcome": "delivered"}, round_id="0", attempt=1,
                                 now="2026-12-02T00:00:00.000000Z", event_id=legacy["event_id"])
    # THEN the map was added and holds that endpoint's state; the default's stays readable
    stored = store.get_item(key)
    assert stored["deliveries"]["ep_0123456789abcdef"]["status"] == "delivered"
    assert stored["delivery_attempts"][-1]["endpoint_id"] == "ep_0123456789abcdef"
    assert delivery_state(stored, "default") == {"status": "delivered", "round": "0", "attempt_count": 1}


@pytest.mark.parametrize("pipeline", ["0"], indirect=True)
def test_a_redrive_can_move_one_endpoints_dead_letters_only(api, aws, pipeline, receivers) -> None:
    # GIVEN two endpoints down for good: every webhook of a session dead-lettered at both
    first, first_receiver = endpoint(api, receivers)
    second, second_receiver = endpoint(api, receivers)
    first_receiver.behaviour = second_receiver.behaviour = always(500)
    run_session(api, "s-1", 1)
    ids = event_ids(api, "s-1")
    drain(pipeline, lambda: queue_depth(aws.dead_letter_queue_url) == 2 * len(ids)
          and queue_depth(aws.delivery_queue_url) == 0)
    # WHEN both are back, and only the first endpoint's dead letters are redriven
    first_receiver.behaviour = second_receiver.behaviour = always(200)
    step = api.post(f"/v1/deliveries/redrive?endpoint_id={first['endpoint_id']}")
    assert step.status_code == 200 and step.json == {"moved": len(ids), "remaining": 0, "dropped": 0}
    drain(pipeline, lambda: len(first_receiver.delivered()) == len(ids) and queue_depth(aws.delivery_queue_url) == 0)
    # THEN the first got its webhooks again, in order; the second's stay dead-lettered
    assert [r.headers["webhook-id"] for r in first_receiver.delivered()] == ids
    assert second_receiver.delivered() == []
    assert queue_depth(aws.dead_letter_queue_url) == len(ids)
    listed = api.get(f"/v1/deliveries?status=failed&endpoint_id={second['endpoint_id']}").json["items"]
    assert {d["event_id"] for d in listed} == set(ids)
    # AND the rest follow with a redrive of the second
    assert api.post(f"/v1/deliveries/redrive?endpoint_id={second['endpoint_id']}").json["moved"] == len(ids)
    drain(pipeline, lambda: len(second_receiver.delivered()) == len(ids))
    assert [r.headers["webhook-id"] for r in second_receiver.delivered()] == ids


# ---- test pings follow the delivery policy ------------------------------------------------


def ping(api, endpoint_id: str) -> str:
    sent = api.post(f"/v1/webhook-endpoints/{endpoint_id}/test")
    assert sent.status_code == 202 and sent.json["status"] == "queued", sent.json
    return sent.json["event_id"]


def test_a_ping_is_retried_on_the_schedule_until_it_is_delivered(api, aws, pipeline, receivers) -> None:
    # GIVEN a receiver that fails twice, then answers 200 (the schedule allows three attempts)
    created, receiver = endpoint(api, receivers)
    receiver.behaviour = lambda n, body: (500, {}) if n <= 2 else (200, {})
    # WHEN a test ping is sent
    event_id = ping(api, created["endpoint_id"])
    path = f"/v1/webhook-endpoints/{created['endpoint_id']}/pings/{event_id}"
    assert api.get(path).json["status"] == "queued"
    drain(pipeline, lambda: len(receiver.delivered()) == 1 and queue_depth(aws.delivery_queue_url) == 0)
    # THEN it was tried three times with the same webhook-id, and its record says delivered
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event_id] * 3
    assert all(r.verified for r in receiver.requests)
    read = api.get(path)
    assert read.status_code == 200
    assert read.json["status"] == "delivered" and read.json["attempt_count"] == 3 and read.json["max_attempts"] == 3
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in read.json["attempts"]] == [
        (1, "retrying", 500), (2, "retrying", 500), (3, "delivered", 200)]
    assert read.json["next_attempt_at"] is None
    # AND the endpoint's stats count the three attempts
    stats = api.get(f"/v1/webhook-endpoints/{created['endpoint_id']}").json["stats"]
    assert stats["attempts"] == 3 and stats["delivered"] == 1
    assert [a["outcome"] for a in stats["recent_attempts"]] == ["delivered", "retrying", "retrying"]
    assert queue_depth(aws.dead_letter_queue_url) == 0


def test_a_ping_whose_attempts_are_spent_shows_as_failed(api, aws, pipeline, receivers) -> None:
    # GIVEN a receiver that always fails
    created, receiver = endpoint(api, receivers)
    receiver.behaviour = always(500)
    event_id = ping(api, created["endpoint_id"])
    drain(pipeline, lambda: len(receiver.requests) == 3 and queue_depth(aws.delivery_queue_url) == 0)
    for _ in range(3):
        pipeline.pump()
    # THEN no fourth attempt: the ping's record says failed, after all its attempts
    assert len(receiver.requests) == 3
    read = api.get(f"/v1/webhook-endpoints/{created['endpoint_id']}/pings/{event_id}").json
    assert read["status"] == "failed" and read["attempt_count"] == 3
    assert [a["outcome"] for a in read["attempts"]] == ["retrying", "retrying", "failed"]
    # AND the endpoint shows it where an operator looks: its last error names the ping
    stats = api.get(f"/v1/webhook-endpoints/{created['endpoint_id']}").json["stats"]
    assert stats["last_error"] == f"test ping {event_id} failed, all 3 attempts spent: HTTP 500"
    assert stats["attempts"] == 3 and stats["delivered"] == 0 and stats["failing_since"]
    # AND it is not dead-lettered (a redrive has nothing to send again)
    assert queue_depth(aws.dead_letter_queue_url) == 0
    # AND a ping is read only through its own endpoint; unknown ids are 404s
    other, _ = endpoint(api, receivers)
    for path in (f"/v1/webhook-endpoints/{other['endpoint_id']}/pings/{event_id}",
                 f"/v1/webhook-endpoints/{created['endpoint_id']}/pings/evt_ping_0",
                 f"/v1/webhook-endpoints/{created['endpoint_id']}/pings/evt_123"):
        missing = api.get(path)
        assert missing.status_code == 404 and missing.json["error"] == "ping_not_found", (path, missing.json)


@pytest.mark.parametrize("pipeline", ["30,30"], indirect=True)
def test_a_ping_being_retried_says_when_and_holds_back_no_other_ping(api, aws, pipeline, receivers) -> None:
    # GIVEN a receiver whose first answer is a 503 with Retry-After: 60
    created, receiver = endpoint(api, receivers)
    receiver.behaviour = lambda n, body: (503, {"Retry-After": "60"}) if n == 1 else (200, {})
    first = ping(api, created["endpoint_id"])
    drain(pipeline, lambda: len(receiver.requests) == 1)
    # WHEN a second ping follows while the first waits for its retry
    second = ping(api, created["endpoint_id"])
    drain(pipeline, lambda: len(receiver.delivered()) == 1)
    # THEN the second is delivered at once; the first is retrying, its next attempt in 60 s
    assert [r.headers["webhook-id"] for r in receiver.requests] == [first, second]
    base = f"/v1/webhook-endpoints/{created['endpoint_id']}/pings"
    waiting = api.get(f"{base}/{first}").json
    assert waiting["status"] == "retrying" and waiting["attempt_count"] == 1
    assert waiting["attempts"][0]["outcome"] == "throttled" and waiting["attempts"][0]["retry_in_seconds"] == 60
    assert waiting["next_attempt_at"] > waiting["attempts"][0]["at"]
    assert api.get(f"{base}/{second}").json["status"] == "delivered"


# ---- recent attempts: the last 20, across batches -----------------------------------------


def test_recent_attempts_are_the_last_twenty_across_batches(api, aws, pipeline, receivers) -> None:
    from collections import Counter

    from chalicelib.db import table as store
    from chalicelib.pipeline import delivery

    # GIVEN an endpoint taking every event, and sessions delivered batch after batch
    created, receiver = endpoint(api, receivers)
    for n in range(3):
        run_session(api, f"s-{n}", 2)  # 4 events each
        drain(pipeline, lambda n=n: len(receiver.delivered()) == 4 * (n + 1) and
              queue_depth(aws.delivery_queue_url) == 0)
    # AND one delivery instance that never saw the ring's position (another Lambda instance)
    delivery._ring_at.clear()
    for n in range(3, 6):
        run_session(api, f"s-{n}", 2)
    drain(pipeline, lambda: len(receiver.delivered()) == 24 and queue_depth(aws.delivery_queue_url) == 0)
    sent = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(sent) == 24
    # WHEN the endpoint is read (its key check cached: one read of the endpoint and its stats)
    path = f"/v1/webhook-endpoints/{created['endpoint_id']}"
    api.get(path)
    calls: Counter = Counter()
    store.get_client().meta.events.register("before-call.dynamodb",
                                            lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    stats = api.get(path).json["stats"]
    # THEN recent_attempts are exactly the last 20 attempts, newest first, for one BatchGetItem
    assert dict(calls) == {"BatchGetItem": 1}
    assert [a["event_id"] for a in stats["recent_attempts"]] == sent[-20:][::-1]
    assert {a["outcome"] for a in stats["recent_attempts"]} == {"delivered"}
    assert stats["attempts"] == 24


# ---- one endpoint's failed list: full pages ------------------------------------------------


@pytest.mark.parametrize("pipeline", ["0"], indirect=True)
def test_the_failed_list_of_one_endpoint_has_full_pages(api, aws, pipeline, receivers) -> None:
    from collections import Counter

    from chalicelib.db import table as store

    # GIVEN two failing endpoints whose failures interleave: one takes starts and ends, the
    # other progress reports
    ends, ends_receiver = endpoint(api, receivers, event_types=["session_created", "session_ended"])
    steps, steps_receiver = endpoint(api, receivers, event_types=["progress_update"])
    ends_receiver.behaviour = steps_receiver.behaviour = always(500)
    for n in range(4):
        run_session(api, f"s-{n}", 3)
    drain(pipeline, lambda: len(ends_receiver.requests) == 16 and len(steps_receiver.requests) == 24
          and queue_depth(aws.delivery_queue_url) == 0, timeout=60)
    expected = {ends["endpoint_id"]: set(), steps["endpoint_id"]: set()}
    for n in range(4):
        for e in events_of(api, f"s-{n}"):
            expected[ends["endpoint_id"] if e["event_type"] != "progress_update" else steps["endpoint_id"]].add(
                e["event_id"])
    assert len(api.get("/v1/deliveries?status=failed&limit=100").json["items"]) == 20
    for endpoint_id, ids in expected.items():
        # WHEN its failed list is paged through, 3 at a time
        pages, cursor = [], None
        while True:
            query = f"/v1/deliveries?status=failed&endpoint_id={endpoint_id}&limit=3" + (
                f"&cursor={cursor}" if cursor else "")
            calls: Counter = Counter()

            def handler(event_name: str, params: dict, **_: Any) -> None:
                # (the endpoint list's Query, cached for 10 s, may be refreshed by the view: not counted)
                if params.get("KeyConditionExpression") != "PK = :pk AND begins_with(SK, :prefix)":
                    calls.update([(event_name.rsplit(".", 1)[-1], params.get("IndexName"))])

            store.get_client().meta.events.register("before-parameter-build.dynamodb", handler)
            answer = api.get(query)
            store.get_client().meta.events.unregister("before-parameter-build.dynamodb", handler)
            assert answer.status_code == 200, answer.json
            # one Query of the endpoint's failed index and one BatchGetItem per page (the key check is cached)
            assert dict(calls) == {("Query", "GSI1"): 1, ("BatchGetItem", None): 1}, dict(calls)
            pages.append([d["event_id"] for d in answer.json["items"]])
            cursor = answer.json["next_cursor"]
            if cursor is None:
                break
        # THEN every page but the last is full, and together they are exactly its failures, once each
        assert all(len(page) == 3 for page in pages[:-1]), pages
        assert len(pages[-1]) <= 3
        listed = [i for page in pages for i in page]
        assert len(listed) == len(set(listed)) and set(listed) == ids
    # AND a deleted session's events leave the lists (met and removed while reading)
    assert api.delete("/v1/sessions/s-0").status_code in (200, 204)
    page = api.get(f"/v1/deliveries?status=failed&endpoint_id={steps['endpoint_id']}&limit=6").json
    assert len(page["items"]) == 6 and not {d["session_id"] for d in page["items"]} & {"s-0"}


# ---- a deleted endpoint's failures -------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["0"], indirect=True)
def test_deleting_an_endpoint_takes_its_failures_off_the_failed_list(api, aws, pipeline, receivers) -> None:
    # GIVEN an endpoint that failed every event, another that failed the session's start, and
    # one that got everything
    gone, gone_receiver = endpoint(api, receivers)
    other, other_receiver = endpoint(api, receivers, event_types=["session_created"])
    fine, fine_receiver = endpoint(api, receivers)
    gone_receiver.behaviour = other_receiver.behaviour = always(500)
    run_session(api, "s-1", 1)
    ids = event_ids(api, "s-1")
    drain(pipeline, lambda: len(gone_receiver.requests) == 2 * len(ids) and len(other_receiver.requests) == 2
          and len(fine_receiver.delivered()) == len(ids) and queue_depth(aws.delivery_queue_url) == 0)
    assert {d["event_id"] for d in api.get("/v1/deliveries?status=failed").json["items"]} == set(ids)
    # WHEN the first endpoint is deleted
    assert api.delete(f"/v1/webhook-endpoints/{gone['endpoint_id']}").status_code == 204
    # THEN only the start, failed at the other endpoint too, is still listed, for that one only
    listed = api.get("/v1/deliveries?status=failed").json["items"]
    assert [(d["event_id"], d["failed_endpoints"]) for d in listed] == [(ids[0], [other["endpoint_id"]])]
    assert api.get(f"/v1/deliveries?status=failed&endpoint_id={gone['endpoint_id']}").json["items"] == []
    events = events_of(api, "s-1")
    assert [e["deliveries"][gone["endpoint_id"]]["status"] for e in events] == ["endpoint_deleted"] * len(ids)
    assert [e["delivery_status"] for e in events] == ["failed"] + ["delivered"] * (len(ids) - 1)
    # AND a redelivery goes to the endpoint it still failed at; naming the deleted one is a 404
    refused = api.post(f"/v1/events/{ids[0]}/redeliver?endpoint_id={gone['endpoint_id']}")
    assert refused.status_code == 404 and refused.json["error"] == "endpoint_not_found"
    assert api.post(f"/v1/events/{ids[0]}/redeliver").json["endpoints"] == [other["endpoint_id"]]
    # AND a redrive deletes the deleted endpoint's dead letters instead of moving them
    step = api.post("/v1/deliveries/redrive").json
    assert step == {"moved": 1, "remaining": 0, "dropped": len(ids)}
    other_receiver.behaviour = always(200)
    drain(pipeline, lambda: len(other_receiver.delivered()) >= 1 and queue_depth(aws.delivery_queue_url) == 0)
    assert gone_receiver.requests[2 * len(ids):] == []
    assert api.get("/v1/deliveries?status=failed").json["items"] == []


@pytest.mark.parametrize("pipeline", ["0"], indirect=True)
def test_a_deletion_out_of_time_is_finished_by_the_sweep(api, aws, pipeline, receivers, monkeypatch) -> None:
    from chalicelib.pipeline import delivery

    gone, gone_receiver = endpoint(api, receivers, event_types=["session_created", "session_ended"])
    gone_receiver.behaviour = always(500)
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: len(gone_receiver.requests) == 4 and queue_depth(aws.delivery_queue_url) == 0)
    # GIVEN a DELETE whose request has no time left to forget the failures
    monkeypatch.setattr(delivery, "FORGET_SECONDS", 0.0)
    assert api.delete(f"/v1/webhook-endpoints/{gone['endpoint_id']}").status_code == 204
    # THEN they are still listed, but shown as belonging to a deleted endpoint
    listed = api.get("/v1/deliveries?status=failed").json["items"]
    assert len(listed) == 2
    assert {d["deliveries"][gone["endpoint_id"]]["status"] for d in listed} == {"endpoint_deleted"}
    # WHEN the scheduled sweep runs
    delivery.sweep_dead_letters(seconds=5)
    # THEN they are gone from the list
    assert api.get("/v1/deliveries?status=failed").json["items"] == []
