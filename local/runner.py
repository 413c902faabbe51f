"""The local event-source runner: what Lambda's event source mappings and EventBridge
schedules do on AWS, done against moto.

It polls the table's stream and the delivery queue, builds Lambda-shaped events (the shapes
Powertools' parser models accept: eventSourceARN, eventVersion "1.1", epoch
ApproximateCreationDateTime, base64 binaries; distinct SQS messageIds with MessageGroupId and
ApproximateReceiveCount), invokes the very same Chalice handlers, and honours their partial
batch responses as Lambda does: a stream shard resumes from the lowest failed sequence number
(so a failed record is retried, never skipped); SQS deletes only the messages that succeeded.
Scheduled handlers run on their rate (or every SCHEDULE_INTERVAL_SECONDS when set).
Nothing here ships to Lambda.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("runner")
REGION = "us-east-1"
SHARD_REFRESH_SECONDS = 5.0


def lambda_stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record from GetRecords as Lambda delivers it."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = int(created.timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in data:
            data[image] = _base64_binaries(data[image])
    return {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record["eventName"], "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": data, "eventSourceARN": stream_arn,
    }


def windowed(shard_id: str, stream_arn: str, seconds: int, now: float | None = None,
             state: dict[str, Any] | None = None, final: bool = False) -> dict[str, Any]:
    """What Lambda adds to a stream invocation of a mapping with a tumbling window of
    `seconds`: the window holding `now` (default: the clock), the state the last invocation
    of that window answered, and whether this is the window's end-of-window invocation."""
    start = int((time.time() if now is None else now) // seconds * seconds)

    def iso(at: int) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {"window": {"start": iso(start), "end": iso(start + seconds)}, "state": dict(state or {}),
            "shardId": shard_id, "eventSourceARN": stream_arn,
            "isFinalInvokeForWindow": final, "isWindowTerminatedEarly": False}


def _base64_binaries(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if key == "B" and isinstance(inner, (bytes, bytearray)):
                out[key] = base64.b64encode(inner).decode()
            elif key == "BS":
                out[key] = [base64.b64encode(b).decode() if isinstance(b, (bytes, bytearray)) else b for b in inner]
            else:
                out[key] = _base64_binaries(inner)
        return out
    if isinstance(value, list):
        return [_base64_binaries(v) for v in value]
    return value


def lambda_sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A message from ReceiveMessage as Lambda delivers it."""
    attributes = dict(message.get("Attributes", {}))
    # Lambda spells message attributes in camel case, with empty list values
    message_attributes = {
        name: {"stringValue": value.get("StringValue"), "stringListValues": [], "binaryListValues": [],
               "dataType": value.get("DataType", "String")}
        for name, value in (message.get("MessageAttributes") or {}).items()}
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"], "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": REGION,
    }


def rate_seconds(expression: str) -> float:
    """`rate(5 minutes)` -> 300. Cron expressions are not emulated (run every minute)."""
    match = re.match(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        return 60.0
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return float(match.group(1)) * unit


@dataclass
class _Shard:
    """One handler's position in one shard (each consumer of a stream reads it on its own)."""

    handler: str
    shard_id: str
    iterator: str | None
    window: int | None = None  # a windowed handler's current tumbling window (its start)
    state: dict[str, Any] = field(default_factory=dict)  # and the state it answered last


@dataclass
class Runner:
    """Drives the app's stream, queue and schedule handlers against moto."""

    app_module: Any
    stream_arn: str
    queue_url: str
    stream_handlers: tuple[str, ...] = ("feedback_handler", "analytics_handler")
    # The stream mappings infra/package.py gives a tumbling window (and its length): Lambda
    # passes those invocations the shard id, the window and its state, takes an answer without
    # a `state` as a failed invocation, and ends each window with an invocation of its own.
    windowed_handlers: dict[str, int] = field(default_factory=lambda: {"analytics_handler": 900})
    queue_handler: str = "delivery_handler"
    stream_batch_size: int = 100
    queue_batch_size: int = 10
    invocations: dict[str, int] = field(default_factory=dict)
    _last_state: dict[str, Any] = field(default_factory=dict)
    _shards: dict[str, _Shard] = field(default_factory=dict)
    _next_run: dict[str, float] = field(default_factory=dict)
    _shards_seen: float = 0.0

    def __post_init__(self) -> None:
        import boto3

        self._streams = boto3.client("dynamodbstreams")
        self._sqs = boto3.client("sqs")
        self._queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # ---- stream ------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        # a table's shards change rarely (moto: never): look again every few seconds, not on
        # every poll
        now = time.monotonic()
        if self._shards and now - self._shards_seen < SHARD_REFRESH_SECONDS:
            return
        self._shards_seen = now
        shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            for handler in self.stream_handlers:
                if not hasattr(self.app_module, handler):
                    continue
                key = f"{handler}:{shard['ShardId']}"
                if key not in self._shards:
                    iterator = self._streams.get_shard_iterator(
                        StreamArn=self.stream_arn, ShardId=shard["ShardId"],
                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                    self._shards[key] = _Shard(handler, shard["ShardId"], iterator)

    def pump_stream(self) -> int:
        """One poll of every shard; returns how many records were handed to the handler."""
        self._refresh_shards()
        handled = 0
        for shard in self._shards.values():
            if shard.iterator is None:
                continue
            response = self._streams.get_records(ShardIterator=shard.iterator,
                                                 Limit=self.stream_batch_size)
            records = response.get("Records", [])
            next_iterator = response.get("NextShardIterator")
            if records:
                event: dict[str, Any] = {"Records": [lambda_stream_record(r, self.stream_arn) for r in records]}
                seconds = self.windowed_handlers.get(shard.handler)
                failed: set[str] | None
                if seconds:
                    # Lambda's tumbling windows: a window holds the records created in it, a batch
                    # never spans two, and a window ends with an invocation of its own
                    created = [int(r["dynamodb"].get("ApproximateCreationDateTime") or 0) for r in event["Records"]]
                    start = created[0] // seconds * seconds
                    if shard.window is not None and start != shard.window:
                        self._end_window(shard, seconds)
                    shard.window = start
                    cut = next((n for n, at in enumerate(created) if at // seconds * seconds != start), len(records))
                    event["Records"], rest = event["Records"][:cut], records[cut:]
                    event.update(windowed(shard.shard_id, self.stream_arn, seconds, now=start, state=shard.state))
                    failed = self._invoke(shard.handler, event, stateful=True)
                    if failed is not None:
                        shard.state = self._last_state
                    if rest and failed == set():  # all counted: the next window's records on the next poll
                        next_iterator = self._iterator_at(shard, rest[0]["dynamodb"]["SequenceNumber"])
                    records = records[:cut]
                else:
                    failed = self._invoke(shard.handler, event)
                handled += len(records)
                if failed is None or failed:
                    # Lambda: retry from the lowest failed sequence number (a crashed
                    # invocation: from the start of the batch).
                    sequence = min(failed, key=int) if failed else records[0]["dynamodb"]["SequenceNumber"]
                    next_iterator = self._iterator_at(shard, sequence)
            shard.iterator = next_iterator
        return handled

    def _iterator_at(self, shard: _Shard, sequence: str) -> str:
        return str(self._streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=sequence)["ShardIterator"])

    def _end_window(self, shard: _Shard, seconds: int) -> None:
        """The end-of-window invocation: no records, the window's last state, the flag set
        (Lambda retries it until it succeeds; here a failure is logged and the window closed)."""
        assert shard.window is not None
        event = {"Records": [], **windowed(shard.shard_id, self.stream_arn, seconds, now=shard.window,
                                           state=shard.state, final=True)}
        if self._invoke(shard.handler, event, stateful=True) is None:
            log.error("the end-of-window invocation of %s failed", shard.handler)
        shard.state = {}

    # ---- queue -------------------------------------------------------------------------

    def pump_queue(self) -> int:
        """One receive from the delivery queue; returns how many messages were handled."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.queue_batch_size,
            WaitTimeSeconds=0, AttributeNames=["All"], MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [lambda_sqs_record(m, self._queue_arn) for m in messages]}
        failed = self._invoke(self.queue_handler, event)
        if failed is None:  # the whole invocation failed: every message comes back later
            return len(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:  # as Lambda does: the successful ones, in one DeleteMessageBatch
            self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
        return len(messages)

    # ---- schedules ---------------------------------------------------------------------

    def scheduled_handlers(self) -> list[tuple[str, float]]:
        app = self.app_module.app
        override = os.environ.get("SCHEDULE_INTERVAL_SECONDS")
        found = []
        for source in getattr(app, "event_sources", []):
            expression = getattr(source, "schedule_expression", None)
            if expression is None:
                continue
            text = expression if isinstance(expression, str) else expression.to_string()
            interval = float(override) if override else rate_seconds(text)
            found.append((source.handler_string.rsplit(".", 1)[-1], interval))
        return found

    def pump_schedules(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        ran = 0
        for name, interval in self.scheduled_handlers():
            due = self._next_run.setdefault(name, now + interval)
            if now >= due:
                self._next_run[name] = now + interval
                self.run_scheduled(name)
                ran += 1
        return ran

    def run_scheduled(self, name: str) -> Any:
        """Invoke a scheduled handler now, with an EventBridge-shaped event."""
        return self._invoke(name, {
            "version": "0", "id": uuid.uuid4().hex, "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "000000000000", "region": REGION,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [], "detail": {}})

    # ---- driving -----------------------------------------------------------------------

    def _invoke(self, name: str, event: dict[str, Any], stateful: bool = False) -> set[str] | None:
        """Call a handler as Lambda would. Returns the failed item ids (empty: all good), or
        None when the invocation itself failed (for a `stateful` one, a tumbling window's,
        also when its answer has no `state`)."""
        from chalice.local import LambdaContext

        self.invocations[name] = self.invocations.get(name, 0) + 1
        context = LambdaContext(function_name=name, memory_size=256, max_runtime_ms=30_000)
        try:
            result = getattr(self.app_module, name)(event, context)
        except Exception:
            log.exception("handler %s failed", name)
            return None
        if stateful:
            if not (isinstance(result, dict) and isinstance(result.get("state"), dict)):
                log.error("handler %s answered a tumbling window's invocation without a state", name)
                return None
            self._last_state = result["state"]
        failures = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
        return {f["itemIdentifier"] for f in failures}

    def pump(self) -> int:
        return self.pump_stream() + self.pump_queue() + self.pump_schedules()

    def _loop(self, step: Any, stop: threading.Event, interval: float, activity: Any,
              next_due: Any) -> None:
        while not stop.is_set():
            seen = activity.version if activity is not None else 0
            try:
                busy = step()
            except Exception:
                log.exception("runner poll failed")
                busy = 0
            if busy:
                continue
            timeout = max(0.0, min(interval, next_due() - time.monotonic()))
            if activity is not None:
                activity.wait(seen, timeout)  # woken by the next write, or the timeout
            else:
                stop.wait(timeout)

    def next_schedule_due(self) -> float:
        return min(self._next_run.values(), default=float("inf"))

    def start(self, interval: float = 0.1, queue_concurrency: int = 4,
              activity: Any = None, queue_activity: Any = None) -> Stopper:
        """Poll in the background, as Lambda does: the stream consumers and the schedules on
        one thread, and `queue_concurrency` concurrent consumers of the FIFO queue (Lambda
        scales SQS consumers out; FIFO still hands a session's messages to one at a time).

        With `activity` (local/moto_server.py: the table's writes; `queue_activity`: the
        queue's, if apart) an idle consumer waits for the next write instead of polling every
        `interval`, which is then only the longest wait (messages whose visibility timeout
        simply runs out, after a crash).
        Call the returned Stopper's `set()` to stop."""
        stop = threading.Event()
        never = lambda: float("inf")
        queue_activity = queue_activity or activity
        loops = [("stream", lambda: self.pump_stream() + self.pump_schedules(), self.next_schedule_due,
                  activity)]
        loops += [(f"queue-{n}", self.pump_queue, never, queue_activity) for n in range(queue_concurrency)]
        for name, step, due, source in loops:
            threading.Thread(target=self._loop, args=(step, stop, interval, source, due), daemon=True,
                             name=f"runner-{name}").start()
        return Stopper(stop, (activity, queue_activity))


@dataclass
class Stopper:
    """Stops the runner's threads, waking the ones waiting for activity."""

    event: threading.Event
    activities: tuple[Any, ...] = ()

    def set(self) -> None:
        self.event.set()
        for activity in self.activities:
            if activity is not None:
                activity.changed()
