"""Webhook inboxes and their captures (a second product on the same table).

    INBOX#<id> / #table.META                 the inbox (response to give, token hash, signing secret)
    INBOX#<id> / REQ#<request_id>      one captured request (TTL expires_at)
    INBOX#<id> / BODY#<request_id>#<n> a chunk of a large capture's body (TTL expires_at)
    INBOX#<id> / DEDUP#<key hash>      the captures of one webhook-id / Idempotency-Key: per
                                       body hash, the request that stored it and how often it
                                       arrived (TTL: the first capture's expires_at)
    INBOX#<id> / FWD#<request_id>#<d>  one capture's forwarding to destination d: status and
                                       attempt log (the delivery function's only write)
    INBOX#<id> / METRIC#<hour>         the inbox's counters of one UTC hour (TTL 32 days)

A capture is written once and never updated (an update is billed on the whole item, up to
400 KB): what changes later (duplicates, forward attempts) lives in the small items above.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.db import table

# capture sizing is the table's rule
MAX_ITEM_BYTES = table.MAX_ITEM_BYTES
item_size = table.item_size
ident = table.ident


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


def plain_secrets_page(limit: int, start: dict[str, Any] | None
                       ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    """Of the next `limit` items of the table (one Scan page: an operator's one-off migration,
    never a request), the inboxes whose signing secret is a plain string (stored by a version
    before secrets were encrypted), where the next page starts, how many items it evaluated."""
    return table.scan_page(filter_expression="#type = :inbox AND attribute_type(signing_secret, :string)",
                           names={"#type": "type"}, vals=table.values(inbox="inbox", string="S"),
                           projection="PK, SK, inbox_id, signing_secret", limit=limit, start=start)


def replace_secret(inbox_id: str, plain: str, sealed: dict[str, str]) -> bool:
    """The inbox's plain secret replaced by its encrypted form; False when the inbox is gone
    or its secret is no longer that plain one."""
    try:
        table.update_item(key(inbox_id), "SET signing_secret = :sealed",
                          condition="attribute_exists(PK) AND signing_secret = :plain",
                          vals=table.values(sealed=sealed, plain=plain))
    except table.ConditionFailed:
        return False
    return True


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


# ---- deduplication -------------------------------------------------------------------------

MAX_BODIES_PER_KEY = 20  # distinct bodies recorded under one key; later ones are conflicts only
_claimable = "attribute_not_exists(PK) OR contains(bodies, :h) OR size(bodies) < :cap"
_CLAIM = ("SET #v = if_not_exists(#v, :rid), first_request_id = if_not_exists(first_request_id, :rid),"
          " expires_at = if_not_exists(expires_at, :exp), #type = :type ADD bodies :bodies, #n :one")


def dedup_key(inbox_id: str, key_hash: str) -> dict[str, str]:
    return {"PK": partition(inbox_id), "SK": f"DEDUP#{key_hash}"}


def _variant(body_hash: str) -> tuple[str, str]:
    """The marker's attribute names for one body: its request id, its arrivals."""
    return f"v_{body_hash[:32]}", f"n_{body_hash[:32]}"


def claim(inbox_id: str, key_hash: str, body_hash: str, request_id: str, expires_at: int,
          now: float) -> tuple[str, str | None]:
    """Record one arrival of (key, body) in ONE UpdateItem (no read first). Returns
    ("new", None): store it; ("duplicate", request_id): the same body was stored under this
    key (counted, not stored again); ("conflict", first_request_id): the key was stored with
    another body (store it, flagged). A marker that outlived its first capture is replaced."""
    v, n = _variant(body_hash)
    vals = {**table.values(rid=request_id, exp=expires_at, type="capture_key", one=1, h=body_hash,
                           cap=MAX_BODIES_PER_KEY), ":bodies": {"SS": [body_hash]}}
    try:
        marker = table.update_item(dedup_key(inbox_id, key_hash), _CLAIM, condition=_claimable,
                                   names={"#v": v, "#n": n, "#type": "type"}, vals=vals, returning=True)
    except table.ConditionFailed as refused:  # MAX_BODIES_PER_KEY reached: a conflict, not recorded
        return "conflict", (refused.item or {}).get("first_request_id")
    assert marker is not None
    if marker["expires_at"] <= now:  # DynamoDB's TTL deletes late: start the key afresh
        stale = {f"#r{i}": name for i, name in enumerate(
            a for a in marker if a[:2] in ("v_", "n_") and a not in (v, n))}
        table.update_item(
            dedup_key(inbox_id, key_hash),
            "SET bodies = :bodies, #v = :rid, #n = :one, first_request_id = :rid, expires_at = :exp"
            + (" REMOVE " + ", ".join(stale) if stale else ""),
            names={"#v": v, "#n": n, **stale}, vals={
                **table.values(rid=request_id, one=1, exp=expires_at), ":bodies": {"SS": [body_hash]}})
        return "new", None
    if marker[n] > 1:
        return "duplicate", marker[v]
    others = [marker[f"v_{name[2:]}"] for name, seen in marker.items()
              if name.startswith("n_") and name != n and seen >= 1 and f"v_{name[2:]}" in marker]
    if not others:
        return "new", None
    first = marker.get("first_request_id")
    return "conflict", first if first in others else others[0]


