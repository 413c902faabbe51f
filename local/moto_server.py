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
import json
import os
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
    """What a local event source waits for instead of polling in a loop: a counter bumped by
    every write to one service (the stream's consumers watch DynamoDB, the queue's consumers
    SQS), and for SQS again when a message hidden by ChangeMessageVisibility becomes visible
    (nothing requests anything at that moment).

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

    def watch(self, session: Any, service: str) -> None:
        """Learn of every write to `service` ("dynamodb", "sqs") made through clients created
        from `session` (a botocore session) from now on: the app's and the runner's, the only
        writers of the local stack, wherever moto runs."""
        def after(event_name: str, **_: Any) -> None:
            if event_name.rsplit(".", 1)[-1] not in _READS:
                self.changed()

        def hidden(params: dict[str, Any], **_: Any) -> None:
            entries = params.get("Entries") or [params]
            for delay in {int(e.get("VisibilityTimeout", 0)) for e in entries}:
                self.due_in(delay + 0.05)  # just after SQS makes them visible again

        session.register(f"after-call.{service}", after)
        if service != "sqs":
            return
        session.register("provide-client-params.sqs.ChangeMessageVisibility", hidden)
        session.register("provide-client-params.sqs.ChangeMessageVisibilityBatch", hidden)


PRIORITY_HEADER = "x-local-pipeline"  # set by the local stack on its event sources' calls


class PriorityLock:
    """One request at a time, the event sources' first. The local stack's API and its event
    sources share this one moto; under load, taking turns in arrival order let the API's
    requests starve the pipeline (a webhook costs it more calls than a request costs the
    API), so its backlog, and the lag, grew without bound. On AWS each part scales on its
    own; here the event sources go first and the API slows down instead (backpressure)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent = 0

    def acquire(self, urgent: bool) -> None:
        with self._cond:
            if urgent:
                self._urgent += 1
            while self._busy or (not urgent and self._urgent):
                self._cond.wait()
            if urgent:
                self._urgent -= 1
            self._busy = True

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


def mark_pipeline_calls(session: Any, is_pipeline: Any) -> None:
    """Tag the AWS calls made through clients of `session` (a botocore session) while
    `is_pipeline()` holds, for the moto server's PriorityLock."""
    def tag(request: Any, **_: Any) -> None:
        if is_pipeline():
            request.headers[PRIORITY_HEADER] = "1"

    session.register("before-send", tag)


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


