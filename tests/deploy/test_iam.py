"""The per-function policy files in .chalice/ allow every AWS call each function really makes.

The whole life of a session runs in-process (API calls, the stream and queue handlers through
the local runner, the idle job) while a botocore hook records each call with the function
making it; each call must be allowed by that function's policy, on the resource it touched.
(Least privilege the other way round, no wildcards, is checked on the packaged template in
test_package.py.)"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from chalicelib.config import get_settings
from chalicelib.db import table as store
from chalicelib.pipeline import queue
from tests.conftest import drain, event_ids, run_session
from tests.receiver import always

ROOT = Path(__file__).resolve().parents[2]
_current = threading.local()


def policies() -> dict[str, list[dict]]:
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]
    files = {"api_handler": stage["iam_policy_file"]}
    files |= {name: cfg["iam_policy_file"] for name, cfg in stage["lambda_functions"].items()}
    return {name: json.loads((ROOT / ".chalice" / f).read_text())["Statement"] for name, f in files.items()}


def allowed(statements: list[dict], action: str, resource: str) -> bool:
    return any(action in s["Action"] and resource in s["Resource"] for s in statements)


@pytest.fixture
def recorded(aws, runner):
    calls: dict[str, set[tuple[str, str]]] = defaultdict(set)
    names = {aws.delivery_queue_url: "${DeliveryQueue.Arn}", aws.dead_letter_queue_url: "${DeadLetterQueue.Arn}"}

    def record(event_name: str, params: dict, **_: object) -> None:
        service, operation = event_name.split(".")[1:3]
        function = getattr(_current, "function", "api_handler")
        if operation == "TransactWriteItems":  # IAM checks each item's own action
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem"}
            for item in params["TransactItems"]:
                calls[function] |= {(f"dynamodb:{kinds[k]}", "${SessionTable.Arn}") for k in item}
            return
        if service == "sqs":  # a batch call needs the permission of its single form
            operation = operation.removesuffix("Batch")
        if service == "dynamodb":
            resource = "${SessionTable.Arn}/index/*" if params.get("IndexName") else "${SessionTable.Arn}"
        else:
            resource = names[params["QueueUrl"]]
        calls[function].add((f"{service}:{operation}", resource))

    store.get_client().meta.events.register("provide-client-params.dynamodb", record)
    queue.get_client().meta.events.register("provide-client-params.sqs", record)
    invoke = runner._invoke

    def as_function(name: str, event: dict):
        _current.function = name
        try:
            return invoke(name, event)
        finally:
            _current.function = "api_handler"

    runner._invoke = as_function
    return calls


def test_each_function_may_do_what_it_does(api, aws, runner, receiver, recorded, monkeypatch) -> None:
    # a session whose webhooks fail for good, then are redelivered and redriven
    receiver.behaviour = always(500)
    run_session(api, "s-1", 2)
    api.post("/v1/sessions/s-1/messages", {"user_id": "u", "sender": "user", "message": "hi"})
    drain(runner, lambda: queue.depth(aws.dead_letter_queue_url) >= 1 and queue.depth(aws.delivery_queue_url) == 0)
    receiver.behaviour = always(200)
    assert api.post(f"/v1/events/{event_ids(api, 's-1')[0]}/redeliver").status_code == 202
    assert api.post("/v1/deliveries/redrive").status_code == 200
    drain(runner, lambda: not api.get("/v1/deliveries?status=failed").json["items"])
    # reads, an idle session closed by the scheduled job, admin work, deletes
    for path in ("/v1/sessions", "/v1/sessions/s-1/events", "/v1/analytics/overview",
                 "/v1/analytics/popular-manuals", "/health/ready", "/v1/keys"):
        assert api.get(path).status_code == 200, path
    api.post("/v1/sessions", {"session_id": "s-idle", "user_id": "u", "manual_id": "man-2"})
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT_SECONDS", "0")
    get_settings.cache_clear()
    runner.pump_schedules(now=float("inf"))
    assert api.get("/v1/sessions/s-idle").json["status"] == "abandoned"
    api.post("/v1/keys", {"scopes": ["read"]})
    assert api.delete("/v1/sessions/s-1").status_code == 204
    drain(runner, lambda: runner.pump() == 0)

    granted = policies()
    assert {"api_handler", "feedback_handler", "analytics_handler", "delivery_handler"} <= set(recorded)
    for function, calls in recorded.items():
        denied = {c for c in calls if not allowed(granted[function], *c)}
        assert not denied, f"{function} calls what its policy file does not allow: {denied}"
    # and the authorizer's policy covers the one call it makes (the key lookup)
    assert allowed(granted["api_key_authorizer"], "dynamodb:GetItem", "${SessionTable.Arn}")