def release(inbox_id: str, key_hash: str, body_hash: str, request_id: str) -> None:
    """Undo a "new" claim whose capture could not be stored, so the sender's retry is
    stored rather than counted as a duplicate of nothing."""
    v, n = _variant(body_hash)
    try:
        table.update_item(dedup_key(inbox_id, key_hash), "REMOVE #v ADD #n :minus",
                          condition="#v = :rid", names={"#v": v, "#n": n},
                          vals=table.values(rid=request_id, minus=-1))
    except table.ConditionFailed:
        pass  # another arrival owns it now


def duplicates_of(markers: dict[tuple[str, str], dict[str, Any]], inbox_id: str, key_hash: str,
                  body_hash: str, request_id: str) -> int:
    """How often a stored capture arrived again (0 when it is not the one its marker counts)."""
    marker = markers.get(table.ident(dedup_key(inbox_id, key_hash)))
    v, n = _variant(body_hash)
    if not marker or marker.get(v) != request_id:
        return 0
    return max(0, int(marker.get(n, 1)) - 1)


# ---- forwarding ----------------------------------------------------------------------------

_FORWARD = ("SET #status = :status, delivery_round = :round, attempt_count = :n, #url = :url,"
            " last_attempt_at = :now, expires_at = :exp, #type = :type,"
            " attempts = list_append(if_not_exists(attempts, :empty), :entry)")


def forward_key(inbox_id: str, request_id: str, destination_id: str) -> dict[str, str]:
    return {"PK": partition(inbox_id), "SK": f"FWD#{request_id}#{destination_id}"}


def record_forward(inbox_id: str, request_id: str, destination_id: str, *, url: str, status: str,
                   round_id: str, attempt: int, entry: dict[str, Any], now: str, expires_at: int) -> None:
    """Append one attempt to a (capture, destination)'s log with its new status (one
    UpdateItem on a small item; the capture itself is never rewritten)."""
    table.update_item(forward_key(inbox_id, request_id, destination_id), _FORWARD,
                      names={"#status": "status", "#url": "url", "#type": "type"},
                      vals=table.values(status=status, round=round_id, n=attempt, url=url, now=now,
                                        exp=expires_at, type="capture_forward", empty=[], entry=[entry]))


def items(keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Captures, markers and forward logs by key, in one BatchGetItem (per 100 keys)."""
    return table.batch_get(keys) if keys else {}


# ---- metrics -------------------------------------------------------------------------------

METRIC_TTL_SECONDS = 32 * 86400


def metric_key(inbox_id: str, hour: str) -> dict[str, str]:
    return {"PK": partition(inbox_id), "SK": f"METRIC#{hour}"}


def count(inbox_id: str, hour: str, counters: dict[str, int], now: float) -> None:
    """Add to the hour's counters (one UpdateItem; the names are the caller's plain words)."""
    names = {f"#c{n}": name for n, name in enumerate(counters)}
    vals = {f"c{n}": value for n, value in enumerate(counters.values())}
    adds = ", ".join(f"#c{n} :c{n}" for n in range(len(counters)))
    table.update_item(metric_key(inbox_id, hour), f"SET #hour = :hour, expires_at = :exp, #type = :type ADD {adds}",
                      names={**names, "#hour": "hour", "#type": "type"},
                      vals=table.values(hour=hour, exp=int(now) + METRIC_TTL_SECONDS, type="inbox_metrics", **vals))


def metrics(inbox_id: str, first_hour: str, last_hour: str) -> list[dict[str, Any]]:
    """The hours' counter items, oldest first (one Query: at most 168 small items)."""
    return list(table.query_all(key_condition="PK = :pk AND SK BETWEEN :first AND :last",
                                vals=table.values(pk=partition(inbox_id), first=f"METRIC#{first_hour}",
                                                  last=f"METRIC#{last_hour}")))
