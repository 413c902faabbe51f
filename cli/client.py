"""The CLI's HTTP client (the standard library's urllib) and its errors, each with its exit
code: an API error answer, no answer at all, and the hints about API keys."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import click

DEFAULT_URL = "http://127.0.0.1:8000/api"
EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INVALID_FILE = 1, 2, 3, 4
KEY_HINT = "pass --api-key or set SESSION_SERVICE_API_KEY"


# ---- errors with their exit codes ----------------------------------------------------------


class CliError(click.ClickException):
    """Printed as `error: <code>: <message>` (and a hint) on stderr; exits with exit_code."""

    def __init__(self, code: str, message: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.hint = hint

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.code}: {self.message}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


class ApiError(CliError):
    """The API answered with an error status (exit 1)."""

    def __init__(self, status: int, body: dict[str, Any], sent_key: bool) -> None:
        code = str(body.get("error") or f"http_{status}")
        message = str(body.get("message") or http.client.responses.get(status, "error"))
        super().__init__(code, message, EXIT_API_ERROR, _auth_hint(status, code, sent_key))
        self.status = status
        self.body = body


class Unreachable(CliError):
    """No HTTP answer at all (exit 3)."""

    def __init__(self, url: str, reason: Any) -> None:
        super().__init__("unreachable", f"cannot reach the service at {url}: {reason}",
                         EXIT_UNREACHABLE, "is it running (make run), and is --url right?")


def _auth_hint(status: int, code: str, sent_key: bool) -> str | None:
    if code == "token_required":
        return "pass the inbox's read token with --token or INBOX_TOKEN"
    if status == 401:
        return (f"the API key was not accepted (unknown or revoked): {KEY_HINT}" if sent_key
                else f"this needs an API key: {KEY_HINT}")
    if status == 403 and code != "user_mismatch":
        return (f"this API key's scopes do not allow it (manuals, redrive, inboxes and keys need "
                f"admin; a key bound to a user reaches only that user's sessions): {KEY_HINT}")
    return None


# ---- the HTTP client -----------------------------------------------------------------------


@dataclass
class Client:
    url: str
    api_key: str | None = None
    timeout: float = 30.0

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON or None). Raises ApiError for 4xx/5xx
        and Unreachable when there is no HTTP answer."""
        target = self.url.rstrip("/") + "/" + path.lstrip("/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        all_headers = {"Accept": "application/json", "User-Agent": "session-service-cli",
                       **(headers or {})}
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, method=method, headers=all_headers)
        try:
            # the URL's scheme is checked to be http(s) when the option is parsed (_check_url)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # nosec B310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _error_body(exc.read()), bool(self.api_key)) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, refused, timeout, DNS
            raise Unreachable(self.url, getattr(exc, "reason", None) or exc) from None
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise CliError("invalid_response", f"{method} {target} answered {status} with a "
                           "body that is not JSON (is --url the API's base URL?)",
                           EXIT_API_ERROR) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)[1]

    def listing(self, path: str, query: dict[str, Any] | None = None, *, limit: int = 100,
                cursor: str | None = None, every: bool = True,
                headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """A listing's items from `cursor` on: one page, or with `every` all pages (following
        next_cursor); returns the items and the cursor of what is left (None at the end)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", path, query={**(query or {}), "limit": limit, "cursor": cursor},
                             headers=headers)[1]
            items += page["items"]
            cursor = page.get("next_cursor")
            if not (every and cursor):
                return items, cursor


def _error_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = raw.decode("utf-8", "replace").strip()
    return {"message": text[:300]} if text else {}


def seg(value: str) -> str:
    """A path segment, escaped (ids come from the command line)."""
    return urllib.parse.quote(value, safe="")
