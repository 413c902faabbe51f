"""Capacity model: for N progress updates/s, each delivering one webhook, the load on every part
of the stack and the first limit hit as N grows. Pure arithmetic from stated inputs (the
per-update units are the ones bench/bench_cost.py measured) and AWS's published limits (cited
next to each). Prints markdown for bench/RESULTS.md.

    python bench/capacity.py [N ...]          (default: 1000 5000 10000 25000 50000 100000)
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

# ---- AWS's published limits (defaults; "soft" ones can be raised through Service Quotas) ----
LIMITS = {
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html (soft)
    "apigw_rps": 10_000,
    # https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (soft)
    "lambda_concurrency": 1_000,
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
    "ddb_table_wru": 40_000,        # on-demand, per table (soft); each GSI has the same of its own
    "ddb_partition_wcu": 1_000,     # per partition, hence per item (hard)
    "ddb_partition_rcu": 3_000,
    "ddb_transaction_items": 100,
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html: "no more
    # than two processes at most should be reading from the same streams shard at the same time"
    "stream_readers_per_shard": 2,
    # https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html: shards polled 4 times a second
    "stream_polls_per_shard_s": 4,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
    # high-throughput FIFO: 70,000 transactions/s per API action (us-east-1, us-west-2,
    # eu-west-1), 300 per partition; a message group lives on one partition
    "sqs_fifo_tps_per_action": 70_000,
    "sqs_fifo_tps_per_group": 300,
}


@dataclass(frozen=True)
class Inputs:
    """Per progress update (with its webhook). Units from bench/bench_cost.py (200 x 10)."""

    progress_wru: float = 4.6        # the progress transaction, base table (x2 transactional)
    progress_index_wru: float = 1.7  # GSI4 (the event's replay entry) + GSI5 (when the activity bucket moves)
    progress_rru: float = 1.3
    delivery_wru: float = 1.4        # the attempt appended to the event item + the endpoint's stats
    delivery_rru: float = 1.0
    # analytics: per stream BATCH (not per update), one transaction (x2) of the counters it adds
    # to and its shard's checkpoint, and one consistent read of that checkpoint
    analytics_checkpoint_rru: float = 1.0
    api_seconds: float = 0.030       # API function per request on AWS (assumed: 2 round trips)
    delivery_seconds: float = 0.150  # per webhook: the receiver's answer dominates (assumed)
    stream_seconds: float = 0.050    # per stream batch, each function (assumed)
    session_interval_s: float = 5.0  # an active session reports every 5 s (assumed)
    counter_shards: int = 8          # chalicelib/db/stats.py SHARDS
    counter_items_per_tx: int = 4    # counter items one analytics transaction adds to (global, hour, manuals; assumed)
    analytics_window_s: float = 0.0  # the analytics mapping's MaximumBatchingWindowInSeconds (packaged: 0)
    session_item_wcu: int = 2        # a session item under 1 KB, written in a transaction


def model(n: float, i: Inputs = Inputs()) -> dict[str, float]:
    # the partitions (hence stream shards) from the request path's load; analytics, a few
    # units per batch, is added after
    api_wcu = n * (i.progress_wru + i.delivery_wru)
    api_rcu = n * (i.progress_rru + i.delivery_rru)
    partitions = max(1, math.ceil(max(api_wcu / LIMITS["ddb_partition_wcu"], api_rcu / LIMITS["ddb_partition_rcu"])))
    shards = partitions  # one open stream shard per table partition
    per_shard = n / shards  # counted records per shard per second (one event INSERT per update)
    polls = 1 / i.analytics_window_s if i.analytics_window_s else LIMITS["stream_polls_per_shard_s"]
    batches_per_shard = min(max(polls, per_shard / 100), per_shard) if per_shard else 0  # one record: one batch
    # a transaction takes 100 items: the counters it adds to and the shard's checkpoint (one
    # per batch: its sessions do not matter)
    tx_per_batch = math.ceil((i.counter_items_per_tx + 1) / LIMITS["ddb_transaction_items"])
    analytics_tx = shards * batches_per_shard * tx_per_batch
    counter_wcu = 2 * analytics_tx / i.counter_shards
    table_wcu = api_wcu + analytics_tx * 2 * (i.counter_items_per_tx + 1)
    table_rcu = api_rcu + shards * batches_per_shard * i.analytics_checkpoint_rru
    active_sessions = n * i.session_interval_s
    return {
        "api_rps": n,
        "api_concurrency": n * i.api_seconds,
        "table_wcu": table_wcu,
        "index_wcu": n * i.progress_index_wru,
        "table_rcu": table_rcu,
        "partitions": partitions,
        "stream_shards": shards,
        "stream_concurrency": 2 * shards,  # feedback + analytics, ParallelizationFactor 1
        "analytics_tx": analytics_tx,
        "counter_item_wcu": counter_wcu,
        "sqs_send_tps": n / 10,
        "sqs_receive_tps": n / 10,
        "sqs_delete_tps": n / 10,
        "active_sessions": active_sessions,
        # messages/s x seconds each; Lambda's FIFO source runs at most one batch per group at a time
        "delivery_concurrency": min(active_sessions, n * i.delivery_seconds),
    }


def first_limits(m: dict[str, float]) -> list[str]:
    hits = []
    if m["api_rps"] > LIMITS["apigw_rps"]:
        hits.append("API Gateway account throttle (10,000 req/s, soft)")
    lambda_total = m["api_concurrency"] + m["stream_concurrency"] + m["delivery_concurrency"]
    if lambda_total > LIMITS["lambda_concurrency"]:
        hits.append(f"Lambda regional concurrency ({lambda_total:,.0f} > 1,000, soft)")
    if m["table_wcu"] > LIMITS["ddb_table_wru"]:
        hits.append("DynamoDB per-table on-demand write quota (40,000 WRU/s, soft)")
    if m["index_wcu"] > LIMITS["ddb_table_wru"]:
        hits.append("DynamoDB per-index write quota (40,000 WRU/s, soft)")
    if m["counter_item_wcu"] > LIMITS["ddb_partition_wcu"] / 2:
        hits.append(f"a counter item over half of 1,000 WCU/s ({m['counter_item_wcu']:,.0f})")
    if m["sqs_send_tps"] > LIMITS["sqs_fifo_tps_per_action"]:
        hits.append("SQS FIFO high-throughput TPS per action")
    return hits


def table(ns: list[float], i: Inputs = Inputs()) -> list[str]:
    rows = [
        ("API Gateway requests/s", "api_rps", "10,000 (soft)"),
        ("API function concurrency", "api_concurrency", "1,000 shared (soft)"),
        ("table write units/s", "table_wcu", "40,000 (soft)"),
        ("index write units/s (GSI4 + GSI5)", "index_wcu", "40,000 per index (soft)"),
        ("table read units/s", "table_rcu", "40,000 (soft)"),
        ("partitions = stream shards (at least)", "stream_shards", "-"),
        ("stream functions' concurrency (2 per shard)", "stream_concurrency", "2 readers per shard"),
        ("analytics transactions/s", "analytics_tx", "-"),
        ("WCU/s on each counter item", "counter_item_wcu", "1,000 per item; target < 500"),
        ("SQS SendMessageBatch/s (= Receive, = DeleteBatch)", "sqs_send_tps", "70,000 per action"),
        ("active sessions (= FIFO groups)", "active_sessions", "-"),
        ("delivery concurrency", "delivery_concurrency", "<= active groups"),
    ]
    models = [model(n, i) for n in ns]
    out = ["| N progress updates/s | " + " | ".join(f"{n:,.0f}" for n in ns) + " | limit |",
           "|---|" + "---|" * len(ns) + "---|"]
    for label, key, limit in rows:
        out.append(f"| {label} | " + " | ".join(f"{m[key]:,.0f}" for m in models) + f" | {limit} |")
    out.append("| limits passed | " + " | ".join("; ".join(first_limits(m)) or "none" for m in models) + " | |")
    return out


def crossing(predicate: str, i: Inputs = Inputs()) -> float:
    """The smallest N (to 100) where a limit is first passed."""
    n = 100.0
    while n < 1e6:
        m = model(n, i)
        if predicate in " ".join(first_limits(m)):
            return n
        n += 100
    return float("inf")


def main() -> None:
    ns = [float(a) for a in sys.argv[1:]] or [1000, 5000, 10000, 25000, 50000, 100000]
    i = Inputs()
    lines = table(ns)
    lines += ["", "First crossing as N grows (to the nearest 100 updates/s):", ""]
    for label, key in (("Lambda regional concurrency", "Lambda"), ("API Gateway throttle", "API Gateway"),
                       ("DynamoDB table write quota", "per-table"), ("a counter item over 500 WCU/s", "counter item")):
        lines.append(f"- {label}: N = {crossing(key):,.0f}")
    windowed = Inputs(analytics_window_s=1.0)
    lines += [f"- a counter item over 500 WCU/s with a 1 s batching window on the analytics mapping "
              f"(not packaged): N = {crossing('counter item', windowed):,.0f}; at 50,000/s each counter "
              f"item then takes {model(50_000, windowed)['counter_item_wcu']:,.0f} WCU/s"]
    half = LIMITS["ddb_partition_wcu"] / 2
    lines += ["", "One session's own ceiling:", "",
              f"- its item takes {i.session_item_wcu} WCU per update (transactional), so half of one item's "
              f"1,000 WCU/s is {half / i.session_item_wcu:,.0f} updates/s and the whole of it "
              f"{LIMITS['ddb_partition_wcu'] / i.session_item_wcu:,.0f};",
              "- the real ceiling is lower: updates of one session are serialised by its version (read, "
              "then a transaction conditional on it), so one session takes at most 1 / (read + write "
              "round trip) updates/s, about 50-100/s at AWS's single-digit-millisecond latencies, "
              "fewer while concurrent writers conflict and back off."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
