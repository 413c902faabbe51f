"""The replay index's backfill (issue #18): what `endpoints backfill-replay-index` costs per
event, in-process on moto.

Sessions are run through the API, then every event item is rewritten the way the version
before webhook endpoints stored it (no GSI4 window entry; tests/pipeline/test_replay_backfill.py
`stored_the_old_way`, a delivered webhook with its one-attempt log). The backfill then runs to
the end in steps of 100 items. Counted: the DynamoDB requests by operation, the items the Scan
evaluated, and the wall time; computed from the stored items' sizes (DynamoDB's rules,
on-demand): the Scan's read units (eventually consistent: 0.5 per 4 KB of the items evaluated,
whatever the filter and projection keep) and the write units (the UpdateItem: one per KB of
the item, rounded up; the new GSI4 entry: one, its projection being a few short attributes).
Moto's speed says little about DynamoDB's: the units are the point, not the time.

    python bench/bench_replay_backfill.py [sessions, default 150] [steps, default 3]
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

os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # the requests' log lines would dominate the time
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"


def main(sessions: int, steps: int) -> dict[str, Any]:
    with stack():
        from chalice.test import Client

        import app as app_module
        from chalicelib.db import table as store
        from chalicelib.jobs import replay_index
        from tests.pipeline.test_replay_backfill import raw_items, stored_the_old_way

        client = Client(app_module.app)

        def call(method: str, path: str, body: Any = None) -> int:
            response = client.http.request(method, path, headers={"Content-Type": "application/json", **AUTH},
                                           body=json.dumps(body) if body is not None else b"")
            return int(response.status_code)

        assert call("POST", "/v1/manuals", {"manual_id": "m", "title": "t", "steps": [
            {"step_number": n, "title": f"Step {n}", "content": "Do the thing. " * 5} for n in range(1, steps + 1)]}) == 201
        for s in range(sessions):
            assert call("POST", "/v1/sessions", {"session_id": f"session-{s:05d}", "user_id": f"user-{s % 17}",
                                                 "manual_id": "m"}) == 201
            for step in range(1, steps + 1):
                assert call("POST", f"/v1/sessions/session-{s:05d}/progress",
                            {"user_id": f"user-{s % 17}", "current_step": step, "step_status": "DONE"}) == 200
        for item in raw_items():
            if item.get("type") == "event":
                store.get_client().put_item(TableName=store.table_name(), Item=store.to_item(stored_the_old_way(item)))
        items = raw_items()
        events = [i for i in items if i.get("type") == "event"]
        sizes = sorted(store.item_size(e) for e in events)
        table_bytes = sum(store.item_size(i) for i in items)

        calls: Counter = Counter()
        store.get_client().meta.events.register(
            "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
        scanned = indexed = 0
        cursor = None
        started = time.perf_counter()
        while True:
            step = replay_index.step(cursor, page_size=100)
            scanned, indexed, cursor = scanned + step.scanned, indexed + step.indexed, step.next_cursor
            if step.done:
                break
        seconds = time.perf_counter() - started
        after = [i for i in raw_items() if i.get("type") == "event"]
        assert indexed == len(events) and all("GSI4PK" in i for i in after)
        # an update is billed on the larger of the item before and after it: after (the keys added)
        sizes_after = sorted(store.item_size(e) for e in after)

        read_units = 0.5 * math.ceil(table_bytes / 4096)  # at least; each page rounds up on its own
        write_units = sum(math.ceil(size / 1024) + 1 for size in sizes_after)
        return {
            "machine": machine(), "sessions": sessions, "steps": steps, "events": len(events),
            "items_in_table": len(items), "items_scanned": scanned, "table_kb": round(table_bytes / 1024, 1),
            "event_item_bytes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "max": sizes[-1]},
            "event_item_bytes_after": {"min": sizes_after[0], "median": sizes_after[len(sizes_after) // 2],
                                       "max": sizes_after[-1]},
            "dynamodb_requests": dict(calls), "seconds_on_moto": round(seconds, 2),
            "events_per_second_on_moto": round(len(events) / seconds),
            "read_units": read_units, "read_units_per_event": round(read_units / len(events), 3),
            "write_units": write_units, "write_units_per_event": round(write_units / len(events), 2),
        }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    print(json.dumps(main(*(args + [150, 3][len(args):])), indent=2))
