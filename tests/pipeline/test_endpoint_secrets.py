"""Webhook endpoints' signing secrets encrypted at rest (KMS, the stack's key in moto): the
table never holds a secret in the clear, deliveries still verify at a real receiver on
127.0.0.1 (both secrets during a rotation's grace), KMS calls are counted (at most one
Decrypt per secret per process per cache lifetime), a key that cannot decrypt leads to
recorded failed attempts and retries (never a silent drop, never a 500 from the API), and
secrets stored plain by the previous version keep signing until the migration encrypts them."""

from __future__ import annotations

import json
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from chalicelib.config import get_settings
from tests.conftest import SECRET, drain, queue_depth, run_session
from tests.pipeline.test_endpoints import endpoint, events_of, pipeline, receivers  # noqa: F401 - fixtures
from tests.receiver import Receiver


def stored_items(aws: Any) -> list[dict[str, Any]]:
    """Every item of the table, as DynamoDB returns it (a raw Scan)."""
    import boto3

    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": aws.table_name}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def plain_secrets_in_table(aws: Any) -> list[str]:
    return [json.dumps(item)[:200] for item in stored_items(aws) if "whsec_" in json.dumps(item)]


def endpoint_item(endpoint_id: str) -> dict[str, Any]:
    from chalicelib.db import endpoints as records

    item = records.get(endpoint_id)
    assert item is not None
    return item


@pytest.fixture
def kms_calls(aws) -> Counter:
    """Every KMS call the code makes, counted by (operation, endpoint_id of its context)."""
    from chalicelib import sealing

    calls: Counter = Counter()

    def record(event_name: str, params: dict, **_: object) -> None:
        calls[(event_name.split(".")[2], params.get("EncryptionContext", {}).get("endpoint_id"))] += 1

    sealing.get_client().meta.events.register("provide-client-params.kms", record)
    return calls


def total(calls: Counter, operation: str) -> int:
    return sum(n for (op, _), n in calls.items() if op == operation)


@pytest.fixture
def key(aws) -> Any:
    """The stack's KMS key, to disable and enable. moto keeps encrypting and decrypting with
    a disabled key (AWS answers DisabledException): a hook answers as KMS does, from moto's
    own key state, so the code meets the real error through the real client."""
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kms.models import kms_backends

    from chalicelib import sealing

    key_arn = get_settings().endpoint_secrets_key_arn
    key_id = key_arn.rsplit("/", 1)[1]
    kms = boto3.client("kms")

    def as_kms_answers(**_: object) -> Any:
        if kms_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].keys[key_id].key_state == "Enabled":
            return None
        return (SimpleNamespace(status_code=400, headers={}),
                {"Error": {"Code": "DisabledException", "Message": f"{key_arn} is disabled."},
                 "ResponseMetadata": {"HTTPStatusCode": 400}})

    sealing.get_client().meta.events.register("before-call.kms", as_kms_answers)
    return SimpleNamespace(disable=lambda: kms.disable_key(KeyId=key_id),
                           enable=lambda: kms.enable_key(KeyId=key_id))


def test_the_table_holds_no_secret_in_the_clear_after_creating_and_rotating(api, aws, kms_calls,
                                                                             monkeypatch) -> None:
    # GIVEN the configured default endpoint (WEBHOOK_URL / WEBHOOK_SECRET) and two registered ones
    monkeypatch.setenv("WEBHOOK_URL", "http://127.0.0.1:9/hooks")
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    run_session(api, "s-1", 1)
    assert api.get("/v1/sessions/s-1/events").status_code == 200  # the API stores `default` on first use
    first = api.post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/a"}).json
    second = api.post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/b"}).json
    # WHEN secrets are rotated, with a grace (both kept) and without
    rotate = "/v1/webhook-endpoints/{}/rotate-secret"
    assert api.post(rotate.format(first["endpoint_id"]), {"grace_seconds": 3600}).status_code == 200
    assert api.post(rotate.format(first["endpoint_id"]), {"grace_seconds": 3600}).status_code == 200
    assert api.post(rotate.format(second["endpoint_id"]), {"grace_seconds": 0}).status_code == 200
    assert api.post(rotate.format("default"), {"grace_seconds": 60}).status_code == 200
    # THEN no secret is stored in the clear anywhere in the table
    assert plain_secrets_in_table(aws) == []
    # AND each secret is a KMS ciphertext bound to its endpoint
    for endpoint_id in (first["endpoint_id"], "default"):
        item = endpoint_item(endpoint_id)
        assert item["secret"]["scheme"] == item["previous_secret"]["scheme"] == "kms-v1"
    assert "previous_secret" not in endpoint_item(second["endpoint_id"])
    import base64

    import boto3
    from botocore.exceptions import ClientError

    blob = base64.b64decode(endpoint_item(first["endpoint_id"])["secret"]["ciphertext"])
    kms = boto3.client("kms")
    context = {"purpose": "webhook-endpoint-secret", "endpoint_id": first["endpoint_id"]}
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"].startswith(b"whsec_")
    with pytest.raises(ClientError, match="InvalidCiphertext"):  # copied onto another endpoint: unreadable
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={**context, "endpoint_id": second["endpoint_id"]})
    # AND the API only ever encrypted: one Encrypt per new secret, never a Decrypt (a rotation
    # moves the old ciphertext unopened)
    assert total(kms_calls, "Decrypt") == 0
    assert kms_calls[("Encrypt", first["endpoint_id"])] == 3
    assert kms_calls[("Encrypt", second["endpoint_id"])] == 2
    assert kms_calls[("Encrypt", "default")] == 2


