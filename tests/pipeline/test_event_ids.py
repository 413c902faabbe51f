"""Finding an event by its id (redeliver) without an index entry of its own: an event's id
locates its window index entry (GSI4), so events stored by this version have no GSI2 entry
(a write unit each); events stored before, with uuid ids and a GSI2 entry, are still found.
In-process on moto, webhooks to a real receiver."""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib.db import events
from chalicelib.db import table as store
from tests.conftest import drain, event_ids, run_session


def stored_events() -> list[dict[str, Any]]:
    client, items, kwargs = store.get_client(), [], {"TableName": store.table_name()}
    while True:
        page = client.scan(**kwargs)
        items += [store.from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return sorted((i for i in items if i.get("type") == "event"),
                          key=lambda i: (i["session_id"], i["sequence"]))
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_an_id_names_the_instant_and_shard_of_its_window_entry() -> None:
    at = "2026-12-02T18:30:01.123456Z"
    for session_id in ("s-1", "s-2", "a" * 128):
        made = events.new_id(session_id, at)
        assert len(made) == 35 and made.startswith("evt_")
        assert events.located(made) == (at, events.window_shard(session_id))
    assert events.new_id("s-1", at) != events.new_id("s-1", at)  # 64 random bits after the place
    for other in (f"evt_{uuid.uuid4().hex}", "evt_missing", "evt_ping_1889e", "", "evt_" + "g" * 31,
                  events.new_id("s-1", at) + "0", events.new_id("s-1", at).upper()):
        assert events.located(other) is None
    # the OpenAPI document's example event id says where its example event is
    from chalicelib.api import examples

    assert events.located(examples.EVENT_ID) == (examples.STEP_1_DONE, events.window_shard(examples.SESSION_ID))


def test_events_are_found_by_id_without_a_gsi2_entry(api, runner, receiver) -> None:
    # GIVEN two sessions run to completion (the last DONE and session_ended share their instant)
    run_session(api, "s-1", 2)
    run_session(api, "s-2", 1)
    drain(runner, lambda: len(receiver.delivered()) == 7)
    stored = stored_events()
    # THEN no event has a GSI2 entry; every id locates its own window entry
    assert len(stored) == 7
    for event in stored:
        assert "GSI2PK" not in event and "GSI2SK" not in event
        occurred_at, shard = events.located(event["event_id"]) or ("", -1)
        assert occurred_at == event["occurred_at"]
        assert event["GSI4PK"] == events.window_partition(occurred_at[:13], shard)
    ended = [e for e in stored if e["session_id"] == "s-1"][-2:]
    assert ended[0]["occurred_at"] == ended[1]["occurred_at"]
    # WHEN each is redelivered by its id: each is found, itself and not its neighbour in time
    for n, event_id in enumerate(event_ids(api, "s-1") + event_ids(api, "s-2"), start=1):
        response = api.post(f"/v1/events/{event_id}/redeliver")
        assert response.status_code == 202, response.json
        drain(runner, lambda n=n: len(receiver.delivered()) == 7 + n)
        assert receiver.requests[-1].headers["webhook-id"] == event_id == receiver.requests[-1].json["event_id"]
    # AND an id of the right shape that names no event, at an instant and shard that hold
    # events, is not found (a JSON 404, nothing queued)
    real = ended[1]["event_id"]
    absent = real[:-16] + ("0" * 16 if real[-16:] != "0" * 16 else "1" * 16)
    response = api.post(f"/v1/events/{absent}/redeliver")
    assert response.status_code == 404 and response.json["error"] == "event_not_found"


def test_events_stored_with_uuid_ids_and_gsi2_are_still_found(api, runner, receiver) -> None:
    # GIVEN a session whose events were stored as the version before located ids stored them:
    # a uuid id and a GSI2 entry
    run_session(api, "s-old", 1)
    drain(runner, lambda: len(receiver.delivered()) == 3)
    old_ids = []
    for event in stored_events():
        old_id = f"evt_{uuid.uuid4().hex}"
        old_ids.append(old_id)
        store.get_client().put_item(TableName=store.table_name(), Item=store.to_item(
            {**event, "event_id": old_id, "GSI2PK": f"EVENT#{old_id}", "GSI2SK": "EVENT"}))
    # WHEN each is redelivered by its old id: it is found by GSI2 and sent with that id
    for n, old_id in enumerate(old_ids, start=1):
        assert api.post(f"/v1/events/{old_id}/redeliver").status_code == 202
        drain(runner, lambda n=n: len(receiver.delivered()) == 3 + n)
        assert receiver.requests[-1].headers["webhook-id"] == old_id
    assert api.post(f"/v1/events/evt_{uuid.uuid4().hex}/redeliver").json["error"] == "event_not_found"


def test_an_event_is_found_among_many_of_the_same_instant_and_shard(api, aws, monkeypatch) -> None:
    from datetime import timedelta

    from chalicelib.config import get_settings
    from chalicelib.domain.clock import utcnow
    from chalicelib.jobs import cleanup

    # GIVEN 105 sessions of one window shard left idle, ended by one run of the idle job: all
    # their session_ended events occur at the run's instant (more than a page of the index)
    ids = [sid for sid in (f"s-{n:04d}" for n in range(1000)) if events.window_shard(sid) == 0][:105]
    run_session(api, "s-seed", 1)  # the manual
    for sid in ids:
        assert api.post("/v1/sessions", {"session_id": sid, "user_id": "u", "manual_id": "man-1"}).status_code == 201
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT_SECONDS", "60")
    get_settings.cache_clear()
    assert cleanup.run(now=utcnow() + timedelta(days=1)).abandoned >= 105
    ended = [e for e in stored_events() if e["session_id"] in ids and e["event_type"] == "session_ended"]
    assert len(ended) == 105 and len({e["occurred_at"] for e in ended}) == 1
    # THEN each is found by its id, those past the index's first page (in session-id order) too
    in_order = sorted(ended, key=lambda e: e["session_id"])
    for event in in_order[:2] + in_order[98:]:
        assert (events.find(event["event_id"]) or {}).get("PK") == f"SESSION#{event['session_id']}"
    last = in_order[-1]
    assert api.post(f"/v1/events/{last['event_id']}/redeliver").status_code == 202
