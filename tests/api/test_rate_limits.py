"""Per-key limits through the keys API, the authorizer's usage identifier, the API Gateway
keys and usage plans the keys service keeps (moto's API Gateway), and the capture route's
limits (per inbox, per source address; a paused inbox costs no write)."""

from __future__ import annotations

import json
import os
from collections import Counter

import boto3
import pytest

from chalicelib import runtime
from chalicelib.db import table as store
from chalicelib.domain import limits
from chalicelib.domain.errors import RateLimited
from chalicelib.inbox import captures
from chalicelib.services import usage_plans


def test_limits_set_when_minting_changed_with_patch_and_cleared_with_null(api) -> None:
    # GIVEN a key minted with limits of its own
    created = api.post("/v1/keys", {"scopes": ["agent"], "name": "slow", "rate_per_second": 2.5,
                                    "burst": 5, "daily_quota": 1000})
    assert created.status_code == 201, created.json
    assert (created.json["rate_per_second"], created.json["burst"], created.json["daily_quota"]) == (2.5, 5, 1000)
    key_id = created.json["key_id"]
    # WHEN one limit changes, and another goes back to the default plan's
    patched = api.patch(f"/v1/keys/{key_id}", {"burst": 20, "daily_quota": None})
    # THEN the rest stays, and the list shows it
    assert patched.status_code == 200, patched.json
    assert (patched.json["rate_per_second"], patched.json["burst"], patched.json["daily_quota"]) == (2.5, 20, None)
    listed = {k["key_id"]: k for k in api.get("/v1/keys?limit=100").json["items"]}
    assert listed[key_id]["burst"] == 20 and listed[key_id]["daily_quota"] is None
    plain = api.post("/v1/keys", {"scopes": ["read"]}).json
    assert (plain["rate_per_second"], plain["burst"], plain["daily_quota"]) == (None, None, None)


@pytest.mark.parametrize("body", [{"burst": 0}, {"rate_per_second": -1}, {"daily_quota": "many"},
                                  {"burst": 1.5}, {"rate_per_second": 10_001},
                                  {"rate_per_second": 5e-324}, {"rate_per_second": 0}])
def test_bad_limits_are_a_400_naming_the_field(api, body) -> None:
    key_id = api.post("/v1/keys", {"scopes": ["read"]}).json["key_id"]
    minted = api.post("/v1/keys", {"scopes": ["read"], **body})
    patched = api.patch(f"/v1/keys/{key_id}", body)
    assert minted.status_code == 400 and patched.status_code == 400, (minted.json, patched.json)
    assert patched.json["error"] == "validation_error"


def test_patch_of_an_unknown_key_is_404_and_needs_an_admin_key(api) -> None:
    assert api.patch("/v1/keys/0123456789abcdef", {"burst": 5}).json["error"] == "key_not_found"
    agent = api.post("/v1/keys", {"scopes": ["agent"]}).json
    answer = api.as_key(agent["key"]).patch(f"/v1/keys/{agent['key_id']}", {"burst": 5000})
    assert answer.status_code == 403
    # PATCH changes limits only: a key's scopes stay what they were minted with
    assert api.patch(f"/v1/keys/{agent['key_id']}", {"scopes": ["admin"]}).status_code == 400


def test_the_authorizer_names_the_keys_usage_identifier_and_hands_on_its_limits(api, client) -> None:
    created = api.post("/v1/keys", {"scopes": ["agent"], "burst": 7}).json
    answer = client.lambda_.invoke("api_key_authorizer", {
        "type": "TOKEN", "authorizationToken": f"Bearer {created['key']}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/api/GET/v1/sessions"}).payload
    assert answer["usageIdentifierKey"] == limits.usage_identifier(created["key_id"])
    assert answer["principalId"] == created["key_id"]
    assert answer["context"]["burst"] == "7" and answer["context"]["rate_per_second"] == ""


@pytest.fixture
def gateway(aws, monkeypatch):
    """The stack's REST API, stage and default usage plan as they exist on AWS (in moto's API
    Gateway), and USAGE_PLAN_NAME set as the template sets it."""
    apigw = boto3.client("apigateway")
    api_id = apigw.create_rest_api(name="session-service")["id"]
    plan = apigw.create_usage_plan(name="stack-default", apiStages=[{"apiId": api_id, "stage": "api"}],
                                   throttle={"rateLimit": 50.0, "burstLimit": 100},
                                   quota={"limit": 200000, "period": "DAY"})
    monkeypatch.setenv("USAGE_PLAN_NAME", "stack-default")
    runtime.reset()
    return apigw, plan["id"]


