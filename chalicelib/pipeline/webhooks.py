"""Webhook messages: the payload built from an event item, Standard Webhooks signing, and
one HTTP delivery attempt (stdlib only). http.client, ssl and urllib.request (with the email
package they import: about a fifth of a cold `import app`) are imported where a request is
sent, not at import: most functions that import this module never send one."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import stepset
from chalicelib.domain.clock import seconds_between
from chalicelib.observability import logger

USER_AGENT = "session-service-webhooks/1"
# Cloud metadata endpoints, refused even where private targets are allowed elsewhere.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("169.254.170.2")}


def wanted(event: dict[str, Any], event_types: tuple[str, ...]) -> bool:
    """Whether configuration asks for this event: `progress_update` means every progress
    report, `progress_update:DONE` only DONE reports."""
    kind = event.get("event_type")
    return kind in event_types or f"{kind}:{event.get('step_status')}" in event_types


def payload(event: dict[str, Any]) -> dict[str, Any]:
    """The webhook body for one event item (the seed's fields plus ids and ordering)."""
    end = event.get("ended_at") or event["occurred_at"]
    return {
        "event_type": event["event_type"],
        "event_id": event["event_id"],
        "occurred_at": event["occurred_at"],
        "sequence": event["sequence"],
        "session_id": event["session_id"],
        "user_id": event["user_id"],
        "manual_id": event["manual_id"],
        "previous_step": event["previous_step"],
        "current_step": event["current_step"],
        "total_steps": event["total_steps"],
        "step": event.get("step"),
        "step_status": event.get("step_status"),
        "session_status": event["session_status"],
        "session_duration_seconds": max(0.0, seconds_between(event["started_at"], end)),
        "is_completed": event["session_status"] == "completed",
        "completed_steps": stepset.decode(event.get("completed_steps", [])),  # stored as a bitmap
        "out_of_order": event.get("out_of_order", False),
        "reason": event.get("reason"),
        "summary": event.get("summary"),
    }


def signed_headers(secret: str | list[str], message_id: str, body: str,
                   now: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers: webhook-id, webhook-timestamp, webhook-signature (v1). With
    several secrets (a rotation's grace period) the signatures are space-separated, so a
    receiver holding any one of the secrets verifies."""
    from standardwebhooks.webhooks import Webhook

    moment = now or datetime.now(UTC)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(moment.timestamp()))}
    keys = [secret] if isinstance(secret, str) else secret
    signatures = [Webhook(key).sign(message_id, moment, body) for key in keys if key]
    if signatures:
        headers["webhook-signature"] = " ".join(signatures)
    return headers


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST: the receiver's status (None: no answer: timeout, reset, TLS
    or refused target, with `error` saying which) and its Retry-After, if any. What it means
    is for `delivery_policy.decide`."""

    status_code: int | None
    error: str | None
    latency_ms: int
    retry_after: float | None = None


class TargetRefused(OSError):
    """The webhook URL may not be called: wrong scheme, or (outside the local stack) an
    address inside the network (SSRF guard)."""


def _check_address(ip: Any, allow_private: bool) -> None:
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:10.0.0.1 is 10.0.0.1
        ip = ip.ipv4_mapped
    if ip in METADATA:
        raise TargetRefused(f"{ip} is a cloud metadata address")
    if not allow_private and not ip.is_global:
        raise TargetRefused(f"{ip} is a private, loopback, link-local or reserved address")


def _connect(host: str, port: int, timeout: float | None, allow_private: bool) -> socket.socket:
    """Resolve once, refuse inside addresses, connect to the address that was checked (so a
    DNS answer cannot change between the check and the connection)."""
    error: OSError = TargetRefused(f"{host} did not resolve")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        _check_address(ipaddress.ip_address(str(address[0]).split("%")[0]), allow_private)
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def check_target(url: str, allow_private: bool) -> None:
    """The guard `post` applies, applied ahead of time (an endpoint's registration): only
    http(s) URLs with a host that resolves, to no inside address unless `allow_private`, never
    to a metadata address. Raises TargetRefused saying why."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise TargetRefused(f"scheme '{parts.scheme[:20]}' is not allowed (http or https only)")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{parts.hostname[:100]} did not resolve") from exc
    for *_, address in found:
        _check_address(ipaddress.ip_address(str(address[0]).split("%")[0]), allow_private)


class _Transport:
    """urllib handlers for one delivery: guarded connections, redirects not followed (a 3xx
    is a failed attempt: a redirect could point inside the network)."""

    def __init__(self, allow_private: bool) -> None:
        import http.client
        import ssl
        import urllib.request

        allow = allow_private

        class Http(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = _connect(self.host, self.port, self.timeout, allow)

        class Https(http.client.HTTPSConnection):
            def connect(self) -> None:
                sock = _connect(self.host, self.port, self.timeout, allow)
                # the connection's own SSL context (CPython keeps it in _context; connect()
                # is the override point, and typeshed does not declare the attribute)
                self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

        class HttpHandler(urllib.request.HTTPHandler):
            def http_open(self, req: Any) -> Any:
                return self.do_open(Http, req)

        class HttpsHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: Any) -> Any:
                return self.do_open(Https, req, context=ssl.create_default_context())

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.OpenerDirector()
        for handler in (HttpHandler(), HttpsHandler(), NoRedirect(),
                        urllib.request.HTTPErrorProcessor(), urllib.request.HTTPDefaultErrorHandler()):
            self.opener.add_handler(handler)


_transports: dict[bool, _Transport] = {}


def reset_transports() -> None:
    """Forget kept-alive connections (chalicelib.runtime.reset)."""
    _transports.clear()


def post(url: str, body: str, headers: dict[str, str], timeout: float,
         allow_private: bool = False) -> Attempt:
    """One delivery attempt. Only http(s) URLs; inside addresses only when `allow_private`
    (the local stack). Every failure (refused target, DNS, timeout, reset, TLS) is an
    Attempt with an error, never an exception."""
    import http.client
    import ssl
    import urllib.error
    import urllib.request

    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        logger.error("webhook target refused: only http and https URLs are allowed",
                     extra={"url": url[:200]})
        return Attempt(None, f"TargetRefused: scheme '{scheme[:20]}' is not allowed", 0)
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    transport = _transports.get(allow_private) or _transports.setdefault(allow_private, _Transport(allow_private))
    try:
        with transport.opener.open(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return Attempt(response.status, None, elapsed())
    except urllib.error.HTTPError as exc:
        return Attempt(exc.code, None, elapsed(), _retry_after(exc.headers.get("Retry-After")))
    except (TimeoutError, urllib.error.URLError, ConnectionError, ssl.SSLError, OSError,
            http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TargetRefused):
            logger.error("webhook target refused", extra={"url": url[:200], "reason": str(reason)})
        return Attempt(None, f"{type(reason).__name__}: {reason}"[:300], elapsed())


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# ---- inbox forwarding (chalicelib/inbox/forwarding.py): any method, any body ---------------


def send(url: str, method: str, body: bytes, headers: dict[str, str], timeout: float,
         allow_private: bool = False) -> Attempt:
    """One forwarded request through the same guarded transport as `post` (http(s) only,
    inside addresses refused unless `allow_private`, redirects not followed), with the
    caller's method, headers and body as they are. Never raises: failures are Attempts."""
    import http.client
    import ssl
    import urllib.error
    import urllib.request

    started = time.monotonic()
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        return Attempt(None, f"TargetRefused: scheme '{scheme[:20]}' is not allowed", 0)
    request = urllib.request.Request(url, data=body if body or method not in ("GET", "HEAD") else None,
                                     method=method, headers=headers)
    transport = _transports.get(allow_private) or _transports.setdefault(allow_private, _Transport(allow_private))
    try:
        with transport.opener.open(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return Attempt(response.status, None, int((time.monotonic() - started) * 1000))
    except urllib.error.HTTPError as exc:
        return Attempt(exc.code, None, int((time.monotonic() - started) * 1000),
                       _retry_after(exc.headers.get("Retry-After")))
    except (TimeoutError, urllib.error.URLError, ConnectionError, ssl.SSLError, OSError,
            http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(None, f"{type(reason).__name__}: {reason}"[:300], int((time.monotonic() - started) * 1000))
