"""The MCP tools: a curated set for a tutor agent, not one per route.

Each tool validates its arguments with the REST route's own model (the REST field names, with
`session_id` / `manual_id` as arguments where REST has them in the path), needs the REST
route's scope, narrows a key bound to a user exactly as the route does, and calls the same
service function, so a tool call costs the DynamoDB round trips of its route and no more.
Its answer is a pydantic model (the route's answer, sometimes with one flag more), which is
also the tool's `outputSchema`, and a short sentence for the model to read.
"""

from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import observability
from chalicelib.api import auth
from chalicelib.api.schemas import ChildPageQuery, ManualPage, MessagePage, MessageWithSession, PageQuery, SessionPatch
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.models import (
    Manual,
    Message,
    NextStepOut,
    ProgressIn,
    ProgressOut,
    Request,
    SessionCreate,
    SessionOut,
)
from chalicelib.domain.vocabulary import ResourceId
from chalicelib.services import manuals, messages, progress, sessions
from chalicelib.services.keys import Principal

SESSION_ID = "The session's id (as start_session returned it)."


# ---- arguments: the REST models, with the path's ids as arguments ---------------------------


class ListManualsArgs(PageQuery):
    model_config = ConfigDict(extra="forbid")  # a query string ignores unknown names; a tool does not


class GetManualArgs(Request):
    manual_id: ResourceId = Field(description="The manual's id.")


class SessionArgs(Request):
    session_id: ResourceId = Field(description=SESSION_ID)


class RecordMessageArgs(MessageWithSession):
    idempotency_key: ResourceId | None = Field(None, description=(
        "Optional: makes a retry safe. Used as the message_id when none is given (the same "
        "rules: 1-128 letters, digits, '_', '.', ':' or '-')."))


class ReportProgressArgs(ProgressIn):
    session_id: ResourceId = Field(description=SESSION_ID)


class ConversationArgs(ChildPageQuery):
    model_config = ConfigDict(extra="forbid")
    session_id: ResourceId = Field(description=SESSION_ID)


class EndSessionArgs(SessionPatch):
    session_id: ResourceId = Field(description=SESSION_ID)


# ---- answers: the REST answers (plus what REST says with a status code or header) -----------


class StartedSession(SessionOut):
    created: bool = Field(description="False when this session_id already existed with the same "
                                      "user and manual: the existing session, unchanged.")


class RecordedMessage(Message):
    replayed: bool = Field(description="True when this message_id was already stored with the same "
                                       "content: the stored message, nothing changed.")


class ProgressReport(ProgressOut):
    replayed: bool = Field(description="True when this idempotency_key was already processed with "
                                       "the same report: the first answer, nothing changed.")


# ---- the tools ---------------------------------------------------------------------------


class Tool(NamedTuple):  # not a frozen dataclass: cheaper to define (cold start)
    name: str
    title: str
    description: str
    arguments: type[BaseModel]
    output: type[BaseModel]
    scope: str  # the REST route's scope: read, or agent
    read_only: bool
    destructive: bool
    idempotent: bool
    run: Callable[[Principal | None, Any], tuple[BaseModel, str]]

    def definition(self) -> dict[str, Any]:
        """The tool as tools/list shows it."""
        return {
            "name": self.name, "title": self.title,
            "description": f"{self.description}\n\nNeeds an API key with scope '{self.scope}' (or wider).",
            "inputSchema": _schema(self.arguments, "validation"),
            "outputSchema": _schema(self.output, "serialization"),
            # openWorldHint false: the tools act on this service's own data only
            "annotations": {"title": self.title, "readOnlyHint": self.read_only,
                            "destructiveHint": self.destructive, "idempotentHint": self.idempotent,
                            "openWorldHint": False},
        }


@cache
def _schema(model: type[BaseModel], mode: str) -> dict[str, Any]:
    """The model's JSON Schema; an input schema also carries a whole example of the arguments
    (chalicelib/api/examples.py, validated by the model), the one the OpenAPI document shows."""
    schema = model.model_json_schema(mode="validation" if mode == "validation" else "serialization")
    if mode == "validation":
        from chalicelib.api.examples import EXAMPLES  # only when tools/list is answered

        example = EXAMPLES.get(model.__name__)
        if example is not None:
            model.model_validate(example)
            schema["examples"] = [example]
    return schema


def _check_owner(principal: Principal | None, session_id: str) -> None:
    """As the REST routes' check_owner: a bound key reads the session once to see whose it is."""
    if principal is not None and principal.user_id:
        auth.check_user(principal, sessions.get_session(session_id).user_id)


