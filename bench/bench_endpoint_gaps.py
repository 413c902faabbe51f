"""Webhook endpoints, the delivery-side gaps (issue #18): what the last-20 ring of attempts,
the per-endpoint failed list and the retried test ping cost. In-process on moto with the
local event-source runner and real receivers on 127.0.0.1.

1. A healthy endpoint: the delivery function's DynamoDB calls per webhook, and the size of
   the endpoint's stats item (write units are billed on max(size before, size after) per
   1 KB) with the ring of 20 attempts, against the same counters with a list of 10 (the
   format before: the latest batch's attempts).
2. A failing endpoint (2 attempts each): the calls per failed webhook (the failure's entry in
   the endpoint's own failed list is the one PutItem).
3. Two failing endpoints whose failures interleave: the page sizes of one endpoint's failed
   list, limit 10, read from its own index, and as the filter over the global list read them
   before.
4. A ring written from a stale position (another instance): the refused writes.

    python bench/bench_endpoint_gaps.py [sessions, default 10]
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from typing import Any

from common import AUTH, machine, stack

os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    os.environ.pop("WEBHOOK_URL", None)
    os.environ["WEBHOOK_RETRY_SCHEDULE"] = "0"
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    os.environ["WEBHOOK_EVENT_TYPES"] = "session_created,progress_update,session_ended"
    print(f"Machine: {machine()}; {sessions} sessions x 4 events per scenario")
    with stack() as deployed:
        from chalice.test import Client

        import app as app_module
        from chalicelib.config import get_settings
        from chalicelib.db import endpoints as records
        from chalicelib.db import events
        from chalicelib.db import table as store
        from chalicelib.pipeline import delivery, queue
        from local.runner import Runner
        from tests.receiver import Receiver, always

        get_settings.cache_clear()
        client = Client(app_module.app)

        def call(method: str, path: str, body: Any = None) -> Any:
            response = client.http.request(method, path, headers={"Content-Type": "application/json", **AUTH},
                                           body=json.dumps(body) if body is not None else b"")
            return json.loads(response.body) if response.body else None

        calls: Counter = Counter()
        refused: Counter = Counter()

        def count(event_name: str, **_: Any) -> None:
            calls.update([event_name.rsplit(".", 1)[-1]])

        def count_refusals(http_response: Any, parsed: dict[str, Any], event_name: str, **_: Any) -> None:
            if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                refused.update([event_name.rsplit(".", 1)[-1]])

        store.get_client().meta.events.register("before-call.dynamodb", count)
        store.get_client().meta.events.register("after-call.dynamodb", count_refusals)
        call("POST", "/v1/manuals", {"manual_id": "m", "title": "t", "steps": [
            {"step_number": n, "title": f"s{n}"} for n in range(1, 3)]})
        runner = Runner(app_module, deployed.stream_arn, deployed.delivery_queue_url)
        receivers: list[Receiver] = []

        def new_endpoint(status: int, **fields: Any) -> str:
            receiver = Receiver(behaviour=always(status))
            receivers.append(receiver)
            return str(call("POST", "/v1/webhook-endpoints", {"url": receiver.url, **fields})["endpoint_id"])

        def run(prefix: str, until: Any) -> dict[str, int]:
            for s in range(sessions):
                call("POST", "/v1/sessions", {"session_id": f"{prefix}{s}", "user_id": "u", "manual_id": "m"})
                for step in (1, 2):
                    call("POST", f"/v1/sessions/{prefix}{s}/progress",
                         {"user_id": "u", "current_step": step, "step_status": "DONE"})
            calls.clear()
            started = time.monotonic()
            while not (until() and queue.depth(deployed.delivery_queue_url) == 0):
                assert time.monotonic() - started < 600, "did not settle"
                if not runner.pump():
                    time.sleep(0.01)
            return dict(calls)

        # 1. a healthy endpoint
        healthy = new_endpoint(200)
        got = run("h", lambda: len(receivers[0].delivered()) >= sessions * 4)
        messages = sessions * 4
        stats = store.get_item(records.stats_key(healthy)) or {}
        ring = store.item_size(stats)
        recent = records.recent_attempts(stats)
        before = {k: v for k, v in stats.items() if not (k.startswith("r") and k[1:].isdigit()) and k != "recent_next"}
        before["recent_attempts"] = recent[:10]
        old = store.item_size(before)
        print(f"1. healthy: {messages} webhooks, DynamoDB calls {got} = "
              f"{round(sum(got.values()) / messages, 2)} per webhook (stream handlers included)")
        print(f"   stats item: {ring} B with the ring of 20 -> {math.ceil(ring / 1024)} WCU per stats write; "
              f"{old} B with the list of 10 before -> {math.ceil(old / 1024)} WCU")
        call("DELETE", f"/v1/webhook-endpoints/{healthy}")

        # 2. a failing endpoint
        failing = new_endpoint(500)
        got = run("f", lambda: len(receivers[1].requests) >= sessions * 4 * 2)
        print(f"2. failing (2 attempts each): {messages} webhooks failed, DynamoDB calls {got}; "
              f"PutItem per failed webhook {round(got.get('PutItem', 0) / messages, 2)}")
        call("DELETE", f"/v1/webhook-endpoints/{failing}")

        # 3. two failing endpoints, interleaved
        ends = new_endpoint(500, event_types=["session_created", "session_ended"])
        steps = new_endpoint(500, event_types=["progress_update"])
        run("i", lambda: len(receivers[2].requests) >= sessions * 2 * 2 and len(receivers[3].requests) >= sessions * 4)
        for endpoint_id in (ends, steps):
            pages, cursor = [], None
            calls.clear()
            while True:
                page = delivery.list_failed(10, cursor, endpoint_id)
                pages.append(len(page.items))
                cursor = page.next_cursor
                if cursor is None:
                    break
            own = dict(calls)
            filtered, cursor = [], None
            while True:  # the filter over the global list, as before
                items, cursor = events.failed_page(10, cursor)
                filtered.append(sum(1 for e in items if endpoint_id in (e.get("failed_endpoints") or [])))
                if cursor is None:
                    break
            print(f"3. {endpoint_id}: own index pages {pages} ({own} for {len(pages)} pages); "
                  f"the global list filtered: pages {filtered}")

        for endpoint_id in (ends, steps):
            call("DELETE", f"/v1/webhook-endpoints/{endpoint_id}")

        # 4. a stale ring position
        again = new_endpoint(200)
        run("r", lambda: len(receivers[4].delivered()) >= sessions * 4)
        warm = dict(refused)
        refused.clear()
        delivery._ring_at.clear()  # the next batches come from an instance that never wrote the ring
        got = run("q", lambda: len(receivers[4].delivered()) >= sessions * 8)
        print(f"4. ring: refused UpdateItems {warm or 0} while one instance wrote it; {dict(refused) or 0} for "
              f"{messages} more webhooks from an instance that had not (calls {got})")
        read = store.get_item(records.stats_key(again)) or {}
        print(f"   attempts counted {read.get('attempts')} (expected {sessions * 8}), "
              f"ring position {read.get('recent_next')}")
        for receiver in receivers:
            receiver.stop()


if __name__ == "__main__":
    main()
