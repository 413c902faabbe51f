"""The OpenAPI 3.1 document, built from the route table and the pydantic models that serve
requests: each route module (chalicelib/api/routes/) declares a route's body, responses and
errors where it declares the route, so a route or model change changes the document (one
source of truth).

Everything else is derived from the declaration: the statuses every route can answer (a body:
400/413/415; a query or a path id: 400; an API key: 401/403/429/503), the error codes of each
status (from chalicelib/domain/errors.py), the response headers (Retry-After, WWW-Authenticate,
Allow, Idempotent-Replayed), the links between operations (a response field named like
another operation's path parameter), and the security of each operation. Built lazily, on the
first request for the document: a cold start pays nothing for it.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from chalicelib import __version__
from chalicelib.api.schemas import ErrorBody
from chalicelib.domain import errors
from chalicelib.domain.vocabulary import TEXT_PATTERNS, CaptureId, InboxId, ResourceId

Header = str | tuple[str, Any] | tuple[str, Any, str]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    # status -> model, a list of models (any of them), or None (no JSON body)
    responses: dict[int, Any] = field(default_factory=dict)
    query: type[BaseModel] | None = None  # the model that validates the query string
    # request headers: a name, or (name, the vocabulary type its value must be[, description])
    headers: tuple[Header, ...] = ()
    raw_body: bool = False
    scope: str = "read"  # API-key scope: read, agent, admin, or public
    bound_keys: bool = False  # whether a key bound to a user may call it (per-user routes)
    operation_id: str = ""  # camelCase of the declaring view's name, or the declared one (unique)
    documented: bool = True  # False for the HEAD every GET answers too (HTTP says what it is)
    description: str = ""  # for an LLM: what it does, when to call it, its rules
    errors: tuple[type[errors.ServiceError], ...] = ()  # what the view raises beyond the generic
    body_required: bool = True  # False: no body at all is taken as the model's defaults


operations: list[Operation] = []
_document: dict[str, Any] | None = None


def register(operation: Operation) -> None:
    global _document
    operations.append(operation)
    _document = None


def route_policies() -> list[tuple[str, str, str, bool]]:
    """(path, method, scope, bound keys allowed) of every route: what the API-key authorizer
    grants from."""
    return [(op.path, op.method, op.scope, op.bound_keys) for op in operations]


def document() -> dict[str, Any]:
    """The document (built once per process, on first request)."""
    global _document
    if _document is None:
        _document = _build()
    return _document


def operation_id(view_name: str, method: str | None = None) -> str:
    """A generated client's method name: camelCase (`report_progress` -> `reportProgress`),
    with the method appended for a view that serves several (`captureGet`)."""
    first, *rest = view_name.strip("_").split("_")
    return first + "".join(word.capitalize() for word in rest) + (method.capitalize() if method else "")


def text_of(view: Any) -> str:
    """A view's docstring, as an operation's description."""
    return inspect.cleandoc(view.__doc__) if view.__doc__ else ""


# ---- what each generic status means, and which headers it carries ----------------------------

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer", "minimum": 0}}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": 'The bearer challenge: `Bearer realm="session-service"`.',
                               "schema": {"type": "string"}}},
    405: {"Allow": {"description": "The methods this path takes.", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
_STATUS_TEXT = {400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
                405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 410: "Gone",
                413: "Too large", 415: "Unsupported media type", 422: "Idempotency key reused",
                429: "Too many requests", 503: "Unavailable: retry after Retry-After seconds"}
# what each code means to a caller (README's error table says the same for people)
_CODE_TEXT = {
    "validation_error": "a field, query parameter or path id is invalid (`fields` lists each)",
    "invalid_json": "the body is not a JSON object",
    "invalid_cursor": "the cursor is not one this listing answered",
    "unauthorized": "no valid API key (send `Authorization: Bearer <key>`)",
    "forbidden": "the key's scopes, or its binding to a user, do not allow this",
    "rate_limited": "the key's (or route's) rate is exceeded",
    "quota_exceeded": "the key's daily quota is used up",
    "service_unavailable": "the store or the key check failed transiently",
    "payload_too_large": "the body is over the limit (`limit_bytes`)",
    "unsupported_media_type": "send `Content-Type: application/json`",
}


def _code_list(codes: list[str]) -> str:
    return "; ".join(f"`{c}`" + (f": {_CODE_TEXT[c]}" if c in _CODE_TEXT else "") for c in codes)


def _generic_errors(op: Operation) -> list[tuple[int, str]]:
    """(status, code) every route of this shape can answer, whatever its view does."""
    found: list[tuple[int, str]] = []
    if any(_PATH_KINDS.get(name) is ResourceId for name in re.findall(r"{(\w+)}", op.path)) or op.query:
        found.append((400, "validation_error"))
    if op.query is not None and "cursor" in op.query.model_fields:
        found.append((400, "invalid_cursor"))
    if op.body is not None:
        found += [(400, "invalid_json"), (400, "validation_error"), (413, "payload_too_large"),
                  (415, "unsupported_media_type")]
    if op.scope != "public":
        found += [(401, "unauthorized"), (403, "forbidden"), (429, "rate_limited"),
                  (429, "quota_exceeded"), (503, "service_unavailable")]
    return found


def _build() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema  # only when the document is asked for

    models: set[type[BaseModel]] = {ErrorBody}
    for op in operations:
        for model in op.responses.values():
            models |= set(model) if isinstance(model, list) else ({model} if model else set())
        if op.body is not None:
            models.add(op.body)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed, definitions = models_json_schema(
        [(m, "validation" if any(op.body is m for op in operations) else "serialization") for m in ordered],
        ref_template="#/components/schemas/{model}")
    ref = {m: keyed[(m, mode)] for (m, mode) in keyed}
    schemas: dict[str, Any] = definitions.get("$defs", {})
    _describe(schemas)
    _hoist_text_patterns(schemas, schemas)
    documented = [op for op in operations if op.documented]
    paths: dict[str, Any] = {}
    for op in documented:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, ref, schemas, documented)
    _hoist_text_patterns(paths, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Session service", "version": __version__,
                 "description": _INFO},
        "servers": [{"url": "/api"}],
        "tags": [{"name": name, "description": text} for name, text in _TAGS.items()],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "http", "scheme": "bearer",
                    "description": "Authorization: Bearer <key>. Scopes: read (GETs) < agent "
                                   "(sessions, messages, progress) < admin (everything). A key "
                                   "bound to a user calls only the per-user operations "
                                   "(`x-bound-keys: true`), narrowed to that user's sessions."},
                "inboxToken": {
                    "type": "apiKey", "in": "header", "name": "X-Inbox-Token",
                    "description": "An inbox's read token (answered once, by createInbox): "
                                   "needed, with an API key, to read or change that inbox."},
            },
        },
        "security": [{"apiKey": []}],
    }


def _operation(op: Operation, ref: dict[Any, Any], schemas: dict[str, Any],
               documented: list[Operation]) -> dict[str, Any]:
    tag = (op.path.split("/")[2] if op.path.startswith("/v1/")
           else "health" if op.path.startswith("/health") else "pages")
    entry: dict[str, Any] = {"summary": op.summary, "operationId": op.operation_id, "tags": [tag]}
    description = [op.description] if op.description else []
    parameters = [{"name": name, "in": "path", "required": True,
                   "description": _PATH_TEXT.get(name, f"The {name}."),
                   "schema": path_schema(name), **({"example": _PATH_EXAMPLES[name]} if name in _PATH_EXAMPLES else {})}
                  for name in re.findall(r"{(\w+)}", op.path)]
    parameters += query_parameters(op.query) if op.query else []
    idempotent = False
    for declared in op.headers:
        name, kind, text = (declared, None, "") if isinstance(declared, str) else (
            (*declared, "") if len(declared) == 2 else declared)
        idempotent |= name == "Idempotency-Key"
        parameters.append({"name": name, "in": "header", "required": name == "X-Inbox-Token",
                           "description": text or _HEADER_TEXT.get(name, ""),
                           "schema": {"type": "string"} if kind is None else _schema_of(kind)})
    if parameters:
        entry["parameters"] = parameters
    if op.body is not None:
        entry["requestBody"] = {"required": op.body_required, "content": {"application/json": {
            "schema": ref[op.body], **_examples([op.body], request=True)}}}
        rules = schemas.get(op.body.__name__, {}).get("x-rules")
        if rules:
            description.append("Rules the schema cannot say: " + " ".join(rules))
    elif op.raw_body:
        # any content type (`*/*`); raw bytes named too, so that a generator that knows no
        # `*/*` body still makes the operation (its answer stays `*/*`: the inbox's)
        entry["requestBody"] = {
            "required": False,
            "description": "Any body, of any content type, stored as sent (as text, or as base64 when "
                           "it is not UTF-8). `application/octet-stream` is one such type: bytes as they are.",
            "content": {"*/*": {"schema": {}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    responses: dict[str, Any] = {}
    for status, model in sorted(op.responses.items()):
        if model is None:
            responses[str(status)] = {"description": _SUCCESS_TEXT.get(status, "No JSON body")}
            continue
        choices = model if isinstance(model, list) else [model]
        schema = ref[choices[0]] if len(choices) == 1 else {"oneOf": [ref[m] for m in choices]}
        response: dict[str, Any] = {"description": " or ".join(m.__name__ for m in choices),
                                    "content": {"application/json": {
                                        "schema": schema,
                                        **(_examples(choices, op.operation_id) if status < 300 else {})}}}
        if status < 300:
            links = _links(choices, op, documented, schemas)
            if links:
                response["links"] = links
        if status == 200 and idempotent:
            response["headers"] = {"Idempotent-Replayed": {
                "description": "`true` when this answer replays an earlier request with the same "
                               "idempotency key (nothing was changed); absent otherwise.",
                "schema": {"type": "string", "enum": ["true"]}}}
        responses[str(status)] = response
    by_status: dict[int, list[str]] = {}
    state_codes = [e.code for e in op.errors if e.state]
    for status, code in [*_generic_errors(op), *((e.status, e.code) for e in op.errors)]:
        codes = by_status.setdefault(status, [])
        if code not in codes:
            codes.append(code)
    for status, codes in sorted(by_status.items()):
        if str(status) in responses:  # declared with its own model (e.g. health's 503)
            continue
        responses[str(status)] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}: {_code_list(codes)}.",
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
            **({"x-state-codes": [c for c in codes if c in state_codes]}
               if any(c in state_codes for c in codes) else {}),
            "content": {"application/json": {"schema": {
                **ref[ErrorBody], "properties": {"error": {"enum": codes}}}}}}
    if op.raw_body:  # the capture route: it answers what its inbox is configured to answer
        responses["default"] = {
            "description": "The inbox's configured answer: its `response.status` (200-599, not "
                           "204/205/304), `response.content_type` and `response.body` (see "
                           "createInbox). The route's own refusals, in the JSON error body: "
                           + _code_list(["inbox_not_found", "inbox_paused", "payload_too_large",
                                         "rate_limited", "headers_too_large", "service_unavailable",
                                         "internal_error"]) + ". Their statuses (404, 410, 413, "
                           "429, 431, 503, 500) may also be an inbox's configured answer.",
            "content": {"*/*": {"schema": {}}}}
    else:
        responses["default"] = {"description": "Any other error (`internal_error`: a bug, logged), "
                                               "in the same error body.",
                                "content": {"application/json": {"schema": ref[ErrorBody]}}}
    entry["responses"] = responses
    token = any((h if isinstance(h, str) else h[0]) == "X-Inbox-Token" for h in op.headers)
    if op.scope == "public":
        entry["security"] = []
    else:
        if token:
            entry["security"] = [{"apiKey": [], "inboxToken": []}]
        description.append(f"Needs an API key with scope `{op.scope}` (or wider)." + (
            " A key bound to a user sees only that user's sessions." if op.bound_keys
            else " Keys bound to a user are refused (403).") + (
            " And the inbox's read token (X-Inbox-Token)." if token else ""))
        entry["x-bound-keys"] = op.bound_keys  # machine-readable: clients and the probe use it
        entry["x-scope"] = op.scope
    if description:
        entry["description"] = "\n\n".join(description)
    return entry


def _examples(models: list[type[BaseModel]], operation: str = "", request: bool = False) -> dict[str, Any]:
    """The media type's whole-body examples (chalicelib/api/examples.py), one per model, each
    validated by its model: a request's as written; an answer's as the model dumps it (what
    the API sends)."""
    from chalicelib.api import examples

    found: dict[str, Any] = {}
    for model in models:
        example = (examples.BY_OPERATION.get(operation) if len(models) == 1 else None) or \
            examples.EXAMPLES.get(model.__name__)
        if example is None:
            continue
        checked = model.model_validate(example)
        found[model.__name__] = {"summary": f"{model.__name__} ({'request' if request else 'answer'})",
                                 "value": example if request else checked.model_dump(mode="json")}
    return {"examples": found} if found else {}


def _links(choices: list[type[BaseModel]], op: Operation, documented: list[Operation],
           schemas: dict[str, Any]) -> dict[str, Any]:
    """Links from a response to each operation whose path parameters it holds (a session's
    `session_id` -> getSession, reportProgress, ...): how an agent chains calls."""
    if len(choices) != 1:
        return {}
    fields = schemas.get(choices[0].__name__, {}).get("properties", {})
    links: dict[str, Any] = {}
    for target in documented:
        names = re.findall(r"{(\w+)}", target.path)
        if target is op or target.raw_body or not names or not all(n in fields for n in names):
            continue
        headers = {f"header.{h}": f"$response.body#/{f}" for h, f in _LINKED_HEADERS.items()
                   if f in fields and any((d if isinstance(d, str) else d[0]) == h for d in target.headers)}
        links[target.operation_id] = {
            "operationId": target.operation_id,
            "parameters": {**{n: f"$response.body#/{n}" for n in names}, **headers},
            "description": f"{target.summary}, for the {' and '.join(names)} in this answer."}
    return links


# What each path parameter may be: the definition its route checks it against
# (chalicelib/domain/vocabulary.py): 400 for a bad resource id; 404 for a bad inbox or capture id.
_PATH_KINDS: dict[str, Any] = {"session_id": ResourceId, "manual_id": ResourceId, "event_id": ResourceId,
                               "key_id": ResourceId, "inbox_id": InboxId, "request_id": CaptureId,
                               "endpoint_id": ResourceId}
_PATH_TEXT = {
    "session_id": "The session's id (the caller's, or the one startSession answered).",
    "manual_id": "The manual's id (chosen when it was created).",
    "event_id": "An event's id (from listEvents or reportProgress).",
    "key_id": "The API key's id (from listKeys or createKey; never the key itself).",
    "inbox_id": "The inbox's id (from createInbox).",
    "request_id": "A captured request's id (from listInboxRequests).",
    "endpoint_id": "A webhook endpoint's id (from createWebhookEndpoint or listWebhookEndpoints).",
    "asset": "A file name: app.js, style.css, docs.js or docs.css.",
}
# a header a link fills from a response field (createInbox's read_token opens that inbox)
_LINKED_HEADERS = {"X-Inbox-Token": "read_token"}
_PATH_EXAMPLES = {"manual_id": "intro-python", "inbox_id": "my-inbox",
                  "key_id": "0123456789abcdef", "request_id": "req_0123456789abcdef", "asset": "docs.js"}
_HEADER_TEXT = {
    "X-Inbox-Token": "The inbox's read token (answered once, by createInbox).",
    "MCP-Protocol-Version": "The MCP revision the client speaks (after initialize).",
}
_SUCCESS_TEXT = {200: "OK", 202: "Accepted (no body)", 204: "Done (no body)", 308: "Redirect (Location)",
                 410: "Gone"}
_INFO = (
    "Sessions of a learner with an AI tutor: manuals (ordered steps), sessions that follow a "
    "manual, the conversation (messages), progress (DONE / ONGOING per step), webhooks of "
    "every change, inboxes that capture webhooks, analytics.\n\n"
    "A typical agent flow: listManuals -> startSession -> (recordMessage, reportProgress with "
    "DONE or ONGOING, getNextStep)* until the session is `completed` (every step DONE), or "
    "endSession. Retries are safe: startSession with the same session_id, recordMessage with "
    "the same message_id (or Idempotency-Key), reportProgress with the same idempotency_key "
    "answer the first result (`Idempotent-Replayed: true`).\n\n"
    "Every error answers `{\"error\": code, \"message\": text, ...}`; the codes of each status "
    "are listed per operation (ErrorBody.error lists them all).")
_TAGS = {
    "manuals": "The manuals a session follows: ordered steps (1..N).",
    "sessions": "A learner's session on a manual: progress, next step, the event trail.",
    "messages": "The conversation of a session.",
    "analytics": "Totals, popular manuals, activity per hour.",
    "events": "One event's webhook, again.",
    "deliveries": "Webhooks that failed, and the dead-letter queue.",
    "inboxes": "Webhook inboxes: capture URLs and what they captured.",
    "hooks": "The capture URLs of inboxes (public).",
    "keys": "API keys and their limits.",
    "webhook-endpoints": "The receivers of webhooks: URL, event filter, secret (rotation), health.",
    "mcp": "The Model Context Protocol endpoint for agents.",
    "openapi.json": "This document.",
    "health": "Liveness and readiness.",
    "pages": "The dashboard and this documentation, as HTML.",
}


def path_schema(name: str) -> dict[str, Any]:
    kind = _PATH_KINDS.get(name)
    return {"type": "string"} if kind is None else _schema_of(kind)


def _schema_of(kind: Any) -> dict[str, Any]:
    return {k: v for k, v in TypeAdapter(kind).json_schema().items() if k != "title"}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One OpenAPI parameter per field of a query model, with the field's own schema (an
    optional field's `null` branch dropped: a query string has no null) and its description.
    An empty value counts as absent (`allowEmptyValue`)."""
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        choices = [c for c in prop.get("anyOf", []) if c.get("type") != "null"]
        if len(choices) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **choices[0]}
        text = prop.get("description", "")
        parameter = {"name": name, "in": "query", "required": name in schema.get("required", []),
                     "description": text + " Empty (`?name=`): as if absent.",
                     "allowEmptyValue": True,
                     "schema": {k: v for k, v in prop.items()
                                if k not in ("title", "description") and not (k == "default" and v is None)}}
        parameters.append(parameter)
    return parameters


