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

  let components = {};  // the document's components.schemas, for $ref

  // A schema with its $ref followed (the referenced schema, with the referring one's own
  // keywords over it: a property's description or bounds).
  function resolve(schema) {
    let seen = 0;
    while (schema && schema.$ref && seen++ < 20) {
      const name = schema.$ref.split("/").pop();
      const {$ref, ...own} = schema;
      schema = {...(components[name] || {}), ...own, "x-name": name};
    }
    return schema || {};
  }

  function refName(schema) {
    return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
  }

  // A schema's type in words: "integer, 1 to 100", "string (date-time)", "array of Step",
  // "SessionOut or null", "one of: active, completed".
  function typeOf(schema) {
    if (!schema) return "any";
    const name = refName(schema);
    if (name && !["IdentifierText", "DisplayText", "LongText"].includes(name)) {
      const target = components[name] || {};
      if (target.type === "object" || target.properties) return name;
    }
    const s = resolve(schema);
    if (s.anyOf || s.oneOf) {
      const choices = (s.anyOf || s.oneOf);
      const named = choices.filter(c => c.type !== "null").map(typeOf);
      return named.join(" or ") + (choices.some(c => c.type === "null") ? " or null" : "");
    }
    if (s.enum) return "one of: " + s.enum.join(", ");
    if (s.const !== undefined) return JSON.stringify(s.const);
    if (s.type === "array") return "array of " + typeOf(s.items);
    let text = Array.isArray(s.type) ? s.type.join(" or ") : (s.type || (s.properties ? "object" : "any"));
    if (s.format) text += ` (${s.format})`;
    const bounds = [];
    if (s.minimum !== undefined || s.maximum !== undefined) bounds.push(`${s.minimum ?? "…"} to ${s.maximum ?? "…"}`);
    if (s.minLength !== undefined || s.maxLength !== undefined) bounds.push(`${s.minLength ?? 0} to ${s.maxLength ?? "…"} characters`);
    if (s.pattern && s.pattern.length <= 80) bounds.push(`pattern ${s.pattern}`);
    if (s["x-name"] && ["IdentifierText", "DisplayText", "LongText"].includes(s["x-name"])) bounds.push(s["x-name"]);
    if (s.default !== undefined && s.default !== null) bounds.push(`default ${JSON.stringify(s.default)}`);
    return bounds.length ? `${text}, ${bounds.join(", ")}` : text;
  }

  // The fields of an object schema as table rows, nested objects one level deeper (name.field).
  function fieldRows(schema, prefix, depth) {
    const s = resolve(schema);
    const required = new Set(s.required || []);
    const out = [];
    for (const [name, prop] of Object.entries(s.properties || {})) {
      const p = resolve(prop);
      out.push(el("tr", {}, el("td", {}, el("code", {}, prefix + name)), el("td", {}, typeOf(prop)),
                  el("td", {}, required.has(name) ? "yes" : "no"), el("td", {}, p.description || "")));
      const inner = p.type === "array" ? resolve(p.items) : p;
      if (depth < 2 && inner.properties) out.push(...fieldRows(inner, `${prefix}${name}${p.type === "array" ? "[]" : ""}.`, depth + 1));
    }
    return out;
  }

  function table(caption, head, body) {
    return el("table", {}, el("caption", {}, caption),
              el("thead", {}, el("tr", {}, ...head.map(h => el("th", {scope: "col"}, h)))), el("tbody", {}, ...body));
  }

  function schemaBlock(caption, schema) {
    const s = resolve(schema);
    const choices = s.oneOf || s.anyOf;
    if (choices && !s.properties) {
      return el("div", {}, ...choices.map((c, i) => schemaBlock(`${caption} (${i ? "or " : ""}${typeOf(c)})`, c)));
    }
    if (!s.properties) return el("p", {}, `${caption}: ${typeOf(schema)}`);
    const title = refName(schema) ? `${caption}: ${refName(schema)}` : caption;
    const blocks = [table(title, ["Field", "Type", "Required", "Description"], fieldRows(schema, "", 0))];
    if (s["x-rules"]) blocks.push(el("ul", {}, ...s["x-rules"].map(r => el("li", {}, r))));
    return el("div", {}, ...blocks);
  }

  function operation(method, path, op) {
    const details = el("details", {},
      el("summary", {}, el("span", {class: `m ${method}`}, method.toUpperCase()), " ",
         el("code", {}, path), ` — ${op.summary}`));
    details.append(el("p", {class: "id"}, "operationId: ", el("code", {}, op.operationId)));
    for (const para of (op.description || "").split("\n\n")) if (para) details.append(el("p", {}, para));
    if (op.parameters && op.parameters.length) {
      details.append(table(`Parameters of ${op.operationId}`, ["Name", "In", "Type", "Required", "Description"],
        op.parameters.map(p => el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
                                  el("td", {}, typeOf(p.schema)), el("td", {}, p.required ? "yes" : "no"),
                                  el("td", {}, p.description || "")))));
    }
    if (op.requestBody) {
      details.append(el("h3", {}, "Body"));
      for (const [type, media] of Object.entries(op.requestBody.content)) {
        details.append(type === "application/json" ? schemaBlock(`Body of ${op.operationId}`, media.schema)
                                                   : el("p", {}, `${type}: ${op.requestBody.description || "any"}`));
      }
    }
    details.append(el("h3", {}, "Responses"));
    const list = el("dl", {class: "responses"});
    for (const [status, response] of Object.entries(op.responses)) {
      const parts = [el("p", {}, response.description || "")];
      for (const [name, header] of Object.entries(response.headers || {})) {
        parts.push(el("p", {}, "Header ", el("code", {}, name), `: ${header.description || ""}`));
      }
      const json = response.content && response.content["application/json"];
      if (json) {
        const codes = json.schema && json.schema.properties && json.schema.properties.error;
        if (codes && codes.enum) parts.push(el("p", {}, "error: ", ...codes.enum.flatMap((c, i) => [i ? ", " : "", el("code", {}, c)])));
        else parts.push(schemaBlock(`${status} of ${op.operationId}`, json.schema));
      } else if (response.content) {
        parts.push(el("p", {}, `Content: ${Object.keys(response.content).join(", ")}`));
      }
      list.append(el("dt", {}, status), el("dd", {}, ...parts));
    }
    details.append(list);
    return details;
  }

  function render(doc) {
    components = (doc.components && doc.components.schemas) || {};
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
