"""One key floods, another key's latency: the local stack (as `make run` runs it, a subprocess)
over loopback, with the local gateway's per-key limits (local/limits.py).

  - unloaded: the quiet key sends `requests` GETs of one session, one at a time, 20 a second
    (a busy agent; its default limit is 50/s);
  - flooded: the same, while `flooders` threads send the flooding key's requests as fast as
    the stack answers, for as long as the quiet key's run lasts. The flooding key has limits of
    its own (POST /v1/keys with rate_per_second and burst), so most of its requests are
    answered 429 by the gateway before they take one of the API's turns.

Reports the quiet key's p50/p99 in both runs and their ratio (goal: p99 within 2x), and what
the flooding key got (200s, 429s, their rate). Every connection is kept alive, as an agent's
HTTP client does.

Alone and flooded alternate `rounds` times (the machine's load drifts; the latencies of all
rounds are pooled), and the local stack process's CPU time is read in each phase (Linux /proc).

    python bench/bench_rate_limits.py [requests=300] [flooders=8] [flood_rate=5] [refusal_delay_ms=100] [rounds=1]
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from common import machine

from tests.conftest import LOCAL_ADMIN_KEY, StackProcess


class Client:
    def __init__(self, base: str, key: str) -> None:
        parts = urlsplit(base)
        self.prefix, self.key = parts.path, key
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body) if body is not None else None
        self.connection.request(method, self.prefix + path, body=payload, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        response = self.connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


QUIET_RATE = 20.0  # the quiet key's requests per second: a busy agent, well under its limit


def quiet_run(client: Client, path: str, requests: int) -> list[float]:
    latencies = []
    start = time.perf_counter()
    for n in range(requests):
        time.sleep(max(0.0, start + n / QUIET_RATE - time.perf_counter()))
        started = time.perf_counter()
        status, body = client.call("GET", path)
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200, (status, body)
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), the local stack's cost."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(requests: int = 300, flooders: int = 8, flood_rate: float = 5.0, refusal_delay_ms: int = 100,
         rounds: int = 1) -> None:
    stack = StackProcess({"LOCAL_REFUSAL_DELAY_MS": str(refusal_delay_ms)})
    loads: list[float] = [os.getloadavg()[0]]
    try:
        base = stack.urls["api"]
        admin = Client(base, LOCAL_ADMIN_KEY)
        status, _ = admin.call("POST", "/v1/manuals", {"manual_id": "bench-limits", "title": "Bench",
                                                       "steps": [{"step_number": 1, "title": "A", "content": "a"}]})
        assert status in (200, 201), status
        quiet_key = admin.call("POST", "/v1/keys", {"scopes": ["agent"], "name": "quiet"})[1]["key"]
        flood_key = admin.call("POST", "/v1/keys", {"scopes": ["agent"], "name": "flood",
                                                    "rate_per_second": flood_rate, "burst": int(flood_rate * 2)})[1]["key"]
        quiet = Client(base, quiet_key)
        assert quiet.call("POST", "/v1/sessions", {"session_id": "bench-limits-s", "user_id": "u",
                                                   "manual_id": "bench-limits"})[0] in (200, 201)
        path = "/v1/sessions/bench-limits-s"
        quiet_run(quiet, path, 30)  # warm: caches, connections
        unloaded: list[float] = []
        flooded: list[float] = []
        per_round: list[tuple[float, float]] = []
        counts: dict[int, int] = {}
        lock = threading.Lock()
        elapsed = 0.0
        cpu_alone = cpu_flooded = 0.0
        for _ in range(rounds):  # alone and flooded interleaved: the machine's load drifts
            before = cpu_seconds(stack.proc.pid)
            alone = quiet_run(quiet, path, requests)
            cpu_alone += cpu_seconds(stack.proc.pid) - before
            stop = threading.Event()

            def flood(stop: threading.Event = stop) -> None:
                client = Client(base, flood_key)
                while not stop.is_set():
                    status, _ = client.call("GET", path)
                    with lock:
                        counts[status] = counts.get(status, 0) + 1

            threads = [threading.Thread(target=flood, daemon=True) for _ in range(flooders)]
            before = cpu_seconds(stack.proc.pid)
            for thread in threads:
                thread.start()
            time.sleep(1.0)  # the flood is at full speed before the quiet key starts
            started = time.monotonic()
            busy = quiet_run(quiet, path, requests)
            elapsed += time.monotonic() - started + 1
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            cpu_flooded += cpu_seconds(stack.proc.pid) - before
            loads.append(os.getloadavg()[0])
            unloaded += alone
            flooded += busy
            per_round.append((percentile(alone, 99), percentile(busy, 99)))
    finally:
        stack.stop()

    def row(name: str, latencies: list[float]) -> str:
        return (f"| {name} | {statistics.median(latencies):.1f} ms | {percentile(latencies, 99):.1f} ms | "
                f"{max(latencies):.1f} ms |")

    total = sum(counts.values())
    ratio = percentile(flooded, 99) / percentile(unloaded, 99)
    print(f"machine: {machine()}; load average (1 min) {min(loads):.1f}-{max(loads):.1f} during the run")
    print(f"quiet key: {requests} GETs one at a time, {QUIET_RATE:g}/s, {rounds} round(s) alone then flooded; "
          f"flooding key: {flooders} threads, its own limit {flood_rate:g}/s burst {int(flood_rate * 2)}; "
          f"429s held {refusal_delay_ms} ms (LOCAL_REFUSAL_DELAY_MS)")
    print("| quiet key | p50 | p99 | max |\n|---|---|---|---|")
    print(row("alone", unloaded))
    print(row("while the other key floods", flooded))
    print(f"p99 ratio flooded/alone: {ratio:.2f} (goal <= 2); per round: "
          + ", ".join(f"{a:.1f} -> {b:.1f} ms ({b / a:.2f})" for a, b in per_round))
    print(f"flooding key: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s): "
          f"{counts.get(200, 0)} answered 200, {counts.get(429, 0)} answered 429, "
          f"other: { {k: v for k, v in counts.items() if k not in (200, 429)} }")
    print(f"local stack CPU: {cpu_alone:.1f} s in the phases alone, {cpu_flooded:.1f} s in the flooded ones "
          f"(each {requests / QUIET_RATE:.0f} s, the flooded ones 1 s more): the flood cost about "
          f"{(cpu_flooded - cpu_alone) / elapsed * 100:.0f}% of a core")


if __name__ == "__main__":
    main(*(float(a) if "." in a else int(a) for a in sys.argv[1:]))  # type: ignore[arg-type]
