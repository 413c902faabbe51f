"""The adversarial probe of the local stack, as a hostile newcomer runs it, bounded to well
under a minute: bad bodies of every kind against every write route, broken HTTP framing,
hostile query values, the auth matrix of every route with every kind of key (user-bound
ones included), a delete racing writers, a burst of 64 new connections, a hostile Host.

Every answer must be a JSON error with a 4xx (never a 5xx, never HTML), and what was stored
before the probe must be intact after it (the last test checks)."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

RUN = uuid.uuid4().hex[:6]  # the local stack is shared with other test files: unique ids


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Http:
    """Raw HTTP to the local stack: one new connection per request, bodies sent as given.

    It honours a 429 as a well-behaved client does (waits its Retry-After and sends again):
    the local gateway's route limits are stage-wide, shared with the rest of the suite, and a
    flood here can meet them. A 429 answered to a probe would also pass for "a JSON 4xx"
    without the probe having reached the route, so none may stand as a probe's answer."""

    def __init__(self, base: str, key: str) -> None:
        where = urlsplit(base)
        self.host, self.port, self.prefix = where.hostname, where.port, where.path
        self.key = key
        self.throttled = 0  # 429s waited out

    def send(self, method: str, path: str, body: bytes | None = None, key: str | None = "",
             headers: dict[str, str] | None = None) -> Answer:
        """`key=""`: the module's admin key; None: no key; anything else: that key."""
        deadline = time.monotonic() + 60
        while True:
            answer = self._send_once(method, path, body, key, headers)
            if answer.status != 429:
                return answer
            # only a rate limit is waited out (a daily quota's Retry-After runs to midnight)
            assert answer.body.startswith(b"{") and answer.json.get("error") == "rate_limited", answer.body
            assert "retry-after" in answer.headers, answer.headers
            assert time.monotonic() < deadline, f"{method} {path}: still 429 after a minute of waiting"
            self.throttled += 1
            time.sleep(min(float(answer.headers["retry-after"]), 5.0))

    def _send_once(self, method: str, path: str, body: bytes | None, key: str | None,
                   headers: dict[str, str] | None) -> Answer:
        chosen = self.key if key == "" else key
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if chosen is not None:
            all_headers["Authorization"] = f"Bearer {chosen}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, self.prefix + path, body=body, headers=all_headers)
            response = conn.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.send(method, path, json.dumps(body).encode() if body is not None else None, **kw)

    def raw(self, data: bytes) -> Answer:
        import socket

        with socket.create_connection((self.host, self.port), timeout=30) as sock:
            sock.sendall(data)
            response = http.client.HTTPResponse(sock)
            response.begin()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


def assert_json_4xx(answer: Answer, what: Any) -> dict[str, Any]:
    assert 400 <= answer.status < 500, (what, answer.status, answer.body[:300])
    assert answer.headers.get("content-type", "").startswith("application/json"), (what, answer.headers)
    body = answer.json
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body.get("message"), (what, body)
    return body


@pytest.fixture(scope="module")
def api(local_stack: dict[str, Any]) -> Http:
    """An admin key of this module's own, with the highest per-key limits the keys API allows
    (as an operator lifts a heavy client's): the floods below neither meet the default plan nor
    drain the dev key the rest of the suite shares."""
    dev = Http(local_stack["api"], local_stack["api_key"])
    answer = dev.json("POST", "/v1/keys", {"name": f"adv-admin-{RUN}", "scopes": ["admin"],
                                           "rate_per_second": 10_000, "burst": 5_000})
    assert answer.status == 201, answer.body
    return Http(local_stack["api"], answer.json["key"])


