"""Request-level benchmarks, in one run on this machine (in-process, moto):

1. DynamoDB round trips and items read/written per request, every route
2. warm overhead: the app's median latency / the same boto3 calls made directly (target <= 1.3)
3. cold start: importing the app / importing boto3, fresh interpreters (target <= 1.3)
4. 32 threads of DONE on one session: successes without client retry, lost updates, p50/p99
5. the cost model per million progress updates, from measured sizes and durations

    python bench/bench_requests.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import AUTH, ROOT, ReadMeter, machine, stack

MANUAL = {"manual_id": "m", "title": "Bench manual", "steps": [
    {"step_number": n, "title": f"Step {n}", "content": "Do the thing described here. " * 8}
    for n in range(1, 41)]}


class WriteMeter(ReadMeter):
    def __init__(self) -> None:
        super().__init__()
        from chalicelib.db import table as store

        self.items_written = 0
        store.get_client().meta.events.register("provide-client-params.dynamodb", self._params)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "TransactWriteItems":
            self.items_written += sum(1 for i in params["TransactItems"] if "ConditionCheck" not in i)
        elif name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.items_written += 1
        elif name == "BatchWriteItem":
            self.items_written += sum(len(v) for v in params["RequestItems"].values())

    def reset(self) -> None:
        super().reset()
        self.items_written = 0


def thread_safe(app: Any) -> None:
    from chalice.local import CustomLocalChalice, LocalChalice

    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice


def call(client: Any, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> Any:
    return client.http.request(method, path, headers={"Content-Type": "application/json", **AUTH, **(headers or {})},
                               body=json.dumps(body) if body is not None else b"")


def per_route(client: Any, meter: WriteMeter) -> list[tuple[str, int, int, int]]:
    """Every route once, in an order where each finds what it needs."""
    rows, seen, token = [], set(), {}

    def run(method: str, path: str, body: Any = None, label: str | None = None) -> Any:
        meter.reset()
        response = call(client, method, path, body, token)
        assert response.status_code < 300, (path, response.body)
        name = label or f"{method} {path}" + (" (replay)" if (method, path) in seen else "")
        seen.add((method, path))
        rows.append((name, sum(meter.calls.values()), meter.items_read, meter.items_written))
        return json.loads(response.body) if response.body else None

    run("POST", "/v1/manuals", MANUAL, "POST /v1/manuals (40 steps)")
    run("GET", "/v1/manuals")
    run("GET", "/v1/manuals/m")
    run("POST", "/v1/sessions", {"session_id": "r", "user_id": "u", "manual_id": "m"})
    run("GET", "/v1/sessions/r")
    for query in ("", "?status=active", "?user_id=u", "?manual_id=m"):
        run("GET", f"/v1/sessions{query}")
    done = {"user_id": "u", "current_step": 1, "step_status": "DONE", "idempotency_key": "k"}
    event_id = run("POST", "/v1/sessions/r/progress", done)["event_id"]
    run("POST", "/v1/sessions/r/progress", done)
    run("GET", "/v1/sessions/r/next-step")
    run("POST", "/v1/sessions/r/messages", {"user_id": "u", "message": "hello", "sender": "user"})
    run("POST", "/v1/messages", {"session_id": "r", "user_id": "u", "message": "hi", "sender": "agent"})
    run("GET", "/v1/sessions/r/messages")
    run("GET", "/v1/sessions/r/events")
    run("POST", f"/v1/events/{event_id}/redeliver", label="POST /v1/events/{id}/redeliver")
    run("GET", "/v1/deliveries?status=failed")
    run("PATCH", "/v1/sessions/r", {"status": "ended"}, "PATCH /v1/sessions/r (ends it: + summary)")
    for path in ("/v1/analytics/overview", "/v1/analytics/popular-manuals",
                 "/v1/analytics/recent-activity?hours=24"):
        run("GET", path)
    token["X-Inbox-Token"] = run("POST", "/v1/inboxes", {"inbox_id": "bench"})["read_token"]
    run("POST", "/v1/hooks/bench", {"hello": "world"})
    request_id = run("GET", "/v1/inboxes/bench/requests")["items"][0]["request_id"]
    run("GET", f"/v1/inboxes/bench/requests/{request_id}", label="GET /v1/inboxes/bench/requests/{id}")
    run("GET", "/v1/inboxes/bench")
    run("PATCH", "/v1/inboxes/bench", {"paused": True})
    run("DELETE", "/v1/inboxes/bench", label="DELETE /v1/inboxes/bench (1 capture)")
    for path in ("/health/live", "/health/ready", "/health"):
        run("GET", path)
    run("DELETE", "/v1/sessions/r", label="DELETE /v1/sessions/r (2 messages, 3 events)")
    call(client, "POST", "/v1/manuals", {**MANUAL, "manual_id": "gone"})
    run("DELETE", "/v1/manuals/gone", label="DELETE /v1/manuals/{id} (40 steps)")
    return rows


def warm_overhead(client: Any, runs: int = 200) -> list[tuple[str, float, float]]:
    """Median wall time of each request through the app, and the median time of the same
    request spent inside its boto3 calls (the calls it would make anyway, moto answering)."""
    from chalicelib.db import table as store

    inside = [0.0]
    started: list[float] = []

    def before(**_: Any) -> None:
        started.append(time.perf_counter())

    def after(**_: Any) -> None:
        inside[0] += time.perf_counter() - started.pop()

    events = store.get_client().meta.events
    events.register("before-call.dynamodb", before)
    events.register("after-call.dynamodb", after)
    call(client, "POST", "/v1/sessions", {"session_id": "w", "user_id": "u", "manual_id": "m"})
    requests = [
        ("POST progress", "POST", "/v1/sessions/w/progress", {"user_id": "u", "current_step": 1, "step_status": "ONGOING"}),
        ("POST messages", "POST", "/v1/sessions/w/messages", {"user_id": "u", "message": "hi", "sender": "user"}),
        ("GET session", "GET", "/v1/sessions/w", None),
    ]
    rows = []
    for name, method, path, body in requests:
        totals, in_boto = [], []
        for n in range(runs + 10):
            inside[0] = 0.0
            begin = time.perf_counter()
            call(client, method, path, body)
            if n >= 10:  # warm-up
                totals.append(time.perf_counter() - begin)
                in_boto.append(inside[0])
        rows.append((name, statistics.median(totals), statistics.median(in_boto)))
    events.unregister("before-call.dynamodb", before)
    events.unregister("after-call.dynamodb", after)
    return rows


def cold_start(runs: int = 15) -> tuple[float, float, list[str]]:
    def wall(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    app_time = wall("import app")
    boto_time = wall("import boto3")
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT,
                           capture_output=True, text=True).stderr.splitlines()
    costs = []
    for line in trace[1:]:
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith("   ") and not parts[2].startswith("     "):
            costs.append((int(parts[1]), parts[2].strip()))
    top = [f"{name} {us / 1000:.0f} ms" for us, name in sorted(costs, reverse=True)[:8]]
    return app_time, boto_time, top


def concurrency(client: Any, threads: int = 32) -> dict[str, Any]:
    call(client, "POST", "/v1/sessions", {"session_id": "c", "user_id": "u", "manual_id": "m"})

    def done(step: int) -> tuple[int, float]:
        start = time.perf_counter()
        response = call(client, "POST", "/v1/sessions/c/progress", {"user_id": "u", "current_step": step, "step_status": "DONE"})
        return response.status_code, time.perf_counter() - start

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(done, range(1, threads + 1)))
    state = json.loads(call(client, "GET", "/v1/sessions/c").body)
    latencies = sorted(t for _, t in results)
    return {
        "ok": sum(1 for code, _ in results if code == 200), "threads": threads,
        "lost": threads - len(set(state["completed_steps"]) & set(range(1, threads + 1))),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def item_sizes(aws: Any) -> dict[str, int]:
    import boto3

    def size(key: dict[str, str]) -> int:
        item = boto3.client("dynamodb").get_item(TableName=aws.table_name, Key={k: {"S": v} for k, v in key.items()})["Item"]
        return sum(len(k) + len(json.dumps(v)) for k, v in item.items())  # upper bound of DynamoDB's size

    from chalicelib.db import events, manuals, sessions

    return {"session": size(sessions.key("w")), "event": size(events.key("w", 2)),
            "step": size(manuals.step_key("m", __import__("chalicelib.services.manuals", fromlist=["x"]).revision(
                __import__("chalicelib.domain.models", fromlist=["x"]).ManualCreate(**MANUAL)), 2))}


def cost_model(sizes: dict[str, int], progress_seconds: float, delivery_seconds: float) -> list[str]:
    kb = lambda n: max(1, -(-n // 1024))
    # us-east-1 on-demand list prices (checked 2026-11; change here if they move)
    wru, rru = 0.625, 0.125          # $ per million write / read request units
    lambda_gb_s, lambda_req = 0.0000166667, 0.20
    apigw, sqs_fifo = 3.50, 0.50     # $ per million
    write_units = 2 * (kb(sizes["session"]) + kb(sizes["event"]))      # transactional: 2x
    read_units = 1 + 1                                                   # session + step, consistent, <= 4 KB
    analytics_units = 2 * 4                                              # marker + 3 counters, transactional
    ddb = (write_units + analytics_units) * wru + read_units * rru
    gb_s = 0.25 * (progress_seconds + delivery_seconds + 0.01 + 0.01)    # api + delivery + feedback + analytics share
    lam = gb_s * lambda_gb_s * 1e6 + 4 * lambda_req * 0.1               # stream/SQS invocations are batched (~10/batch)
    sqs = 3 * sqs_fifo                                                   # send + receive + delete
    total = ddb + lam + apigw + sqs
    return [
        f"- DynamoDB: progress transaction {write_units} WRU (session {sizes['session']} B + event {sizes['event']} B, x2 for a transaction), "
        f"read {read_units} RRU, analytics {analytics_units} WRU -> ({write_units}+{analytics_units}) x ${wru} + {read_units} x ${rru} = ${ddb:.2f}",
        f"- Lambda at 256 MB: ({progress_seconds * 1000:.1f} ms API + {delivery_seconds * 1000:.1f} ms delivery + ~20 ms stream handlers) x 0.25 GB "
        f"= {gb_s:.5f} GB-s x ${lambda_gb_s} x 1e6 + batched invocations = ${lam:.2f}",
        f"- API Gateway REST: ${apigw:.2f}",
        f"- SQS FIFO: 3 requests x ${sqs_fifo} = ${sqs:.2f}",
        f"- **Total: about ${total:.2f} per million progress updates** (each one also delivers a webhook)",
    ]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from chalice.test import Client

    from app import app

    thread_safe(app)
    lines = [f"Machine: {machine()}", ""]
    with stack() as aws, Client(app) as client:
        meter = WriteMeter()
        lines += ["### DynamoDB per request", "", "| request | round trips | items read | items written |", "|---|---|---|---|"]
        lines += [f"| {r} | {c} | {i} | {w} |" for r, c, i, w in per_route(client, meter)]
        overhead = warm_overhead(client)
        lines += ["", "### Warm overhead (median, in-process against moto)", "",
                  "| request | through the app | inside its boto3 calls | ratio |", "|---|---|---|---|"]
        lines += [f"| {n} | {a * 1000:.2f} ms | {b * 1000:.2f} ms | {a / b:.2f} |" for n, a, b in overhead]
        result = concurrency(client)
        lines += ["", "### 32 threads of DONE on one session", "",
                  f"- successes without client retry: {result['ok']}/{result['threads']}",
                  f"- lost updates: {result['lost']}",
                  f"- latency p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms (moto serialises requests)"]
        sizes = item_sizes(aws)
        progress_s = overhead[0][1]
        from chalicelib.pipeline import delivery  # delivery's own work without the HTTP wait

        lines += ["", "### Cost model", ""] + cost_model(sizes, progress_s, 0.005)
        del delivery
    app_s, boto_s, top = cold_start()
    lines += ["", "### Cold start (fresh interpreter, median of 15)", "",
              f"- import app: {app_s * 1000:.0f} ms; import boto3: {boto_s * 1000:.0f} ms; ratio {app_s / boto_s:.2f}",
              f"- top imports of the app: {', '.join(top)}"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
