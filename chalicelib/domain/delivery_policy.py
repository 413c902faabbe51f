"""Webhook delivery policy as pure functions (no I/O): what one attempt's result means, when
the next attempt is due, when the budget is spent, and how far SQS's own receive limit must
stay behind that budget.

Receiver semantics follow the Standard Webhooks spec: a 2xx is delivered; 410 Gone means stop
(the receiver no longer wants this); 429, 502, 503 and 504 mean the receiver is throttling
(its `Retry-After` is honoured: never retried sooner); any other answer, a timeout, a reset
or a TLS failure is a failed attempt, retried on the schedule. Every attempt, throttled or
not, spends one unit of the budget, so a receiver that answers 503 forever still ends in
the failed list instead of being retried for ever.

The budget is counted by the application (on the event item), never by SQS: a message that
waits behind its session's failed head is received with every retry of that head, and SQS's
ApproximateReceiveCount counts those receives too (see DESIGN.md). SQS's maxReceiveCount is
only a safety net for invocations that crash before recording anything, and it is derived
from the same schedule by `safety_net_receive_count`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

# Most messages of one FIFO group a delivery invocation receives at once (Lambda's FIFO batch
# limit; the local runner uses the same).
RECEIVE_BATCH = 10
MAX_DELAY_SECONDS = 43_200  # SQS's visibility timeout ceiling: 12 hours
MAX_RECEIVE_COUNT = 1000  # SQS's ceiling for a redrive policy's maxReceiveCount
THROTTLING_STATUSES = frozenset({429, 502, 503, 504})

Kind = Literal["delivered", "gone", "throttled", "failed"]
Outcome = Literal["delivered", "gone", "retrying", "throttled", "failed"]


def classify(status_code: int | None) -> Kind:
    """What the receiver's answer means (None: no answer at all: timeout, reset, refused)."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    if status_code in THROTTLING_STATUSES:
        return "throttled"
    return "failed"


def max_attempts(schedule: tuple[int, ...]) -> int:
    """Attempts in all: the first, plus one after each delay of the schedule."""
    return len(schedule) + 1


def safety_net_receive_count(schedule: tuple[int, ...], batch: int = RECEIVE_BATCH) -> int:
    """maxReceiveCount for the delivery queue, out of reach of a healthy pipeline.

    A message is received once per attempt of its own and once per attempt of each message
    ahead of it in the same batch (held back behind a failing head): at most
    `batch x max_attempts` receives. One more batch of margin on top; only an invocation that
    keeps crashing before it can record an attempt gets there."""
    return min(MAX_RECEIVE_COUNT, batch * max_attempts(schedule) + batch)


class Decision(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    """What to do after attempt `attempt` of `of`."""

    outcome: Outcome
    attempt: int
    of: int
    delay: int = 0  # seconds before the next attempt (retrying, throttled)

    @property
    def settled(self) -> bool:
        """No further attempt: the message leaves the delivery queue."""
        return self.outcome in ("delivered", "gone", "failed")


def decide(schedule: tuple[int, ...], attempt: int, status_code: int | None,
           retry_after: float | None = None) -> Decision:
    """The decision after attempt number `attempt` (1-based, counted by us) answered
    `status_code` (None: no answer) and maybe `Retry-After` seconds."""
    total = max_attempts(schedule)
    kind = classify(status_code)
    if kind in ("delivered", "gone"):
        return Decision(kind, attempt, total)
    if attempt >= total:
        return Decision("failed", attempt, total)
    delay = schedule[attempt - 1]
    if kind == "throttled":
        if retry_after is not None:  # honoured: not sooner than asked, nor than scheduled
            delay = max(delay, int(retry_after + 0.999))
        return Decision("throttled", attempt, total, min(delay, MAX_DELAY_SECONDS))
    return Decision("retrying", attempt, total, min(delay, MAX_DELAY_SECONDS))


def attempt_number(stored_round: str | None, stored_count: int, message_round: str) -> int:
    """The number of the attempt about to be made: the count stored on the event for the
    message's delivery round, plus one. A redelivered or redriven message starts a new round
    (a fresh budget); its older attempts stay in the event's log."""
    return (stored_count if stored_round == message_round else 0) + 1
