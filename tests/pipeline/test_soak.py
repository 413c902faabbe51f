"""The webhook promise under a receiver that fails at random, over HTTP against `make run`'s
stack: every event delivered in order or listed as failed, nothing unlisted in the
dead-letter queue, and a redrive delivering every listed one (see tests/soak.py)."""

from __future__ import annotations

import time

from tests.soak import run_soak


def test_every_event_is_delivered_in_order_or_listed_as_failed_under_a_chaos_receiver() -> None:
    started = time.monotonic()
    # 12 sessions x 11 events = 132 events; half the requests fail (500, reset, timeout,
    # 429 + Retry-After), 5 attempts each: some events exhaust their budget, most get through
    result = run_soak(sessions=12, steps=9, seed=7, ok=0.5, schedule="0,1,0,1", timeout=0.3)
    print(result.summary())
    assert result.violations == [], result.violations[:20]
    assert result.failed > 0, "the run should exercise the failed path too: " + result.summary()
    assert result.delivered + result.failed - result.delivered_late == result.events == 132
    assert result.failed_answers > result.requests * 0.3  # the receiver really was flaky
    assert time.monotonic() - started < 60, result.summary()
