"""Webhook inboxes and their captures (a second product on the same table).

    INBOX#<id> / #table.META                 the inbox (response to give, token hash, signing secret)
    INBOX#<id> / REQ#<request_id>      one captured request (TTL expires_at)
    INBOX#<id> / BODY#<request_id>#<n> a chunk of a large capture's body (TTL expires_at)
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.db import table

# capture sizing is the table's rule
MAX_ITEM_BYTES = table.MAX_ITEM_BYTES
item_size = table.item_size


def partition(inbox_id: str) -> str:
    return f"INBOX#{inbox_id}"


def key(inbox_id: str) -> dict[str, str]:
    return {"PK": partition(inbox_id), "SK": table.META}


def capture_key(inbox_id: str, request_id: str) -> dict[str, str]:
    return {"PK": partition(inbox_id), "SK": f"REQ#{request_id}"}


def put_new(record: dict[str, Any]) -> bool:
    """Store a new inbox; False if its id is taken."""
    try:
        table.put_item({**key(record["inbox_id"]), "type": "inbox", **record},
                 condition="attribute_not_exists(PK)")
    except table.ConditionFailed:
        return False
    return True


def get(inbox_id: str, consistent: bool = True) -> dict[str, Any] | None:
    return table.get_item(key(inbox_id), consistent=consistent)


def set_fields(inbox_id: str, changes: dict[str, Any]) -> None:
    names = {f"#{k}": k for k in changes}
    table.update_item(key(inbox_id), "SET " + ", ".join(f"#{k} = :{k}" for k in changes),
                condition="attribute_exists(PK)", names=names, vals=table.values(**changes))


def delete(inbox_id: str) -> None:
    """The captures first, the inbox last (a crash leaves an inbox that can be deleted again)."""
    found = list(table.query_all(key_condition="PK = :pk", vals=table.values(pk=partition(inbox_id)),
                           projection="PK, SK"))
    table.batch_write(deletes=[k for k in found if k["SK"] != table.META])
    table.batch_write(deletes=[key(inbox_id)])


def put_capture(record: dict[str, Any], chunks: list[str]) -> None:
    """One PutItem for a capture whose body fits in it (the usual case: half a transaction's
    cost); a capture with body chunks appears together with them or not at all."""
    item = {**capture_key(record["inbox_id"], record["request_id"]), "type": "capture", **record}
    if not chunks:
        table.put_item(item)
        return
    tx = table.Transaction()
    tx.put("capture", item)
    for n, chunk in enumerate(chunks):
        tx.put(f"chunk:{n}", {"PK": partition(record["inbox_id"]),
                              "SK": f"BODY#{record['request_id']}#{n:03d}", "type": "capture_chunk",
                              "data": chunk, "expires_at": record["expires_at"]})
    tx.commit()


def captures_page(inbox_id: str, method: str | None, limit: int,
                  cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, expired ones filtered out (one Query per page)."""
    condition = "expires_at > :now" + (" AND #method = :method" if method else "")
    vals: dict[str, Any] = {"pk": partition(inbox_id), "prefix": "REQ#", "now": int(time.time())}
    if method:
        vals["method"] = method
    return table.query_page(
        key_condition="PK = :pk AND begins_with(SK, :prefix)", vals=table.values(**vals),
        filter_expression=condition, names={"#method": "method"} if method else None,
        limit=limit, cursor=cursor, forward=False, cursor_scope=f"inbox:{inbox_id}:{method}")


def get_capture(inbox_id: str, request_id: str) -> dict[str, Any] | None:
    return table.get_item(capture_key(inbox_id, request_id))


def capture_body(inbox_id: str, request_id: str) -> str:
    """A large capture's body, from its chunks in order."""
    chunks = table.query_all(key_condition="PK = :pk AND begins_with(SK, :prefix)",
                       vals=table.values(pk=partition(inbox_id), prefix=f"BODY#{request_id}#"))
    return "".join(c["data"] for c in chunks)
