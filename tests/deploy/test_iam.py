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
from typing import Any

import pytest

from chalicelib import sealing
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


def allowed(statements: list[dict], action: str, resource: str, context: tuple = ()) -> bool:
    return any(action in s["Action"] and resource in s["Resource"] and conditions_hold(s, dict(context))
               for s in statements)


def conditions_hold(statement: dict, context: dict[str, str]) -> bool:
    """The statement's KMS encryption-context conditions, evaluated as IAM does, for a call
    with this encryption context (statements without conditions hold for any call)."""
    from fnmatch import fnmatchcase

    def values(value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else value

    for operator, keys in statement.get("Condition", {}).items():
        for name, expected in keys.items():
            if name == "kms:EncryptionContextKeys":
                assert operator == "ForAllValues:StringEquals", operator
                if not set(context) <= set(values(expected)):
                    return False
                continue
            actual = context.get(name.removeprefix("kms:EncryptionContext:"))
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in values(expected):
                return False
            if operator == "StringLike" and not any(fnmatchcase(actual, p) for p in values(expected)):
                return False
            assert operator in ("StringEquals", "StringLike"), operator
    return True


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
        context: tuple = ()
        if service == "dynamodb":
            resource = "${SessionTable.Arn}/index/*" if params.get("IndexName") else "${SessionTable.Arn}"
        elif service == "kms":  # checked with the call's encryption context (the policies' conditions)
            resource = "${EndpointSecretsKey.Arn}"
            assert params["KeyId"] == get_settings().endpoint_secrets_key_arn
            context = tuple(sorted(params.get("EncryptionContext", {}).items()))
        else:
            resource = names[params["QueueUrl"]]
        calls[function].add((f"{service}:{operation}", resource, context))

    store.get_client().meta.events.register("provide-client-params.dynamodb", record)
    queue.get_client().meta.events.register("provide-client-params.sqs", record)
    sealing.get_client().meta.events.register("provide-client-params.kms", record)
    invoke = runner._invoke

    def as_function(name: str, event: dict, **kw: Any):
        _current.function = name
        try:
            return invoke(name, event, **kw)
        finally:
            _current.function = "api_handler"

    runner._invoke = as_function
    return calls


def test_each_function_may_do_what_it_does(api, aws, runner, receiver, recorded, monkeypatch) -> None:
    # a session whose webhooks fail for good, then are redelivered and redriven
    receiver.behaviour = always(500)
    # an endpoint registered and rotated (the API encrypts), whose webhooks are signed (the
    # delivery function decrypts)
    other = api.post("/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["session_created"]}).json
    assert api.post(f"/v1/webhook-endpoints/{other['endpoint_id']}/rotate-secret").status_code == 200
    # an inbox that checks signatures: the API encrypts its secret and decrypts it to check a capture
    box = api.post("/v1/inboxes", {"signing_secret": "whsec_" + "SW5ib3hTZWNyZXRGb3JJYW1UZXN0"}).json
    assert api.client.http.request("POST", f"/v1/hooks/{box['inbox_id']}", body=b"{}").status_code == 200
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

    # the default endpoint's WEBHOOK_SECRET changes: the first function to see it stores it
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_" + "TmV3U2VjcmV0Rm9yVGhlRGVmYXVsdEVuZHBvaW50IQ==")
    get_settings.cache_clear()
    run_session(api, "s-2", 1)
    drain(runner, lambda: runner.pump() == 0)

    granted = policies()
    assert {"api_handler", "feedback_handler", "analytics_handler", "delivery_handler"} <= set(recorded)
    kms = {function: {c[0] for c in calls if c[0].startswith("kms:")} for function, calls in recorded.items()}
    # only the API encrypts (and the delivery function the default endpoint's secret, when
    # it is the first to see WEBHOOK_SECRET); only the delivery function decrypts endpoint
    # secrets, only the API inbox secrets
    assert kms["api_handler"] == {"kms:Encrypt", "kms:Decrypt"}
    assert kms["delivery_handler"] == {"kms:Decrypt", "kms:Encrypt"}
    assert all(not actions for function, actions in kms.items() if function not in ("api_handler", "delivery_handler"))
    for function in set(granted) - {"delivery_handler", "api_handler"}:
        assert not any("kms:Decrypt" in s["Action"] for s in granted[function]), function
    endpoint_context = (("endpoint_id", other["endpoint_id"]), ("purpose", "webhook-endpoint-secret"))
    inbox_context = (("inbox_id", box["inbox_id"]), ("purpose", "inbox-signing-secret"))
    assert not allowed(granted["api_handler"], "kms:Decrypt", "${EndpointSecretsKey.Arn}", endpoint_context)
    assert allowed(granted["api_handler"], "kms:Decrypt", "${EndpointSecretsKey.Arn}", inbox_context)
    assert not allowed(granted["delivery_handler"], "kms:Decrypt", "${EndpointSecretsKey.Arn}", inbox_context)
    # an inbox's context with an endpoint's id, or an extra key, is refused
    for odd in ((("endpoint_id", "ep_x"), ("purpose", "inbox-signing-secret")),
                (("inbox_id", "b"), ("endpoint_id", "ep_x"), ("purpose", "inbox-signing-secret"))):
        assert not allowed(granted["api_handler"], "kms:Decrypt", "${EndpointSecretsKey.Arn}", odd)
    assert not any("kms:Encrypt" in s["Action"] for f in set(granted) - {"api_handler", "delivery_handler"}
                   for s in granted[f])
    # the delivery function may encrypt the default endpoint's secret only
    assert not allowed(granted["delivery_handler"], "kms:Encrypt", "${EndpointSecretsKey.Arn}",
                       (("endpoint_id", other["endpoint_id"]), ("purpose", "webhook-endpoint-secret")))
    assert allowed(granted["delivery_handler"], "kms:Encrypt", "${EndpointSecretsKey.Arn}",
                   (("endpoint_id", "default"), ("purpose", "webhook-endpoint-secret")))
    # and no policy lets the key be used for anything but endpoint secrets
    assert not allowed(granted["delivery_handler"], "kms:Decrypt", "${EndpointSecretsKey.Arn}",
                       (("endpoint_id", other["endpoint_id"]), ("purpose", "other")))
    for function, calls in recorded.items():
        denied = {c for c in calls if not allowed(granted[function], *c)}
        assert not denied, f"{function} calls what its policy file does not allow: {denied}"
    # and the authorizer's policy covers the one call it makes (the key lookup)
    assert allowed(granted["api_key_authorizer"], "dynamodb:GetItem", "${SessionTable.Arn}")
