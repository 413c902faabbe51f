"""HTTP plumbing shared by the routes: parsing bodies and queries into models, and turning
domain errors into `{"error": code, "message": ...}` responses. Routes stay a few lines."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from chalice import Blueprint, Chalice, Response

from chalicelib.api import auth
from chalicelib.api.json_input import parse_json
from chalicelib.api.lazy import lazy
from chalicelib.domain.errors import (
    Forbidden,
    InternalError,
    InvalidJson,
    NotAuthenticated,
    PayloadTooLarge,
    ServiceError,
    ValidationFailed,
)
from chalicelib.observability import logger

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.api.schemas import Query

    M = TypeVar("M", bound=BaseModel)
    Q = TypeVar("Q", bound=Query)
else:  # pydantic: imported by the first request that validates (cold start)
    BaseModel = lazy("pydantic", "BaseModel")

MAX_BODY_BYTES = 1024 * 1024
MAX_MANUAL_BODY_BYTES = 5 * 1024 * 1024
# Chalice answers some requests itself ({"Code": ..., "Message": ...}); we keep one error shape.
_CHALICE_CODES = {
    "BadRequestError": "bad_request", "BadRequest": "bad_request",
    "UnsupportedMediaType": "unsupported_media_type",
    "MethodNotAllowedError": "method_not_allowed", "NotFoundError": "route_not_found",
    "InternalServerError": "internal_error",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if "pydantic" in sys.modules and isinstance(body, BaseModel):  # no model without pydantic
        body = body.model_dump(mode="json")
    return Response(body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                    status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(exc: ServiceError) -> Response:
    return json_response(exc.to_body(), exc.status, exc.headers)


def api_route(app: Chalice | Blueprint, path: str, methods: list[str],
              content_types: list[str] | None = None, *, scope: str = "public",
              bound_keys: bool = False, authorizer: Any = None) -> Callable[[Callable[..., Any]], Any]:
    """`app.route` plus one error boundary: ServiceErrors become their JSON responses and
    anything unexpected a JSON 500 without internals (logged with its traceback). Routes with
    an authorizer also check the admitted key here (defence in depth behind the authorizer's
    policy): its scopes, and that a key bound to a user calls only per-user routes."""

    def register(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def handle(**params: str) -> Any:
            try:
                if authorizer is not None:
                    principal = auth.caller(app.current_request)
                    if principal is None:
                        raise NotAuthenticated("A valid API key is required: send "
                                                    "Authorization: Bearer <key>.")
                    if not principal.allows(scope):
                        raise Forbidden(f"This API key's scopes do not allow this "
                                             f"request (it needs '{scope}').")
                    if principal.user_id and not bound_keys:
                        raise Forbidden("A key bound to a user cannot call this route: "
                                             "it reads or changes other users' data.")
                # a client may percent-encode an id's ':' (or any character): ids are never
                # percent signs, so decoding is the identity for every other value
                return view(**{name: unquote(value) for name, value in params.items()})
            except ServiceError as exc:
                return error_response(exc)
            except Exception:  # noqa: BLE001 - the error boundary: a bug answers a JSON 500, logged
                logger.exception("unhandled error", extra={"route": path, "methods": methods})
                return error_response(InternalError("An internal error occurred."))

        options: dict[str, Any] = {"content_types": content_types} if content_types else {}
        if authorizer is not None:
            # apiKeyRequired: API Gateway applies usage plans (per-key limits) only to such
            # methods; the key comes from the authorizer (ApiKeySourceType AUTHORIZER)
            options.update(authorizer=authorizer, api_key_required=True)
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
    data = parse_json(raw) if raw else None
    if not isinstance(data, dict):
        raise InvalidJson("Request body must be a JSON object.")
    if extra:
        data.update(extra)
    return validate(model, data)


def validate(model: type[M], data: dict[str, Any]) -> M:
    from pydantic import ValidationError

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
    """Ids in paths follow the same definition as ids in bodies (models.ResourceId)."""
    from chalicelib.domain.vocabulary import ResourceId, conforms

    if not conforms(ResourceId, value):
        raise ValidationFailed(
            f"{name} is not a valid id (1-128 characters of letters, digits, '_', '.', ':' or '-').",
            fields=[{"field": name, "message": "invalid format"}])
    return value


def parse_query(request: Any, model: type[Q]) -> Q:
    """The query string as `model`, validated as bodies are (400 `validation_error` naming
    each offending parameter). An empty value (`?status=`) counts as absent."""
    params = request.query_params or {}
    return validate(model, {name: params.get(name) for name in params if params.get(name)})


def header(request: Any, name: str) -> str | None:
    return request.headers.get(name.lower()) or None
