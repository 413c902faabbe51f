"""moto, made atomic per request and fast for transactions.

moto's backends are plain Python objects without locks: two threads running a
TransactWriteItems at once can interleave its check and its write, which real DynamoDB never
does. Our concurrency guarantees rest on DynamoDB's per-request atomicity, so locally we give
moto the same: one request at a time, both in-process (`mock_aws`) and for the server.

moto 5.2 also deep-copies the whole table (items and stream records) for every item of every
TransactWriteItems, to roll back on failure: the cost of a transaction grows with the table
(hundreds of ms at a few thousand items). `fast_transactions` checks every condition first and
writes only when all hold, which is what DynamoDB does, at a cost independent of the table.
"""

from __future__ import annotations

import heapq
import io
import json
import socket
import threading
import time
from typing import Any

_lock = threading.RLock()
_patched = False
# Requests that change nothing an event source waits for: the runner's own polls and reads.
_READS = {"GetRecords", "GetShardIterator", "DescribeStream", "ListStreams", "ReceiveMessage",
          "GetQueueAttributes", "GetQueueUrl", "GetItem", "BatchGetItem", "Query", "Scan",
          "DescribeTable", "DescribeTimeToLive", "ListQueues"}


class Activity:
    """What the local event sources wait for instead of polling in a loop: a counter bumped
    by every write the moto server handles, and again when a message hidden by
    ChangeMessageVisibility becomes visible (nothing requests anything at that moment).

    A waiter reads `version` before it polls and, finding nothing, waits until the version
    moves or its timeout runs out: a write between its poll and its wait is never missed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._due: list[float] = []
        self._alarm: threading.Thread | None = None

    @property
    def version(self) -> int:
        return self._version

    def changed(self) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def due_in(self, seconds: float) -> None:
        """Bump the version `seconds` from now (one alarm thread for all due times)."""
        if seconds <= 0:
            self.changed()
            return
        with self._cond:
            heapq.heappush(self._due, time.monotonic() + seconds)
            if self._alarm is None:
                self._alarm = threading.Thread(target=self._ring, daemon=True, name="moto-activity")
                self._alarm.start()
            self._cond.notify_all()

    def _ring(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._due and self._due[0] <= now:
                    while self._due and self._due[0] <= now:
                        heapq.heappop(self._due)
                    self._version += 1
                    self._cond.notify_all()
                self._cond.wait(self._due[0] - now if self._due else None)

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen, timeout)

    def observe(self, environ: dict[str, Any]) -> None:
        """Look at one AWS request (a WSGI environ) before moto handles it."""
        action = (environ.get("HTTP_X_AMZ_TARGET") or "").rsplit(".", 1)[-1]
        if action in _READS:
            return
        if action in ("ChangeMessageVisibility", "ChangeMessageVisibilityBatch"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                request = json.loads(body or b"{}")
                entries = request.get("Entries") or [request]
                for delay in {int(e.get("VisibilityTimeout", 0)) for e in entries}:
                    self.due_in(delay + 0.05)  # just after SQS makes it visible
            except (ValueError, TypeError, AttributeError):
                pass
        self.changed()


def fast_json_responses() -> None:
    """Answer DynamoDB and DynamoDB Streams calls by dumping moto's result, which is already
    in the wire format, instead of walking the botocore model attribute by attribute: in
    moto 5.2 that walk is two thirds of a GetItem's time, and most of the local stack's CPU.

    The output is what the walk produces for these protocols: timestamps as epoch seconds,
    blobs as base64; members the model does not know are ignored by botocore's parser, and
    so are nulls. Anything else (an object, an error) takes moto's own path."""
    import datetime as dt
    from base64 import b64encode

    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_result
    if getattr(original, "fast", False):
        return

    def wire(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, (bytes, bytearray)):
            return b64encode(value).decode()
        raise TypeError(type(value).__name__)

    def serialize_result(self: Any, resp: Any, result: Any) -> Any:
        if isinstance(result, dict) and self.operation_model.service_model.service_name in (
                "dynamodb", "dynamodbstreams"):
            try:
                body = json.dumps(result, default=wire)
            except (TypeError, ValueError):
                return original(self, resp, result)
            resp["body"] = body
            resp["headers"]["Content-Type"] = self._get_protocol_specific_content_type()
            return resp
        return original(self, resp, result)

    serialize_result.fast = True  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_result = serialize_result  # type: ignore[method-assign]


def fast_transactions() -> None:
    """Replace moto's TransactWriteItems with check-all-then-write (see the module doc)."""
    fast_json_responses()
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed, MultipleTransactionsException, TooManyTransactionsException,
        TransactionCanceledException, TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen: set[tuple[str, str]] = set()
        planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            marker = (op["TableName"], str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"),
                    op.get("ExpressionAttributeValues")).expr(current):
                old = (current.to_json()["Attributes"] if current is not None and
                       op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None)
                errors.append(("ConditionalCheckFailed", str(ConditionalCheckFailed().message), old))
            else:
                errors.append((None, None, None))
            planned.append((op_type, op, key))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        for op_type, op, key in planned:  # every condition holds: write them all
            names, vals = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=vals)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key, expression_attribute_names=names,
                                 expression_attribute_values=vals)
            elif op_type == "Update":
                self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names,
                                 expression_attribute_values=vals)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def serialize_in_process_moto() -> None:
    """Make every request handled by `mock_aws` atomic with respect to the others."""
    global _patched
    if _patched:
        return
    fast_transactions()
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        with _lock:
            return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    _patched = True


class AtomicMotoServer:
    """A moto server on loopback that handles one AWS request at a time, keeps connections
    alive (HTTP/1.1: the runner and the app reuse theirs), and tells `activity` about writes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
        )
        from werkzeug.serving import make_server

        fast_transactions()
        dispatcher = DomainDispatcherApplication(create_backend_app)
        self.activity = Activity()
        activity = self.activity

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            activity.observe(environ)
            with _lock:
                return list(dispatcher(environ, start_response))

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
            protocol_version = "HTTP/1.1"
            # headers and body go out in separate writes: without this each answer waits
            # for the client's delayed ACK (about 40 ms per AWS call)
            disable_nagle_algorithm = True

            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="moto-server")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AtomicMotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
