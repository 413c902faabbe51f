"""Our API keys' stand-ins at API Gateway: one API Gateway API key per key, in a usage plan.

API Gateway enforces per-key rate, burst and daily quota through usage plans, and only for
API keys it knows. With the API's key source set to AUTHORIZER, our authorizer names the
caller's API Gateway key (its `usageIdentifierKey`: chalicelib.domain.limits.usage_identifier
of the key_id, not a secret, since callers cannot send it themselves). So every key needs its
API Gateway key, attached to a usage plan, before API Gateway lets it through:

  - minting a key creates its API Gateway key in the default plan (USAGE_PLAN_NAME, the
    stack's DefaultUsagePlan, found by name once per process) or, with limits of its own, in
    a plan of its own (`<default plan>-<key_id>`, on the same API stage);
  - PATCH /v1/keys/{key_id} moves it between the default plan and its own plan, or updates
    its own plan;
  - revoking deletes its API Gateway key (and its own plan).

This runs when keys are minted or changed, never per request. Without USAGE_PLAN_NAME (the local
stack, tests) nothing is created: the local gateway enforces the limits from the key record.
"""

from __future__ import annotations

from typing import Any

from chalicelib.config import get_settings
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.limits import KeyLimits, usage_identifier

# what the key record keeps about its API Gateway side
FIELDS = ("gateway_key_id", "usage_plan_id")
_client: Any = None
_default_plan: dict[str, Any] | None = None


def get_client() -> Any:
    global _client
    if _client is None:
        import boto3  # lazily: boto3 dominates cold-start time
        from botocore.config import Config

        _client = boto3.client("apigateway", config=Config(
            retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=10))
    return _client


def reset_client() -> None:
    global _client, _default_plan
    _client = _default_plan = None


def enabled() -> bool:
    return bool(get_settings().usage_plan_name)


def default_plan() -> dict[str, Any]:
    """The stack's default usage plan (by name: the template cannot hand the function its id
    without a reference cycle), remembered for the process."""
    global _default_plan
    if _default_plan is None:
        name, position = get_settings().usage_plan_name, None
        while _default_plan is None:
            page = _call("get_usage_plans", limit=500, **({"position": position} if position else {}))
            _default_plan = next((p for p in page.get("items", []) if p.get("name") == name), None)
            position = page.get("position")
            if _default_plan is None and not position:
                raise ServiceUnavailable(f"API Gateway has no usage plan named '{name}'.")
    return _default_plan


def _default_id() -> str:
    return str(default_plan()["id"])


def _call(operation: str, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(get_client(), operation)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise ServiceUnavailable("API Gateway did not accept the key's usage plan change; "
                                 "retry shortly.") from exc


def _plan_settings(limits: KeyLimits) -> dict[str, Any]:
    effective = limits.effective()
    return {"throttle": {"rateLimit": effective.rate_per_second, "burstLimit": effective.burst},
            "quota": {"limit": effective.daily_quota, "period": "DAY"}}


def _own_plan(key_id: str, limits: KeyLimits, current: str | None) -> str:
    """The key's own plan, created (on the default plan's stages) or brought up to date.
    Limits the key leaves unset take the domain defaults, which are the template's defaults."""
    default_id = _default_id()
    settings = _plan_settings(limits)
    if current and current != default_id:
        effective = limits.effective()
        _call("update_usage_plan", usagePlanId=current, patchOperations=[
            {"op": "replace", "path": "/throttle/rateLimit", "value": f"{effective.rate_per_second:g}"},
            {"op": "replace", "path": "/throttle/burstLimit", "value": str(effective.burst)},
            {"op": "replace", "path": "/quota/limit", "value": str(effective.daily_quota)}])
        return current
    default = default_plan()
    created = _call("create_usage_plan", name=f"{default['name']}-{key_id}",
                    description=f"Limits of API key {key_id} (set through PATCH /v1/keys)",
                    apiStages=[{"apiId": s["apiId"], "stage": s["stage"]} for s in default.get("apiStages", [])],
                    **settings)
    return str(created["id"])


def _delete_plan(plan_id: str) -> None:
    plan = _call("get_usage_plan", usagePlanId=plan_id)
    stages = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
              for s in plan.get("apiStages", [])]
    if stages:  # a plan still on a stage cannot be deleted
        _call("update_usage_plan", usagePlanId=plan_id, patchOperations=stages)
    _call("delete_usage_plan", usagePlanId=plan_id)


