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
  const badge = (status) => h("span", { class: `badge badge-${String(status).replace(/[^a-z_]/g, "")}` }, status);

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
      if (response.status === 401 && error.code !== "token_required" && key === getKey()) showKeyForm(error.message);
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
    return { nav, go };
  }

  function table(caption, headers, rows, empty) {
    if (!rows.length) return h("p", { class: "empty" }, empty);
    return h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => {
        const [text, cls] = Array.isArray(t) ? t : [t];  // ["Count", "num"]: a right-aligned column
        return h("th", { scope: "col", class: cls }, text);
      }))),
      h("tbody", {}, rows));
  }

  // ---- overview -----------------------------------------------------------------------------

  async function overview() {
    const [totals, activity, popular] = await Promise.allSettled([
      api("v1/analytics/overview"), api("v1/analytics/recent-activity?hours=24"),
      api("v1/analytics/popular-manuals?limit=10"),
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
        "No sessions started yet.")));
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
        STATUSES.map((s) => h("option", { value: s, selected: filters.status === s }, s)))),
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
    const { nav, go } = pager("Sessions", async (cursor) => {
      const params = new URLSearchParams(Object.entries({ ...filters, cursor }).filter(([, v]) => v));
      try {
        const { data } = await api(`v1/sessions?${params}`);
        results.replaceChildren(table(`Sessions${describeFilters(filters)}`,
          ["Session", "User", "Manual", "Status", "Progress", "Started", "Last activity", ["Messages", "num"]],
          data.items.map(sessionRow),
          data.next_cursor ? "No sessions on this page (filters are applied page by page): try Next." : "No sessions match."));
        announce(`${data.items.length} sessions shown.`);
        return data.next_cursor;
      } catch (error) {
        results.replaceChildren(errorBox(error, "Could not list sessions"));
        return null;
      }
    });
    await go();
    return h("section", {}, h("h1", { tabindex: "-1" }, "Sessions"), form, results, nav);
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
    return h("section", {}, back, h("div", { class: "title-row" }, heading, refresh),
      h("dl", { class: "facts" },
        fact("Status", badge(s.status)), fact("User", s.user_id),
        fact("Manual", h("a", { href: `#/manuals/${encodeURIComponent(s.manual_id)}` }, s.manual_id)),
        fact("Started", time(s.started_at)), fact("Last activity", time(s.last_activity_at)),
        fact("Ended", time(s.ended_at)), fact("Duration", duration(s.duration_seconds)),
        s.end_reason ? fact("End reason", s.end_reason) : null, fact("Messages", s.message_count)),
      h("h2", {}, "Progress"), stepIndicator(s),
      h("h2", {}, "Current step"),
      settled(nextStep, "Could not load the current step", (n) => (n.is_completed || !n.next_step
        ? h("p", { class: "done" }, "All steps completed.")
        : h("article", { class: "step-now", "aria-labelledby": "current-step-title" },
          h("h3", { id: "current-step-title" }, `Step ${n.next_step.step_number} of ${n.total_steps}: ${n.next_step.title}`),
          h("div", { class: "content" }, n.next_step.content || "(no content)")))),
      h("h2", {}, "Conversation"),
      settled(messages, "Could not load the conversation", (page) => conversation(page, base)),
      h("h2", {}, "Events and webhook deliveries"),
      settled(events, "Could not load the events", (page) => timeline(page.items, page.next_cursor)));
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

  function eventItem(e) {
    const what = e.event_type === "progress_update"
      ? `step ${e.step} ${e.step_status}${e.out_of_order ? " (out of order)" : ""}${e.applied === false ? " (no change)" : ""}`
      : e.event_type === "session_ended" ? `session ${e.session_status}${e.reason ? ` (${e.reason})` : ""}` : `step ${e.current_step}`;
    const statusSlot = h("span", {}, badge(e.delivery_status || "pending"));
    const feedback = h("div", { class: "feedback" });
    const item = h("li", { class: "event", "data-event-id": e.event_id },
      h("p", { class: "event-head" }, h("strong", {}, `#${e.sequence} ${e.event_type}`), ` · ${what} · `, time(e.occurred_at)),
      h("p", { class: "delivery" }, "Webhook: ", statusSlot,
        ` · ${e.delivery_attempts.length} ${e.delivery_attempts.length === 1 ? "attempt" : "attempts"}`),
      e.delivery_attempts.length ? h("details", {}, h("summary", {}, "Delivery attempts"),
        table(`Delivery attempts of ${e.event_id}`, [["Attempt", "num"], "Outcome", "Answer", ["Latency", "num"], "At"],
          e.delivery_attempts.map((a) => h("tr", {},
            h("td", { class: "num" }, a.attempt), h("td", {}, a.outcome || "—"),
            h("td", {}, a.status_code ? `HTTP ${a.status_code}` : a.error || "—"),
            h("td", { class: "num" }, a.latency_ms === undefined || a.latency_ms === null ? "—" : `${a.latency_ms} ms`),
            h("td", {}, time(a.at)))), "")) : null,
      feedback);
    if (REDELIVERABLE.has(e.delivery_status)) {
      const labelId = nextId("evt");
      const button = h("button", { type: "button", class: "danger", "aria-describedby": labelId }, "Redeliver");
      feedback.append(button, h("span", { id: labelId, class: "visually-hidden" }, `the ${e.event_type} webhook ${e.event_id}`));
      button.addEventListener("click", async () => {
        button.disabled = true;
        feedback.querySelector(".error")?.remove();
        try {
          await api(`v1/events/${encodeURIComponent(e.event_id)}/redeliver`, { method: "POST", body: "{}" });
          statusSlot.replaceChildren(badge("pending"));
          button.remove();
          feedback.append(h("p", { class: "ok", role: "status" }, "Queued for redelivery. Refresh to see the new attempt."));
        } catch (error) {
          feedback.append(errorBox(error, "Redeliver failed"));
          button.disabled = false;
        }
      });
    }
    return item;
  }

  // ---- failed deliveries --------------------------------------------------------------------

  async function deliveryList() {
    const results = h("div", { class: "results" });
    const { nav, go } = pager("Failed deliveries", async (cursor) => {
      const params = new URLSearchParams({ status: "failed", limit: "20", ...(cursor ? { cursor } : {}) });
      try {
        const { data } = await api(`v1/deliveries?${params}`);
        results.replaceChildren(table("Webhooks that spent their attempts, newest first",
          ["Event", "Type", "Session", ["Attempts", "num"], "Last answer", "Last attempt"],
          data.items.map((d) => {
            const last = d.delivery_attempts[d.delivery_attempts.length - 1] || {};
            return h("tr", {},
              h("td", {}, h("code", {}, d.event_id)), h("td", {}, d.event_type),
              h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(d.session_id)}` }, d.session_id)),
              h("td", { class: "num" }, d.delivery_attempts.length),
              h("td", {}, last.status_code ? `HTTP ${last.status_code}` : last.error || "—"),
              h("td", {}, time(last.at)));
          }), "No failed deliveries: every webhook was delivered or is still being tried."));
        return data.next_cursor;
      } catch (error) {
        results.replaceChildren(errorBox(error, "Failed deliveries"));
        return null;
      }
    });
    await go();
    return h("section", {}, h("h1", { tabindex: "-1" }, "Failed deliveries"),
      h("p", {}, "Each webhook listed here was tried until its attempts ran out and waits in the dead-letter ",
        "queue. Redeliver one from its session's page, or redrive them all once the receiver is back ",
        "(", h("code", {}, "make redrive"), ")."),
      results, nav);
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
    const { nav, go } = pager("Captured requests", async (cursor) => {
      const params = new URLSearchParams(Object.entries({ limit: "20", method, cursor }).filter(([, v]) => v));
      try {
        const { data } = await api(`${inboxPath(settings.id)}?${params}`, { headers: { "X-Inbox-Token": settings.token } });
        results.replaceChildren(table(`Requests captured by inbox ${settings.id}`,
          ["Received", "Method", "Path", "Webhook id", ["Size", "num"], "Signature", "Details"],
          data.items.map((r) => h("tr", {},
            h("td", {}, time(r.received_at)), h("td", {}, r.method), h("td", {}, h("code", {}, r.path)),
            h("td", {}, r.headers["webhook-id"] || "—"), h("td", { class: "num" }, bytes(r.size_bytes)),
            h("td", {}, verdict(r.signature)),
            h("td", {}, h("a", { href: `#/inbox/${encodeURIComponent(r.request_id)}`,
              "aria-label": `Details of ${r.method} ${r.request_id}` }, "Details")))),
          "No requests captured."));
        return data.next_cursor;
      } catch (error) {
        results.replaceChildren(errorBox(error, `Could not read inbox ${settings.id}`));
        return null;
      }
    });
    await go();
    section.append(results, nav);
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
        fact("Size", bytes(r.size_bytes)), fact("Source IP", r.source_ip || "—"), fact("User agent", r.user_agent || "—")),
      query.length ? table("Query parameters", ["Name", "Value"], query.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))), "") : null,
      h("h2", {}, "Headers"),
      table("Headers as received (secrets masked)", ["Name", "Value"],
        Object.entries(r.headers).sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, h("code", {}, v)))), "No headers."),
      h("h2", {}, `Body${r.body_encoding === "base64" ? " (base64: not text)" : ""}`),
      body ? h("pre", { class: "body", tabindex: "0", "aria-label": "Body" }, body) : h("p", { class: "empty" }, "Empty body."));
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
      const hint = data.replay_hint ? ` To re-send what it missed, replay from ${data.replay_hint.since}.` : "";
      return h("p", { class: "ok", role: "status" }, `${data.enabled ? "Enabled" : "Disabled"}.${hint} Refresh to see it.`);
    });
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
