"""The operator CLI (cli/), a client of the HTTP API, tested through real HTTP: the
`make run` stack in a subprocess (the shared `local_stack`) for every command, and the app
served over HTTP in-process on moto with a scripted receiver where webhooks must die first
(the local stack's retry schedule takes a day to dead-letter anything)."""

from __future__ import annotations

import json
import os
import queue as queues
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import cli as cli_module
from chalicelib.domain.models import RedriveResult
from chalicelib.pipeline import queue
from chalicelib.pipeline.delivery import redrive
from cli import cli
from cli.commands import deliveries as deliveries_commands
from tests.conftest import interrupt, manual_body, wait_for

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]  # the local stack is shared with other test files: unique ids
CLEAN_ENV = {"SESSION_SERVICE_URL": None, "SESSION_SERVICE_API_KEY": None, "INBOX_TOKEN": None}
DEFAULT_INBOX_RESPONSE = {"status": 200, "body": '{"ok": true}', "content_type": "application/json"}


def uid(name: str) -> str:
    return f"{name}-{RUN}"


class Http:
    """The test's own JSON client (data is set up through the API, not through the CLI)."""

    def __init__(self, base: str, key: str | None) -> None:
        self.base, self.key = base, key

    def __call__(self, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        auth = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        request = urllib.request.Request(
            f"{self.base}/{path}", data=json.dumps(body).encode() if body is not None else None,
            method=method, headers={"Content-Type": "application/json", **auth, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None


def run(base: str, *args: str, key: str | None = None, env: dict[str, str | None] | None = None) -> Result:
    """The CLI in-process, as a user would call it (no env leaking in from the test run)."""
    options = ["--url", base] + (["--api-key", key] if key else [])
    return CliRunner().invoke(cli, [*options, *args], env={**CLEAN_ENV, **(env or {})})


def manual(manual_id: str, steps: int = 2, title: str = "Manual") -> dict[str, Any]:
    return manual_body(manual_id, steps, title)


@pytest.fixture(scope="module")
def stack(local_stack: dict[str, str]) -> dict[str, str]:
    return local_stack


@pytest.fixture(scope="module")
def http(stack: dict[str, str]) -> Http:
    return Http(stack["api"], stack["api_key"])


@pytest.fixture
def sh(stack: dict[str, str]) -> Any:
    """`sh("sessions", "list")`: the CLI against the local stack with its admin key."""
    return lambda *args, key=stack["api_key"], env=None: run(stack["api"], *args, key=key, env=env)


@pytest.fixture(scope="module")
def course(http: Http) -> dict[str, str]:
    """Two manuals of this run: A (2 steps) and B (1 step)."""
    ids = {"A": uid("cli-manual-a"), "B": uid("cli-manual-b")}
    assert http("POST", "v1/manuals", manual(ids["A"], 2))[0] == 201
    assert http("POST", "v1/manuals", manual(ids["B"], 1))[0] == 201
    return ids


def start_session(http: Http, session_id: str, user: str, manual_id: str) -> dict[str, Any]:
    status, body = http("POST", "v1/sessions", {"session_id": session_id, "user_id": user,
                                                "manual_id": manual_id})
    assert status == 201, body
    return body


def events_of(http: Http, session_id: str) -> list[dict[str, Any]]:
    return http("GET", f"v1/sessions/{session_id}/events?limit=100")[1]["items"]


# ---- help and exit codes -------------------------------------------------------------------


def test_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"], env=CLEAN_ENV)
    assert result.exit_code == 0
    for text in ("Exit codes:", "0  success", "1  the API answered an error", "2  usage error",
                 "3  cannot reach the service", "4  a local file is invalid",
                 "SESSION_SERVICE_URL", "SESSION_SERVICE_API_KEY", "http://127.0.0.1:8000/api"):
        assert text in result.output, text
    assert "Exit codes:" in (cli_module.__doc__ or "")


def test_unreachable_service_exits_3() -> None:
    # GIVEN a port nobody listens on, and one that accepts connections but never answers
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent_port = silent.getsockname()[1]
        # WHEN the CLI calls them
        refused = run(f"http://127.0.0.1:{closed_port}/api", "sessions", "list")
        timed_out = run(f"http://127.0.0.1:{silent_port}/api", "--timeout", "0.3", "sessions", "list")
    # THEN exit 3, with the reason on stderr and nothing on stdout
    assert refused.exit_code == 3, refused.output
    assert "error: unreachable: cannot reach the service" in refused.stderr
    assert "refused" in refused.stderr.lower() and refused.stdout == ""
    assert timed_out.exit_code == 3, timed_out.output
    assert "timed out" in timed_out.stderr.lower()


def test_usage_errors_exit_2(sh) -> None:
    assert run("not-a-url", "sessions", "list").exit_code == 2
    assert sh("sessions", "list", "--status", "paused").exit_code == 2
    assert sh("sessions", "list", "--limit", "0").exit_code == 2
    assert sh("manuals", "import", "/no/such/file.json").exit_code == 2
    assert sh("keys", "create").exit_code == 2  # --scope is required


def test_api_errors_exit_1_with_the_code_and_a_key_hint(sh, stack, http) -> None:
    # an unknown session: the API's code and message, on stderr
    missing = sh("sessions", "show", uid("no-such-session"))
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: session_not_found: ") and missing.stdout == ""
    # no key, or a key the service does not know: 401 and a hint about --api-key
    for key, hint in ((None, "this needs an API key"), ("ssk_not_a_real_key", "not accepted")):
        result = run(stack["api"], "sessions", "list", key=key)
        assert result.exit_code == 1, result.output
        assert "error: unauthorized: " in result.stderr
        assert hint in result.stderr and "--api-key" in result.stderr
    # the key from the environment is used
    from_env = run(stack["api"], "sessions", "list", "--limit", "1",
                   env={"SESSION_SERVICE_API_KEY": stack["api_key"]})
    assert from_env.exit_code == 0, from_env.output
    # a read-only key on an admin command: 403 and a hint about scopes
    status, created = http("POST", "v1/keys", {"scopes": ["read"], "name": uid("read-only")})
    assert status == 201, created
    refused = sh("redrive", key=created["key"])
    assert refused.exit_code == 1
    assert "error: forbidden: " in refused.stderr and "scopes" in refused.stderr


# ---- manuals import ------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_manuals_import_reports_each_file(sh, http, tmp_path: Path) -> None:
    # GIVEN a JSON and a YAML manual, one with a gap in its steps, and one that is not JSON
    m1, m2, gap = uid("imp-json"), uid("imp-yaml"), uid("imp-gap")
    good_json = write(tmp_path / "one.json", json.dumps(manual(m1, 3, "From JSON")))
    good_yaml = write(tmp_path / "two.yaml", f"""
manual_id: {m2}
title: From YAML
steps:
  - step_number: 2
    title: Second
  - step_number: 1
    title: First
    content: |
      Line one.
      Line two.
""")
    gapped = write(tmp_path / "gap.yml", f"manual_id: {gap}\ntitle: Gap\nsteps:\n"
                                         "  - {step_number: 1, title: One}\n"
                                         "  - {step_number: 3, title: Three}\n")
    broken = write(tmp_path / "broken.json", '{"manual_id": "x", "title": ')
    # WHEN they are imported together
    result = sh("manuals", "import", str(good_json), str(good_yaml), str(gapped), str(broken))
    # THEN exit 4 (a local file is invalid); the valid ones are created, the others reported
    assert result.exit_code == 4, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["created", str(good_json), m1]
    assert lines[1].split()[:3] == ["created", str(good_yaml), m2]
    assert lines[2].startswith("failed") and "invalid_file: Invalid manual:" in lines[2]
    assert "step_number values must be 1..N" in lines[2]
    assert lines[3].startswith("failed") and "invalid_file: not valid JSON" in lines[3]
    assert "Importing" in result.stderr  # the progress bar (several files)
    assert "2 created, 0 unchanged, 2 failed" in result.stderr
    # the YAML manual arrived as written; the invalid one was never sent
    status, stored = http("GET", f"v1/manuals/{m2}")
    assert status == 200 and [s["title"] for s in stored["steps"]] == ["First", "Second"]
    assert stored["steps"][0]["content"] == "Line one.\nLine two.\n"
    assert http("GET", f"v1/manuals/{gap}")[0] == 404

    # WHEN the same manual is imported again, alone: unchanged, exit 0, no progress bar
    again = sh("manuals", "import", str(good_json))
    assert again.exit_code == 0, again.output
    assert again.stdout.split()[:3] == ["unchanged", str(good_json), m1]
    assert "Importing" not in again.stderr

    # WHEN another body comes under a taken id: the API refuses it (409), exit 1
    conflict = write(tmp_path / "conflict.json", json.dumps(manual(m2, 1, "Other")))
    refused = sh("--json", "manuals", "import", str(good_json), str(conflict))
    assert refused.exit_code == 1, refused.output
    report = json.loads(refused.stdout)
    assert [(r["file"], r["status"], r["error"]) for r in report] == [
        (str(good_json), "unchanged", None), (str(conflict), "failed", "manual_exists")]
    assert report[1]["message"]


def test_manuals_import_stops_on_an_auth_error(stack, http, tmp_path: Path) -> None:
    status, created = http("POST", "v1/keys", {"scopes": ["agent"], "name": uid("agent")})
    assert status == 201
    path = write(tmp_path / "m.json", json.dumps(manual(uid("imp-agent"))))
    result = run(stack["api"], "manuals", "import", str(path), str(path), key=created["key"])
    assert result.exit_code == 1
    assert "error: forbidden: " in result.stderr and "admin" in result.stderr
    # only the error: no "0 created, 0 unchanged, 0 failed" tally of files never tried
    assert "created" not in result.stderr and result.stdout == ""


# ---- sessions ------------------------------------------------------------------------------


def ids_in(output: str, ids: list[str]) -> list[str]:
    """The ids that appear as the first column, in output order."""
    first = [line.split()[0] for line in output.splitlines() if line.strip()]
    return [i for i in first if i in ids]


def test_sessions_list_filters_and_pages(sh, http, course) -> None:
    # GIVEN user U with three sessions on manual A and two on B (one ended), user V with one on A
    user, other = uid("list-u"), uid("list-v")
    on_a = [uid(f"list-a{n}") for n in range(3)]
    on_b = [uid(f"list-b{n}") for n in range(2)]
    for sid in on_a:
        start_session(http, sid, user, course["A"])
    for sid in on_b:
        start_session(http, sid, user, course["B"])
    start_session(http, uid("list-v0"), other, course["A"])
    assert http("PATCH", f"v1/sessions/{on_b[0]}", {"status": "ended"})[0] == 200
    everyone = on_a + on_b + [uid("list-v0")]

    def listed(*args: str) -> list[str]:
        result = sh("sessions", "list", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0].split()[:4] == ["SESSION", "USER", "MANUAL", "STATUS"]
        return ids_in(result.stdout, everyone)

    # THEN each filter narrows the list
    assert sorted(listed("--user", user)) == sorted(on_a + on_b)
    assert sorted(listed("--user", user, "--manual", course["B"])) == sorted(on_b)
    assert listed("--user", user, "--status", "ended") == [on_b[0]]
    assert sorted(listed("--manual", course["A"], "--limit", "100")) == sorted(on_a + [uid("list-v0")])
    # a page, with a hint about the rest; --all follows the cursor to the end
    page = sh("sessions", "list", "--user", user, "--limit", "2")
    assert len(ids_in(page.stdout, everyone)) == 2 and "--all" in page.stderr
    every = sh("sessions", "list", "--user", user, "--limit", "2", "--all")
    assert sorted(ids_in(every.stdout, everyone)) == sorted(on_a + on_b)
    assert "more sessions" not in every.stderr
    as_json = json.loads(sh("--json", "sessions", "list", "--user", user, "--limit", "2", "--all").stdout)
    assert as_json["next_cursor"] is None
    assert [s["session_id"] for s in as_json["items"]] == ids_in(every.stdout, everyone)
    assert {s["status"] for s in as_json["items"]} == {"active", "ended"}
    # nothing matches: said so, exit 0
    empty = sh("sessions", "list", "--user", uid("nobody"))
    assert empty.exit_code == 0 and "(no sessions)" in empty.stdout


def test_sessions_show_has_the_next_step_and_recent_messages(sh, http, course) -> None:
    # GIVEN a session on A with step 1 done and three messages
    sid, user = uid("show"), uid("show-u")
    start_session(http, sid, user, course["A"])
    for n, text in enumerate(["first words", "second words", "third words"]):
        status, _ = http("POST", f"v1/sessions/{sid}/messages",
                         {"user_id": user, "message": text, "sender": "user" if n % 2 == 0 else "agent"})
        assert status == 201
    assert http("POST", f"v1/sessions/{sid}/progress",
                {"user_id": user, "current_step": 1, "step_status": "DONE"})[0] == 200
    # WHEN it is shown with its last two messages
    result = sh("sessions", "show", sid, "--messages", "2")
    # THEN
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"session        {sid}" in out and "status         active" in out
    assert "step           2 of 2" in out and "completed      1" in out
    assert "next step      2: Step 2" in out and "Do thing 2." in out
    assert "last 2 of 3 message(s):" in out
    assert "second words" in out and "third words" in out and "first words" not in out
    shown = json.loads(sh("--json", "sessions", "show", sid, "--messages", "2").stdout)
    assert shown["session"]["session_id"] == sid
    assert shown["next_step"]["next_step"]["step_number"] == 2
    assert [m["message"] for m in shown["messages"]] == ["second words", "third words"]


# ---- events --------------------------------------------------------------------------------


def test_events_tail_shows_each_event_with_its_delivery(sh, http, course) -> None:
    # GIVEN a session whose first two events were delivered to the local inbox
    sid, user = uid("tail"), uid("tail-u")
    start_session(http, sid, user, course["A"])
    http("POST", f"v1/sessions/{sid}/progress", {"user_id": user, "current_step": 1, "step_status": "DONE"})
    wait_for(lambda: [e["delivery_status"] for e in events_of(http, sid)] == ["delivered"] * 2,
             what="deliveries")
    # WHEN its events are listed
    result = sh("events", "tail", sid)
    # THEN one row per event, oldest first, with status and attempts
    assert result.exit_code == 0, result.output
    header, created, progress = result.stdout.splitlines()
    assert header.split()[:4] == ["SEQ", "OCCURRED", "TYPE", "DETAIL"]
    assert created.split()[0] == "1" and "session_created" in created and "2 steps" in created
    assert "step 1 DONE" in progress and "delivered" in progress and "1, last 200" in progress
    ids = [e["event_id"] for e in events_of(http, sid)]
    assert created.split()[-1] == ids[0] and progress.split()[-1] == ids[1]
    assert [e["event_id"] for e in json.loads(sh("--json", "events", "tail", sid).stdout)] == ids
    assert sh("events", "tail", uid("missing")).exit_code == 1


@pytest.fixture
def failing_inbox(http: Http) -> Iterator[Any]:
    """Makes the local stack's inbox answer 500 until `restore()` (and always at the end:
    the stack is shared with other test files)."""
    token = {"X-Inbox-Token": "test-token"}

    def restore() -> None:
        status, body = http("PATCH", "v1/inboxes/local", {"response": DEFAULT_INBOX_RESPONSE}, token)
        assert status == 200, body

    status, body = http("PATCH", "v1/inboxes/local",
                        {"response": {"status": 500, "body": "down", "content_type": "text/plain"}}, token)
    assert status == 200, body
    try:
        yield restore
    finally:
        restore()


def test_events_tail_follow_prints_new_events_and_delivery_changes(stack, http, course, failing_inbox) -> None:
    # GIVEN a session whose first webhook failed once (the receiver answered 500), and a
    # receiver that is back: the retry comes after the first delay of the schedule (5 s)
    sid, user = uid("follow"), uid("follow-u")
    start_session(http, sid, user, course["B"])
    wait_for(lambda: events_of(http, sid)[0]["delivery_status"] == "retrying", what="a failed attempt")
    failing_inbox()
    # WHEN `events tail -f` runs (a real process, as an operator runs it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "--url", stack["api"], "events", "tail", sid,
         "--follow", "--interval", "0.2"],
        cwd=ROOT, env={**{k: v for k, v in os.environ.items() if k not in CLEAN_ENV},
                      "SESSION_SERVICE_API_KEY": stack["api_key"]},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queues.Queue[str] = queues.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []

    def wait_line(predicate: Any, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queues.Empty:
                continue
            seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such line in {seen!r}")

    try:
        first = wait_line(lambda line: "session_created" in line)
        assert "retrying" in first and "1, last 500" in first
        # and the session completes (a new progress event and a session_ended event)
        assert http("POST", f"v1/sessions/{sid}/progress",
                    {"user_id": user, "current_step": 1, "step_status": "DONE"})[0] == 200
        # THEN the new events appear, and the failed delivery's change of status
        wait_line(lambda line: "progress_update" in line and "step 1 DONE" in line)
        wait_line(lambda line: "session_ended" in line)
        change = wait_line(lambda line: "retrying -> delivered" in line)
        assert events_of(http, sid)[0]["event_id"] in change and "2, last 200" in change
        # and every row, the first table's and the later ones, lines up under the header
        header = next(line for line in seen if line.startswith("SEQ"))
        rows = [line for line in seen if "evt_" in line and " -> " not in line]
        assert len(rows) == 3
        for column in ("TYPE", "DETAIL", "DELIVERY", "ATTEMPTS", "EVENT"):
            starts = {row[header.index(column) - 2:header.index(column)] for row in rows}
            assert starts == {"  "}, (column, header, rows)
        assert {row.index("evt_") for row in rows} == {header.index("EVENT")}
    finally:
        # WHEN the operator presses Ctrl-C: it stops cleanly
        code = interrupt(proc, timeout=10)
    assert code == 0, proc.stderr.read()


# ---- inbox ---------------------------------------------------------------------------------


def test_inbox_show_lists_captures_and_shows_one(sh, http, course) -> None:
    # GIVEN a webhook of a new session captured by the inbox `local`
    sid = uid("inbox")
    start_session(http, sid, uid("inbox-u"), course["B"])
    token = {"X-Inbox-Token": "test-token"}

    def capture() -> dict[str, Any] | None:
        items = http("GET", "v1/inboxes/local/requests?limit=100", headers=token)[1]["items"]
        return next((c for c in items if sid in (c["body"] or "")), None)

    captured = wait_for(capture, what="the webhook in the inbox")
    # WHEN the inbox is shown (token from the environment, inbox `local` by default)
    listing = sh("inbox", "show", "--method", "POST", "--limit", "100", env={"INBOX_TOKEN": "test-token"})
    # THEN the capture is listed with its method, time and signature verdict
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.stdout.splitlines() if captured["request_id"] in line)
    assert "POST" in row and "verified" in row and f"session_created {sid} #1" in row
    assert listing.stdout.splitlines()[0].split() == [
        "REQUEST", "RECEIVED", "METHOD", "BYTES", "SIGNATURE", "WEBHOOK"]
    # and one capture in full: headers and body
    one = sh("inbox", "show", "local", "--token", "test-token", "--request", captured["request_id"])
    assert one.exit_code == 0, one.output
    event_id = events_of(http, sid)[0]["event_id"]
    assert "signature     verified" in one.stdout
    assert f"webhook-id: {event_id}" in one.stdout
    assert json.loads(one.stdout.strip().splitlines()[-1])["session_id"] == sid
    # a wrong token reads nothing (the API's 404); no token is a usage error
    wrong = sh("inbox", "show", "--token", "wrong-token")
    assert wrong.exit_code == 1 and "error: inbox_not_found:" in wrong.stderr
    assert sh("inbox", "show").exit_code == 2


# ---- deliveries and redrive ----------------------------------------------------------------


def test_deliveries_failed_and_redrive_on_the_local_stack(sh) -> None:
    # the shared stack may hold dead letters of other test files: either answer, exit 0
    failed = sh("deliveries", "failed")
    assert failed.exit_code == 0, failed.output
    assert "(no failed deliveries)" in failed.stdout or failed.stdout.startswith("EVENT")
    result = sh("redrive")
    assert result.exit_code == 0, result.output
    assert "nothing to redrive" in result.stdout or "Redrove" in result.stdout
    assert "nothing to redrive" in sh("redrive").stdout  # then the queue is empty
    assert json.loads(sh("--json", "redrive").stdout) == {"moved": 0, "remaining": 0}
    # --endpoint narrows both to one webhook endpoint: the API checks the id it is given
    narrowed = sh("deliveries", "failed", "--endpoint", "default")
    assert narrowed.exit_code == 0, narrowed.output
    assert json.loads(sh("--json", "redrive", "--endpoint", "default").stdout) == {"moved": 0, "remaining": 0}
    for args in (("deliveries", "failed"), ("redrive",)):
        refused = sh(*args, "--endpoint", "not an id")
        assert refused.exit_code == 1 and "validation_error" in refused.stderr, refused.output


@pytest.fixture
def served(aws: Any) -> Iterator[str]:
    """The app over real HTTP in this process (the local stack's request handler), on the
    `aws` fixture's moto: its queues can be driven and inspected directly."""
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    from app import app
    from local import gateway
    from local.stack import _chalice_config, _request_handler

    gateway.install()
    config = _chalice_config()
    if not isinstance(app, LocalChalice):  # as `chalice local` does: current_request per thread
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    server = LocalDevServer(app, config, "127.0.0.1", 0, handler_cls=_request_handler())
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}/api"
    server.shutdown()


def test_dead_lettered_webhooks_are_listed_then_redriven_in_order(served, aws, monkeypatch) -> None:
    import app as app_module
    from chalicelib.config import get_settings
    from local.runner import Runner
    from tests.conftest import ADMIN_KEY
    from tests.receiver import Receiver, always

    receiver = Receiver(always(500))
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXdlYmhvb2tzLTMyYnl0ZXM=")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0")
    get_settings.cache_clear()
    runner = Runner(app_module, aws.stream_arn, aws.delivery_queue_url)
    http = Http(served, ADMIN_KEY)
    admin = lambda *args: run(served, *args, key=ADMIN_KEY)

    def pump_until(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, what
            if not runner.pump():
                time.sleep(0.02)

    try:
        # GIVEN two sessions run to completion while the receiver is down: after both
        # attempts every webhook sits in the dead-letter queue
        assert http("POST", "v1/manuals", manual("m", 1))[0] == 201
        for sid in ("s-1", "s-2"):
            start_session(http, sid, "u", "m")
            assert http("POST", f"v1/sessions/{sid}/progress",
                        {"user_id": "u", "current_step": 1, "step_status": "DONE"})[0] == 200
        ids = {sid: [e["event_id"] for e in events_of(http, sid)] for sid in ("s-1", "s-2")}
        pump_until(lambda: queue.depth(aws.dead_letter_queue_url) == 6
                   and queue.depth(aws.delivery_queue_url) == 0, "dead-lettering")
        # WHEN the operator lists failed deliveries, one per page
        failed = admin("deliveries", "failed", "--limit", "1", "--all")
        # THEN all six are listed, each with its own two attempts
        assert failed.exit_code == 0, failed.output
        rows = [line for line in failed.stdout.splitlines()[1:] if line.strip()]
        assert {r.split()[0] for r in rows} == set(ids["s-1"] + ids["s-2"])
        assert all(r.split()[2] in ids for r in rows)
        assert len(rows) == 6 and all("2, last 500" in r for r in rows)
        first_page = admin("deliveries", "failed", "--limit", "1")
        assert len(first_page.stdout.splitlines()) == 2 and "--all" in first_page.stderr
        # WHEN the receiver is back and the operator redrives, 4 messages per request
        receiver.behaviour = always(200)
        result = admin("redrive", "--batch", "4")
        # THEN all six moved back (over two requests), with a progress bar on stderr
        assert result.exit_code == 0, result.output
        assert "Redrove 6 message(s)" in result.stdout and "Redriving" in result.stderr
        assert queue.depth(aws.dead_letter_queue_url) == 0
        # and every webhook arrives, each session's in order, and none is listed as failed
        pump_until(lambda: len(receiver.delivered()) == 6, "redelivery")
        for sid, expected in ids.items():
            got = [r.headers["webhook-id"] for r in receiver.delivered() if r.json["session_id"] == sid]
            assert got == expected
        assert "(no failed deliveries)" in admin("deliveries", "failed").stdout
        assert "nothing to redrive" in admin("redrive").stdout
    finally:
        receiver.stop()


def test_redrive_gives_up_on_messages_it_cannot_receive(served, aws, monkeypatch) -> None:
    from tests.conftest import ADMIN_KEY

    # GIVEN two dead letters that another redrive holds (received, hidden for a while)
    for n in range(2):
        queue.enqueue(f'{{"n": {n}}}', group=f"g-{n}", dedup_id=f"d-{n}", queue_url=aws.dead_letter_queue_url)
    held = [m for _ in range(2) for m in queue.receive(aws.dead_letter_queue_url, visibility_timeout=300)]
    assert len(held) == 2  # one group per receive, as SQS may answer
    monkeypatch.setattr(deliveries_commands, "STALL_PAUSE_SECONDS", 0)
    # WHEN the operator redrives
    result = run(served, "redrive", key=ADMIN_KEY)
    # THEN it stops instead of spinning, says why, and exits 1
    assert result.exit_code == 1, result.output
    assert "error: redrive_incomplete: 2 message(s)" in result.stderr


# ---- the redrive route and function (in-process, tests/pipeline/test_pipeline.py style) --------------


def seed_dead_letters(aws: Any, groups: list[str]) -> None:
    for n, group in enumerate(groups):
        queue.enqueue(f'{{"n": {n}}}', group=group, dedup_id=f"e-{n}", queue_url=aws.dead_letter_queue_url)


def delivery_bodies(aws: Any) -> list[tuple[str, str]]:
    bodies = []
    for _ in range(10):
        for message in queue.receive(aws.delivery_queue_url):
            bodies.append((message["Attributes"]["MessageGroupId"], message["Body"]))
            queue.delete(aws.delivery_queue_url, message["ReceiptHandle"])
    return bodies


def test_redrive_route_moves_a_bounded_batch_per_request(api, aws) -> None:
    from chalicelib.services import keys

    # GIVEN three messages of one session and one of another in the dead-letter queue
    seed_dead_letters(aws, ["s-1", "s-1", "s-2", "s-1"])
    # WHEN an admin redrives 3 at a time
    first = api.post("/v1/deliveries/redrive?limit=3")
    second = api.post("/v1/deliveries/redrive?limit=3")
    # THEN the first request moves 3 and says 1 is left, the second finishes
    assert first.status_code == 200 and first.json == {"moved": 3, "remaining": 1, "dropped": 0}
    assert RedriveResult.model_validate(second.json) == RedriveResult(moved=1, remaining=0)
    bodies = delivery_bodies(aws)
    assert [b for g, b in bodies if g == "s-1"] == ['{"n": 0}', '{"n": 1}', '{"n": 3}']
    assert [b for g, b in bodies if g == "s-2"] == ['{"n": 2}']
    assert api.post("/v1/deliveries/redrive").json == {"moved": 0, "remaining": 0, "dropped": 0}
    # a bad limit is a validation error; only admin keys may redrive
    assert api.post("/v1/deliveries/redrive?limit=0").json["error"] == "validation_error"
    assert api.as_key(None).post("/v1/deliveries/redrive").status_code == 401
    reader = keys.create_key(keys.KeyCreate(scopes=["read"])).key
    assert api.as_key(reader).post("/v1/deliveries/redrive").status_code == 403


def test_bounded_redrive_leaves_the_rest_receivable(aws) -> None:
    seed_dead_letters(aws, ["s-1", "s-1", "s-1"])
    dlq, target = aws.dead_letter_queue_url, aws.delivery_queue_url
    assert redrive(dlq, target, seconds=0) == 0  # no time left: nothing received
    assert redrive(dlq, target, limit=1) == 1
    # what the first call did not move was never received, so it is not hidden for the
    # visibility timeout: the next call moves it at once
    assert redrive(dlq, target, limit=10) == 2
    assert [b for _, b in delivery_bodies(aws)] == ['{"n": 0}', '{"n": 1}', '{"n": 2}']


def test_unbounded_redrive_still_empties_the_queue(aws) -> None:
    seed_dead_letters(aws, [f"s-{n % 3}" for n in range(25)])
    progress: list[int] = []
    assert redrive(aws.dead_letter_queue_url, aws.delivery_queue_url, progress=progress.append) == 25
    assert progress == list(range(1, 26)) and queue.depth(aws.dead_letter_queue_url) == 0


# ---- API keys ------------------------------------------------------------------------------


def test_keys_create_list_and_revoke(sh, stack, http, course) -> None:
    # GIVEN a session of user U
    user = uid("keys-u")
    start_session(http, uid("keys-s"), user, course["B"])
    # WHEN an admin creates an agent key bound to U
    created = sh("keys", "create", "--scope", "agent", "--scope", "read", "--name", uid("tutor"),
                 "--user", user)
    # THEN the key alone is on stdout (scriptable), the details and a warning on stderr
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("ssk_") and len(created.stdout.splitlines()) == 1
    assert "shown only this once" in created.stderr
    key_id = created.stderr.split()[2]
    # and the key works: it sees U's sessions only
    mine = run(stack["api"], "--json", "sessions", "list", key=key)
    assert mine.exit_code == 0, mine.output
    assert {s["user_id"] for s in json.loads(mine.stdout)["items"]} == {user}
    # WHEN keys are listed: the new one is there, without its value
    listing = sh("keys", "list", "--all", "--limit", "100")
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.stdout.splitlines() if line.startswith(key_id))
    assert uid("tutor") in row and "agent,read" in row and user in row
    assert key not in listing.stdout
    # WHEN it is revoked
    revoked = sh("keys", "revoke", key_id)
    assert revoked.exit_code == 0 and f"Revoked key {key_id}" in revoked.stdout
    keys = json.loads(sh("--json", "keys", "list", "--all", "--limit", "100").stdout)["items"]
    assert next(k for k in keys if k["key_id"] == key_id)["revoked_at"]
    # THEN it no longer works (401, with the hint), and revoking an unknown key is an API error
    refused = run(stack["api"], "sessions", "list", key=key)
    assert refused.exit_code == 1 and "error: unauthorized:" in refused.stderr
    unknown = sh("keys", "revoke", "0123456789abcdef")
    assert unknown.exit_code == 1 and "error: key_not_found:" in unknown.stderr
    as_json = json.loads(sh("--json", "keys", "create", "--scope", "read").stdout)
    assert as_json["key"].startswith("ssk_") and as_json["scopes"] == ["read"]


