"""The operator dashboard (/dashboard) and the docs page in real headless Chromium (Debian's
/usr/bin/chromium driven by playwright), against the local stack over HTTP.

Data is made through the API, as an agent would; each test then does what an operator does
(enters the API key, filters, pages, clicks) and checks what they would see. Every page's
screenshot goes to out/screenshots/ (or SCREENSHOTS_DIR: `make screenshots` refreshes the
committed ones in tests/screenshots/)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY_STORAGE = "session-service-api-key"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN = f"dash{secrets.token_hex(3)}"  # the local stack is shared by other test files


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (/usr/bin/chromium; `make test` installs Debian's "
                             "chromium package, or set CHROMIUM=/path/to/chromium)")

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from chalicelib.api import auth  # noqa: E402
from tests.conftest import wait_for  # noqa: E402

FORBIDDEN = json.loads(auth.FORBIDDEN_BODY)["message"]  # what the gateway answers a 403

expect.set_options(timeout=10_000)


# ---- the API, as an agent or a script calls it ----------------------------------------------


class Http:
    def __init__(self, stack: dict[str, str]) -> None:
        self.api = stack["api"]
        self.key = stack["api_key"]

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             key: str | None = "admin") -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if key:
            all_headers["Authorization"] = f"Bearer {self.key if key == 'admin' else key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.api}/{path}", data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        return status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, answer = self.call(method, path, body, **kw)
        assert status in (200, 201, 202, 204), (method, path, status, answer)
        return answer

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_for(probe, timeout, what)

    def events(self, session_id: str) -> list[dict]:
        return self.ok("GET", f"v1/sessions/{session_id}/events?limit=100")["items"]

    def delivered(self, session_id: str) -> bool:
        return all(e["delivery_status"] in ("delivered", "not_sent") for e in self.events(session_id))


def manual(manual_id: str, steps: int, title: str) -> dict:
    return {"manual_id": manual_id, "title": title,
            "steps": [{"step_number": n, "title": f"Step {n}", "content": f"Do thing {n}."}
                      for n in range(1, steps + 1)]}


@pytest.fixture(scope="module")
def http(local_stack: dict[str, str]) -> Http:
    return Http(local_stack)


@pytest.fixture(scope="module")
def data(http: Http) -> dict[str, Any]:
    """Two manuals; 12 sessions of one user (one of them completed), 2 of another user on the
    second manual; one session with a conversation whose last webhook failed for good."""
    ids = {"manual": f"{RUN}-python", "manual2": f"{RUN}-git", "user": f"{RUN}-ada",
           "user2": f"{RUN}-linus", "user3": f"{RUN}-grace", "detail": f"{RUN}-detail"}
    http.ok("POST", "v1/manuals", manual(ids["manual"], 3, "Introduction to Python"))
    http.ok("POST", "v1/manuals", manual(ids["manual2"], 2, "Git basics"))
    ids["sessions"] = [f"{RUN}-s{n:02d}" for n in range(12)]
    for session_id in ids["sessions"]:
        http.ok("POST", "v1/sessions", {"session_id": session_id, "user_id": ids["user"],
                                        "manual_id": ids["manual"]})
    for n in range(3):  # the newest of the user's sessions is completed
        http.ok("POST", f"v1/sessions/{ids['sessions'][-1]}/progress",
                {"user_id": ids["user"], "current_step": n + 1, "step_status": "DONE"})
    ids["completed"] = ids["sessions"][-1]
    for n in range(2):
        http.ok("POST", "v1/sessions", {"session_id": f"{RUN}-g{n}", "user_id": ids["user2"],
                                        "manual_id": ids["manual2"]})
    detail, user3 = ids["detail"], ids["user3"]
    http.ok("POST", "v1/sessions", {"session_id": detail, "user_id": user3, "manual_id": ids["manual"]})
    http.ok("POST", f"v1/sessions/{detail}/progress", {"user_id": user3, "current_step": 1, "step_status": "DONE"})
    http.ok("POST", f"v1/sessions/{detail}/messages", {"user_id": user3, "sender": "user",
                                                        "message": "I printed Hello, World!"})
    http.ok("POST", f"v1/sessions/{detail}/messages", {"user_id": user3, "sender": "agent",
                                                        "message": "Well done. Now declare a variable."})
    # GIVEN the receiver (the stack's own inbox `local`) answers 410 Gone while paused: the
    # webhook of step 2 fails for good ("gone": never retried, only redelivered by hand), and
    # the 410 disables the webhook endpoint `default`, which is enabled again after each
    http.wait_for("the first webhooks", lambda: http.delivered(detail) and http.delivered(ids["completed"]))
    token = {"X-Inbox-Token": "test-token"}
    http.ok("PATCH", "v1/inboxes/local", {"paused": True}, headers=token)
    ids["gone"] = f"{RUN}-gone"  # and one more, for a read-only key to try to redeliver
    try:
        for session_id, change in (
                (detail, lambda: http.ok("POST", f"v1/sessions/{detail}/progress",
                                         {"user_id": user3, "current_step": 2, "step_status": "DONE"})),
                (ids["gone"], lambda: http.ok("POST", "v1/sessions", {"session_id": ids["gone"], "user_id": user3,
                                                                      "manual_id": ids["manual2"]}))):
            change()
            http.wait_for("the 410", lambda: any(e["delivery_status"] == "gone" for e in http.events(session_id)))
            http.wait_for("the endpoint disabled by it",
                          lambda: not http.ok("GET", "v1/webhook-endpoints/default")["enabled"])
            http.ok("PATCH", "v1/webhook-endpoints/default", {"enabled": True})
    finally:
        http.ok("PATCH", "v1/inboxes/local", {"paused": False}, headers=token)
        http.ok("PATCH", "v1/webhook-endpoints/default", {"enabled": True})
    return ids


# ---- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary profile, removed on close
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Every Content-Security-Policy violation of a page, as the page itself sees it (its
# `securitypolicyviolation` events), reported to the test before the page's own scripts run.
REPORT_CSP = """document.addEventListener("securitypolicyviolation", e => window.__cspViolation({
  directive: e.effectiveDirective, blocked: e.blockedURI, page: document.URL, sample: e.sample}));"""


class Seen:
    """What the page did: JS errors, the hosts it reached, the API requests it sent, and every
    Content-Security-Policy violation (its events, and the browser's console messages, which
    also cover documents that run no script at all, such as a sandboxed capture)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.api_requests: list[tuple[str, str, dict[str, str]]] = []
        self.csp: list[Any] = []
        self.console: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", self.saw)
        page.on("console", lambda message: self.console.append(message.text))
        page.context.expose_binding("__cspViolation", lambda _source, violation: self.csp.append(violation))
        page.context.add_init_script(REPORT_CSP)

    def policy_messages(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "sandboxed" in m]

    def saw(self, request: Any) -> None:
        self.hosts.add(urllib.parse.urlsplit(request.url).hostname or request.url.split(":")[0])
        if "/v1/" in request.url:
            self.api_requests.append((request.method, request.url, request.headers))


