"""The table's plumbing: the client, (de)serialisation, the generic operations, cursors, and
the translation of `ClientError`s into domain errors.

It knows no entity: the key layout and every expression live in the entity modules next to
it (sessions, events, manuals, messages, keys, inbox, stats; the access-pattern table is in
chalicelib/db/__init__.py). Services call those modules' named operations.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from chalicelib.config import get_settings
from chalicelib.domain.errors import ConcurrentUpdate, InvalidCursor, ServiceUnavailable

META = "#META"
_client: Any = None
_TRANSIENT = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
}


def get_client() -> Any:
    """The DynamoDB client, built on first use and reused by every request of this process."""
    global _client
    if _client is None:
        import boto3  # imported here: boto3 dominates cold-start time
        from botocore.config import Config

        _client = boto3.client("dynamodb", config=Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=2, read_timeout=5, tcp_keepalive=True,
        ))
    return _client


def reset_client() -> None:
    """Forget the cached client (tests start a fresh moto per test)."""
    global _client
    _client = None


def table_name() -> str:
    return get_settings().table_name


def ident(key: dict[str, str]) -> tuple[str, str]:
    """The (PK, SK) pair under which batch_get returns an item."""
    return key["PK"], key["SK"]


# ---- (de)serialisation: our items use strings, ints, floats, bools, None, lists and maps ----


def to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attr(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: to_attr(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def from_attr(attr: dict[str, Any]) -> Any:
    (kind, value), = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        return float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "NS":
        return sorted(int(v) for v in value)
    if kind == "SS":
        return sorted(value)
    raise TypeError(f"unexpected attribute type {kind}")


# DynamoDB refuses an item over 400 KB, measured in bytes: attribute names and string values
# as UTF-8, numbers up to 21 bytes, 1 byte for a boolean or null, 3 bytes per list or map
# plus 1 byte per element. `item_size` follows those rules, rounding up.
MAX_ITEM_BYTES = 400 * 1024


def item_size(values: dict[str, Any]) -> int:
    """An upper bound of the stored size of `values` as one item, in bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in values.items())


def _value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 21
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return 3 + sum(1 + _value_size(v) for v in value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in value.items())
    raise TypeError(f"cannot size {type(value).__name__}")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in values.items()}


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else {k: from_attr(v) for k, v in item.items()}