def test_deliveries_verify_through_a_rotation_with_one_decrypt_per_secret_per_cache_lifetime(
        api, aws, pipeline, receivers, kms_calls, monkeypatch) -> None:  # noqa: F811
    from chalicelib import sealing

    created, receiver = endpoint(api, receivers, event_types=["session_created", "session_ended"])
    endpoint_id = created["endpoint_id"]
    # WHEN three sessions' webhooks are delivered (6 signed requests)
    for sid in ("s-1", "s-2", "s-3"):
        run_session(api, sid, 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 6)
    # THEN each verified with the receiver's secret, and the secret was decrypted once
    assert all(r.verified for r in receiver.requests)
    assert kms_calls[("Decrypt", endpoint_id)] == 1
    # WHEN the secret is rotated with a grace period and more webhooks go out
    old = created["secret"]
    new = api.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", {"grace_seconds": 3600}).json["secret"]
    for sid in ("s-4", "s-5"):
        run_session(api, sid, 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 10)
    # THEN each carries two signatures, each verifying with one of the secrets...
    for request in receiver.requests[6:]:
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            Webhook(secret).verify(request.body, request.headers)
    # ...at the cost of one more Decrypt (the new secret; the old ciphertext was opened already)
    assert kms_calls[("Decrypt", endpoint_id)] == 2
    # WHEN the cache lifetime (5 minutes) has passed
    monkeypatch.setattr(sealing, "_clock", lambda: time.monotonic() + sealing.CACHE_SECONDS + 1)
    run_session(api, "s-6", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 12)
    # THEN both secrets are decrypted again, once each, and still verify
    assert kms_calls[("Decrypt", endpoint_id)] == 4
    for secret in (old, new):
        Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    assert total(kms_calls, "Decrypt") == 4


@pytest.mark.parametrize("pipeline", ["0,0"], indirect=True)  # three attempts
def test_a_key_that_cannot_decrypt_leads_to_recorded_failed_attempts_and_retries(
        api, aws, pipeline, receivers, key) -> None:  # noqa: F811
    # GIVEN an endpoint (its secret encrypted), then its key disabled in KMS
    created, receiver = endpoint(api, receivers, event_types=["session_created"])
    endpoint_id = created["endpoint_id"]
    key.disable()
    # THEN the API answers a JSON 503 (never a 500) to a new endpoint or a rotation
    refused = api.post("/v1/webhook-endpoints", {"url": receiver.url})
    assert refused.status_code == 503 and refused.json["error"] == "service_unavailable", refused.json
    assert refused.headers["Retry-After"] == "5"
    rotated = api.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", {"grace_seconds": 60})
    assert rotated.status_code == 503 and rotated.json["error"] == "service_unavailable"
    # AND a webhook to the endpoint is attempted, recorded and retried until its budget is spent
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: events_of(api, "s-1")[0]["deliveries"][endpoint_id]["status"] == "failed"
          and queue_depth(aws.delivery_queue_url) == 0)
    event = events_of(api, "s-1")[0]
    attempts = [a for a in event["delivery_attempts"] if a["endpoint_id"] == endpoint_id]
    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "failed"], attempts
    assert all("signing secret unavailable" in a["error"] and "DisabledException" in a["error"] for a in attempts)
    assert receiver.requests == []  # never sent unsigned
    failed = api.get(f"/v1/deliveries?status=failed&endpoint_id={endpoint_id}").json["items"]
    assert [f["event_id"] for f in failed] == [event["event_id"]]
    stats = api.get(f"/v1/webhook-endpoints/{endpoint_id}").json["stats"]
    assert stats["attempts"] == 3 and stats["delivered"] == 0 and "signing secret unavailable" in stats["last_error"]
    # WHEN the key is enabled again and the event redelivered
    key.enable()
    assert api.post(f"/v1/events/{event['event_id']}/redeliver").status_code == 202
    drain(pipeline, lambda: len(receiver.delivered()) == 1)
    # THEN it arrives, signed with the endpoint's secret
    assert receiver.requests[0].verified


