"""Browser-facing security: every answer of every route (enumerated from the app's route
table) carries the security headers of its kind, HEAD works wherever GET does, and inbox
captures never serve a type a browser runs script in."""

from __future__ import annotations

import re

import pytest

from chalicelib.api.headers import API_HEADERS, INERT_POLICY, PAGE_HEADERS, PAGE_POLICY
from chalicelib.db import inbox as inbox_records
from tests.conftest import manual_body

ALWAYS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def route_table() -> list[tuple[str, str]]:
    from app import app

    return sorted((path, method) for path, methods in app.routes.items() for method in methods)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def send(api, method: str, path: str, key: bool = True, body: bytes = b"{}"):
    """A request as a browser or a script sends it; the answer as it comes (pages are no JSON)."""
    headers = {"Content-Type": "application/json", "X-Inbox-Token": "wrong"}
    if key:
        headers["Authorization"] = f"Bearer {api.key}"
    return api.client.http.request(method, path, headers=headers, body=body)


def assert_secured(response, what: object) -> None:
    """The headers an answer of its type must carry (a page's, or the inert set)."""
    headers = response.headers
    for name, value in ALWAYS.items():
        assert headers.get(name) == value, (what, name, headers)
    if headers.get("Content-Type", "").startswith("text/html"):
        assert headers["Content-Security-Policy"] == PAGE_POLICY, (what, headers)
        assert headers["Cache-Control"] == "no-cache", (what, headers)
    else:
        assert headers["Content-Security-Policy"] == INERT_POLICY, (what, headers)
        assert headers["Cache-Control"] in ("no-store", "public, max-age=86400"), (what, headers)
        if headers["Cache-Control"] != "no-store":  # only the dashboard's versioned files
            assert what[0] == "/dashboard/{asset}" and response.status_code == 200, (what, headers)