def _plan_keys(apigw, plan_id: str) -> set[str]:
    return {k["value"] for k in apigw.get_usage_plan_keys(usagePlanId=plan_id)["items"]}


def test_minting_puts_the_keys_api_gateway_key_in_the_right_usage_plan(api, gateway) -> None:
    apigw, default_plan = gateway
    # a key without limits of its own: in the default plan
    plain = api.post("/v1/keys", {"scopes": ["agent"]}).json
    assert limits.usage_identifier(plain["key_id"]) in _plan_keys(apigw, default_plan)
    gateway_keys = {k["value"]: k for k in apigw.get_api_keys(includeValues=True)["items"]}
    assert gateway_keys[limits.usage_identifier(plain["key_id"])]["enabled"] is True
    # a key with limits: a plan of its own, with them, on the same stage
    own = api.post("/v1/keys", {"scopes": ["agent"], "rate_per_second": 5, "burst": 10}).json
    usage_id = limits.usage_identifier(own["key_id"])
    plans = {p["name"]: p for p in apigw.get_usage_plans()["items"]}
    mine = plans[f"stack-default-{own['key_id']}"]
    assert mine["throttle"] == {"rateLimit": 5.0, "burstLimit": 10}
    assert mine["quota"]["limit"] == limits.KEY_DAILY_QUOTA and mine["apiStages"][0]["stage"] == "api"
    assert usage_id in _plan_keys(apigw, mine["id"]) and usage_id not in _plan_keys(apigw, default_plan)
    # PATCH changes its plan; clearing every limit moves it back to the default plan
    api.patch(f"/v1/keys/{own['key_id']}", {"burst": 30})
    assert apigw.get_usage_plan(usagePlanId=mine["id"])["throttle"]["burstLimit"] == 30
    api.patch(f"/v1/keys/{own['key_id']}", {"rate_per_second": None, "burst": None})
    assert usage_id in _plan_keys(apigw, default_plan)
    assert f"stack-default-{own['key_id']}" not in {p["name"] for p in apigw.get_usage_plans()["items"]}
    # revoking deletes its API Gateway key
    assert api.delete(f"/v1/keys/{own['key_id']}").status_code == 204
    values = {k["value"] for k in apigw.get_api_keys(includeValues=True)["items"]}
    assert usage_id not in values and limits.usage_identifier(plain["key_id"]) in values


def test_a_key_minted_before_usage_plans_gets_its_api_gateway_key_with_a_patch(api, aws, monkeypatch) -> None:
    # GIVEN a key minted while API Gateway keys were off (the state before this change)
    old = api.post("/v1/keys", {"scopes": ["agent"]}).json
    apigw = boto3.client("apigateway")
    plan = apigw.create_usage_plan(name="stack-default")["id"]
    monkeypatch.setenv("USAGE_PLAN_NAME", "stack-default")
    runtime.reset()
    # WHEN an operator PATCHes it (with no change at all)
    assert api.patch(f"/v1/keys/{old['key_id']}", {}).status_code == 200
    # THEN it is in the default plan
    assert limits.usage_identifier(old["key_id"]) in _plan_keys(apigw, plan)


def test_without_the_usage_plan_on_api_gateway_minting_is_a_503_and_stores_nothing(api, aws, monkeypatch) -> None:
    monkeypatch.setenv("USAGE_PLAN_NAME", "no-such-plan")
    runtime.reset()
    before = len(api.get("/v1/keys?limit=100").json["items"])
    answer = api.post("/v1/keys", {"scopes": ["agent"]})
    assert answer.status_code == 503 and answer.json["error"] == "service_unavailable"
    assert len(api.get("/v1/keys?limit=100").json["items"]) == before
    assert usage_plans.enabled()


# ---- the capture route ----------------------------------------------------------------------


@pytest.fixture
def dynamodb_calls(aws) -> Counter:
    counter: Counter = Counter()
    store.get_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: counter.update([event_name.rsplit(".", 1)[-1]]))
    return counter


def _inbox(api, **body) -> tuple[str, str]:
    created = api.post("/v1/inboxes", body).json
    return created["inbox_id"], created["read_token"]


