"""HTTP plumbing shared by the routes: parsing bodies and queries into models, and turning
domain errors into `{"error": code, "message": ...}` responses. Routes stay a few lines."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Chalice, Response
from pydantic import BaseModel, ValidationError

from . import auth
from .errors import InvalidJson, PayloadTooLarge, ServiceError, ValidationFailed
from .models import MAX_PAGE_SIZE
from .observability import logger

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 1024 * 1024
MAX_MANUAL_BODY_BYTES = 5 * 1024 * 1024
_RESOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# Chalice answers some requests itself ({"Code": ..., "Message": ...}); we keep one error shape.
_CHALICE_CODES = {
    "BadRequestError": "bad_request", "BadRequest": "bad_request",
    "UnsupportedMediaType": "unsupported_media_type",
    "MethodNotAllowedError": "method_not_allowed", "NotFoundError": "route_not_found",
    "InternalServerError": "internal_error",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return Response(body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                    status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(exc: ServiceError) -> Response:
    return json_response(exc.to_body(), exc.status, exc.headers)


def api_route(app: Chalice, path: str, methods: list[str],
              content_types: list[str] | None = None, *, scope: str = "public",
              authorizer: Any = None) -> Callable[[Callable[..., Any]], Any]:
    """`app.route` plus one error boundary: ServiceErrors become their JSON responses and
    anything unexpected a JSON 500 without internals (logged with its traceback). Routes with
    an authorizer also check the admitted key's scopes here (defence in depth behind the
    authorizer's policy)."""

    def register(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def handle(**params: str) -> Any:
            try:
                if authorizer is not None:
                    principal = auth.caller(app.current_request)
                    if principal is None:
                        raise auth.NotAuthenticated("A valid API key is required: send "
                                                    "Authorization: Bearer <key>.")
                    if not principal.allows(scope):
                        raise auth.Forbidden(f"This API key's scopes do not allow this "
                                             f"request (it needs '{scope}').")
                return view(**params)
            except ServiceError as exc:
                return error_response(exc)
            except Exception:
                logger.exception("unhandled error", extra={"route": path, "methods": methods})
                return json_response(
                    {"error": "internal_error", "message": "An internal error occurred."}, 500)

        options: dict[str, Any] = {"content_types": content_types} if content_types else {}
        if authorizer is not None:
            options["authorizer"] = authorizer
        return app.route(path, methods=methods, **options)(handle)

    return register


def normalise_chalice_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: rewrite Chalice's own error bodies into our error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        response.body = json.dumps({
            "error": _CHALICE_CODES.get(body["Code"], "bad_request"),
            "message": body.get("Message", ""),
        })
        response.headers["Content-Type"] = "application/json"
    return response


def parse_body(request: Any, model: type[M], *, max_bytes: int = MAX_BODY_BYTES,
               extra: dict[str, Any] | None = None) -> M:
    """The request body as `model`: 413 when too large, 400 `invalid_json` when not a JSON
    object, 400 `validation_error` listing each offending field."""
    raw: bytes = request.raw_body or b""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"Request body is {len(raw)} bytes; the limit is {max_bytes}.",
                              limit_bytes=max_bytes)
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidJson("Request body must be a JSON object.")
    try:  # JSON escapes can smuggle in lone surrogates, which no store can keep
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidJson("Request body contains invalid Unicode (a lone surrogate escape).") from exc
    if extra:
        data.update(extra)
    return validate(model, data)


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        raise ValidationFailed(f"Invalid request: {summary}", fields=fields) from exc


def path_id(value: str, name: str) -> str:
    """Ids in paths follow the same format as ids in bodies."""
    if not _RESOURCE_ID.match(value):
        raise ValidationFailed(
            f"{name} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'.",
            fields=[{"field": name, "message": "invalid format"}])
    return value


def page_params(request: Any, default_limit: int = 20) -> tuple[int, str | None]:
    query = request.query_params or {}
    raw_limit = query.get("limit", str(default_limit))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}.",
            fields=[{"field": "limit", "message": "out of range"}])
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > 2048:
        raise ValidationFailed("cursor is too long.", fields=[{"field": "cursor", "message": "too long"}])
    return int(raw_limit), cursor


def query_value(request: Any, name: str) -> str | None:
    value = (request.query_params or {}).get(name) or None
    if value is not None and (len(value) > 256 or not value.isprintable()):
        raise ValidationFailed(f"{name} must be at most 256 printable characters.",
                               fields=[{"field": name, "message": "invalid value"}])
    return value


def header(request: Any, name: str) -> str | None:
    return request.headers.get(name.lower()) or None