@pytest.fixture(scope="module")
def canary(api: Http) -> dict[str, Any]:
    """Data stored before the probe, and how it looked: a manual, a session with messages and
    progress, an inbox with a capture."""
    manual_id, session_id, user = f"adv-m-{RUN}", f"adv-s-{RUN}", f"adv-u-{RUN}"
    manual = {"manual_id": manual_id, "title": "Canary", "steps": [
        {"step_number": n, "title": f"Step {n}", "content": "..."} for n in range(1, 6)]}
    assert api.json("POST", "/v1/manuals", manual).status == 201
    assert api.json("POST", "/v1/sessions", {"session_id": session_id, "user_id": user,
                                             "manual_id": manual_id}).status == 201
    for n in range(3):
        assert api.json("POST", f"/v1/sessions/{session_id}/messages",
                        {"user_id": user, "message": f"hello {n}", "sender": "user"}).status == 201
    assert api.json("POST", f"/v1/sessions/{session_id}/progress",
                    {"user_id": user, "current_step": 1, "step_status": "DONE"}).status == 200
    box = api.json("POST", "/v1/inboxes", {"inbox_id": f"adv-box-{RUN}"}).json
    assert api.send("POST", f"/v1/hooks/{box['inbox_id']}", b"canary", key=None,
                    headers={"Content-Type": "text/plain"}).status == 200
    data = {"manual_id": manual_id, "session_id": session_id, "user": user, "inbox": box}
    data["snapshot"] = snapshot(api, data)
    return data


def snapshot(api: Http, data: dict[str, Any]) -> dict[str, Any]:
    session = data["session_id"]
    state = api.send("GET", f"/v1/sessions/{session}").json
    token = {"X-Inbox-Token": data["inbox"]["read_token"]}
    return {
        "manual": api.send("GET", f"/v1/manuals/{data['manual_id']}").json["steps"],
        "session": {k: state[k] for k in ("status", "current_step", "completed_steps", "version",
                                          "message_count", "user_id")},
        "messages": [(m["message_id"], m["message"]) for m in
                     api.send("GET", f"/v1/sessions/{session}/messages?limit=100").json["items"]],
        "events": [(e["event_id"], e["sequence"], e["event_type"]) for e in
                   api.send("GET", f"/v1/sessions/{session}/events?limit=100").json["items"]],
        "captures": [(c["request_id"], c["body"]) for c in api.send(
            "GET", f"/v1/inboxes/{data['inbox']['inbox_id']}/requests", headers=token).json["items"]],
    }


@pytest.fixture(scope="module")
def document(api: Http) -> dict[str, Any]:
    return api.send("GET", "/v1/openapi.json").json


def concrete(template: str, canary: dict[str, Any], missing: bool = False) -> str:
    """A path for a route template: the canary's ids, or ids that exist nowhere."""
    values = {"session_id": canary["session_id"], "manual_id": canary["manual_id"],
              "inbox_id": canary["inbox"]["inbox_id"], "event_id": "evt_" + "0" * 32,
              "key_id": "0" * 16, "request_id": "req_" + "0" * 16, "asset": "nothing.js"}
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", f"adv-missing-{RUN}" if missing and name != "asset" else value)
    return path


# ---- bad bodies of every kind, against every write route ---------------------------------

BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("empty", b"", "application/json"),
    ("truncated", b'{"user_id": "u", ', "application/json"),
    ("not JSON", b"hello world", "application/json"),
    ("array", b"[1, 2, 3]", "application/json"),
    ("string", b'"a string"', "application/json"),
    ("number", b"42", "application/json"),
    ("null", b"null", "application/json"),
    ("nested 10000 deep", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    ("nested 40 deep", b'{"a":' * 40 + b"1" + b"}" * 40, "application/json"),
    ("lone surrogate", b'{"user_id": "\\ud800", "message": "\\udfff"}', "application/json"),
    ("invalid UTF-8", b'{"user_id": "\xff\xfe"}', "application/json"),
    ("raw NUL in a string", b'{"user_id": "a\x00b"}', "application/json"),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"user_id": "u"}', "application/json"),
    ("over 1 MB", b'{"message": "' + b"x" * (1024 * 1024 + 10) + b'"}', "application/json"),
    ("huge numbers", b'{"current_step": 1e400, "step_number": 99999999999999999999999}', "application/json"),
    ("wrong types", b'{"user_id": ["u"], "manual_id": {"a": 1}, "scopes": "admin", "paused": "yes"}',
     "application/json"),
    ("unknown fields only", b'{"zzz": 1, "__proto__": {"admin": true}}', "application/json"),
    ("invisible ids", json.dumps({"user_id": "ann\u202eb", "session_id": "s\u200b", "manual_id": "m\ufeff",
                                  "name": "\u00ad", "title": "\x00"}).encode(), "application/json"),
    ("JSON as text/plain", b'{"user_id": "u"}', "text/plain"),
    ("form encoded", b"user_id=u&manual_id=m", "application/x-www-form-urlencoded"),
]


