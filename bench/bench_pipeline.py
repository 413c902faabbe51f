"""End to end in the local stack (`make run`'s): from POST progress to the webhook captured by
the inbox, p50/p99 over 200 events, and the pipeline's throughput in events per second.

Latency is measured server-side: the capture's received_at minus the event's occurred_at
(same clock). The local runner polls every 0.1 s, as a Lambda event source polls on AWS.

    python bench/bench_pipeline.py [events] [seconds between requests, default 0.1]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import urllib.request
from typing import Any

from common import machine

os.environ["LOCAL_ACCESS_LOG"] = "0"
os.environ["LOCAL_INBOX_TOKEN"] = "bench"
os.environ["LOCAL_API_KEY"] = "ssk_bench_pipeline_admin_key_0001"
os.environ["WEBHOOK_EVENT_TYPES"] = "progress_update"


def call(method: str, url: str, body: Any = None) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers={"Content-Type": "application/json",
                                                             "X-Inbox-Token": "bench",
                                                             "Authorization": f"Bearer {os.environ['LOCAL_API_KEY']}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def main() -> None:
    from chalicelib.domain.clock import from_iso
    from local.stack import start

    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    pace = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1  # seconds between requests
    stack = start(port=0, moto_port=0)
    api = stack.api_url + "/v1"
    try:
        sessions, steps = 10, events // 10
        call("POST", f"{api}/manuals", {"manual_id": "m", "title": "t", "steps": [
            {"step_number": n, "title": f"s{n}"} for n in range(1, steps + 2)]})
        occurred: dict[str, str] = {}
        begin = time.perf_counter()
        for s in range(sessions):
            call("POST", f"{api}/sessions", {"session_id": f"s{s}", "user_id": "u", "manual_id": "m"})
        for step in range(1, steps + 1):
            for s in range(sessions):
                result = call("POST", f"{api}/sessions/s{s}/progress", {"user_id": "u", "current_step": step, "step_status": "DONE"})
                occurred[result["event_id"]] = result["session"]["last_activity_at"]
                time.sleep(pace)
        received: dict[str, str] = {}
        verified = 0
        deadline = time.monotonic() + 300
        while len(received) < len(occurred) and time.monotonic() < deadline:
            cursor, page = None, []
            while True:
                data = call("GET", f"{stack.inbox_url}?limit=100" + (f"&cursor={cursor}" if cursor else ""))
                page += data["items"]
                cursor = data["next_cursor"]
                if not cursor:
                    break
            received = {c["headers"]["webhook-id"]: c["received_at"] for c in page
                        if c["headers"].get("webhook-id") in occurred}
            verified = sum(1 for c in page if (c.get("signature") or {}).get("verified"))
            time.sleep(1)
        elapsed = time.perf_counter() - begin
        latencies = sorted((from_iso(received[e]) - from_iso(occurred[e])).total_seconds() for e in received)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        first = min(from_iso(t) for t in occurred.values())
        last = max(from_iso(t) for t in received.values())
        print(f"Machine: {machine()}\n")
        print(f"- events: {len(occurred)} sent, {len(received)} captured by the inbox, "
              f"{verified} with a verified signature")
        print(f"- latency POST progress -> webhook captured: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms (target p50 <= 500 ms)")
        print(f"- throughput: {len(received) / (last - first).total_seconds():.1f} events/s end to end "
              f"(one request at a time, {pace * 1000:.0f} ms apart; {elapsed:.1f} s in all)")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