def values(**named: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(active="active") -> {":active"...}."""
    return {f":{k}": to_attr(v) for k, v in named.items()}


# ---- errors --------------------------------------------------------------------------------


_REFUSED = "The change conflicted with a concurrent change to the same data; please retry."


class TransactionCanceled(ConcurrentUpdate):
    """A transaction was refused. Items are known by the names they were added under
    (`Transaction.put(name, ...)`): `failed(name)` says whether that item's condition failed
    and `item(name)` is the item as it stood then (if any), so reordering a transaction's
    items cannot change what a refusal means. Services catch it where they can say more; one
    they do not catch answers 409 `concurrent_update`, never a 500: a refused condition
    means the data changed under the request."""

    def __init__(self, reasons: dict[str, str | None], items: dict[str, dict[str, Any] | None]) -> None:
        super().__init__(_REFUSED)
        self.reasons = reasons
        self.items = items

    def failed(self, name: str) -> bool:
        if name not in self.reasons:
            raise KeyError(f"no transaction item named {name!r}")
        return self.reasons[name] == "ConditionalCheckFailed"

    def item(self, name: str) -> dict[str, Any] | None:
        return self.items.get(name)

    @property
    def conflict_only(self) -> bool:
        """True when the refusal is a race with another transaction, worth retrying."""
        codes = self.reasons.values()
        return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


class ConditionFailed(ConcurrentUpdate):
    """A single conditional write was refused; `item` is the item as it stood (if asked).
    Uncaught, it is a 409 like TransactionCanceled."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__(_REFUSED)
        self.item = item


class PathMissing(Exception):
    """An update named a nested attribute (`deliveries.#ep`) of a map the item lacks (an item
    written before that map existed): the entity module adds the map and tries again."""


def string_set(*members: str) -> dict[str, Any]:
    """A string-set value (for ADD / DELETE of set members), which `to_attr` never builds."""
    return {"SS": list(members)}


class _Canceled(Exception):
    """A refused TransactWriteItems, by position; Transaction.commit names the items."""


def _call(operation: str, **kwargs: Any) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        response: dict[str, Any] = getattr(get_client(), operation)(**kwargs)
        return response
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or []
            raise _Canceled(
                [None if r.get("Code") in (None, "None") else r["Code"] for r in reasons],
                [from_item(r.get("Item")) for r in reasons],
            ) from exc
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(from_item(exc.response.get("Item"))) from exc
        if code == "ValidationException" and "document path" in str(error.get("Message", "")):
            raise PathMissing(str(error.get("Message", ""))) from exc
        if code in _TRANSIENT:
            raise ServiceUnavailable(
                "The data store is busy; retry shortly.", retry_after=1) from exc
        raise


# ---- operations ----------------------------------------------------------------------------


def get_item(key: dict[str, str], consistent: bool = True) -> dict[str, Any] | None:
    response = _call("get_item", TableName=table_name(), Key=to_item(key),
                     ConsistentRead=consistent)
    return from_item(response.get("Item"))


def ping() -> None:
    """One cheap read that proves the table answers (readiness)."""
    get_item({"PK": "HEALTH", "SK": META}, consistent=False)


def batch_get(keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Fetch up to 100 items in one round trip (more only if DynamoDB leaves some unprocessed).
    Returns the items found, by (PK, SK)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    unique = list({(k["PK"], k["SK"]): k for k in keys}.values())
    for start in range(0, len(unique), 100):
        request: dict[str, Any] = {table_name(): {
            "Keys": [to_item(k) for k in unique[start:start + 100]], "ConsistentRead": True}}
        while request:
            response = _call("batch_get_item", RequestItems=request)
            for raw in response.get("Responses", {}).get(table_name(), []):
                item = from_item(raw)
                assert item is not None
                found[(item["PK"], item["SK"])] = item
            request = response.get("UnprocessedKeys") or {}
    return found


def full_items(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table items behind a page of index entries (indexes project only a few
    attributes), in the page's order, in one BatchGetItem; entries deleted since are skipped."""
    found = batch_get([{"PK": e["PK"], "SK": e["SK"]} for e in entries])
    return [found[k] for k in ((e["PK"], e["SK"]) for e in entries) if k in found]


def put_item(item: dict[str, Any], condition: str | None = None,
             names: dict[str, str] | None = None, vals: dict[str, Any] | None = None) -> None:
    kwargs: dict[str, Any] = {"TableName": table_name(), "Item": to_item(item)}
    if condition:
        kwargs.update(ConditionExpression=condition,
                      ReturnValuesOnConditionCheckFailure="ALL_OLD")
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if vals:
        kwargs["ExpressionAttributeValues"] = vals
    _call("put_item", **kwargs)


def update_item(key: dict[str, str], expression: str, *, condition: str | None = None,
                names: dict[str, str] | None = None, vals: dict[str, Any] | None = None,
                returning: bool = False) -> dict[str, Any] | None:
    """One UpdateItem; with `returning`, the item as it stands after the update."""
    kwargs: dict[str, Any] = {"TableName": table_name(), "Key": to_item(key),
                              "UpdateExpression": expression}
    if returning:
        kwargs["ReturnValues"] = "ALL_NEW"
    if condition:
        kwargs.update(ConditionExpression=condition, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if vals:
        kwargs["ExpressionAttributeValues"] = vals
    return from_item(_call("update_item", **kwargs).get("Attributes"))


def delete_item(key: dict[str, str], condition: str, vals: dict[str, Any] | None = None) -> None:
    """A conditional delete; a refusal raises ConditionFailed with the item as it stood."""
    kwargs: dict[str, Any] = {"TableName": table_name(), "Key": to_item(key),
                              "ConditionExpression": condition,
                              "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if vals:
        kwargs["ExpressionAttributeValues"] = vals
    _call("delete_item", **kwargs)


class Transaction:
    """One TransactWriteItems whose items have names (unique within it): a refusal is read
    by name (TransactionCanceled.failed("session")), never by position. Entity modules add
    their items; a service commits."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._names: list[str] = []

    def __len__(self) -> int:
        return len(self._items)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def _add(self, name: str, kind: str, body: dict[str, Any], condition: str | None,
             names: dict[str, str] | None, vals: dict[str, Any] | None) -> None:
        if name in self._names:
            raise ValueError(f"transaction item {name!r} added twice")
        if condition:
            body["ConditionExpression"] = condition
        if names:
            body["ExpressionAttributeNames"] = names
        if vals:
            body["ExpressionAttributeValues"] = vals
        self._names.append(name)
        self._items.append({kind: body})

    def put(self, name: str, item: dict[str, Any], *, condition: str | None = None,
            names: dict[str, str] | None = None, vals: dict[str, Any] | None = None) -> None:
        self._add(name, "Put", {"Item": to_item(item)}, condition, names, vals)

    def update(self, name: str, key: dict[str, str], expression: str, *,
               condition: str | None = None, names: dict[str, str] | None = None,
               vals: dict[str, Any] | None = None) -> None:
        self._add(name, "Update", {"Key": to_item(key), "UpdateExpression": expression},
                  condition, names, vals)

    def delete(self, name: str, key: dict[str, str], *, condition: str | None = None,
               vals: dict[str, Any] | None = None) -> None:
        self._add(name, "Delete", {"Key": to_item(key)}, condition, None, vals)

    def commit(self) -> None:
        """Write every item or none; failed conditions return the item as it stood."""
        for entry in self._items:
            for body in entry.values():
                body["TableName"] = table_name()
                if "ConditionExpression" in body:
                    body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            _call("transact_write_items", TransactItems=self._items)
        except _Canceled as exc:
            reasons, items = exc.args
            raise TransactionCanceled(
                dict(zip(self._names, reasons, strict=False)),
                dict(zip(self._names, items, strict=False)),
            ) from exc.__cause__


def query_page(*, key_condition: str, vals: dict[str, Any], index: str | None = None,
               limit: int, cursor: str | None, forward: bool = True,
               filter_expression: str | None = None, names: dict[str, str] | None = None,
               cursor_scope: str) -> tuple[list[dict[str, Any]], str | None]:
    """One Query round trip: up to `limit` items and the cursor for the next page.

    Cursors are opaque to clients; `cursor_scope` (the partition queried) is embedded so a
    cursor from another listing is refused rather than silently misread."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(), "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": vals, "Limit": limit, "ScanIndexForward": forward,
    }
    if index:
        kwargs["IndexName"] = index
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if cursor:
        kwargs["ExclusiveStartKey"] = decode_cursor(cursor, cursor_scope)
    response = _call("query", **kwargs)
    items = [from_item(raw) for raw in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return [i for i in items if i is not None], encode_cursor(last, cursor_scope) if last else None


def scan_page(*, filter_expression: str, vals: dict[str, Any], names: dict[str, str] | None = None,
              projection: str | None = None, limit: int,
              start: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    """One Scan round trip over the whole table (operators' one-off migrations only, never a
    request path): the items among the next `limit` evaluated that pass the filter, the key
    to start the next page from (None: the end of the table) and how many were evaluated.
    Eventually consistent."""
    kwargs: dict[str, Any] = {"TableName": table_name(), "FilterExpression": filter_expression,
                              "ExpressionAttributeValues": vals, "Limit": limit}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if projection:
        kwargs["ProjectionExpression"] = projection
    if start:
        kwargs["ExclusiveStartKey"] = start
    response = _call("scan", **kwargs)
    items = [from_item(raw) for raw in response.get("Items", [])]
    return [i for i in items if i is not None], response.get("LastEvaluatedKey"), int(response.get("ScannedCount", 0))


def query_all(*, key_condition: str, vals: dict[str, Any], projection: str | None = None,
              consistent: bool = False) -> Iterator[dict[str, Any]]:
    """Every item of a key range, page after page (bulk operations only). `consistent`: see
    every write that succeeded before the query (an eventually consistent read may not)."""
    kwargs: dict[str, Any] = {"TableName": table_name(), "KeyConditionExpression": key_condition,
                              "ExpressionAttributeValues": vals, "ConsistentRead": consistent}
    if projection:
        kwargs["ProjectionExpression"] = projection
    while True:
        response = _call("query", **kwargs)
        for raw in response.get("Items", []):
            item = from_item(raw)
            assert item is not None
            yield item
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def batch_write(puts: Iterable[dict[str, Any]] = (),
                deletes: Iterable[dict[str, str]] = ()) -> None:
    """Unconditional bulk writes, 25 per round trip, retrying unprocessed items."""
    requests = [{"PutRequest": {"Item": to_item(p)}} for p in puts]
    requests += [{"DeleteRequest": {"Key": to_item(k)}} for k in deletes]
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table_name(): requests[start:start + 25]}
        while pending:
            response = _call("batch_write_item", RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}


# ---- cursors -------------------------------------------------------------------------------


def encode_cursor(last_key: dict[str, Any], scope: str) -> str:
    payload = json.dumps({"s": scope, "k": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = payload["k"]
        valid = (payload["s"] == scope and isinstance(key, dict) and key and all(
            isinstance(v, dict) and list(v) == ["S"] and isinstance(v["S"], str)
            for v in key.values()))
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise InvalidCursor("The cursor is malformed or belongs to another listing.")
    return dict(key)
