"""Webhook endpoints' pure rules: filters, signing secrets in a grace period, latency
percentiles from the histogram, FIFO groups and dedup ids."""

from __future__ import annotations

import base64

from chalicelib.domain import endpoints as rules


def test_a_filter_takes_its_types_and_none_takes_every_event() -> None:
    done = {"event_type": "progress_update", "step_status": "DONE"}
    ongoing = {"event_type": "progress_update", "step_status": "ONGOING"}
    start = {"event_type": "session_created"}
    assert rules.matches(None, done) and rules.matches(None, ongoing) and rules.matches(None, start)
    assert rules.matches(["progress_update:DONE"], done) and not rules.matches(["progress_update:DONE"], ongoing)
    assert rules.matches(["progress_update"], ongoing)
    assert not rules.matches(["session_ended"], start)
    assert not rules.matches(None, {"event_type": "ping"})  # a ping goes only where it was sent


def test_the_previous_secret_signs_only_during_its_grace() -> None:
    endpoint = {"secret": "whsec_new", "previous_secret": "whsec_old", "previous_expires_epoch": 1000.0}
    assert rules.signing_secrets(endpoint, 999.0) == ["whsec_new", "whsec_old"]
    assert rules.signing_secrets(endpoint, 1000.0) == ["whsec_new"]
    assert rules.signing_secrets({"secret": ""}, 0) == []


def test_secrets_are_whsec_and_24_random_bytes() -> None:
    made = {rules.new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24


def test_percentiles_are_bucket_bounds() -> None:
    assert rules.percentile({}, 0.5) is None
    histogram = {rules.bucket(ms): 0 for ms in (1,)}
    for latency in [5] * 90 + [300] * 9 + [40_000]:
        histogram[rules.bucket(latency)] = histogram.get(rules.bucket(latency), 0) + 1
    assert rules.percentile(histogram, 0.5) == 10
    assert rules.percentile(histogram, 0.99) == 500
    assert rules.percentile(histogram, 1.0) == 60_000  # the open last bucket


def test_groups_and_dedup_ids() -> None:
    assert rules.group_for("default", "s-1") == "s-1"  # the group every webhook had before endpoints
    assert rules.group_for("ep_0123456789abcdef", "s-1") == "ep_0123456789abcdef:s-1"
    long = rules.group_for("ep_0123456789abcdef", "x" * 128)
    assert len(long) <= 128 and long == rules.group_for("ep_0123456789abcdef", "x" * 128)
    assert rules.dedup_for("default", "evt_1") == "evt_1"
    assert rules.dedup_for("ep_0123456789abcdef", "evt_1") == "evt_1:ep_0123456789abcdef"