def cheap_sqs_sends() -> None:
    """moto 5.2 reads a queue's whole attribute set on every send (to know whether it
    deduplicates by content) and for every message a receive hands out (its retention
    period); that set includes three message counts, each a walk over every message the queue
    holds: a send costs O(queue), a receive O(queue x batch), and a backlog slows the very
    calls that would drain it. While a send or receive runs (one request at a time: see the
    lock above) the counts are left out of the set; nothing those calls read needs them."""
    from moto.sqs.models import Queue, SQSBackend

    if getattr(SQSBackend.send_message, "cheap", False):
        return
    counts = {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
              "ApproximateNumberOfMessagesNotVisible"}
    light = [name for name in Queue.BASE_ATTRIBUTES if name not in counts]

    def without_counts(send: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            before = Queue.BASE_ATTRIBUTES  # a batch send calls send_message: restore, not reset
            Queue.BASE_ATTRIBUTES = light
            try:
                return send(*args, **kwargs)
            finally:
                Queue.BASE_ATTRIBUTES = before

        run.cheap = True  # type: ignore[attr-defined]
        return run

    SQSBackend.send_message = without_counts(SQSBackend.send_message)  # type: ignore[method-assign]
    SQSBackend.send_message_batch = without_counts(SQSBackend.send_message_batch)  # type: ignore[method-assign]
    SQSBackend.receive_message = without_counts(SQSBackend.receive_message)  # type: ignore[method-assign]

    # SQS hands out "as many messages with the same message group ID as possible" (its FIFO
    # delivery logic), so that other consumers take other groups; moto takes every group's
    # head in arrival order, so one consumer locks all groups and the rest wait. While a
    # receive runs, the queue lists the first free group's messages only (SQS "might" add
    # other groups' when a group has fewer than asked for; never doing so is within that,
    # and lets each consumer work on a session of its own, as Lambda's do).
    #
    # moto blocks a FIFO group while one of its messages is in `pending_messages` (worked out
    # once per receive), and keeps a received message there until a receive meets it visible
    # again: that receive frees it alone, then works the blocked groups out again. So a
    # visible message still in there behind earlier ones of its group (one released to
    # visibility 0 in the very clock tick moto checks it in, its `visible` being
    # `now > visible_at`; or a batch whose visibility timeout ran out) makes the receive skip
    # the earlier ones as blocked, free it, and hand it out with the rest of the group ahead
    # of them: a session's webhooks overtook each other (tests/pipeline/test_local_fifo.py,
    # bench/RESULTS.md). On SQS a message is in flight, and blocks its group, only until it
    # is deleted or visible again ("Inflight messages block delivery of available messages
    # within the same message group"; the group is received again, in its order, once they
    # are deleted or visible again: SQS's FIFO delivery logic); so here every message visible
    # again leaves moto's in-flight set before a receive looks at any group.
    def release_visible_again(queue: Any) -> None:
        queue.pending_messages.difference_update([m for m in queue.pending_messages if m.visible])

    original_messages = Queue.messages.fget
    receiving = threading.local()

    def messages(self: Any) -> Any:
        found = original_messages(self)
        if not (getattr(receiving, "on", False) and self.fifo_queue):
            return found
        # a group is taken while one of its messages is received and still hidden
        release_visible_again(self)
        pending = {m.group_id for m in self.pending_messages if not m.visible}
        first = next((m.group_id for m in found if m.group_id not in pending), None)
        return [m for m in found if m.group_id == first]

    Queue.messages = property(messages)  # type: ignore[assignment, method-assign]
    receive = SQSBackend.receive_message

    def receive_group_first(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        release_visible_again(self.get_queue(queue_name))  # before moto notes the blocked groups
        receiving.on = True
        try:
            return receive(self, queue_name, *args, **kwargs)
        finally:
            receiving.on = False

    SQSBackend.receive_message = receive_group_first  # type: ignore[method-assign]

    # A receive asks every message whether it is visible and not delayed, each time building
    # two datetimes to learn the time: the same answer from the clock directly.
    import moto.sqs.models as sqs_models

    original_time = sqs_models.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else original_time(dt)

    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = lambda dt=None: unix_time(dt) * 1000.0


def fast_transactions() -> None:
    """Replace moto's TransactWriteItems with check-all-then-write (see the module doc)."""
    fast_json_responses()
    cheap_sqs_sends()
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
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


def atomic_app() -> Any:
    """moto's WSGI app, answering one request at a time (the event sources' first)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    fast_transactions()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    turns = PriorityLock()
    urgent = "HTTP_" + PRIORITY_HEADER.upper().replace("-", "_")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        turns.acquire(urgent=urgent in environ)
        try:
            with _lock:
                return list(dispatcher(environ, start_response))
        finally:
            turns.release()

    return app


class AtomicMotoServer:
    """A moto server on loopback, in a thread, answering one AWS request at a time."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
            # headers and body go out in separate writes: without this each answer waits
            # for the client's delayed ACK (about 40 ms per AWS call)
            disable_nagle_algorithm = True

            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server(host, port, atomic_app(), threaded=True, request_handler=QuietHandler)
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


class MotoProcess:
    """moto in a process of its own (`python -m local.moto_server`), so moto's work and the
    local stack's (API, runner, inbox) each have an interpreter, and a core, of their own: in
    one process they shared one GIL and the pipeline starved under load. Served by waitress,
    which keeps connections alive (werkzeug's server closes every one: a new connection, and
    a new thread, per AWS call)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        import subprocess
        import sys

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._proc = subprocess.Popen([sys.executable, "-m", "local.moto_server", host, str(port)],
                                      stdout=subprocess.PIPE, text=True, cwd=root)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self._proc.kill()
            raise RuntimeError(f"the moto server did not start: {line!r}")
        self.url = line

    def start(self) -> MotoProcess:
        return self

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - it goes either way
            self._proc.kill()


def main() -> None:
    """Serve moto on HOST PORT until terminated; prints the URL once it accepts requests."""
    import logging
    import signal
    import sys

    from waitress import create_server

    logging.getLogger("waitress").setLevel(logging.ERROR)  # "task queue depth": one at a time is the point

    host, port = (sys.argv[1], int(sys.argv[2])) if len(sys.argv) > 2 else ("127.0.0.1", 0)
    # one request runs at a time anyway (the lock): a few threads keep connections served
    server = create_server(atomic_app(), host=host, port=port, threads=4, connection_limit=200,
                           channel_timeout=300, ident="moto")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the stack, which stops us
    parent = os.getppid()

    def orphaned() -> None:  # the stack died without stopping us: go too
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    print(f"http://{host}:{server.effective_port}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
