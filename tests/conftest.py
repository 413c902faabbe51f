"""Fixtures: fake AWS credentials -> mock_aws -> the stack deployed from infra/ -> Client(app)."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Set before anything builds a boto3 client (see AWS-LOCAL-NOTES.md).
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    # webhook receivers in tests listen on 127.0.0.1 (the SSRF guard's own tests turn it on)
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
})
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


ADMIN_KEY = "ssk_in_process_admin_key_for_tests_only_0001"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def reset_process_state() -> None:
    """Forget cached clients, settings and per-process caches between tests."""
    from chalicelib import runtime

    runtime.reset()


@pytest.fixture
def stack_parameters(request: pytest.FixtureRequest) -> dict[str, str]:
    """CloudFormation parameters for the stack (pipeline tests shorten the retry chain);
    set per test with `@pytest.mark.parametrize("stack_parameters", [...], indirect=True)`."""
    return getattr(request, "param", {})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, stack_parameters: dict[str, str]) -> Iterator[Any]:
    """A fresh moto account with the stack from infra/resources.json deployed into it."""
    import boto3
    from moto import mock_aws

    from infra.deploy import deploy
    from local.moto_server import serialize_in_process_moto

    serialize_in_process_moto()
    with mock_aws():
        stack = deploy(boto3.Session(), parameters=stack_parameters)
        for key, value in stack.environment().items():
            monkeypatch.setenv(key, value)
        reset_process_state()
        from chalicelib.services import keys

        keys.ensure_key(ADMIN_KEY, ["admin"], name="tests")
        yield stack
    reset_process_state()


@contextlib.contextmanager
def _environment_as_lambda_sets_it(self: Any, environment_variables: dict[str, str]) -> Iterator[None]:
    """chalice.test swaps os.environ for a copy during each request and back after it: two
    requests at once can leave a copy in place for good, and every later test then sees a
    stale environment (a MAX_UPDATE_ATTEMPTS=1 set by one test leaked into the next). Lambda
    sets a function's variables once; so does this, in place (the stage's values are
    constants)."""
    os.environ.update(environment_variables)
    yield


@pytest.fixture
def client(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from chalice.local import CustomLocalChalice, LocalChalice
    from chalice.test import BaseClient, Client

    from app import app
    from local import gateway

    monkeypatch.setattr(BaseClient, "_patched_env_vars", _environment_as_lambda_sets_it)
    gateway.install()  # 401/403 answered as API Gateway answers them
    if not isinstance(app, LocalChalice):
        # As `chalice local` does: keep current_request per thread, so tests can send
        # concurrent requests (each Lambda instance serves one request at a time).
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    with Client(app) as test_client:
        yield test_client


class Api:
    """Small JSON helper over chalice.test.Client's http interface; sends the tests' admin
    key unless told otherwise (`key=None` for none, `key="..."` for another)."""

    def __init__(self, client: Any, key: str | None = ADMIN_KEY) -> None:
        self.client = client
        self.key = key

    def as_key(self, key: str | None) -> Api:
        return Api(self.client, key)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, raw: bytes | str | None = None) -> Any:
        import json

        auth = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        all_headers = {"Content-Type": "application/json", **auth, **(headers or {})}
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.http.request(method, path, headers=all_headers, body=payload or b"")
        response.json = json.loads(response.body) if response.body else None
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


def wait_for(condition: Any, timeout: float = 20, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def manual_body(manual_id: str = "manual-abc", steps: int = 5, title: str = "Intro") -> dict:
    return {
        "manual_id": manual_id, "title": title,
        "steps": [{"step_number": n, "title": f"Step {n}", "content": f"Do thing {n}."}
                  for n in range(1, steps + 1)],
    }


@pytest.fixture
def make_session(api: Api) -> Any:
    """Create a manual of `steps` steps and a session on it; return the session body."""
    counter = iter(range(1_000_000))

    def make(steps: int = 5, user_id: str = "user-1", manual_id: str | None = None) -> dict:
        n = next(counter)
        mid = manual_id or f"manual-{n}"
        if manual_id is None or api.get(f"/v1/manuals/{mid}").status_code == 404:
            assert api.post("/v1/manuals", manual_body(mid, steps)).status_code == 201
        response = api.post("/v1/sessions", {"session_id": f"s-{n}", "user_id": user_id,
                                              "manual_id": mid})
        assert response.status_code == 201, response.json
        return response.json

    return make


# ---- the webhook pipeline in-process: a receiver on 127.0.0.1 and the event-source runner --

SECRET = "whsec_" + base64.b64encode(b"test-secret-for-webhooks-32bytes").decode()


@pytest.fixture
def receiver() -> Iterator[Any]:
    from tests.receiver import Receiver

    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def attempts(request: pytest.FixtureRequest) -> int:
    """Delivery attempts per webhook (the retry schedule's length + 1, all delays 0); set
    per test with `@pytest.mark.parametrize("attempts", [n], indirect=True)`."""
    return getattr(request, "param", 8)


@pytest.fixture
def runner(api: Api, aws: Any, receiver: Any, attempts: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The local event-source runner (driven by the test: `drain`), webhooks to `receiver`."""
    import app as app_module
    from chalicelib.config import get_settings
    from local.runner import Runner

    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", ",".join(["0"] * (attempts - 1)))
    get_settings.cache_clear()
    return Runner(app_module, aws.stream_arn, aws.delivery_queue_url)


def drain(runner: Any, until: Any, timeout: float = 30) -> None:
    """Pump the runner until `until()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "pipeline did not settle in time"
        if not runner.pump():
            time.sleep(0.02)


def run_session(api: Api, sid: str, steps: int, user: str = "u") -> None:
    """A session on a manual of `steps` steps (created once), DONE step by step to the end."""
    if api.get(f"/v1/manuals/man-{steps}").status_code == 404:
        api.post("/v1/manuals", {"manual_id": f"man-{steps}", "title": "T", "steps": [
            {"step_number": n, "title": f"S{n}", "content": "c"} for n in range(1, steps + 1)]})
    assert api.post("/v1/sessions", {"session_id": sid, "user_id": user, "manual_id": f"man-{steps}"}).status_code == 201
    for step in range(1, steps + 1):
        assert api.post(f"/v1/sessions/{sid}/progress", {"user_id": user, "current_step": step,
                                                        "step_status": "DONE"}).status_code == 200


def event_ids(api: Api, sid: str) -> list[str]:
    return [e["event_id"] for e in api.get(f"/v1/sessions/{sid}/events?limit=100").json["items"]]


def queue_depth(url: str) -> int:
    from chalicelib.pipeline import queue

    return queue.depth(url)


LOCAL_ADMIN_KEY = "ssk_local_stack_admin_key_for_tests_only_0001"


class StackProcess:
    """`make run`'s stack (python -m local.stack) in a subprocess: its URLs ("api",
    "webhooks"), the admin key it was started with, and its output so far."""

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 60) -> None:
        environment = {**os.environ, "PORT": "0", "MOTO_PORT": "0", "LOCAL_INBOX_TOKEN": "test-token",
                       "LOCAL_API_KEY": LOCAL_ADMIN_KEY, "PYTHONUNBUFFERED": "1"}
        for key in ("AWS_ENDPOINT_URL", "TABLE_NAME", "WEBHOOK_URL", "WEBHOOK_SECRET",
                    "DELIVERY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "WEBHOOK_RETRY_SCHEDULE", "PUBLIC_API_URL"):
            environment.pop(key, None)
        environment.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=Path(__file__).resolve().parent.parent,
                                     env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.urls: dict[str, str] = {}
        self.exports: list[str] = []  # the `export ...` lines it prints for the README's examples
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"API\s+(http://\S+)/v1", line)
            if match:
                self.urls["api"] = match.group(1)
                self.urls["webhooks"] = f"{match.group(1)}/v1/inboxes/local/requests"
            if line.startswith("  export "):
                self.exports.append(line.strip())
            if "Ctrl-C stops everything" in line:
                break
        assert "api" in self.urls, "".join(self.lines)
        # keep reading its output so a chatty server never blocks on a full pipe
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()  # type: ignore[arg-type]

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        return interrupt(self.proc, timeout=30)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[dict[str, Any]]:
    """`make run`'s stack in a subprocess: its URLs ("api", "webhooks"), the dev admin API
    key it was started with ("api_key"), and the `export` lines it printed for the README's
    examples ("exports")."""
    # three attempts, 5 s apart: a webhook can fail for good within a test
    stack = StackProcess({"WEBHOOK_RETRY_SCHEDULE": "5,5"})
    assert set(stack.urls) == {"api", "webhooks"} and stack.exports, stack.output
    yield {**stack.urls, "api_key": LOCAL_ADMIN_KEY, "exports": stack.exports}
    assert stack.stop() == 0, stack.output[-3000:]


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[dict[str, Any]]:
    """A stack of its own for a fuzzer (schemathesis): what it creates, changes or rotates
    (webhook endpoints, the default endpoint's secret, inboxes, keys) must not reach the
    shared `local_stack` that other tests read exact delivery logs from."""
    stack = StackProcess({"WEBHOOK_RETRY_SCHEDULE": "5,5"})
    assert "api" in stack.urls, stack.output
    yield {**stack.urls, "api_key": LOCAL_ADMIN_KEY}
    assert stack.stop() == 0, stack.output[-3000:]


def interrupt(proc: subprocess.Popen, timeout: float) -> int:
    """Ctrl-C a child process; its exit code (killed if it outlives `timeout`)."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