def _hoist_text_patterns(node: Any, components: dict[str, Any]) -> None:
    """Each {"x-text": name} schema refers to the component holding that text's pattern
    (built here, on the first request for the document)."""
    if isinstance(node, list):
        for item in node:
            _hoist_text_patterns(item, components)
    elif isinstance(node, dict):
        name = node.pop("x-text", None)
        if name is not None:
            node["$ref"] = f"#/components/schemas/{name}"
            components.setdefault(name, {
                "type": "string", "format": _TEXT_FORMATS[name], "pattern": TEXT_PATTERNS[name](),
                "description": _TEXT_KINDS[name]})
        for value in list(node.values()):
            _hoist_text_patterns(value, components)


# the pattern's meaning as a format name (for tools that generate values: a pattern of
# thousands of ranges is slow to draw from)
_TEXT_FORMATS = {"IdentifierText": "identifier-text", "DisplayText": "display-text", "LongText": "long-text"}
_TEXT_KINDS = {
    "IdentifierText": "Letters, marks, digits, punctuation and symbols only: no space, control, "
                      "format, private-use, unassigned or invisible character.",
    "DisplayText": "One line people read: no control, format (but the zero-width joiners), "
                   "private-use, unassigned or line-separator character; at least one visible one.",
    "LongText": "Text of any length and lines: no control character but tab, CR and LF.",
}


