"""Pydantic models at every boundary: request bodies and query strings in, resources out.

Each identifier and text field has ONE definition here, used wherever the value arrives: in a
body, a query string, a path or an API key's binding. A value that one route accepts can then
never be one that another route refuses (a user who can start a session can be listed and
given a key).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter,
    ValidationError, model_validator,
)

MAX_STEPS = 1000
MAX_MESSAGE_BYTES = 32 * 1024
MAX_PAGE_SIZE = 100
MAX_CURSOR_CHARS = 2048

# ---- text: what a character may be -----------------------------------------------------------
# Characters that render as nothing although Unicode files them as letters, symbols or marks
# (Hangul fillers, the blank Braille pattern, variation selectors, the grapheme joiner): in
# an id they make two different values look identical.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
# Zero-width (non-)joiners are format characters that real text needs: inside words of
# Persian and Indic scripts, and in emoji sequences such as 👩‍💻.
_JOINERS = frozenset("\u200c\u200d")
_LINE_BREAKS = frozenset("\t\n\r")


def _invisible(char: str) -> bool:
    return char in _BLANK or any(ord(char) in r for r in _VARIATION_SELECTORS)


def _named(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, '(unnamed)')}"


def _identifier(value: str) -> str:
    """Letters, marks, digits, punctuation and symbols only: no space, control, format
    (U+200B, U+202E, U+00AD, U+FEFF...), private-use, unassigned or invisible character."""
    for char in value:
        if unicodedata.category(char)[0] in "CZ" or _invisible(char):
            raise ValueError(f"must not contain {_named(char)}")
    return value


def _display_text(value: str) -> str:
    """One line that people read: no control, format (but the joiners), private-use,
    unassigned or line-separator character, and at least one visible character."""
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or (category == "Cf" and char not in _JOINERS):
            raise ValueError(f"must not contain {_named(char)}")
    if all(unicodedata.category(c)[0] in "CZ" or _invisible(c) for c in value):
        raise ValueError("must contain a visible character")
    return value


def _long_text(value: str) -> str:
    """Multi-line text (step content, chat messages): no control character but tab and line
    breaks (a NUL or an escape sequence is never content)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in _LINE_BREAKS:
            raise ValueError(f"must not contain {_named(char)}")
    return value


def _ascii_digits(value: object) -> object:
    """Query values are text: only 0-9 make an integer (int() would also take '²', '٣' or
    '５', and pydantic '5_000')."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,9}", value):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


# ---- identifiers and text fields: one definition each --------------------------------------

# Resource ids travel in URL paths and key strings: keep them path-safe and bounded.
RESOURCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
ResourceId = Annotated[str, StringConstraints(pattern=RESOURCE_ID_PATTERN)]
# User ids come from upstream identity systems (emails, subjects, names in any script).
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_identifier)]
InboxId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,64}$")]
CaptureId = Annotated[str, StringConstraints(pattern=r"^req_[0-9a-f]{16,32}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_display_text)]
Name = Title  # names of keys and inboxes: the same rules as titles
StepContent = Annotated[str, StringConstraints(max_length=16_000), AfterValidator(_long_text)]
MessageText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_long_text)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CURSOR_CHARS)]
StepNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS)]
PageLimit = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), BeforeValidator(_ascii_digits)]


@lru_cache(maxsize=None)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def conforms(kind: Any, value: object) -> bool:
    """Whether `value` is a valid `kind` (one of the definitions above)."""
    try:
        _adapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


SessionStatus = Literal["active", "completed", "ended", "abandoned"]
StepStatus = Literal["DONE", "ONGOING"]
Sender = Literal["user", "agent"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- query strings: validated like bodies -----------------------------------------------


class Query(BaseModel):
    """A query string. Unknown parameters are ignored (as API Gateway passes them on) and an
    empty value counts as absent; every known one is validated like a body field."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    limit: PageLimit = 20
    cursor: Cursor | None = None


class ChildPageQuery(PageQuery):
    """A session's events or messages: longer pages by default."""

    limit: PageLimit = 50


class SessionListQuery(PageQuery):
    status: Literal["active", "completed", "ended", "abandoned"] | None = None
    user_id: UserId | None = None
    manual_id: ResourceId | None = None


class DeliveryListQuery(PageQuery):
    status: Literal["failed"] | None = None  # the only status listed across sessions


class CaptureListQuery(PageQuery):
    method: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,16}$")] | None = None


class PopularQuery(Query):
    limit: PageLimit = 10


class ActivityQuery(Query):
    hours: Annotated[int, Field(ge=1, le=168), BeforeValidator(_ascii_digits)] = 24


class RedriveQuery(Query):
    limit: PageLimit = 100


# ---- manuals -------------------------------------------------------------------------------


class StepIn(Request):
    step_number: StepNumber
    title: Title
    content: StepContent = ""


class ManualCreate(Request):
    manual_id: ResourceId
    title: Title
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=MAX_STEPS)]
    # Accepted for compatibility with the seed's format; must agree with the steps given.
    total_steps: Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS)] | None = None

    @model_validator(mode="after")
    def _steps_are_one_to_n(self) -> ManualCreate:
        numbers = sorted(step.step_number for step in self.steps)
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("step_number values must be 1..N with no gaps or duplicates")
        if self.total_steps is not None and self.total_steps != len(self.steps):
            raise ValueError(f"total_steps is {self.total_steps} but {len(self.steps)} steps were given")
        self.steps.sort(key=lambda step: step.step_number)
        return self


