"""`make run`'s stack (python -m local.stack) in a subprocess, used over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


AUTH: dict[str, str] = {}  # the local stack's dev admin key, set by the `stack` fixture


def call(method: str, url: str, body: object = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def stack(local_stack) -> dict[str, str]:
    AUTH["Authorization"] = f"Bearer {local_stack['api_key']}"
    return local_stack


@pytest.fixture(scope="module")
def base_url(stack) -> str:
    return stack["api"]


def test_walkthrough_over_http(base_url: str, stack) -> None:
    manual = {"manual_id": "walk-m1", "title": "Demo", "steps": [
        {"step_number": 1, "title": "One", "content": "first"},
        {"step_number": 2, "title": "Two", "content": "second"}]}
    assert call("POST", f"{base_url}/v1/manuals", manual)[0] == 201
    status, session = call("POST", f"{base_url}/v1/sessions", {"session_id": "walk-s1", "user_id": "u1", "manual_id": "walk-m1"})
    assert status == 201 and session["status"] == "active"
    assert call("POST", f"{base_url}/v1/messages", {"session_id": "walk-s1", "user_id": "u1", "message": "hi", "sender": "user"})[0] == 201
    status, result = call("POST", f"{base_url}/v1/sessions/walk-s1/progress",
                          {"user_id": "u1", "current_step": 1, "step_status": "DONE"},
                          headers={"Idempotency-Key": "k1"})
    assert status == 200 and result["next_step"]["title"] == "Two"
    status, replay = call("POST", f"{base_url}/v1/sessions/walk-s1/progress",
                          {"user_id": "u1", "current_step": 1, "step_status": "DONE"},
                          headers={"Idempotency-Key": "k1"})
    assert replay["status"] == "already_processed"
    status, nxt = call("GET", f"{base_url}/v1/sessions/walk-s1/next-step")
    assert nxt["next_step"]["step_number"] == 2
    status, done = call("POST", f"{base_url}/v1/sessions/walk-s1/progress", {"user_id": "u1", "current_step": 2, "step_status": "DONE"})
    assert done["session"]["status"] == "completed"
    # the same paths answer without the /api stage prefix too
    root = base_url.removesuffix("/api")
    assert call("GET", f"{root}/v1/sessions/walk-s1")[1]["status"] == "completed"
    # the pipeline runs too: the app's own inbox `local` got every webhook, signed, in order
    token = {"X-Inbox-Token": "test-token"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        everything = call("GET", stack["webhooks"] + "?limit=100", headers=token)[1]["items"]
        received = [w for w in everything if '"session_id":"walk-s1"' in (w["body"] or "")]
        if len(received) >= 4:
            break
        time.sleep(0.2)
    oldest_first = list(reversed(received))
    assert [json.loads(w["body"])["event_type"] for w in oldest_first] == [
        "session_created", "progress_update", "progress_update", "session_ended"]
    assert all(w["signature"] == {"verified": True, "reason": None} for w in received)
    assert all(w["method"] == "POST" and w["headers"]["webhook-id"].startswith("evt_") for w in received)
    events = call("GET", f"{base_url}/v1/sessions/walk-s1/events")[1]["items"]
    assert {e["delivery_status"] for e in events} == {"delivered"}


def test_unknown_route_and_bad_json_are_json_4xx(base_url: str) -> None:
    status, body = call("GET", f"{base_url}/v1/nothing-here")
    assert status == 404 and body["error"] == "route_not_found"
    request = urllib.request.Request(f"{base_url}/v1/sessions", data=b"{oops", method="POST",
                                     headers={"Content-Type": "application/json", **AUTH})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and json.loads(err.value.read())["error"] == "invalid_json"


def test_api_keys_over_http_401_403_as_deployed(base_url: str) -> None:
    """The local gateway answers 401/403 with the same JSON bodies as the deployed
    GatewayResponses (infra/package.py), and a 403 is not mistaken for a missing route."""
    status, body = call("GET", f"{base_url}/v1/sessions", headers={"Authorization": ""})
    assert status == 401 and body["error"] == "unauthorized"
    status, body = call("GET", f"{base_url}/v1/sessions", headers={"Authorization": "Bearer ssk_nope"})
    assert status == 401 and body["error"] == "unauthorized"
    status, created = call("POST", f"{base_url}/v1/keys", {"scopes": ["read"], "name": "ro"})
    assert status == 201
    reader = {"Authorization": f"Bearer {created['key']}"}
    assert call("GET", f"{base_url}/v1/sessions", headers=reader)[0] == 200
    status, body = call("POST", f"{base_url}/v1/manuals", {"manual_id": "x"}, headers=reader)
    assert status == 403 and body["error"] == "forbidden"
    assert call("DELETE", f"{base_url}/v1/keys/{created['key_id']}")[0] == 204
    assert call("GET", f"{base_url}/v1/sessions", headers=reader)[0] == 401
    # health and capture stay open
    assert call("GET", f"{base_url}/health/live", headers={"Authorization": ""})[0] == 200


# ---- the local server over raw HTTP: bursts, protocol errors, contention ------------------


def raw(base_url: str, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send bytes exactly as given on a new connection; the answer's status, headers, body."""
    import http.client
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(base_url)
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode("latin-1"))
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


