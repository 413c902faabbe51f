"""One declaration per route: the Chalice route, its OpenAPI operation and the API-key scope
it needs, on a Chalice Blueprint per resource (chalicelib/api/routes/).

A route module declares its routes with `route = bp.declare` at import (so the OpenAPI document
and the authorizer's policy know every route once app.py has imported the modules); app.py
hands each blueprint the API-key authorizer and registers it (`bp.bind(authorizer)`). The
authorizer itself stays in app.py: its Lambda function imports app.py, and with it every
route its policy must cover.

Importing a route module costs little (a cold start imports them all, to serve one route):
its models and services are named through chalicelib/api/lazy.py and imported on the first
request that uses them. The declarations' models are resolved only when the OpenAPI document
needs them (its module registers every declared operation when it is imported); the
authorizer's policy comes from the declarations alone (`route_policies`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response
from chalice.app import ChaliceAuthorizer, Request

from chalicelib.api import auth
from chalicelib.api.http import api_route
from chalicelib.api.lazy import lazy, resolved
from chalicelib.domain.errors import ServiceError

if TYPE_CHECKING:
    from chalicelib.api import openapi
    from chalicelib.api.schemas import Query
    from chalicelib.services import keys, sessions
else:
    sessions = lazy("chalicelib.services", "sessions")

_OPENAPI = "chalicelib.api.openapi"
# every declared (path, method, scope, per-user), HEAD included: what the authorizer grants from
_policies: list[tuple[str, str, str, bool]] = []
# declared operations not yet handed to the OpenAPI module (it imports every model)
_unregistered: list[Callable[[], None]] = []


def route_policies() -> list[tuple[str, str, str, bool]]:
    """(path, method, scope, bound keys allowed) of every declared route (the same list as
    openapi.route_policies(), without importing the document's models)."""
    return list(_policies)


def register_operations() -> None:
    """Hand every declared operation to the OpenAPI module (called when it is imported, and
    by a declaration made after that)."""
    while _unregistered:
        _unregistered.pop(0)()


@dataclass(frozen=True)
class _Declared:
    path: str
    methods: tuple[str, ...]
    content_types: list[str] | None
    scope: str
    per_user: bool
    view: Callable[..., Response]


class Resource(Blueprint):
    """The routes of one resource (a Chalice Blueprint whose routes carry our declaration)."""

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._declared: list[_Declared] = []

    def declare(self, path: str, *methods: str, summary: str, body: Any = None,
                responses: dict[int, Any] | None = None, query: type[Query] | None = None,
                headers: tuple[openapi.Header, ...] = (), content_types: list[str] | None = None,
                scope: str | None = None, per_user: bool = False, operation_id: str | None = None,
                description: str | None = None, errors: tuple[type[ServiceError], ...] = (),
                documented: bool = True, body_required: bool = True) -> Callable[..., Any]:
        """Declare a route and document it in the OpenAPI document.

        `scope` is the API-key scope the route needs: "read" (the default for GET), "agent",
        "admin", or "public" (no key). Any other method must say which. A GET route answers
        HEAD too (same view, same scope; the gateway drops the body). `per_user` says that a
        key bound to a user may call it: the route narrows to that user's sessions (or holds no
        user's data); every other route answers such a key 403.

        Optional, for the document: `operation_id` (default: the view's name in camelCase),
        `description` (default: the view's docstring; written for an LLM), `errors` (the
        domain errors the view raises: each becomes a documented status with its code; the
        generic ones of a body, a query, a path id or an API key are added by themselves),
        `documented=False` for a route the document leaves out (a method that only says 405),
        `body_required=False` for a body the view may go without (its model's defaults).
        A header is a name, (name, vocabulary type) or (name, type, description)."""
        if scope is None:
            if set(methods) - {"GET", "HEAD"}:
                raise ValueError(f"{path} {methods}: say which scope may call it")
            scope = "read"
        # HEAD works wherever GET does: same view and scope, undocumented (HTTP defines it)
        served = (*methods, "HEAD") if "GET" in methods and "HEAD" not in methods else methods

        def remember(view: Callable[..., Response]) -> Callable[..., Response]:
            def register() -> None:  # the models (possibly lazy names) resolved here
                from chalicelib.api import openapi

                name = operation_id or view.__name__
                text = description if description is not None else openapi.text_of(view)
                models = resolved(body), resolved(responses or {}), resolved(query)
                typed = tuple(tuple(resolved(list(h))) if isinstance(h, tuple) else h for h in headers)
                for method in methods:
                    openapi.register(openapi.Operation(
                        method, path, summary, models[0], models[1], models[2], typed,
                        raw_body=content_types is not None, scope=scope, bound_keys=per_user,
                        operation_id=openapi.operation_id(name, method if len(methods) > 1 else None),
                        documented=documented, description=text, errors=errors, body_required=body_required))
                if served != methods:
                    openapi.register(openapi.Operation(
                        "HEAD", path, summary, None, models[1], models[2], typed, scope=scope,
                        bound_keys=per_user, operation_id=openapi.operation_id(name, "head"), documented=False))

            _unregistered.append(register)
            if _OPENAPI in sys.modules:
                register_operations()
            _policies.extend((path, method, scope, per_user) for method in (*methods, *served[len(methods):]))
            self._declared.append(_Declared(path, served, content_types, scope, per_user, view))
            return view

        return remember

    def bind(self, authorizer: ChaliceAuthorizer) -> Resource:
        """Hand the declared routes to Chalice, each non-public one behind `authorizer`."""
        for d in self._declared:
            api_route(self, d.path, list(d.methods), d.content_types, scope=d.scope,
                      bound_keys=d.per_user, authorizer=None if d.scope == "public" else authorizer)(d.view)
        self._declared.clear()
        return self


def no_content() -> Response:
    return Response(body="", status_code=204)


def caller(request: Request) -> keys.Principal | None:
    return auth.caller(request)


def check_owner(request: Request, session_id: str) -> None:
    """Per-user isolation: a key bound to a user touches only that user's sessions (one
    extra read, for bound keys only)."""
    principal = caller(request)
    if principal is not None and principal.user_id:
        auth.check_user(principal, sessions.get_session(session_id).user_id)
