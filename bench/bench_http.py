"""Contention over HTTP: 32 threads, each reporting DONE for a different step of one 40-step
session at the same instant, on warm keep-alive connections to the local server (`make run`'s
stack, started here in a subprocess as `python -m local.stack`).

    python bench/bench_http.py [rounds]      (default 5 rounds; results: bench/RESULTS.md)

`concurrent_dones` is also what tests/e2e/test_local_stack.py runs once, so the benchmark and the
test measure the same thing.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    threads: int
    landed: int  # answered 200 without any client retry
    statuses: dict[int, int]
    completed_steps: list[int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    wall_ms: float


class Connection:
    """One keep-alive HTTP connection to the API with its key."""

    def __init__(self, base_url: str, key: str) -> None:
        where = urlsplit(base_url)
        self.prefix = where.path.rstrip("/")
        self.conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.conn.request(method, self.prefix + path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def concurrent_dones(base_url: str, key: str, prefix: str, threads: int = 32, steps: int = 40) -> Result:
    """`threads` DONE reports for steps 1..threads of one new `steps`-step session, sent at
    the same instant on connections opened (and used once) beforehand."""
    setup = Connection(base_url, key)
    manual_id, session_id = f"{prefix}-m", f"{prefix}-{uuid.uuid4().hex[:8]}"
    status, _ = setup.call("POST", "/v1/manuals", {"manual_id": manual_id, "title": "Contention", "steps": [
        {"step_number": n, "title": f"Step {n}", "content": "..."} for n in range(1, steps + 1)]})
    assert status in (200, 201), status
    status, _ = setup.call("POST", "/v1/sessions", {"session_id": session_id, "user_id": "u", "manual_id": manual_id})
    assert status == 201, status
    connections = [Connection(base_url, key) for _ in range(threads)]
    for connection in connections:  # warm: connected, and the key known to the server
        assert connection.call("GET", f"/v1/sessions/{session_id}")[0] == 200
    start = threading.Barrier(threads)

    def done(n: int) -> tuple[int, float]:
        start.wait()
        began = time.perf_counter()
        code, _ = connections[n].call("POST", f"/v1/sessions/{session_id}/progress",
                                      {"user_id": "u", "current_step": n + 1, "step_status": "DONE"})
        return code, time.perf_counter() - began

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(done, range(threads)))
    wall = time.perf_counter() - began
    for connection in connections:
        connection.close()
    session = setup.call("GET", f"/v1/sessions/{session_id}")[1]
    setup.close()
    latencies = sorted(t * 1000 for _, t in results)
    return Result(
        threads=threads, landed=sum(code == 200 for code, _ in results),
        statuses=dict(Counter(code for code, _ in results)),
        completed_steps=session["completed_steps"],
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        max_ms=latencies[-1], wall_ms=wall * 1000)


def start_local_stack() -> tuple[subprocess.Popen, str, str]:
    """`python -m local.stack` on free ports; (process, API base URL, admin key)."""
    key = "ssk_bench_http_admin_key_0001"
    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", "LOCAL_API_KEY": key, "LOCAL_ACCESS_LOG": "0",
           "PYTHONUNBUFFERED": "1"}
    for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "WEBHOOK_URL", "DELIVERY_QUEUE_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    api = None
    for line in proc.stdout:
        match = re.search(r"API\s+(http://\S+)/v1", line)
        api = api or (match.group(1) if match else None)
        if "Ctrl-C stops everything" in line:
            break
    assert api, "the local stack did not start"
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    return proc, api, key


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M}Z, commit {commit}, load average before: {load_average()}")
    proc, api, key = start_local_stack()
    try:
        print("\n| round | landed | statuses | p50 | p99 | max | wall |\n|---|---|---|---|---|---|---|")
        for n in range(1, rounds + 1):
            r = concurrent_dones(api, key, f"bench-{n}")
            assert r.completed_steps == list(range(1, 33)) or r.landed < 32, r
            print(f"| {n} | {r.landed}/{r.threads} | {r.statuses} | {r.p50_ms:.0f} ms | {r.p99_ms:.0f} ms "
                  f"| {r.max_ms:.0f} ms | {r.wall_ms:.0f} ms |", flush=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