def attach(key_id: str, limits: KeyLimits, record: dict[str, Any] | None = None) -> dict[str, str]:
    """Make the key's API Gateway key exist in the plan its limits call for; returns the
    fields to store on the key record ({} when API Gateway keys are off)."""
    if not enabled():
        return {}
    record = record or {}
    gateway_key_id = record.get("gateway_key_id")
    if not gateway_key_id:
        gateway_key_id = str(_call("create_api_key", name=usage_identifier(key_id),
                                   value=usage_identifier(key_id), enabled=True,
                                   description=f"API key {key_id} of the session service")["id"])
    current = record.get("usage_plan_id")
    default_id = _default_id()
    target = _own_plan(key_id, limits, current) if limits.overridden() else default_id
    if target != current:
        _call("create_usage_plan_key", usagePlanId=target, keyId=gateway_key_id, keyType="API_KEY")
        if current:
            _call("delete_usage_plan_key", usagePlanId=current, keyId=gateway_key_id)
            if current != default_id:
                _delete_plan(current)
    return {"gateway_key_id": gateway_key_id, "usage_plan_id": target}


def detach(record: dict[str, Any]) -> None:
    """A revoked (or never stored) key's API Gateway side goes: its API Gateway key, and its
    own plan if it had one."""
    if not enabled() or not record.get("gateway_key_id"):
        return
    _call("delete_api_key", apiKey=record["gateway_key_id"])
    plan = record.get("usage_plan_id")
    if plan and plan != _default_id():
        _delete_plan(plan)


# ---- the upgrade path: keys minted before usage plans -----------------------------------------
# `python -m cli keys sync-usage-plans` (chalicelib/services/keys.py `sync_usage_plans`). Each
# step looks before it makes, so a run that stopped anywhere (a crash between creating the API
# Gateway key and storing its id, a throttled call) is finished by running it again.


def _code(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


def _look(operation: str, **kwargs: Any) -> Any:
    """`operation`, or None when API Gateway answers that the thing is not there."""
    from botocore.exceptions import ClientError

    try:
        return getattr(get_client(), operation)(**kwargs)
    except ClientError as exc:
        if _code(exc) == "NotFoundException":
            return None
        raise ServiceUnavailable(f"API Gateway refused {operation}; retry shortly.") from exc


def _api_key_named(name: str) -> str | None:
    position = None
    while True:
        page = _call("get_api_keys", nameQuery=name, limit=500, **({"position": position} if position else {}))
        found = next((k["id"] for k in page.get("items", []) if k.get("name") == name), None)
        position = page.get("position")
        if found or not position:
            return str(found) if found else None


def _plan_named(name: str) -> str | None:
    position = None
    while True:
        page = _call("get_usage_plans", limit=500, **({"position": position} if position else {}))
        found = next((p["id"] for p in page.get("items", []) if p.get("name") == name), None)
        position = page.get("position")
        if found or not position:
            return str(found) if found else None


def sync(key_id: str, limits: KeyLimits, record: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """Make sure an active key's API Gateway key exists and is in the plan its limits call
    for, whatever state an earlier run (or none) left it in. Returns the fields to store on
    the key record and whether anything at API Gateway had to change."""
    changed = False
    gateway_key_id = record.get("gateway_key_id")
    if gateway_key_id and _look("get_api_key", apiKey=gateway_key_id) is None:
        gateway_key_id = None  # gone at API Gateway (deleted by hand, another stack)
    name = usage_identifier(key_id)
    gateway_key_id = gateway_key_id or _api_key_named(name)
    if not gateway_key_id:
        gateway_key_id = str(_call("create_api_key", name=name, value=name, enabled=True,
                                   description=f"API key {key_id} of the session service")["id"])
        changed = True
    default_id = _default_id()
    target = default_id
    if limits.overridden():
        own = record.get("usage_plan_id")
        own = own if own and own != default_id and _look("get_usage_plan", usagePlanId=own) else None
        own = own or _plan_named(f"{default_plan()['name']}-{key_id}")
        target = _own_plan(key_id, limits, own)  # updated if it exists, made otherwise
        changed = changed or own is None
    if _look("get_usage_plan_key", usagePlanId=target, keyId=gateway_key_id) is None:
        _call("create_usage_plan_key", usagePlanId=target, keyId=gateway_key_id, keyType="API_KEY")
        changed = True
    previous = record.get("usage_plan_id")
    if previous and previous != target and _look("get_usage_plan_key", usagePlanId=previous,
                                                 keyId=gateway_key_id) is not None:
        _call("delete_usage_plan_key", usagePlanId=previous, keyId=gateway_key_id)
        changed = True
    return {"gateway_key_id": gateway_key_id, "usage_plan_id": target}, changed
