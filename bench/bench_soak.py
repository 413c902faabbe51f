"""The webhook soak of tests/pipeline/test_soak.py, longer: `make run`'s stack over HTTP, a receiver
that fails at random (500s, resets, timeouts, 429 + Retry-After), and the invariant checked
over every event (delivered in order, or listed as failed; nothing unlisted in the DLQ; a
redrive delivers every listed one). Prints the numbers for bench/RESULTS.md.

    python bench/bench_soak.py [sessions=40] [steps=23] [ok=0.5] [schedule=0,1,0,1,2]
"""

from __future__ import annotations

import sys
import time

from common import machine

from tests.soak import run_soak


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 23
    ok = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    schedule = sys.argv[4] if len(sys.argv) > 4 else "0,1,0,1,2"
    started = time.monotonic()
    result = run_soak(sessions=sessions, steps=steps, seed=11, ok=ok, schedule=schedule, timeout=0.3,
                      threads=8, settle_seconds=600)
    print(f"Machine: {machine()}\n")
    print(f"- {result.summary()}")
    print(f"- whole run {time.monotonic() - started:.0f} s")
    for violation in result.violations[:20]:
        print("  VIOLATION", violation)
    sys.exit(1 if result.violations else 0)


if __name__ == "__main__":
    main()
