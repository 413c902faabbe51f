"""Manual items: metadata and steps share the manual's partition.

    MANUAL#<id> / #table.META                 metadata, with the active-session counter
                                        (+ GSI1 MANUALS / <manual_id>: the list)
    MANUAL#<id> / STEP#<rev>#<nnnn>     one step of revision <rev> of the manual's body

Steps are keyed by a content revision, so a concurrent create with another body never
overwrites them; the metadata is written last, conditionally, and makes the manual visible.
"""

from __future__ import annotations

from typing import Any

from chalicelib.db import table

_absent = "attribute_not_exists(PK)"
_exists = "attribute_exists(PK)"
_unused = ("attribute_exists(PK) AND (attribute_not_exists(active_sessions)"
           " OR active_sessions <= :zero)")


def partition(manual_id: str) -> str:
    return f"MANUAL#{manual_id}"


def key(manual_id: str) -> dict[str, str]:
    return {"PK": partition(manual_id), "SK": table.META}


def step_key(manual_id: str, rev: str, step_number: int) -> dict[str, str]:
    return {"PK": partition(manual_id), "SK": f"STEP#{rev}#{step_number:04d}"}


def step_prefix(rev: str) -> str:
    return f"STEP#{rev}#"


def get_meta(manual_id: str) -> dict[str, Any] | None:
    return table.get_item(key(manual_id))


def get_step(manual_id: str, rev: str, number: int) -> dict[str, Any] | None:
    return table.get_item(step_key(manual_id, rev, number), consistent=False)


def put_steps(manual_id: str, rev: str, steps: list[dict[str, Any]]) -> None:
    table.batch_write(puts=[{**step_key(manual_id, rev, s["step_number"]), "type": "step", **s}
                      for s in steps])


def put_meta_once(meta: dict[str, Any]) -> dict[str, Any] | None:
    """Make the manual visible; None if created now, else the metadata that was there."""
    try:
        table.put_item({**key(meta["manual_id"]), "type": "manual", **meta, "GSI1PK": "MANUALS",
                  "GSI1SK": meta["manual_id"]}, condition=_absent)
    except table.ConditionFailed as exc:
        return exc.item or {}
    return None


def whole(manual_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The metadata and every step item: one Query over the partition (paged if > 1 MB)."""
    meta: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = []
    for found in table.query_all(key_condition="PK = :pk", vals=table.values(pk=partition(manual_id))):
        if found["SK"] == table.META:
            meta = found
        else:
            steps.append(found)
    return meta, steps


def list_page(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    return table.query_page(index="GSI1", key_condition="GSI1PK = :pk", vals=table.values(pk="MANUALS"),
                      limit=limit, cursor=cursor, cursor_scope="manuals")


def delete_unused(manual_id: str) -> dict[str, Any] | None:
    """Delete the metadata unless an active session uses the manual (atomic with the in-use
    check: a session start conditions on the metadata). None if deleted, else the metadata
    as it stood ({} when there was none)."""
    try:
        table.delete_item(key(manual_id), _unused, table.values(zero=0))
    except table.ConditionFailed as exc:
        return exc.item or {}
    return None


def delete_steps(manual_id: str) -> None:
    found = table.query_all(key_condition="PK = :pk", vals=table.values(pk=partition(manual_id)),
                      projection="PK, SK")
    table.batch_write(deletes=list(found))


def add_active_sessions(tx: table.Transaction, manual_id: str, delta: int) -> None:
    """The manual's active-session counter (item "manual"); a session may only start on a
    manual that exists (a delete races with this), so +1 requires the metadata."""
    tx.update("manual", key(manual_id), "ADD active_sessions :delta",
              condition=_exists if delta > 0 else None, vals=table.values(delta=delta))