def _more(next_cursor: str | None) -> str:
    return f" More: call again with cursor {next_cursor!r}." if next_cursor else ""


def _where(session: SessionOut) -> str:
    if session.status == "active":
        return (f"active, on step {session.current_step} of {session.total_steps} "
                f"({len(session.completed_steps)} completed)")
    return f"{session.status} ({len(session.completed_steps)} of {session.total_steps} steps completed)"


def list_manuals(principal: Principal | None, args: ListManualsArgs) -> tuple[BaseModel, str]:
    page = ManualPage.model_validate(manuals.list_manuals(args.limit, args.cursor).model_dump(mode="json"))
    return page, f"{len(page.items)} manual(s).{_more(page.next_cursor)}"


def get_manual(principal: Principal | None, args: GetManualArgs) -> tuple[BaseModel, str]:
    manual = manuals.get_manual(args.manual_id)
    return manual, f"Manual {manual.manual_id} '{manual.title}': {manual.total_steps} steps."


def start_session(principal: Principal | None, args: SessionCreate) -> tuple[BaseModel, str]:
    auth.check_user(principal, args.user_id)
    session, created = sessions.create_session(args)
    started = StartedSession(**session.model_dump(), created=created)
    what = "started" if created else "already existed with this user and manual (returned unchanged)"
    return started, f"Session {session.session_id} {what}: {_where(session)}."


def get_session(principal: Principal | None, args: SessionArgs) -> tuple[BaseModel, str]:
    session = sessions.get_session(args.session_id)
    auth.check_user(principal, session.user_id)
    return session, f"Session {session.session_id} is {_where(session)}."


def record_message(principal: Principal | None, args: RecordMessageArgs) -> tuple[BaseModel, str]:
    # the session must be args.user_id's (checked in the write)
    auth.check_user(principal, args.user_id)
    if args.idempotency_key and args.message_id not in (None, args.idempotency_key):
        raise ValidationFailed("idempotency_key and message_id differ.",
                               fields=[{"field": "idempotency_key", "message": "differs from message_id"}])
    body = MessageWithSession(**args.model_dump(exclude={"idempotency_key"}))
    if args.idempotency_key:
        body = body.model_copy(update={"message_id": args.idempotency_key})
    message, stored = messages.append_message(args.session_id, body)
    what = "stored" if stored else "was already stored (same message_id): nothing changed"
    return RecordedMessage(**message.model_dump(), replayed=not stored), f"Message {message.message_id} {what}."


def report_progress(principal: Principal | None, args: ReportProgressArgs) -> tuple[BaseModel, str]:
    session_id = args.session_id
    body = ProgressIn(**args.model_dump(exclude={"session_id"}))
    with observability.rejections_counted(observability.PROGRESS_REJECTED, session_id=session_id):
        # the session must be body.user_id's (checked in the write)
        auth.check_user(principal, body.user_id)
        try:
            result = progress.report_progress(session_id, body)
        except progress.Replay as replay:
            observability.progress_outcome("replayed", session_id=session_id, step=body.current_step)
            first = ProgressReport(**replay.original, replayed=True)
            return first, ("Already processed (same idempotency_key and report): this is the first "
                           "answer; nothing changed.")
    observability.progress_outcome("accepted", session_id=session_id, step=body.current_step,
                                   step_status=body.step_status, event_id=result.event_id,
                                   applied=result.applied)
    text = f"{body.step_status} on step {body.current_step} recorded"
    if result.out_of_order:
        text += " (out of order: behind the current step, applied to completed_steps only)"
    elif not result.applied:
        text += " (nothing changed but the activity time)"
    if result.session.status == "completed":
        text += ". The session is completed."
    elif result.next_step is not None:
        text += f". Next: step {result.next_step.step_number} '{result.next_step.title}'."
    return ProgressReport(**result.model_dump(), replayed=False), text


def get_next_step(principal: Principal | None, args: SessionArgs) -> tuple[BaseModel, str]:
    _check_owner(principal, args.session_id)
    step = sessions.get_next_step(args.session_id)
    if step.is_completed:
        return step, f"Session {args.session_id} is completed: no step left."
    if step.next_step is None:
        return step, f"Session {args.session_id} has ended: no next step."
    return step, (f"Next: step {step.next_step.step_number} of {step.total_steps}, "
                  f"'{step.next_step.title}'.")


def get_conversation(principal: Principal | None, args: ConversationArgs) -> tuple[BaseModel, str]:
    _check_owner(principal, args.session_id)
    page = MessagePage.model_validate(
        messages.list_messages(args.session_id, args.limit, args.cursor).model_dump(mode="json"))
    return page, f"{len(page.items)} message(s), oldest first.{_more(page.next_cursor)}"


