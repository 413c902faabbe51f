"""Shapes only the HTTP API has: query strings (validated like bodies), the end-session body,
typed pages and the answers of analytics, deliveries and health, all documented in the
OpenAPI document."""

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints

from chalicelib.domain import errors
from chalicelib.domain.models import Event, ManualSummary, Message, MessageIn, Model, ProgressOut, Request, SessionOut
from chalicelib.domain.vocabulary import (
    Cursor,
    EndRequest,
    Moment,
    PageLimit,
    ResourceId,
    SessionStatus,
    Timestamp,
    UserId,
    ascii_digits,
)

# ---- query strings: validated like bodies -----------------------------------------------


class Query(Model):
    """A query string. Unknown parameters are ignored (as API Gateway passes them on) and an
    empty value counts as absent; every known one is validated like a body field."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    limit: PageLimit = Field(20, description="Items per page, 1 to 100.")
    cursor: Cursor | None = Field(None, description="The previous page's next_cursor, to read on.")


class ChildPageQuery(PageQuery):
    """A session's events or messages: longer pages by default."""

    limit: PageLimit = Field(50, description="Items per page, 1 to 100.")


Since = Moment



class EventListQuery(ChildPageQuery):
    after_sequence: Annotated[int, Field(ge=0), BeforeValidator(ascii_digits)] | None = Field(
        None, description="Only events whose sequence number is greater (a live view's cheap "
                          "re-read: the events it has not seen, or not seen settled).")


class MessageListQuery(ChildPageQuery):
    since: Since | None = Field(
        None, description="Only messages created at or after this moment (a live view's cheap re-read).")


class SessionListQuery(PageQuery):
    status: SessionStatus | None = Field(None, description="Only sessions in this status.")
    user_id: UserId | None = Field(None, description="Only this learner's sessions.")
    manual_id: ResourceId | None = Field(None, description="Only sessions of this manual.")


class DeliveryListQuery(PageQuery):
    status: Literal["failed"] | None = Field(None, description=(  # the only one listed across sessions
        "`failed`: webhooks that spent every attempt (the only status listed)."))
    endpoint_id: ResourceId | None = Field(None, description="Only the webhooks that failed at this endpoint.")


class CaptureListQuery(PageQuery):
    method: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,16}$")] | None = Field(
        None, description="Only requests of this HTTP method (any case).")


class PopularQuery(Query):
    limit: PageLimit = Field(10, description="How many manuals, 1 to 100.")


class ActivityQuery(Query):
    hours: Annotated[int, Field(ge=1, le=168), BeforeValidator(ascii_digits)] = Field(
        24, description="How many hours back from now, 1 to 168 (a week).")


class RedriveQuery(Query):
    limit: PageLimit = Field(100, description="At most this many webhooks moved by this call, 1 to 100.")
    endpoint_id: ResourceId | None = Field(None, description="Only this endpoint's dead letters.")


class SessionPatch(Request):
    status: EndRequest = Field(description="'ended' (finished early) or 'abandoned' (the learner left).")


class MessageWithSession(MessageIn):
    session_id: ResourceId = Field(description="The session the message belongs to.")


# ---- response shapes documented in the OpenAPI document -----------------------------------


class FieldError(Model):
    field: str = Field(description="The offending field (dotted path: `steps.0.title`), query "
                                   "parameter or path id; `body` for the whole body.")
    message: str = Field(description="What is wrong with it.")


def _error_codes(schema: dict[str, Any]) -> None:
    schema["enum"] = list(errors.codes())  # every code the API answers (domain/errors.py)


class ErrorBody(Model):
    """Every error: a stable machine code, a message, and details for some codes (`fields`
    for validation_error; `limit_bytes`, `session_status`, `supported`... as the code says)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="The machine code: branch on it, never on the message.",
                       json_schema_extra=_error_codes)
    message: str = Field(description="What went wrong and how to fix it, in English.")
    fields: list[FieldError] | None = Field(None, description="validation_error: each offending field.")


class ManualPage(Model):
    items: list[ManualSummary]
    next_cursor: str | None


class SessionPage(Model):
    items: list[SessionOut]
    next_cursor: str | None


class EventPage(Model):
    items: list[Event]
    next_cursor: str | None


class MessagePage(Model):
    items: list[Message]
    next_cursor: str | None


class AlreadyProcessed(Model):
    status: Literal["already_processed"]
    original_result: ProgressOut


class DeliveryView(Model):
    event_id: str
    event_type: str
    session_id: str
    occurred_at: Timestamp
    delivery_status: str
    delivery_attempts: list[dict[str, Any]]
    failed_endpoints: list[str]
    deliveries: dict[str, dict[str, Any]]


class DeliveryPage(Model):
    items: list[DeliveryView]
    next_cursor: str | None


class Redelivery(Model):
    event_id: str
    status: Literal["queued"]
    endpoints: list[str]  # where it was queued again


class RedeliverQuery(Query):
    endpoint_id: ResourceId | None = Field(None, description=(
        "Only this endpoint (default: where it failed, else every endpoint that takes it)."))


class SessionCounts(Model):
    total: int
    by_status: dict[str, int]


class Overview(Model):
    sessions: SessionCounts
    manuals: int
    messages: int
    deliveries_failed: int  # webhooks listed by GET /v1/deliveries?status=failed
    completion_rate: float
    average_completion_seconds: float | None
    median_completion_seconds: float | None


class PopularManual(Model):
    manual_id: str
    sessions_started: int
    sessions_completed: int
    completion_rate: float


class PopularManuals(Model):
    items: list[PopularManual]


class ActivityBucket(Model):
    hour: str
    sessions_started: int
    steps_completed: int
    messages: int
    sessions_ended: int


class RecentActivity(Model):
    hours: int
    buckets: list[ActivityBucket]
    totals: dict[str, int]


class Live(Model):
    status: Literal["ok"]


class Ready(Model):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


class HealthSummary(Model):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]
