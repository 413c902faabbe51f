"""Forwarding: each capture of an inbox with destinations (`forward_to`, up to 5 URLs) is
re-sent to each destination, with the captured method, headers (minus hop-by-hop ones and
those masked at capture) and body, each with its own attempt log and retries.

The path, on the webhooks' own rails:
  capture (PutItem, with its destinations frozen on it)
    -> the table's stream -> the feedback function: `outgoing` gives one FIFO message per
       destination, group = (inbox, destination), so one destination's captures leave in
       order and a failing destination holds back only its own group;
    -> the delivery queue -> the delivery function: `handle_batch` sends each message once
       and records the attempt (delivery_policy decides what the answer means, on the same
       retry schedule as webhooks, counted by us, never by SQS's receive count); a retry is
       hidden for its delay; a spent budget goes to the dead-letter queue (so a redrive
       brings it back with a fresh budget).
The attempt log of (capture, destination) is a small item of its own (the capture is never
rewritten: an update is billed on the whole item). Sending goes through the webhooks'
SSRF-guarded transport, lent by the delivery function (`Channel`), as are the queue calls:
this module knows the table and the rules, not SQS or HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.db import inbox as records
from chalicelib.db.table import from_item
from chalicelib.domain import delivery_policy
from chalicelib.domain.clock import to_iso, utcnow

KIND = "inbox_forward"
_PREFIX = '{"kind":"inbox_forward"'
# RFC 9110 7.6.1 hop-by-hop fields, and the framing the sender's client sets itself
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection",
                        "host", "content-length"})
MASKED = "***"
STATUS_OF = {"delivered": "delivered", "gone": "gone", "failed": "failed",
             "retrying": "retrying", "throttled": "retrying"}

log = logging.getLogger(__name__)


def destination_id(url: str) -> str:
    """A destination's stable short id (its group and its log's key): a hash of the URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def forward_headers(headers: dict[str, str]) -> dict[str, str]:
    """The captured headers to send on: hop-by-hop ones (and those the Connection header
    names) left out, and so are the masked ones (their values were never stored)."""
    named = {h.strip().lower() for k, v in headers.items() if k.lower() == "connection" for h in v.split(",")}
    return {k: v for k, v in headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in named and v != MASKED}