SEEN: dict[Page, Seen] = {}


def seen(page: Page) -> Seen:
    return SEEN[page]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB",
                                  timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(10_000)
    SEEN[page] = Seen(page)
    yield page
    what = SEEN.pop(page)
    context.close()
    assert what.errors == [], what.errors
    assert what.csp == [] and what.policy_messages() == [], (what.csp, what.policy_messages())
    assert what.hosts <= {"127.0.0.1"}, what.hosts  # no CDN, no font service: works offline


def dashboard_url(http: Http, route: str = "") -> str:
    return f"{http.api}/dashboard{'#' + route if route else ''}"


def sign_in(page: Page, url: str, key: str) -> None:
    """Open the dashboard in a new tab and enter the API key in its key form."""
    page.goto(url)
    form = page.locator("#key-form")
    expect(form).to_be_visible()
    key_field(page).fill(key)
    form.get_by_role("button", name="Use this key").click()
    expect(form).to_be_hidden()
    expect(page.locator("#key-status")).to_contain_text(f"…{key[-4:]}")
    expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")  # the page reloaded its data


def key_field(page: Page) -> Any:
    return page.locator("#key-form").get_by_label("API key")


def shot(page: Page, name: str) -> None:
    """Check the page with axe-core (WCAG 2.x A/AA rules: no violation at all), then save its
    screenshot."""
    expect(page.locator("main[aria-busy]")).to_have_count(0)  # drawn, not still loading
    results = Axe().run(page, options={"resultTypes": ["violations"], "runOnly": {
        "type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
    assert results.violations_count == 0, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"])
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or "out/screenshots")
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def rows(page: Page, caption: str | re.Pattern) -> Any:
    table = page.locator("table").filter(has=page.locator("caption", has_text=caption))
    return table.locator("tbody tr")


def column(page: Page, caption: str | re.Pattern, index: int) -> list[str]:
    return [text.strip() for text in rows(page, caption).locator(f"td:nth-child({index})").all_inner_texts()]


def auth_enforced(http: Http) -> bool:
    status, _ = http.call("GET", "v1/manuals?limit=1", key="ssk_not_a_key_of_this_stack")
    return status == 401


# ---- tests ----------------------------------------------------------------------------------


def test_assets_are_served_with_types_and_caching(http: Http) -> None:
    def get(path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(f"{http.api}/{path}", timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    # sent without a key: the shell holds no data (the API calls it makes carry the key)
    status, headers, body = get("dashboard")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    version = re.search(rb'dashboard/app\.js\?v=([0-9a-f]{12})"', body)
    assert version, body[:500]
    for asset, content_type in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = get(f"dashboard/{asset}?v={version.group(1).decode()}")
        assert status == 200 and headers["Content-Type"].startswith(content_type), (asset, headers)
        assert "max-age=" in headers["Cache-Control"] and body
    status, headers, body = get("dashboard/secrets.txt")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == "asset_not_found"
    status, _, _ = get("dashboard/..%2F..%2Fapp.py")  # names are looked up, never joined to a path
    assert status == 404


def test_key_form_then_overview_with_chart_and_popular_manuals(page: Page, http: Http, data: dict) -> None:
    # GIVEN analytics have counted this module's sessions
    def counted() -> dict | None:
        popular = http.ok("GET", "v1/analytics/popular-manuals?limit=10")
        ours = [m for m in popular["items"] if m["manual_id"] == data["manual"]]
        if ours and ours[0]["sessions_started"] == 13:
            return popular
        full = len(popular["items"]) == 10 and min(m["sessions_started"] for m in popular["items"]) >= 13
        return popular if full and not ours else None  # ours cannot make the top 10

    popular = http.wait_for("analytics", counted)
    # WHEN an operator opens the dashboard in a new tab: it asks for the key first
    page.goto(dashboard_url(http))
    expect(page.locator("#key-form")).to_be_visible()
    expect(key_field(page)).to_be_focused()
    if auth_enforced(http):  # the API refused the key-less calls: the form says why
        expect(page.locator("#key-message")).to_contain_text("API key")
        expect(page.get_by_role("alert").filter(has_text="401")).to_have_count(4)
    shot(page, "api-key")
    seen(page).api_requests.clear()
    key_field(page).fill(http.key)
    page.get_by_role("button", name="Use this key").click()

    # THEN the overview shows the totals, the hourly chart and the popular manuals
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page).to_have_url(re.compile(r"/api/dashboard#/overview$"))
    totals = http.ok("GET", "v1/analytics/overview")
    cards = page.locator(".cards .card")
    sessions_shown = int(cards.filter(has=page.locator("dt", has_text=re.compile("^Sessions$"))).locator("dd").inner_text())
    assert sessions_shown >= 15 and sessions_shown <= totals["sessions"]["total"]
    expect(cards.filter(has_text="Completion rate").locator("dd")).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
    expect(cards.filter(has_text="Completed").locator("dd")).not_to_have_text("0")
    chart = page.get_by_role("img", name=re.compile("Sessions started per hour, last 24 hours"))
    expect(chart.locator("rect.bar")).to_have_count(24)
    started = sum(int(v) for v in chart.locator("rect.bar").evaluate_all("bars => bars.map(b => b.dataset.value)"))
    assert started >= 15
    expect(page.locator("figcaption")).to_contain_text(f"{started} sessions started")
    shown = column(page, "Manuals by sessions started", 1)
    assert shown == [m["manual_id"] for m in popular["items"]]
    if data["manual"] in shown:
        row = rows(page, "Manuals by sessions started").filter(has_text=data["manual"])
        expect(row.locator("td")).to_have_text([data["manual"], "13", "1", "7.7%"])
    # every API call carried the key
    sent = seen(page).api_requests
    assert len(sent) >= 3
    assert all(headers.get("authorization") == f"Bearer {http.key}" for _, _, headers in sent), sent
    shot(page, "overview")

    # AND the key can be forgotten: the form comes back
    page.get_by_role("button", name="Forget key").click()
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("#key-message")).to_have_text("Key forgotten. Enter an API key to continue.")
    assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") is None


def test_sessions_filters_pagination_and_link_to_detail(page: Page, http: Http, data: dict) -> None:
    sign_in(page, dashboard_url(http, "/sessions"), http.key)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sessions")

    # WHEN filtering by user with 10 per page
    page.get_by_label("User id").fill(data["user"])
    page.get_by_label("Per page").select_option("10")
    page.get_by_role("button", name="Apply filters").click()
    caption = f"Sessions (user {data['user']})"
    # THEN the first page shows 10 of the user's 12 sessions, newest first
    expect(rows(page, caption)).to_have_count(10)
    assert set(column(page, caption, 2)) == {data["user"]}
    assert column(page, caption, 1) == list(reversed(data["sessions"]))[:10]
    pages = page.get_by_role("navigation", name="Sessions pages")
    expect(pages).to_contain_text("Page 1")
    expect(pages.get_by_role("button", name="Previous")).to_be_disabled()
    shot(page, "sessions")
    pages.get_by_role("button", name="Next").click()
    expect(pages).to_contain_text("Page 2")
    expect(rows(page, caption)).to_have_count(2)
    assert column(page, caption, 1) == list(reversed(data["sessions"]))[10:]
    expect(pages.get_by_role("button", name="Next")).to_be_disabled()
    pages.get_by_role("button", name="Previous").click()
    expect(pages).to_contain_text("Page 1")
    expect(rows(page, caption)).to_have_count(10)

    # WHEN adding a status filter: only the completed session, shown complete
    page.get_by_label("Status").select_option("completed")
    page.get_by_label("Per page").select_option("50")
    page.get_by_role("button", name="Apply filters").click()
    caption = f"Sessions (status completed, user {data['user']})"
    expect(rows(page, caption)).to_have_count(1)
    row = rows(page, caption).first
    expect(row.locator("td").nth(3)).to_have_text("Completed")  # statuses read as words
    expect(row.get_by_role("progressbar")).to_have_attribute("value", "3")
    expect(row).to_contain_text("3/3")

    # WHEN filtering by manual only (the filters live in the address: a link can share them)
    page.goto(dashboard_url(http, f"/sessions?manual_id={data['manual2']}"))
    caption = f"Sessions (manual {data['manual2']})"
    expect(rows(page, caption)).to_have_count(3)
    assert column(page, caption, 1) == [data["gone"], f"{RUN}-g1", f"{RUN}-g0"]
    assert set(column(page, caption, 3)) == {data["manual2"]}
    expect(page.get_by_label("Manual id")).to_have_value(data["manual2"])

    # WHEN a session id is clicked: its detail page
    rows(page, caption).nth(1).get_by_role("link", name=f"{RUN}-g1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Session {RUN}-g1")
    expect(page.get_by_role("heading", level=1)).to_be_focused()


def test_session_detail_conversation_events_and_redeliver(page: Page, http: Http, data: dict) -> None:
    detail = data["detail"]
    sign_in(page, dashboard_url(http, f"/sessions/{detail}"), http.key)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Session {detail}")

    # THEN progress: 2 of 3 steps done, step 3 current, with its content
    progress = page.get_by_role("progressbar", name="2 of 3 steps completed (66.7%)")
    expect(progress).to_have_attribute("value", "2")
    expect(progress).to_have_attribute("max", "3")
    steps = page.get_by_role("list", name="Steps").locator("li")
    expect(steps).to_have_count(3)
    expect(steps).to_have_text(["✓Step 1: completed", "✓Step 2: completed", "3Step 3: current step"])
    expect(page.locator('[aria-current="step"]')).to_contain_text("Step 3")
    current = page.get_by_role("article", name="Step 3 of 3: Step 3")
    expect(current).to_contain_text("Do thing 3.")

    # AND the conversation, user and agent told apart
    chat = page.get_by_role("list", name="Conversation, oldest first").locator("li")
    expect(chat).to_have_count(2)
    expect(chat.nth(0)).to_have_class(re.compile("msg-user"))
    expect(chat.nth(0)).to_contain_text("User")
    expect(chat.nth(0)).to_contain_text("I printed Hello, World!")
    expect(chat.nth(1)).to_have_class(re.compile("msg-agent"))
    expect(chat.nth(1)).to_contain_text("Agent")
    expect(chat.nth(1)).to_contain_text("Well done. Now declare a variable.")
    assert chat.nth(0).evaluate("e => getComputedStyle(e).backgroundColor") != \
        chat.nth(1).evaluate("e => getComputedStyle(e).backgroundColor")

    # AND the events with their webhook deliveries: the last one was refused with 410
    events = page.get_by_role("list", name="Events, oldest first").locator("> li")
    expect(events).to_have_count(3)
    expect(events.nth(0)).to_contain_text("#1 session_created")
    expect(events.nth(0).locator(".delivery")).to_have_text("Webhook: Delivered · 1 attempt")
    gone = events.filter(has_text="#3 progress_update")
    expect(gone).to_contain_text("step 2 DONE")
    expect(gone.locator(".delivery")).to_have_text("Webhook: Gone (the receiver answered 410) · 1 attempt")
    gone.get_by_text("Delivery attempts", exact=True).click()
    expect(gone.locator("table tbody tr")).to_have_text([re.compile(r"^1 of \d+\s*Gone \(410\)\s*HTTP 410\s*\d+ ms")])
    # only the failed one offers Redeliver
    expect(page.get_by_role("button", name="Redeliver")).to_have_count(1)
    shot(page, "session-detail")

    # WHEN the operator redelivers it (the receiver is back)
    gone.get_by_role("button", name="Redeliver").click()
    expect(gone.get_by_role("status")).to_have_text(
        "Queued for redelivery to default: the new attempt shows here on its own.")
    expect(gone.locator(".delivery")).to_contain_text("Pending")
    expect(page.get_by_role("button", name="Redeliver")).to_have_count(0)
    # THEN once delivered, the page shows the second, successful attempt on its own (no reload)
    page.evaluate("window.__sameDocument = true")
    http.wait_for("the redelivery", lambda: http.delivered(detail))
    gone = page.get_by_role("list", name="Events, oldest first").locator("> li").filter(has_text="#3 progress_update")
    expect(gone.locator(".delivery")).to_have_text("Webhook: Delivered · 2 attempts")
    assert page.evaluate("window.__sameDocument") is True
    expect(page.get_by_role("button", name="Redeliver")).to_have_count(0)


def test_manual_create_shows_json_and_validation_errors_then_succeeds(page: Page, http: Http, data: dict,
                                                                       tmp_path: Path) -> None:
    sign_in(page, dashboard_url(http, "/manuals"), http.key)
    expect(page.get_by_role("heading", level=1)).to_have_text("Manuals")
    listed = http.ok("GET", "v1/manuals?limit=20")["items"]
    expect(rows(page, "Manuals, by id")).to_have_count(len(listed))
    assert column(page, "Manuals, by id", 1) == [m["manual_id"] for m in listed]
    form = page.get_by_role("form", name="Create a manual")
    text = form.get_by_label("Manual JSON")

    # WHEN the pasted text is not JSON: said at once, nothing sent
    seen(page).api_requests.clear()
    text.fill('{"manual_id": "oops", ')
    form.get_by_role("button", name="Create manual").click()
    expect(form.get_by_role("alert")).to_contain_text("Not valid JSON")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_be_focused()
    assert not [r for r in seen(page).api_requests if r[0] == "POST"]

    # WHEN the API refuses it: each field's problem is listed
    bad = {"manual_id": f"{RUN} bad id", "title": "", "steps": [
        {"step_number": 1, "title": "One", "content": ""}, {"step_number": 3, "title": "Three"}]}
    text.fill(json.dumps(bad))
    form.get_by_role("button", name="Create manual").click()
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("The API refused this manual")
    expect(alert).to_contain_text("2 fields need fixing. (400 validation_error)")
    expect(alert.locator("li")).to_have_text([
        re.compile(r"^manual_id: String should match pattern"),
        re.compile(r"^title: String should have at least 1 character")])
    shot(page, "manual-create-error")

    # WHEN a valid manual is loaded from a .json file
    upload = tmp_path / "sql.json"
    upload.write_text(json.dumps(manual(f"{RUN}-sql", 4, "SQL in four steps")))
    form.get_by_label("…or load a .json file").set_input_files(str(upload))
    expect(form).to_contain_text("Loaded sql.json")
    expect(text).to_have_value(re.compile(f'"{RUN}-sql"'))
    form.get_by_role("button", name="Create manual").click()
    # THEN it is created and linked
    expect(form.get_by_role("status")).to_have_text(f"Created manual {RUN}-sql (4 steps).")
    expect(text).not_to_have_attribute("aria-invalid", "true")
    assert http.ok("GET", f"v1/manuals/{RUN}-sql")["total_steps"] == 4
    form.get_by_role("link", name=f"{RUN}-sql").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Manual {RUN}-sql")
    expect(page.get_by_text("SQL in four steps")).to_be_visible()
    expect(page.locator(".manual-steps > li h3")).to_have_text(
        ["1. Step 1", "2. Step 2", "3. Step 3", "4. Step 4"])
    shot(page, "manual-detail")
    # AND sending the same file again is accepted as the same manual
    page.goto(dashboard_url(http, "/manuals"))
    form.get_by_label("…or load a .json file").set_input_files(str(upload))
    form.get_by_role("button", name="Create manual").click()
    expect(form.get_by_role("status")).to_contain_text("already exists with the same content")
    shot(page, "manuals")


def test_inbox_viewer_shows_captured_webhooks_with_signature_verdict(page: Page, http: Http, data: dict) -> None:
    # GIVEN a session whose session_created webhook reached the inbox `local`
    session_id = f"{RUN}-inbox"
    http.ok("POST", "v1/manuals", manual(f"{RUN}-inbox", 1, "Inbox test"))
    http.ok("POST", "v1/sessions", {"session_id": session_id, "user_id": data["user3"], "manual_id": f"{RUN}-inbox"})
    http.wait_for("the webhook", lambda: http.delivered(session_id))
    event_id = http.events(session_id)[0]["event_id"]
    sign_in(page, dashboard_url(http, "/inbox"), http.key)
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    expect(page.get_by_label("Inbox id")).to_have_value("local")

    # WHEN a wrong token is entered: the API's answer is shown
    page.get_by_label("Read token").fill("not-the-token")
    page.get_by_role("button", name="Show requests").click()
    expect(page.get_by_role("alert")).to_contain_text("(404 inbox_not_found)")

    # WHEN the right one: the captured webhooks, newest first, each verified
    page.get_by_label("Read token").fill("test-token")
    page.get_by_label("Method").select_option("POST")
    page.get_by_role("button", name="Show requests").click()
    caption = "Requests captured by inbox local"
    row = rows(page, caption).filter(has_text=event_id)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("POST")
    expect(row.locator("td").nth(2)).to_have_text("/v1/hooks/local")
    expect(row.locator("td").nth(5)).to_have_text("✓ verified")
    assert set(column(page, caption, 2)) == {"POST"}
    shot(page, "inbox")

    # WHEN it is opened: its headers, body and verdict
    row.get_by_role("link", name=re.compile("^Details of POST")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Captured request req_")
    expect(page.locator(".facts")).to_contain_text("✓ verified")
    headers = rows(page, "Headers as received")
    expect(headers.filter(has=page.locator("th", has_text=re.compile("^webhook-id$")))).to_contain_text(event_id)
    expect(headers.filter(has=page.locator("th", has_text=re.compile("^webhook-signature$")))).to_contain_text("v1,")
    body = page.get_by_label("Body")
    expect(body).to_contain_text(f'"event_id": "{event_id}"')
    expect(body).to_contain_text('"event_type": "session_created"')
    shot(page, "inbox-request")


def test_api_errors_are_shown_not_swallowed(page: Page, http: Http, data: dict) -> None:
    # an unknown session: the API's 404 and its message
    sign_in(page, dashboard_url(http, f"/sessions/{RUN}-nope"), http.key)
    alert = page.get_by_role("alert").filter(has_text="Could not load this session")
    expect(alert).to_contain_text(f"Session '{RUN}-nope' not found")
    expect(alert).to_contain_text("(404 session_not_found)")
    shot(page, "error-not-found")

    # a wrong key: the API answers 401 and the key form comes back with its message
    if not auth_enforced(http):  # before API keys: the browser sees the answer the API will give
        page.route("**/v1/**", lambda route: route.fulfill(status=401, content_type="application/json", body=json.dumps(
            {"error": "unauthorized", "message": "A valid API key is required: send Authorization: Bearer <key>."})))
    page.get_by_role("button", name="Change key").click()
    key_field(page).fill("ssk_wrong_key_0000")
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("#key-message")).to_contain_text("A valid API key is required")
    expect(page.locator("#key-message")).to_contain_text("The API rejected the key ending …0000")
    expect(key_field(page)).to_be_focused()
    expect(page.get_by_role("alert").filter(has_text="(401 unauthorized)").first).to_be_visible()
    shot(page, "error-unauthorized")
    page.unroute("**/v1/**")

    # a read-only key pressing Redeliver: 403 and its message, next to the button
    status, created = http.call("POST", "v1/keys", {"scopes": ["read"], "name": f"{RUN} read-only"})
    if status == 201:
        read_key = created["key"]
    else:  # before API keys: answer the redelivery as the API will
        read_key = "ssk_read_only_0000"
        page.route("**/v1/events/*/redeliver", lambda route: route.fulfill(
            status=403, content_type="application/json", body=json.dumps(
                {"error": "forbidden", "message": FORBIDDEN})))
    key_field(page).fill(read_key)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-form")).to_be_hidden()
    page.goto(dashboard_url(http, f"/sessions/{data['gone']}"))
    event = page.get_by_role("list", name="Events, oldest first").locator("> li").filter(has_text="gone")
    event.get_by_role("button", name="Redeliver").click()
    alert = event.get_by_role("alert")
    expect(alert).to_contain_text(f"Redeliver to default failed: {FORBIDDEN}")
    expect(alert).to_contain_text("(403 forbidden)")
    expect(alert).to_contain_text("not allowed to do this")
    expect(event.get_by_role("button", name="Redeliver")).to_be_enabled()
    shot(page, "error-forbidden")


def test_keyboard_navigation_and_root_path(page: Page, http: Http, data: dict) -> None:
    # served without /api too (local/stack.py): the API base follows the page's location
    root = http.api.removesuffix("/api")
    sign_in(page, f"{root}/dashboard#/manuals/{data['manual']}", http.key)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Manual {data['manual']}")
    expect(page.locator(".manual-steps > li")).to_have_count(3)
    assert all("/api/" not in url for _, url, _ in seen(page).api_requests)

    # the first Tab reaches the skip link, then the navigation; Enter follows a link
    page.reload()  # the key stays for the tab's life: no form this time
    expect(page.locator(".manual-steps > li")).to_have_count(3)
    expect(page.locator("#key-form")).to_be_hidden()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    sessions_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions")
    expect(sessions_link).to_be_focused()
    outline = sessions_link.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"  # focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sessions")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    expect(sessions_link).to_have_attribute("aria-current", "page")


def test_docs_page_lists_the_operations_with_the_same_key(page: Page, http: Http) -> None:
    if auth_enforced(http):  # a new tab without a key: the docs page asks for one
        page.goto(f"{http.api}/docs")
        expect(page.get_by_role("alert")).to_contain_text("API key")
        page.get_by_label("API key").fill(http.key)
        page.get_by_role("button", name="Use this key").click()
        expect(page.get_by_role("heading", name="sessions")).to_be_visible()
        page.evaluate(f"sessionStorage.removeItem('{KEY_STORAGE}')")
    # the key entered in the dashboard serves the docs page of the same tab
    sign_in(page, dashboard_url(http, "/overview"), http.key)
    seen(page).api_requests.clear()
    page.get_by_role("link", name="API docs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Session service API")
    expect(page.get_by_role("heading", name="sessions")).to_be_visible()
    operation = page.locator("details").filter(has_text="/v1/sessions/{session_id}/progress")
    expect(operation.locator("summary")).to_contain_text("POST")
    operation.locator("summary").click()
    # the request body's fields, with types and descriptions (never a bare $ref)
    body = operation.locator("table").filter(has=page.locator("caption", has_text="Body of reportProgress"))
    step = body.locator("tr").filter(has=page.locator("td code", has_text=re.compile(r"^current_step$")))
    expect(step.locator("td").nth(1)).to_have_text("integer, 1 to 1000")
    expect(step.locator("td").nth(2)).to_have_text("yes")
    expect(step.locator("td").nth(3)).to_contain_text("The step reported on")
    expect(body.locator("tr").filter(has_text="step_status")).to_contain_text("one of: DONE, ONGOING")
    # parameters, and each response: its schema's fields (nested too), error codes, headers
    parameters = operation.locator("table").filter(has=page.locator("caption", has_text="Parameters of reportProgress"))
    expect(parameters.locator("tr").filter(has_text="Idempotency-Key")).to_contain_text("header")
    responses = operation.locator("dl.responses")
    expect(responses).to_contain_text("session.started_at")
    expect(responses).to_contain_text("string (date-time)")
    expect(responses).to_contain_text("session_not_found")
    expect(responses).to_contain_text("Idempotent-Replayed")
    expect(responses).to_contain_text("Retry-After")
    assert "$ref" not in page.locator("main").inner_text()
    expect(page.locator("summary", has_text="/dashboard/{asset}")).to_be_visible()
    sent = [h for m, u, h in seen(page).api_requests if u.endswith("/v1/openapi.json")]
    assert sent and all(h.get("authorization") == f"Bearer {http.key}" for h in sent)
    shot(page, "docs")
    # and back, one click: the dashboard, still with the tab's key
    page.get_by_role("link", name="Operator dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.locator("#key-form")).to_be_hidden()


def test_the_overview_counts_failed_deliveries_and_links_to_their_list(page: Page, http: Http, data: dict) -> None:
    # GIVEN a webhook that spent its three attempts (the stack's inbox answered 500 meanwhile)
    token = {"X-Inbox-Token": "test-token"}
    http.ok("PATCH", "v1/inboxes/local", {"response": {"status": 500, "body": "down", "content_type": "text/plain"}},
            headers=token)
    session_id = f"{RUN}-undelivered"
    try:
        http.ok("POST", "v1/sessions", {"session_id": session_id, "user_id": data["user3"], "manual_id": data["manual2"]})
        event = http.wait_for("the webhook to fail for good",
                              lambda: [e for e in http.events(session_id) if e["delivery_status"] == "failed"], 40)[0]
    finally:
        http.ok("PATCH", "v1/inboxes/local", {"response": {"status": 200, "body": '{"ok": true}',
                                                           "content_type": "application/json"}}, headers=token)
    failed = http.wait_for("the failed count", lambda: http.ok("GET", "v1/analytics/overview")["deliveries_failed"])
    # WHEN the operator opens the overview
    sign_in(page, dashboard_url(http, "/overview"), http.key)
    card = page.locator(".cards .card").filter(has=page.locator("dt", has_text="Failed deliveries"))
    # THEN it shows how many webhooks failed for good, the latest of them with the endpoint
    # each failed at, and links to their list
    expect(card.locator("dd")).to_contain_text(str(failed))
    latest = rows(page, "The latest webhooks that failed for good").filter(has_text=event["event_id"])
    expect(latest.locator("> td")).to_have_text([event["event_id"], "default", "session_created", session_id,
                                               "HTTP 500", re.compile(r"UTC$")])
    expect(latest.get_by_role("link", name="default")).to_have_attribute("href", "#/endpoints/default")
    card.get_by_role("link", name="see the list").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Failed deliveries")
    row = rows(page, "Webhooks that spent their attempts").filter(has_text=event["event_id"])
    expect(row.locator("> td")).to_have_text([event["event_id"], "default", "session_created", session_id, "3", "HTTP 500",
                                            re.compile(r"UTC$"), re.compile(r"^Redeliver")])
    row.get_by_role("link", name=session_id).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(session_id)
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Failed deliveries")
    shot(page, "deliveries-failed")


SCRIPT = ("<title>captured</title><script>document.title = 'owned'; window.owned = sessionStorage.getItem("
          f"'{KEY_STORAGE}')</script><img src=\"x\" onerror=\"document.title = 'owned'\">")


def test_the_pages_policy_refuses_script_injected_into_the_dashboard(page: Page, http: Http) -> None:
    # (a trailing slash is redirected by the server, no inline script: the route is kept)
    page.goto(f"{http.api}/dashboard/#/manuals")
    expect(page).to_have_url(re.compile(r"/api/dashboard#/manuals$"))
    sign_in(page, dashboard_url(http, "/overview"), http.key)
    assert seen(page).csp == []  # the dashboard itself breaks no rule of its policy
    # WHEN markup with inline script reaches the page (as an XSS would put it there)
    page.evaluate("""() => {
      const s = document.createElement("script"); s.textContent = "window.injected = 1"; document.body.append(s);
      const div = document.createElement("div"); div.setAttribute("onclick", "window.injected = 2");
      document.body.append(div); div.click();
    }""")
    # THEN none of it runs, and each refusal is reported
    assert page.evaluate("typeof window.injected") == "undefined"
    wanted = {"script-src-elem", "script-src-attr"}
    # (the reports arrive while playwright waits: wait_for_timeout lets them in)
    wait_for(lambda: page.wait_for_timeout(50) or wanted <= {v["directive"] for v in seen(page).csp}, 5,
             f"{wanted} reported")
    seen(page).csp.clear()
    seen(page).console.clear()


def test_a_capture_url_cannot_run_script_on_the_dashboards_origin(page: Page, http: Http) -> None:
    # an inbox cannot be made to answer HTML (or any type a browser runs script in)
    status, refused = http.call("POST", "v1/inboxes", {"response": {"content_type": "text/html", "body": SCRIPT}})
    assert (status, refused["error"]) == (400, "validation_error"), refused
    assert refused["fields"][0]["field"] == "response.content_type"
    # GIVEN an inbox that answers the script as text, and an operator signed in to the dashboard
    box = http.ok("POST", "v1/inboxes", {"name": f"{RUN} script", "response": {
        "status": 200, "content_type": "text/plain", "body": SCRIPT}})
    assert box["capture_url"].startswith(http.api)  # the dashboard's origin
    sign_in(page, dashboard_url(http, "/overview"), http.key)
    # WHEN the same tab follows a link to the capture URL
    answer = page.goto(box["capture_url"])
    # THEN the script is shown as text, never run, and could not have read the key anyway
    assert answer is not None and answer.status == 200
    assert answer.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    assert answer.headers["x-content-type-options"] == "nosniff"
    expect(page.locator("body")).to_contain_text("<script>document.title = 'owned'")
    assert page.title() != "owned" and page.evaluate("typeof window.owned") == "undefined"
    storage = page.evaluate(f"""() => {{ try {{ return sessionStorage.getItem("{KEY_STORAGE}"); }}
                                         catch (e) {{ return e.name; }} }}""")
    assert storage == "SecurityError"  # the sandbox gives the capture an origin of its own

    # AND had the body been HTML (an inbox stored before types were checked is served as
    # text; this is the capture's own answer with an HTML type), its policy stops the script
    headers = {**answer.headers, "content-type": "text/html"}
    page.route(box["capture_url"], lambda route, _request: route.fulfill(status=200, headers=headers, body=SCRIPT))
    page.goto(box["capture_url"])
    expect(page).to_have_title("captured")
    assert page.evaluate("typeof window.owned") == "undefined"
    reported = seen(page).policy_messages()
    assert any("sandboxed" in m and "allow-scripts" in m for m in reported), seen(page).console
    assert any("Content Security Policy" in m and "img" in m.lower() for m in reported), reported
    seen(page).console.clear()
    page.unroute(box["capture_url"])

    # AND a captured request whose body is that script is shown by the dashboard as text
    request = urllib.request.Request(box["capture_url"], data=SCRIPT.encode(), method="POST",
                                     headers={"Content-Type": "text/html"})
    with urllib.request.urlopen(request, timeout=10) as captured:
        assert captured.status == 200
    page.goto(dashboard_url(http, "/inbox"))
    page.get_by_label("Inbox id").fill(box["inbox_id"])
    page.get_by_label("Read token").fill(box["read_token"])
    page.get_by_label("Method").select_option("POST")
    page.get_by_role("button", name="Show requests").click()
    page.get_by_role("link", name=re.compile("^Details of POST")).click()
    expect(page.get_by_label("Body")).to_have_text(SCRIPT)
    expect(page).to_have_title(re.compile("^(?!owned)"))
    assert page.locator("main img").count() == 0 and page.evaluate("typeof window.owned") == "undefined"


def capture_raw(http: Http, inbox_id: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(f"{http.api}/v1/hooks/{inbox_id}", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_inbox_shows_forwards_duplicates_conflicts_and_metrics(page: Page, http: Http) -> None:
    # GIVEN an inbox forwarding to two destinations: one that takes everything, one paused (410)
    dest = http.ok("POST", "v1/inboxes", {"name": f"{RUN} destination"})
    paused = http.ok("POST", "v1/inboxes", {"name": f"{RUN} paused"})
    http.ok("PATCH", f"v1/inboxes/{paused['inbox_id']}", {"paused": True},
            headers={"X-Inbox-Token": paused["read_token"]})
    relay = http.ok("POST", "v1/inboxes", {"name": f"{RUN} relay",
                                           "forward_to": [dest["capture_url"], paused["capture_url"]]})
    token = {"X-Inbox-Token": relay["read_token"]}
    # AND a sender that sends one webhook three times, then the same id with a changed body
    for _ in range(3):
        capture_raw(http, relay["inbox_id"], b'{"order": 1}', {"webhook-id": f"{RUN}-w1", "Content-Type": "application/json"})
    capture_raw(http, relay["inbox_id"], b'{"order": 2}', {"webhook-id": f"{RUN}-w1", "Content-Type": "application/json"})

    def settled() -> list[dict] | None:
        items = http.ok("GET", f"v1/inboxes/{relay['inbox_id']}/requests", headers=token)["items"]
        done = len(items) == 2 and all(f["status"] in ("delivered", "gone") for i in items for f in i["forwards"])
        return items if done else None

    conflicting, first = http.wait_for("the forwards", settled)
    # WHEN the operator opens the inbox with its token
    sign_in(page, dashboard_url(http, "/inbox"), http.key)
    page.get_by_label("Inbox id").fill(relay["inbox_id"])
    page.get_by_label("Read token").fill(relay["read_token"])
    page.get_by_role("button", name="Show requests").click()
    # THEN its destinations and its last 24 hours are shown
    destinations = page.get_by_role("list", name="Forward destinations")
    expect(destinations.get_by_role("listitem")).to_have_text([dest["capture_url"], paused["capture_url"]])
    summary = page.locator(".inbox-summary")
    for label, value in (("Captures", "4"), ("Duplicates", "2"), ("Conflicts", "1"), ("Answered", "200: 4")):
        expect(summary.locator("div", has=page.locator("dt", has_text=re.compile(f"^{label}$"))).locator("dd")).to_have_text(value)
    expect(summary.locator("dd").filter(has_text="410")).to_have_text(re.compile("200: 2, 410: 2|410: 2, 200: 2"))
    expect(rows(page, "Captures per hour")).to_have_count(1)
    # AND each capture says whether it repeated or conflicted and how its forwards went
    caption = f"Requests captured by inbox {relay['inbox_id']}"
    original = rows(page, caption).filter(has=page.get_by_role("link", name=f"Details of POST {first['request_id']}"))
    expect(original.locator("td").nth(6)).to_have_text("2 duplicates")
    changed = rows(page, caption).filter(has=page.get_by_role("link", name=f"Details of POST {conflicting['request_id']}"))
    expect(changed.locator("td").nth(6)).to_have_text("conflict")
    expect(changed.get_by_role("list", name=f"Forwards of {conflicting['request_id']}").get_by_role("listitem")).to_have_text(
        ["delivered (1 attempt)", "gone (1 attempt)"])
    shot(page, "inbox-forwarding")
    # WHEN the conflicting capture is opened: its key, the conflict and each attempt log
    changed.get_by_role("link", name=re.compile("^Details of POST")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(conflicting["request_id"])
    facts = page.locator(".facts")
    expect(facts).to_contain_text(f"{RUN}-w1")
    expect(facts).to_contain_text(f"conflict same key, another body than {first['request_id']}")
    expect(page.get_by_role("heading", level=2, name="Forwards")).to_be_visible()
    expect(rows(page, f"Attempts forwarding to {dest['capture_url']}").locator("td").nth(2)).to_have_text("HTTP 200")
    expect(rows(page, f"Attempts forwarding to {paused['capture_url']}").locator("td").nth(2)).to_have_text("HTTP 410")
    shot(page, "inbox-forwards")
    # AND its link leads to the first capture, which counts the duplicates
    page.get_by_role("link", name=first["request_id"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(first["request_id"])
    expect(page.locator(".facts")).to_contain_text("2 more arrivals with the same key and body")


def test_an_endpoint_page_shows_status_stats_attempts_and_rotates_and_tests(page: Page, http: Http, data: dict) -> None:
    # GIVEN an endpoint of its own (an inbox as receiver) that has had a delivery
    inbox = http.ok("POST", "v1/inboxes", {"name": f"{RUN} endpoint"})
    created = http.ok("POST", "v1/webhook-endpoints", {"url": inbox["capture_url"], "description": f"{RUN} LMS",
                                                        "event_types": ["session_created"]})
    endpoint_id = created["endpoint_id"]
    try:
        http.ok("POST", "v1/sessions", {"session_id": f"{RUN}-ep", "user_id": data["user"], "manual_id": data["manual"]})
        http.wait_for("the endpoint's first delivery",
                      lambda: http.ok("GET", f"v1/webhook-endpoints/{endpoint_id}")["stats"]["delivered"] >= 1)
        # WHEN the operator opens the endpoints page and follows the endpoint's link
        sign_in(page, dashboard_url(http, "/endpoints"), http.key)
        link = page.get_by_role("link", name=endpoint_id)
        expect(link).to_be_visible()
        link.click()
        # THEN its settings, status, stats and recent attempts are shown
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Endpoint {endpoint_id}")
        main = page.locator("main")
        expect(main).to_contain_text(inbox["capture_url"])
        expect(main).to_contain_text("session_created")
        expect(page.get_by_label("Stats")).to_contain_text("Success rate100%")
        attempts = rows(page, f"Latest attempts at {endpoint_id}")
        expect(attempts.first).to_contain_text("session_created")
        expect(attempts.first).to_contain_text("HTTP 200")
        shot(page, "endpoint")
        # AND a test ping is queued and reaches the receiver
        page.get_by_role("button", name="Send test ping").click()
        expect(page.get_by_role("status")).to_contain_text("queued")
        http.wait_for("the ping", lambda: any(
            "ping" in (c["body"] or "") for c in http.ok(
                "GET", f"v1/inboxes/{inbox['inbox_id']}/requests",
                headers={"X-Inbox-Token": inbox["read_token"]})["items"]))
        # AND a rotation shows the new secret once
        page.get_by_role("button", name="Rotate secret").click()
        expect(page.get_by_role("status")).to_contain_text("New signing secret")
        expect(page.locator("code.secret")).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/=]{32,}$"))
        assert http.ok("GET", f"v1/webhook-endpoints/{endpoint_id}")["previous_secret_expires_at"]
    finally:
        http.ok("DELETE", f"v1/webhook-endpoints/{endpoint_id}")


def test_each_events_delivery_is_shown_per_endpoint_and_redelivered_to_the_failing_one_only(
        page: Page, http: Http, data: dict) -> None:
    from tests.receiver import Receiver, always

    # GIVEN a second endpoint (a receiver on 127.0.0.1 answering 500) beside `default` (the
    # stack's inbox, answering 200), both taking session_created
    receiver = Receiver(always(500))
    created = http.ok("POST", "v1/webhook-endpoints", {"url": receiver.url, "description": f"{RUN} failing",
                                                        "event_types": ["session_created"]})
    failing = created["endpoint_id"]
    session_id = f"{RUN}-two"
    try:
        http.ok("POST", "v1/sessions", {"session_id": session_id, "user_id": data["user3"], "manual_id": data["manual2"]})
        event = http.wait_for("the webhook to fail for good at the second endpoint", lambda: [
            e for e in http.events(session_id)
            if e["deliveries"].get(failing, {}).get("status") == "failed"
            and e["deliveries"].get("default", {}).get("status") == "delivered"], 60)[0]
        assert len(receiver.requests) == 3  # the schedule's three attempts

        # WHEN the operator opens the session on a 390 px phone
        page.set_viewport_size({"width": 390, "height": 844})
        sign_in(page, dashboard_url(http, f"/sessions/{session_id}"), http.key)
        first = page.get_by_role("list", name="Events, oldest first").locator("> li").first
        # THEN the event shows its status at each endpoint: delivered at one, failed with its
        # attempts and last error at the other, and Redeliver only where it failed
        at = first.get_by_role("list", name="Webhook #1 at each endpoint").locator("> li")
        expect(at).to_have_count(2)
        expect(at.filter(has_text="default")).to_have_text("default: Delivered · 1 attempt")
        expect(at.filter(has_text=failing)).to_have_text(
            re.compile(rf"^{failing}: Failed · 3 attempts · last error HTTP 500 .+ UTC Redeliver"))
        expect(first.get_by_role("button", name="Redeliver")).to_have_count(1)
        expect(at.filter(has_text="default").get_by_role("button")).to_have_count(0)
        # readable without scrolling sideways: neither the page nor the list is wider than the phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = first.get_by_role("list", name="Webhook #1 at each endpoint").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        shot(page, "phone-session-endpoints")

        # WHEN the failed deliveries page is opened
        page.set_viewport_size({"width": 1280, "height": 860})
        page.goto(dashboard_url(http, "/deliveries"))
        listed = rows(page, "Webhooks that spent their attempts").filter(has_text=event["event_id"])
        # THEN the failure is listed once, at the endpoint it happened at, with that endpoint's attempts
        expect(listed).to_have_count(1)
        expect(listed.locator("> td").nth(1)).to_have_text(failing)
        expect(listed.locator("> td").nth(4)).to_have_text("3")
        expect(listed.locator("> td").nth(5)).to_have_text("HTTP 500")
        listed.get_by_text("Attempt log").click()
        expect(listed.locator("table tbody tr")).to_have_count(3)
        shot(page, "deliveries-per-endpoint")

        # WHEN the receiver is back and the operator redelivers it
        receiver.behaviour = always(200)
        listed.get_by_role("button", name="Redeliver").click()
        expect(page.locator("#deliveries-notice")).to_have_text(
            f"Queued {event['event_id']} (session_created of {session_id}) for redelivery to {failing}.")
        # THEN it went to that endpoint only: delivered there, and `default` got no second copy
        assert any(method == "POST" and f"/redeliver?endpoint_id={failing}" in url
                   for method, url, _ in seen(page).api_requests)
        http.wait_for("the redelivery", lambda: receiver.delivered(), 30)
        after = http.wait_for("the delivered status", lambda: [
            e for e in http.events(session_id)
            if e["event_id"] == event["event_id"] and e["deliveries"][failing]["status"] == "delivered"], 30)[0]
        assert after["deliveries"]["default"] == event["deliveries"]["default"]
        assert [a["endpoint_id"] for a in after["delivery_attempts"]].count("default") == 1
        assert receiver.delivered()[0].headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]
        # AND the row leaves the list on its own
        expect(rows(page, "Webhooks that spent their attempts").filter(has_text=event["event_id"])).to_have_count(
            0, timeout=15_000)
    finally:
        http.ok("DELETE", f"v1/webhook-endpoints/{failing}")
        http.call("DELETE", f"v1/sessions/{session_id}")
        receiver.stop()


def test_re_enabling_an_endpoint_offers_the_replay_of_what_it_missed(page: Page, http: Http, data: dict) -> None:
    from tests.receiver import Receiver

    # GIVEN an endpoint that was disabled while a session started
    receiver = Receiver()
    created = http.ok("POST", "v1/webhook-endpoints", {"url": receiver.url, "description": f"{RUN} paused LMS",
                                                        "event_types": ["session_created"]})
    endpoint_id = created["endpoint_id"]
    session_id = f"{RUN}-missed"
    try:
        http.ok("PATCH", f"v1/webhook-endpoints/{endpoint_id}", {"enabled": False})
        http.ok("POST", "v1/sessions", {"session_id": session_id, "user_id": data["user3"], "manual_id": data["manual2"]})
        missed = http.wait_for("the webhook at the other endpoint", lambda: [
            e for e in http.events(session_id) if e["deliveries"].get("default", {}).get("status") == "delivered"])[0]
        assert missed["deliveries"][endpoint_id]["status"] == "endpoint_disabled" and receiver.requests == []
        # WHEN the operator enables it on its page
        sign_in(page, dashboard_url(http, f"/endpoints/{endpoint_id}"), http.key)
        page.get_by_role("button", name="Enable").click()
        # THEN the page offers the replay of the window it was disabled
        expect(page.locator(".feedback")).to_contain_text("While it was disabled (since ")
        offer = page.get_by_role("button", name="Replay what it missed")
        expect(offer).to_be_visible()
        shot(page, "endpoint-reenabled")
        # WHEN the operator takes it: the missed webhook arrives, with its original id
        offer.click()
        expect(page.locator(".replay-offer [role=status]")).to_contain_text("Replay done: ", timeout=20_000)
        expect(page.locator(".replay-offer [role=status]")).to_contain_text(f"queued again for {endpoint_id}")
        http.wait_for("the replayed webhook", lambda: receiver.delivered(), 30)
        assert [r.headers["webhook-id"] for r in receiver.delivered()] == [missed["event_id"]]
    finally:
        http.ok("DELETE", f"v1/webhook-endpoints/{endpoint_id}")
        http.call("DELETE", f"v1/sessions/{session_id}")
        receiver.stop()