def test_the_page_policy_allows_only_the_apps_own_scripts_and_styles() -> None:
    directives = dict(d.split(" ", 1) for d in PAGE_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["object-src"] == directives["base-uri"] == directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in PAGE_POLICY and "*" not in PAGE_POLICY
    assert INERT_POLICY.startswith("sandbox; default-src 'none'")
    assert PAGE_HEADERS["X-Frame-Options"] == API_HEADERS["X-Frame-Options"] == "DENY"


def test_every_route_answers_with_the_security_headers(api) -> None:
    api.post("/v1/manuals", manual_body("x-1", 2))
    api.post("/v1/sessions", {"session_id": "x-1", "user_id": "u", "manual_id": "x-1"})
    checked = 0
    for path, method in route_table():
        for key in (True, False):  # admitted, and refused (401 from the gateway) or public
            response = send(api, method, concrete(path), key)
            assert response.status_code < 500, (path, method, response.body[:300])
            assert_secured(response, (path, method, key))
            checked += 1
    assert checked >= 2 * 60


def test_pages_and_files_carry_their_own_policies(api) -> None:
    for path in ("/dashboard", "/docs"):
        response = send(api, "GET", path, key=False, body=b"")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
        assert_secured(response, (path, "GET"))
        # no inline script or style: every <script> and stylesheet is a file of the app's own
        page = response.body.decode()
        assert "<style" not in page and " style=" not in page and "innerHTML" not in page
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert scripts and all(re.search(r'src="dashboard/\w+\.js\?v=', attrs) and not body.strip()
                               for attrs, body in scripts), scripts
    for asset in ("app.js", "style.css", "docs.js", "docs.css"):
        response = send(api, "GET", f"/dashboard/{asset}", key=False, body=b"")
        assert response.status_code == 200, asset
        assert_secured(response, ("/dashboard/{asset}", "GET"))
    assert b"innerHTML" not in send(api, "GET", "/dashboard/docs.js", key=False, body=b"").body


def test_chalices_own_errors_carry_them(api) -> None:
    # (unknown routes never reach the function: the local server's test is in tests/e2e)
    for method, path in (("TRACE", "/v1/sessions"), ("PUT", "/v1/manuals")):
        response = send(api, method, path)
        assert response.status_code == 405 and response.headers["Content-Type"] == "application/json"
        assert_secured(response, (path, method))


def test_answers_carrying_secrets_are_never_stored_by_a_cache(api) -> None:
    for path, body, secret in (("/v1/keys", {"scopes": ["read"]}, "key"),
                               ("/v1/inboxes", {"name": "n"}, "read_token")):
        response = api.post(path, body)
        assert response.status_code == 201 and response.json[secret]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_head_works_wherever_get_does(api) -> None:
    api.post("/v1/manuals", manual_body("x-1", 2))
    gets = [path for path, method in route_table() if method == "GET"]
    assert len(gets) >= 20
    for path in gets:
        get = send(api, "GET", concrete(path), body=b"")
        head = send(api, "HEAD", concrete(path), body=b"")
        # the same answer as GET (a GET that is refused, like the MCP endpoint's 405, stays so)
        assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
        assert head.headers["Content-Type"] == get.headers["Content-Type"], path
        assert_secured(head, (path, "HEAD"))
    # a key that may GET may HEAD, and one that may not, may not
    reader = api.post("/v1/keys", {"scopes": ["read"]}).json["key"]
    assert api.as_key(reader).request("HEAD", "/v1/manuals").status_code == 200
    bound = api.post("/v1/keys", {"scopes": ["read"], "user_id": "u-A"}).json["key"]
    assert api.as_key(bound).request("HEAD", "/v1/analytics/overview").status_code == 403
    assert api.as_key(None).request("HEAD", "/v1/manuals").status_code == 401


# ---- captures are inert ------------------------------------------------------------------

SCRIPT_CAPABLE = ["text/html", "TEXT/HTML; charset=utf-8", "application/xhtml+xml", "image/svg+xml",
                  "text/xml", "application/xml", "application/rss+xml", "text/javascript",
                  "application/javascript", "text/xsl", "multipart/x-mixed-replace; boundary=x",
                  "application/pdf", "text/vtt", "application/octet-stream"]
INERT = ["text/plain", "text/plain; charset=utf-8", "text/csv", "application/json",
         "application/problem+json", "application/x-www-form-urlencoded"]


@pytest.mark.parametrize("content_type", SCRIPT_CAPABLE)
def test_an_inbox_cannot_be_configured_to_serve_script_capable_content(api, content_type) -> None:
    body = {"status": 200, "content_type": content_type, "body": "<script>document.title='owned'</script>"}
    created = api.post("/v1/inboxes", {"response": body})
    assert created.status_code == 400, created.json
    assert created.json["error"] == "validation_error"
    assert [f["field"] for f in created.json["fields"]] == ["response.content_type"]
    assert "run script" in created.json["message"]
    box = api.post("/v1/inboxes", {}).json
    patched = api.patch(f"/v1/inboxes/{box['inbox_id']}", {"response": body},
                        headers={"X-Inbox-Token": box["read_token"]})
    assert (patched.status_code, patched.json["error"]) == (400, "validation_error")


@pytest.mark.parametrize("content_type", INERT)
def test_inert_types_are_served_sandboxed(api, content_type) -> None:
    box = api.post("/v1/inboxes", {"response": {"status": 201, "content_type": content_type,
                                                "body": "<script>document.title='owned'</script>"}}).json
    response = api.client.http.request("GET", f"/v1/hooks/{box['inbox_id']}", headers={}, body=b"")
    assert response.status_code == 201 and response.headers["Content-Type"] == content_type
    assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_an_inbox_stored_with_html_before_the_rule_answers_plain_text(api) -> None:
    # GIVEN an inbox configured, before types were checked, to answer HTML
    box = api.post("/v1/inboxes", {"inbox_id": "legacy-box"}).json
    item = inbox_records.get("legacy-box", consistent=True)
    assert item is not None
    legacy = {"status": 200, "content_type": "text/html", "body": "<script>alert(1)</script>"}
    inbox_records.set_fields("legacy-box", {"response": legacy})
    # WHEN a browser follows its capture URL
    response = api.client.http.request("GET", "/v1/hooks/legacy-box", headers={}, body=b"")
    # THEN the script comes back as text, sandboxed, and the inbox says what it serves
    assert response.status_code == 200 and response.body == b"<script>alert(1)</script>"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == INERT_POLICY
    shown = api.get("/v1/inboxes/legacy-box", headers={"X-Inbox-Token": box["read_token"]})
    assert shown.status_code == 200 and shown.json["response"]["content_type"] == "text/plain; charset=utf-8"


def test_every_answer_of_the_capture_url_is_inert(api) -> None:
    box = api.post("/v1/inboxes", {}).json
    token = {"X-Inbox-Token": box["read_token"]}
    answers = [api.client.http.request("POST", f"/v1/hooks/{box['inbox_id']}", headers={}, body=b"x"),
               api.client.http.request("POST", "/v1/hooks/no-such-box", headers={}, body=b"x")]
    api.patch(f"/v1/inboxes/{box['inbox_id']}", {"paused": True}, headers=token)
    answers.append(api.client.http.request("POST", f"/v1/hooks/{box['inbox_id']}", headers={}, body=b"x"))
    assert [a.status_code for a in answers] == [200, 404, 410]
    for answer in answers:
        assert answer.headers["Content-Security-Policy"] == INERT_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