def write_routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every route that writes (POST, PUT, PATCH) but the capture URL, which takes any body."""
    return sorted((method.upper(), path) for path, ops in document["paths"].items() for method in ops
                  if method in ("post", "put", "patch") and not path.startswith("/v1/hooks/"))


def test_bad_bodies_of_every_kind_get_json_4xx_on_every_write_route(api, canary, document) -> None:
    routes = write_routes(document)
    assert len(routes) >= 11
    cases = [(method, template, name, body, content_type) for method, template in routes
             for name, body, content_type in BAD_BODIES]

    def probe(case: tuple[str, str, str, bytes, str]) -> None:
        method, template, name, body, content_type = case
        answer = api.send(method, concrete(template, canary), body, headers={"Content-Type": content_type})
        if template in ("/v1/deliveries/redrive", "/v1/events/{event_id}/redeliver"):
            assert answer.status < 500, (method, template, name, answer.body[:300])  # take no body
            return
        assert_json_4xx(answer, (method, template, name))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(probe, cases))


def test_broken_http_framing_gets_json_4xx_on_every_write_route(api, canary, document) -> None:
    key = f"Authorization: Bearer {api.key}\r\n"
    for method, template in write_routes(document):
        path = f"{api.prefix}{concrete(template, canary)}"
        for framing in (b"Content-Length: abc\r\n", b"Content-Length: 5\r\nContent-Length: 6\r\n",
                        b"Transfer-Encoding: gzip\r\n", b"Transfer-Encoding: chunked\r\n"):
            head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{key}Content-Type: application/json\r\n".encode()
            answer = api.raw(head + framing + b"\r\nzz\r\n{}\r\n0\r\n\r\n")
            assert_json_4xx(answer, (method, template, framing))
        assert_json_4xx(api.raw(f"{method} {path}?{'q' * 70_000} HTTP/1.1\r\n\r\n".encode()), (method, "414"))
        headers = "".join(f"X-{n}: v\r\n" for n in range(120))
        assert_json_4xx(api.raw(f"{method} {path} HTTP/1.1\r\n{headers}\r\n".encode()), (method, "431"))


def test_hostile_query_values_get_json_4xx(api, canary, document) -> None:
    paged = [path for path, ops in document["paths"].items() if "get" in ops
             and any(p["name"] == "limit" for p in ops["get"].get("parameters", []))]
    assert len(paged) >= 7
    for template in paged:
        path = concrete(template, canary)
        for value in ("%C2%B2", "%D9%A3", "%EF%BC%95", "1e2", "-1", "0", "101", "9" * 30, "%00"):
            headers = {"X-Inbox-Token": canary["inbox"]["read_token"]}
            assert_json_4xx(api.send("GET", f"{path}?limit={value}", headers=headers), (template, value))
    for query in ("hours=%C2%B2", "hours=0", "hours=169"):
        assert_json_4xx(api.send("GET", f"/v1/analytics/recent-activity?{query}"), query)
    for user in ("ann\u202eb", "a\u200bb", "\u00ad", "\ufeffx", "a\x00", " "):
        assert_json_4xx(api.send("GET", f"/v1/sessions?user_id={quote(user)}"), user)
    assert_json_4xx(api.send("GET", "/v1/sessions?cursor=" + "A" * 3000), "long cursor")
    assert_json_4xx(api.send("GET", "/v1/sessions?cursor=bm90LWEtY3Vyc29y"), "forged cursor")


# ---- the auth matrix: every route, every kind of key -------------------------------------


@pytest.fixture(scope="module")
def keys(api: Http) -> dict[str, str]:
    def create(body: dict[str, Any]) -> str:
        answer = api.json("POST", "/v1/keys", {**body, "name": f"adv-{RUN}"})
        assert answer.status == 201, answer.body
        return answer.json["key"]

    return {"read": create({"scopes": ["read"]}), "agent": create({"scopes": ["agent"]}),
            "admin": api.key,
            "bound read": create({"scopes": ["read"], "user_id": f"adv-other-{RUN}"}),
            "bound agent": create({"scopes": ["agent"], "user_id": f"adv-other-{RUN}"})}


GRANTS = {"read": {"read"}, "agent": {"read", "agent"}, "admin": {"read", "agent", "admin"}}


def test_the_auth_matrix_of_every_route(api, canary, document, keys) -> None:
    # an admin key bound to a user is refused at creation
    refused = api.json("POST", "/v1/keys", {"scopes": ["admin"], "user_id": f"adv-other-{RUN}"})
    assert assert_json_4xx(refused, "bound admin")["error"] == "validation_error"
    cases = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if op.get("security") == []:
                continue  # public
            scope = op["x-scope"]
            for kind in ("none", "bogus", *keys):
                cases.append((method.upper(), path, scope, op["x-bound-keys"], kind))
    assert len(cases) >= 7 * 30

    def probe(case: tuple[str, str, str, bool, str]) -> None:
        method, template, scope, bound_ok, kind = case
        key = {"none": None, "bogus": "ssk_not_a_key"}.get(kind, keys.get(kind))
        # ids that exist nowhere: the matrix is about who may call, not about what it changes
        answer = api.send(method, concrete(template, canary, missing=True), b"{}", key=key,
                          headers={"X-Inbox-Token": "wrong"})
        assert answer.status < 500, (case, answer.body[:300])
        body = assert_json_4xx(answer, case) if answer.status >= 400 else answer.json
        if kind in ("none", "bogus"):
            assert (answer.status, body["error"]) == (401, "unauthorized"), (case, body)
        elif scope not in GRANTS[kind.split()[-1]] or (kind.startswith("bound") and not bound_ok):
            assert (answer.status, body["error"]) == (403, "forbidden"), (case, body)
        else:
            assert answer.status not in (401, 403) or body["error"] in ("token_required", "user_mismatch"), (case, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(probe, cases))


def test_a_bound_key_reaches_only_its_users_data(api, canary, keys) -> None:
    bound = keys["bound agent"]
    session = canary["session_id"]  # another user's
    for method, path, body in (
            ("GET", f"/v1/sessions/{session}", None), ("GET", f"/v1/sessions/{session}/messages", None),
            ("GET", f"/v1/sessions/{session}/events", None),
            ("POST", f"/v1/sessions/{session}/messages", {"user_id": canary["user"], "message": "x", "sender": "user"}),
            ("POST", f"/v1/sessions/{session}/progress",
             {"user_id": canary["user"], "current_step": 2, "step_status": "DONE"}),
            ("PATCH", f"/v1/sessions/{session}", {"status": "ended"}),
            ("GET", f"/v1/sessions?user_id={canary['user']}", None),
            ("GET", "/v1/analytics/overview", None), ("POST", "/v1/keys", {"scopes": ["read"]})):
        answer = api.json(method, path, body, key=bound)
        assert (answer.status, assert_json_4xx(answer, path)["error"]) == (403, "forbidden"), (path, answer.json)
    mine = api.json("GET", "/v1/sessions", key=bound)
    assert mine.status == 200 and mine.json["items"] == []


# ---- a delete racing writers --------------------------------------------------------------


def test_a_delete_racing_writers_over_http_leaves_nothing(api) -> None:
    manual_id, session_id, user = f"adv-race-m-{RUN}", f"adv-race-{RUN}", "racer"
    assert api.json("POST", "/v1/manuals", {"manual_id": manual_id, "title": "Race", "steps": [
        {"step_number": n, "title": f"S{n}", "content": "."} for n in range(1, 41)]}).status == 201
    body = {"session_id": session_id, "user_id": user, "manual_id": manual_id}
    assert api.json("POST", "/v1/sessions", body).status == 201
    for n in range(30):
        api.json("POST", f"/v1/sessions/{session_id}/messages", {"user_id": user, "message": f"m{n}", "sender": "user"})
    stop, codes, lock = threading.Event(), [], threading.Lock()

    def writer(n: int) -> None:
        step = 1
        while not stop.is_set():
            a = api.json("POST", f"/v1/sessions/{session_id}/progress",
                         {"user_id": user, "current_step": step, "step_status": "ONGOING"})
            b = api.json("POST", f"/v1/sessions/{session_id}/messages", {"user_id": user, "message": "w", "sender": "agent"})
            with lock:
                codes.extend([a.status, b.status])
            step = step % 40 + 1

    with ThreadPoolExecutor(4) as pool:
        writers = [pool.submit(writer, n) for n in range(4)]
        time.sleep(1.0)
        deleted = api.send("DELETE", f"/v1/sessions/{session_id}")
        time.sleep(0.5)
        stop.set()
        for done in writers:
            done.result()
    assert deleted.status == 204, deleted.body
    assert set(codes) <= {200, 201, 404} and 404 in codes, sorted(set(codes))
    for path in ("", "/events", "/messages"):
        assert api.send("GET", f"/v1/sessions/{session_id}{path}").status == 404, path
    # the same id starts clean and works to the end
    again = api.json("POST", "/v1/sessions", body)
    assert again.status == 201 and again.json["message_count"] == 0
    for step in range(1, 9):
        answer = api.json("POST", f"/v1/sessions/{session_id}/progress",
                          {"user_id": user, "current_step": step, "step_status": "DONE"})
        assert answer.status == 200, answer.body
    assert api.json("PATCH", f"/v1/sessions/{session_id}", {"status": "ended"}).status == 200
    assert api.send("GET", f"/v1/sessions/{session_id}/messages").json["items"] == []
    events = api.send("GET", f"/v1/sessions/{session_id}/events?limit=100").json["items"]
    assert [e["sequence"] for e in events] == list(range(1, 11))


# ---- a burst of new connections, a hostile Host -------------------------------------------


def test_a_burst_of_64_new_connections_all_answered(api) -> None:
    manual_id, session_id = f"adv-burst-m-{RUN}", f"adv-burst-{RUN}"
    assert api.json("POST", "/v1/manuals", {"manual_id": manual_id, "title": "Burst", "steps": [
        {"step_number": 1, "title": "One", "content": "."}]}).status == 201
    assert api.json("POST", "/v1/sessions", {"session_id": session_id, "user_id": "b", "manual_id": manual_id}).status == 201
    ready = threading.Barrier(64)

    def one(n: int) -> int:
        ready.wait()
        return api.json("POST", f"/v1/sessions/{session_id}/messages",
                        {"user_id": "b", "message": f"burst {n}", "sender": "user"}).status

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [201] * 64
    assert api.send("GET", f"/v1/sessions/{session_id}").json["message_count"] == 64


def test_capture_url_ignores_a_hostile_host(api, local_stack) -> None:
    answer = api.json("POST", "/v1/inboxes", {}, headers={"Host": "evil.example:666",
                                                          "X-Forwarded-Proto": "javascript",
                                                          "X-Forwarded-Host": "evil.example"})
    assert answer.status == 201, answer.body
    created = answer.json
    assert created["capture_url"] == f"{local_stack['api']}/v1/hooks/{created['inbox_id']}"


# ---- last: nothing stored before the probe was lost or changed ----------------------------


def test_the_data_stored_before_the_probe_is_intact(api, canary) -> None:
    assert snapshot(api, canary) == canary["snapshot"]
