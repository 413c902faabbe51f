"""Cost per million progress updates, each delivering one webhook: today's stream handlers
(analytics per record, one SendMessage per event: bench/legacy.py) against the new ones
(analytics per batch with a checkpoint per stream shard, as the packaged mapping's tumbling
window allows; SendMessageBatch), side by side in ONE run on the same workload.

Workload: S sessions x N steps on one manual, reported DONE step by step, the sessions
interleaved (step 1 of every session, then step 2, ...: many sessions at once, as on a busy
day), through the API in-process (chalice.test.Client on moto); WEBHOOK_EVENT_TYPES=
progress_update, so each progress update delivers one webhook. The table's stream is then
replayed through each design's handlers as Lambda would hand it over: each function's filter
from the packaged template applied, batches of 100. Webhooks go to a receiver on 127.0.0.1.

Measured: DynamoDB write and read units of every call (from the items' sizes, upper bounds:
1 WRU per KB written, x2 inside a transaction; 1 RRU per 4 KB read consistently, a missing
item 1), SQS requests (ours and the event source's: one ReceiveMessage per queue batch and
one DeleteMessageBatch of what succeeded), Lambda invocations and wall time per handler
(in-process against moto: moto's own time included, AWS's network latency not).

    python bench/bench_cost.py [sessions, default 200] [steps, default 10]
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from common import AUTH, ROOT, machine, stack

os.environ.update({"WEBHOOK_EVENT_TYPES": "progress_update", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
                   "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"})

# us-east-1 list prices (checked 2026-11; https://aws.amazon.com/api-gateway/pricing/,
# https://aws.amazon.com/lambda/pricing/, https://aws.amazon.com/dynamodb/pricing/on-demand/,
# https://aws.amazon.com/sqs/pricing/). $ per million unless said otherwise.
PRICE = {
    "apigw_rest": 3.50,          # REST API requests (first 333 million a month)
    "lambda_request": 0.20,      # invocations
    "lambda_gb_s": 16.6667,      # $ per million GB-s (x86_64)
    "wru": 0.625,                # on-demand write request units
    "rru": 0.125,                # on-demand read request units
    "sqs_fifo": 0.50,            # FIFO requests (each 64 KB chunk of a payload is one)
}
MEMORY_GB = 256 / 1024  # .chalice/config.json: every function
BATCH = 100  # the stream event sources' batch size (app.py)


def kb_units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def attr_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (wire form), by its published rules: strings
    and binaries by their bytes, numbers 1 byte per two significant digits + 1, booleans and
    null 1, lists and maps 3 + 1 per element (+ the keys of a map)."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(v)
    if kind == "L":
        return 3 + sum(1 + attr_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attr_size(e) for k, e in v.items())
    if kind in ("SS", "NS"):
        return sum(attr_size({kind[0]: e}) for e in v)
    raise TypeError(kind)


def wire_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + attr_size(v) for k, v in (item or {}).items())


def index_writes(record: dict[str, Any], indexes: list[dict[str, Any]]) -> int:
    """Writes a stream record's change makes to the global secondary indexes (each entry is
    far under 1 KB: one write unit each): an entry added or removed is one write, a changed
    index key two (delete + put), a changed projected attribute one."""
    data = record["dynamodb"]
    old, new = data.get("OldImage") or {}, data.get("NewImage") or {}
    writes = 0
    for index in indexes:
        keys = [k["AttributeName"] for k in index["KeySchema"]]
        projected = keys + index["Projection"].get("NonKeyAttributes", [])
        in_old, in_new = all(k in old for k in keys), all(k in new for k in keys)
        if in_old and in_new:
            if any(old[k] != new[k] for k in keys):
                writes += 2
            elif any(old.get(a) != new.get(a) for a in projected):
                writes += 1
        elif in_old or in_new:
            writes += 1
    return writes


@dataclass
class Meter:
    """DynamoDB units and SQS requests of the app's clients, by label (what is running)."""

    label: str = "api"
    calls: dict[str, Counter] = field(default_factory=dict)
    wru: Counter = field(default_factory=Counter)
    rru: Counter = field(default_factory=Counter)
    sqs: Counter = field(default_factory=Counter)
    raw: Any = None
    _requested: int = 0
    _pending: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    def install(self) -> None:
        import boto3

        from chalicelib.db import table as store
        from chalicelib.pipeline import queue

        self.raw = boto3.client("dynamodb")  # our own reads of item sizes: not counted
        store.get_client().meta.events.register("provide-client-params.dynamodb", self._dynamodb)
        store.get_client().meta.events.register("after-call.dynamodb", self._read)
        queue.get_client().meta.events.register("provide-client-params.sqs", self._sqs)

    def _count(self, name: str) -> None:
        self.calls.setdefault(self.label, Counter())[name] += 1

    def _size(self, table: str, key: dict[str, Any]) -> int:
        return wire_size(self.raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))

    def _dynamodb(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self._count(name)
        self._pending = []
        if name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                if kind == "Put":
                    self.wru[self.label] += 2 * kb_units(wire_size(body["Item"]), 1024)
                else:  # Update / Delete: sized after the call (the larger of before and after)
                    self._pending.append((body["TableName"], body["Key"], 2))
        elif name == "PutItem":
            self.wru[self.label] += kb_units(wire_size(params["Item"]), 1024)
        elif name in ("UpdateItem", "DeleteItem"):
            self._pending.append((params["TableName"], params["Key"], 1))
        elif name == "BatchGetItem":
            self._requested = sum(len(v["Keys"]) for v in params["RequestItems"].values())
        elif name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item")
                    self.wru[self.label] += kb_units(wire_size(item), 1024) if item else 1

    def _read(self, event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        name = event_name.rsplit(".", 1)[-1]
        for table, key, factor in self._pending:
            self.wru[self.label] += factor * kb_units(self._size(table, key), 1024)
        self._pending = []
        if name == "BatchGetItem":
            found = [i for items in parsed.get("Responses", {}).values() for i in items]
            unprocessed = sum(len(v["Keys"]) for v in (parsed.get("UnprocessedKeys") or {}).values())
            self.rru[self.label] += sum(kb_units(wire_size(i), 4096) for i in found)
            self.rru[self.label] += max(0, self._requested - len(found) - unprocessed)  # missing: 1 each
        elif name == "GetItem":
            item = parsed.get("Item")
            self.rru[self.label] += kb_units(wire_size(item), 4096) if item else 1
        elif name == "Query":
            self.rru[self.label] += kb_units(sum(wire_size(i) for i in parsed.get("Items", [])), 4096)

    def _sqs(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name in ("SendMessage", "SendMessageBatch"):
            size = len(params.get("MessageBody", "")) + sum(len(e["MessageBody"]) for e in params.get("Entries", []))
            self.sqs[self.label] += kb_units(size, 64 * 1024)
        else:
            self.sqs[self.label] += 1
        self.calls.setdefault(self.label, Counter())[name] += 1


@dataclass
class Timing:
    invocations: Counter = field(default_factory=Counter)
    billed_ms: Counter = field(default_factory=Counter)
    records: Counter = field(default_factory=Counter)

    def run(self, label: str, handler: Any, records: list[dict[str, Any]]) -> Any:
        start = time.perf_counter()
        result = handler(records)
        elapsed = time.perf_counter() - start
        self.invocations[label] += 1
        self.billed_ms[label] += math.ceil(elapsed * 1000)  # Lambda bills each invocation by the ms
        self.records[label] += len(records)
        return result


def filters() -> dict[str, list[dict[str, Any]]]:
    from infra.package import merge_template

    resources = merge_template()["Resources"]
    out = {}
    for function, source in (("feedback", "FeedbackHandler"), ("analytics", "AnalyticsHandler")):
        (mapping,) = resources[source]["Properties"]["Events"].values()
        out[function] = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    return out


def stream_records(aws: Any) -> list[dict[str, Any]]:
    import boto3

    from local.runner import lambda_stream_record

    streams = boto3.client("dynamodbstreams")
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=aws.stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=aws.stream_arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                break
            records += [lambda_stream_record(r, aws.stream_arn) for r in page["Records"]]
            iterator = page.get("NextShardIterator")
    return records


def batches(records: list[dict[str, Any]], patterns: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    from infra.rehearsal.lambda_run import filter_matches

    wanted = [r for r in records if any(filter_matches(p, r) for p in patterns)]
    return [wanted[n:n + BATCH] for n in range(0, len(wanted), BATCH)]


def call(client: Any, method: str, path: str, body: Any = None) -> Any:
    response = client.http.request(method, path, headers={"Content-Type": "application/json", **AUTH},
                                   body=json.dumps(body) if body is not None else b"")
    assert response.status_code < 300, (path, response.body)
    return json.loads(response.body) if response.body else None


def workload(client: Any, meter: Meter, sessions: int, steps: int, aws: Any) -> dict[str, Any]:
    call(client, "POST", "/v1/manuals", {"manual_id": "m", "title": "Cost", "steps": [
        {"step_number": n, "title": f"Step {n}", "content": "Do the thing described here. " * 8}
        for n in range(1, steps + 1)]})
    for s in range(sessions):
        call(client, "POST", "/v1/sessions", {"session_id": f"s-{s}", "user_id": f"u-{s}", "manual_id": "m"})
    before = len(stream_records(aws))
    meter.label = "api_progress"
    elapsed = 0.0
    for step in range(1, steps + 1):
        for s in range(sessions):
            start = time.perf_counter()
            call(client, "POST", f"/v1/sessions/s-{s}/progress",
                 {"user_id": f"u-{s}", "current_step": step, "step_status": "DONE"})
            elapsed += math.ceil((time.perf_counter() - start) * 1000) / 1000  # billed by the ms
    meter.label = "idle"
    return {"updates": sessions * steps, "api_billed_s": elapsed, "first_progress_record": before}


def deliver_all(aws: Any, timing: Timing, meter: Meter, queue_url: str) -> dict[str, int]:
    """Drain the delivery queue as Lambda's SQS event source does: receive up to ten, invoke,
    delete what succeeded in one DeleteMessageBatch (requests counted as the event source's)."""
    import boto3

    import app as app_module
    from local.runner import lambda_sqs_record

    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source_requests = delivered = 0
    meter.label = "delivery"
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       AttributeNames=["All"], MessageSystemAttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", [])
        source_requests += 1
        if not messages:
            break
        event = {"Records": [lambda_sqs_record(m, arn) for m in messages]}
        result = timing.run("delivery", lambda e: app_module.delivery_handler(e, None), event)  # type: ignore[arg-type]
        timing.records["delivery"] += len(messages) - 1  # run() counted the event as one record
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
            source_requests += 1
            delivered += len(done)
    meter.label = "idle"
    return {"source_requests": source_requests, "delivered": delivered}


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import legacy
    from chalice.test import Client

    from app import app
    from tests.receiver import Receiver

    receiver = Receiver()
    os.environ["WEBHOOK_URL"] = receiver.url
    os.environ["WEBHOOK_SECRET"] = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    lines = [f"Machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", ""]
    with stack() as aws, Client(app):
        import boto3

        from chalicelib.config import get_settings

        get_settings.cache_clear()

        meter = Meter()
        meter.install()
        client = Client(app)
        run = workload(client, meter, sessions, steps, aws)
        updates = run["updates"]
        records = stream_records(aws)
        patterns = filters()
        analytics_batches = batches(records, patterns["analytics"])
        feedback_batches = batches(records, patterns["feedback"])
        legacy_queue = boto3.client("sqs").create_queue(
            QueueName="legacy-delivery.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        timing = Timing()
        import app as app_module

        # --- today's handlers ---
        meter.label = "old_analytics"
        for batch in analytics_batches:
            assert timing.run("old_analytics", legacy.handle_stream_batch, batch) == {"batchItemFailures": []}
        meter.label = "old_feedback"
        for batch in feedback_batches:
            assert timing.run("old_feedback", lambda b: legacy.handle_feedback_batch(b, legacy_queue), batch) == {
                "batchItemFailures": []}
        # --- the new ones ---
        meter.label = "new_analytics"
        from chalicelib.jobs import analytics as analytics_job
        from local.runner import windowed

        window = windowed("shardId-00000001764000000000-bench", aws.stream_arn, 900)  # as packaged
        # The steady state: a shard's records created after its checkpoint was first written.
        # Replayed here after the whole workload, every record would be older than the
        # checkpoint and be checked against per-key ones as well (one more BatchGetItem per
        # batch), which a deployed shard pays only for its first minute (about 0.4% of a
        # shard's four hours or so).
        analytics_job.PER_KEY_HORIZON_SECONDS = -10**9
        for batch in analytics_batches:
            assert timing.run("new_analytics", lambda b: app_module.analytics_handler({"Records": b, **window}, None),
                              batch) == {"batchItemFailures": [], "state": {}}
        meter.label = "new_feedback"
        for batch in feedback_batches:
            assert timing.run("new_feedback", lambda b: app_module.feedback_handler({"Records": b}, None),
                              batch) == {"batchItemFailures": []}
        meter.label = "idle"
        delivery = deliver_all(aws, timing, meter, aws.delivery_queue_url)
        assert delivery["delivered"] == updates, delivery
        # both designs counted the same numbers
        overview = call(client, "GET", "/v1/analytics/overview")
        activity = call(client, "GET", "/v1/analytics/recent-activity?hours=3")
        assert overview["sessions"]["by_status"]["completed"] == sessions
        assert activity["totals"]["steps_completed"] == updates, activity["totals"]
        from chalicelib.db import table as store

        legacy_global = store.batch_get([{"PK": legacy.GLOBAL, "SK": f"SHARD#{n}"} for n in range(4)])
        assert sum(int(i.get("sessions_completed", 0)) for i in legacy_global.values()) == sessions
        indexes = json.loads((ROOT / "infra" / "resources.json").read_text())[
            "Resources"]["SessionTable"]["Properties"]["GlobalSecondaryIndexes"]
        later = stream_records(aws)[len(records):]  # the delivery log's writes (and the counters': no index)
        meter.wru["api_progress_index"] = sum(index_writes(r, indexes) for r in records[run["first_progress_record"]:])
        meter.wru["delivery_index"] = sum(index_writes(r, indexes) for r in later)
    receiver.stop()

    # ---- the arithmetic ----
    api_gb_s = run["api_billed_s"] * MEMORY_GB

    def side(prefix: str) -> dict[str, float]:
        analytics, feedback = f"{prefix}_analytics", f"{prefix}_feedback"
        u = updates
        lam = lambda label: (timing.invocations[label] * PRICE["lambda_request"]
                             + timing.billed_ms[label] / 1000 * MEMORY_GB * PRICE["lambda_gb_s"]) / u
        parts = {
            "API Gateway REST": PRICE["apigw_rest"],
            "Lambda: API function": PRICE["lambda_request"] + api_gb_s * PRICE["lambda_gb_s"] / u,
            "DynamoDB: progress request": (meter.wru["api_progress"] * PRICE["wru"] + meter.rru["api_progress"] * PRICE["rru"]) / u,
            "DynamoDB: progress request, index writes": meter.wru["api_progress_index"] * PRICE["wru"] / u,
            "DynamoDB: analytics": (meter.wru[analytics] * PRICE["wru"] + meter.rru[analytics] * PRICE["rru"]) / u,
            "Lambda: analytics": lam(analytics),
            "SQS: feedback sends": meter.sqs[feedback] * PRICE["sqs_fifo"] / u,
            "Lambda: feedback": lam(feedback),
            "SQS: delivery (event source receive + delete, ours)": (delivery["source_requests"] + meter.sqs["delivery"]) * PRICE["sqs_fifo"] / u,
            "DynamoDB: delivery log": ((meter.wru["delivery"] + meter.wru["delivery_index"]) * PRICE["wru"]
                                       + meter.rru["delivery"] * PRICE["rru"]) / u,
            "Lambda: delivery": lam("delivery"),
        }
        return parts

    old, new = side("old"), side("new")
    lines += [f"Workload: {sessions} sessions x {steps} steps, interleaved; {updates} progress updates, "
              f"{updates} webhooks delivered; {len(records)} stream records, {sum(map(len, analytics_batches))} "
              f"past the analytics filter in {len(analytics_batches)} batches, "
              f"{sum(map(len, feedback_batches))} past the feedback filter in {len(feedback_batches)} batches.", ""]
    lines += ["| per progress update | today | new |", "|---|---|---|"]
    per = lambda x: f"{x / updates:.3f}"
    rows = [
        ("analytics: DynamoDB write units", per(meter.wru["old_analytics"]), per(meter.wru["new_analytics"])),
        ("analytics: DynamoDB read units", per(meter.rru["old_analytics"]), per(meter.rru["new_analytics"])),
        ("analytics: DynamoDB calls", per(sum(meter.calls.get("old_analytics", Counter()).values())),
         per(sum(meter.calls.get("new_analytics", Counter()).values()))),
        ("analytics: Lambda ms (billed, per update)", f"{timing.billed_ms['old_analytics'] / updates:.2f}",
         f"{timing.billed_ms['new_analytics'] / updates:.2f}"),
        ("feedback: SQS requests", per(meter.sqs["old_feedback"]), per(meter.sqs["new_feedback"])),
        ("feedback: Lambda ms (billed, per update)", f"{timing.billed_ms['old_feedback'] / updates:.2f}",
         f"{timing.billed_ms['new_feedback'] / updates:.2f}"),
        ("progress request: DynamoDB write / read units", f"{per(meter.wru['api_progress'])} / {per(meter.rru['api_progress'])}", "same"),
        ("progress request: index writes", per(meter.wru["api_progress_index"]), "same"),
        ("progress request: Lambda ms (billed)", f"{run['api_billed_s'] * 1000 / updates:.2f}", "same"),
        ("delivery: DynamoDB write / read units (index writes)",
         f"{per(meter.wru['delivery'])} / {per(meter.rru['delivery'])} ({per(meter.wru['delivery_index'])})", "same"),
        ("delivery: SQS requests (event source + ours)", per(delivery["source_requests"] + meter.sqs["delivery"]), "same"),
        ("delivery: Lambda ms (billed, per webhook)", f"{timing.billed_ms['delivery'] / updates:.2f}", "same"),
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", "Calls by handler: " + "; ".join(f"{k}: {dict(v)}" for k, v in sorted(meter.calls.items()) if k != "idle"), ""]
    lines += ["| $ per million progress updates | today | new |", "|---|---|---|"]
    lines += [f"| {name} | {old[name]:.3f} | {new[name]:.3f} |" for name in old]
    lines += [f"| **total** | **{sum(old.values()):.2f}** | **{sum(new.values()):.2f}** |"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