def assert_json_error(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got, headers, body = answer
    assert got == status, (got, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    parsed = json.loads(body)
    assert parsed["error"] == code and parsed["message"], parsed


def test_every_answer_over_http_carries_the_security_headers_and_head_has_no_body(base_url: str) -> None:
    from urllib.parse import urlsplit

    from chalicelib.api.headers import API_HEADERS, PAGE_HEADERS

    key, path = dict(AUTH), urlsplit(base_url).path  # the stage: /api
    answers = {
        "page": raw(base_url, request_bytes("GET", f"{path}/dashboard", {})),
        "json": raw(base_url, request_bytes("GET", f"{path}/v1/manuals", key)),
        "401 (gateway)": raw(base_url, request_bytes("GET", f"{path}/v1/manuals", {})),
        "404 (gateway)": raw(base_url, request_bytes("GET", f"{path}/v1/nothing-here", key)),
        "400 (server)": raw(base_url, request_bytes("POST", f"{path}/v1/manuals", {**key, "Content-Length": "abc"})),
    }
    assert answers["page"][0] == 200 and answers["json"][0] == 200
    assert [answers[k][0] for k in ("401 (gateway)", "404 (gateway)", "400 (server)")] == [401, 404, 400]
    for what, (_, headers, _) in answers.items():
        expected = PAGE_HEADERS if what == "page" else API_HEADERS
        assert {n.lower(): v for n, v in expected.items()}.items() <= headers.items(), (what, headers)
    # HEAD: the GET's status and headers, its length, no body (the next answer on the same
    # connection stays intact)
    for target, headers in ((f"{path}/dashboard", {}), (f"{path}/v1/manuals", key), (f"{path}/health/live", {})):
        get = raw(base_url, request_bytes("GET", target, headers))
        head = raw(base_url, request_bytes("HEAD", target, headers))
        assert head[0] == get[0] == 200 and head[2] == b"", (target, head)
        assert head[1]["content-length"] == str(len(get[2])) and head[1]["content-type"] == get[1]["content-type"]
        assert head[1]["content-security-policy"] == get[1]["content-security-policy"]
    status, headers, _ = raw(base_url, request_bytes("GET", f"{path}/dashboard/?a=1", {}))
    assert (status, headers["location"]) == (308, "../dashboard?a=1")  # relative URLs stay right


def test_a_burst_of_64_new_connections_is_all_answered(base_url: str) -> None:
    import socket
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    # GIVEN 64 clients that connect at the same instant
    where = urlsplit(base_url)
    ready = threading.Barrier(64)

    def one(_: int) -> tuple[float, int]:
        ready.wait()
        began = time.monotonic()
        sock = socket.create_connection((where.hostname, where.port), timeout=30)
        connected = time.monotonic() - began
        with sock:
            sock.sendall(request_bytes("GET", "/api/health/live", {"Connection": "close"}))
            import http.client

            response = http.client.HTTPResponse(sock)
            response.begin()
            return connected, response.status

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(64)))
    # THEN every one is answered, and none had to wait for the kernel to retry its SYN (the
    # kernel completes a handshake at once while the listen backlog has room, however busy
    # the server is; past a backlog of 5 it dropped SYNs, and clients reset or waited >= 1 s)
    assert [status for _, status in results] == [200] * 64
    assert max(connected for connected, _ in results) < 0.9, sorted(c for c, _ in results)[-5:]


