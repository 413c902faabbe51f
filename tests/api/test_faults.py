"""DynamoDB failures: throttling is retried by the client, then answered 503 + Retry-After,
never a 500, and nothing is half-written."""

from __future__ import annotations

from tests.faults import fail_with, heal


def test_persistent_throttling_is_a_503_with_retry_after(api, make_session) -> None:
    sid = make_session()["session_id"]
    calls = fail_with("ProvisionedThroughputExceededException", "GetItem")
    response = api.get(f"/v1/sessions/{sid}")
    heal("GetItem")
    assert response.status_code == 503
    assert response.json["error"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert calls["n"] >= 4  # the client retried with backoff before giving up
    assert api.get(f"/v1/sessions/{sid}").status_code == 200


def test_a_brief_throttle_is_invisible(api, make_session) -> None:
    sid = make_session()["session_id"]
    fail_with("ThrottlingException", "GetItem", times=2)
    response = api.get(f"/v1/sessions/{sid}")
    heal("GetItem")
    assert response.status_code == 200


def test_a_refused_transaction_leaves_nothing_behind(api, make_session, monkeypatch) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.models import DynamoDBBackend

    sid = make_session(steps=3)["session_id"]

    def throttled(self, items):
        raise JsonRESTError("ProvisionedThroughputExceededException", "injected")

    original = DynamoDBBackend.transact_write_items
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", throttled)
    done = {"user_id": "user-1", "current_step": 1, "step_status": "DONE", "idempotency_key": "k"}
    response = api.post(f"/v1/sessions/{sid}/progress", done)
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", original)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    session = api.get(f"/v1/sessions/{sid}").json
    assert (session["version"], session["completed_steps"]) == (1, []), session
    assert len(api.get(f"/v1/sessions/{sid}/events").json["items"]) == 1
    # the client's retry with the same key then applies once
    retry = api.post(f"/v1/sessions/{sid}/progress", done)
    assert retry.status_code == 200 and retry.json["applied"] is True


def test_a_write_whose_answer_was_lost_is_replayed_not_repeated(api, make_session) -> None:
    # DynamoDB applied the transaction but every answer was lost on the way back: the caller
    # saw a 503; its retry with the same idempotency key gets the first result.
    sid = make_session(steps=3)["session_id"]
    fail_with("InternalServerError", "TransactWriteItems")
    done = {"user_id": "user-1", "current_step": 1, "step_status": "DONE", "idempotency_key": "k"}
    lost = api.post(f"/v1/sessions/{sid}/progress", done)
    heal("TransactWriteItems")
    assert lost.status_code == 503
    retry = api.post(f"/v1/sessions/{sid}/progress", done)
    assert retry.status_code == 200 and retry.json["status"] == "already_processed"
    session = api.get(f"/v1/sessions/{sid}").json
    assert session["completed_steps"] == [1] and session["version"] == 2


def test_unexpected_errors_are_a_json_500_without_internals(api, make_session) -> None:
    sid = make_session()["session_id"]
    fail_with("SomethingNobodyExpected", "GetItem")
    response = api.get(f"/v1/sessions/{sid}")
    heal("GetItem")
    assert response.status_code == 500
    assert response.json == {"error": "internal_error", "message": "An internal error occurred."}
