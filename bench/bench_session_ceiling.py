"""One session's own ceiling, over HTTP against `make run`'s stack (issue #17).

    python bench/bench_session_ceiling.py [WRITERS=1,2,4,8,16,32] [UPDATES=120]

For each number of concurrent writers, a fresh session on a manual of UPDATES steps gets
UPDATES progress reports (DONE on every step, out of order: writer w reports steps w, w+K,
...), all at once, with no idempotency key (each is a real write). Every report should land:
a writer that loses the session's version race re-reads and retries inside the request (the
service's retry budget, UPDATE_RETRY_SECONDS); only after that budget does a client see 409
`concurrent_update` (with Retry-After), or 503 when the store throttles. Printed per level:
accepted updates/s on the one session item, p50/p99 latency, the other answers, and whether
the session ended with every step DONE (completed).

The local stack's rate limits are turned off for this run (LOCAL_RATE_LIMITS=0): one session
is measured, not the per-key limit. moto answers one call at a time and the machine's cores
are shared with the stack, so the numbers are this machine's, not AWS's (bench/capacity.py
states the AWS arithmetic).
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine

from tests.conftest import LOCAL_ADMIN_KEY, StackProcess


class Client:
    """One keep-alive connection (one per writer thread)."""

    def __init__(self, base: str, key: str) -> None:
        parts = urlsplit(base)
        self.prefix = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.connection.request(method, self.prefix + path, body=None if body is None else json.dumps(body),
                                headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {}), dict(response.getheaders())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def level(base: str, writers: int, updates: int, manual_id: str, session_id: str) -> dict[str, Any]:
    admin = Client(base, LOCAL_ADMIN_KEY)
    status, body, _ = admin.call("POST", "/v1/sessions", {"session_id": session_id, "user_id": "u",
                                                        "manual_id": manual_id})
    assert status == 201, (status, body)
    latencies: list[float] = []
    answers: dict[int, int] = {}
    retry_after: set[str] = set()
    lock = threading.Lock()
    start = threading.Barrier(writers + 1)

    def writer(w: int) -> None:
        client = Client(base, LOCAL_ADMIN_KEY)
        start.wait()
        for step in range(w + 1, updates + 1, writers):
            began = time.perf_counter()
            status, _, headers = client.call("POST", f"/v1/sessions/{session_id}/progress",
                                             {"user_id": "u", "current_step": step, "step_status": "DONE"})
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                answers[status] = answers.get(status, 0) + 1
                if status != 200 and "Retry-After" in headers:
                    retry_after.add(headers["Retry-After"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    status, session, _ = admin.call("GET", f"/v1/sessions/{session_id}")
    assert status == 200, (status, session)
    return {"writers": writers, "elapsed": elapsed, "accepted": answers.get(200, 0), "answers": answers,
            "p50": statistics.median(latencies), "p99": percentile(latencies, 0.99), "retry_after": retry_after,
            "done_steps": len(session["completed_steps"]), "status": session["status"]}


def main(writer_levels: str = "1,2,4,8,16,32", updates: int = 120) -> None:
    stack = StackProcess({"LOCAL_RATE_LIMITS": "0"})
    rows = []
    try:
        base = stack.urls["api"]
        admin = Client(base, LOCAL_ADMIN_KEY)
        manual_id = "ceiling"
        status, body, _ = admin.call("POST", "/v1/manuals", {"manual_id": manual_id, "title": "Ceiling", "steps": [
            {"step_number": n, "title": f"Step {n}"} for n in range(1, updates + 1)]})
        assert status == 201, (status, body)
        level(base, 1, min(updates, 10), manual_id, "ceiling-warm")  # warm: caches, connections, bytecode
        for writers in (int(w) for w in writer_levels.split(",")):
            rows.append(level(base, writers, updates, manual_id, f"ceiling-{writers}"))
    finally:
        stack.stop()
    print(f"machine: {machine()}")
    print(f"one session, {updates} DONE reports per level (one per step, out of order), all at once; "
          "local stack over HTTP, rate limits off")
    print("| writers | accepted/s on one session | p50 | p99 | answers | session after |\n|---|---|---|---|---|---|")
    for r in rows:
        others = {k: v for k, v in r["answers"].items() if k != 200}
        extra = f"; Retry-After {sorted(r['retry_after'])}" if r["retry_after"] else ""
        print(f"| {r['writers']} | {r['accepted'] / r['elapsed']:.1f} | {r['p50']:.0f} ms | {r['p99']:.0f} ms | "
              f"{r['accepted']} x 200, other: {others or 'none'}{extra} | {r['status']}, "
              f"{r['done_steps']}/{updates} steps DONE |")


if __name__ == "__main__":
    main(*(int(a) if a.isdigit() else a for a in sys.argv[1:]))  # type: ignore[arg-type]
