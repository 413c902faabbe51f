"""The token bucket and the limit table (pure: time is passed in)."""

from __future__ import annotations

import pytest

from chalicelib.domain import limits
from chalicelib.domain.limits import Buckets, KeyLimits, TokenBucket


def test_a_bucket_admits_its_burst_then_refuses_with_the_wait_then_recovers() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take(100.0)
    assert wait == pytest.approx(0.5)  # one token at 2/s
    assert limits.retry_after(wait) == 1
    assert bucket.take(100.49) > 0  # not yet
    assert bucket.take(100.5) == 0.0  # recovered
    assert bucket.take(110.0) == 0.0 and bucket.take(110.0) == 0.0 and bucket.take(110.0) == 0.0
    assert bucket.take(110.0) > 0, "refilling never goes past the burst"


def test_buckets_are_per_name_bounded_and_follow_a_changed_limit() -> None:
    buckets = Buckets(capacity=2)
    assert buckets.take("a", 1.0, 1, 0.0) == 0.0
    assert buckets.take("a", 1.0, 1, 0.0) > 0
    assert buckets.take("b", 1.0, 1, 0.0) == 0.0, "another name has its own bucket"
    assert buckets.take("a", 1.0, 5, 0.0) == 0.0, "a new limit starts a new bucket"
    buckets.take("c", 1.0, 1, 0.0)
    assert len(buckets._buckets) == 2


def test_the_limits_of_each_kind_of_route() -> None:
    assert limits.route_limit("GET", "/health/ready") is None
    assert limits.route_limit("POST", "/v1/hooks/{inbox_id}") == limits.RouteLimit(50.0, 100)
    assert limits.route_limit("POST", "/v1/sessions/{session_id}/progress") == limits.RouteLimit(100.0, 200)
    assert limits.route_limit("GET", "/v1/sessions") == limits.RouteLimit(200.0, 400)
    # the floor: no default a tutoring agent or the test suite meets
    for limit in (limits.route_limit("POST", "/v1/hooks/{inbox_id}"), limits.route_limit("DELETE", "/v1/keys/{key_id}")):
        assert limit is not None and limit.rate_per_second >= 50 and limit.burst >= 100
    assert limits.KEY_RATE_PER_SECOND >= 50 and limits.KEY_BURST >= 100


def test_a_key_without_limits_of_its_own_has_the_default_plans() -> None:
    assert not KeyLimits().overridden()
    assert KeyLimits().effective() == limits.EffectiveLimits(50.0, 100, 200_000)
    own = KeyLimits(burst=7)
    assert own.overridden() and own.effective() == limits.EffectiveLimits(50.0, 7, 200_000)
    assert len(limits.usage_identifier("0123456789abcdef")) >= 20  # API Gateway's minimum


def test_seconds_to_midnight_utc() -> None:
    assert limits.seconds_to_utc_midnight(86400 * 3) == 86400
    assert limits.seconds_to_utc_midnight(86400 * 3 - 0.5) == 1
