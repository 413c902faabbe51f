"""API key records: stored by a prefix of the key's hash, never the key itself.

    APIKEY#<key_id> / #table.META    the record (hash, scopes, user binding, revoked_at)
                               (+ GSI1 APIKEYS / <key_id>: the list)
"""

from __future__ import annotations

from typing import Any

from chalicelib.db import table


def key(key_id: str) -> dict[str, str]:
    return {"PK": f"APIKEY#{key_id}", "SK": table.META}


def put_new(record: dict[str, Any]) -> bool:
    """Store a new key record; False if one with its key_id exists."""
    try:
        table.put_item({**key(record["key_id"]), "type": "apikey", **record,
                  "GSI1PK": "APIKEYS", "GSI1SK": record["key_id"]},
                 condition="attribute_not_exists(PK)")
    except table.ConditionFailed:
        return False
    return True


def get(key_id: str, consistent: bool = True) -> dict[str, Any] | None:
    return table.get_item(key(key_id), consistent=consistent)


def list_page(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """GSI1 projects keys only: one Query, then one BatchGetItem brings the records."""
    entries, next_cursor = table.query_page(
        key_condition="GSI1PK = :pk", vals=table.values(pk="APIKEYS"), index="GSI1",
        limit=limit, cursor=cursor, cursor_scope="APIKEYS")
    return table.full_items(entries), next_cursor


def revoke(key_id: str, now: str) -> bool:
    """Set revoked_at once (kept for the record); False for an unknown key."""
    try:
        table.update_item(key(key_id), "SET revoked_at = if_not_exists(revoked_at, :now)",
                    condition="attribute_exists(PK)", vals=table.values(now=now))
    except table.ConditionFailed:
        return False
    return True


def set_limits(key_id: str, limits: dict[str, Any], gateway: dict[str, str]) -> bool:
    """Store a key's own limits ({}: none, the default plan's) and its API Gateway key and
    plan; False for an unknown key."""
    fields = {**gateway, **({"limits": limits} if limits else {})}
    names = {f"#{k}": k for k in fields}
    expression = ("SET " + ", ".join(f"#{k} = :{k}" for k in fields)) if fields else ""
    if not limits:
        expression += " REMOVE #limits"
        names["#limits"] = "limits"
    try:
        table.update_item(key(key_id), expression.strip(), condition="attribute_exists(PK)",
                          names=names, vals=table.values(**fields) if fields else None)
    except table.ConditionFailed:
        return False
    return True


def set_gateway(key_id: str, gateway: dict[str, str]) -> bool:
    """Store an active key's API Gateway key and plan (the upgrade path); False for an unknown
    or revoked key (a key revoked meanwhile keeps no API Gateway fields)."""
    try:
        table.update_item(key(key_id), "SET #gateway_key_id = :gateway_key_id, #usage_plan_id = :usage_plan_id",
                          condition="attribute_exists(PK) AND attribute_not_exists(revoked_at)",
                          names={"#gateway_key_id": "gateway_key_id", "#usage_plan_id": "usage_plan_id"},
                          vals=table.values(**gateway))
    except table.ConditionFailed:
        return False
    return True