def test_keys_bootstrap_writes_the_first_admin_key_into_the_table(aws, api) -> None:
    """A new deployment has no key: the operator makes the first one with AWS credentials."""
    result = CliRunner().invoke(cli, ["keys", "bootstrap", "--table", aws.table_name])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("ssk_") and "\n" not in key
    assert "shown only now" in result.stderr
    assert api.as_key(key).post("/v1/keys", {"scopes": ["read"]}).status_code == 201
    usage = CliRunner().invoke(cli, ["keys", "bootstrap"])
    assert usage.exit_code == 2


# ---- webhook endpoints ---------------------------------------------------------------------


def test_endpoints_create_list_test_rotate_replay_disable_on_the_local_stack(sh, http, course) -> None:
    # GIVEN an inbox of its own as the receiver
    status, inbox = http("POST", "v1/inboxes", {"name": uid("endpoint receiver")})
    assert status == 201, inbox
    token = {"X-Inbox-Token": inbox["read_token"]}

    def captures() -> list[dict[str, Any]]:
        items = http("GET", f"v1/inboxes/{inbox['inbox_id']}/requests?limit=100", headers=token)[1]["items"]
        return [json.loads(c["body"]) for c in items if c["body"]]

    # WHEN it is registered as an endpoint for session starts only
    created = sh("endpoints", "create", inbox["capture_url"], "--event-type", "session_created",
                 "--description", "cli test")
    assert created.exit_code == 0, created.output
    endpoint_id, url = created.stdout.splitlines()[0].split()
    assert url == inbox["capture_url"] and created.stdout.splitlines()[1].startswith("secret: whsec_")
    try:
        # THEN a new session's start reaches it (and nothing else of the session)
        sid = uid("endpoint")
        start_session(http, sid, uid("endpoint-u"), course["B"])
        wait_for(lambda: any(c.get("session_id") == sid for c in captures()), what="the start at the endpoint")
        # it is listed with its filter and stats
        listing = sh("endpoints", "list", "--all")
        assert listing.exit_code == 0, listing.output
        row = next(line for line in listing.stdout.splitlines() if line.startswith(endpoint_id))
        assert "enabled" in row and "session_created" in row and inbox["capture_url"] in row
        # a test ping arrives
        ping = sh("endpoints", "test", endpoint_id)
        assert ping.exit_code == 0 and "queued" in ping.stdout, ping.output
        wait_for(lambda: any(c.get("event_type") == "ping" for c in captures()), what="the ping")
        # and with --wait the CLI says how it went
        waited = sh("endpoints", "test", endpoint_id, "--wait", "30")
        assert waited.exit_code == 0 and " delivered after 1 of " in waited.stdout, waited.output
        # a rotation prints the new secret and the grace
        rotated = sh("endpoints", "rotate", endpoint_id, "--grace", "60")
        assert rotated.exit_code == 0 and rotated.stdout.startswith("secret: whsec_"), rotated.output
        assert "signs too until" in rotated.stderr
        # a replay re-sends the session's start (same event id)
        since = events_of(http, sid)[0]["occurred_at"]
        replay = sh("endpoints", "replay", endpoint_id, "--since", since, "--batch", "1")
        assert replay.exit_code == 0, replay.output
        assert "Replayed" in replay.stdout
        event_id = events_of(http, sid)[0]["event_id"]

        def arrivals() -> int:  # the inbox stores a repeat of an id and body once and counts it
            items = http("GET", f"v1/inboxes/{inbox['inbox_id']}/requests?limit=100", headers=token)[1]["items"]
            return sum(1 + c.get("duplicates", 0) for c in items
                       if c["body"] and json.loads(c["body"]).get("event_id") == event_id)

        wait_for(lambda: arrivals() == 2, what="the replayed start")
        # disable, then enable (with the replay hint)
        disabled = sh("endpoints", "disable", endpoint_id)
        assert disabled.exit_code == 0 and f"{endpoint_id} disabled" in disabled.stdout
        enabled = sh("endpoints", "enable", endpoint_id)
        assert enabled.exit_code == 0 and "endpoints replay" in enabled.stderr
        # an unknown endpoint is the API's 404
        unknown = sh("endpoints", "test", "ep_0000000000000000")
        assert unknown.exit_code == 1 and "error: endpoint_not_found:" in unknown.stderr
    finally:
        assert http("DELETE", f"v1/webhook-endpoints/{endpoint_id}")[0] == 204
