"""A cold API function's import and its first request, as Lambda runs them (issue #16).

    python bench/bench_cold_first_request.py [ROUNDS] [TREE ...]

The cold start of the API function is `import app`, then the first request; importing less
at cold start only moves work into that request unless it is work no request needs. So this
bench measures both, in a fresh process each time: `import app`, then one POST .../progress
(a DONE report on a new session: the API's most frequent write), called through the Chalice
handler with an API Gateway proxy event (the authorizer's context in it), against moto in a
process of its own (local/moto_server.py: its work is not counted) with the stack from infra/.

Each TREE (default: this repository) is a directory holding app.py and chalicelib/; its
dependencies come from the deployment zip (`python -m infra.package`, unzipped once, our own
code removed), and the interpreter is the one that holds only Lambda's boto3 (.venv-lambda).
Counted: instructions (valgrind's callgrind, when installed: deterministic, so a busy machine
does not blur them), and wall and CPU times (median of ROUNDS).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine  # noqa: E402 - bench/ is on sys.path when run as a script

from infra.rehearsal.rehearse import LAMBDA_PYTHON  # noqa: E402

PROGRAM = """
import json, os, sys, time
sys.path[:0] = [{tree!r}, {deps!r}]
wall, cpu = time.perf_counter(), time.process_time()
import app
imported = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
if {request!r}:
    answer = app.app(json.loads(os.environ["BENCH_EVENT"]), None)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["session"]["completed_steps"] == [1], answer
print(*imported, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
"""


def progress_event(session_id: str) -> dict[str, Any]:
    """POST /v1/sessions/{id}/progress as API Gateway's proxy integration sends it, behind the
    authorizer (an agent key's context)."""
    path = f"/v1/sessions/{session_id}/progress"
    headers = {"Host": "bench.execute-api.us-east-1.amazonaws.com", "Content-Type": "application/json",
               "Authorization": "Bearer ssk_bench"}
    return {
        "resource": "/v1/sessions/{session_id}/progress", "path": path, "httpMethod": "POST",
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"session_id": session_id}, "stageVariables": None,
        "requestContext": {
            "resourcePath": "/v1/sessions/{session_id}/progress", "httpMethod": "POST",
            "path": f"/api{path}", "stage": "api", "accountId": "000000000000", "apiId": "bench",
            "protocol": "HTTP/1.1", "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
            "domainName": headers["Host"], "resourceId": "bench",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
            "authorizer": {"key_id": "bench-agent", "scopes": "agent", "user_id": ""},
        },
        "body": json.dumps({"user_id": "user-1", "current_step": 1, "step_status": "DONE"}),
        "isBase64Encoded": False,
    }


class Fixture:
    """moto in its own process, the stack deployed, one manual and a fresh session per run."""

    def __init__(self) -> None:
        import boto3

        from infra.deploy import deploy
        from local.moto_server import MotoProcess

        self.env = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                    "POWERTOOLS_METRICS_DISABLED": "true"}
        os.environ.update(self.env)
        self.moto = MotoProcess()
        os.environ["AWS_ENDPOINT_URL"] = self.env["AWS_ENDPOINT_URL"] = self.moto.url
        stack = deploy(boto3.Session())
        self.env.update(stack.environment())
        os.environ.update(self.env)
        from chalicelib.domain.models import ManualCreate
        from chalicelib.services import manuals

        manuals.create_manual(ManualCreate.model_validate({
            "manual_id": "bench-manual", "title": "Bench",
            "steps": [{"step_number": n, "title": f"Step {n}", "content": "..."} for n in (1, 2, 3)]}))

    def new_session(self) -> str:
        from chalicelib.domain.models import SessionCreate
        from chalicelib.services import sessions

        session, _ = sessions.create_session(SessionCreate.model_validate(
            {"user_id": "user-1", "manual_id": "bench-manual"}))
        return session.session_id

    def argv(self, tree: Path, deps: Path, request: bool) -> tuple[list[str], dict[str, str]]:
        code = PROGRAM.format(tree=str(tree), deps=str(deps), request=request)
        env = {"PATH": os.environ.get("PATH", ""), **self.env}
        if request:
            env["BENCH_EVENT"] = json.dumps(progress_event(self.new_session()))
        return [str(LAMBDA_PYTHON), "-I", "-c", code], env

    def timed(self, tree: Path, deps: Path) -> list[float]:
        argv, env = self.argv(tree, deps, request=True)
        run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/")
        if run.returncode:
            raise SystemExit(run.stderr)
        return [float(v) for v in run.stdout.splitlines()[-1].split()]  # after the function's log lines

    def instructions(self, tree: Path, deps: Path, request: bool) -> int:
        argv, env = self.argv(tree, deps, request)
        run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                             capture_output=True, text=True, env=env, cwd="/")
        if run.returncode:
            raise SystemExit(run.stderr[-3000:])
        collected = [line for line in run.stderr.splitlines() if "Collected" in line]
        return int(collected[-1].split()[-1])

    def stop(self) -> None:
        self.moto.stop()


def dependencies(scratch: Path) -> Path:
    """The deployment zip's third-party packages (our code removed), bytecode included."""
    from infra.package import package

    archive = package(scratch / "out") / "deployment.zip"
    deps = scratch / "deps"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(deps)
    (deps / "app.py").unlink()
    shutil.rmtree(deps / "chalicelib")
    return deps


def main(rounds: int, trees: list[Path]) -> None:
    load_before = os.getloadavg()
    fixture = Fixture()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-first-") as scratch:
            deps = dependencies(Path(scratch))
            for tree in trees:  # compile each tree's bytecode once, outside the counts
                fixture.timed(tree, deps)
            boto3_run = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(LAMBDA_PYTHON), "-I",
                 "-c", "import boto3"], capture_output=True, text=True, cwd="/") if shutil.which("valgrind") else None
            boto3_ir = (int([x for x in boto3_run.stderr.splitlines() if "Collected" in x][-1].split()[-1])
                        if boto3_run else 0)
            for tree in trees:
                ir = ((fixture.instructions(tree, deps, False), fixture.instructions(tree, deps, True))
                      if shutil.which("valgrind") else (0, 0))
                times = [fixture.timed(tree, deps) for _ in range(rounds)]
                rows.append((tree, ir, [statistics.median(t[i] for t in times) for i in range(4)]))
    finally:
        fixture.stop()
    load_after = os.getloadavg()
    print(f"""## A cold API function: `import app`, then the first POST .../progress: `python bench/bench_cold_first_request.py {rounds}`

Machine: {machine()}; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after.
Interpreter: .venv-lambda (boto3 only); dependencies from the deployment zip; moto in a process
of its own (not counted); instructions by callgrind (`import boto3` alone: {boto3_ir / 1e6:.0f} M);
times: median of {rounds} fresh processes.

| tree | `import app` | / `import boto3` | `import app` + first progress POST | import: wall / CPU | import + request: wall / CPU |
|---|---|---|---|---|---|""")
    for tree, (imported, total), (iw, ic, tw, tc) in rows:
        ratio = f"{imported / boto3_ir:.2f}x" if boto3_ir else "-"
        print(f"| {tree} | {imported / 1e6:.0f} M | {ratio} | {total / 1e6:.0f} M | {iw:.0f} / {ic:.0f} ms "
              f"| {tw:.0f} / {tc:.0f} ms |")


if __name__ == "__main__":
    args = sys.argv[1:]
    count = int(args.pop(0)) if args and args[0].isdigit() else 5
    main(count, [Path(t).resolve() for t in args] or [ROOT])
