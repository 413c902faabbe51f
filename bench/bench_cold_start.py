"""Cold `import app` from the unzipped deployment package, as a Lambda cold start pays it.

    python bench/bench_cold_start.py [ROUNDS]          (make bench-cold-start)

The zip from `make package` is unzipped into two read-only directories: as shipped (with its
unchecked-hash bytecode) and with every __pycache__ removed (what the zip held before it
shipped bytecode: each import compiles every module, and a read-only /var/task keeps nothing).
Each round starts a fresh interpreter of the environment that holds only what Lambda's
python3.11 runtime provides (.venv-lambda: boto3 and its dependencies) and times `import app`
in it, and `import boto3` for scale. Rounds alternate them so that load on the machine
falls on each alike; medians are printed as a Markdown section for bench/RESULTS.md.

The models build their validators on first use (defer_build), and `import app` imports neither
pydantic nor the models (chalicelib/api/lazy.py), so a cold start's first request pays for
them: the last row times one request body validated right after `import boto3, app` (in the
same process: importing pydantic and the models, then building one validator), so that work
moved out of the import stays in sight; bench/bench_cold_first_request.py counts a whole first
request.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine  # noqa: E402 - bench/ is on sys.path when run as a script

from infra.rehearsal.lambda_run import read_only_command  # noqa: E402
from infra.rehearsal.rehearse import LAMBDA_PYTHON  # noqa: E402

# wall time, and the process's CPU time (less sensitive to other work on the machine)
TIMED = ("import sys, time; sys.path.insert(0, {root!r}); {setup}; wall, cpu = time.perf_counter(), "
         "time.process_time(); {statement}; "
         "print((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)")
# a progress report's body, validated as its route does: the first validation builds the model
FIRST_REQUEST = ("from chalicelib.domain.models import ProgressIn; "
                 "ProgressIn.model_validate({'user_id': 'u-1', 'current_step': 1, 'step_status': 'DONE'})")


def once(root: Path, statement: str, setup: str = "pass") -> tuple[float, float]:
    code = TIMED.format(root=str(root), statement=statement, setup=setup)
    argv = read_only_command(root, [str(LAMBDA_PYTHON), "-I", "-c", code])
    run = subprocess.run(argv, capture_output=True, text=True, cwd=root, check=True,
                         env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"})
    wall, cpu = run.stdout.split()
    return float(wall), float(cpu)


def breakdown(root: Path, runs: int = 5) -> list[tuple[str, float]]:
    """Median self time (-X importtime) of `import app`, per top-level package: what the
    package's code brings in, the standard library as one line."""
    shipped = {p.name.removesuffix(".py") for p in root.iterdir()}
    per_run = []
    for _ in range(runs):
        argv = read_only_command(root, [str(LAMBDA_PYTHON), "-I", "-X", "importtime", "-c",
                                        f"import sys; sys.path.insert(0, {str(root)!r}); import app"])
        err = subprocess.run(argv, capture_output=True, text=True, cwd=root, check=True).stderr
        totals: dict[str, float] = {}
        for line in err.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if len(parts) != 3 or not parts[0].strip().isdigit():
                continue
            top = parts[2].strip().split(".")[0]
            group = top if top in shipped else "standard library"
            totals[group] = totals.get(group, 0.0) + int(parts[0]) / 1000
        per_run.append(totals)
    groups = {g for run in per_run for g in run}
    medians = [(g, statistics.median(run.get(g, 0.0) for run in per_run)) for g in groups]
    return sorted(medians, key=lambda item: -item[1])


def main(rounds: int) -> None:
    from infra.package import package

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        base = Path(scratch)
        archive = package(base / "out") / "deployment.zip"
        roots = {name: base / name for name in ("bytecode", "sources", "empty")}
        for name in ("bytecode", "sources"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(roots[name])
        for cache in roots["sources"].rglob("__pycache__"):
            shutil.rmtree(cache)
        roots["empty"].mkdir()
        times: dict[str, list[tuple[float, float]]] = {"bytecode": [], "sources": [], "boto3": [],
                                                       "both": [], "first": []}
        try:
            for _ in range(rounds):
                times["bytecode"].append(once(roots["bytecode"], "import app"))
                times["sources"].append(once(roots["sources"], "import app"))
                times["boto3"].append(once(roots["empty"], "import boto3"))
                # every function's first AWS call imports boto3 too: what app adds to that
                times["both"].append(once(roots["bytecode"], "import boto3, app"))
                times["first"].append(once(roots["bytecode"], FIRST_REQUEST, setup="import boto3, app"))
            parts = breakdown(roots["bytecode"])
        finally:
            subprocess.run(["chmod", "-R", "u+w", scratch], check=False)
        size = archive.stat().st_size
    load_after = os.getloadavg()
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    idle = max(load_before[0], load_after[0]) < 0.5
    rows = {"bytecode": "`import app`, zip with bytecode",
            "sources": "`import app`, same zip without bytecode",
            "boto3": "`import boto3` (the runtime's own)",
            "both": "`import boto3, app` (zip with bytecode)",
            "first": "then the first ProgressIn validated (after `import boto3, app`; imports pydantic and the models)"}
    def ms(value: float) -> str:  # a tenth of a millisecond where the value is that small
        return f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    table = "\n".join(f"| {label} | {ms(wall[k])} ms | {ms(cpu[k])} ms | "
                      f"{ms(min(w for w, _ in times[k]))}-{ms(max(w for w, _ in times[k]))} ms |"
                      for k, label in rows.items())
    print(f"""## Cold start: `python bench/bench_cold_start.py {rounds}`

Machine: {machine()}; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after
({"idle" if idle else "not idle: other work was running; CPU times and ratios say more than wall times"}).
Interpreter: .venv-lambda (Python {sys.version.split()[0]}, boto3 only); package read-only;
{rounds} rounds, a fresh process each; zip {size / 1e6:.2f} MB.

| cold import (and first use) | median wall | median CPU | wall range |
|---|---|---|---|
{table}

- with bytecode / without: {wall['bytecode'] / wall['sources']:.2f}x wall, {cpu['bytecode'] / cpu['sources']:.2f}x CPU (goal: at most 0.6x)
- with bytecode / `import boto3`: {wall['bytecode'] / wall['boto3']:.2f}x wall, {cpu['bytecode'] / cpu['boto3']:.2f}x CPU (goal: at most 1.0x)
- what `import app` adds once boto3 is imported (the modules they share load once):
  {wall['both'] - wall['boto3']:.0f} ms wall, {cpu['both'] - cpu['boto3']:.0f} ms CPU
- what the first request's validation adds (pydantic and the models imported, one validator built):
  {ms(wall['first'])} ms wall, {ms(cpu['first'])} ms CPU (last row)

Where `import app` spends its time (with bytecode; -X importtime self times, median of 5,
which inflate the total; modules that pydantic imports through importlib, such as
pydantic.main and pydantic.fields, are not listed by -X importtime and count as the self
time of the module that first used them, chalicelib.domain.models):

| package | ms | share |
|---|---|---|
""" + "\n".join(f"| {name} | {ms:.0f} | {ms / sum(m for _, m in parts):.0%} |"
                for name, ms in parts if ms >= 1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