class Step(BaseModel):
    step_number: int
    title: str
    content: str


class ManualSummary(BaseModel):
    manual_id: str
    title: str
    total_steps: int
    created_at: str


class Manual(ManualSummary):
    active_sessions: int = 0
    steps: list[Step]


# ---- sessions ------------------------------------------------------------------------------


class SessionCreate(Request):
    session_id: ResourceId | None = None
    user_id: UserId
    manual_id: ResourceId


class SessionPatch(Request):
    status: Literal["ended", "abandoned"]


class Session(BaseModel):
    """A session as stored and as returned (plus the computed `duration_seconds`)."""

    session_id: str
    user_id: str
    manual_id: str
    manual_rev: str
    status: SessionStatus
    current_step: int
    total_steps: int
    completed_steps: list[int]
    started_at: str
    ended_at: str | None = None
    last_activity_at: str
    end_reason: str | None = None
    message_count: int = 0
    messages_user: int = 0
    messages_agent: int = 0
    summary: dict[str, Any] | None = None
    version: int
    event_seq: int


class SessionOut(BaseModel):
    session_id: str
    user_id: str
    manual_id: str
    status: SessionStatus
    current_step: int
    total_steps: int
    completed_steps: list[int]
    started_at: str
    ended_at: str | None
    last_activity_at: str
    duration_seconds: float
    end_reason: str | None
    message_count: int
    summary: dict[str, Any] | None
    version: int


# ---- progress ------------------------------------------------------------------------------


class ProgressIn(Request):
    user_id: UserId
    current_step: StepNumber
    step_status: StepStatus
    idempotency_key: IdempotencyKey | None = None


class NextStep(BaseModel):
    step_number: int
    title: str
    content: str
    total_steps: int


class ProgressOut(BaseModel):
    session: SessionOut
    applied: bool
    out_of_order: bool
    next_step: NextStep | None
    event_id: str


class NextStepOut(BaseModel):
    session_id: str
    is_completed: bool
    total_steps: int
    completed_steps: list[int]
    next_step: NextStep | None


class Event(BaseModel):
    """One accepted change to a session: the audit record and the webhook outbox entry."""

    event_id: str
    event_type: Literal["session_created", "progress_update", "session_ended"]
    session_id: str
    user_id: str
    manual_id: str
    sequence: int
    step: int | None = None
    step_status: StepStatus | None = None
    previous_step: int
    current_step: int
    total_steps: int
    session_status: SessionStatus
    applied: bool = True
    out_of_order: bool = False
    reason: str | None = None
    completed_steps: list[int] = []
    started_at: str
    ended_at: str | None = None
    occurred_at: str
    summary: dict[str, Any] | None = None
    delivery_status: str | None = None
    delivery_attempts: list[dict[str, Any]] = []


# ---- messages ------------------------------------------------------------------------------


class MessageIn(Request):
    user_id: UserId
    message: MessageText
    sender: Sender
    message_id: ResourceId | None = None


class MessageWithSession(MessageIn):
    session_id: ResourceId


class Message(BaseModel):
    message_id: str
    session_id: str
    user_id: str
    sender: Sender
    message: str
    created_at: str


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None


# ---- response shapes documented in the OpenAPI document -----------------------------------


class ErrorBody(BaseModel):
    error: str
    message: str
    fields: list[dict[str, str]] | None = None


class ManualPage(BaseModel):
    items: list[ManualSummary]
    next_cursor: str | None


class SessionPage(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class EventPage(BaseModel):
    items: list[Event]
    next_cursor: str | None


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None


class AlreadyProcessed(BaseModel):
    status: Literal["already_processed"]
    original_result: ProgressOut


class DeliveryView(BaseModel):
    event_id: str
    event_type: str
    session_id: str
    occurred_at: str
    delivery_status: str
    delivery_attempts: list[dict[str, Any]]


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_cursor: str | None


class Redelivery(BaseModel):
    event_id: str
    status: Literal["queued"]


class RedriveResult(BaseModel):
    """One bounded step of a redrive: messages moved now, and still dead-lettered."""

    moved: int
    remaining: int


class SessionCounts(BaseModel):
    total: int
    by_status: dict[str, int]


class Overview(BaseModel):
    sessions: SessionCounts
    manuals: int
    messages: int
    deliveries_failed: int  # webhooks listed by GET /v1/deliveries?status=failed
    completion_rate: float
    average_completion_seconds: float | None
    median_completion_seconds: float | None


class PopularManual(BaseModel):
    manual_id: str
    sessions_started: int
    sessions_completed: int
    completion_rate: float


class PopularManuals(BaseModel):
    items: list[PopularManual]


class ActivityBucket(BaseModel):
    hour: str
    sessions_started: int
    steps_completed: int
    messages: int
    sessions_ended: int


class RecentActivity(BaseModel):
    hours: int
    buckets: list[ActivityBucket]
    totals: dict[str, int]


class Live(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


class HealthSummary(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]
