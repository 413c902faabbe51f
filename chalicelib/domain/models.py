"""The domain's models: the bodies the services take, and the resources they return.

Field types come from chalicelib/domain/vocabulary.py (one definition each); the shapes that
only the HTTP API needs (query strings, typed pages, analytics and health answers) are in
chalicelib/api/schemas.py.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from chalicelib.domain import stepset
from chalicelib.domain.vocabulary import (
    INTEGRAL,
    MAX_STEPS,
    IdempotencyKey,
    MessageText,
    ResourceId,
    Sender,
    SessionStatus,
    StepContent,
    StepNumber,
    StepStatus,
    Timestamp,
    Title,
    UserId,
)

# completed_steps as read from an item: stored as a bitmap (or, written before, a list)
StoredSteps = Annotated[list[int], BeforeValidator(stepset.decode)]

class Model(BaseModel):
    """The base of every model: its validator and serializer are built on first use, not when
    the class is defined, so a cold start builds only the models its request uses (building
    all of them at import was most of the import time of the modules that define them)."""

    model_config = ConfigDict(defer_build=True)


class Request(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- manuals -------------------------------------------------------------------------------


class StepIn(Request):
    step_number: StepNumber
    title: Title
    content: StepContent = ""


class ManualCreate(Request):
    model_config = ConfigDict(json_schema_extra={"x-rules": [
        "`steps` holds step_number 1..N, each once, in any order (N = the number of steps).",
        "`total_steps`, when given, equals the number of steps."]})
    manual_id: ResourceId
    title: Title
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=MAX_STEPS)]
    # Accepted for compatibility with the seed's format; must agree with the steps given.
    total_steps: Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS), INTEGRAL] | None = None

    @model_validator(mode="after")
    def _steps_are_one_to_n(self) -> "ManualCreate":
        numbers = sorted(step.step_number for step in self.steps)
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("step_number values must be 1..N with no gaps or duplicates")
        if self.total_steps is not None and self.total_steps != len(self.steps):
            raise ValueError(f"total_steps is {self.total_steps} but {len(self.steps)} steps were given")
        self.steps.sort(key=lambda step: step.step_number)
        return self


class Step(Model):
    step_number: int
    title: str
    content: str


class ManualSummary(Model):
    manual_id: str
    title: str
    total_steps: int
    created_at: Timestamp


class Manual(ManualSummary):
    active_sessions: int = 0
    steps: list[Step]


# ---- sessions ------------------------------------------------------------------------------


class SessionCreate(Request):
    session_id: ResourceId | None = Field(None, description=(
        "Optional, chosen by the caller (generated otherwise): the same id, user and manual "
        "again is a safe retry that returns the existing session."))
    user_id: UserId = Field(description="The learner's id, as the caller's identity system knows it.")
    manual_id: ResourceId = Field(description="The manual the session follows.")


class Session(Model):
    """A session as stored and as returned (plus the computed `duration_seconds`)."""

    session_id: str
    user_id: str
    manual_id: str
    manual_rev: str
    status: SessionStatus
    current_step: int
    total_steps: int
    completed_steps: StoredSteps
    started_at: Timestamp
    ended_at: Timestamp | None = None
    last_activity_at: Timestamp
    end_reason: str | None = None
    message_count: int = 0
    messages_user: int = 0
    messages_agent: int = 0
    summary: dict[str, Any] | None = None
    version: int
    event_seq: int


class SessionOut(Model):
    session_id: str
    user_id: str
    manual_id: str
    status: SessionStatus
    current_step: int
    total_steps: int
    completed_steps: list[int]
    started_at: Timestamp
    ended_at: Timestamp | None
    last_activity_at: Timestamp
    duration_seconds: float
    end_reason: str | None
    message_count: int
    summary: dict[str, Any] | None
    version: int


# ---- progress ------------------------------------------------------------------------------


class ProgressIn(Request):
    user_id: UserId = Field(description="The session's user (another user's id is refused: user_mismatch).")
    current_step: StepNumber = Field(description="The step reported on, 1..total_steps of the session's manual.")
    step_status: StepStatus = Field(description="DONE: the step is completed. ONGOING: the learner is working on it.")
    idempotency_key: IdempotencyKey | None = Field(None, description=(
        "Optional, unique per report: a retry with the same key and payload answers the first "
        "result and changes nothing (kept 24 h per session)."))


class NextStep(Model):
    step_number: int
    title: str
    content: str
    total_steps: int


class ProgressOut(Model):
    session: SessionOut
    applied: bool
    out_of_order: bool
    next_step: NextStep | None
    event_id: str


class NextStepOut(Model):
    session_id: str
    is_completed: bool
    total_steps: int
    completed_steps: list[int]
    next_step: NextStep | None


class Event(Model):
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
    completed_steps: StoredSteps = []
    started_at: Timestamp
    ended_at: Timestamp | None = None
    occurred_at: Timestamp
    summary: dict[str, Any] | None = None
    delivery_status: str | None = None  # sums up: `failed` while any endpoint failed it, else the latest
    delivery_attempts: list[dict[str, Any]] = []  # every endpoint's attempts, each naming its endpoint_id
    deliveries: dict[str, dict[str, Any]] = {}  # per webhook endpoint: status, round, attempt_count, at


# ---- messages ------------------------------------------------------------------------------


class MessageIn(Request):
    user_id: UserId = Field(description="The session's user (another user's id is refused: user_mismatch).")
    message: MessageText = Field(description="The message text (up to 32 KB of UTF-8).")
    sender: Sender = Field(description="Who wrote it: 'user' (the learner) or 'agent' (the tutor).")
    message_id: ResourceId | None = Field(None, description=(
        "Optional, chosen by the caller (generated otherwise): the same id with the same content "
        "again is a safe retry; with other content it is refused (idempotency_key_reused)."))


class Message(Model):
    message_id: str
    session_id: str
    user_id: str
    sender: Sender
    message: str
    created_at: Timestamp


class Page(Model):
    items: list[Any]
    next_cursor: str | None


class RedriveResult(Model):
    """One bounded step of a redrive: messages moved now, and still dead-lettered."""

    moved: int
    remaining: int
    dropped: int = Field(0, description="Dead letters of deleted webhook endpoints, deleted instead of moved.")
