"""bench/bench_cost.py, which bench/RESULTS.md quotes, still runs against the shipped handlers
(on a tiny workload: the recorded numbers come from `python bench/bench_cost.py 200 10`), and
the new handlers still cost less than today's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cost_bench_runs_and_the_new_handlers_cost_less() -> None:
    run = subprocess.run([sys.executable, "bench/bench_cost.py", "4", "2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout

    def row(label: str) -> tuple[float, float]:
        match = re.search(rf"^\| \**{re.escape(label)}\** \| \**([0-9.]+)\** \| \**([0-9.]+)\** \|$", out, re.M)
        assert match, (label, out[-3000:])
        return float(match[1]), float(match[2])

    old, new = row("analytics: DynamoDB write units")
    assert new < old / 4, (old, new)
    old, new = row("feedback: SQS requests")
    assert new < old, (old, new)
    old, new = row("total")
    assert 3.5 < new < old, (old, new)  # API Gateway alone is $3.50