def test_a_paused_inbox_answers_410_with_no_write_and_at_most_one_read(api, dynamodb_calls) -> None:
    inbox_id, token = _inbox(api)
    assert api.patch(f"/v1/inboxes/{inbox_id}", {"paused": True}, headers={"X-Inbox-Token": token}).status_code == 200
    dynamodb_calls.clear()
    answers = [api.as_key(None).post(f"/v1/hooks/{inbox_id}", {"n": n}).status_code for n in range(20)]
    assert answers == [410] * 20
    assert dynamodb_calls == Counter({"GetItem": 1}), dynamodb_calls
    captured = api.get(f"/v1/inboxes/{inbox_id}/requests", headers={"X-Inbox-Token": token}).json
    assert captured["items"] == []
    # resumed: captures again at once (this process forgot the paused state)
    api.patch(f"/v1/inboxes/{inbox_id}", {"paused": False}, headers={"X-Inbox-Token": token})
    assert api.as_key(None).post(f"/v1/hooks/{inbox_id}", {"n": 1}).status_code == 200


def test_a_deleted_or_unknown_inbox_costs_no_write(api, dynamodb_calls) -> None:
    inbox_id, token = _inbox(api)
    assert api.delete(f"/v1/inboxes/{inbox_id}", headers={"X-Inbox-Token": token}).status_code == 204
    dynamodb_calls.clear()
    statuses = [api.as_key(None).post(f"/v1/hooks/{name}", {}).status_code for name in (inbox_id, "nobody-here") * 5]
    assert statuses == [404] * 10
    assert set(dynamodb_calls) == {"GetItem"} and dynamodb_calls["GetItem"] == 2, dynamodb_calls


def test_captures_are_limited_per_source_address_and_per_inbox(aws, monkeypatch, api) -> None:
    monkeypatch.setattr(limits, "SOURCE_BURST", 3)
    monkeypatch.setattr(limits, "SOURCE_RATE_PER_SECOND", 0.01)
    monkeypatch.setattr(limits, "INBOX_BURST", 5)
    monkeypatch.setattr(limits, "INBOX_RATE_PER_SECOND", 0.01)
    inbox_id, _ = _inbox(api)

    def send(source: str) -> int:
        try:
            return captures.capture(inbox_id, method="POST", path="/", query=None, headers={},
                                    body=b"{}", source_ip=source)[0]
        except RateLimited as refused:
            assert int(refused.headers["Retry-After"]) >= 1
            return refused.status

    # one address floods: refused after its burst, without spending the inbox's tokens
    assert [send("198.51.100.1") for _ in range(6)] == [200, 200, 200, 429, 429, 429]
    # other addresses still get through, until the inbox's own burst (5) is spent
    assert [send(f"198.51.100.{n}") for n in range(2, 6)] == [200, 200, 429, 429]


