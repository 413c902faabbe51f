"""The browser-facing security headers of every answer, in one place.

Two policies: the HTML pages (dashboard, docs) may run only the app's own scripts and styles,
served from the same origin; everything else (JSON, the dashboard's files, inbox captures)
is inert: sandboxed, nothing loads, and nothing may frame it. Every answer also carries
nosniff, DENY framing and no referrer; anything but a page that sets its own caching is
`no-store` (API answers carry keys, tokens and session data).

The function adds them (`security_headers`, an HTTP middleware registered in app.py); API
Gateway's own answers carry the same (infra/package.py's GatewayResponses, local/stack.py's
local gateway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response

PAGE_POLICY = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "form-action 'self'", "base-uri 'none'", "object-src 'none'",
    "frame-ancestors 'none'",
))
# What a document served under this policy can do: nothing. `sandbox` (without allow-scripts)
# gives it an opaque origin, so even a script that ran could not read this origin's storage.
INERT_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"

_ALWAYS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {**_ALWAYS, "Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}
API_HEADERS = {**_ALWAYS, "Content-Security-Policy": INERT_POLICY, "Cache-Control": "no-store"}
PAGE_TYPES = ("text/html",)


def for_content_type(content_type: str) -> dict[str, str]:
    """The headers an answer of this type gets: a page's or the inert set."""
    return PAGE_HEADERS if content_type.lower().startswith(PAGE_TYPES) else API_HEADERS


def add_missing(headers: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """`headers` with every header of `defaults` it lacks (names compared case-insensitively:
    a route's own Cache-Control or CSP wins)."""
    present = {name.lower() for name in headers}
    headers.update({name: value for name, value in defaults.items() if name.lower() not in present})
    return headers


def security_headers(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: every answer of the function carries the headers of its type."""
    response = get_response(event)
    content_type = next((str(v) for k, v in response.headers.items() if k.lower() == "content-type"), "")
    add_missing(response.headers, for_content_type(content_type))
    return response
