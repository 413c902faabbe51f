"""Inbox signing secrets encrypted at rest (KMS, bound to their inbox), through
chalice.test.Client against moto: nothing in the clear in the table, captures still checked,
a ciphertext that will not open (another inbox's, a disabled key) stores the capture
unverified, no key means no secret stored, and the upgrade's migration
(`python -m cli inbox encrypt-secrets`) encrypts what an older version stored plain."""

from __future__ import annotations

import base64
import json
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib import sealing
from chalicelib.config import get_settings
from chalicelib.db import table as store
from chalicelib.pipeline import webhooks

SECRET = "whsec_" + base64.b64encode(b"inbox-secret-kept-under-kms-0001").decode()
SECRET_BYTES = SECRET.removeprefix("whsec_")


@pytest.fixture
def kms_calls(aws) -> Counter:
    """Every KMS call, by (operation, purpose, inbox_id of its context)."""
    calls: Counter = Counter()

    def record(event_name: str, params: dict, **_: object) -> None:
        context = params.get("EncryptionContext", {})
        calls[(event_name.split(".")[2], context.get("purpose"), context.get("inbox_id"))] += 1

    sealing.get_client().meta.events.register("provide-client-params.kms", record)
    return calls


@pytest.fixture
def key(aws) -> Any:
    """The stack's key, to disable: moto keeps using a disabled key (AWS answers
    DisabledException), so a hook answers as KMS does, from moto's own key state."""
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kms.models import kms_backends

    key_arn = get_settings().endpoint_secrets_key_arn
    key_id = key_arn.rsplit("/", 1)[1]

    def as_kms_answers(**_: object) -> Any:
        if kms_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].keys[key_id].key_state == "Enabled":
            return None
        return (SimpleNamespace(status_code=400, headers={}),
                {"Error": {"Code": "DisabledException", "Message": f"{key_arn} is disabled."},
                 "ResponseMetadata": {"HTTPStatusCode": 400}})

    sealing.get_client().meta.events.register("before-call.kms", as_kms_answers)
    kms = boto3.client("kms")
    return SimpleNamespace(disable=lambda: kms.disable_key(KeyId=key_id), enable=lambda: kms.enable_key(KeyId=key_id))


def raw_inbox(inbox_id: str) -> dict[str, Any]:
    return store.from_item(store.get_client().get_item(
        TableName=store.table_name(), Key={"PK": {"S": f"INBOX#{inbox_id}"}, "SK": {"S": store.META}})["Item"])


def stored(inbox_id: str) -> bool:
    return "Item" in store.get_client().get_item(
        TableName=store.table_name(), Key={"PK": {"S": f"INBOX#{inbox_id}"}, "SK": {"S": store.META}})


