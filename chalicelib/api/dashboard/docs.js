// The docs page (/docs): lists the operations of v1/openapi.json. The document needs an API
// key: the same one the dashboard keeps in this tab's sessionStorage. The DOM is built with
// elements and text nodes only (never markup from data), as the pages' policy expects.
"use strict";
(() => {
  const KEY = "session-service-api-key";
  const form = document.getElementById("key");
  const ops = document.getElementById("ops");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child);  // strings become text nodes
    return node;
  }

  function operation(method, path, op) {
    const details = el("details", {},
      el("summary", {}, el("span", {class: `m ${method}`}, method.toUpperCase()), " ",
         el("code", {}, path), ` — ${op.summary}`));
    if (op.requestBody) {
      details.append(el("p", {}, "Body:"), el("pre", {}, JSON.stringify(op.requestBody.content, null, 1)));
    }
    details.append(el("p", {}, `Responses: ${Object.keys(op.responses).join(", ")}`));
    return details;
  }

  function render(doc) {
    const byTag = new Map();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const tag = op.tags[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operation(method, path, op));
      }
    }
    const sections = [];
    for (const [tag, entries] of byTag) sections.push(el("h2", {}, tag), ...entries);
    ops.replaceChildren(...sections);
  }

  async function load() {
    const key = sessionStorage.getItem(KEY);
    try {
      const r = await fetch("v1/openapi.json", {headers: key ? {Authorization: "Bearer " + key} : {}});
      const body = await r.json().catch(() => null);
      if (!r.ok) throw Object.assign(new Error((body && body.message) || "HTTP " + r.status), {status: r.status});
      render(body);
    } catch (e) {
      ops.textContent = "Could not load v1/openapi.json: " + e.message;
      if (e.status === 401 || e.status === 403) {
        form.hidden = false;
        document.getElementById("key-why").textContent = e.message;
        form.elements[0].focus();
      }
    }
  }

  form.addEventListener("submit", e => {
    e.preventDefault();
    sessionStorage.setItem(KEY, form.elements[0].value.trim());
    form.hidden = true;
    load();
  });
  load();
})();
