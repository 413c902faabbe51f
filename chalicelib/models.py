"""Pydantic models at every boundary: request bodies in, resources out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_STEPS = 1000
MAX_MESSAGE_BYTES = 32 * 1024
MAX_PAGE_SIZE = 100

# Resource ids travel in URL paths and key strings: keep them path-safe and bounded.
ResourceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
# User ids come from upstream identity systems (emails, subjects): printable, no whitespace.
UserId = Annotated[str, StringConstraints(pattern=r"^[^\s\x00-\x1f\x7f]{1,128}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]
StepNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS)]

SessionStatus = Literal["active", "completed", "ended", "abandoned"]
StepStatus = Literal["DONE", "ONGOING"]
Sender = Literal["user", "agent"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- manuals -------------------------------------------------------------------------------


class StepIn(Request):
    step_number: StepNumber
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    content: Annotated[str, StringConstraints(max_length=16_000)] = ""


class ManualCreate(Request):
    manual_id: ResourceId
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
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
    message: Annotated[str, StringConstraints(min_length=1)]
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
