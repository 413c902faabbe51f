"""Inbox forwarding end to end in-process: captures through chalice.test.Client on moto, the
table's stream and the delivery queue driven by the local event-source runner, destinations
that are real receivers on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.pipeline import delivery, queue
from tests.conftest import drain, queue_depth
from tests.receiver import Receiver, always


@pytest.fixture
def destinations():
    made: list[Receiver] = []

    def make(behaviour: Any = None) -> Receiver:
        r = Receiver(behaviour or always())
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def inbox(api, urls: list[str]) -> dict:
    response = api.post("/v1/inboxes", {"name": "relay", "forward_to": urls})
    assert response.status_code == 201, response.json
    return response.json


def hook(api, box, method: str, body: bytes, headers: dict[str, str], query: str = "") -> None:
    response = api.client.http.request(method, f"/v1/hooks/{box['inbox_id']}{query}", headers=headers, body=body)
    assert response.status_code == 200, response.body


def captures(api, box) -> list[dict]:
    return api.get(f"/v1/inboxes/{box['inbox_id']}/requests?limit=100",
                   headers={"X-Inbox-Token": box["read_token"]}).json["items"]


def test_each_capture_is_resent_to_each_destination_as_captured(api, aws, runner, destinations) -> None:
    # GIVEN an inbox forwarding to two destinations
    one, two = destinations(), destinations()
    box = inbox(api, [one.url, two.url])
    body = bytes(range(256))  # not text: stored base64, forwarded as the same bytes
    # WHEN a PUT with its own headers, a masked Authorization and hop-by-hop headers arrives
    hook(api, box, "PUT", body, {"Content-Type": "application/octet-stream", "X-Custom": "kept",
                                  "User-Agent": "sender/2", "Authorization": "Bearer secret",
                                  "Connection": "keep-alive, X-Hop", "X-Hop": "dropped",
                                  "Keep-Alive": "timeout=5", "TE": "trailers"})
    hook(api, box, "POST", b'{"second": true}', {"Content-Type": "application/json"})
    drain(runner, lambda: len(one.delivered()) == 2 and len(two.delivered()) == 2)
    # THEN each destination got both, in order, with method, headers and body preserved
    for receiver in (one, two):
        first, second = receiver.requests
        assert (first.method, first.body) == ("PUT", body)
        assert first.headers["content-type"] == "application/octet-stream"
        assert first.headers["x-custom"] == "kept" and first.headers["user-agent"] == "sender/2"
        assert "authorization" not in first.headers  # masked at capture: never stored, never sent
        assert not {"x-hop", "keep-alive", "te"} & set(first.headers)
        assert first.headers["host"] == receiver.url.split("/")[2]  # the destination's own
        assert (second.method, second.json) == ("POST", {"second": True})
    # and each capture shows its attempt log per destination
    for capture in captures(api, box):
        assert [f["destination"] for f in capture["forwards"]] == [one.url, two.url]
        assert [f["status"] for f in capture["forwards"]] == ["delivered", "delivered"]
        assert [[a["status_code"] for a in f["attempts"]] for f in capture["forwards"]] == [[200], [200]]


@pytest.mark.parametrize("attempts", [3], indirect=True)
def test_a_failing_destination_is_retried_and_blocks_no_other(api, aws, runner, destinations) -> None:
    # GIVEN a destination that always answers 500 and one that works
    broken, working = destinations(always(500)), destinations()
    box = inbox(api, [broken.url, working.url])
    for n in range(3):
        hook(api, box, "POST", json.dumps({"n": n}).encode(), {"Content-Type": "application/json"})
    # WHEN the pipeline runs until nothing is left to try
    drain(runner, lambda: len(working.delivered()) == 3 and queue_depth(aws.delivery_queue_url) == 0)
    # THEN the working destination got all three in order, the broken one 3 attempts each
    assert [r.json["n"] for r in working.requests] == [0, 1, 2]
    assert len(broken.requests) == 9
    for capture in captures(api, box):
        failing, fine = capture["forwards"]
        assert failing["status"] == "failed"
        assert [a["outcome"] for a in failing["attempts"]] == ["retrying", "retrying", "failed"]
        assert [a["status_code"] for a in failing["attempts"]] == [500, 500, 500]
        assert fine["status"] == "delivered" and len(fine["attempts"]) == 1
    # and the spent forwards wait in the dead-letter queue, in their destination's group
    dead = queue.receive(aws.dead_letter_queue_url)
    assert len(dead) == 3 and {d["Attributes"]["MessageGroupId"] for d in dead} == {
        f"inbox:{box['inbox_id']}:{failing_id(box, broken.url)}"}
    queue.release([d["ReceiptHandle"] for d in dead], aws.dead_letter_queue_url)
    # and a redrive, once the destination is back, delivers them with a fresh budget
    broken.behaviour = always(200)
    assert delivery.redrive(aws.dead_letter_queue_url, aws.delivery_queue_url) == 3
    drain(runner, lambda: len(broken.delivered()) == 3 and queue_depth(aws.delivery_queue_url) == 0)
    assert all(c["forwards"][0]["status"] == "delivered" for c in captures(api, box))
    # the metrics count every attempt by the destination's answer
    metrics = api.get(f"/v1/inboxes/{box['inbox_id']}/metrics?hours=1",
                      headers={"X-Inbox-Token": box["read_token"]}).json
    assert metrics["totals"]["forwards"] == {"200": 6, "500": 9}


def failing_id(box: dict, url: str) -> str:
    from chalicelib.inbox.forwarding import destination_id

    return destination_id(url)


def test_duplicates_are_not_forwarded_and_webhooks_still_flow(api, aws, runner, destinations, receiver) -> None:
    # GIVEN an inbox with a destination, and a session whose webhooks go to `receiver`
    target = destinations()
    box = inbox(api, [target.url])
    for _ in range(3):
        hook(api, box, "POST", b"once", {"webhook-id": "evt_same"})
    assert api.post("/v1/manuals", {"manual_id": "m", "title": "T", "steps": [
        {"step_number": 1, "title": "S", "content": "c"}]}).status_code == 201
    assert api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m"}).status_code == 201
    # WHEN the pipeline runs: both kinds share the stream and the queue
    drain(runner, lambda: len(target.delivered()) == 1 and len(receiver.delivered()) == 1
          and queue_depth(aws.delivery_queue_url) == 0)
    # THEN the capture was forwarded once, and the session's webhook was delivered
    assert [r.body for r in target.requests] == [b"once"]
    assert receiver.delivered()[0].json["event_type"] == "session_created"
    (capture,) = captures(api, box)
    assert capture["duplicates"] == 2 and capture["forwards"][0]["status"] == "delivered"


def test_an_inbox_without_destinations_enqueues_nothing(api, aws, runner) -> None:
    box = api.post("/v1/inboxes", {}).json
    hook(api, box, "POST", b"x", {})
    drain(runner, lambda: runner.pump_stream() == 0)
    assert queue_depth(aws.delivery_queue_url) == 0
    assert captures(api, box)[0]["forwards"] == []


def test_the_packaged_stream_filter_hands_the_feedback_function_every_capture_to_forward(api, aws) -> None:
    # GIVEN captures of an inbox with destinations and of one without
    import boto3

    from chalicelib.inbox import forwarding
    from infra.package import merge_template
    from infra.rehearsal.lambda_run import filter_matches
    from local.runner import lambda_stream_record

    relay = inbox(api, ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"])
    plain = api.post("/v1/inboxes", {}).json
    for box in (relay, plain, relay):
        hook(api, box, "POST", b"x", {})
    streams = boto3.client("dynamodbstreams")
    records = []
    for shard in streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=aws.stream_arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records += [lambda_stream_record(r, aws.stream_arn)
                    for r in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]]
    # WHEN Lambda filters the stream as the packaged template says
    (mapping,) = merge_template()["Resources"]["FeedbackHandler"]["Properties"]["Events"].values()
    patterns = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    passed = [r for r in records if any(filter_matches(p, r) for p in patterns)]
    # THEN the two captures to forward pass (two messages each), the rest does not
    assert len(passed) == 2
    assert len(forwarding.outgoing(passed)) == 4 and forwarding.outgoing(records) == forwarding.outgoing(passed)


def test_a_forward_is_refused_at_send_time_inside_the_network_on_aws(destinations) -> None:
    # a destination name can resolve inside the network after it was registered: the send
    # checks the address it connects to (the webhooks' transport), so it is a failed attempt
    from chalicelib.pipeline import webhooks

    target = destinations()
    refused = webhooks.send(target.url.replace("127.0.0.1", "localhost"), "PUT", b"x", {}, timeout=2)
    assert refused.status_code is None and "TargetRefused" in (refused.error or "")
    metadata = webhooks.send("http://169.254.169.254/latest/", "GET", b"", {}, timeout=2, allow_private=True)
    assert metadata.status_code is None and "metadata" in (metadata.error or "")
    assert target.requests == []
    allowed = webhooks.send(target.url, "DELETE", b"", {"X-A": "1"}, timeout=2, allow_private=True)
    assert allowed.status_code == 200 and target.requests[0].method == "DELETE"
