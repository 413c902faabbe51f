"""Fixtures: fake AWS credentials -> mock_aws -> the stack deployed from infra/ -> Client(app)."""

from __future__ import annotations

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
    from chalicelib import auth, config, manuals, queue, sessions, store

    auth._cache.clear()
    store.reset_client()
    queue.reset_client()
    config.get_settings.cache_clear()
    manuals._steps.clear()
    sessions.bindings.clear()


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
    from infra.moto_atomic import serialize_in_process_moto

    serialize_in_process_moto()
    with mock_aws():
        stack = deploy(boto3.Session(), parameters=stack_parameters)
        for key, value in stack.environment().items():
            monkeypatch.setenv(key, value)
        reset_process_state()
        from chalicelib import auth

        auth.ensure_key(ADMIN_KEY, ["admin"], name="tests")
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
    from infra import gateway

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

    def as_key(self, key: str | None) -> "Api":
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


LOCAL_ADMIN_KEY = "ssk_local_stack_admin_key_for_tests_only_0001"


@pytest.fixture(scope="session")
def local_stack():
    """`make run`'s stack (python -m infra.local) in a subprocess: its URLs ("api",
    "webhooks"), the dev admin API key it was started with ("api_key"), and the `export`
    lines it printed for the README's examples ("exports")."""
    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", "LOCAL_INBOX_TOKEN": "test-token",
           "LOCAL_API_KEY": LOCAL_ADMIN_KEY,
           "LOCAL_ACCESS_LOG": "0", "PYTHONUNBUFFERED": "1"}
    for key in ("AWS_ENDPOINT_URL", "TABLE_NAME", "WEBHOOK_URL", "WEBHOOK_SECRET",
                "DELIVERY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "PUBLIC_API_URL"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=Path(__file__).resolve().parent.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    urls: dict[str, str] = {}
    exports: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"API\s+(http://\S+)/v1", line)
        if match:
            urls["api"] = match.group(1)
        if line.startswith("  export "):
            exports.append(line.strip())
        if "Ctrl-C stops everything" in line:
            break
    assert "api" in urls and exports, "".join(lines)
    # keep reading its output so a chatty server never blocks on a full pipe
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    yield {**urls, "webhooks": f"{urls['api']}/v1/inboxes/local/requests", "api_key": LOCAL_ADMIN_KEY,
           "exports": exports}
    assert interrupt(proc, timeout=30) == 0, "".join(lines)[-3000:]


def interrupt(proc: subprocess.Popen, timeout: float) -> int:
    """Ctrl-C a child process; its exit code (killed if it outlives `timeout`)."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