# ---- what each field means, for a field its model leaves undescribed ----------------------
# By name, or "Model.name" where a name means something else in that model.
_FIELD_TEXT = {
    "active_sessions": "Active sessions that follow this manual (it cannot be deleted while any do).",
    "applied": "Whether the report changed the session (false: the step was already in that state).",
    "average_completion_seconds": "Mean time from start to completion of completed sessions (null: none yet).",
    "median_completion_seconds": "Median time from start to completion of completed sessions (null: none yet).",
    "body": "The body, as text or base64 (see body_encoding).",
    "InboxResponse.body": "The body a capture answers with (up to 64 KiB).",
    "body_encoding": "`text` or `base64` (a body that is not UTF-8 text).",
    "buckets": "One bucket per hour, oldest first.",
    "burst": "The key's own burst (requests at once); null: the default plan's.",
    "by_status": "Sessions per status (active, completed, ended, abandoned).",
    "capture_path": "The capture URL's path under the API (`/v1/hooks/{inbox_id}`).",
    "capture_url": "The full capture URL to give a webhook sender (null where the API's address is unknown).",
    "checks": "Each dependency (table, queue) and its state.",
    "code": "The JSON-RPC error code.",
    "completed_steps": "The step numbers DONE so far, ascending.",
    "completion_rate": "Completed sessions / sessions started, 0 to 1.",
    "content": "The step's content: what to teach or do (plain text, may be multi-line).",
    "content_type": "The request's Content-Type.",
    "InboxResponse.content_type": "The Content-Type a capture answers with: text/plain, text/csv, "
                                  "application/json, application/x-www-form-urlencoded or application/*+json.",
    "created_at": "When it was created (UTC, RFC 3339).",
    "current_step": "The step the learner is on: the first step not yet DONE.",
    "daily_quota": "The key's own requests per day; null: the default plan's.",
    "data": "More about the error.",
    "deliveries_failed": "Webhooks that failed for good (listDeliveries).",
    "delivery_attempts": "Each attempt to deliver the webhook: when, the receiver's status, the error.",
    "delivery_status": "The webhook's state: pending, delivered, failed or not_sent.",
    "duration_seconds": "Seconds from start to end (or to now while active).",
    "end_reason": "Why the session ended: completed, ended, abandoned or idle (null while active).",
    "ended_at": "When the session ended (UTC, RFC 3339; null while active).",
    "error": "The JSON-RPC error.",
    "event_id": "The event's id (redeliverEvent).",
    "event_type": "session_created, progress_update or session_ended.",
    "headers": "The request's headers (secrets masked).",
    "hour": "The hour's start (UTC, RFC 3339).",
    "hours": "The hours covered.",
    "id": "The JSON-RPC id (a string or an integer; absent in a notification).",
    "inbox_id": "The inbox's id (letters, digits, '_' and '-', 3 to 64; generated if absent).",
    "is_completed": "Whether every step is DONE (the session is completed).",
    "items": "This page's items.",
    "jsonrpc": "Always \"2.0\".",
    "key": "The API key itself: shown only in this answer; send it as `Authorization: Bearer <key>`.",
    "key_id": "The key's id (not a secret).",
    "last_activity_at": "The last message or progress (UTC, RFC 3339); idle sessions are abandoned by a job.",
    "manual_id": "The manual's id.",
    "ManualCreate.manual_id": "The manual's id: letters, digits and _ . : - (1 to 128, first a letter or digit).",
    "manuals": "Manuals in the catalogue.",
    "message": "The message text.",
    "JsonRpcError.message": "The JSON-RPC error message.",
    "message_count": "Messages in the session's conversation.",
    "message_id": "The message's id (the caller's, or generated).",
    "messages": "Chat messages stored.",
    "method": "The HTTP method.",
    "JsonRpcMessage.method": "The JSON-RPC method (initialize, tools/list, tools/call ...).",
    "moved": "Dead-lettered webhooks moved back to the delivery queue by this call.",
    "name": "A name for people (one line, up to 200 characters).",
    "next_cursor": "Pass as `cursor` to read the next page; null on the last page.",
    "next_step": "The first step not yet DONE (null when every step is done).",
    "occurred_at": "When the change happened (UTC, RFC 3339).",
    "original_result": "The answer of the first report with this idempotency key.",
    "out_of_order": "Whether the step reported was not the current step (accepted all the same).",
    "params": "The JSON-RPC params.",
    "path": "The request's path.",
    "paused": "Whether captures are refused (410) and not stored.",
    "previous_step": "The current step before this change.",
    "query": "The request's query parameters.",
    "rate_per_second": "The key's own steady rate (requests per second); null: the default plan's.",
    "read_token": "The inbox's read token: shown only in this answer; send it as X-Inbox-Token.",
    "reason": "Why a report was not applied, if it was not.",
    "received_at": "When it was captured (UTC, RFC 3339).",
    "remaining": "Webhooks still dead-lettered: call again until 0.",
    "request_id": "The captured request's id (getInboxRequest).",
    "response": "What the capture URL answers (status, content type, body).",
    "result": "The JSON-RPC result.",
    "revoked_at": "When the key was revoked (null: it is valid).",
    "scopes": "read (GETs) < agent (sessions, messages, progress) < admin (everything).",
    "sender": "Who wrote it: 'user' (the learner) or 'agent' (the tutor).",
    "sequence": "The event's place in the session's trail (1, 2, ...).",
    "session": "The session after the report.",
    "session_id": "The session's id.",
    "session_status": "The session's status after the change.",
    "sessions": "Sessions: the total and per status.",
    "sessions_completed": "Sessions of this manual completed.",
    "sessions_ended": "Sessions that ended (completed, ended or abandoned) in the hour.",
    "sessions_started": "Sessions started.",
    "signature": "The Standard Webhooks signature check (when the inbox has a signing secret).",
    "signing_secret": "Optional whsec_... secret: captures then check Standard Webhooks signatures.",
    "size_bytes": "The body's size in bytes.",
    "source_ip": "The sender's address.",
    "started_at": "When the session started (UTC, RFC 3339).",
    "status": "The state.",
    "SessionOut.status": "active (taking progress), completed (every step DONE), ended or abandoned.",
    "InboxResponse.status": "The HTTP status a capture answers with (200-599, not 204, 205 or 304).",
    "Redelivery.status": "Always `queued`.",
    "AlreadyProcessed.status": "Always `already_processed`: this report was a replay.",
    "step": "The step reported on (progress_update).",
    "step_number": "The step's number: 1..N, the order of the steps.",
    "step_status": "DONE or ONGOING.",
    "steps": "The steps, ordered by step_number.",
    "ManualCreate.steps": "The steps: step_number 1..N, each once (1 to 1000 steps).",
    "steps_completed": "Steps reported DONE in the hour.",
    "summary": "The session's summary once it ended (steps, messages, duration).",
    "title": "The title (one line, up to 200 characters).",
    "total": "Every session.",
    "total_steps": "The manual's number of steps.",
    "ManualCreate.total_steps": "Optional: the number of steps (must equal the steps given).",
    "totals": "The sums over every bucket.",
    "ttl_days": "How long captures are kept, in days (1 to 30; default 7).",
    "user_agent": "The sender's User-Agent.",
    "user_id": "The learner's id.",
    "ApiKey.user_id": "The user the key is bound to (null: not bound).",
    "KeyCreate.user_id": "Optional: bind the key to this user (read or agent keys only).",
    "verifies_signatures": "Whether the inbox checks Standard Webhooks signatures.",
    "version": "The session's write version (each change adds one).",
    "HealthSummary.version": "The service's version.",
    # webhook endpoints (chalicelib/domain/endpoints.py)
    "endpoint_id": "The webhook endpoint's id.",
    "url": "Where the webhooks are POSTed (https; http only on the local stack).",
    "Endpoint.description": "What the endpoint is for, for people.",
    "EndpointCreate.description": "What the endpoint is for, for people.",
    "EndpointCreated.description": "What the endpoint is for, for people.",
    "EndpointPatch.description": "What the endpoint is for, for people.",
    "EndpointUpdated.description": "What the endpoint is for, for people.",
    "event_types": ("The events it receives: session_created, progress_update (every report), "
                    "progress_update:DONE (DONE reports only), session_ended; null: all."),
    "enabled": "Whether webhooks are sent to it (a 410 or days of failures disable it).",
    "disabled_reason": "Why it was disabled (null while enabled).",
    "disabled_at": "When it was disabled (UTC, RFC 3339; null while enabled).",
    "updated_at": "When it was last changed (UTC, RFC 3339).",
    "secret_rotated_at": "When its secret was last rotated (null: never).",
    "previous_secret_expires_at": "Until when the old secret still signs too (null: no grace running).",
    "stats": "Delivery statistics of this endpoint.",
    "EndpointStats.attempts": "Delivery attempts made to it.",
    "EndpointStats.delivered": "Attempts it answered with 2xx.",
    "success_rate": "delivered / attempts, 0 to 1 (null: no attempt yet).",
    "p50_latency_ms": "Median answer time of its attempts, in ms (null: none yet).",
    "p99_latency_ms": "99th percentile answer time of its attempts, in ms (null: none yet).",
    "last_error": "The last failed attempt's status or error (null: none).",
    "last_error_at": "When the last attempt failed (null: none).",
    "last_success_at": "When it last answered 2xx (null: never).",
    "failing_since": "Since when every attempt has failed (null: it is answering).",
    "grace_seconds": "How long the old secret keeps signing beside the new one (default 86400).",
    "ReplayRequest.limit": "At most this many events queued by this call (the rest: call again with cursor).",
    "queued": "Events queued again to the endpoint by this call.",
    "scanned": "Events of the window read by this call.",
    "done": "Whether the whole window has been replayed.",
    "deliveries": "The webhook's delivery at each endpoint it is meant for: status and attempts.",
    "failed_endpoints": "The endpoints at which this webhook failed for good.",
    "Redelivery.endpoints": "The endpoints the webhook was queued to again.",
    # inbox forwarding (chalicelib/inbox/)
    "forward_to": "URLs each capture is re-sent to (up to 5; [] stops forwarding).",
    "forwards": "Each forward destination of this capture: its status and attempt log.",
    "destination": "The URL the capture is forwarded to.",
    "ForwardView.attempts": "Each attempt to forward it: when, the answer, the latency.",
    "ForwardAttempt.attempt": "The attempt's number (1, 2, ...).",
    "ForwardAttempt.of": "The attempts it may take in this round.",
    "ForwardAttempt.outcome": "delivered, retried, failed or gone.",
    "ForwardAttempt.status_code": "The destination's HTTP status (null: no answer, see error).",
    "ForwardAttempt.latency_ms": "How long the destination took to answer, in ms.",
    "ForwardAttempt.at": "When the attempt was made (UTC, RFC 3339).",
    "ForwardAttempt.retry_in_seconds": "When it is tried again, in seconds (null: not again).",
    "HourMetrics.duplicates": "Captures that repeated a key and body already captured (counted, not stored).",
    "HourMetrics.conflicts": "Captures that reused a key with another body (stored, flagged).",
}
_FIELD_EXAMPLES: dict[str, list[Any]] = {
    "user_id": ["ada@example.com"], "manual_id": ["intro-python"],
    "title": ["Introduction to Python"], "message": ["How do I define a function?"],
    "step_number": [1], "current_step": [2], "step_status": ["DONE"], "sender": ["user"],
    "inbox_id": ["my-inbox"], "ttl_days": [7], "scopes": [["agent"]],
}


def _describe(schemas: dict[str, Any]) -> None:
    """Fill in each undescribed property from _FIELD_TEXT (and examples on request fields)."""
    for model, schema in schemas.items():
        for name, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                text = _FIELD_TEXT.get(f"{model}.{name}") or _FIELD_TEXT.get(name)
                if text:
                    prop["description"] = text
            if name in _FIELD_EXAMPLES and "examples" not in prop and not prop.get("readOnly"):
                prop["examples"] = _FIELD_EXAMPLES[name]


# The routes declared before this module was first imported (a cold start does not import it):
# their operations, models resolved, registered now.
from chalicelib.api import routing  # noqa: E402 - routing declares without importing this module

routing.register_operations()