def view(url: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """A capture's forwarding to one destination, as the API shows it."""
    if state is None:
        return {"destination": url, "status": "pending", "attempts": []}
    return {"destination": url, "status": state.get("status", "pending"), "attempts": state.get("attempts", [])}


# ---- the feedback function's side: stream records -> messages -----------------------------


@dataclass(frozen=True)
class Outgoing:
    """One forward message to enqueue, and the stream record it came from."""

    sequence_number: str
    body: str
    group: str
    dedup_id: str


def _capture_of(record: dict[str, Any]) -> dict[str, Any] | None:
    if record.get("eventName") != "INSERT":
        return None
    image = record.get("dynamodb", {}).get("NewImage") or {}
    if image.get("type", {}).get("S") != "capture" or "forward_to" not in image:
        return None
    return from_item(image)


def outgoing(records_: list[dict[str, Any]]) -> list[Outgoing]:
    """One message per destination of every capture the batch inserted, in stream order."""
    found: list[Outgoing] = []
    for record in records_:
        try:
            capture = _capture_of(record)
            if capture is None:
                continue
            sequence = record.get("dynamodb", {}).get("SequenceNumber", "")
            for destination in capture["forward_to"]:
                body = json.dumps({"kind": KIND, "inbox_id": capture["inbox_id"],
                                   "request_id": capture["request_id"], "destination": destination["id"],
                                   "url": destination["url"]}, separators=(",", ":"))
                found.append(Outgoing(sequence, body, f"inbox:{capture['inbox_id']}:{destination['id']}",
                                      f"{capture['request_id']}:{destination['id']}"))
        except (KeyError, TypeError, ValueError):
            log.exception("skipping a malformed capture record")
    return found


SEND_BATCH = 10


def enqueue(records_: list[dict[str, Any]], send_batch: Callable[[list[Outgoing]], set[str]]) -> str | None:
    """Enqueue the batch's forward messages, ten per call, at most one per group per call
    (so a partly failed call cannot store a group's later message without its earlier one).
    `send_batch` returns the dedup ids refused. Returns the sequence number of the earliest
    record not sent (the stream resumes from it; what was sent after it is sent again with
    the same dedup id, which SQS drops), or None when all were sent."""
    pending = outgoing(records_)
    while pending:
        batch: list[Outgoing] = []
        groups: set[str] = set()
        for item in pending:
            if item.group not in groups:
                batch.append(item)
                groups.add(item.group)
                if len(batch) == SEND_BATCH:
                    break
        try:
            refused = send_batch(batch)
        except Exception:
            log.exception("could not enqueue inbox forwards")
            refused = {item.dedup_id for item in batch}
        sent = {id(item) for item in batch if item.dedup_id not in refused}
        pending = [item for item in pending if id(item) not in sent]
        if refused:
            return pending[0].sequence_number
    return None


def is_forward(body: str) -> bool:
    """Whether a delivery-queue message is a forward (its body says so in its first bytes)."""
    return body.startswith(_PREFIX)


# ---- the delivery function's side: messages -> requests -----------------------------------


class Result(Protocol):
    """One attempt's outcome (chalicelib/pipeline/webhooks.Attempt)."""

    @property
    def status_code(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def latency_ms(self) -> int: ...
    @property
    def retry_after(self) -> float | None: ...


@dataclass(frozen=True)
class Channel:
    """What the delivery function lends: the guarded sender, the queue calls, the policy."""

    send: Callable[[str, str, bytes, dict[str, str]], Result]  # url, method, body, headers
    hide: Callable[[list[tuple[str, int]]], object]  # (receipt handle, seconds) each
    dead_letter: Callable[[dict[str, Any], int], None]  # the SQS record, attempts made
    round_of: Callable[[dict[str, Any]], str]
    schedule: tuple[int, ...]


@dataclass(frozen=True)
class Forward:
    message_id: str
    receipt_handle: str
    group: str
    round: str
    inbox_id: str
    request_id: str
    destination: str
    url: str
    record: dict[str, Any]

    @property
    def capture_key(self) -> tuple[str, str]:
        key = records.capture_key(self.inbox_id, self.request_id)
        return key["PK"], key["SK"]

    @property
    def log_key(self) -> tuple[str, str]:
        key = records.forward_key(self.inbox_id, self.request_id, self.destination)
        return key["PK"], key["SK"]


def _parse(record: dict[str, Any], channel: Channel) -> Forward | None:
    try:
        body = json.loads(record["body"])
        return Forward(record["messageId"], record["receiptHandle"],
                       record.get("attributes", {}).get("MessageGroupId", ""), channel.round_of(record),
                       str(body["inbox_id"]), str(body["request_id"]), str(body["destination"]),
                       str(body["url"]), record)
    except (KeyError, TypeError, ValueError):
        return None


def _body(capture: dict[str, Any]) -> bytes:
    text = records.capture_body(capture["inbox_id"], capture["request_id"]) if capture.get("body_chunks") \
        else capture.get("body") or ""
    return base64.b64decode(text) if capture.get("body_encoding") == "base64" else text.encode()


def attempt(forward: Forward, capture: dict[str, Any], state: dict[str, Any] | None,
            channel: Channel) -> delivery_policy.Decision | None:
    """One attempt of one forward; None when there is nothing to send (settled already in
    this round)."""
    if state and state.get("delivery_round") == forward.round and state.get("status") in ("delivered", "gone"):
        return None
    n = delivery_policy.attempt_number(state.get("delivery_round") if state else None,
                                       int(state.get("attempt_count", 0)) if state else 0, forward.round)
    total = delivery_policy.max_attempts(channel.schedule)
    if n > total:  # recorded as failed, but the process stopped before dead-lettering it
        channel.dead_letter(forward.record, total)
        return delivery_policy.Decision("failed", total, total)
    result = channel.send(forward.url, capture["method"], _body(capture), forward_headers(capture["headers"]))
    decision = delivery_policy.decide(channel.schedule, n, result.status_code, result.retry_after)
    now = to_iso(utcnow())
    entry: dict[str, Any] = {"attempt": decision.attempt, "of": decision.of, "round": forward.round,
                             "outcome": decision.outcome, "status_code": result.status_code,
                             "error": result.error, "latency_ms": result.latency_ms, "at": now}
    if not decision.settled:
        entry["retry_in_seconds"] = decision.delay
    records.record_forward(forward.inbox_id, forward.request_id, forward.destination, url=forward.url,
                           status=STATUS_OF[decision.outcome], round_id=forward.round,
                           attempt=decision.attempt, entry=entry, now=now,
                           expires_at=int(capture.get("expires_at", 0)))
    try:
        records.count(forward.inbox_id, now[:13], {f"forward_{result.status_code or 'error'}": 1}, time.time())
    except Exception:
        log.warning("forward not counted in the inbox's metrics", exc_info=True)
    level = logging.INFO if decision.settled and decision.outcome == "delivered" else logging.WARNING
    log.log(level, "inbox forward %s: attempt %d/%d %s (%s)", forward.request_id, decision.attempt,
            decision.of, decision.outcome, result.status_code or result.error,
            extra={"inbox_id": forward.inbox_id, "destination": forward.destination})
    if decision.outcome == "failed":
        channel.dead_letter(forward.record, decision.attempt)
    return decision


def handle_batch(batch: list[dict[str, Any]], channel: Channel) -> list[str]:
    """Forward messages of one delivery batch, in order; returns the message ids to report in
    batchItemFailures. One BatchGetItem reads the captures and their logs; a forward still
    being retried holds back the rest of its group (its destination) in this batch; other
    destinations keep flowing."""
    forwards = [(_parse(r, channel), r) for r in batch]
    keys = []
    for forward, _ in forwards:
        if forward is not None:
            keys += [records.capture_key(forward.inbox_id, forward.request_id),
                     records.forward_key(forward.inbox_id, forward.request_id, forward.destination)]
    found = records.items(keys)
    failed: list[str] = []
    blocked: set[str] = set()
    hidden: list[tuple[str, int]] = []
    for forward, record in forwards:
        if forward is None:
            log.error("undeliverable forward message dead-lettered: %s", record.get("messageId"))
            channel.dead_letter(record, 0)
            continue
        if forward.group in blocked:
            hidden.append((forward.receipt_handle, 0))
            failed.append(forward.message_id)
            continue
        capture = found.get(forward.capture_key)
        if capture is None or capture.get("expires_at", 0) <= time.time():
            log.info("forward dropped: its capture is gone (expired or inbox deleted)")
            continue
        try:
            decision = attempt(forward, capture, found.get(forward.log_key), channel)
        except Exception:
            log.exception("forward of a capture failed unexpectedly")
            blocked.add(forward.group)
            failed.append(forward.message_id)
            continue
        if decision is not None and not decision.settled:
            blocked.add(forward.group)
            failed.append(forward.message_id)
            hidden.append((forward.receipt_handle, decision.delay))
    if hidden:
        channel.hide(hidden)
    return failed
