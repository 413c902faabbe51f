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

import threading
from typing import Any

_lock = threading.RLock()
_patched = False


def fast_transactions() -> None:
    """Replace moto's TransactWriteItems with check-all-then-write (see the module doc)."""
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
    """A moto server on loopback that handles one AWS request at a time."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
        )
        from werkzeug.serving import make_server

        fast_transactions()
        dispatcher = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            with _lock:
                return list(dispatcher(environ, start_response))

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
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