def test_a_capture_over_the_limit_is_a_429_json_with_retry_after(api, monkeypatch) -> None:
    monkeypatch.setattr(limits, "INBOX_BURST", 1)
    monkeypatch.setattr(limits, "INBOX_RATE_PER_SECOND", 0.01)
    inbox_id, _ = _inbox(api)
    assert api.as_key(None).post(f"/v1/hooks/{inbox_id}", {}).status_code == 200
    refused = api.as_key(None).post(f"/v1/hooks/{inbox_id}", {})
    assert refused.status_code == 429 and refused.json["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


# ---- the upgrade path: keys minted before usage plans ------------------------------------------


@pytest.fixture
def sync(aws, monkeypatch):
    """`python -m cli keys sync-usage-plans --stack <the test stack> ...`; the environment it
    sets (as the CLI's process would) is put back after the test."""
    from click.testing import CliRunner

    from cli import cli

    for name in ("TABLE_NAME", "USAGE_PLAN_NAME"):
        monkeypatch.setenv(name, os.environ.get(name, ""))

    def run(*args: str, json_output: bool = False):
        return CliRunner().invoke(cli, [*(["--json"] if json_output else []), "keys", "sync-usage-plans",
                                        "--stack", "session-service-local", "--pause", "0", *args])

    return run


def test_sync_usage_plans_gives_every_key_minted_before_them_its_api_gateway_key(api, sync, monkeypatch) -> None:
    # GIVEN keys minted while API Gateway keys were off (the state before usage plans): plain
    # ones, one with limits of its own, a revoked one (and the tests' admin key)
    plain = [api.post("/v1/keys", {"scopes": ["agent"]}).json for _ in range(3)]
    own = api.post("/v1/keys", {"scopes": ["read"], "rate_per_second": 3, "burst": 6}).json
    revoked = api.post("/v1/keys", {"scopes": ["read"]}).json
    assert api.delete(f"/v1/keys/{revoked['key_id']}").status_code == 204
    # ... then the stack upgraded: its API, stage and default plan at API Gateway
    apigw = boto3.client("apigateway")
    api_id = apigw.create_rest_api(name="session-service")["id"]
    default = apigw.create_usage_plan(name="session-service-local-default",
                                      apiStages=[{"apiId": api_id, "stage": "api"}])["id"]
    # ... and an earlier run that stopped after making one key's API Gateway key, before
    # storing its id (so this run must adopt it: a second key of that value is refused)
    apigw.create_api_key(name=limits.usage_identifier(plain[0]["key_id"]),
                         value=limits.usage_identifier(plain[0]["key_id"]), enabled=True)

    # WHEN the operator runs the upgrade step, bounded to 2 keys a run
    first = sync("--max-keys", "2")
    assert first.exit_code == 0, first.output
    assert "go on with --cursor" in first.stderr
    cursor = first.stderr.rsplit("--cursor ", 1)[1].split()[0]
    rest = sync("--cursor", cursor)
    assert rest.exit_code == 0, rest.output

    # THEN every active key is in its plan at API Gateway, and the revoked one is not there
    active = [k["key_id"] for k in plain] + [own["key_id"]]
    total = len(api.get("/v1/keys?limit=100").json["items"])
    assert first.stderr.count("] key ") + rest.stderr.count("] key ") == total
    in_default = _plan_keys(apigw, default)
    assert {limits.usage_identifier(k) for k in [k["key_id"] for k in plain]} <= in_default
    mine = {p["name"]: p for p in apigw.get_usage_plans()["items"]}[f"session-service-local-default-{own['key_id']}"]
    assert mine["throttle"] == {"rateLimit": 3.0, "burstLimit": 6}
    assert _plan_keys(apigw, mine["id"]) == {limits.usage_identifier(own["key_id"])}
    values = [k["value"] for k in apigw.get_api_keys(includeValues=True)["items"]]
    assert limits.usage_identifier(revoked["key_id"]) not in values
    assert len(values) == len(set(values)) == len(active) + 1  # + the tests' admin key, once each
    # AND a run again changes nothing (idempotent), and the keys service now manages them:
    again = sync(json_output=True)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert (summary["attached"], summary["in_place"], summary["revoked"]) == (0, total - 1, 1), summary
    monkeypatch.setenv("USAGE_PLAN_NAME", "session-service-local-default")
    runtime.reset()
    assert api.patch(f"/v1/keys/{own['key_id']}", {"rate_per_second": None, "burst": None}).status_code == 200
    assert limits.usage_identifier(own["key_id"]) in _plan_keys(apigw, default)
    assert api.delete(f"/v1/keys/{plain[1]['key_id']}").status_code == 204
    values = {k["value"] for k in apigw.get_api_keys(includeValues=True)["items"]}
    assert limits.usage_identifier(plain[1]["key_id"]) not in values


def test_sync_usage_plans_repairs_a_key_whose_api_gateway_key_was_deleted(api, gateway, sync) -> None:
    apigw, default = gateway
    key = api.post("/v1/keys", {"scopes": ["agent"]}).json  # made with its API Gateway key
    usage_id = limits.usage_identifier(key["key_id"])
    gone = next(k["id"] for k in apigw.get_api_keys(includeValues=True)["items"] if k["value"] == usage_id)
    apigw.delete_api_key(apiKey=gone)
    result = sync("--usage-plan", "stack-default")
    assert result.exit_code == 0, result.output
    assert f"key {key['key_id']}: attached" in result.stderr
    assert usage_id in _plan_keys(apigw, default)


def test_sync_usage_plans_without_the_plan_at_api_gateway_exits_1_saying_so(sync) -> None:
    result = sync()
    assert result.exit_code == 1
    assert "service_unavailable" in result.stderr and "run it again" in result.stderr
