"""The OpenAPI 3.1 document, built from the route table and the pydantic models that serve
requests: each route module (chalicelib/api/routes/) declares a route's body and responses
where it declares the route, so a route or model change changes the document (one source of
truth)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from chalicelib import __version__
from chalicelib.api.schemas import ErrorBody
from chalicelib.domain.vocabulary import CaptureId, InboxId, ResourceId


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    # status -> model, a list of models (any of them), or None (no JSON body)
    responses: dict[int, Any] = field(default_factory=dict)
    query: type[BaseModel] | None = None  # the model that validates the query string
    # request headers: a name, or (name, the vocabulary type its value must be)
    headers: tuple[str | tuple[str, Any], ...] = ()
    raw_body: bool = False
    scope: str = "read"  # API-key scope: read, agent, admin, or public
    bound_keys: bool = False  # whether a key bound to a user may call it (per-user routes)
    operation_id: str = ""  # the declaring view's name (unique: a test checks it)
    documented: bool = True  # False for the HEAD every GET answers too (HTTP says what it is)


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
    paths: dict[str, Any] = {}
    for op in operations:
        if not op.documented:
            continue
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.operation_id,
            "tags": [op.path.split("/")[2] if op.path.startswith("/v1/")
                     else "health" if op.path.startswith("/health") else "pages"],
            "responses": {"default": {"description": "Error", "content": {
                "application/json": {"schema": ref[ErrorBody]}}}},
        }
        parameters = [{"name": name, "in": "path", "required": True, "schema": path_schema(name)}
                      for name in re.findall(r"{(\w+)}", op.path)]
        parameters += query_parameters(op.query) if op.query else []
        parameters += [{"name": name, "in": "header", "required": False,
                        "schema": {"type": "string"} if kind is None else _schema_of(kind)}
                       for name, kind in (h if isinstance(h, tuple) else (h, None) for h in op.headers)]
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[op.body]}}}
        elif op.raw_body:
            entry["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
        for status, model in op.responses.items():
            if model is None:
                entry["responses"][str(status)] = {"description": "No JSON body"}
                continue
            choices = model if isinstance(model, list) else [model]
            schema = ref[choices[0]] if len(choices) == 1 else {"oneOf": [ref[m] for m in choices]}
            entry["responses"][str(status)] = {
                "description": " or ".join(m.__name__ for m in choices),
                "content": {"application/json": {"schema": schema}}}
        if op.scope == "public":
            entry["security"] = []
        else:
            entry["description"] = f"Needs an API key with scope `{op.scope}` (or wider)." + (
                " A key bound to a user sees only that user's sessions." if op.bound_keys
                else " Keys bound to a user are refused (403).")
            entry["x-bound-keys"] = op.bound_keys  # machine-readable: clients and the probe use it
            for status, text in ((401, "Missing, unknown or revoked API key"),
                                 (403, "The key's scopes (or user binding) do not allow this")):
                entry["responses"].setdefault(str(status), {"description": text, "content": {
                    "application/json": {"schema": ref[ErrorBody]}}})
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Session service", "version": __version__,
                 "description": "Sessions of a learner with an AI tutor: manuals, sessions, "
                                "messages, progress, webhooks, inboxes, analytics."},
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"apiKey": {
                "type": "http", "scheme": "bearer",
                "description": "Authorization: Bearer <key>. Scopes: read (GETs) < agent "
                               "(sessions, messages, progress) < admin (everything)."}},
        },
        "security": [{"apiKey": []}],
    }


# What each path parameter may be: the definition its route checks it against
# (chalicelib/domain/vocabulary.py): 400 for a bad resource id; 404 for a bad inbox or capture id.
_PATH_KINDS: dict[str, Any] = {"session_id": ResourceId, "manual_id": ResourceId, "event_id": ResourceId,
                               "key_id": ResourceId, "inbox_id": InboxId, "request_id": CaptureId,
                               "endpoint_id": ResourceId}


def path_schema(name: str) -> dict[str, Any]:
    kind = _PATH_KINDS.get(name)
    return {"type": "string"} if kind is None else _schema_of(kind)


def _schema_of(kind: Any) -> dict[str, Any]:
    return {k: v for k, v in TypeAdapter(kind).json_schema().items() if k != "title"}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One OpenAPI parameter per field of a query model, with the field's own schema (an
    optional field's `null` branch dropped: a query string has no null)."""
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        choices = [c for c in prop.get("anyOf", []) if c.get("type") != "null"]
        if len(choices) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **choices[0]}
        parameters.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                           "schema": {k: v for k, v in prop.items()
                                      if k != "title" and not (k == "default" and v is None)}})
    return parameters
