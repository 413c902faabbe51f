"""Webhook inboxes: a capture URL that stores any request sent to it, for inspection.

Also the local stack's receiver of our own webhooks (inbox `local`), so the whole loop runs
on one machine. Captures expire by TTL; reads never return expired items (DynamoDB's TTL
deletion lags, and moto never deletes).
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from chalicelib import sealing
from chalicelib.config import get_settings
from chalicelib.db import inbox as records
from chalicelib.domain import limits, targets
from chalicelib.domain.clock import to_iso, utcnow
from chalicelib.domain.errors import (
    CaptureNotFound,
    CaptureTooLarge,
    HeadersTooLarge,
    InboxExists,
    InboxNotFound,
    InboxPaused,
    RateLimited,
    SecretsKeyUnavailable,
    ServiceUnavailable,
    TokenRequired,
)
from chalicelib.domain.models import Model, Page, Request
from chalicelib.domain.vocabulary import INTEGRAL, CaptureId, InboxId, Name, Timestamp, conforms
from chalicelib.inbox import forwarding
from chalicelib.lru import LRU

MAX_CAPTURE_BYTES = 1024 * 1024
# Items are sized in bytes (records.item_size), headers and all: a capture is one item when it
# fits under ITEM_BUDGET_BYTES, else its body goes to chunk items of at most CHUNK_BYTES.
ITEM_BUDGET_BYTES = records.MAX_ITEM_BYTES - 16 * 1024  # room for the keys and rounding
CHUNK_BYTES = 300 * 1024
DEFAULT_TTL_DAYS, MAX_TTL_DAYS = 7, 30
ALWAYS_MASKED = ("authorization", "cookie", "x-api-key", "proxy-authorization", "x-inbox-token")
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
              "application/javascript", "+json", "+xml")

# The capture route is public: per inbox and per source address, requests beyond a token
# bucket are refused (429) before any read, and an inbox's record is read at most once per
# INBOX_CACHE_SECONDS per process, so a flood of captures at a paused, deleted or unknown
# inbox costs no write and (almost) no read. Per process: on AWS, per Lambda instance, so the
# route's stage throttle (infra/package.py) bounds the total.
INBOX_CACHE_SECONDS = 5.0
_capture_buckets = limits.Buckets()
_inboxes: LRU[str, tuple[float, dict[str, Any] | None]] = LRU(1024)

log = logging.getLogger(__name__)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_BASE_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)*/?$")


# What a capture may answer: types no browser runs script in. Everything else (HTML, SVG,
# XHTML, XML of any kind, JavaScript, multipart/x-mixed-replace, ...) is refused when an inbox
# is configured: a capture URL is on the API's origin, the dashboard's, which holds the key.
INERT_TYPES = ("text/plain", "text/csv", "application/json", "application/x-www-form-urlencoded")
FALLBACK_TYPE = "text/plain; charset=utf-8"


def is_inert(content_type: str) -> bool:
    """Whether a browser shows this type as data (never as a document that runs script)."""
    essence = content_type.split(";", 1)[0].strip().lower()
    return essence in INERT_TYPES or (essence.startswith("application/") and essence.endswith("+json"))


def served_type(content_type: str) -> str:
    """The type a capture answers with: the configured one, or plain text for a script-capable
    type stored before such types were refused."""
    return content_type if is_inert(content_type) else FALLBACK_TYPE


def _any_case(text: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else "\\" + c if c in ".+" else c for c in text)


# a valid content type that is_inert admits, as one pattern (letters in any case, as is_inert
# lowercases): what the OpenAPI document says InboxResponse.content_type may be
_TOKEN = "[A-Za-z0-9!#$&^_.+-]"
CONTENT_TYPE_PATTERN = (
    "^(?:" + "|".join(_any_case(t) for t in INERT_TYPES) + f"|{_any_case('application/')}{_TOKEN}*{_any_case('+json')})"
    + r"(; ?[\x20-\x7e]{1,100})?$")


class InboxResponse(Request):
    """What a capture answers. Statuses that cannot carry a body (1xx, 204, 205, 304) are
    refused, the content type must be a valid header value and an inert type (INERT_TYPES,
    or application/*+json)."""

    status: Annotated[int, Field(strict=True, ge=200, le=599, json_schema_extra={"not": {"enum": [204, 205, 304]}}),
                      INTEGRAL] = 200
    body: Annotated[str, StringConstraints(max_length=64 * 1024)] = '{"ok": true}'
    # a valid header value, and (the validator below, with its message) an inert type; the
    # document's pattern says both at once
    content_type: Annotated[str, StringConstraints(
        pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(; ?[\x20-\x7e]{1,100})?$"),
        Field(json_schema_extra={"pattern": CONTENT_TYPE_PATTERN})] = "application/json"

    @field_validator("status")
    @classmethod
    def _status_has_a_body(cls, status: int) -> int:
        if status in (204, 205, 304):
            raise ValueError("this status cannot carry the configured body")
        return status

    @field_validator("content_type")
    @classmethod
    def _inert(cls, content_type: str) -> str:
        if not is_inert(content_type):
            raise ValueError(
                "a capture answers on the API's origin, so it cannot serve a type a browser may "
                "run script in (HTML, SVG, XML, JavaScript...); use one of "
                f"{', '.join(INERT_TYPES)} or application/*+json")
        return content_type


MAX_DESTINATIONS = 5
Destinations = Annotated[list[Annotated[str, StringConstraints(max_length=targets.MAX_URL_LENGTH)]],
                         Field(max_length=MAX_DESTINATIONS, description=(
                             "Up to 5 URLs each capture is forwarded to (https; http and inside "
                             "addresses only on the local stack)."))]


def _checked_destinations(urls: list[str] | None) -> list[str] | None:
    """Each destination allowed (SSRF guard, chalicelib/domain/targets.py), none twice."""
    if urls is None:
        return None
    allow_private = get_settings().webhook_allow_private_targets
    for url in urls:
        reason = targets.refusal(url, allow_private)
        if reason:
            raise ValueError(f"{reason}: {url[:200]}")
    if len(set(urls)) != len(urls):
        raise ValueError("a destination is listed twice")
    return urls


class InboxCreate(Request):
    model_config = ConfigDict(json_schema_extra={"x-rules": [
        "forward_to: http or https URLs (https on AWS) without credentials, to a public host: an "
        "address inside the network, localhost or a cloud metadata address is refused (the local "
        "stack allows private addresses)."]})

    inbox_id: InboxId | None = None
    name: Name | None = None
    # as InboxResponse(), without building its validator at import (cold start)
    response: InboxResponse = InboxResponse.model_construct()
    signing_secret: Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{8,200}$")] | None = None
    ttl_days: Annotated[int, Field(strict=True, ge=1, le=MAX_TTL_DAYS), INTEGRAL] = DEFAULT_TTL_DAYS
    forward_to: Destinations = []

    @field_validator("forward_to")
    @classmethod
    def _destinations(cls, urls: list[str]) -> list[str]:
        return _checked_destinations(urls) or []


class InboxPatch(Request):
    model_config = ConfigDict(json_schema_extra={"x-rules": [
        "forward_to: http or https URLs (https on AWS) without credentials, to a public host: an "
        "address inside the network, localhost or a cloud metadata address is refused (the local "
        "stack allows private addresses)."]})

    paused: bool | None = None
    name: Name | None = None
    response: InboxResponse | None = None
    forward_to: Destinations | None = None  # [] stops forwarding

    @field_validator("forward_to")
    @classmethod
    def _destinations(cls, urls: list[str] | None) -> list[str] | None:
        return _checked_destinations(urls)


class Inbox(Model):
    inbox_id: str
    name: str | None
    capture_path: str
    response: InboxResponse
    verifies_signatures: bool
    ttl_days: int
    paused: bool
    forward_to: list[str]
    created_at: Timestamp


class InboxCreated(Inbox):
    read_token: str
    capture_url: str | None  # null only where the API's address is unknown (see public_base_url)


class ForwardAttempt(Model):
    attempt: int
    of: int
    round: str = Field(description="The delivery round: 0, or a redrive's.")
    outcome: str
    status_code: int | None
    error: str | None
    latency_ms: int
    at: Timestamp
    retry_in_seconds: int | None = None


class ForwardView(Model):
    """A capture's forwarding to one destination."""

    destination: str
    status: str = Field(description="pending, retrying, delivered, failed or gone.")
    attempts: list[ForwardAttempt]


class Capture(Model):
    request_id: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    content_type: str
    body_encoding: str
    body: str | None
    size_bytes: int
    source_ip: str | None
    user_agent: str | None
    received_at: Timestamp
    signature: dict[str, Any] | None
    idempotency_key: str | None = Field(description="Its webhook-id (else Idempotency-Key) header.")
    duplicates: int = Field(description="Arrivals of the same key with the same body since, counted, not stored.")
    conflict: bool = Field(description="Its key was captured before with another body.")
    conflict_with: str | None = Field(description="The request stored first under its key.")
    forwards: list[ForwardView]


class CapturePage(Model):
    items: list[Capture]
    next_cursor: str | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _view(item: dict[str, Any]) -> Inbox:
    return Inbox(
        inbox_id=item["inbox_id"], name=item.get("name"),
        capture_path=f"/v1/hooks/{item['inbox_id']}", response=InboxResponse(**{
            **item["response"], "content_type": served_type(item["response"]["content_type"])}),
        verifies_signatures=bool(item.get("signing_secret")), ttl_days=item["ttl_days"],
        paused=item.get("paused", False), forward_to=item.get("forward_to") or [],
        created_at=item["created_at"])


def create_inbox(body: InboxCreate, read_token: str | None = None) -> tuple[Inbox, str]:
    """Create an inbox; returns it and its read token (shown once, stored only as a hash)."""
    inbox_id = body.inbox_id or secrets.token_urlsafe(16)  # 128 random bits
    token = read_token or secrets.token_urlsafe(32)
    # the signing secret is stored encrypted (KMS, bound to this inbox): a 503 without a key
    sealed = sealing.seal(inbox_id, body.signing_secret, sealing.INBOX) if body.signing_secret else None
    item = {"inbox_id": inbox_id, "name": body.name,
            "response": body.response.model_dump(), "signing_secret": sealed,
            "ttl_days": body.ttl_days, "paused": False, "forward_to": body.forward_to,
            "created_at": to_iso(utcnow()),
            "token_hash": _hash(token)}
    if not records.put_new(item):
        raise InboxExists(f"Inbox '{inbox_id}' already exists.", inbox_id=inbox_id)
    _inboxes.put(inbox_id, (0.0, None))  # an earlier miss is forgotten
    return _view(item), token


def encrypt_stored_secrets(page_size: int = 500) -> dict[str, int]:
    """The upgrade's migration (python -m cli inbox encrypt-secrets): every inbox signing
    secret an older version stored plain is encrypted in place (one Scan of the table, paged;
    one KMS Encrypt and one conditional UpdateItem per such inbox). Idempotent: encrypted
    secrets are never opened; an inbox deleted meanwhile is skipped. Until it has run, plain
    secrets keep checking signatures (the capture route reads both forms)."""
    start: dict[str, Any] | None = None
    scanned = encrypted = skipped = 0
    while True:
        found, start, evaluated = records.plain_secrets_page(page_size, start)
        scanned += evaluated
        for inbox in found:
            sealed = sealing.seal(inbox["inbox_id"], inbox["signing_secret"], sealing.INBOX)
            if records.replace_secret(inbox["inbox_id"], inbox["signing_secret"], sealed):
                encrypted += 1
            else:
                skipped += 1
        if start is None:
            _inboxes.clear()  # this process's cached inbox records held the plain ones
            return {"scanned": scanned, "encrypted": encrypted, "skipped": skipped}


def public_base_url(configured: str | None, context: dict[str, Any]) -> str | None:
    """The API's public base URL, stage included, for capture links: PUBLIC_API_URL when it
    is configured (a custom domain; the local stack sets it), else the domain and stage that
    API Gateway itself puts in the request context. Never a request header: Host and
    X-Forwarded-* are whatever the caller sends. http(s) only; None when neither is known."""
    if configured:
        parts = urlsplit(configured)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:  # not a number, or out of range
            port_ok = False
        if (port_ok and parts.scheme in ("http", "https") and _HOSTNAME.match(parts.hostname or "")
                and _BASE_PATH.match(parts.path)
                and not (parts.username or parts.password or parts.query or parts.fragment)):
            return configured.rstrip("/")
        log.error("PUBLIC_API_URL is not an http(s) base URL; ignored: %.200s", configured)
    domain, stage = context.get("domainName"), context.get("stage")
    if isinstance(domain, str) and isinstance(stage, str) and _HOSTNAME.match(domain) and _STAGE.match(stage):
        return f"https://{domain}/{stage}"
    return None


def capture_url(created: Inbox, context: dict[str, Any]) -> str | None:
    base = public_base_url(os.environ.get("PUBLIC_API_URL"), context)
    return f"{base}{created.capture_path}" if base else None


def _authorised(inbox_id: str, token: str | None) -> dict[str, Any]:
    """The inbox, if the token opens it. A wrong token and a missing inbox look the same."""
    if not token:
        raise TokenRequired("Send the inbox's read token in the X-Inbox-Token header.")
    item = records.get(inbox_id) if conforms(InboxId, inbox_id) else None
    if item is None or not hmac.compare_digest(item["token_hash"], _hash(token)):
        raise InboxNotFound(f"Inbox '{inbox_id}' not found, or the token does not open it.")
    return item


def get_inbox(inbox_id: str, token: str | None) -> Inbox:
    return _view(_authorised(inbox_id, token))


def update_inbox(inbox_id: str, token: str | None, body: InboxPatch) -> Inbox:
    item = _authorised(inbox_id, token)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        return _view(item)
    records.set_fields(inbox_id, changes)
    _inboxes.put(inbox_id, (0.0, None))  # this process sees the change at once
    return _view({**item, **changes})


def delete_inbox(inbox_id: str, token: str | None) -> None:
    _authorised(inbox_id, token)
    records.delete(inbox_id)
    _inboxes.put(inbox_id, (0.0, None))


# ---- capture -------------------------------------------------------------------------------


def masked_headers(headers: dict[str, str]) -> dict[str, str]:
    extra = tuple(h.strip().lower() for h in os.environ.get("INBOX_MASKED_HEADERS", "").split(",") if h.strip())
    return {k: ("***" if k.lower() in ALWAYS_MASKED + extra else v) for k, v in headers.items()}


def stored_signature_verdict(inbox_id: str, stored: Any, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The verdict with the inbox's stored secret (opened from the cache, or one KMS Decrypt;
    a plain one, stored by an older version, as it is). A secret KMS will not open (a disabled
    key, a ciphertext made for another inbox) does not stop the capture: it is stored,
    unverified, saying why."""
    try:
        secret = sealing.open_secret(inbox_id, stored, sealing.INBOX)
    except SecretsKeyUnavailable:
        return {"verified": False, "reason": "secret_unavailable"}
    return signature_verdict(secret, body, headers)


def signature_verdict(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    from standardwebhooks.webhooks import Webhook

    try:
        Webhook(secret).verify(body, headers, json_parse=False)
        return {"verified": True, "reason": None}
    except Exception as exc:  # noqa: BLE001 - the library signals every failure by exception
        text = str(exc).lower()
        reason = ("missing_headers" if "missing" in text else
                  "stale_timestamp" if "too old" in text or "too new" in text else "bad_signature")
        return {"verified": False, "reason": reason}


def _is_text(content_type: str, body: bytes) -> bool:
    if any(t in content_type.lower() for t in TEXT_TYPES) or not content_type:
        try:
            body.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
    return False


def forget_inboxes() -> None:
    _inboxes.clear()
    _capture_buckets.clear()


def _admit(inbox_id: str, source_ip: str | None) -> None:
    """The source address's bucket first (a flooding sender spends no token of the inbox's),
    then the inbox's. Env CAPTURE_RATE_LIMITS=0 turns both off (as LOCAL_RATE_LIMITS=0 does
    for the local stack)."""
    if os.environ.get("CAPTURE_RATE_LIMITS", "1") == "0" or os.environ.get("LOCAL_RATE_LIMITS") == "0":
        return
    now = time.monotonic()
    wait = _capture_buckets.take(f"source:{source_ip}", limits.SOURCE_RATE_PER_SECOND,
                                 limits.SOURCE_BURST, now) if source_ip else 0.0
    if not wait:
        wait = _capture_buckets.take(f"inbox:{inbox_id}", limits.INBOX_RATE_PER_SECOND,
                                     limits.INBOX_BURST, now)
    if wait:
        raise RateLimited("Too many requests: slow down and retry after the seconds in the "
                          "Retry-After header.", retry_after=limits.retry_after(wait))


def _inbox(inbox_id: str) -> dict[str, Any] | None:
    """The inbox's record, read at most once per INBOX_CACHE_SECONDS (unknown ones too)."""
    now = time.monotonic()
    cached = _inboxes.get(inbox_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    item = records.get(inbox_id, consistent=False)
    _inboxes.put(inbox_id, (now + INBOX_CACHE_SECONDS, item))
    return item


def capture(inbox_id: str, *, method: str, path: str, query: dict[str, str] | None,
            headers: dict[str, str], body: bytes, source_ip: str | None) -> tuple[int, str, str]:
    """Store one request; returns the inbox's configured (status, body, content type), the
    type never one a browser runs script in (served_type). A paused inbox answers 410 and
    stores nothing; limits first, then at most one read."""
    if not conforms(InboxId, inbox_id):
        raise InboxNotFound(f"Inbox '{inbox_id}' not found.")
    _admit(inbox_id, source_ip)
    item = _inbox(inbox_id)
    if item is None:
        raise InboxNotFound(f"Inbox '{inbox_id}' not found.")
    if item.get("paused"):
        return 410, json.dumps(InboxPaused("This inbox is paused.").to_body()), "application/json"
    if len(body) > MAX_CAPTURE_BYTES:
        raise CaptureTooLarge(f"Body is {len(body)} bytes; the limit is {MAX_CAPTURE_BYTES}.",
                              limit_bytes=MAX_CAPTURE_BYTES)
    now = utcnow()
    request_id = f"req_{int(now.timestamp() * 1_000_000):016x}{secrets.token_hex(4)}"
    expires_at = int(time.time()) + item["ttl_days"] * 86400
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    text = _is_text(content_type, body)
    encoded = body.decode("utf-8") if text else base64.b64encode(body).decode()
    record: dict[str, Any] = {
        "request_id": request_id, "inbox_id": inbox_id, "method": method, "path": path,
        "query": dict(query or {}), "headers": masked_headers(dict(headers)), "content_type": content_type,
        "body_encoding": "text" if text else "base64", "size_bytes": len(body),
        "source_ip": source_ip, "user_agent": lowered.get("user-agent"),
        "received_at": to_iso(now), "expires_at": expires_at,
    }
    if item.get("signing_secret"):
        record["signature"] = stored_signature_verdict(inbox_id, item["signing_secret"], body, lowered)
    destinations = item.get("forward_to") or []
    if destinations:  # frozen on the capture: a later change of the inbox's list does not move it
        record["forward_to"] = [{"id": forwarding.destination_id(url), "url": url} for url in destinations]
        record["forwarding"] = True  # what the feedback function's stream filter selects
    key = idempotency_key(lowered)
    if key is not None:
        record.update(idempotency_key=key[:MAX_KEY_CHARS], body_hash=hashlib.sha256(body).hexdigest(),
                      dedup_key=_hash(key)[:32])
    record["body"], record["body_chunks"] = None, 0
    if records.item_size(record) > ITEM_BUDGET_BYTES:
        raise HeadersTooLarge(
            "The request's headers, path and query are too large to capture "
            f"(over {ITEM_BUDGET_BYTES // 1024} KB).", limit_bytes=ITEM_BUDGET_BYTES)
    if records.item_size({**record, "body": encoded}) <= ITEM_BUDGET_BYTES:
        chunks = [encoded]
        record["body"] = encoded
    else:
        chunks = utf8_chunks(encoded, CHUNK_BYTES)
        record["body_chunks"] = len(chunks)
    response = item["response"]
    answer = response["status"], response["body"], served_type(response["content_type"])
    outcome = "new"
    if key is not None:
        outcome, other = records.claim(inbox_id, record["dedup_key"], record["body_hash"], request_id,
                                       expires_at, time.time())
        if outcome == "duplicate":  # counted on its key's marker: nothing stored, nothing forwarded
            _count(inbox_id, record, status=response["status"], outcome=outcome)
            return answer
        if outcome == "conflict":
            record["conflict_with"] = other
    try:
        records.put_capture(record, chunks if record["body_chunks"] else [])
    except Exception:
        if outcome == "new" and key is not None:  # the sender's retry must be stored, not counted
            records.release(inbox_id, record["dedup_key"], record["body_hash"], request_id)
        raise
    _count(inbox_id, record, status=response["status"], outcome=outcome)
    return answer


MAX_KEY_CHARS = 256


def idempotency_key(lowered: dict[str, str]) -> str | None:
    """The key a sender repeats on a retry: Standard Webhooks' `webhook-id`, else an
    `Idempotency-Key` (blank values are none)."""
    for name in ("webhook-id", "idempotency-key"):
        value = (lowered.get(name) or "").strip()
        if value:
            return value
    return None


def _count(inbox_id: str, record: dict[str, Any], *, status: int, outcome: str) -> None:
    """The capture in its hour's counters (one UpdateItem). Counters are best effort: a
    throttled counter write does not fail a request already stored."""
    counters = {"captures": 1, f"answered_{status}": 1}
    if outcome == "duplicate":
        counters["duplicates"] = 1
    elif outcome == "conflict":
        counters["conflicts"] = 1
    signature = record.get("signature")
    if signature is not None:
        counters[f"signature_{'verified' if signature['verified'] else signature['reason']}"] = 1
    try:
        records.count(inbox_id, record["received_at"][:13], counters, time.time())
    except ServiceUnavailable:
        log.warning("inbox metrics not counted (the table is busy)", extra={"inbox_id": inbox_id})


def utf8_chunks(text: str, max_bytes: int) -> list[str]:
    """`text` cut into pieces of at most `max_bytes` bytes of UTF-8, never inside a character."""
    data, pieces, start = text.encode(), [], 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: back off
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


# ---- reading captures ----------------------------------------------------------------------


def _summary(item: dict[str, Any], extra: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """A capture as the API shows it, with its duplicates and forwards from `extra` (the
    markers and forward logs read with it)."""
    view = {k: item.get(k) for k in (
        "request_id", "method", "path", "query", "headers", "content_type", "body_encoding",
        "body", "size_bytes", "source_ip", "user_agent", "received_at", "signature",
        "idempotency_key", "conflict_with")}
    inbox_id, request_id = item["inbox_id"], item["request_id"]
    view["conflict"] = item.get("conflict_with") is not None
    view["duplicates"] = records.duplicates_of(extra, inbox_id, item["dedup_key"], item["body_hash"],
                                               request_id) if item.get("dedup_key") else 0
    view["forwards"] = [forwarding.view(d["url"], extra.get(records.ident(
        records.forward_key(inbox_id, request_id, d["id"])))) for d in item.get("forward_to") or []]
    return view


def _with_extras(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Captures as the API shows them: their key markers and forward logs in one BatchGetItem."""
    keys = []
    for item in items:
        if item.get("dedup_key"):
            keys.append(records.dedup_key(item["inbox_id"], item["dedup_key"]))
        keys += [records.forward_key(item["inbox_id"], item["request_id"], d["id"])
                 for d in item.get("forward_to") or []]
    extra = records.items(keys)
    return [_summary(item, extra) for item in items]


def list_requests(inbox_id: str, token: str | None, limit: int, cursor: str | None,
                  method: str | None) -> Page:
    """Newest first; expired captures are filtered out (one Query per page)."""
    _authorised(inbox_id, token)
    items, next_cursor = records.captures_page(
        inbox_id, method.upper() if method else None, limit, cursor)
    return Page(items=_with_extras(items), next_cursor=next_cursor)


def get_request(inbox_id: str, token: str | None, request_id: str) -> dict[str, Any]:
    _authorised(inbox_id, token)
    if not conforms(CaptureId, request_id):
        raise CaptureNotFound(f"Request '{request_id}' not found in inbox '{inbox_id}'.")
    item = records.get_capture(inbox_id, request_id)
    if item is None or item.get("expires_at", 0) <= time.time():
        raise CaptureNotFound(f"Request '{request_id}' not found in inbox '{inbox_id}'.")
    result = _with_extras([item])[0]
    if item.get("body_chunks"):
        result["body"] = records.capture_body(inbox_id, request_id)
    return result


# ---- metrics -------------------------------------------------------------------------------


class HourMetrics(Model):
    hour: str = Field(description="The UTC hour, YYYY-MM-DDTHH.")
    captures: int = Field(description="Requests received (duplicates included).")
    duplicates: int
    conflicts: int
    answered: dict[str, int] = Field(description="The status codes the inbox answered, by code.")
    signatures: dict[str, int] = Field(description="Signature verdicts: verified, or the reason.")
    forwards: dict[str, int] = Field(description="Forward attempts by the destination's status code (or error).")


class InboxMetrics(Model):
    inbox_id: str
    hours: list[HourMetrics] = Field(description="Every hour of the range, oldest first (zeros included).")
    totals: HourMetrics


def _hour_view(hour: str, item: dict[str, Any] | None) -> HourMetrics:
    item = item or {}

    def by(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: int(v) for k, v in sorted(item.items()) if k.startswith(prefix) and v}

    return HourMetrics(hour=hour, captures=int(item.get("captures", 0)),
                       duplicates=int(item.get("duplicates", 0)), conflicts=int(item.get("conflicts", 0)),
                       answered=by("answered_"), signatures=by("signature_"), forwards=by("forward_"))


def metrics(inbox_id: str, token: str | None, hours: int) -> InboxMetrics:
    """The last `hours` UTC hours of an inbox's counters (this one included): one Query."""
    _authorised(inbox_id, token)
    last = utcnow().replace(minute=0, second=0, microsecond=0)
    names = [to_iso(last - timedelta(hours=n))[:13] for n in range(hours - 1, -1, -1)]
    found = {i["hour"]: i for i in records.metrics(inbox_id, names[0], names[-1])}
    views = [_hour_view(h, found.get(h)) for h in names]
    totals = HourMetrics(hour="total", captures=0, duplicates=0, conflicts=0, answered={}, signatures={}, forwards={})
    for v in views:
        totals.captures += v.captures
        totals.duplicates += v.duplicates
        totals.conflicts += v.conflicts
        for field in ("answered", "signatures", "forwards"):
            mine = getattr(totals, field)
            for k, n in getattr(v, field).items():
                mine[k] = mine.get(k, 0) + n
    return InboxMetrics(inbox_id=inbox_id, hours=views, totals=totals)