def send(api, inbox_id: str, event_id: str, secret: str = SECRET, tamper: bool = False) -> None:
    body = webhooks.dumps({"event_type": "session_created", "event_id": event_id})
    headers = webhooks.signed_headers(secret, event_id, body)
    sent = body.replace("created", "hacked") if tamper else body
    response = api.client.http.request("POST", f"/v1/hooks/{inbox_id}", body=sent.encode(),
                                       headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 200, response.body


def verdicts(api, box: dict[str, Any]) -> list[dict[str, Any]]:
    page = api.get(f"/v1/inboxes/{box['inbox_id']}/requests", headers={"X-Inbox-Token": box["read_token"]})
    return [i["signature"] for i in reversed(page.json["items"])]


def test_the_secret_is_stored_encrypted_and_still_checks_signatures(api, aws, kms_calls) -> None:
    import boto3

    # GIVEN an inbox created with a signing secret
    box = api.post("/v1/inboxes", {"name": "signed", "signing_secret": SECRET}).json
    assert box["verifies_signatures"] is True
    # THEN the table holds its ciphertext only, bound to this inbox
    item = raw_inbox(box["inbox_id"])
    assert item["signing_secret"]["scheme"] == "kms-v1"
    assert SECRET_BYTES not in json.dumps(item) and SECRET_BYTES[:16] not in json.dumps(item)
    blob = base64.b64decode(item["signing_secret"]["ciphertext"])
    context = {"purpose": "inbox-signing-secret", "inbox_id": box["inbox_id"]}
    assert boto3.client("kms").decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == SECRET.encode()
    for wrong in ({**context, "inbox_id": "another"}, {"purpose": "webhook-endpoint-secret", "endpoint_id": box["inbox_id"]}):
        with pytest.raises(Exception, match="InvalidCiphertext"):
            boto3.client("kms").decrypt(CiphertextBlob=blob, EncryptionContext=wrong)
    # WHEN webhooks arrive, signed well, tampered, and signed with another secret
    send(api, box["inbox_id"], "evt_1")
    send(api, box["inbox_id"], "evt_2", tamper=True)
    send(api, box["inbox_id"], "evt_3", secret="whsec_" + base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode())
    # THEN each gets its verdict, the secret opened once (then from the process's cache)
    assert verdicts(api, box) == [{"verified": True, "reason": None}, {"verified": False, "reason": "bad_signature"},
                                  {"verified": False, "reason": "bad_signature"}]
    assert kms_calls[("Encrypt", "inbox-signing-secret", box["inbox_id"])] == 1
    assert kms_calls[("Decrypt", "inbox-signing-secret", box["inbox_id"])] == 1
    # AND an inbox without a secret costs no KMS call and checks nothing
    plain = api.post("/v1/inboxes", {"name": "unsigned"}).json
    send(api, plain["inbox_id"], "evt_4")
    assert plain["verifies_signatures"] is False and verdicts(api, plain) == [None]
    assert raw_inbox(plain["inbox_id"])["signing_secret"] is None
    assert sum(n for (_, _, inbox), n in kms_calls.items() if inbox == plain["inbox_id"]) == 0


def test_a_ciphertext_copied_onto_another_inbox_does_not_open_there(api, aws) -> None:
    # GIVEN two inboxes, the first's secret opened (and cached) by a capture
    first = api.post("/v1/inboxes", {"signing_secret": SECRET}).json
    second = api.post("/v1/inboxes", {"signing_secret": "whsec_" + base64.b64encode(b"the-second-inbox-own-secret-0002").decode()}).json
    send(api, first["inbox_id"], "evt_1")
    # WHEN someone with write access to the table copies the first's ciphertext onto the second
    copied = raw_inbox(first["inbox_id"])["signing_secret"]
    store.get_client().put_item(TableName=store.table_name(), Item=store.to_item(
        {**raw_inbox(second["inbox_id"]), "signing_secret": copied}))
    from chalicelib.inbox import captures

    captures.forget_inboxes()  # the capture route's cached inbox records
    # THEN a webhook signed with the first's secret is not verified at the second: KMS refuses
    # the ciphertext under the second's context, and the process's cache is not a way round it
    send(api, second["inbox_id"], "evt_2")
    assert verdicts(api, second) == [{"verified": False, "reason": "secret_unavailable"}]
    send(api, first["inbox_id"], "evt_3")
    assert verdicts(api, first)[-1] == {"verified": True, "reason": None}


def test_a_disabled_key_stores_captures_unverified_and_refuses_new_secrets(api, aws, key) -> None:
    # GIVEN an inbox whose secret has not been opened yet (created, not captured at), and the key disabled
    box = api.post("/v1/inboxes", {"signing_secret": SECRET}).json
    key.disable()
    # WHEN a webhook arrives: it is captured, unverified, saying why
    send(api, box["inbox_id"], "evt_1")
    assert verdicts(api, box) == [{"verified": False, "reason": "secret_unavailable"}]
    # AND a new inbox with a secret is refused as a JSON 503 that says when to retry; nothing stored
    refused = api.post("/v1/inboxes", {"inbox_id": "while-disabled", "signing_secret": SECRET})
    assert refused.status_code == 503 and refused.json["error"] == "service_unavailable"
    assert refused.headers.get("Retry-After") == "5"
    assert not stored("while-disabled")
    assert api.post("/v1/inboxes", {"name": "no secret, no key needed"}).status_code == 201
    # WHEN the key is enabled again: the same inbox verifies, the refused one can be created
    key.enable()
    send(api, box["inbox_id"], "evt_2")
    assert verdicts(api, box)[-1] == {"verified": True, "reason": None}
    assert api.post("/v1/inboxes", {"inbox_id": "while-disabled", "signing_secret": SECRET}).status_code == 201


def test_without_a_key_no_secret_is_stored(api, aws, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_SECRETS_KEY_ARN", "")
    get_settings.cache_clear()
    refused = api.post("/v1/inboxes", {"inbox_id": "no-key", "signing_secret": SECRET})
    assert refused.status_code == 503 and refused.json["error"] == "service_unavailable"
    assert "ENDPOINT_SECRETS_KEY_ARN" in refused.json["message"]
    assert not stored("no-key")
    assert api.post("/v1/inboxes", {"inbox_id": "no-key"}).status_code == 201


def test_secrets_stored_plain_by_an_older_version_are_encrypted_by_the_migration(api, aws) -> None:
    from chalicelib.inbox import captures
    from cli import cli

    # GIVEN two inboxes stored as the version before this one stored them: the secret plain
    boxes = [api.post("/v1/inboxes", {"signing_secret": SECRET}).json for _ in range(2)]
    unsigned = api.post("/v1/inboxes", {}).json
    for box in boxes:
        store.get_client().put_item(TableName=store.table_name(), Item=store.to_item(
            {**raw_inbox(box["inbox_id"]), "signing_secret": SECRET}))
    captures.forget_inboxes()
    # THEN they keep checking signatures
    send(api, boxes[0]["inbox_id"], "evt_1")
    assert verdicts(api, boxes[0]) == [{"verified": True, "reason": None}]
    # WHEN the migration runs, then runs again
    first = CliRunner().invoke(cli, ["--json", "inbox", "encrypt-secrets", "--table", aws.table_name,
                                     "--key", get_settings().endpoint_secrets_key_arn])
    assert first.exit_code == 0, first.output
    done = json.loads(first.output)
    assert (done["encrypted"], done["skipped"], done["table"]) == (2, 0, aws.table_name) and done["scanned"] > 3
    again = CliRunner().invoke(cli, ["inbox", "encrypt-secrets", "--table", aws.table_name,
                                     "--key", get_settings().endpoint_secrets_key_arn])
    assert again.exit_code == 0 and again.output.startswith("0 inbox secret(s)"), again.output
    # THEN nothing is in the clear, the inbox without a secret is untouched, and signatures still verify
    for box in boxes:
        item = raw_inbox(box["inbox_id"])
        assert item["signing_secret"]["scheme"] == "kms-v1" and SECRET_BYTES not in json.dumps(item)
    assert raw_inbox(unsigned["inbox_id"])["signing_secret"] is None
    captures.forget_inboxes()
    for n, box in enumerate(boxes):
        send(api, box["inbox_id"], f"evt_{n + 2}")
        assert verdicts(api, box)[-1] == {"verified": True, "reason": None}
    assert CliRunner().invoke(cli, ["inbox", "encrypt-secrets"]).exit_code == 2  # names neither stack nor table
