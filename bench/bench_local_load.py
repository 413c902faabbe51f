"""The local stack under load and at rest, as `make run` runs it (a subprocess), over HTTP.

  - idle: the stack's CPU use (user + system, from /proc) over a quiet window, and how many
    TCP connections it opens a second to its moto server;
  - load: `threads` clients post progress reports as fast as the local API answers, for
    `seconds`; every report's webhook is captured by the stack's own inbox, and the lag from
    the change (occurred_at) to the capture is measured, with the pipeline's throughput.

    python bench/bench_local_load.py [seconds=60] [threads=8] [idle_seconds=30]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from common import machine

from tests.conftest import LOCAL_ADMIN_KEY, StackProcess


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {LOCAL_ADMIN_KEY}",
                                                             **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its children (the moto server runs in one)."""
    total = 0.0
    pids = [pid] + [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    for one in pids:
        fields = open(f"/proc/{one}/stat").read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def moto_connections(pid: int, moto_port: int) -> int:
    """Established TCP connections from the process to its moto server, right now."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
              if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")}
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        parts = line.split()
        remote_port = int(parts[2].split(":")[1], 16)
        if remote_port == moto_port and parts[9] in inodes and parts[3] == "01":
            count += 1
    return count


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    idle_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    stack = StackProcess({"WEBHOOK_EVENT_TYPES": "progress_update"})
    pid = stack.proc.pid
    api = stack.urls["api"] + "/v1"
    moto_port = int(next(line.split()[1] for line in stack.lines if line.strip().startswith("moto")).rsplit(":", 1)[1])
    try:
        print(f"Machine: {machine()}\n")
        # ---- idle ---------------------------------------------------------------------------
        time.sleep(5)  # let start-up settle
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(idle_seconds)
        idle = (cpu_seconds(pid) - before) / (time.monotonic() - started)
        print(f"- idle: {idle * 100:.1f}% of a core over {idle_seconds:.0f} s; "
              f"{moto_connections(pid, moto_port)} open connections to moto (kept alive)")
        # ---- load ---------------------------------------------------------------------------
        steps = 1000
        assert call("POST", f"{api}/manuals", {"manual_id": "load", "title": "Load", "steps": [
            {"step_number": n, "title": f"s{n}"} for n in range(1, steps + 1)]})[0] == 201
        occurred: dict[str, str] = {}
        errors: list[str] = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def client(n: int) -> None:
            session = 0
            while time.monotonic() < stop:
                sid = f"load-{n}-{session}"
                call("POST", f"{api}/sessions", {"session_id": sid, "user_id": "u", "manual_id": "load"})
                for step in range(1, steps):
                    if time.monotonic() >= stop:
                        return
                    status, body = call("POST", f"{api}/sessions/{sid}/progress",
                                        {"user_id": "u", "current_step": step, "step_status": "ONGOING"})
                    with lock:
                        if status == 200:
                            occurred[body["event_id"]] = body["session"]["last_activity_at"]
                        else:
                            errors.append(f"{status} {body}")
                session += 1

        begin_cpu = cpu_seconds(pid)
        begin = time.monotonic()
        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        sent_for = time.monotonic() - begin
        from chalicelib.domain.clock import from_iso

        received: dict[str, str] = {}
        deadline = time.monotonic() + 600
        while len(received) < len(occurred) and time.monotonic() < deadline:
            cursor, page = None, []
            while True:
                status, data = call("GET", f"{stack.urls['webhooks']}?limit=100" + (f"&cursor={cursor}" if cursor else ""),
                                    headers={"X-Inbox-Token": "test-token"})
                page += data["items"]
                cursor = data["next_cursor"]
                if not cursor:
                    break
            received = {c["headers"]["webhook-id"]: c["received_at"] for c in page
                        if c["headers"].get("webhook-id") in occurred}
            # reading every capture is heavy work for moto: not too often (it would slow the
            # pipeline it measures); the lag comes from the captures' own timestamps
            time.sleep(5)
        drained_for = time.monotonic() - begin
        load_cpu = (cpu_seconds(pid) - begin_cpu) / drained_for
        lags = sorted((from_iso(received[e]) - from_iso(occurred[e])).total_seconds() for e in received)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else float("nan")
        print(f"- load: {threads} client threads for {seconds:.0f} s: {len(occurred)} progress reports accepted "
              f"({len(occurred) / sent_for:.1f}/s), {len(errors)} refused; {len(received)} webhooks captured")
        print(f"- webhook lag (change -> captured by the inbox): p50 {statistics.median(lags):.2f} s, "
              f"p99 {p99:.2f} s, max {lags[-1]:.2f} s")
        print(f"- pipeline drained {drained_for - sent_for:.1f} s after the last report; "
              f"{len(received) / drained_for:.1f} webhooks/s overall; stack CPU {load_cpu * 100:.0f}% of a core")
        if errors:
            print("  first errors:", errors[:3])
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