def test_plain_secrets_of_the_previous_version_keep_signing_until_the_migration_encrypts_them(
        api, aws, pipeline, receivers, kms_calls) -> None:  # noqa: F811
    from chalicelib.db import endpoints as records
    from chalicelib.domain.clock import to_iso, utcnow
    from chalicelib.pipeline import targets
    from cli import cli

    # GIVEN an endpoint stored by the previous version: its secret, and the one it replaced
    # (still in its grace period), both in the clear
    old, current = SECRET, "whsec_" + "TmV3U2VjcmV0Rm9yVGhlRGVmYXVsdEVuZHBvaW50IQ=="
    receiver = Receiver(secret=current)
    receivers.append(receiver)
    now = to_iso(utcnow())
    endpoint_id = "ep_00000000000000aa"
    assert records.create({"endpoint_id": endpoint_id, "url": receiver.url, "event_types": ["session_created"],
                           "enabled": True, "secret": current, "previous_secret": old,
                           "previous_expires_epoch": time.time() + 3600, "created_at": now,
                           "updated_at": now}) == "created"
    targets.forget()
    # WHEN it gets a webhook
    run_session(api, "s-1", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 1)
    # THEN it verifies with either secret (no KMS call needed)
    for secret in (old, current):
        Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert total(kms_calls, "Decrypt") == 0
    assert len(plain_secrets_in_table(aws)) == 1
    # WHEN the migration runs (python -m cli endpoints encrypt-secrets), given the stack, then
    # again given the table and the key
    first = CliRunner().invoke(cli, ["--json", "endpoints", "encrypt-secrets", "--stack", aws.name])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"endpoints": 1, "encrypted": 1, "changed_meanwhile": 0,
                                        "already_encrypted": 0}
    again = CliRunner().invoke(cli, ["--json", "endpoints", "encrypt-secrets", "--table", aws.table_name,
                                     "--key", get_settings().endpoint_secrets_key_arn])
    assert json.loads(again.output) == {"endpoints": 1, "encrypted": 0, "changed_meanwhile": 0,
                                        "already_encrypted": 1}
    # THEN nothing is in the clear any more: both secrets are KMS ciphertexts
    assert plain_secrets_in_table(aws) == []
    item = endpoint_item(endpoint_id)
    assert item["secret"]["scheme"] == item["previous_secret"]["scheme"] == "kms-v1"
    # AND webhooks still verify with either secret (the grace period is kept)
    run_session(api, "s-2", 1)
    drain(pipeline, lambda: len(receiver.delivered()) == 2)
    for secret in (old, current):
        Webhook(secret).verify(receiver.requests[1].body, receiver.requests[1].headers)
    assert all(r.verified for r in receiver.requests)


def test_the_default_endpoint_of_the_previous_version_is_encrypted_by_the_migration(
        api, aws, runner, receiver, kms_calls) -> None:
    from chalicelib.db import endpoints as records
    from chalicelib.pipeline import targets
    from cli import cli

    # GIVEN the default endpoint (WEBHOOK_URL / WEBHOOK_SECRET) stored plain by the previous version
    run_session(api, "s-1", 1)
    drain(runner, lambda: len(receiver.delivered()) == 3)
    records.update("default", {"secret": SECRET}, ("env_secret_fingerprint",))
    assert len(plain_secrets_in_table(aws)) == 1
    # WHEN the migration runs
    result = CliRunner().invoke(cli, ["endpoints", "encrypt-secrets", "--table", aws.table_name,
                                      "--key", get_settings().endpoint_secrets_key_arn])
    assert result.exit_code == 0 and "1 encrypted now" in result.output, result.output
    # THEN it is encrypted, and webhooks keep verifying with WEBHOOK_SECRET (one signature:
    # the configuration did not change, so no rotation was started)
    assert plain_secrets_in_table(aws) == []
    targets.forget()
    run_session(api, "s-2", 1)
    drain(runner, lambda: len(receiver.delivered()) == 6)
    for request in receiver.requests:
        Webhook(SECRET).verify(request.body, request.headers)
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 1


def test_webhook_secret_still_signs_while_kms_cannot_store_the_default_endpoint(api, aws, runner, receiver,
                                                                                key) -> None:
    from chalicelib.pipeline import targets

    # GIVEN WEBHOOK_URL / WEBHOOK_SECRET configured, and the key disabled before `default` is stored
    key.disable()
    # WHEN sessions run and their events are read
    run_session(api, "s-1", 1)
    assert api.get("/v1/sessions/s-1/events").status_code == 200  # not a 500
    drain(runner, lambda: len(receiver.delivered()) == 3)
    # THEN the webhooks went out signed with WEBHOOK_SECRET (read from the environment), and
    # nothing was stored in the clear
    for request in receiver.requests:
        Webhook(SECRET).verify(request.body, request.headers)
    assert api.get("/v1/webhook-endpoints/default").json["error"] == "endpoint_not_found"
    assert plain_secrets_in_table(aws) == []
    # WHEN the key works again (and the endpoint list's 10 s have passed)
    key.enable()
    targets.forget()
    assert api.get("/v1/sessions/s-1/events").status_code == 200
    # THEN `default` is stored, encrypted
    assert api.get("/v1/webhook-endpoints/default").status_code == 200
    assert endpoint_item("default")["secret"]["scheme"] == "kms-v1"
    assert plain_secrets_in_table(aws) == []
