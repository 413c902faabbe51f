# ruff: noqa: F811  (pytest fixtures imported from test_dashboard.py, used as parameters)
"""The operator console's actions and live updates, in headless Chromium against the local
stack (the browser, fixtures and helpers of test_dashboard.py).

Every action goes through the public API with the entered key; each test checks what the
operator sees and what the API then answers. Live updates: changes made through the API
outside the browser show on an open page without a reload."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_dashboard import (  # noqa: F401  (browser, page, http: fixtures)
    CHROMIUM,
    ROOT,
    RUN,
    Http,
    browser,
    dashboard_url,
    http,
    manual,
    page,
    rows,
    shot,
    sign_in,
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (see test_dashboard.py)")

TOKEN = {"X-Inbox-Token": "test-token"}  # the read token of the local stack's inbox `local`
PREFIX = f"{RUN}c"


def accept_next_dialog(page: Page, expected: str) -> list[str]:
    """Accept the next confirm() dialog; the texts it showed are collected."""
    shown: list[str] = []

    def handle(dialog: Any) -> None:
        shown.append(dialog.message)
        dialog.accept()

    page.once("dialog", handle)
    return shown


def dismiss_next_dialog(page: Page) -> list[str]:
    shown: list[str] = []

    def handle(dialog: Any) -> None:
        shown.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", handle)
    return shown


@pytest.fixture(scope="module")
def course(http: Http) -> dict[str, str]:
    ids = {"manual": f"{PREFIX}-course", "short": f"{PREFIX}-short", "user": f"{PREFIX}-ada"}
    http.ok("POST", "v1/manuals", manual(ids["manual"], 3, "Console course"))
    http.ok("POST", "v1/manuals", manual(ids["short"], 1, "One step"))
    return ids


# ---- actions on sessions ----------------------------------------------------------------------


def test_create_progress_message_end_and_delete_a_session(page: Page, http: Http, course: dict) -> None:
    sign_in(page, dashboard_url(http, "/sessions"), http.key)
    page.get_by_role("button", name="New session").click()
    form = page.get_by_role("form", name="New session")
    # WHEN the manual does not exist: the API's own answer, next to the form
    form.get_by_label("For user").fill(course["user"])
    form.get_by_label("On manual").fill(f"{PREFIX}-nope")
    form.get_by_role("button", name="Create session").click()
    expect(form.get_by_role("alert")).to_contain_text("The API refused this session")
    expect(form.get_by_role("alert")).to_contain_text("(404 manual_not_found)")
    # WHEN it does: created, and its page opens
    session_id = f"{PREFIX}-s1"
    form.get_by_label("On manual").fill(course["manual"])
    form.get_by_label("Session id (optional)").fill(session_id)
    form.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Session {session_id}")
    assert http.ok("GET", f"v1/sessions/{session_id}")["user_id"] == course["user"]
    expect(page.locator(".facts")).to_contain_text("Active")

    # WHEN step 1 is completed with one click
    page.get_by_role("button", name="Complete step 1").click()
    expect(page.get_by_role("progressbar", name=re.compile("^1 of 3 steps completed"))).to_be_visible()
    expect(page.get_by_role("button", name="Complete step 2")).to_be_visible()
    assert http.ok("GET", f"v1/sessions/{session_id}")["completed_steps"] == [1]
    # AND step 2 marked ongoing
    page.get_by_role("button", name="Mark step 2 ongoing").click()
    events = page.get_by_role("list", name="Events, oldest first").locator("> li")
    expect(events.filter(has_text="step 2 ONGOING")).to_have_count(1)

    # WHEN messages are posted as the agent, then as the user
    page.get_by_label("Message", exact=True).fill("Try printing a variable.")
    page.get_by_label("Sender").select_option("agent")
    page.get_by_role("button", name="Post message").click()
    chat = page.get_by_role("list", name="Conversation, oldest first").locator("li")
    expect(chat).to_have_count(1)
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    page.get_by_label("Message", exact=True).fill("It printed 42.")
    page.get_by_label("Sender").select_option("user")
    page.get_by_role("button", name="Post message").click()
    expect(chat).to_have_count(2)
    expect(chat.nth(0)).to_have_class(re.compile("msg-agent"))
    expect(chat.nth(1)).to_have_class(re.compile("msg-user"))
    stored = http.ok("GET", f"v1/sessions/{session_id}/messages")["items"]
    assert [(m["sender"], m["message"]) for m in stored] == [("agent", "Try printing a variable."),
                                                             ("user", "It printed 42.")]
    # an empty message is refused by the API, and said so
    page.get_by_label("Message", exact=True).fill("")
    page.get_by_role("button", name="Post message").click()
    expect(page.get_by_role("form", name="Post a message").get_by_role("alert")).to_contain_text("(400 validation_error)")
    shot(page, "session-actions")

    # WHEN "End session" is pressed but not confirmed: nothing happens
    asked = dismiss_next_dialog(page)
    page.get_by_role("button", name="End session").click()
    assert asked and "End session" in asked[0]
    assert http.ok("GET", f"v1/sessions/{session_id}")["status"] == "active"
    # WHEN confirmed: ended, and its stored summary is shown
    accept_next_dialog(page, "End session")
    page.get_by_role("button", name="End session").click()
    summary = page.get_by_role("region", name="Summary")
    expect(summary).to_be_visible()
    expect(page.locator(".facts").first).to_contain_text("Ended")
    expect(summary).to_contain_text("1 of 3")
    expect(summary).to_contain_text("ended by the agent or an operator")
    expect(rows(page, "Messages by sender")).to_have_text([re.compile(r"^User\s*1$"), re.compile(r"^Agent\s*1$"),
                                                           re.compile(r"^Total\s*2$")])
    expect(rows(page, re.compile("^Time per step"))).to_have_count(1)
    expect(page.get_by_role("button", name="Complete step 2")).to_have_count(0)
    assert http.ok("GET", f"v1/sessions/{session_id}")["status"] == "ended"
    shot(page, "session-summary")

    # WHEN deleted (confirmed): gone from the API, back to the list
    asked = accept_next_dialog(page, "Delete")
    page.get_by_role("button", name="Delete session").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sessions")
    assert "cannot be undone" in asked[0]
    status, answer = http.call("GET", f"v1/sessions/{session_id}")
    assert (status, answer["error"]) == (404, "session_not_found")


def test_completing_the_last_step_and_abandoning(page: Page, http: Http, course: dict) -> None:
    done, left = f"{PREFIX}-done", f"{PREFIX}-left"
    for sid in (done, left):
        http.ok("POST", "v1/sessions", {"session_id": sid, "user_id": course["user"], "manual_id": course["short"]})
    sign_in(page, dashboard_url(http, f"/sessions/{done}"), http.key)
    page.get_by_role("button", name="Complete step 1").click()
    # THEN completed, with the summary the API stored
    summary = page.get_by_role("region", name="Summary")
    expect(summary).to_contain_text("1 of 1 (100%)")
    expect(summary).to_contain_text("every step completed")
    expect(page.locator(".facts").first).to_contain_text("Completed")
    expect(page.get_by_text("All steps completed.")).to_be_visible()
    stored = http.ok("GET", f"v1/sessions/{done}")["summary"]
    assert stored["end_reason"] == "completed" and len(stored["time_per_step"]) == 1

    page.goto(dashboard_url(http, f"/sessions/{left}"))
    accept_next_dialog(page, "abandoned")
    page.get_by_role("button", name="Abandon session").click()
    expect(page.locator(".facts").first).to_contain_text("Abandoned")
    assert http.ok("GET", f"v1/sessions/{left}")["status"] == "abandoned"
    # an ended session takes no more actions but deletion; a second end is the API's to refuse
    expect(page.get_by_role("button", name="End session")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete session")).to_be_visible()


# ---- manuals, inboxes, keys -------------------------------------------------------------------


def test_delete_a_manual_shows_manual_in_use_then_deletes(page: Page, http: Http, course: dict) -> None:
    manual_id = f"{PREFIX}-used"
    http.ok("POST", "v1/manuals", manual(manual_id, 2, "In use"))
    sid = f"{PREFIX}-user-of-manual"
    http.ok("POST", "v1/sessions", {"session_id": sid, "user_id": course["user"], "manual_id": manual_id})
    sign_in(page, dashboard_url(http, f"/manuals/{manual_id}"), http.key)
    expect(page.get_by_text("1 active session use this manual")).to_be_visible()
    # WHEN deleted while a session is active on it: the API's 409, said clearly
    accept_next_dialog(page, "Delete manual")
    page.get_by_role("button", name="Delete manual").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The API refused to delete this manual")
    expect(alert).to_contain_text("(409 manual_in_use)")
    shot(page, "manual-in-use")
    assert http.ok("GET", f"v1/manuals/{manual_id}")["manual_id"] == manual_id
    # WHEN the session is ended: the manual can go
    http.ok("PATCH", f"v1/sessions/{sid}", {"status": "ended"})
    page.reload()
    accept_next_dialog(page, "Delete manual")
    page.get_by_role("button", name="Delete manual").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Manuals")
    status, answer = http.call("GET", f"v1/manuals/{manual_id}")
    assert (status, answer["error"]) == (404, "manual_not_found")


def open_inbox(page: Page, http: Http, inbox_id: str, token: str, signed_in: bool = False) -> None:
    if signed_in:
        page.goto(dashboard_url(http, "/inbox"))
    else:
        sign_in(page, dashboard_url(http, "/inbox"), http.key)
    page.get_by_label("Inbox id").fill(inbox_id)
    page.get_by_label("Read token").fill(token)
    page.get_by_role("button", name="Show requests").click()


def test_pause_resume_and_delete_an_inbox(page: Page, http: Http) -> None:
    box = http.ok("POST", "v1/inboxes", {"name": f"{PREFIX} box"})
    headers = {"X-Inbox-Token": box["read_token"]}
    open_inbox(page, http, box["inbox_id"], box["read_token"])
    expect(page.locator(".inbox-controls")).to_contain_text("is capturing")
    page.get_by_role("button", name="Pause inbox").click()
    expect(page.locator(".inbox-controls")).to_contain_text("paused")
    assert http.ok("GET", f"v1/inboxes/{box['inbox_id']}", headers=headers)["paused"] is True
    page.get_by_role("button", name="Resume inbox").click()
    expect(page.get_by_role("button", name="Pause inbox")).to_be_visible()
    assert http.ok("GET", f"v1/inboxes/{box['inbox_id']}", headers=headers)["paused"] is False
    shot(page, "inbox-controls")
    asked = accept_next_dialog(page, "Delete inbox")
    page.get_by_role("button", name="Delete inbox").click()
    expect(page.get_by_text("Enter the inbox's read token")).to_be_visible()
    assert "every request it captured" in asked[0]
    status, answer = http.call("GET", f"v1/inboxes/{box['inbox_id']}", headers=headers)
    assert (status, answer["error"]) == (404, "inbox_not_found")


def test_api_keys_page_creates_shows_once_lists_and_revokes(page: Page, http: Http, course: dict) -> None:
    sign_in(page, dashboard_url(http, "/overview"), http.key)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    form = page.get_by_role("form", name="Create an API key")
    # WHEN an admin key bound to a user is asked for: the API's refusal, field by field
    form.get_by_label("admin").check()
    form.get_by_label("User id (optional)").fill(course["user"])
    form.get_by_role("button", name="Create key").click()
    expect(form.get_by_role("alert")).to_contain_text("(400 validation_error)")
    # WHEN a read key for the user is created: its value is shown once
    form.get_by_label("admin").uncheck()
    name = f"{PREFIX} reader"
    form.get_by_label("Name").fill(name)
    form.get_by_role("button", name="Create key").click()
    expect(form.get_by_role("status")).to_contain_text("shown only this once")
    secret = form.get_by_label("The new key").input_value()
    assert secret.startswith("ssk_")
    key_id = form.get_by_role("status").locator("strong").inner_text().split()[1]
    row = rows(page, re.compile("^API keys")).filter(has_text=key_id)
    expect(row.locator("td")).to_have_text([key_id, name, "read", course["user"], re.compile("UTC$"), "Active",
                                            "Revoke"])
    assert secret not in page.locator("table").inner_text()
    # the key works, for its user only
    assert http.call("GET", f"v1/sessions?user_id={course['user']}", key=secret)[0] == 200
    shot(page, "api-keys")
    # WHEN revoked (confirmed): the API refuses it from then on
    accept_next_dialog(page, "Revoke")
    row.get_by_role("button", name="Revoke").click()
    expect(row.locator("td").nth(5)).to_contain_text("Revoked")
    status, _ = http.wait_for("the key refused", lambda: (s := http.call("GET", "v1/manuals", key=secret))[0] == 401 and s)
    assert status == 401
    # a key that is not admin sees the API's 403 here
    reader = http.ok("POST", "v1/keys", {"scopes": ["read"], "name": f"{PREFIX} plain reader"})["key"]
    page.get_by_role("button", name="Change key").click()
    page.locator("#key-form").get_by_label("API key").fill(reader)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_role("alert").first).to_contain_text("(403 forbidden)")
    expect(page.get_by_role("alert").first).to_contain_text("not allowed to do this")


# ---- failed deliveries --------------------------------------------------------------------------


def test_failed_deliveries_readable_redelivered_and_redriven(page: Page, http: Http, course: dict) -> None:
    # GIVEN two webhooks that spent their attempts (the local inbox answered 500 meanwhile)
    http.ok("PATCH", "v1/inboxes/local", {"response": {"status": 500, "body": "down", "content_type": "text/plain"}},
            headers=TOKEN)
    sids = [f"{PREFIX}-dlq{n}" for n in range(2)]
    try:
        for sid in sids:
            http.ok("POST", "v1/sessions", {"session_id": sid, "user_id": course["user"], "manual_id": course["short"]})
        failed = [http.wait_for("failed for good", lambda sid=sid: [
            e for e in http.events(sid) if e["delivery_status"] == "failed"], 60)[0] for sid in sids]
    finally:
        http.ok("PATCH", "v1/inboxes/local", {"response": {"status": 200, "body": '{"ok": true}',
                                                           "content_type": "application/json"}}, headers=TOKEN)
    sign_in(page, dashboard_url(http, "/deliveries"), http.key)
    caption = "Webhooks that spent their attempts"
    first = rows(page, caption).filter(has_text=failed[0]["event_id"])
    expect(first).to_have_count(1)
    # THEN its attempt log reads as words, without the queue's own message ids
    first.get_by_text("Attempt log").click()
    log = first.locator("table tbody tr")
    expect(log).to_have_count(3)
    expect(log.nth(0)).to_contain_text("1 of 3")
    expect(log.nth(0)).to_contain_text("Will retry")
    expect(log.nth(0)).to_contain_text("HTTP 500")
    expect(log.nth(0)).to_contain_text("retry in")
    expect(log.nth(2)).to_contain_text("Failed")
    text = page.locator("main").inner_text()
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert not uuid.search(text), uuid.search(text)  # SQS message ids are UUIDs
    assert not re.search(r"\br[0-9a-f]{12,}\b", text)  # nor delivery round ids
    shot(page, "deliveries-actions")
    # WHEN one is redelivered
    first.get_by_role("button", name="Redeliver").click()
    expect(page.locator("#deliveries-notice")).to_have_text(
        f"Queued {failed[0]['event_id']} (session_created of {sids[0]}) for redelivery to default.")
    http.wait_for("the redelivery", lambda: http.events(sids[0])[0]["delivery_status"] == "delivered", 30)
    # THEN it leaves the list on its own (live)
    expect(rows(page, caption).filter(has_text=failed[0]["event_id"])).to_have_count(0, timeout=15_000)
    # WHEN all are redriven from the dead-letter queue (confirmed), with progress shown
    asked = accept_next_dialog(page, "Redrive")
    page.get_by_role("button", name="Redrive all").click()
    expect(page.locator(".redrive [role=status]")).to_contain_text("Redrive done", timeout=30_000)
    assert "dead-lettered" in asked[0]
    expect(page.get_by_role("progressbar", name="Redrive progress")).to_be_visible()
    http.wait_for("the redriven webhook", lambda: http.events(sids[1])[0]["delivery_status"] == "delivered", 60)
    expect(rows(page, caption).filter(has_text=failed[1]["event_id"])).to_have_count(0, timeout=15_000)


# ---- live updates -------------------------------------------------------------------------------

WATCH = """() => {
  window.__seen = {};
  window.__wanted = [];
  const look = () => {
    const text = document.querySelector("main").textContent;
    for (const w of window.__wanted) if (!(w in window.__seen) && text.includes(w)) window.__seen[w] = Date.now();
  };
  new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true });
  window.__watch = (w) => { window.__wanted.push(w); look(); };
}"""


def test_a_change_made_elsewhere_shows_on_the_open_session_page(page: Page, http: Http, course: dict) -> None:
    """The latency from the API's answer to the change on screen, measured in the page: p50
    and p95 go to the output and out/live-latency.json (bench/RESULTS.md keeps a run's)."""
    sid = f"{PREFIX}-live"
    ten = f"{PREFIX}-ten"
    http.ok("POST", "v1/manuals", manual(ten, 11, "Eleven steps"))
    http.ok("POST", "v1/sessions", {"session_id": sid, "user_id": course["user"], "manual_id": ten})
    sign_in(page, dashboard_url(http, f"/sessions/{sid}"), http.key)
    expect(page.get_by_role("list", name="Events, oldest first").locator("> li")).to_have_count(1)
    page.evaluate(WATCH)
    page.evaluate("window.__sameDocument = true")
    latencies: list[float] = []
    for n in range(20):
        time.sleep((n * 0.137) % 0.7)  # land at different moments of the poll
        if n % 2 == 0:
            marker = f"live message {n} {PREFIX}"
            page.evaluate("w => window.__watch(w)", marker)
            http.ok("POST", f"v1/sessions/{sid}/messages", {"user_id": course["user"], "sender": "agent",
                                                             "message": marker})
        else:
            step = n // 2 + 1
            marker = f"Step {step}: completed"
            page.evaluate("w => window.__watch(w)", marker)
            http.ok("POST", f"v1/sessions/{sid}/progress", {"user_id": course["user"], "current_step": step,
                                                             "step_status": "DONE"})
        accepted = time.time() * 1000
        page.wait_for_function("w => w in window.__seen", arg=marker, timeout=10_000)
        latencies.append((page.evaluate("w => window.__seen[w]", marker) - accepted) / 1000)
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    # the events of the changes, with their deliveries settling on their own
    events = page.get_by_role("list", name="Events, oldest first").locator("> li")
    expect(events).to_have_count(11)
    expect(events.last.locator(".delivery")).to_contain_text("Delivered", timeout=20_000)
    expect(page.get_by_role("list", name="Conversation, oldest first").locator("li")).to_have_count(10)
    # a session ended elsewhere: the page says so and offers no more progress
    http.ok("PATCH", f"v1/sessions/{sid}", {"status": "abandoned"})
    expect(page.locator(".facts").first).to_contain_text("Abandoned")
    expect(page.get_by_role("region", name="Summary")).to_be_visible()
    expect(page.get_by_role("button", name="Complete step 11")).to_have_count(0)

    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    result = {"samples": len(latencies), "p50_s": round(p50, 3), "p95_s": round(p95, 3),
              "max_s": round(latencies[-1], 3), "poll_ms": 700, "cpus": os.cpu_count()}
    print(f"\nlive update latency (API answer -> on screen): {json.dumps(result)}")
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "live-latency.json").write_text(json.dumps(result, indent=2))
    assert latencies[-1] < 10  # every change showed without a reload


