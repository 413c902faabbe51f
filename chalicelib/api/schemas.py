"""Shapes only the HTTP API has: query strings (validated like bodies), the end-session body,
typed pages and the answers of analytics, deliveries and health, all documented in the
OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from chalicelib.domain.models import Event, ManualSummary, Message, MessageIn, ProgressOut, Request, SessionOut
from chalicelib.domain.vocabulary import (
    Cursor,
    EndRequest,
    PageLimit,
    ResourceId,
    SessionStatus,
    Timestamp,
    UserId,
    ascii_digits,
)

# ---- query strings: validated like bodies -----------------------------------------------


class Query(BaseModel):
    """A query string. Unknown parameters are ignored (as API Gateway passes them on) and an
    empty value counts as absent; every known one is validated like a body field."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    limit: PageLimit = Field(20, description="Items per page, 1 to 100.")
    cursor: Cursor | None = Field(None, description="The previous page's next_cursor, to read on.")


class ChildPageQuery(PageQuery):
    """A session's events or messages: longer pages by default."""

    limit: PageLimit = Field(50, description="Items per page, 1 to 100.")


class SessionListQuery(PageQuery):
    status: SessionStatus | None = None
    user_id: UserId | None = None
    manual_id: ResourceId | None = None


class DeliveryListQuery(PageQuery):
    status: Literal["failed"] | None = None  # the only status listed across sessions
    endpoint_id: ResourceId | None = None  # only those that failed at this endpoint


class CaptureListQuery(PageQuery):
    method: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,16}$")] | None = None


class PopularQuery(Query):
    limit: PageLimit = 10


class ActivityQuery(Query):
    hours: Annotated[int, Field(ge=1, le=168), BeforeValidator(ascii_digits)] = 24


class RedriveQuery(Query):
    limit: PageLimit = 100
    endpoint_id: ResourceId | None = None  # only this endpoint's dead letters


class SessionPatch(Request):
    status: EndRequest = Field(description="'ended' (finished early) or 'abandoned' (the learner left).")


class MessageWithSession(MessageIn):
    session_id: ResourceId = Field(description="The session the message belongs to.")


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
    occurred_at: Timestamp
    delivery_status: str
    delivery_attempts: list[dict[str, Any]]
    failed_endpoints: list[str]
    deliveries: dict[str, dict[str, Any]]


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_cursor: str | None


class Redelivery(BaseModel):
    event_id: str
    status: Literal["queued"]
    endpoints: list[str]  # where it was queued again


class RedeliverQuery(Query):
    endpoint_id: ResourceId | None = None  # only this endpoint (default: where it failed, else all that take it)


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