def test_protocol_errors_are_answered_in_json(base_url: str) -> None:
    key = AUTH["Authorization"]
    # a request line over 64 KB, too many headers, a header line over 64 KB
    assert_json_error(raw(base_url, request_bytes("GET", "/api/v1/sessions?q=" + "x" * 70_000, {})), 414, "uri_too_long")
    many = {f"X-H{n}": "v" for n in range(120)}
    assert_json_error(raw(base_url, request_bytes("GET", "/api/v1/sessions", many)), 431, "headers_too_large")
    assert_json_error(raw(base_url, request_bytes("GET", "/api/v1/sessions", {"X-Big": "v" * 70_000})), 431,
                      "headers_too_large")
    # a Content-Length that is not a number, or two that disagree
    for lengths in ({"Content-Length": "abc"}, {"Content-Length": "-1"}, {"Content-Length": "１"}):
        assert_json_error(raw(base_url, request_bytes("POST", "/api/v1/sessions", {
            "Authorization": key, "Content-Type": "application/json", **lengths}, b"{}")), 400, "bad_request")
    # a body over API Gateway's 10 MB payload limit is refused before it is read
    assert_json_error(raw(base_url, request_bytes("POST", "/api/v1/sessions", {
        "Authorization": key, "Content-Type": "application/json", "Content-Length": str(11 * 1024 * 1024)})),
        413, "payload_too_large")
    # an unknown transfer coding, and a chunked body that is not chunked
    assert_json_error(raw(base_url, request_bytes("POST", "/api/v1/sessions", {
        "Authorization": key, "Content-Type": "application/json", "Transfer-Encoding": "gzip"}, b"{}")),
        400, "bad_request")
    assert_json_error(raw(base_url, request_bytes("POST", "/api/v1/sessions", {
        "Authorization": key, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        b"zz\r\n{}\r\n0\r\n\r\n")), 400, "bad_request")
    # a bad request line, and one that claims HTTP/2 (which is binary, never a text line)
    assert_json_error(raw(base_url, b"GARBAGE\r\n\r\n"), 400, "bad_request")
    assert_json_error(raw(base_url, b"GET /api/health/live HTTP/2.0\r\n\r\n"), 400, "bad_request")


def test_a_chunked_body_is_read_like_any_other(base_url: str) -> None:
    manual = json.dumps({"manual_id": "chunked-m", "title": "Chunked", "steps": [
        {"step_number": 1, "title": "One", "content": "x" * 5000}]}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(manual[i:i + 1000]), manual[i:i + 1000])
                      for i in range(0, len(manual), 1000)) + b"0\r\n\r\n"
    status, _, body = raw(base_url, request_bytes("POST", "/api/v1/manuals", {
        "Authorization": AUTH["Authorization"], "Content-Type": "application/json",
        "Transfer-Encoding": "chunked", "Connection": "close"}, chunks))
    assert status == 201, body
    assert call("GET", f"{base_url}/v1/manuals/chunked-m")[1]["steps"][0]["content"] == "x" * 5000


def test_32_concurrent_dones_over_http_all_land(base_url: str) -> None:
    from bench.bench_http import concurrent_dones

    result = concurrent_dones(base_url, AUTH["Authorization"].split()[1], "http-dones", threads=32)
    assert result.landed == 32, result
    assert result.completed_steps == list(range(1, 33)), result


def test_ctrl_c_of_make_run_stops_cleanly_and_make_exits_0() -> None:
    """`make run` in a terminal, as a newcomer runs it, then Ctrl-C: the stack stops, and make
    neither reports `*** [run] Interrupt` nor exits 2."""
    import os
    import pty
    import select

    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", "LOCAL_ACCESS_LOG": "0"}
    for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "WEBHOOK_URL", "DELIVERY_QUEUE_URL", "PUBLIC_API_URL"):
        env.pop(name, None)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: make, with the pty as its controlling terminal
        os.chdir(ROOT)
        # (-o: the suite runs inside the venv already; a test must never let make rebuild it)
        os.execvpe("make", ["make", "-o", ".venv/.installed", "run"], env)
    output = b""

    def read_until(done, timeout: float) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            if select.select([terminal], [], [], 0.2)[0]:
                try:
                    chunk = os.read(terminal, 65536)
                except OSError:  # the child side closed: everything has exited
                    return
                if not chunk:
                    return
                output += chunk

    try:
        read_until(lambda: b"Ctrl-C stops everything" in output, 90)
        assert b"Ctrl-C stops everything" in output, output.decode(errors="replace")[-2000:]
        os.write(terminal, b"\x03")  # the terminal turns it into SIGINT for its foreground group
        read_until(lambda: False, 30)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(terminal)
    text = output.decode(errors="replace")
    assert "Stopping..." in text
    assert "Interrupt" not in text and "***" not in text, text[-2000:]
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
