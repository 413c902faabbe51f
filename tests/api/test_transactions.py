"""Canceled transactions, read by item name: races with other transactions
(TransactionConflict, injected at the DynamoDB client) are retried, and every refusal a
service can meet maps to the right answer whatever the items' order."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.db import table
from chalicelib.db.table import Transaction, TransactionCanceled
from tests.conftest import manual_body


class _Refused:
    status_code = 400
    headers: dict[str, str] = {}


class Conflicts:
    """Answers the next `times` TransactWriteItems with TransactionCanceledException whose
    reasons say TransactionConflict for the first item (as DynamoDB does when another
    transaction holds it), through botocore's before-call hook: the request never reaches
    moto, and our translation of the error runs as it does on AWS."""

    def __init__(self) -> None:
        self.times = 0
        self.refused = 0
        self.reasons: Callable[[int], list[dict[str, Any]]] = lambda n: (
            [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (n - 1))

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        if self.times <= 0:
            return None
        self.times -= 1
        self.refused += 1
        return _Refused(), {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": self.reasons(len(json.loads(params["body"])["TransactItems"])),
        }


@pytest.fixture
def conflicts(api: Any) -> Iterator[Conflicts]:
    injected = Conflicts()
    client = table.get_client()
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", injected)
    yield injected
    client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", injected)


@pytest.fixture
def started(api: Any) -> str:
    assert api.post("/v1/manuals", manual_body("m-1", steps=3)).status_code == 201
    assert api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m-1"}).status_code == 201
    return "s-1"


def progress(step: int, key: str | None = None) -> dict[str, Any]:
    return {"user_id": "u", "current_step": step, "step_status": "DONE",
            **({"idempotency_key": key} if key else {})}


WRITES: dict[str, tuple[str, str, Any, int]] = {
    # name: (method, path, body, status when it lands)
    "start": ("post", "/v1/sessions", {"session_id": "s-2", "user_id": "u", "manual_id": "m-1"}, 201),
    "progress": ("post", "/v1/sessions/s-1/progress", progress(1), 200),
    "progress with a key": ("post", "/v1/sessions/s-1/progress", progress(1, "k-1"), 200),
    "message": ("post", "/v1/sessions/s-1/messages", {"user_id": "u", "sender": "user", "message": "hi"}, 201),
    "end": ("patch", "/v1/sessions/s-1", {"status": "ended"}, 200),
    "delete": ("delete", "/v1/sessions/s-1", None, 204),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_conflict_with_another_transaction_is_retried_and_lands_once(api, started, conflicts, write) -> None:
    method, path, body, landed = WRITES[write]
    conflicts.times = 2
    response = getattr(api, method)(path, body) if body is not None else getattr(api, method)(path)
    assert response.status_code == landed, response.json
    assert conflicts.refused == 2
    if write != "delete":  # exactly one change landed: one new event, the version moved once
        events = api.get(f"/v1/sessions/{'s-2' if write == 'start' else 's-1'}/events").json["items"]
        assert len(events) == (1 if write in ("start", "message") else 2)
    else:
        assert api.get("/v1/sessions/s-1").status_code == 404
        assert api.get("/v1/manuals/m-1").json["active_sessions"] == 0


@pytest.mark.parametrize("write", ["progress", "message", "end"])
def test_conflicts_that_never_end_answer_409_and_change_nothing(api, started, conflicts, monkeypatch, write) -> None:
    from chalicelib.config import get_settings

    monkeypatch.setenv("MAX_UPDATE_ATTEMPTS", "3")
    get_settings.cache_clear()
    method, path, body, _ = WRITES[write]
    conflicts.times = 1000
    response = getattr(api, method)(path, body)
    get_settings.cache_clear()
    assert response.status_code == 409 and response.json["error"] == "concurrent_update", response.json
    assert conflicts.refused == 3
    conflicts.times = 0
    session = api.get("/v1/sessions/s-1").json
    assert (session["status"], session["version"], session["completed_steps"]) == ("active", 1, [])
    assert api.get("/v1/sessions/s-1/messages").json["items"] == []


def test_the_idle_job_skips_a_session_whose_abandon_conflicts(api, started, conflicts) -> None:
    from datetime import timedelta

    from chalicelib.domain.clock import utcnow
    from chalicelib.jobs import cleanup

    conflicts.times = 1
    report = cleanup.run(now=utcnow() + timedelta(days=30))
    assert (report.abandoned, report.skipped, conflicts.refused) == (0, 1, 1)
    assert api.get("/v1/sessions/s-1").json["status"] == "active"
    assert cleanup.run(now=utcnow() + timedelta(days=30)).abandoned == 1  # the next run gets it


def test_a_refusal_is_read_by_item_name_whatever_the_order(api, started, conflicts) -> None:
    # GIVEN a transaction whose second item's condition fails (as DynamoDB reports it, by
    # position), WHEN it is committed, THEN the refusal names that item
    conflicts.times = 1
    conflicts.reasons = lambda n: [{"Code": "None"}, {"Code": "ConditionalCheckFailed",
                                                      "Item": {"PK": {"S": "x"}}}]
    tx = Transaction()
    tx.update("manual", {"PK": "MANUAL#m-1", "SK": "#META"}, "ADD n :one",
              vals=table.values(one=1))
    tx.put("claim", {"PK": "SESSION#s-1", "SK": "MSGID#m"})
    with pytest.raises(TransactionCanceled) as refused:
        tx.commit()
    assert refused.value.failed("claim") and not refused.value.failed("manual")
    assert refused.value.item("claim") == {"PK": "x"} and not refused.value.conflict_only
    with pytest.raises(KeyError):
        refused.value.failed("session")  # a name the transaction does not have is a bug
    with pytest.raises(ValueError):
        tx.put("claim", {"PK": "y", "SK": "z"})  # names are unique within a transaction


def test_every_refused_condition_maps_to_its_answer(api, started) -> None:
    # the session item ("session") refuses: taken id, another user's, a missing manual ("manual")
    again = api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u", "manual_id": "m-1"})
    assert again.status_code == 200 and again.json["session_id"] == "s-1"
    other = api.post("/v1/sessions", {"session_id": "s-1", "user_id": "v", "manual_id": "m-1"})
    assert (other.status_code, other.json["error"]) == (409, "session_exists")
    # a manual deleted between the read and the transaction: the "manual" condition refuses
    from chalicelib.services import manuals

    real = manuals.get_meta
    manuals.get_meta = lambda manual_id: {"rev": "r", "total_steps": 3}  # type: ignore[assignment]
    try:
        gone = api.post("/v1/sessions", {"session_id": "s-9", "user_id": "u", "manual_id": "m-gone"})
    finally:
        manuals.get_meta = real  # type: ignore[assignment]
    assert (gone.status_code, gone.json["error"]) == (404, "manual_not_found")
    # messages: the session condition refuses another user; the claim refuses a reused id
    mine = {"user_id": "u", "sender": "user", "message": "hi", "message_id": "m-1"}
    assert api.post("/v1/sessions/s-1/messages", mine).status_code == 201
    assert api.post("/v1/sessions/s-1/messages", mine).status_code == 200
    reused = api.post("/v1/sessions/s-1/messages", {**mine, "message": "other"})
    assert (reused.status_code, reused.json["error"]) == (422, "idempotency_key_reused")
    theirs = api.post("/v1/sessions/s-1/messages", {**mine, "user_id": "v", "message_id": "m-2"})
    assert (theirs.status_code, theirs.json["error"]) == (403, "user_mismatch")
    # progress: the idempotency record refuses a reused key with another body
    assert api.post("/v1/sessions/s-1/progress", progress(1, "k")).status_code == 200
    assert api.post("/v1/sessions/s-1/progress", progress(1, "k")).status_code == 200
    other_body = api.post("/v1/sessions/s-1/progress", progress(2, "k"))
    assert (other_body.status_code, other_body.json["error"]) == (422, "idempotency_key_reused")
    assert api.get("/v1/sessions/s-1").json["completed_steps"] == [1]
