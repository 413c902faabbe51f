"""The replay index's backfill (`python -m cli endpoints backfill-replay-index`), in-process on
moto: events stored the way the version before webhook endpoints stored them (no time-window
index entry, GSI4) are not found by an endpoint's replay; after the backfill they are, with
their original webhook-ids, in order; a second run changes nothing; a stopped run resumes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.config import get_settings
from chalicelib.db import table as store
from chalicelib.jobs import replay_index
from cli import cli
from tests.conftest import drain, queue_depth, run_session
from tests.receiver import Receiver

OLD_SESSIONS = ("s-old-1", "s-old-2")


@pytest.fixture
def pipeline(api, aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    import app as app_module
    from local.runner import Runner

    monkeypatch.delenv("WEBHOOK_URL", raising=False)  # endpoints come from the API only
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0,0")
    get_settings.cache_clear()
    return Runner(app_module, aws.stream_arn, aws.delivery_queue_url)


def raw_items() -> list[dict[str, Any]]:
    """Every item of the table, as stored."""
    client, items, kwargs = store.get_client(), [], {"TableName": store.table_name()}
    while True:
        page = client.scan(**kwargs)
        items += [store.from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stored_the_old_way(event: dict[str, Any]) -> dict[str, Any]:
    """The item the version before webhook endpoints (8815cfa^1) left for this event once its
    webhook was delivered: chalicelib/db/events.py `item()` then wrote the event's fields (a
    uuid id) with GSI2 only (no GSI4 window entry, no per-endpoint `deliveries`), and `record_attempt()` set
    the delivery fields at the top level, its log entries naming no endpoint."""
    fields = {k: v for k, v in event.items()
              if k not in ("GSI4PK", "GSI4SK", "deliveries", "delivery_status", "delivery_attempts",
                           "failed_endpoints", "last_attempt_at", "GSI1PK", "GSI1SK")}
    at, event_id = event["occurred_at"], f"evt_{uuid.uuid4().hex}"
    return {**fields, "event_id": event_id, "GSI2PK": f"EVENT#{event_id}", "GSI2SK": "EVENT",
            "delivery_status": "delivered", "last_attempt_at": at, "delivery_round": "r0123456789ab",
            "attempt_count": 1, "delivered_at": at,
            "delivery_attempts": [{"attempt": 1, "of": 3, "outcome": "delivered", "status_code": 200,
                                   "latency_ms": 12, "at": at}]}


def replay(api, endpoint_id: str, since: str) -> int:
    queued, body = 0, {"since": since, "limit": 100}
    while True:
        step = api.post(f"/v1/webhook-endpoints/{endpoint_id}/replay", body)
        assert step.status_code == 200, step.json
        queued += step.json["queued"]
        if step.json["done"]:
            return queued
        body["cursor"] = step.json["next_cursor"]


def backfill(aws, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--json", "endpoints", "backfill-replay-index", "--table", aws.table_name, *args])


def test_events_stored_before_endpoints_are_replayed_only_after_the_backfill(api, aws, pipeline, monkeypatch) -> None:
    # GIVEN two sessions whose events were stored the old way (rewritten as that version left them)
    for sid in OLD_SESSIONS:
        run_session(api, sid, 2)
    drain(pipeline, lambda: pipeline.pump() == 0)
    old = [stored_the_old_way(i) for i in raw_items() if i.get("type") == "event"]
    assert len(old) == 8
    for event in old:
        store.get_client().put_item(TableName=store.table_name(), Item=store.to_item(event))
    since = min(e["occurred_at"] for e in old)
    ids = {sid: [e["event_id"] for e in sorted(old, key=lambda e: e["sequence"]) if e["session_id"] == sid]
           for sid in OLD_SESSIONS}
    # AND, after the upgrade, an endpoint and a session stored by this version
    receiver = Receiver()
    try:
        created = api.post("/v1/webhook-endpoints", {"url": receiver.url})
        assert created.status_code == 201, created.json
        endpoint_id = created.json["endpoint_id"]
        run_session(api, "s-new", 1)
        drain(pipeline, lambda: len(receiver.delivered()) == 3 and queue_depth(aws.delivery_queue_url) == 0)
        new_ids = [r.headers["webhook-id"] for r in receiver.requests]
        # WHEN the endpoint replays the window: only the new session's events are found
        assert replay(api, endpoint_id, since) == 3
        drain(pipeline, lambda: len(receiver.delivered()) == 6 and queue_depth(aws.delivery_queue_url) == 0)
        assert [r.headers["webhook-id"] for r in receiver.requests[3:]] == new_ids

        # WHEN the operator runs the backfill, stopped by Ctrl-C after its second page
        before = {store.ident(i): i for i in raw_items()}
        real_step, calls = replay_index.step, []

        def interrupted(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real_step(*args, **kwargs)

        monkeypatch.setattr(replay_index, "step", interrupted)
        stopped = CliRunner().invoke(cli, ["endpoints", "backfill-replay-index", "--table", aws.table_name,
                                           "--page-size", "4"])
        monkeypatch.setattr(replay_index, "step", real_step)
        # THEN it says how far it got and how to resume
        assert stopped.exit_code == 130, stopped.output
        assert "Interrupted: " in stopped.stderr and "resume with --cursor " in stopped.stderr
        cursor = stopped.stderr.split("resume with --cursor ")[1].split()[0]
        half = sum(1 for i in raw_items() if i.get("type") == "event" and "GSI4PK" in i)
        assert 3 <= half < 11  # the new session's 3 + what the two pages of 4 items held
        # WHEN it resumes from there, then goes on in bounded steps (--limit) to the end
        resumed = backfill(aws, "--cursor", cursor, "--page-size", "4", "--limit", "5")
        assert resumed.exit_code == 0, resumed.output
        first = json.loads(resumed.stdout)
        assert first["scanned"] == 5 and not first["done"] and first["next_cursor"]
        steps = [first]
        while not steps[-1]["done"]:
            result = backfill(aws, "--cursor", steps[-1]["next_cursor"], "--page-size", "4", "--limit", "5")
            assert result.exit_code == 0, result.output
            steps.append(json.loads(result.stdout))
        # THEN every old event has its entry, each given once (none skipped), and nothing else changed
        assert sum(s["indexed"] for s in steps) + half - 3 == 8
        assert all(s["skipped"] == 0 for s in steps)
        after = {store.ident(i): i for i in raw_items()}
        assert after.keys() == before.keys()
        for ident, item in after.items():
            was = before[ident]
            if item.get("type") == "event" and "GSI4PK" not in was:
                assert {k: v for k, v in item.items() if k not in ("GSI4PK", "GSI4SK")} == was
                assert item["GSI4SK"] == f"{item['occurred_at']}#{item['session_id']}#{item['sequence']:010d}"
            else:
                assert item == was, ident  # sessions (their own GSI4), new events, keys, manuals...

        # WHEN the endpoint replays the window again: the old events too, original ids, in order
        assert replay(api, endpoint_id, since) == 11
        drain(pipeline, lambda: len(receiver.delivered()) == 17 and queue_depth(aws.delivery_queue_url) == 0)
        replayed = receiver.requests[6:]
        for sid, expected in ids.items():
            assert [r.headers["webhook-id"] for r in replayed if r.json["session_id"] == sid] == expected
        assert [r.headers["webhook-id"] for r in replayed if r.json["session_id"] == "s-new"] == new_ids

        # WHEN the backfill runs once more, from the start: it changes nothing
        settled = {store.ident(i): i for i in raw_items()}
        again = backfill(aws)
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout) | {"scanned": 0} == {
            "table": aws.table_name, "scanned": 0, "indexed": 0, "skipped": 0, "next_cursor": None, "done": True}
        assert {store.ident(i): i for i in raw_items()} == settled
    finally:
        receiver.stop()


def test_the_backfill_needs_a_table_and_refuses_a_foreign_cursor(aws) -> None:
    assert CliRunner().invoke(cli, ["endpoints", "backfill-replay-index"]).exit_code == 2
    foreign = store.encode_cursor({"PK": {"S": "SESSION#x"}, "SK": {"S": "#META"}}, "sessions")
    refused = backfill(aws, "--cursor", foreign)
    assert refused.exit_code == 2 and "--cursor" in refused.output