def end_session(principal: Principal | None, args: EndSessionArgs) -> tuple[BaseModel, str]:
    _check_owner(principal, args.session_id)
    session = sessions.end_session(args.session_id, args.status)
    return session, f"Session {session.session_id} is now {session.status}."


IDEMPOTENCY_RULES = (
    "Retries: pass an idempotency key to make a retry safe; the same key with the same "
    "arguments answers the first result with replayed: true and changes nothing; the same key "
    "with other arguments is refused (idempotency_key_reused).")

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    Tool("list_manuals", "List manuals",
         "List the instruction manuals a session can follow (id, title, number of steps), by id. "
         "Paginated: pass the answer's next_cursor as cursor to read on while it is not null.",
         ListManualsArgs, ManualPage, "read", read_only=True, destructive=False, idempotent=True,
         run=list_manuals),
    Tool("get_manual", "Read a manual",
         "Read one manual with all its steps (step_number 1..total_steps, title, content).",
         GetManualArgs, Manual, "read", read_only=True, destructive=False, idempotent=True,
         run=get_manual),
    Tool("start_session", "Start a session",
         "Start a learner's session on a manual, at step 1. Give a session_id of your own to make "
         "a retry safe: the same session_id, user_id and manual_id again returns the existing "
         "session with created: false; the same session_id with another user or manual is "
         "refused (session_exists). Without session_id every call starts a new session.",
         SessionCreate, StartedSession, "agent", read_only=False, destructive=False, idempotent=False,
         run=start_session),
    Tool("get_session", "Read a session",
         "Read a session: status (active, completed, ended, abandoned), current_step, "
         "total_steps, completed_steps, timestamps, duration_seconds, message_count, and the "
         "summary once it has ended.",
         SessionArgs, SessionOut, "read", read_only=True, destructive=False, idempotent=True,
         run=get_session),
    Tool("record_message", "Record a chat message",
         "Store one chat message of the session's conversation: sender 'user' (the learner) or "
         "'agent' (you); at most 32 KB. user_id must be the session's user. Give a message_id "
         "(or idempotency_key) to make a retry safe: the same id with the same content returns "
         "the stored message with replayed: true; with other content it is refused "
         "(idempotency_key_reused). Without either, every call stores a new message.",
         RecordMessageArgs, RecordedMessage, "agent", read_only=False, destructive=False,
         idempotent=False, run=record_message),
    Tool("report_progress", "Report progress on a step",
         "Report the learner's progress on one step of the session's manual.\n"
         "- step_status DONE on step k marks k completed and moves current_step past it (and past "
         "later steps already done). DONE on the last step (total_steps) completes the session "
         "(status completed), whichever earlier steps were reported.\n"
         "- ONGOING on step k records activity and moves current_step up to k if k is ahead.\n"
         "- current_step never moves back: a report for a step behind it is accepted, marked "
         "out_of_order: true, and only adds the step to completed_steps.\n"
         "- Steps are 1..total_steps (beyond: invalid_step); an ended or completed session "
         "refuses reports (session_ended); user_id must be the session's user (user_mismatch).\n"
         "- applied is false when nothing but the activity time changed (e.g. DONE again on a "
         "step already done).\n"
         f"{IDEMPOTENCY_RULES} Keys are printable ASCII (1-255 characters), kept 24 h per "
         "session. Without a key a repeated report is recorded again.\n"
         "The answer: the updated session, applied, out_of_order, next_step (number, title, "
         "content; null once completed) and the event_id recorded.",
         ReportProgressArgs, ProgressReport, "agent", read_only=False, destructive=False,
         idempotent=False, run=report_progress),
    Tool("get_next_step", "The next step",
         "The step the learner should do next (number, title, content), or is_completed: true "
         "once every step is done; next_step is null once the session has ended.",
         SessionArgs, NextStepOut, "read", read_only=True, destructive=False, idempotent=True,
         run=get_next_step),
    Tool("get_conversation", "Read the conversation",
         "The session's chat messages, oldest first. Paginated: pass the answer's next_cursor as "
         "cursor to read on while it is not null.",
         ConversationArgs, MessagePage, "read", read_only=True, destructive=False, idempotent=True,
         run=get_conversation),
    Tool("end_session", "End a session",
         "End an active session for good: status 'ended' (finished early) or 'abandoned' (the "
         "learner left). No progress is accepted afterwards; its summary is computed. Calling it "
         "again changes nothing and answers session_ended.",
         EndSessionArgs, SessionOut, "agent", read_only=False, destructive=True, idempotent=True,
         run=end_session),
)}
