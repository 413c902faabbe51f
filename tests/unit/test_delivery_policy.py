"""The delivery policy, pure: what an answer means, the next delay, the budget, the safety net."""

from __future__ import annotations

import pytest

from chalicelib.domain.delivery_policy import (
    MAX_DELAY_SECONDS,
    RECEIVE_BATCH,
    attempt_number,
    classify,
    decide,
    max_attempts,
    safety_net_receive_count,
)

SCHEDULE = (5, 60, 300)


@pytest.mark.parametrize(("status", "kind"), [
    (200, "delivered"), (204, "delivered"), (299, "delivered"), (410, "gone"),
    (429, "throttled"), (502, "throttled"), (503, "throttled"), (504, "throttled"),
    (500, "failed"), (404, "failed"), (307, "failed"), (100, "failed"), (None, "failed"),
])
def test_receiver_answers_mean_what_standard_webhooks_says(status, kind) -> None:
    assert classify(status) == kind


def test_failed_attempts_follow_the_schedule_then_fail_for_good() -> None:
    decisions = [decide(SCHEDULE, n, 500) for n in range(1, 5)]
    assert [(d.outcome, d.attempt, d.of, d.delay) for d in decisions] == [
        ("retrying", 1, 4, 5), ("retrying", 2, 4, 60), ("retrying", 3, 4, 300), ("failed", 4, 4, 0)]
    assert [d.settled for d in decisions] == [False, False, False, True]


def test_no_answer_is_a_failed_attempt() -> None:
    assert decide(SCHEDULE, 1, None).outcome == "retrying"
    assert decide(SCHEDULE, 4, None).outcome == "failed"


def test_delivered_and_gone_settle_at_any_attempt() -> None:
    for n in range(1, 5):
        assert decide(SCHEDULE, n, 200).outcome == "delivered"
        assert decide(SCHEDULE, n, 410).outcome == "gone"
        assert decide(SCHEDULE, n, 201).settled


def test_throttling_honours_retry_after_but_never_retries_sooner_than_scheduled() -> None:
    assert decide(SCHEDULE, 1, 429, retry_after=120).delay == 120
    assert decide(SCHEDULE, 1, 503, retry_after=1).delay == 5
    assert decide(SCHEDULE, 2, 429, retry_after=0.2).delay == 60
    assert decide(SCHEDULE, 1, 429, retry_after=2.5).delay == 5
    assert decide((0,), 1, 429, retry_after=2.5).delay == 3  # rounded up: not sooner than asked
    assert decide(SCHEDULE, 1, 504).delay == 5  # no Retry-After: the schedule
    assert decide(SCHEDULE, 1, 429, retry_after=10**9).delay == MAX_DELAY_SECONDS
    throttled = decide(SCHEDULE, 1, 502)
    assert throttled.outcome == "throttled" and not throttled.settled


def test_throttling_spends_the_budget_too() -> None:
    # a receiver that answers 503 for ever ends in the failed list, not in an endless retry
    assert decide(SCHEDULE, max_attempts(SCHEDULE), 503, retry_after=1).outcome == "failed"


def test_an_empty_schedule_means_one_attempt() -> None:
    assert max_attempts(()) == 1
    assert decide((), 1, 500).outcome == "failed"


def test_a_new_round_starts_a_fresh_budget() -> None:
    assert attempt_number(None, 0, "0") == 1
    assert attempt_number("0", 3, "0") == 4
    assert attempt_number("0", 8, "r1") == 1  # redelivered or redriven
    assert attempt_number("r1", 2, "r1") == 3


def test_the_budget_is_walked_from_recorded_attempts() -> None:
    # each attempt's number comes from the count recorded after the previous one
    n, log = 1, []
    for _ in range(max_attempts(SCHEDULE)):
        decision = decide(SCHEDULE, n, 500)
        log.append((decision.attempt, decision.outcome))
        n = attempt_number("0", decision.attempt, "0")
    assert log == [(1, "retrying"), (2, "retrying"), (3, "retrying"), (4, "failed")]


@pytest.mark.parametrize("length", range(0, 30))
def test_the_safety_net_stays_behind_the_budget(length: int) -> None:
    schedule = tuple([1] * length)
    net = safety_net_receive_count(schedule)
    # a message is received at most once per attempt of each of the batch's messages ahead
    # of it, and its own: the net must be out of that reach (and within SQS's ceiling)
    assert net > RECEIVE_BATCH * max_attempts(schedule) or net == 1000
    assert net <= 1000
    assert safety_net_receive_count((5, 300, 1800, 7200, 18000, 36000, 36000)) == 90
