"""Per-call cost must not grow with the table: items read by the listing, the cleanup job's
query and the analytics reads at 1k and at 20k sessions (target ratio <= 1.1).

    python bench/bench_scaling.py [small] [large]
"""

from __future__ import annotations

import sys
from datetime import timedelta

from common import AUTH, ReadMeter, machine, stack


def seed(count: int) -> None:
    from chalicelib.db import sessions as session_items
    from chalicelib.db import table as store
    from chalicelib.domain.clock import to_iso, utcnow
    from chalicelib.domain.models import ManualCreate, Session
    from chalicelib.services import manuals

    body = ManualCreate(manual_id="bench", title="Bench", steps=[
        {"step_number": n, "title": f"Step {n}", "content": "..."} for n in range(1, 11)])
    manual, _ = manuals.create_manual(body)
    rev = manuals.revision(body)
    now = utcnow()
    items = []
    for n in range(count):
        # every session active and recently active: the idle job has nothing to do
        started = to_iso(now - timedelta(milliseconds=10 * (count - n)))  # all within 200 s
        session = Session(session_id=f"s-{n:06d}", user_id=f"u-{n // 2}", manual_id="bench",
                          manual_rev=rev, status="active" if n % 4 else "completed", current_step=1,
                          total_steps=10, completed_steps=[], started_at=started,
                          ended_at=None if n % 4 else started, last_activity_at=started,
                          version=1, event_seq=1)
        items.append(session_items.item(session))
    store.batch_write(puts=items)
    # the same analytics counters for every size: their number is fixed by design
    counters = [{"PK": "STATS#GLOBAL", "SK": f"SHARD#{n}", "sessions_active": count} for n in range(4)]
    counters += [{"PK": "STATS#MANUALS", "SK": f"m-{m}#{n}", "manual_id": f"m-{m}", "started": 1}
                 for m in range(10) for n in range(4)]
    hour = now.replace(minute=0, second=0, microsecond=0)
    counters += [{"PK": f"STATS#HOUR#{(hour - timedelta(hours=h)):%Y-%m-%dT%H}", "SK": f"SHARD#{n}",
                  "messages": 1} for h in range(24) for n in range(4)]
    store.batch_write(puts=counters)


def measure(count: int) -> dict[str, tuple[int, int]]:
    from chalice.test import Client

    from app import app
    from chalicelib.jobs import cleanup

    results: dict[str, tuple[int, int]] = {}
    with stack():
        seed(count)
        meter = ReadMeter()
        calls = {
            "GET /v1/sessions?status=active": lambda c: c.http.get("/v1/sessions?status=active&limit=20", headers=AUTH),
            "GET /v1/sessions?user_id=u-7": lambda c: c.http.get("/v1/sessions?user_id=u-7&limit=20", headers=AUTH),
            "cleanup job (idle query, nothing idle)": lambda c: cleanup.run(),
            "GET /v1/analytics/overview": lambda c: c.http.get("/v1/analytics/overview", headers=AUTH),
            "GET /v1/analytics/popular-manuals": lambda c: c.http.get("/v1/analytics/popular-manuals", headers=AUTH),
            "GET /v1/analytics/recent-activity?hours=24": lambda c: c.http.get("/v1/analytics/recent-activity?hours=24", headers=AUTH),
        }
        with Client(app) as client:
            for name, call in calls.items():
                meter.reset()
                call(client)
                results[name] = (meter.items_read, sum(meter.calls.values()))
    return results


def main() -> None:
    small, large = (int(a) for a in (sys.argv[1:3] if len(sys.argv) > 2 else ("1000", "20000")))
    a, b = measure(small), measure(large)
    print(f"Machine: {machine()}\n")
    print(f"| call | items read at {small:,} | at {large:,} | ratio | round trips |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for name in a:
        ratio = (b[name][0] / a[name][0]) if a[name][0] else 1.0
        worst = max(worst, ratio)
        print(f"| {name} | {a[name][0]} | {b[name][0]} | {ratio:.2f} | {b[name][1]} |")
    print(f"\nworst ratio {worst:.2f} (target <= 1.1): {'PASS' if worst <= 1.1 else 'FAIL'}")


if __name__ == "__main__":
    main()
