// Operator dashboard of the session service: plain JS, no framework, no build step.
// Every view reads the API with the operator's key and shows any API error it gets.
"use strict";
(() => {
  const KEY_STORAGE = "session-service-api-key";       // shared with the /docs page
  const INBOX_STORAGE = "session-service-inbox";
  // The page is served at <base>/dashboard (base: /api/ on AWS and locally, or / locally),
  // so the API is at <base>/v1/..., whatever the host.
  const API_BASE = new URL("./", location.href.split("#")[0]);
  const STATUSES = ["active", "completed", "ended", "abandoned"];
  const REDELIVERABLE = new Set(["failed", "gone"]);

  // ---- small DOM helpers (text only: API data never becomes HTML) ---------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const $ = (id) => document.getElementById(id);
  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  function announce(text) {
    const region = $("announce");
    region.textContent = "";
    setTimeout(() => { region.textContent = text; }, 30);
  }

  // ---- formatting ---------------------------------------------------------------------------

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const text = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    return h("time", { datetime: iso, title: iso }, text);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
    const hours = Math.floor(s / 3600);
    if (hours < 48) return `${hours} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const percent = (ratio) => `${(100 * (ratio || 0)).toFixed(1).replace(/\.0$/, "")}%`;
  const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
  const badge = (status) => h("span", { class: `badge badge-${String(status).replace(/[^a-z_]/g, "")}` }, statusWord(status));

  // ---- API access ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const data = body && typeof body === "object" ? body : {};
      super(data.message || fallback || `HTTP ${status}`);
      this.status = status;
      this.code = data.error || (status ? `http_${status}` : "network_error");
      this.fields = Array.isArray(data.fields) ? data.fields : [];
    }
  }

  const getKey = () => sessionStorage.getItem(KEY_STORAGE) || "";

  async function api(path, { method = "GET", body, headers = {} } = {}) {
    const all = { Accept: "application/json", ...headers };
    const key = getKey();
    if (key) all.Authorization = `Bearer ${key}`;
    if (body !== undefined) all["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(new URL(path, API_BASE), {
        method, headers: all, body: body === undefined ? undefined : body, cache: "no-store",
      });
    } catch (exc) {
      throw new ApiError(0, null, `Could not reach the API (${exc.message}). Check your connection and retry.`);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      const error = new ApiError(response.status, data,
        `HTTP ${response.status} ${response.statusText}${text && !data ? `: ${text.slice(0, 200)}` : ""}`);
      // 401 from an inbox read is about its read token, not the API key; and a late answer
      // to a request sent with a key since replaced says nothing about the new one.
      if (response.status === 401 && error.code !== "token_required" && key === getKey()) {
        showKeyForm(key ? `The API rejected the key ending …${key.slice(-4)}: ${error.message}` : error.message);
      }
      throw error;
    }
    return { status: response.status, data };
  }

  function errorBox(error, context) {
    // A validation error lists each field below: its one-line summary would say it twice.
    const problems = error.fields.length;
    const text = problems ? `${problems} ${problems === 1 ? "field needs" : "fields need"} fixing.` : error.message;
    const box = h("div", { class: "error", role: "alert" },
      h("p", {}, h("strong", {}, context ? `${context}: ` : "Error: "),
        text, " ",
        h("span", { class: "code" }, error.status ? `(${error.status} ${error.code})` : `(${error.code || "error"})`)));
    if (problems) {
      box.append(h("ul", { class: "fields" },
        error.fields.map((f) => h("li", {}, h("code", {}, f.field), ": ", f.message))));
    }
    if (error.status === 401 && error.code !== "token_required") {
      box.append(h("p", {}, "Enter a valid API key above, then retry."));
    } else if (error.status === 403) {
      box.append(h("p", {}, "Your API key is valid but not allowed to do this."));
    }
    return box;
  }

  // ---- API key form -------------------------------------------------------------------------

  function renderKeyStatus() {
    const key = getKey();
    $("key-status").hidden = !key;
    $("key-hint").textContent = key ? `…${key.slice(-4)}` : "";
  }

  function showKeyForm(message) {
    $("key-message").textContent = message || "";
    $("key-cancel").hidden = !getKey();
    if (!$("key-panel").hidden) return;  // already open: keep what is being typed
    $("key-panel").hidden = false;
    $("key-input").value = "";
    $("key-input").focus();
  }

  function hideKeyForm() {
    $("key-panel").hidden = true;
    $("key-message").textContent = "";
  }

  function setupKeyForm() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key-input").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      hideKeyForm();
      renderKeyStatus();
      announce("API key saved.");
      render();
    });
    $("key-cancel").addEventListener("click", () => { hideKeyForm(); $("key-change").focus(); });
    $("key-change").addEventListener("click", () => showKeyForm(""));
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      renderKeyStatus();
      showKeyForm("Key forgotten. Enter an API key to continue.");
    });
    renderKeyStatus();
    if (!getKey()) showKeyForm("Enter an API key to use the dashboard.");
  }

  // ---- routing ------------------------------------------------------------------------------

  const routes = [
    [/^\/overview$/, overview, "overview"],
    [/^\/sessions$/, sessionList, "sessions"],
    [/^\/sessions\/([^/]+)$/, sessionDetail, "sessions"],
    [/^\/manuals$/, manualList, "manuals"],
    [/^\/manuals\/([^/]+)$/, manualDetail, "manuals"],
    [/^\/deliveries$/, deliveryList, "deliveries"],
    [/^\/inbox$/, inboxList, "inbox"],
    [/^\/inbox\/([^/]+)$/, inboxRequest, "inbox"],
    [/^\/keys$/, keyList, "keys"],
    [/^\/endpoints$/, endpointList, "endpoints"],
    [/^\/endpoints\/([^/]+)$/, endpointDetail, "endpoints"],
  ];
  let renderCount = 0;

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/overview";
    const [path, qs] = raw.split("?");
    return { path, query: new URLSearchParams(qs || "") };
  }

  function hashFor(path, params) {
    const qs = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v)).toString();
    return `#${path}${qs ? `?${qs}` : ""}`;
  }

  async function render(focus) {
    const token = ++renderCount;
    const { path, query } = parseHash();
    const main = $("main");
    const match = routes.map(([re, view, nav]) => [path.match(re), view, nav]).find(([m]) => m);
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (match && link.dataset.nav === match[2]) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    main.setAttribute("aria-busy", "true");
    let content;
    if (!match) {
      content = h("section", {}, h("h1", { tabindex: "-1" }, "Page not found"),
        h("p", {}, "No page at ", h("code", {}, path), ". ", h("a", { href: "#/overview" }, "Go to the overview"), "."));
    } else {
      const params = match[0].slice(1).map(decodeURIComponent);
      try {
        content = await match[1](params, query);
      } catch (error) {
        content = h("section", {}, h("h1", { tabindex: "-1" }, "Something went wrong"),
          errorBox(error instanceof ApiError ? error : new ApiError(0, null, String(error))));
      }
    }
    if (token !== renderCount) return;  // a newer navigation won
    main.replaceChildren(content);
    main.removeAttribute("aria-busy");
    const heading = main.querySelector("h1");
    document.title = `${heading ? heading.textContent : "Dashboard"} · Session service`;
    // Move focus to the new page's heading, unless the key form just asked for a key.
    if (focus && heading && $("key-panel").hidden) heading.focus();
  }

  // A section whose data may fail: shows the error in its place, never silently nothing.
  function settled(result, context, build) {
    return result.status === "fulfilled" ? build(result.value.data) : errorBox(result.reason, context);
  }

  function pager(label, load) {
    // Cursor pagination: the cursors of earlier pages are kept to go back.
    const stack = [];
    let cursor = null;
    let next = null;
    const status = h("p", { class: "pager-status", "aria-live": "polite" });
    const prevButton = h("button", { type: "button", class: "secondary", disabled: true }, "← Previous");
    const nextButton = h("button", { type: "button", class: "secondary", disabled: true }, "Next →");
    const nav = h("nav", { class: "pager", "aria-label": `${label} pages` }, prevButton, status, nextButton);
    const go = async () => {
      prevButton.disabled = nextButton.disabled = true;
      next = await load(cursor);
      prevButton.disabled = stack.length === 0;
      nextButton.disabled = !next;
      status.textContent = `Page ${stack.length + 1}`;
    };
    prevButton.addEventListener("click", () => { cursor = stack.pop() || null; go(); });
    nextButton.addEventListener("click", () => { stack.push(cursor); cursor = next; go(); });
    // the live re-read of the page on screen: its rows change, the pager's place does not
    const refresh = async () => { next = await load(cursor, true); nextButton.disabled = !next; };
    return { nav, go, refresh };
  }

  function table(caption, headers, rows, empty) {
    if (!rows.length) return h("p", { class: "empty" }, empty);
    // a wide table scrolls inside its own box (focusable, to scroll by keyboard): the page never
    return h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": caption }, h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => {
        const [text, cls] = Array.isArray(t) ? t : [t];  // ["Count", "num"]: a right-aligned column
        return h("th", { scope: "col", class: cls }, text);
      }))),
      h("tbody", {}, rows)));
  }

  // ---- overview -----------------------------------------------------------------------------

  async function overview() {
    if (!redrawing) liveRedraw(OVERVIEW_POLL_MS, overview);  // (not again from its own redraw)
    const [totals, activity, popular, failed] = await Promise.allSettled([
      api("v1/analytics/overview"), api("v1/analytics/recent-activity?hours=24"),
      api("v1/analytics/popular-manuals?limit=10"), api("v1/deliveries?status=failed&limit=5"),
    ]);
    return h("section", {},
      h("h1", { tabindex: "-1" }, "Overview"),
      settled(totals, "Totals", (o) => {
        const by = o.sessions.by_status || {};
        const card = (label, value, note) => h("div", { class: "card" },
          h("dt", {}, label), h("dd", {}, value, note ? h("small", {}, note) : null));
        return h("dl", { class: "cards", "aria-label": "Totals" },
          card("Sessions", o.sessions.total),
          STATUSES.map((s) => card(s[0].toUpperCase() + s.slice(1), by[s] || 0)),
          card("Completion rate", percent(o.completion_rate)),
          card("Average completion", duration(o.average_completion_seconds),
            o.median_completion_seconds === null ? null : ` median ${duration(o.median_completion_seconds)}`),
          card("Manuals", o.manuals), card("Messages", o.messages),
          h("div", { class: `card${o.deliveries_failed ? " card-alert" : ""}` },
            h("dt", {}, "Failed deliveries"),
            h("dd", {}, o.deliveries_failed,
              h("small", {}, " ", h("a", { href: "#/deliveries" }, o.deliveries_failed ? "see the list" : "list")))));
      }),
      h("h2", {}, "Sessions started per hour"),
      settled(activity, "Recent activity", (a) => activityChart(a)),
      h("h2", {}, "Popular manuals"),
      settled(popular, "Popular manuals", (p) => table("Manuals by sessions started",
        ["Manual", ["Sessions started", "num"], ["Completed", "num"], ["Completion rate", "num"]],
        p.items.map((m) => h("tr", {},
          h("td", {}, h("a", { href: `#/manuals/${encodeURIComponent(m.manual_id)}` }, m.manual_id)),
          h("td", { class: "num" }, m.sessions_started), h("td", { class: "num" }, m.sessions_completed),
          h("td", { class: "num" }, percent(m.completion_rate)))),
        "No sessions started yet.")),
      h("h2", {}, "Latest failed deliveries"),
      settled(failed, "Failed deliveries", (d) => failedSummary(d)),
      liveNote("Updates on its own every few seconds."));
  }

  function activityChart(activity) {
    const buckets = activity.buckets;
    const ns = "http://www.w3.org/2000/svg";
    const svg = (tag, attrs, ...kids) => {
      const el = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      kids.forEach((k) => el.append(k));
      return el;
    };
    const hourLabel = (iso) => `${iso.slice(11, 16)}`;
    const max = Math.max(1, ...buckets.map((b) => b.sessions_started));
    const width = 720, height = 220, left = 36, bottom = 28, top = 12;
    const plotW = width - left - 8, plotH = height - top - bottom;
    const barW = plotW / buckets.length;
    const titleId = nextId("chart-title"), descId = nextId("chart-desc");
    const total = activity.totals.sessions_started;
    const busiest = buckets.reduce((a, b) => (b.sessions_started > a.sessions_started ? b : a), buckets[0]);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart",
      "aria-labelledby": `${titleId} ${descId}`,
    },
    svg("title", { id: titleId }, `Sessions started per hour, last ${activity.hours} hours (UTC)`),
    svg("desc", { id: descId }, total
      ? `${plural(total, "session")} started; busiest hour ${hourLabel(busiest.hour)} UTC with ${busiest.sessions_started}.`
      : "No sessions started in this period."));
    for (const frac of [0, 0.5, 1]) {
      const y = top + plotH * (1 - frac);
      chart.append(svg("line", { x1: left, x2: width - 8, y1: y, y2: y, class: "grid" }));
      chart.append(svg("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" },
        String(Math.round(max * frac * 10) / 10)));
    }
    buckets.forEach((b, i) => {
      const barH = (b.sessions_started / max) * plotH;
      const x = left + i * barW + 1.5;
      chart.append(svg("rect", {
        x, y: top + plotH - barH, width: Math.max(1, barW - 3), height: Math.max(barH, 0), class: "bar",
        "data-hour": b.hour, "data-value": b.sessions_started,
      }, svg("title", {}, `${hourLabel(b.hour)} UTC: ${b.sessions_started} sessions started`)));
      if (i % 3 === 0 || i === buckets.length - 1) {
        chart.append(svg("text", { x: x + barW / 2, y: height - 8, class: "axis", "text-anchor": "middle" },
          hourLabel(b.hour)));
      }
    });
    return h("figure", { class: "chart-figure" }, chart,
      h("figcaption", {}, `${plural(total, "session")} started, ${plural(activity.totals.steps_completed, "step")} completed, `,
        `${plural(activity.totals.messages, "message")}, ${plural(activity.totals.sessions_ended, "session")} ended in the last ${activity.hours} hours.`),
      h("details", {}, h("summary", {}, "Show the numbers"),
        table("Activity per hour (UTC)", ["Hour", ...["Sessions started", "Steps completed", "Messages", "Sessions ended"].map((t) => [t, "num"])],
          buckets.map((b) => h("tr", {}, h("td", {}, b.hour.replace("T", " ").replace(":00:00Z", ":00")),
            [b.sessions_started, b.steps_completed, b.messages, b.sessions_ended].map((n) => h("td", { class: "num" }, n)))),
          "No data.")));
  }

  // ---- sessions -----------------------------------------------------------------------------

  async function sessionList(_, query) {
    const filters = {
      status: query.get("status") || "", user_id: query.get("user_id") || "",
      manual_id: query.get("manual_id") || "", limit: query.get("limit") || "20",
    };
    const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: `f-${name}` }, label), control);
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filter sessions" },
      field("status", "Status", h("select", { id: "f-status", name: "status" },
        h("option", { value: "" }, "Any"),
        STATUSES.map((s) => h("option", { value: s, selected: filters.status === s }, statusWord(s))))),
      field("user_id", "User id", h("input", { id: "f-user_id", name: "user_id", value: filters.user_id, autocomplete: "off" })),
      field("manual_id", "Manual id", h("input", { id: "f-manual_id", name: "manual_id", value: filters.manual_id, autocomplete: "off" })),
      field("limit", "Per page", h("select", { id: "f-limit", name: "limit" },
        ["10", "20", "50", "100"].map((n) => h("option", { value: n, selected: filters.limit === n }, n)))),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Apply filters"),
        h("a", { href: "#/sessions", class: "button secondary" }, "Clear")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      const target = hashFor("/sessions", { ...data, user_id: data.user_id.trim(), manual_id: data.manual_id.trim() });
      if (target === location.hash) render(); else location.hash = target;
    });
    const results = h("div", { class: "results" });
    let shown = null;
    const { nav, go, refresh } = pager("Sessions", async (cursor, quiet) => {
      const params = new URLSearchParams(Object.entries({ ...filters, cursor }).filter(([, v]) => v));
      try {
        const { data } = await api(`v1/sessions?${params}`);
        const seen = JSON.stringify(data.items.map(({ duration_seconds, ...rest }) => rest));
        // nothing changed, or the operator is on a row: leave the rows be
        if (quiet && (seen === shown || results.contains(document.activeElement))) return data.next_cursor;
        shown = seen;
        results.replaceChildren(table(`Sessions${describeFilters(filters)}`,
          ["Session", "User", "Manual", "Status", "Progress", "Started", "Last activity", ["Messages", "num"]],
          data.items.map(sessionRow),
          data.next_cursor ? "No sessions on this page (filters are applied page by page): try Next." : "No sessions match."));
        if (!quiet) announce(`${data.items.length} sessions shown.`);
        return data.next_cursor;
      } catch (error) {
        shown = null;
        results.replaceChildren(errorBox(error, "Could not list sessions"));
        return null;
      }
    });
    await go();
    live(LIST_POLL_MS, refresh);
    return h("section", {}, h("div", { class: "title-row" }, h("h1", { tabindex: "-1" }, "Sessions"),
      h("button", { type: "button", "aria-controls": "new-session", onclick: () => {
        const box = $("new-session");
        box.open = true;
        box.querySelector("input").focus();
      } }, "New session")),
    newSessionForm(filters), form, results, nav, liveNote("The list updates on its own."));
  }

  function describeFilters(f) {
    const parts = [f.status && `status ${f.status}`, f.user_id && `user ${f.user_id}`, f.manual_id && `manual ${f.manual_id}`].filter(Boolean);
    return parts.length ? ` (${parts.join(", ")})` : ", newest first";
  }

  function progressOf(s) {
    const done = s.completed_steps.length;
    return h("span", { class: "mini-progress" },
      h("progress", { max: s.total_steps, value: done, "aria-label": `${s.session_id}: ${done} of ${s.total_steps} steps completed` }),
      ` ${done}/${s.total_steps}`);
  }

  function sessionRow(s) {
    return h("tr", {},
      h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(s.session_id)}` }, s.session_id)),
      h("td", {}, s.user_id),
      h("td", {}, h("a", { href: `#/manuals/${encodeURIComponent(s.manual_id)}` }, s.manual_id)),
      h("td", {}, badge(s.status)),
      h("td", {}, progressOf(s)),
      h("td", {}, time(s.started_at)),
      h("td", {}, time(s.last_activity_at)),
      h("td", { class: "num" }, s.message_count));
  }

  async function sessionDetail([sessionId]) {
    const base = `v1/sessions/${encodeURIComponent(sessionId)}`;
    const [session, nextStep, messages, events] = await Promise.allSettled([
      api(base), api(`${base}/next-step`), api(`${base}/messages?limit=100`), api(`${base}/events?limit=100`),
    ]);
    const heading = h("h1", { tabindex: "-1" }, "Session ", h("code", {}, sessionId));
    const back = h("p", { class: "crumbs" }, h("a", { href: "#/sessions" }, "← All sessions"));
    if (session.status === "rejected") {
      return h("section", {}, back, heading, errorBox(session.reason, "Could not load this session"));
    }
    const s = session.value.data;
    const refresh = h("button", { type: "button", class: "secondary", onclick: () => render() }, "Refresh");
    const view = sessionView(sessionId, base, s, nextStep, messages, events);
    return h("section", {}, back, h("div", { class: "title-row" }, heading, refresh), view);
  }

  const fact = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));

  function stepIndicator(s) {
    const done = new Set(s.completed_steps);
    const count = s.completed_steps.length;
    const progressId = nextId("progress");
    const bar = h("div", { class: "progress-row" },
      h("label", { for: progressId }, `${count} of ${s.total_steps} steps completed (${percent(count / s.total_steps)})`),
      h("progress", { id: progressId, max: s.total_steps, value: count }));
    if (s.total_steps > 60) return bar;  // one marker per step stops being readable
    const finished = s.status !== "active";
    return h("div", {}, bar, h("ol", { class: "steps", "aria-label": "Steps" },
      Array.from({ length: s.total_steps }, (_, i) => {
        const n = i + 1;
        const state = done.has(n) ? "done" : n === s.current_step && !finished ? "current" : "todo";
        const words = { done: "completed", current: "current step", todo: "not done" }[state];
        return h("li", { class: `step step-${state}`, "aria-current": state === "current" ? "step" : null,
          title: `Step ${n}: ${words}` },
        h("span", { "aria-hidden": "true" }, state === "done" ? "✓" : n),
        h("span", { class: "visually-hidden" }, `Step ${n}: ${words}`));
      })));
  }

  function messageItem(m) {
    return h("li", { class: `msg msg-${m.sender}` },
      h("p", { class: "meta" }, h("span", { class: "who" }, m.sender === "user" ? "User" : "Agent"), " · ", time(m.created_at)),
      h("p", { class: "text" }, m.message));
  }

  function conversation(page, base) {
    if (!page.items.length) return h("p", { class: "empty" }, "No messages yet.");
    const list = h("ol", { class: "chat", "aria-label": "Conversation, oldest first" }, page.items.map(messageItem));
    const holder = h("div", {}, list);
    let cursor = page.next_cursor;
    if (cursor) {
      const more = h("button", { type: "button", class: "secondary" }, "Load more messages");
      more.addEventListener("click", async () => {
        more.disabled = true;
        try {
          const { data } = await api(`${base}/messages?limit=100&cursor=${encodeURIComponent(cursor)}`);
          append(list, data.items.map(messageItem));
          cursor = data.next_cursor;
          more.hidden = !cursor;
        } catch (error) {
          holder.append(errorBox(error, "Could not load more messages"));
        }
        more.disabled = false;
      });
      holder.append(more);
    }
    return holder;
  }

  function timeline(items, nextCursor) {
    if (!items.length) return h("p", { class: "empty" }, "No events.");
    return h("div", {}, h("ol", { class: "timeline", "aria-label": "Events, oldest first" }, items.map(eventItem)),
      nextCursor ? h("p", { class: "hint" }, "Only the first 100 events are shown.") : null);
  }

  // ---- an event's delivery at each webhook endpoint ----------------------------------------
  // From the event as the API gives it (`deliveries`: endpoint -> state, `delivery_attempts`:
  // each naming its endpoint; attempts from before endpoints existed were the default's).

  const DEFAULT_ENDPOINT = "default";
  const UNSETTLED = new Set(["pending", "retrying"]);
  const FRESH_MS = 60_000;  // a never-attempted endpoint of a newer event is still watched this long
  const QUEUED_MS = 600_000;  // and one queued again (a redelivery, a replay) this long before its first try
  const attemptsAt = (e, endpointId) => e.delivery_attempts.filter((a) => (a.endpoint_id || DEFAULT_ENDPOINT) === endpointId);

  function endpointDeliveries(e) {
    const found = { ...(e.deliveries || {}) };
    for (const a of e.delivery_attempts) {
      const endpointId = a.endpoint_id || DEFAULT_ENDPOINT;
      if (!found[endpointId]) found[endpointId] = { status: e.delivery_status || "pending" };
    }
    return Object.keys(found).sort().map((endpointId) => {
      const attempts = attemptsAt(e, endpointId);
      const failures = attempts.filter((a) => a.outcome !== "delivered");
      return { endpointId, state: found[endpointId], status: found[endpointId].status || "pending", attempts,
        lastError: failures[failures.length - 1] || null };
    });
  }

  // Whether an event's delivery may still change on its own (the live view keeps re-reading
  // it): its summed status, or an endpoint being tried; a pending endpoint only for a while:
  // never attempted (no round), while the event is new (an endpoint created later reads
  // `pending` for old events for good); queued again, for 10 minutes (a message dropped
  // because its endpoint was disabled meanwhile leaves it pending).
  function stillMoving(e) {
    if (UNSETTLED.has(e.delivery_status || "pending")) return true;
    const now = Date.now();
    const young = now - Date.parse(e.occurred_at) < FRESH_MS;
    return endpointDeliveries(e).some((d) => d.status === "retrying" || (d.status === "pending"
      && (d.state.round ? !d.state.at || now - Date.parse(d.state.at) < QUEUED_MS : young)));
  }

  function eventItem(e) {
    const what = e.event_type === "progress_update"
      ? `step ${e.step} ${e.step_status}${e.out_of_order ? " (out of order)" : ""}${e.applied === false ? " (no change)" : ""}`
      : e.event_type === "session_ended" ? `session ${e.session_status}${e.reason ? ` (${e.reason})` : ""}` : `step ${e.current_step}`;
    const feedback = h("div", { class: "feedback" });
    const perEndpoint = endpointDeliveries(e);
    const item = h("li", { class: "event", "data-event-id": e.event_id, "data-status": e.delivery_status || "pending",
      "data-moving": String(stillMoving(e)), "data-sequence": e.sequence },
      h("p", { class: "event-head" }, h("strong", {}, `#${e.sequence} ${e.event_type}`), ` · ${what} · `, time(e.occurred_at)),
      h("p", { class: "delivery" }, "Webhook: ", badge(e.delivery_status || "pending"),
        ` · ${plural(e.delivery_attempts.length, "attempt")}`),
      e.delivery_attempts.length ? h("details", {}, h("summary", {}, "Delivery attempts"),
        attemptLog(e)) : null,
      feedback);
    if (perEndpoint.length) {
      item.querySelector(".delivery").after(h("ul", { class: "endpoint-deliveries",
        "aria-label": `Webhook #${e.sequence} at each endpoint` },
      perEndpoint.map((d) => endpointDeliveryItem(e, d, item, feedback))));
    }
    return item;
  }

  // One endpoint's line: status, attempts, last error, and Redeliver (to that endpoint only)
  // when it failed or was gone there.
  function endpointDeliveryItem(e, d, item, feedback) {
    const statusSlot = h("span", { class: "endpoint-status" }, badge(d.status));
    const li = h("li", { "data-endpoint": d.endpointId },
      h("a", { href: `#/endpoints/${encodeURIComponent(d.endpointId)}` }, h("code", {}, d.endpointId)), ": ",
      statusSlot, ` · ${plural(d.attempts.length, "attempt")}`,
      d.lastError ? h("span", { class: "last-error" }, " · last error ", answerOf(d.lastError), " ", time(d.lastError.at)) : null);
    if (REDELIVERABLE.has(d.status)) {
      const labelId = nextId("evt");
      const button = h("button", { type: "button", class: "danger", "aria-describedby": labelId }, "Redeliver");
      li.append(" ", button, h("span", { id: labelId, class: "visually-hidden" },
        `the ${e.event_type} webhook ${e.event_id} to endpoint ${d.endpointId}`));
      button.addEventListener("click", async () => {
        button.disabled = true;
        feedback.querySelector(".error")?.remove();
        try {
          const params = new URLSearchParams({ endpoint_id: d.endpointId });
          await api(`v1/events/${encodeURIComponent(e.event_id)}/redeliver?${params}`, { method: "POST", body: "{}" });
          statusSlot.replaceChildren(badge("pending"));
          // the sum reads pending too, unless another endpoint still has it failed
          if (!endpointDeliveries(e).some((x) => x.endpointId !== d.endpointId && x.status === "failed")) {
            item.querySelector(".delivery .badge")?.replaceWith(badge("pending"));
          }
          item.dataset.moving = "true";  // unsettled again: the live view watches it
          button.remove();
          feedback.querySelector(".ok")?.remove();
          feedback.append(h("p", { class: "ok", role: "status" },
            `Queued for redelivery to ${d.endpointId}: the new attempt shows here on its own.`));
        } catch (error) {
          feedback.append(errorBox(error, `Redeliver to ${d.endpointId} failed`));
          button.disabled = false;
        }
      });
    }
    return li;
  }

  // ---- failed deliveries --------------------------------------------------------------------

  async function deliveryList() {
    const results = h("div", { class: "results" });
    let shown = null;
    const { nav, go, refresh } = pager("Failed deliveries", async (cursor, quiet) => {
      const params = new URLSearchParams({ status: "failed", limit: "20", ...(cursor ? { cursor } : {}) });
      try {
        const { data } = await api(`v1/deliveries?${params}`);
        const seen = JSON.stringify(data.items);
        if (quiet && seen === shown) return data.next_cursor;
        shown = seen;
        // a live re-read removes the rows that left and adds the new ones, leaving the others
        // as they are (an open attempt log, a pressed button, the focus)
        const body = results.querySelector("tbody");
        const failures = failuresOf(data.items);
        if (quiet && body && failures.length) {
          syncRows(body, failures, failureKey, failedRow);
          return data.next_cursor;
        }
        results.replaceChildren(table("Webhooks that spent their attempts, newest first, per endpoint",
          ["Event", "Endpoint", "Type", "Session", ["Attempts", "num"], "Last answer", "Last attempt", "Action"],
          failures.map(failedRow), "No failed deliveries: every webhook was delivered or is still being tried."));
        return data.next_cursor;
      } catch (error) {
        shown = null;
        results.replaceChildren(errorBox(error, "Failed deliveries"));
        return null;
      }
    });
    await go();
    live(LIST_POLL_MS, refresh);
    return h("section", {}, h("h1", { tabindex: "-1" }, "Failed deliveries"),
      h("p", {}, "Each webhook listed here was tried at an endpoint until its attempts ran out and waits in the ",
        "dead-letter queue (a webhook that failed at two endpoints has a row for each). Redeliver one to that ",
        "endpoint (it is queued again with the same webhook-id, so the receiver can de-duplicate), ",
        "or redrive them all once the receivers are back."),
      redrivePanel(refresh), h("p", { id: "deliveries-notice", class: "hint", role: "status" }),
      results, nav, liveNote("The list updates on its own."));
  }

  // ---- manuals ------------------------------------------------------------------------------

  async function manualList() {
    const results = h("div", { class: "results" });
    const { nav, go } = pager("Manuals", async (cursor) => {
      const params = new URLSearchParams({ limit: "20", ...(cursor ? { cursor } : {}) });
      try {
        const { data } = await api(`v1/manuals?${params}`);
        results.replaceChildren(table("Manuals, by id", ["Manual", "Title", ["Steps", "num"], "Created"],
          data.items.map((m) => h("tr", {},
            h("td", {}, h("a", { href: `#/manuals/${encodeURIComponent(m.manual_id)}` }, m.manual_id)),
            h("td", {}, m.title), h("td", { class: "num" }, m.total_steps), h("td", {}, time(m.created_at)))),
          "No manuals yet: create one below."));
        return data.next_cursor;
      } catch (error) {
        results.replaceChildren(errorBox(error, "Could not list manuals"));
        return null;
      }
    });
    await go();
    return h("section", {}, h("h1", { tabindex: "-1" }, "Manuals"), results, nav, createManualForm(go));
  }

  const EXAMPLE_MANUAL = {
    manual_id: "manual-example", title: "Introduction to Python",
    steps: [
      { step_number: 1, title: "Hello, World!", content: "Write a script that prints Hello, World!" },
      { step_number: 2, title: "Variables", content: "Declare a variable and print it." },
    ],
  };

  function createManualForm(reload) {
    const result = h("div", { id: "manual-result" });
    const text = h("textarea", { id: "manual-json", name: "manual", rows: 12, spellcheck: "false",
      "aria-describedby": "manual-json-help manual-result",
      placeholder: '{"manual_id": "...", "title": "...", "steps": [{"step_number": 1, "title": "...", "content": "..."}]}' });
    const file = h("input", { id: "manual-file", type: "file", accept: ".json,application/json" });
    const loaded = h("span", { class: "hint", "aria-live": "polite" });
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (!chosen) return;
      text.value = await chosen.text();
      text.removeAttribute("aria-invalid");
      loaded.textContent = `Loaded ${chosen.name} (${bytes(chosen.size)}).`;
    });
    const form = h("form", { class: "create", "aria-labelledby": "create-title", novalidate: true },
      h("h2", { id: "create-title" }, "Create a manual"),
      h("label", { for: "manual-json" }, "Manual JSON"),
      h("p", { id: "manual-json-help", class: "hint" },
        "An object with manual_id, title and steps numbered 1..N (1 to 1000 steps). Paste it, or load a .json file."),
      text,
      h("div", { class: "row" },
        h("label", { for: "manual-file" }, "…or load a .json file"), file, loaded),
      h("div", { class: "row" },
        h("button", { type: "submit" }, "Create manual"),
        h("button", { type: "button", class: "secondary", onclick: () => {
          text.value = JSON.stringify(EXAMPLE_MANUAL, null, 2);
          text.removeAttribute("aria-invalid");
        } }, "Insert an example")),
      result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.replaceChildren();
      let body;
      try {
        body = JSON.parse(text.value);
      } catch (exc) {
        text.setAttribute("aria-invalid", "true");
        result.replaceChildren(h("div", { class: "error", role: "alert" },
          h("p", {}, h("strong", {}, "Not valid JSON: "), exc.message, " Nothing was sent.")));
        text.focus();
        return;
      }
      try {
        const { status, data } = await api("v1/manuals", { method: "POST", body: JSON.stringify(body) });
        text.removeAttribute("aria-invalid");
        result.replaceChildren(h("p", { class: "ok", role: "status" },
          status === 201 ? "Created manual " : "This manual already exists with the same content: ",
          h("a", { href: `#/manuals/${encodeURIComponent(data.manual_id)}` }, data.manual_id),
          ` (${data.total_steps} steps).`));
        reload();
      } catch (error) {
        text.setAttribute("aria-invalid", "true");
        result.replaceChildren(errorBox(error, "The API refused this manual"));
      }
    });
    return form;
  }

  async function manualDetail([manualId]) {
    const back = h("p", { class: "crumbs" }, h("a", { href: "#/manuals" }, "← All manuals"));
    const heading = h("h1", { tabindex: "-1" }, "Manual ", h("code", {}, manualId));
    let m;
    try {
      m = (await api(`v1/manuals/${encodeURIComponent(manualId)}`)).data;
    } catch (error) {
      return h("section", {}, back, heading, errorBox(error, "Could not load this manual"));
    }
    return h("section", {}, back, heading,
      h("p", { class: "lead" }, m.title),
      h("dl", { class: "facts" }, fact("Steps", m.total_steps), fact("Created", time(m.created_at)),
        fact("Active sessions", m.active_sessions),
        fact("Sessions", h("a", { href: hashFor("/sessions", { manual_id: m.manual_id }) }, "Sessions on this manual"))),
      deleteManualControl(m),
      h("h2", {}, "Steps"),
      h("ol", { class: "manual-steps" }, m.steps.map((step) => h("li", {},
        h("h3", {}, `${step.step_number}. ${step.title}`),
        h("div", { class: "content" }, step.content || "(no content)")))));
  }

  // ---- inbox --------------------------------------------------------------------------------

  function inboxSettings() {
    try { return { id: "local", token: "", ...JSON.parse(sessionStorage.getItem(INBOX_STORAGE) || "{}") }; } catch { return { id: "local", token: "" }; }
  }

  const inboxPath = (id) => `v1/inboxes/${encodeURIComponent(id)}/requests`;

  function verdict(signature) {
    if (!signature) return h("span", { class: "badge badge-none" }, "not checked");
    return signature.verified
      ? h("span", { class: "badge badge-delivered" }, "✓ verified")
      : h("span", { class: "badge badge-failed" }, `✗ not verified: ${signature.reason || "unknown"}`);
  }

  async function inboxList(_, query) {
    const settings = inboxSettings();
    const method = query.get("method") || "";
    const form = h("form", { class: "filters", "aria-label": "Inbox" },
      h("div", { class: "field" }, h("label", { for: "inbox-id" }, "Inbox id"),
        h("input", { id: "inbox-id", name: "id", value: settings.id, required: true, autocomplete: "off" })),
      h("div", { class: "field" }, h("label", { for: "inbox-token" }, "Read token"),
        h("input", { id: "inbox-token", name: "token", type: "password", value: settings.token, autocomplete: "off",
          "aria-describedby": "inbox-token-help" })),
      h("div", { class: "field" }, h("label", { for: "inbox-method" }, "Method"),
        h("select", { id: "inbox-method", name: "method" }, h("option", { value: "" }, "Any"),
          ["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].map((m) => h("option", { value: m, selected: m === method }, m)))),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Show requests")),
      h("p", { id: "inbox-token-help", class: "hint wide" },
        "The token shown when the inbox was created (sent as X-Inbox-Token). make run prints the token of inbox local."));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      sessionStorage.setItem(INBOX_STORAGE, JSON.stringify({ id: data.id.trim(), token: data.token.trim() }));
      const target = hashFor("/inbox", { method: data.method });
      if (target === location.hash) render(); else location.hash = target;
    });
    const section = h("section", {}, h("h1", { tabindex: "-1" }, "Inbox"),
      h("p", { class: "lead" }, "Requests captured by a webhook inbox, newest first, with their signature verdict."), form);
    if (!settings.token) {
      section.append(h("p", { class: "empty" }, "Enter the inbox's read token to see its requests."));
      return section;
    }
    const results = h("div", { class: "results" });
    let shown = null;
    const { nav, go, refresh } = pager("Captured requests", async (cursor, quiet) => {
      const params = new URLSearchParams(Object.entries({ limit: "20", method, cursor }).filter(([, v]) => v));
      try {
        const { data } = await api(`${inboxPath(settings.id)}?${params}`, { headers: { "X-Inbox-Token": settings.token } });
        const seen = JSON.stringify(data.items.map((r) => r.request_id));
        if (quiet && seen === shown) return data.next_cursor;
        shown = seen;
        results.replaceChildren(table(`Requests captured by inbox ${settings.id}`,
          ["Received", "Method", "Path", "Webhook id", ["Size", "num"], "Signature", "Repeats", "Forwards", "Details"],
          data.items.map((r) => h("tr", {},
            h("td", {}, time(r.received_at)), h("td", {}, r.method), h("td", {}, h("code", {}, r.path)),
            h("td", {}, r.headers["webhook-id"] || "—"), h("td", { class: "num" }, bytes(r.size_bytes)),
            h("td", {}, verdict(r.signature)),
            h("td", {}, repeats(r)), h("td", {}, forwardBadges(r)),
            h("td", {}, h("a", { href: `#/inbox/${encodeURIComponent(r.request_id)}`,
              "aria-label": `Details of ${r.method} ${r.request_id}` }, "Details")))),
          "No requests captured."));
        return data.next_cursor;
      } catch (error) {
        shown = null;
        results.replaceChildren(errorBox(error, `Could not read inbox ${settings.id}`));
        return null;
      }
    });
    await go();
    live(LIST_POLL_MS, refresh);
    section.append(await inboxControls(settings), await inboxSummary(settings), results, nav,
      liveNote("New captures show on their own."));
    return section;
  }

  async function inboxRequest([requestId]) {
    const settings = inboxSettings();
    const back = h("p", { class: "crumbs" }, h("a", { href: "#/inbox" }, "← Inbox ", settings.id));
    const heading = h("h1", { tabindex: "-1" }, "Captured request ", h("code", {}, requestId));
    let r;
    try {
      r = (await api(`${inboxPath(settings.id)}/${encodeURIComponent(requestId)}`,
        { headers: { "X-Inbox-Token": settings.token } })).data;
    } catch (error) {
      return h("section", {}, back, heading, errorBox(error, "Could not load this request"));
    }
    let body = r.body || "";
    if (r.body_encoding === "text" && /json/i.test(r.content_type)) {
      try { body = JSON.stringify(JSON.parse(body), null, 2); } catch { /* shown as sent */ }
    }
    const query = Object.entries(r.query || {});
    return h("section", {}, back, heading,
      h("dl", { class: "facts" },
        fact("Signature", verdict(r.signature)), fact("Method", r.method), fact("Path", h("code", {}, r.path)),
        fact("Received", time(r.received_at)), fact("Content type", r.content_type || "—"),
        fact("Size", bytes(r.size_bytes)), fact("Source IP", r.source_ip || "—"), fact("User agent", r.user_agent || "—"),
        captureFacts(r)),
      query.length ? table("Query parameters", ["Name", "Value"], query.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))), "") : null,
      h("h2", {}, "Headers"),
      table("Headers as received (secrets masked)", ["Name", "Value"],
        Object.entries(r.headers).sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, h("code", {}, v)))), "No headers."),
      h("h2", {}, `Body${r.body_encoding === "base64" ? " (base64: not text)" : ""}`),
      body ? h("pre", { class: "body", tabindex: "0", "aria-label": "Body" }, body) : h("p", { class: "empty" }, "Empty body."),
      forwardsSection(r));
  }

  // ---- inbox: duplicates, conflicts, forwarding and metrics ---------------------------------

  function repeats(r) {
    const parts = [];
    if (r.duplicates) parts.push(h("span", { class: "badge badge-none" }, `${plural(r.duplicates, "duplicate")}`));
    if (r.conflict) parts.push(h("span", { class: "badge badge-gone" }, "conflict"));
    return parts.length ? parts : "—";
  }

  function forwardBadges(r) {
    if (!r.forwards || !r.forwards.length) return "—";
    return h("ul", { class: "badges", "aria-label": `Forwards of ${r.request_id}` }, r.forwards.map((f) =>
      h("li", {}, h("span", { class: `badge badge-${f.status}`, title: f.destination },
        `${f.status} (${plural(f.attempts.length, "attempt")})`))));
  }

  function captureFacts(r) {
    return [
      fact("Idempotency key", r.idempotency_key ? h("code", {}, r.idempotency_key) : "— (no webhook-id or Idempotency-Key)"),
      fact("Duplicates", r.duplicates ? `${plural(r.duplicates, "more arrival")} with the same key and body (counted, not stored)` : "none"),
      fact("Conflict", r.conflict
        ? h("span", {}, h("span", { class: "badge badge-gone" }, "conflict"), " same key, another body than ",
          h("a", { href: `#/inbox/${encodeURIComponent(r.conflict_with)}` }, r.conflict_with))
        : "no"),
    ];
  }

  function forwardsSection(r) {
    if (!r.forwards || !r.forwards.length) return null;
    return h("section", { "aria-labelledby": "forwards-heading" }, h("h2", { id: "forwards-heading" }, "Forwards"),
      r.forwards.map((f) => h("div", { class: "forward" },
        h("h3", {}, h("code", {}, f.destination), " ", badge(f.status)),
        table(`Attempts forwarding to ${f.destination}`, [["Attempt", "num"], "Outcome", "Answer", ["Latency", "num"], "At"],
          f.attempts.map((a) => h("tr", {},
            h("td", { class: "num" }, `${a.attempt} of ${a.of}`), h("td", {}, a.outcome),
            h("td", {}, a.status_code ? `HTTP ${a.status_code}` : a.error || "—"),
            h("td", { class: "num" }, `${a.latency_ms} ms`), h("td", {}, time(a.at)))),
          "Not attempted yet."))));
  }

  const counts = (map) => {
    const entries = Object.entries(map || {});
    return entries.length ? entries.map(([k, n]) => `${k}: ${n}`).join(", ") : "—";
  };

  async function inboxSummary(settings) {
    const headers = { "X-Inbox-Token": settings.token };
    const base = `v1/inboxes/${encodeURIComponent(settings.id)}`;
    const holder = h("section", { class: "inbox-summary", "aria-labelledby": "inbox-summary-heading" },
      h("h2", { id: "inbox-summary-heading" }, "Forwarding and the last 24 hours"));
    const [box, metrics] = await Promise.allSettled([api(base, { headers }), api(`${base}/metrics?hours=24`, { headers })]);
    if (box.status === "rejected") return document.createDocumentFragment();  // the requests' table says why
    const destinations = box.value.data.forward_to;
    holder.append(destinations.length
      ? h("div", {}, h("p", {}, `Each capture is forwarded to ${plural(destinations.length, "destination")}:`),
        h("ul", { class: "destinations", "aria-label": "Forward destinations" }, destinations.map((u) => h("li", {}, h("code", {}, u)))))
      : h("p", { class: "empty" }, "No forward destinations: captures are kept here only."));
    if (metrics.status === "rejected") {
      holder.append(errorBox(metrics.reason, "Could not load the inbox's metrics"));
      return holder;
    }
    const { totals, hours } = metrics.value.data;
    holder.append(h("dl", { class: "facts" },
      fact("Captures", String(totals.captures)), fact("Duplicates", String(totals.duplicates)),
      fact("Conflicts", String(totals.conflicts)), fact("Answered", counts(totals.answered)),
      fact("Signatures", counts(totals.signatures)), fact("Forward answers", counts(totals.forwards))),
    table("Captures per hour (UTC), hours with any", ["Hour", ["Captures", "num"], ["Duplicates", "num"],
      ["Conflicts", "num"], "Signatures", "Forward answers"],
      hours.filter((x) => x.captures || Object.keys(x.forwards).length).reverse().map((x) => h("tr", {},
        h("td", {}, `${x.hour.replace("T", " ")}:00`), h("td", { class: "num" }, x.captures),
        h("td", { class: "num" }, x.duplicates), h("td", { class: "num" }, x.conflicts),
        h("td", {}, counts(x.signatures)), h("td", {}, counts(x.forwards)))),
      "No captures in the last 24 hours."));
    return holder;
  }

  // ---- statuses as words --------------------------------------------------------------------

  const STATUS_WORDS = {
    active: "Active", completed: "Completed", ended: "Ended", abandoned: "Abandoned",
    pending: "Pending", retrying: "Retrying", delivered: "Delivered", failed: "Failed",
    gone: "Gone (the receiver answered 410)", not_sent: "Not sent (no webhook for this type)",
    none: "None", queued: "Queued",
  };
  const OUTCOME_WORDS = { delivered: "Delivered", retrying: "Will retry", throttled: "Throttled: will retry",
    failed: "Failed", gone: "Gone (410)" };
  const END_REASON_WORDS = {
    completed: "every step completed", ended: "ended by the agent or an operator",
    abandoned: "abandoned by the agent or an operator", idle_timeout: "abandoned: idle for too long",
  };
  function statusWord(status) {
    if (status === null || status === undefined) return "—";
    return STATUS_WORDS[status] || String(status).replace(/_/g, " ");
  }
  const endReasonWord = (reason) => END_REASON_WORDS[reason] || String(reason).replace(/_/g, " ");

  // ---- live updates -------------------------------------------------------------------------
  // Incremental polling of cheap reads (README, "Dashboard": the cost per open page-hour). A
  // poll runs only while its page is shown (a navigation stops it) and the tab is visible.

  const SESSION_POLL_MS = 700;   // the session page: a change shows within about a second
  const LIST_POLL_MS = 2000;     // the sessions list, failed deliveries, an inbox's captures
  const OVERVIEW_POLL_MS = 5000; // the overview (analytics are counted from the stream anyway)

  function live(ms, tick) {
    const token = renderCount;
    let timer = null;
    const run = async () => {
      if (token !== renderCount) return;  // the page was left or drawn again: this poll ends
      if (!document.hidden && getKey() && $("key-panel").hidden) {
        try {
          if (await tick() === false) return;  // the tick says there is nothing left to watch
        } catch { /* each tick shows its own errors */ }
      }
      if (token === renderCount) timer = setTimeout(run, ms);
    };
    timer = setTimeout(run, ms);
    return () => clearTimeout(timer);
  }

  const liveNote = (text) => h("p", { class: "hint live-note" }, h("span", { class: "live-dot", "aria-hidden": "true" }), text);

  // A page drawn again from scratch in the background, swapped in only when it shows something
  // else and nobody is using it (no focus inside, no open details).
  let redrawing = false;
  function liveRedraw(ms, build) {
    const token = renderCount;
    live(ms, async () => {
      const main = $("main");
      const current = main.firstElementChild;
      const active = document.activeElement;
      if (!current || (main.contains(active) && active !== main && active.tagName !== "H1")) return;
      if (main.querySelector("details[open]")) return;
      redrawing = true;
      let fresh;
      try { fresh = build([], new URLSearchParams()); } finally { redrawing = false; }
      fresh = await fresh;
      if (token !== renderCount || !fresh) return;
      if (fresh.textContent !== current.textContent) main.replaceChildren(fresh);
    });
  }

  // ---- actions: one helper, so every action confirms, disables and reports the same way -----

  // run() makes the API call; confirmText (if any) is asked first; done(result) updates the page.
  function actionButton(label, { cls, confirmText, run, done, context, describedBy } = {}) {
    const holder = h("span", { class: "action" });
    const button = h("button", { type: "button", class: cls, "aria-describedby": describedBy }, label);
    holder.append(button);
    button.addEventListener("click", async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      holder.querySelector(".error")?.remove();
      button.disabled = true;
      try {
        const result = await run();
        button.disabled = false;
        if (done) await done(result);
      } catch (error) {
        button.disabled = false;
        holder.append(errorBox(error instanceof ApiError ? error : new ApiError(0, null, String(error)),
          context || `${label} failed`));
      }
    });
    return holder;
  }

  const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body) });

  // ---- overview: the latest failed deliveries -----------------------------------------------

  function failedSummary(d) {
    // one row per event and endpoint it failed at, with that endpoint's last attempt
    return h("div", {}, table("The latest webhooks that failed for good",
      ["Event", "Endpoint", "Type", "Session", "Last answer", "Last attempt"],
      failuresOf(d.items).map(({ d: f, endpointId }) => {
        const attempts = attemptsAt(f, endpointId);
        const last = attempts[attempts.length - 1] || {};
        return h("tr", {}, h("td", {}, h("code", {}, f.event_id)),
          h("td", {}, h("a", { href: `#/endpoints/${encodeURIComponent(endpointId)}` }, h("code", {}, endpointId))),
          h("td", {}, f.event_type),
          h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(f.session_id)}` }, f.session_id)),
          h("td", {}, answerOf(last)), h("td", {}, time(last.at)));
      }), "None: every webhook was delivered or is still being tried."),
    h("p", {}, h("a", { href: "#/deliveries" }, "All failed deliveries, to redeliver or redrive")));
  }

  // ---- sessions: create ---------------------------------------------------------------------

  function newSessionForm(filters) {
    const result = h("div", { class: "form-result" });
    const input = (name, label, attrs) => h("div", { class: "field" },
      h("label", { for: `new-${name}` }, label), h("input", { id: `new-${name}`, name, autocomplete: "off", ...attrs }));
    const form = h("form", { class: "filters", "aria-label": "New session", novalidate: true },
      input("user_id", "For user", { required: true, value: filters.user_id }),
      input("manual_id", "On manual", { required: true, value: filters.manual_id }),
      input("session_id", "Session id (optional)", { "aria-describedby": "new-session-help" }),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Create session")),
      h("p", { id: "new-session-help", class: "hint wide" },
        "Leave the session id empty to have one generated. The same id, user and manual again opens the existing session."),
      result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.replaceChildren();
      const data = Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, v.trim()]).filter(([, v]) => v));
      try {
        const { status, data: created } = await post("v1/sessions", data);
        announce(status === 201 ? `Session ${created.session_id} created.` : `Session ${created.session_id} already existed.`);
        location.hash = `#/sessions/${encodeURIComponent(created.session_id)}`;
      } catch (error) {
        result.replaceChildren(errorBox(error, "The API refused this session"));
      }
    });
    return h("details", { id: "new-session", class: "new-session" }, h("summary", {}, "Start a new session"), form);
  }

  // ---- the session page: live, with its actions ---------------------------------------------

  function sessionView(sessionId, base, first, nextStep, messages, events) {
    let s = first;
    const factsBox = h("div", {});
    const summaryBox = h("div", {});
    const progressBox = h("div", {});
    const currentBox = h("div", {});
    const actionsBox = h("div", { class: "session-actions" });
    const convBox = h("div", {});
    const eventsBox = h("div", {});
    const notice = h("div", { role: "status" });
    const messageBox = h("div", {});
    const messageIds = new Set();
    let newestMessage = null;
    let moreMessages = false;
    const eventStates = new Map();  // event_id -> what was drawn (JSON)
    let lastSequence = 0;
    let step = nextStep.status === "fulfilled" ? nextStep.value.data : null;
    const fingerprint = (x) => JSON.stringify({ ...x, duration_seconds: undefined });

    const drawSession = () => {
      factsBox.replaceChildren(h("dl", { class: "facts" },
        fact("Status", badge(s.status)), fact("User", s.user_id),
        fact("Manual", h("a", { href: `#/manuals/${encodeURIComponent(s.manual_id)}` }, s.manual_id)),
        fact("Started", time(s.started_at)), fact("Last activity", time(s.last_activity_at)),
        fact("Ended", time(s.ended_at)), fact("Duration", duration(s.duration_seconds)),
        s.end_reason ? fact("End reason", endReasonWord(s.end_reason)) : null, fact("Messages", s.message_count)));
      summaryBox.replaceChildren(s.summary ? summaryView(s.summary) : "");
      if (s.status !== "active") messageBox.replaceChildren();  // an ended session takes no more messages
      progressBox.replaceChildren(stepIndicator(s));
      drawActions();
    };
    const drawActions = () => {
      const focused = actionsBox.contains(document.activeElement);
      actionsBox.replaceChildren(...sessionActions());
      if (focused) actionsBox.querySelector("button")?.focus();  // the pressed button was replaced
    };
    const drawStep = (failure) => {
      if (failure) { currentBox.replaceChildren(errorBox(failure, "Could not load the current step")); return; }
      if (s.status === "ended" || s.status === "abandoned") {
        currentBox.replaceChildren(h("p", { class: "hint" }, `None: the session is ${statusWord(s.status).toLowerCase()}.`));
        return;
      }
      currentBox.replaceChildren(!step || step.is_completed || !step.next_step
        ? h("p", { class: "done" }, "All steps completed.")
        : h("article", { class: "step-now", "aria-labelledby": "current-step-title" },
          h("h3", { id: "current-step-title" }, `Step ${step.next_step.step_number} of ${step.total_steps}: ${step.next_step.title}`),
          h("div", { class: "content" }, step.next_step.content || "(no content)")));
    };
    const addMessages = (items, drawn) => {
      const fresh = items.filter((m) => !messageIds.has(m.message_id));
      for (const m of items) {
        messageIds.add(m.message_id);
        if (!newestMessage || m.created_at > newestMessage) newestMessage = m.created_at;
      }
      if (!fresh.length || drawn) return 0;
      const list = convBox.querySelector("ol.chat");
      if (list) append(list, fresh.map(messageItem));
      else convBox.replaceChildren(conversation({ items: fresh, next_cursor: null }, base));
      return fresh.length;
    };
    const addEvents = (items) => {
      for (const e of items) {
        lastSequence = Math.max(lastSequence, e.sequence);
        const drawn = JSON.stringify(e);
        if (eventStates.get(e.event_id) === drawn) continue;
        const known = eventStates.has(e.event_id);
        eventStates.set(e.event_id, drawn);
        const old = eventsBox.querySelector(`li[data-event-id="${CSS.escape(e.event_id)}"]`);
        if (known && old) {
          if (old.contains(document.activeElement) || old.querySelector(".feedback .error")) continue;
          const open = old.querySelector("details")?.open;
          const item = eventItem(e);
          if (open && item.querySelector("details")) item.querySelector("details").open = true;
          old.replaceWith(item);
        } else {
          const list = eventsBox.querySelector("ol.timeline");
          if (list) list.append(eventItem(e));
          else eventsBox.replaceChildren(timeline([e], null));
        }
      }
    };
    const unsettled = () => [...eventsBox.querySelectorAll("li[data-event-id]")]
      .filter((li) => li.dataset.moving === "true")
      .map((li) => Number(li.dataset.sequence));

    // what changed since the last look: the session (one GetItem); then, only if it changed,
    // the new messages and events; and the events whose delivery is not settled yet
    const tick = async () => {
      let fresh;
      try {
        fresh = (await api(base)).data;
      } catch (error) {
        if (error.status === 404) {
          notice.replaceChildren(h("div", { class: "error" }, h("p", {}, h("strong", {}, "This session no longer exists: "),
            error.message, " ", h("a", { href: "#/sessions" }, "Back to all sessions"), ".")));
          actionsBox.replaceChildren();
          return false;
        }
        return true;
      }
      const changed = fingerprint(fresh) !== fingerprint(s);
      const steps = changed && (fresh.version !== s.version || fresh.status !== s.status);
      const waiting = unsettled();
      const reads = [];
      if (changed && !moreMessages) {
        const since = newestMessage ? new Date(Date.parse(newestMessage) - 10_000).toISOString() : null;
        reads.push(api(`${base}/messages?limit=100${since ? `&since=${encodeURIComponent(since)}` : ""}`)
          .then(({ data }) => {
            const n = addMessages(data.items);
            if (n) announce(`${plural(n, "new message")}.`);
          }));
      }
      if (changed || waiting.length) {
        const after = waiting.length ? Math.min(...waiting) - 1 : lastSequence;
        reads.push(api(`${base}/events?limit=100&after_sequence=${after}`).then(({ data }) => addEvents(data.items)));
      }
      if (steps) reads.push(api(`${base}/next-step`).then(({ data }) => { step = data; drawStep(); }, (error) => drawStep(error)));
      s = fresh;
      if (changed) drawSession();
      if (changed && s.status !== "active") drawStep();
      await Promise.allSettled(reads);
      if (steps) drawActions();
      return true;
    };

    // the page's actions: each through the API, then the page catches up at once
    const afterAction = async (message) => { announce(message); await tick(); };
    const sessionActions = () => {
      if (s.status !== "active") {
        return [h("p", { class: "hint" }, `This session is ${statusWord(s.status).toLowerCase()}: it takes no more progress.`),
          deleteSessionButton()];
      }
      const current = step && step.next_step ? step.next_step.step_number : s.current_step;
      const progress = (stepStatus) => () => post(`${base}/progress`,
        { user_id: s.user_id, current_step: current, step_status: stepStatus });
      return [
        h("div", { class: "row" },
          actionButton(`Complete step ${current}`, { run: progress("DONE"), done: () => afterAction(`Step ${current} completed.`) }),
          actionButton(`Mark step ${current} ongoing`, { cls: "secondary", run: progress("ONGOING"),
            done: () => afterAction(`Step ${current} marked ongoing.`) })),
        h("div", { class: "row" },
          actionButton("End session", { cls: "secondary", confirmText: `End session ${s.session_id}? It cannot be resumed.`,
            run: () => api(base, { method: "PATCH", body: JSON.stringify({ status: "ended" }) }),
            done: () => afterAction("Session ended.") }),
          actionButton("Abandon session", { cls: "secondary", confirmText: `Mark session ${s.session_id} abandoned? It cannot be resumed.`,
            run: () => api(base, { method: "PATCH", body: JSON.stringify({ status: "abandoned" }) }),
            done: () => afterAction("Session abandoned.") }),
          deleteSessionButton())];
    };
    const deleteSessionButton = () => actionButton("Delete session", { cls: "danger",
      confirmText: `Delete session ${s.session_id} with its messages and events? This cannot be undone.`,
      run: () => api(base, { method: "DELETE" }),
      done: () => { announce(`Session ${s.session_id} deleted.`); location.hash = "#/sessions"; } });

    const messageForm = () => {
      const result = h("div", {});
      const text = h("textarea", { id: "message-text", name: "message", rows: 3, required: true });
      const form = h("form", { class: "message-form", "aria-labelledby": "message-form-title", novalidate: true },
        h("h3", { id: "message-form-title" }, "Post a message"),
        h("label", { for: "message-text" }, "Message"), text,
        h("div", { class: "row" },
          h("label", { for: "message-sender" }, "Sender"),
          h("select", { id: "message-sender", name: "sender" },
            h("option", { value: "agent" }, "Agent"), h("option", { value: "user" }, "User")),
          h("button", { type: "submit" }, "Post message")),
        result);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        result.replaceChildren();
        const button = form.querySelector("button[type=submit]");
        button.disabled = true;
        try {
          const sent = text.value;
          const { data } = await post(`${base}/messages`, { user_id: s.user_id, sender: form.elements.sender.value, message: sent });
          if (text.value === sent) text.value = "";  // (unless something new was typed meanwhile)
          addMessages([data]);
          await afterAction("Message posted.");
        } catch (error) {
          result.replaceChildren(errorBox(error, "The API refused this message"));
        }
        button.disabled = false;
      });
      return form;
    };

    // first drawing, from what sessionDetail read
    if (s.status === "active") messageBox.append(messageForm());
    drawSession();
    drawStep(nextStep.status === "rejected" ? nextStep.reason : null);
    if (messages.status === "fulfilled") {
      convBox.replaceChildren(conversation(messages.value.data, base));
      moreMessages = Boolean(messages.value.data.next_cursor);
      addMessages(messages.value.data.items, true);
    } else convBox.replaceChildren(errorBox(messages.reason, "Could not load the conversation"));
    if (events.status === "fulfilled") {
      eventsBox.replaceChildren(timeline(events.value.data.items, events.value.data.next_cursor));
      for (const e of events.value.data.items) {
        eventStates.set(e.event_id, JSON.stringify(e));
        lastSequence = Math.max(lastSequence, e.sequence);
      }
    } else eventsBox.replaceChildren(errorBox(events.reason, "Could not load the events"));
    live(SESSION_POLL_MS, tick);

    return h("div", {}, notice, factsBox, h("h2", {}, "Actions"), actionsBox, summaryBox,
      h("h2", {}, "Progress"), progressBox, h("h2", {}, "Current step"), currentBox,
      h("h2", {}, "Conversation"), convBox, messageBox,
      h("h2", {}, "Events and webhook deliveries"), eventsBox,
      liveNote("This page updates on its own: steps, conversation and deliveries."));
  }

  function summaryView(summary) {
    const messages = summary.messages || {};
    const perStep = summary.time_per_step || [];
    return h("section", { class: "summary", "aria-labelledby": "summary-title" },
      h("h2", { id: "summary-title" }, "Summary"),
      h("dl", { class: "facts" },
        fact("Steps completed", `${summary.steps_completed} of ${summary.total_steps} (${percent(summary.completion_ratio)})`),
        fact("Duration", duration(summary.duration_seconds)),
        fact("Average time per step", duration(summary.average_step_seconds)),
        fact("End reason", summary.end_reason ? endReasonWord(summary.end_reason) : "—")),
      table("Messages by sender", ["Sender", ["Messages", "num"]],
        [["User", messages.user], ["Agent", messages.agent], ["Total", messages.total]].map(([who, n]) =>
          h("tr", {}, h("th", { scope: "row" }, who), h("td", { class: "num" }, n ?? 0))), ""),
      table("Time per step (from the previous step, or the start)", [["Step", "num"], ["Time", "num"]],
        perStep.map((p) => h("tr", {}, h("td", { class: "num" }, p.step), h("td", { class: "num" }, duration(p.seconds)))),
        "No step was completed."));
  }

  // ---- delivery attempts, readable ----------------------------------------------------------

  const answerOf = (a) => (a.status_code ? `HTTP ${a.status_code}` : a.error || "—");

  function attemptLog(e, endpointId) {
    const attempts = endpointId ? attemptsAt(e, endpointId) : e.delivery_attempts;
    return table(endpointId ? `Delivery attempts of ${e.event_id} at ${endpointId}` : `Delivery attempts of ${e.event_id}`,
      [["Attempt", "num"], "Outcome", "Answer", ["Latency", "num"], "At", "Next", ...(endpointId ? [] : ["Endpoint"])],
      attempts.map((a) => h("tr", {},
        h("td", { class: "num" }, a.attempt ? (a.of ? `${a.attempt} of ${a.of}` : a.attempt) : "—"),
        h("td", {}, OUTCOME_WORDS[a.outcome] || (a.outcome ? String(a.outcome).replace(/_/g, " ") : "—")),
        h("td", {}, answerOf(a)),
        h("td", { class: "num" }, a.latency_ms === undefined || a.latency_ms === null ? "—" : `${a.latency_ms} ms`),
        h("td", {}, time(a.at)),
        h("td", {}, a.retry_in_seconds === undefined || a.retry_in_seconds === null ? "—" : `retry in ${duration(a.retry_in_seconds)}`),
        endpointId ? null : h("td", {}, h("code", {}, a.endpoint_id || DEFAULT_ENDPOINT)))),
      "");
  }

  // Rows keyed by data-key: those not in `items` go, the new ones are put in their place; the
  // kept ones are not touched (lists ordered by time keep their relative order).
  function syncRows(tbody, items, keyOf, build) {
    const wanted = new Set(items.map(keyOf));
    for (const tr of [...tbody.children]) if (!wanted.has(tr.dataset.key)) tr.remove();
    const kept = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
    let next = tbody.firstElementChild;
    for (const item of items) {
      const tr = kept.get(keyOf(item));
      if (tr) { next = tr.nextElementSibling; continue; }
      tbody.insertBefore(build(item), next);
    }
  }

  // The failed list's rows: one per event and endpoint it failed at (an event stored before
  // endpoints existed failed at the default one).
  const failuresOf = (items) => items.flatMap((d) => {
    const at = d.failed_endpoints && d.failed_endpoints.length ? [...d.failed_endpoints].sort()
      : Object.keys(d.deliveries || {}).filter((k) => d.deliveries[k].status === "failed");
    return (at.length ? at : [DEFAULT_ENDPOINT]).map((endpointId) => ({ d, endpointId }));
  });
  const failureKey = (f) => `${f.d.event_id} ${f.endpointId}`;

  function failedRow({ d, endpointId }) {
    const attempts = attemptsAt(d, endpointId);
    const last = attempts[attempts.length - 1] || {};
    const labelId = nextId("failed");
    const control = actionButton("Redeliver", { cls: "danger", describedBy: labelId,
      run: () => post(`v1/events/${encodeURIComponent(d.event_id)}/redeliver?${new URLSearchParams({ endpoint_id: endpointId })}`, {}),
      done: () => {
        // the row leaves the list once the event is pending again there: the news stays above it
        control.replaceChildren(h("span", { class: "ok" }, `Queued for redelivery to ${endpointId}.`));
        const notice = $("deliveries-notice");
        if (notice) notice.textContent = `Queued ${d.event_id} (${d.event_type} of ${d.session_id}) for redelivery to ${endpointId}.`;
      } });
    return h("tr", { "data-key": failureKey({ d, endpointId }) },
      h("td", {}, h("code", {}, d.event_id)),
      h("td", {}, h("a", { href: `#/endpoints/${encodeURIComponent(endpointId)}` }, h("code", {}, endpointId))),
      h("td", {}, d.event_type),
      h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(d.session_id)}` }, d.session_id)),
      h("td", { class: "num" }, attempts.length),
      h("td", {}, answerOf(last)),
      h("td", {}, time(last.at)),
      h("td", {}, control, h("span", { id: labelId, class: "visually-hidden" }, `${d.event_id} at endpoint ${endpointId}`),
        attempts.length ? h("details", {}, h("summary", {}, "Attempt log"), attemptLog(d, endpointId)) : null));
  }

  function redrivePanel(refresh) {
    const bar = h("progress", { id: "redrive-progress", max: 1, value: 0 });
    const label = h("label", { for: "redrive-progress" }, "Redrive progress");
    const status = h("p", { role: "status", class: "hint" });
    const row = h("div", { class: "progress-row", hidden: true }, label, bar);
    let moved = 0;
    const control = actionButton("Redrive all", {
      confirmText: "Move every dead-lettered webhook back to the delivery queue, in order?",
      context: "Redrive failed",
      run: async () => {
        moved = 0;
        row.hidden = false;
        for (let round = 0; round < 1000; round++) {
          const { data } = await api("v1/deliveries/redrive?limit=100", { method: "POST", body: "{}" });
          moved += data.moved;
          bar.max = Math.max(1, moved + data.remaining);
          bar.value = moved;
          status.textContent = `${plural(moved, "webhook")} moved back to the queue, about ${data.remaining} still dead-lettered.`;
          if (data.remaining === 0 || data.moved === 0) return data;
        }
        return null;
      },
      done: async (data) => {
        status.textContent = `Redrive done: ${plural(moved, "webhook")} moved back to the delivery queue${data && data.remaining ? `, about ${data.remaining} left` : ""}.`;
        await refresh();
      } });
    return h("div", { class: "redrive" }, control, row, status);
  }

  // ---- manuals: delete ----------------------------------------------------------------------

  function deleteManualControl(m) {
    return h("div", { class: "row" }, actionButton("Delete manual", { cls: "danger",
      confirmText: `Delete manual ${m.manual_id}? Sessions that ended keep their history.`,
      context: "The API refused to delete this manual",
      run: () => api(`v1/manuals/${encodeURIComponent(m.manual_id)}`, { method: "DELETE" }),
      done: () => { announce(`Manual ${m.manual_id} deleted.`); location.hash = "#/manuals"; } }),
    m.active_sessions ? h("p", { class: "hint" }, `${plural(m.active_sessions, "active session")} use this manual: `,
      h("a", { href: hashFor("/sessions", { manual_id: m.manual_id, status: "active" }) }, "end or delete them"),
      " before deleting it.") : null);
  }

  // ---- inbox: pause, resume, delete ---------------------------------------------------------

  async function inboxControls(settings) {
    const headers = { "X-Inbox-Token": settings.token };
    const path = `v1/inboxes/${encodeURIComponent(settings.id)}`;
    const box = h("div", { class: "inbox-controls" });
    let inbox;
    try {
      inbox = (await api(path, { headers })).data;
    } catch {
      return box;  // the list below shows the API's answer (a wrong id or token)
    }
    const draw = () => box.replaceChildren(
      h("p", {}, `Inbox ${inbox.inbox_id}${inbox.name ? ` (${inbox.name})` : ""} is `,
        h("strong", {}, inbox.paused ? "paused: it answers 410 Gone and stores nothing" : "capturing"), "."),
      h("div", { class: "row" },
        actionButton(inbox.paused ? "Resume inbox" : "Pause inbox", { cls: "secondary",
          run: () => api(path, { method: "PATCH", headers, body: JSON.stringify({ paused: !inbox.paused }) }),
          done: ({ data }) => { inbox = data; draw(); announce(inbox.paused ? "Inbox paused." : "Inbox resumed."); } }),
        actionButton("Delete inbox", { cls: "danger",
          confirmText: `Delete inbox ${inbox.inbox_id} and every request it captured? This cannot be undone.`,
          run: () => api(path, { method: "DELETE", headers }),
          done: () => {
            sessionStorage.removeItem(INBOX_STORAGE);
            announce(`Inbox ${inbox.inbox_id} deleted.`);
            render();
          } })));
    draw();
    return box;
  }

  // ---- API keys (admin) ---------------------------------------------------------------------

  async function keyList() {
    const results = h("div", { class: "results" });
    // keys created on this page stay on top: the list is in key-id order, so a new key may
    // be on any page of it
    const created = [];
    const { nav, go } = pager("API keys", async (cursor) => {
      const params = new URLSearchParams({ limit: "50", ...(cursor ? { cursor } : {}) });
      try {
        const { data } = await api(`v1/keys?${params}`);
        const listed = new Set(data.items.map((k) => k.key_id));
        const items = [...created.filter((k) => !listed.has(k.key_id)), ...data.items];
        results.replaceChildren(table("API keys (their values are never shown again)",
          ["Key id", "Name", "Scopes", "User", "Created", "Status", "Action"],
          items.map((k) => h("tr", {},
            h("td", {}, h("code", { id: `key-${k.key_id}` }, k.key_id)), h("td", {}, k.name || "—"), h("td", {}, k.scopes.join(", ")),
            h("td", {}, k.user_id || "any user"), h("td", {}, time(k.created_at)),
            h("td", {}, k.revoked_at ? h("span", {}, "Revoked ", time(k.revoked_at)) : "Active"),
            h("td", {}, k.revoked_at ? "—" : actionButton("Revoke", { cls: "danger", describedBy: `key-${k.key_id}`,
              confirmText: `Revoke key ${k.key_id}${k.name ? ` (${k.name})` : ""}? Calls with it are refused from then on.`,
              run: () => api(`v1/keys/${encodeURIComponent(k.key_id)}`, { method: "DELETE" }),
              done: () => {
                for (const mine of created) if (mine.key_id === k.key_id) mine.revoked_at = new Date().toISOString();
                announce(`Key ${k.key_id} revoked.`);
                go();
              } })))),
          "No API keys yet."));
        return data.next_cursor;
      } catch (error) {
        results.replaceChildren(errorBox(error, "Could not list API keys"));
        return null;
      }
    });
    await go();
    return h("section", {}, h("h1", { tabindex: "-1" }, "API keys"),
      h("p", { class: "lead" }, "Keys for agents, scripts and operators (an admin key is needed here)."),
      createKeyForm((key) => { created.unshift(key); go(); }), results, nav);
  }

  function createKeyForm(onCreated) {
    const result = h("div", { class: "form-result" });
    const scope = (value, text) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "scopes", value, checked: value === "read" }), ` ${text}`);
    const form = h("form", { class: "create", "aria-labelledby": "key-create-title", novalidate: true },
      h("h2", { id: "key-create-title" }, "Create an API key"),
      h("fieldset", {}, h("legend", {}, "Scopes"),
        scope("read", "read (GET)"), scope("agent", "agent (sessions, progress, messages)"), scope("admin", "admin (everything)")),
      h("div", { class: "row" },
        h("div", { class: "field" }, h("label", { for: "key-name" }, "Name"),
          h("input", { id: "key-name", name: "name", autocomplete: "off" })),
        h("div", { class: "field" }, h("label", { for: "key-user" }, "User id (optional)"),
          h("input", { id: "key-user", name: "user_id", autocomplete: "off", "aria-describedby": "key-user-help" }))),
      h("p", { id: "key-user-help", class: "hint" }, "A key bound to a user reads and writes that user's sessions only (not with admin)."),
      h("button", { type: "submit" }, "Create key"), result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.replaceChildren();
      const data = new FormData(form);
      const body = { scopes: data.getAll("scopes") };
      for (const name of ["name", "user_id"]) if (data.get(name).trim()) body[name] = data.get(name).trim();
      try {
        const { data: created } = await post("v1/keys", body);
        form.reset();
        const secret = h("input", { id: "new-key-value", readonly: true, value: created.key, class: "secret", spellcheck: "false" });
        result.replaceChildren(h("div", { class: "ok", role: "status" },
          h("p", {}, h("strong", {}, `Key ${created.key_id} created. `), "Copy it now: it is shown only this once."),
          h("label", { for: "new-key-value" }, "The new key"), secret));
        secret.select();
        const { key: _shownOnce, ...listed } = created;
        onCreated(listed);
      } catch (error) {
        result.replaceChildren(errorBox(error, "The API refused this key"));
      }
    });
    return form;
  }

  // ---- webhook endpoints (issue #18: list, and a page per endpoint) ------------------------

  const latency = (ms) => (ms === null || ms === undefined ? "—" : `≤ ${ms} ms`);

  function endpointStatus(e) {
    return e.enabled ? badge("enabled") : h("span", {}, badge("disabled"), e.disabled_reason ? ` ${e.disabled_reason}` : "");
  }

  async function endpointList() {
    const results = h("div", { class: "results" });
    const { nav, go } = pager("Webhook endpoints", async (cursor) => {
      const params = new URLSearchParams({ limit: "20", ...(cursor ? { cursor } : {}) });
      try {
        const { data } = await api(`v1/webhook-endpoints?${params}`);
        results.replaceChildren(table("Webhook endpoints, by id",
          ["Endpoint", "URL", "Status", "Events", ["Attempts", "num"], ["Success", "num"], ["p50", "num"], "Last success"],
          data.items.map((e) => h("tr", {},
            h("td", {}, h("a", { href: `#/endpoints/${encodeURIComponent(e.endpoint_id)}` }, e.endpoint_id)),
            h("td", {}, h("code", {}, e.url)), h("td", {}, endpointStatus(e)),
            h("td", {}, e.event_types ? e.event_types.join(", ") : "every event"),
            h("td", { class: "num" }, e.stats.attempts),
            h("td", { class: "num" }, e.stats.success_rate === null ? "—" : percent(e.stats.success_rate)),
            h("td", { class: "num" }, latency(e.stats.p50_latency_ms)),
            h("td", {}, time(e.stats.last_success_at)))),
          "No webhook endpoints: register one with POST /v1/webhook-endpoints (or set WEBHOOK_URL)."));
        return data.next_cursor;
      } catch (error) {
        results.replaceChildren(errorBox(error, "Webhook endpoints"));
        return null;
      }
    });
    await go();
    return h("section", {}, h("h1", { tabindex: "-1" }, "Webhook endpoints"),
      h("p", {}, "Every event goes to each enabled endpoint whose filter takes it, in order per session."),
      results, nav);
  }

  async function endpointDetail([endpointId]) {
    const back = h("p", { class: "crumbs" }, h("a", { href: "#/endpoints" }, "← Webhook endpoints"));
    const heading = h("h1", { tabindex: "-1" }, "Endpoint ", h("code", {}, endpointId));
    const path = `v1/webhook-endpoints/${encodeURIComponent(endpointId)}`;
    let e;
    try {
      e = (await api(path)).data;
    } catch (error) {
      return h("section", {}, back, heading, errorBox(error, "Could not load this endpoint"));
    }
    const s = e.stats;
    const feedback = h("div", { class: "feedback", "aria-live": "polite" });
    const action = (label, cls, run) => {
      const button = h("button", { type: "button", class: cls }, label);
      button.addEventListener("click", async () => {
        button.disabled = true;
        feedback.replaceChildren();
        try {
          feedback.append(await run());
        } catch (error) {
          feedback.append(errorBox(error, `${label} failed`));
        }
        button.disabled = false;
      });
      return button;
    };
    const rotate = action("Rotate secret", "danger", async () => {
      const { data } = await api(`${path}/rotate-secret`, { method: "POST", body: "{}" });
      return h("div", { class: "ok", role: "status" },
        h("p", {}, "New signing secret (shown only now: give it to the receiver):"),
        h("p", {}, h("code", { class: "secret" }, data.secret)),
        h("p", {}, data.previous_secret_expires_at
          ? h("span", {}, "The old secret keeps signing too until ", time(data.previous_secret_expires_at), ".")
          : "The old secret no longer signs."));
    });
    const test = action("Send test ping", "secondary", async () => {
      const { data } = await api(`${path}/test`, { method: "POST", body: "{}" });
      return h("p", { class: "ok", role: "status" }, `Ping ${data.event_id} queued. Refresh to see the attempt.`);
    });
    const toggle = action(e.enabled ? "Disable" : "Enable", "secondary", async () => {
      const { data } = await api(path, { method: "PATCH", body: JSON.stringify({ enabled: !e.enabled }) });
      if (!data.replay_hint) {
        return h("p", { class: "ok", role: "status" }, `${data.enabled ? "Enabled" : "Disabled"}. Refresh to see it.`);
      }
      return h("div", {}, h("p", { class: "ok", role: "status" }, "Enabled. While it was disabled (since ",
        time(data.replay_hint.since), ") nothing was sent to it: replay that window to re-send what it missed."),
      replayOffer(data.replay_hint));
    });
    // The re-enabled endpoint's missed window, replayed in bounded steps (POST .../replay with
    // the cursor until done), up to the moment it was offered (later events are sent anyway).
    const replayOffer = (hint) => {
      const status = h("p", { class: "hint", role: "status" });
      const until = new Date().toISOString();
      let queued = 0, scanned = 0;
      const control = actionButton("Replay what it missed", {
        context: "Replay failed",
        run: async () => {
          queued = scanned = 0;
          const body = { ...hint, until, limit: 100 };
          for (let round = 0; round < 1000; round++) {
            const { data } = await post(`${path}/replay`, body);
            queued += data.queued;
            scanned += data.scanned;
            status.textContent = `Replaying: ${plural(queued, "webhook")} queued, ${scanned} events looked at…`;
            if (data.done) return;
            body.cursor = data.next_cursor;
          }
        },
        done: () => {
          status.textContent = `Replay done: ${plural(queued, "webhook")} of the window queued again for ${endpointId} (same webhook-ids).`;
          control.querySelector("button")?.remove();
        } });
      return h("div", { class: "replay-offer" }, control, status);
    };
    return h("section", {}, back, heading,
      h("dl", { class: "facts" },
        fact("URL", h("code", {}, e.url)), fact("Description", e.description || "—"),
        fact("Status", endpointStatus(e)), fact("Disabled at", time(e.disabled_at)),
        fact("Events", e.event_types ? e.event_types.join(", ") : "every event"),
        fact("Created", time(e.created_at)), fact("Secret rotated", time(e.secret_rotated_at)),
        fact("Old secret signs until", time(e.previous_secret_expires_at))),
      h("h2", {}, "Stats"),
      h("dl", { class: "cards", "aria-label": "Stats" },
        [["Attempts", s.attempts], ["Delivered", s.delivered],
          ["Success rate", s.success_rate === null ? "—" : percent(s.success_rate)],
          ["p50 latency", latency(s.p50_latency_ms)], ["p99 latency", latency(s.p99_latency_ms)]]
          .map(([label, value]) => h("div", { class: "card" }, h("dt", {}, label), h("dd", {}, value)))),
      h("dl", { class: "facts" },
        fact("Last success", time(s.last_success_at)),
        fact("Last error", s.last_error ? h("span", {}, s.last_error, " · ", time(s.last_error_at)) : "—"),
        fact("Failing since", time(s.failing_since))),
      h("h2", {}, "Recent attempts"),
      table(`Latest attempts at ${e.endpoint_id}`, ["Event", "Type", "Outcome", "Answer", ["Latency", "num"], "At"],
        s.recent_attempts.slice().reverse().map((a) => h("tr", {},
          h("td", {}, a.session_id
            ? h("a", { href: `#/sessions/${encodeURIComponent(a.session_id)}` }, h("code", {}, a.event_id))
            : h("code", {}, a.event_id)),
          h("td", {}, a.event_type || "—"), h("td", {}, badge(a.outcome || "—")),
          h("td", {}, a.status_code ? `HTTP ${a.status_code}` : a.error || "—"),
          h("td", { class: "num" }, `${a.latency_ms} ms`), h("td", {}, time(a.at)))),
        "No attempts yet."),
      h("h2", {}, "Actions"),
      h("p", { class: "actions" }, test, " ", rotate, " ", toggle),
      feedback);
  }

  // ---- start --------------------------------------------------------------------------------

  function start() {
    setupKeyForm();
    window.addEventListener("hashchange", () => render(true));
    if (!location.hash) history.replaceState(null, "", "#/overview");
    render(false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