def test_lists_inbox_and_overview_update_on_their_own(page: Page, http: Http, course: dict) -> None:
    user = f"{PREFIX}-listuser"
    sign_in(page, dashboard_url(http, f"/sessions?user_id={user}"), http.key)
    expect(page.get_by_text("No sessions match.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    # WHEN a session is started through the API: the open list shows it
    http.ok("POST", "v1/sessions", {"session_id": f"{PREFIX}-listed", "user_id": user, "manual_id": course["manual"]})
    caption = f"Sessions (user {user})"
    expect(rows(page, caption)).to_have_count(1, timeout=10_000)
    # and a change to it (a step done) shows in its row
    http.ok("POST", f"v1/sessions/{PREFIX}-listed/progress", {"user_id": user, "current_step": 1, "step_status": "DONE"})
    expect(rows(page, caption).first).to_contain_text("1/3", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True

    # the overview: the sessions total follows the analytics on its own
    page.goto(dashboard_url(http, "/overview"))
    card = page.locator(".cards .card").filter(has=page.locator("dt", has_text=re.compile("^Sessions$"))).locator("dd")
    expect(card).not_to_be_empty()
    before = int(card.inner_text())
    page.evaluate("window.__sameDocument = true")
    http.ok("POST", "v1/sessions", {"session_id": f"{PREFIX}-counted", "user_id": user, "manual_id": course["manual"]})
    expect(card).not_to_have_text(str(before), timeout=30_000)
    assert int(card.inner_text()) > before and page.evaluate("window.__sameDocument") is True

    # an inbox's captures
    box = http.ok("POST", "v1/inboxes", {"name": f"{PREFIX} live"})
    open_inbox(page, http, box["inbox_id"], box["read_token"], signed_in=True)
    expect(page.get_by_text("No requests captured.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    request = urllib.request.Request(box["capture_url"], data=b'{"hello": 1}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    expect(rows(page, f"Requests captured by inbox {box['inbox_id']}")).to_have_count(1, timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True


# ---- phone width ------------------------------------------------------------------------------


def test_every_page_fits_a_390_px_phone_without_scrolling_sideways(page: Page, http: Http, course: dict) -> None:
    sid = f"{PREFIX}-phone"
    http.ok("POST", "v1/sessions", {"session_id": sid, "user_id": course["user"], "manual_id": course["manual"]})
    http.ok("POST", f"v1/sessions/{sid}/messages", {"user_id": course["user"], "sender": "user",
                                                     "message": "A long message " * 20})
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, dashboard_url(http, "/overview"), http.key)
    for route, name in (("/overview", "overview"), ("/sessions", "sessions"), (f"/sessions/{sid}", "session"),
                        ("/manuals", "manuals"), (f"/manuals/{course['manual']}", "manual"),
                        ("/deliveries", "deliveries"), ("/inbox", "inbox"), ("/keys", "keys"),
                        ("/endpoints", "endpoints"), ("/endpoints/default", "endpoint")):
        page.goto(dashboard_url(http, route))
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main[aria-busy]")).to_have_count(0)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (route, width)
        if name in ("session", "overview", "sessions"):
            shot(page, f"phone-{name}")
    page.goto(f"{http.api}/docs")
    expect(page.get_by_role("heading", name="sessions")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="Operator dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")


