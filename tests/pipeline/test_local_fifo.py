"""The local stack's SQS FIFO keeps a session's messages in order, as SQS does: a message
blocks its group only while it is in flight (received and hidden); once visible again, the
group comes back from its first message (local/moto_server.py, `release_visible_again`).

moto on its own frees such messages one at a time inside a receive and hands out a group's
later messages ahead of its first ones. These tests drive moto directly through the
interleavings that did it: the delivery function's batch (a failing head hidden for its
back-off, its followers made visible at once) landing in one tick of moto's clock, and a batch
whose visibility timeout ran out (an invocation that crashed). The clock is moto's own,
stepped by the test, so the interleaving is exact."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

GROUP = "session-1"


class Clock:
    """moto's SQS clock (epoch seconds and milliseconds), moved only by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        import moto.sqs.models as sqs_models

        self.now = time.time()
        monkeypatch.setattr(sqs_models, "unix_time", lambda dt=None: self.now)
        monkeypatch.setattr(sqs_models, "unix_time_millis", lambda dt=None: self.now * 1000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fifo(aws: Any) -> tuple[Any, str]:
    """The stack's delivery queue (FIFO, deployed from infra/resources.json) and a client."""
    return boto3.client("sqs"), os.environ["DELIVERY_QUEUE_URL"]


def send(sqs: Any, url: str, count: int, group: str = GROUP) -> None:
    for n in range(1, count + 1):
        sqs.send_message(QueueUrl=url, MessageBody=f"{group}:{n}", MessageGroupId=group,
                         MessageDeduplicationId=f"{group}:{n}")


def receive(sqs: Any, url: str, visibility: int | None = None) -> list[dict[str, Any]]:
    extra = {} if visibility is None else {"VisibilityTimeout": visibility}
    messages: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **extra).get(
        "Messages", [])
    return messages


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [m["Body"] for m in messages]


def in_order(count: int, group: str = GROUP) -> list[str]:
    return [f"{group}:{n}" for n in range(1, count + 1)]


def hide(sqs: Any, url: str, entries: list[tuple[dict[str, Any], int]]) -> None:
    """One ChangeMessageVisibilityBatch, as the delivery function sends it."""
    response = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
        for n, (m, seconds) in enumerate(entries)])
    assert not response.get("Failed"), response


@pytest.mark.parametrize("head_delay", [0, 1])
def test_a_retried_head_and_its_released_followers_come_back_in_order(fifo, monkeypatch, head_delay) -> None:
    # the delivery function's batch: the head failed (retried after head_delay s), the rest
    # of its session released at once; all in one tick of the clock
    sqs, url = fifo
    clock = Clock(monkeypatch)
    send(sqs, url, 10)
    batch = receive(sqs, url)
    assert bodies(batch) == in_order(10)
    hide(sqs, url, [(batch[0], head_delay)] + [(m, 0) for m in batch[1:]])
    if head_delay:
        clock.advance(0.001)
        assert receive(sqs, url) == []  # the head is in flight: its group waits behind it
    clock.advance(head_delay + 0.001)
    assert bodies(receive(sqs, url)) == in_order(10)  # moto alone: only the last one, session-1:10


def test_a_batch_whose_visibility_timeout_ran_out_comes_back_from_its_first(fifo, monkeypatch) -> None:
    # an invocation that crashed: nothing deleted, nothing hidden; SQS hands the group out
    # again once the visibility timeout runs out, from its first message
    sqs, url = fifo
    clock = Clock(monkeypatch)
    send(sqs, url, 5)
    assert bodies(receive(sqs, url, visibility=30)) == in_order(5)
    send(sqs, url, 7)  # the session's next ones arrive meanwhile (deduplicated: 6 and 7 are new)
    clock.advance(10)
    assert receive(sqs, url) == []  # still in flight: the whole group waits
    clock.advance(21)
    assert bodies(receive(sqs, url)) == in_order(7)


def test_a_group_in_flight_still_blocks_and_other_groups_still_flow(fifo, monkeypatch) -> None:
    sqs, url = fifo
    clock = Clock(monkeypatch)
    send(sqs, url, 3)
    first = receive(sqs, url, visibility=30)
    assert bodies(first) == in_order(3)
    send(sqs, url, 4)
    send(sqs, url, 2, group="session-2")
    clock.advance(1)
    assert bodies(receive(sqs, url)) == in_order(2, "session-2")  # session-1:4 waits
    sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(first)])
    assert bodies(receive(sqs, url)) == ["session-1:4"]
